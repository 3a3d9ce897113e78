"""What a researcher's open study page costs: the progress endpoint it polls every 5 s, the study
page and the study list, at several study sizes, through Django's whole request stack (test client:
middleware, session login, views, templates, JSON), on PostgreSQL.

    .venv/bin/python bench/dashboard.py [--stimuli 50 500] [--n 10] [--repeats 15] [--json PATH]

For each size: a launched paint study with S main stimuli (small random PNGs), N answers per stimulus
(participants, trials and responses written in bulk: the read side is measured here, the write side
is bench/assignment.py), the explanation jobs its launch creates. Creates and drops its own database.
Prints median and 95th-percentile latency and the body size per page.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studyserver.settings.test")
os.environ["CELERY_BROKER_URL"] = "memory://"
os.environ.setdefault("MEDIA_ROOT", tempfile.mkdtemp(prefix="bench-media-"))


def _study(owner, stimuli: int, n: int):
    import numpy as np
    from django.utils import timezone
    from PIL import Image

    from annotations.models import Participant, Response, Trial
    from studyserver.researcher.services import studies

    study = studies.study_create(owner=owner, title=f"Bench {stimuli}", participants_per_stimulus=n, stimuli_per_participant=5)
    rng = np.random.default_rng(stimuli)
    for i in range(stimuli):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(buffer, format="PNG")
        studies.stimulus_create(study=study, data=buffer.getvalue(), filename=f"s{i}.png", class_index=285)
    study = studies.study_launch(study=study)
    now = timezone.now()
    ids = list(study.stimuli.values_list("id", flat=True))
    people = Participant.objects.bulk_create(
        [Participant(study=study, task_kind="paint", consented_at=now, status="completed", completed_at=now)
         for _ in range(-(-len(ids) * n // 5))])
    # answer k = j * S + i (the j-th answer to stimulus i) goes to participant k // 5: five different stimuli each
    trials = [Trial(participant=people[(j * len(ids) + i) // 5], stimulus_id=sid, task_kind="paint",
                    position=(j * len(ids) + i) % 5, status="done", lease_expires_at=now)
              for j in range(n) for i, sid in enumerate(ids)]
    trials = Trial.objects.bulk_create(trials)
    Response.objects.bulk_create([Response(trial=t, client_uuid=uuid.uuid4(), payload={}) for t in trials])
    return study


def _time(client, url: str, repeats: int) -> dict:
    sizes, times = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        answer = client.get(url)
        times.append(time.perf_counter() - t0)
        assert answer.status_code == 200, (url, answer.status_code)
        sizes.append(len(answer.content))
    times.sort()
    return {"p50_ms": statistics.median(times) * 1000, "p95_ms": times[min(len(times) - 1, int(0.95 * len(times)))] * 1000,
            "bytes": sizes[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stimuli", type=int, nargs="+", default=[50, 500])
    parser.add_argument("--n", type=int, default=10, help="answers per stimulus")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    settings.DATABASES["default"]["TEST"].update(NAME=f"studyserver_bench_{uuid.uuid4().hex[:8]}")
    settings.ALLOWED_HOSTS = ["*"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    rows = []
    try:
        owner = get_user_model().objects.create_user(username="bench", password="x")
        client = Client()
        client.force_login(owner)
        for size in args.stimuli:
            study = _study(owner, size, args.n)
            pages = {"progress API (polled)": f"/api/v1/studies/{study.slug}/progress/",
                     "study page": f"/dashboard/studies/{study.slug}/", "study list": "/dashboard/studies/"}
            for name, url in pages.items():
                rows.append({"stimuli": size, "responses": size * args.n, "page": name, **_time(client, url, args.repeats)})
        print(f"{'stimuli':>8}{'responses':>11}  {'page':<24}{'p50 ms':>9}{'p95 ms':>9}{'kB':>9}")
        for r in rows:
            print(f"{r['stimuli']:>8}{r['responses']:>11}  {r['page']:<24}{r['p50_ms']:>9.1f}{r['p95_ms']:>9.1f}{r['bytes'] / 1024:>9.1f}")
        if args.json:
            args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)}, "rows": rows}, indent=2))
    finally:
        connection.close()
        connection.creation.destroy_test_db(settings.DATABASES["default"]["TEST"]["NAME"], verbosity=0)


if __name__ == "__main__":
    main()
