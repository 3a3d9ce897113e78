"""Participants taking a study at once on PostgreSQL: latency of consent, next trial and submit, and
responses per second, through the real services (the same code the API runs, without HTTP).

    .venv/bin/python bench/assignment.py [--participants 120] [--workers 4] [--stimuli 60] [--json PATH]

Each worker is a separate process (as gunicorn's are) with its own database connection; they start
together and each takes its share of participants through consent, then K x (next trial, submit a
paint payload). Creates and drops its own database on the machine's PostgreSQL; queued map updates go
to an in-memory broker (publishing to Redis is not measured). Prints a table; ends with the count
check (no stimulus over N, every response stored once).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
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


def _django():
    import django

    django.setup()


def _paint_payload(width: int, height: int) -> dict:
    x0, x1, y0, y1, r = width * 0.1, width * 0.5, height * 0.2, height * 0.7, 4.0
    points, y, t, forward = [], y0, 0, True
    while y <= y1:
        for x in ((x0, x1) if forward else (x1, x0)):
            points.append([x, y, t])
            t += 16
        y += r
        forward = not forward
    return {"display": {"width": 500, "height": 375, "dpr": 1}, "pointer_types": ["mouse"],
            "strokes": [{"radius": r, "erase": False, "points": points}]}


def _worker(args) -> dict:
    """Take `count` participants through the study; return durations (s) per operation."""
    study_id, count, barrier = args
    from django.db import connection

    from annotations.models import Study
    from annotations.services import participation
    from studyserver.errors import Gone

    connection.close()
    study = Study.objects.get(pk=study_id)
    timings = {"consent": [], "next": [], "submit": []}
    responses = 0
    barrier.wait()
    began = time.perf_counter()
    for _ in range(count):
        t0 = time.perf_counter()
        try:
            participant, _ = participation.participant_start(study=study)
        except Gone:
            timings["consent"].append(time.perf_counter() - t0)
            continue
        timings["consent"].append(time.perf_counter() - t0)
        while True:
            t0 = time.perf_counter()
            trial = participation.trial_next_assign(participant=participant)
            timings["next"].append(time.perf_counter() - t0)
            if trial is None:
                break
            payload = _paint_payload(trial.stimulus.width, trial.stimulus.height)
            t0 = time.perf_counter()
            participation.response_submit(participant=participant, trial_id=trial.pk, client_uuid=uuid.uuid4(), payload=payload)
            timings["submit"].append(time.perf_counter() - t0)
            responses += 1
    connection.close()
    return {"timings": timings, "responses": responses, "seconds": time.perf_counter() - began}


def _study(stimuli: int, n: int, k: int):
    import io

    import numpy as np
    from django.contrib.auth import get_user_model
    from PIL import Image

    from studyserver.researcher.services import studies

    owner = get_user_model().objects.create_user(username=f"bench-{uuid.uuid4().hex[:6]}", password="x")
    study = studies.study_create(owner=owner, slug=f"bench-{uuid.uuid4().hex[:8]}", title="Bench",
                                 participants_per_stimulus=n, stimuli_per_participant=k)
    rng = np.random.default_rng(0)
    for i in range(stimuli):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (375, 500, 3), dtype=np.uint8)).save(buffer, format="PNG")
        studies.stimulus_create(study=study, data=buffer.getvalue(), filename=f"s{i}.png", class_index=285)
    from explain.services import jobs as explain_services

    explain_services.explanation_jobs_create = lambda **kwargs: []  # the model side is not measured here
    studies.explanation_jobs_create = explain_services.explanation_jobs_create
    return studies.study_launch(study=study)


def _percentiles(values: list[float]) -> tuple[float, float, float]:
    if not values:
        return (float("nan"),) * 3
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return statistics.median(ordered) * 1000, pick(0.95), pick(0.99)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--participants", type=int, default=120)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--stimuli", type=int, default=60)
    parser.add_argument("--n", type=int, default=5, help="participants per stimulus")
    parser.add_argument("--k", type=int, default=5, help="stimuli per participant")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    _django()
    from django.conf import settings
    from django.db import connection
    from django.db.models import Count

    settings.DATABASES["default"]["TEST"].update(NAME=f"studyserver_bench_{uuid.uuid4().hex[:8]}")
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        study = _study(args.stimuli, args.n, args.k)
        connection.close()
        ctx = multiprocessing.get_context("fork")
        barrier = ctx.Manager().Barrier(args.workers)
        shares = [args.participants // args.workers + (i < args.participants % args.workers) for i in range(args.workers)]
        with ctx.Pool(args.workers) as pool:
            results = pool.map(_worker, [(study.pk, share, barrier) for share in shares])
        from annotations.models import Response, Trial

        held = (Trial.objects.filter(stimulus__study=study, status=Trial.Status.DONE)
                .values("stimulus_id").annotate(n=Count("id")).order_by("-n").first())
        stored = Response.objects.filter(trial__stimulus__study=study).count()
        answered = sum(r["responses"] for r in results)
        wall = max(r["seconds"] for r in results)
        rows = []
        for op in ("consent", "next", "submit"):
            values = [v for r in results for v in r["timings"][op]]
            p50, p95, p99 = _percentiles(values)
            rows.append({"operation": op, "count": len(values), "p50_ms": p50, "p95_ms": p95, "p99_ms": p99})
        print(f"{args.participants} participants, {args.workers} processes, {args.stimuli} stimuli, N={args.n}, K={args.k}")
        print(f"{'operation':<10}{'count':>8}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}")
        for row in rows:
            print(f"{row['operation']:<10}{row['count']:>8}{row['p50_ms']:>10.1f}{row['p95_ms']:>10.1f}{row['p99_ms']:>10.1f}")
        print(f"responses: {answered} acknowledged, {stored} stored, {answered / wall:.0f} per second over {wall:.1f} s")
        print(f"most answers on one stimulus: {held['n'] if held else 0} (N = {args.n})")
        assert stored == answered and (held is None or held["n"] <= args.n)
        if args.json:
            args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)}, "rows": rows,
                                             "responses_per_s": answered / wall, "stored": stored}, indent=2))
    finally:
        connection.close()
        connection.creation.destroy_test_db(settings.DATABASES["default"]["TEST"]["NAME"], verbosity=0)


if __name__ == "__main__":
    main()
