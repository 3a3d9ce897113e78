"""The API's documentation page works offline in headless Chromium: Swagger UI comes from our own
static files (drf-spectacular-sidecar) and lists the researcher endpoints."""
import pytest

from tests.conftest import ARTIFACTS
from tests.e2e.test_participant_paints import chromium_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_swagger_ui_lists_the_endpoints_without_a_network(live_server, chromium_path):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    failed = []
    with chromium_page(chromium_path, viewport={"width": 1280, "height": 1600}) as page:
        page.on("requestfailed", lambda request: failed.append(request.url))
        page.goto(f"{live_server.url}/api/docs/")
        page.wait_for_selector("text=/api/v1/studies/{slug}/stimuli/zip/", timeout=20_000)
        page.screenshot(path=str(ARTIFACTS / "api-docs.png"), full_page=False)
        text = page.inner_text("body")
        scripts = page.eval_on_selector_all("script[src]", "nodes => nodes.map(n => n.src)")
    assert "studyserver API" in text and "/api/v1/studies/{slug}/launch/" in text
    assert all(src.startswith(live_server.url) for src in scripts), scripts
    assert not failed, failed
