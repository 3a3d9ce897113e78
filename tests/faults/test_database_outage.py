"""The database goes away for a few seconds under a real gunicorn: clients get 503 + Retry-After with
a JSON message (never 500), retry with the same client UUID, and nothing is lost or doubled.

A TCP proxy (asyncio, in this test) sits between the server and PostgreSQL; cutting it drops the
server's open (persistent) connections and refuses new ones, as a restarting or failing-over database
would."""
import time
import uuid
from collections import Counter

import pytest

from annotations.models import Participant, Response
from annotations.services import participation
from tests.faults.stack import Participants, TcpProxy, app_env, database_url, free_port, gunicorn_start, http, stop
from tests.faults.studies import live_paint_study, paint

pytestmark = [pytest.mark.slow]

OUTAGE_S = 3.0


def test_database_outage_gives_503_then_retries_store_each_answer_once(transactional_db, researcher, settings):
    study = live_paint_study(researcher, n_stimuli=10, per_stimulus=24, per_participant=10)
    tokens = [participation.participant_start(study=study)[0].token for _ in range(24)]
    probe_token, crowd = tokens[0], tokens[1:]
    port = free_port()
    db_port = int(database_url().rsplit(":", 1)[1].split("/")[0])
    with TcpProxy(db_port) as proxy:
        env = app_env(database_url=database_url(proxy.port), broker="memory://", media_root=str(settings.MEDIA_ROOT))
        server = gunicorn_start(env, port)
        base = f"http://127.0.0.1:{port}"
        try:
            # One participant, driven by the test itself, holds a trial open across the outage so that a
            # submit is certain to meet it (the crowd's calls meet it wherever they happen to be).
            status, data, _ = http("GET", f"{base}/api/v1/participant/{probe_token}/next/")
            assert status == 200, data
            probe_trial = data["trial"]
            probe_uuid = str(uuid.uuid4())
            probe_url = f"{base}/api/v1/participant/{probe_token}/trials/{probe_trial['id']}/response/"
            probe_body = {"client_uuid": probe_uuid, "payload": paint(probe_trial)}

            clients = Participants(base, crowd, paint, threads=6, pause_s=0.02).start()
            deadline = time.monotonic() + 60
            while len(clients.acked) < 30 and time.monotonic() < deadline:
                time.sleep(0.05)
            proxy.cut()
            probe_during = http("POST", probe_url, probe_body)
            time.sleep(OUTAGE_S)
            during = len(clients.acked)
            proxy.restore()
            probe_after = retry_until_answered(probe_url, probe_body)
            probe_again = http("POST", probe_url, probe_body)
            clients.join(timeout=180)
            rest = Participants(base, [probe_token], paint, threads=1).start()
            rest.join(timeout=60)
        finally:
            stop(server)

    # The submit made during the outage was refused with 503 and stored nothing; its retry with the same
    # client UUID stored it (201), and a second retry answered from what was stored (200).
    assert probe_during[0] == 503, probe_during[:2]
    assert probe_during[1]["error"] == "database_unavailable" and int(probe_during[2]["Retry-After"]) > 0
    assert probe_after[0] == 201, probe_after[:2]
    assert probe_again[0] == 200, probe_again[:2]
    assert probe_again[1]["response_id"] == probe_after[1]["response_id"] and probe_again[1]["created"] is False
    clients.statuses += rest.statuses
    clients.acked.update(rest.acked, **{probe_uuid: probe_trial["id"]})
    clients.unexpected += rest.unexpected

    codes = Counter(status for _, status, _, _ in clients.statuses)
    assert codes[500] == 0, [s for s in clients.statuses if s[1] == 500][:3]
    unavailable = [(body, headers) for _, status, body, headers in clients.statuses if status == 503]
    assert len(unavailable) >= 3, codes  # the outage was seen, by submits or next-trial calls
    for body, headers in unavailable:
        assert body["error"] == "database_unavailable" and "retry" in body["detail"].lower()
        assert int(headers["Retry-After"]) > 0
    assert not clients.unexpected, clients.unexpected[:3]
    assert during < len(clients.acked)  # work went on after the database came back

    # Every participant finished; every acknowledged answer is stored once, nothing else is stored.
    assert set(Participant.objects.filter(study=study).values_list("status", flat=True)) == {"completed"}
    stored = Counter(str(u) for u in Response.objects.filter(trial__participant__study=study).values_list("client_uuid", flat=True))
    assert set(stored) == set(clients.acked) and max(stored.values()) == 1
    assert len(clients.acked) == 24 * 10 == Response.objects.count()
    assert len(set(Response.objects.values_list("trial_id", flat=True))) == Response.objects.count()


def retry_until_answered(url: str, body: dict, timeout: float = 60) -> tuple[int, dict, dict]:
    """Retries as the participant page does: again after a 5xx or a connection error, same body."""
    deadline = time.monotonic() + timeout
    while True:
        answer = http("POST", url, body)
        if (answer[0] and answer[0] < 500) or time.monotonic() > deadline:
            return answer
        time.sleep(0.3)
