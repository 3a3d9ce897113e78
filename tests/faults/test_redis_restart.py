"""Redis (the broker) dies while participants submit and comes back empty: no response is lost (the
database is the record; the submits made while it is down are stored and acknowledged), and the map
updates that could not be queued are recovered by the periodic sweep, so every averaged map ends
equal to a rebuild from the raw responses. The participants finish while Redis is down, so only the
sweep can bring their last answers into the maps.

Real processes: a private redis-server on a free port, gunicorn and a Celery worker (default queue,
with its beat running the sweep every 3 s) on it, against this test's PostgreSQL database.
"""
import os
import signal
import time
from collections import Counter

import pytest

from analysis.models import HumanMap
from analysis.services import maps
from annotations.models import Participant, Response
from annotations.services import participation
from tests.conftest import wait_for
from tests.faults.stack import (
    Participants,
    app_env,
    database_url,
    free_port,
    gunicorn_start,
    port_open,
    redis_start,
    stop,
    worker_start,
)
from tests.faults.studies import live_paint_study, paint

pytestmark = [pytest.mark.worker, pytest.mark.slow]

OUTAGE_S = 3.0


def test_redis_restart_loses_no_response_and_the_sweep_recovers_the_maps(transactional_db, researcher, settings):
    study = live_paint_study(researcher, n_stimuli=8, per_stimulus=20, per_participant=8)
    tokens = [participation.participant_start(study=study)[0].token for _ in range(20)]
    redis_port, web_port = free_port(), free_port()
    redis = redis_start(redis_port, "redis-restart-1")
    env = app_env(database_url=database_url(), broker=f"redis://127.0.0.1:{redis_port}/0", media_root=str(settings.MEDIA_ROOT),
                  SWEEP_SECONDS="3")
    server = worker = None
    try:
        server = gunicorn_start(env, web_port)
        worker = worker_start(env, "maps-worker", queues="default", beat=True)
        clients = Participants(f"http://127.0.0.1:{web_port}", tokens, paint, threads=4, pause_s=0.05).start()
        wait_for(lambda: len(clients.acked) >= 25, timeout=60, what="25 answers before the restart")
        os.killpg(redis.pid, signal.SIGKILL)  # queued messages and coalescing keys are gone
        stop(redis)
        assert not port_open(redis_port)
        before = len(clients.acked)
        time.sleep(OUTAGE_S)
        clients.join(timeout=180)  # the rest of the session runs with Redis down
        during = len(clients.acked) - before
        # Their map updates could not be queued: the database says which maps miss responses.
        lost = maps.maps_pending(study=study)
        redis = redis_start(redis_port, "redis-restart-2")  # empty: nothing of the old queue
        assert worker.poll() is None, "the worker died with the broker"
        # The sweep (beat, every 3 s) finds every response not yet folded and queues its map update.
        wait_for(lambda: not maps.maps_pending(study=study), timeout=120, what="the sweep to recover every map", process=worker)
    finally:
        for process in (server, worker, redis):
            if process is not None:
                stop(process)

    # Submits went on while Redis was down, and none failed for it.
    assert during > 0, "no answer was acknowledged while Redis was down"
    assert lost, "no map update was pending after the outage: the sweep had nothing to recover"
    codes = Counter((endpoint, status) for endpoint, status, _, _ in clients.statuses)
    assert all(status in (200, 201) for (endpoint, status) in codes if endpoint == "submit"), codes
    assert not clients.unexpected
    # Nothing lost, nothing doubled.
    stored = Counter(str(u) for u in Response.objects.filter(trial__participant__study=study).values_list("client_uuid", flat=True))
    assert set(stored) == set(clients.acked) and max(stored.values()) == 1 and len(stored) == 20 * 8
    assert set(Participant.objects.filter(study=study).values_list("status", flat=True)) == {"completed"}
    # Every response is folded once, and every map is what a rebuild from raw data gives.
    human_maps = list(HumanMap.objects.filter(stimulus__study=study).select_related("stimulus__study"))
    assert len(human_maps) == 8 and sum(m.n_participants for m in human_maps) == 20 * 8
    assert all(maps.human_map_matches_raw(m) for m in human_maps)
