"""The researcher logs in and reads the report and the gallery in headless Chromium; screenshots are
left in tests/artifacts/ (report-*.png) to look at."""
import pytest

from tests.analysis.conftest import build_scored_study
from tests.conftest import ARTIFACTS
from tests.e2e.test_participant_paints import chromium_page

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _images_loaded(page) -> list[str]:
    """Sources of <img> that failed to load (naturalWidth 0 once complete)."""
    page.wait_for_function("[...document.images].every(i => i.complete)", timeout=60000)
    return page.evaluate("[...document.images].filter(i => i.naturalWidth === 0).map(i => i.src)")


def test_researcher_reads_the_report_and_gallery(live_server, make_study, chromium_path):
    study = build_scored_study(make_study)
    slug, username = study.slug, study.owner.username
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    errors = []
    with chromium_page(chromium_path, viewport={"width": 1400, "height": 1000}) as page:
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{live_server.url}/dashboard/studies/{slug}/report/")
        page.fill("#id_username", username)
        page.fill("#id_password", "pw-for-tests")
        page.click("button[type=submit], input[type=submit]")
        page.wait_for_selector("#scores table.summary")
        for img in page.locator("img[loading=lazy]").all():
            img.scroll_into_view_if_needed()
        assert _images_loaded(page) == []
        page.screenshot(path=str(ARTIFACTS / "report-1-report.png"), full_page=True)
        summary_rows = page.locator("table.summary tbody tr").count()
        no_responses = page.inner_text("#kind-status")
        page.goto(f"{live_server.url}/dashboard/studies/{slug}/")
        for img in page.locator("img[loading=lazy]").all():
            img.scroll_into_view_if_needed()
        assert _images_loaded(page) == []
        page.screenshot(path=str(ARTIFACTS / "report-2-gallery.png"), full_page=True)
        placeholders = page.locator(".placeholder.no-responses").count()
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(f"{live_server.url}/dashboard/studies/{slug}/report/")
        page.screenshot(path=str(ARTIFACTS / "report-3-phone.png"))
        page.goto(f"{live_server.url}/dashboard/studies/{slug}/report/figures/bars-pcc.png")
        page.screenshot(path=str(ARTIFACTS / "report-4-figure.png"))
    assert errors == []
    assert summary_rows == 12  # 2 kinds x 3 methods x 2 conditions
    assert "motorcycle_left.png" in no_responses
    assert placeholders == 2  # the motorcycle, for both kinds
