"""Driving Debian's chromium through Playwright: a page, real input, screenshots.

Read the database only after leaving `chromium_page`: Playwright's sync API runs an event loop in
this thread, beside which Django's ORM refuses to run.
"""
from __future__ import annotations

import time
from contextlib import contextmanager

from tests.conftest import ARTIFACTS

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-quic", "--no-first-run", "--disable-sync"]
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3, "is_mobile": True, "has_touch": True}


@contextmanager
def chromium_page(chromium_path, **context_options):
    """A page in headless Chromium; JavaScript errors on the page fail the test."""
    with chromium_pages(chromium_path, 1, **context_options) as (page,):
        yield page


@contextmanager
def chromium_pages(chromium_path, n: int, **context_options):
    """n pages, each in its own browser context (as n browsers: no cookies or storage shared);
    JavaScript errors or CSP violations on any of them fail the test."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            pages = [_watched(browser.new_context(**context_options).new_page()) for _ in range(n)]
            yield pages
            for page in pages:
                assert not page.js_errors, f"JavaScript errors on the page: {page.js_errors}"
        finally:
            browser.close()


def _watched(page):
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # the pages run under the site's Content-Security-Policy: a violation fails the test too
    page.on("console", lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.js_errors = errors
    page.wait_for_function = lambda expression, **kw: _wait_for_expression(page, expression, **kw)
    return page


def _wait_for_expression(page, expression: str, *, timeout: float = 30_000, **_ignored) -> None:
    """Poll a JavaScript expression until it is truthy. Playwright's own wait_for_function builds its
    predicate with `new Function`, which the site's CSP (no 'unsafe-eval') refuses; page.evaluate is
    run by the DevTools protocol and is not subject to it."""
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} ms waiting for {expression}")
        page.wait_for_timeout(50)


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def consent(page, url: str) -> None:
    page.goto(url)
    page.check("#consent-box")
    page.click("#consent-submit")


def image_ready(page) -> dict:
    """Wait until the trial's image is drawn; its box on screen."""
    page.wait_for_selector("#trial:not([hidden])")
    page.wait_for_function("document.getElementById('status').textContent !== 'Loading the image…'")
    return page.locator("#stage").bounding_box()


def reveal(page) -> dict:
    """Timed kinds: press 'Show the image' (the viewing time starts); the stage box."""
    page.wait_for_selector("#show:not([hidden])")
    page.click("#show")
    page.wait_for_selector("#show", state="hidden")
    return page.locator("#stage").bounding_box()


def paint_rectangle(page, box, fx0, fy0, fx1, fy1, step=12):
    """Drag the mouse in a zig-zag over the fraction [fx0, fx1] x [fy0, fy1] of the box."""
    x0, x1 = box["x"] + fx0 * box["width"], box["x"] + fx1 * box["width"]
    y, y1 = box["y"] + fy0 * box["height"], box["y"] + fy1 * box["height"]
    page.mouse.move(x0, y)
    page.mouse.down()
    forward = True
    while y <= y1:
        page.mouse.move(x1 if forward else x0, y, steps=8)
        y += step
        page.mouse.move(x1 if forward else x0, min(y, y1), steps=2)
        forward = not forward
    page.mouse.up()


def touch_drag(page, points, *, pause_ms: int = 0) -> None:
    """A finger drawing through `points` (page CSS px), as real touch input: Chromium turns the
    CDP touch events into pointer events of type "touch". Ends with the finger lifted for 600 ms,
    as a person's would be: Chromium's gesture detector drops the click of a tap that follows a
    drag within a few hundred ms."""
    cdp = page.context.new_cdp_session(page)
    x, y = points[0]
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
    for x, y in points[1:]:
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
        if pause_ms:
            page.wait_for_timeout(pause_ms)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()
    page.wait_for_timeout(600)


def zigzag(box, fx0, fy0, fx1, fy1, step=10, substeps=8):
    """Points of a zig-zag over a fraction of a box (for touch drags)."""
    points, y, forward = [], box["y"] + fy0 * box["height"], True
    x0, x1, y1 = box["x"] + fx0 * box["width"], box["x"] + fx1 * box["width"], box["y"] + fy1 * box["height"]
    while y <= y1:
        a, b = (x0, x1) if forward else (x1, x0)
        points += [(a + (b - a) * i / substeps, y) for i in range(substeps + 1)]
        y += step
        forward = not forward
    return points
