"""The Content-Security-Policy in a real headless Chromium: an inline script is refused (and the
browser helper reports it), while the pages whose scripts moved to static files still work: the
completion page's countdown and the dashboard's confirmation prompt."""
import pytest

from annotations.models import Participant
from annotations.services import participation
from tests.e2e.browser import chromium_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_inline_script_is_refused_and_reported(live_server, chromium_path, make_study):
    study = make_study(launch=True)
    with pytest.raises(AssertionError, match="Content Security Policy"):
        with chromium_page(chromium_path) as page:
            page.goto(f"{live_server.url}/s/{study.slug}/")
            page.evaluate("""() => { const s = document.createElement('script');
                s.textContent = "document.title = 'injected'"; document.body.appendChild(s); }""")
            page.wait_for_timeout(200)
            assert page.title() != "injected"


def test_the_completion_countdown_runs_under_the_policy(live_server, chromium_path, make_study):
    study = make_study(launch=True, redirect_url=f"{live_server.url}/healthz",
                       task_params={"completion": {"redirect_delay_s": 1}})
    participant, _ = participation.participant_start(study=study)
    participation.participant_finish(participant=participant)
    assert Participant.objects.get(pk=participant.pk).status == Participant.Status.COMPLETED
    with chromium_page(chromium_path) as page:
        page.goto(f"{live_server.url}/p/{participant.token}/done/")
        page.wait_for_url("**/healthz", timeout=15_000)
        assert '"ok": true' in page.content() or '"ok":true' in page.content()


def test_the_dashboard_confirms_before_removing_a_stimulus(live_server, chromium_path, make_study, researcher):
    """The confirm prompt comes from the static confirm.js (data-confirm), not an inline handler."""
    study = make_study()
    before = study.stimuli.count()
    with chromium_page(chromium_path) as page:
        page.goto(f"{live_server.url}/accounts/login/?next=/dashboard/studies/{study.slug}/")
        page.fill("#id_username", researcher.username)
        page.fill("#id_password", "pw-for-tests")
        page.click("button[type=submit]")
        remove = page.locator(".remove-form button").first
        remove.wait_for()
        assert page.locator(".remove-form").count() == before
        asked = []
        page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
        remove.click()
        page.wait_for_timeout(500)
        assert asked and asked[0].startswith("Remove ")
        assert page.locator(".remove-form").count() == before  # dismissed: nothing sent
        page.once("dialog", lambda dialog: dialog.accept())
        with page.expect_navigation():
            page.locator(".remove-form button").first.click()
    assert study.stimuli.count() == before - 1
