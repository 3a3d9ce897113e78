"""Benchmark of the analysis side: folding responses into maps, the metric suite, a whole study.

    .venv/bin/python bench/analysis.py [--stimuli 1000] [--participants 20] [--json PATH]

Sections (each a printed table; all in one run so the comparisons share the machine's state):
1. fold: one response into a stimulus map at 224, 512 and 1024 px, after n = 10, 100, 1000 earlier
   responses: the platform's incremental fold (rasterise one response, add it to the float64 running
   sum, the .npy round trip of the sum) against the straightforward way (rasterise every response
   and average them again). Target: the fold is O(pixels), flat in n.
2. metrics: each metric per map pair at 224, 512, 1024 px, against pysaliency's function where one
   exists (CC, SIM, NSS, AUC-Judd, MIT KLD) and scipy's spearmanr; and the whole suite (8 metrics)
   with the human side prepared once. Target: at least as fast as pysaliency for every shared metric.
3. study: S stimuli x P participants (bubble clicks, 224 px) folded as they arrive, then 3 model maps
   per stimulus scored with all metrics; against recompute-everything on every arrival with the
   single-metric functions, and against pysaliency's functions for the shared metrics.
4. bad input: maps of different shapes, constant and all-zero maps, NaN in a stored map, a stimulus
   with no responses: what the platform does with each.
5. report: the summary tables (every mean with its bootstrap CI) of a study of that size with 11
   methods, 2 task kinds and 3 conditions.

Pure numpy/scipy (no database). Times are medians of repeated runs on whatever the machine is doing.
BLAS runs single-threaded unless OPENBLAS_NUM_THREADS says otherwise: on a busy 2-core machine its
worker threads mostly wait for a core (a 1024 x 10 x 1024 product took 3-4x longer with 2 threads).
The same advice holds for Celery workers, whose processes already use every core.
"""
from __future__ import annotations

import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")  # before numpy is imported (see the docstring)

import argparse  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy.stats  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analysis import metrics  # noqa: E402
from analysis.aggregate import mean_map, running_sum_add  # noqa: E402
from analysis.recipes import participant_map, recipe_default  # noqa: E402
from analysis.scoring import HumanReference, metric_suite  # noqa: E402
from studyserver.storage import npy_bytes, npy_load  # noqa: E402
from tests.analysis.pysaliency_ref import load as load_pysaliency  # noqa: E402

SIZES = (224, 512, 1024)


def timed(fn, *, repeat: int = 7, budget_s: float = 5.0) -> float:
    """Median wall time of fn() in ms over up to `repeat` runs (fewer when slow)."""
    times, started = [], time.perf_counter()
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
        if time.perf_counter() - started > budget_s and len(times) >= 3:
            break
    return statistics.median(times) * 1e3


def timed_pair(a, b, *, repeat: int = 15, budget_s: float = 8.0) -> tuple[float, float]:
    """Median wall times (ms) of a() and b(), called alternately so both see the same machine load."""
    ta, tb, started = [], [], time.perf_counter()
    for _ in range(repeat):
        for fn, times in ((a, ta), (b, tb)):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        if time.perf_counter() - started > budget_s and len(ta) >= 3:
            break
    return statistics.median(ta) * 1e3, statistics.median(tb) * 1e3


def table(title: str, header: list[str], rows: list[list]) -> None:
    def cell(v):
        if isinstance(v, float):
            return "nan" if math.isnan(v) else (f"{v:.3f}" if abs(v) < 100 else f"{v:.0f}")
        return str(v)

    cells = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    print(f"\n## {title}\n")
    print("  ".join(h.rjust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for r in cells:
        print("  ".join(v.rjust(w) for v, w in zip(r, widths)))


# --- synthetic participants -------------------------------------------------------------------


def bubble_payload(rng, size: int, n_clicks: int = 10, centre=(0.45, 0.4)) -> dict:
    pts = rng.normal([centre[0] * size, centre[1] * size], 0.12 * size, size=(n_clicks, 2)).clip(0, size - 1e-3)
    return {"display": {"width": 500, "height": 500}, "clicks": [[float(x), float(y), 300.0 * i] for i, (x, y) in enumerate(pts)]}


def paint_payload(rng, size: int) -> dict:
    cx, cy, half = size * rng.uniform(0.3, 0.6), size * rng.uniform(0.3, 0.6), size * 0.15
    r = size / 50
    points, y, forward = [], cy - half, True
    while y <= cy + half:
        for x in ((cx - half, cx + half) if forward else (cx + half, cx - half)):
            points.append([float(x), float(y), 0.0])
        y += r
        forward = not forward
    return {"display": {"width": 500, "height": 500}, "strokes": [{"radius": r, "erase": False, "points": points}]}


# --- 1. folding -----------------------------------------------------------------------------------


def _fold_rows(kind: str, make, size: int, rng) -> list[list]:
    recipe = recipe_default(kind)
    new = make(rng, size)

    def recompute(payloads) -> np.ndarray:
        total = None
        for p in payloads:
            total = running_sum_add(total, participant_map(p, recipe, height=size, width=size).density)
        return total

    def fold(stored: bytes) -> bytes:
        total = npy_load(stored, "sum.npy")
        pmap = participant_map(new, recipe, height=size, width=size)
        return npy_bytes(running_sum_add(total, pmap.density))

    rows = []
    for n in (10, 100, 1000):
        big = size == 1024 and n == 1000  # 1000 x 1024^2 rasterisations: minutes; see n = 100
        payloads = [] if big else [make(rng, size) for _ in range(n)]
        recompute_ms = float("nan") if big else timed(functools.partial(recompute, payloads + [new]), repeat=3, budget_s=20)
        # the running sum of the n earlier responses, as stored
        earlier = np.random.default_rng(n).random((size, size)) if big else recompute(payloads)
        fold_ms = timed(functools.partial(fold, npy_bytes(earlier)), repeat=9)
        rows.append([kind, size, n, fold_ms, recompute_ms, recompute_ms / fold_ms])
    return rows


def bench_fold(results: dict) -> None:
    rows = []
    rng = np.random.default_rng(0)
    for kind, make in (("paint", paint_payload), ("bubble", bubble_payload)):
        for size in SIZES:
            rows += _fold_rows(kind, make, size, rng)
    table("1. Fold one response into a map (ms)", ["kind", "px", "n before", "incremental", "recompute all", "ratio"], rows)
    results["fold"] = [dict(zip(["kind", "px", "n_before", "incremental_ms", "recompute_ms", "ratio"], r)) for r in rows]


# --- 2. metrics -----------------------------------------------------------------------------------


def map_pair(size: int, rng):
    """A human map from 20 participants' clicks, their fixations, and a model map (smooth + noise)."""
    payloads = [bubble_payload(rng, size) for _ in range(20)]
    recipe = recipe_default("bubble")
    pmaps = [participant_map(p, recipe, height=size, width=size) for p in payloads]
    human = np.mean([p.density for p in pmaps], axis=0)
    fixations = np.sum([p.fixations for p in pmaps], axis=0) > 0
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    model = np.exp(-((xs - 0.5 * size) ** 2 + (ys - 0.45 * size) ** 2) / (2 * (0.15 * size) ** 2)) + 0.1 * rng.random((size, size))
    return model.astype(np.float64), human, fixations


def _metric_rows(size: int, ps, rng) -> list[list]:
    p, q, f = map_pair(size, rng)
    ys, xs = np.nonzero(f)
    ours = {
        "pcc": lambda: metrics.pcc(p, q), "sim": lambda: metrics.sim(p, q), "kld": lambda: metrics.kld(p, q),
        "nss": lambda: metrics.nss(p, f), "auc_judd": lambda: metrics.auc_judd(p, f),
        "spearman": lambda: metrics.spearman(p, q), "iou_top10": lambda: metrics.iou_top(p, q, 0.1),
        "iou_top30": lambda: metrics.iou_top(p, q, 0.3),
    }
    reference = {
        "pcc": ("pysaliency CC", lambda: ps.metrics.CC(p, q)),
        "sim": ("pysaliency SIM", lambda: ps.metrics.SIM(p, q)),
        "kld": ("pysaliency MIT_KLDiv", lambda: ps.metrics.MIT_KLDiv(p, q)),
        "nss": ("pysaliency NSS", lambda: ps.metrics.NSS(p, xs, ys).mean()),
        "auc_judd": ("pysaliency general_roc judd", lambda: ps.roc.general_roc(p[f], p[~f], judd=1)[0]),
        "spearman": ("scipy spearmanr", lambda: scipy.stats.spearmanr(p.ravel(), q.ravel()).statistic),
    }
    rows = []
    for name, fn in ours.items():
        label, ref = reference.get(name, ("", None))
        ours_ms, ref_ms = timed_pair(fn, ref) if ref else (timed(fn), float("nan"))
        rows.append([size, name, ours_ms, label, ref_ms, ref_ms / ours_ms if ref else float("nan")])
    prepared = HumanReference.prepare(q, f)
    singles_ms = sum(r[2] for r in rows)
    suite_ms = timed(lambda: metric_suite(p, prepared))
    rows.append([size, "suite (8, prepared)", suite_ms, "sum of the 8 singles", singles_ms, singles_ms / suite_ms])
    rows.append([size, "prepare human side", timed(lambda: HumanReference.prepare(q, f)), "", float("nan"), float("nan")])
    return rows


def bench_metrics(results: dict, ps) -> None:
    rows, rng = [], np.random.default_rng(2)
    for size in SIZES:
        rows += _metric_rows(size, ps, rng)
    table("2. Metrics per map pair (ms; speed-up = reference / ours)", ["px", "metric", "ours", "reference", "reference ms", "speed-up"], rows)
    results["metrics"] = [dict(zip(["px", "metric", "ours_ms", "reference", "reference_ms", "speedup"], r)) for r in rows]


# --- 3. a whole study ----------------------------------------------------------------------------


def bench_study(results: dict, ps, n_stimuli: int, n_participants: int, size: int = 224) -> None:
    rng = np.random.default_rng(3)
    recipe = recipe_default("bubble")
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    stimuli = []
    for _ in range(n_stimuli):
        centre = rng.uniform(0.25, 0.75, size=2)
        payloads = [bubble_payload(rng, size, centre=centre) for _ in range(n_participants)]
        models = [np.exp(-((xs - (centre[0] + d) * size) ** 2 + (ys - centre[1] * size) ** 2) / (2 * (w * size) ** 2))
                  for d, w in ((0.0, 0.12), (0.1, 0.2), (0.3, 0.1))]
        stimuli.append((payloads, models))

    def ours():
        out = []
        for payloads, models in stimuli:
            total, fix = None, None
            for p in payloads:  # each arrival: one fold, O(pixels)
                pmap = participant_map(p, recipe, height=size, width=size)
                total = running_sum_add(total, pmap.density)
                fix = pmap.fixations.copy() if fix is None else fix + pmap.fixations
            reference = HumanReference.prepare(mean_map(total, len(payloads)), fix > 0)
            out.append([metric_suite(m, reference) for m in models])
        return out

    def recompute_everything():
        out = []
        for payloads, models in stimuli:
            for k in range(1, len(payloads) + 1):  # each arrival: rebuild from all responses so far
                pmaps = [participant_map(p, recipe, height=size, width=size) for p in payloads[:k]]
                human = np.mean([pm.density for pm in pmaps], axis=0)
                fixations = np.sum([pm.fixations for pm in pmaps], axis=0) > 0
            out.append([{
                "pcc": metrics.pcc(m, human), "sim": metrics.sim(m, human), "spearman": metrics.spearman(m, human),
                "kld": metrics.kld(m, human), "iou_top10": metrics.iou_top(m, human, 0.1), "iou_top30": metrics.iou_top(m, human, 0.3),
                "nss": metrics.nss(m, fixations), "auc_judd": metrics.auc_judd(m, fixations),
            } for m in models])
        return out

    def pysaliency_scoring(maps):
        for (_payloads, models), (human, fixations) in zip(stimuli, maps):
            fy, fx = np.nonzero(fixations)
            for m in models:
                ps.metrics.CC(m, human), ps.metrics.SIM(m, human), ps.metrics.MIT_KLDiv(m, human)
                ps.metrics.NSS(m, fx, fy).mean(), ps.roc.general_roc(m[fixations], m[~fixations], judd=1)[0]

    t = time.perf_counter()
    ours_scores = ours()
    ours_s = time.perf_counter() - t
    t = time.perf_counter()
    naive_scores = recompute_everything()
    naive_s = time.perf_counter() - t
    finals = []
    for payloads, _models in stimuli:
        pmaps = [participant_map(p, recipe, height=size, width=size) for p in payloads]
        finals.append((np.mean([pm.density for pm in pmaps], axis=0), np.sum([pm.fixations for pm in pmaps], axis=0) > 0))
    t = time.perf_counter()
    pysaliency_scoring(finals)
    ps_s = time.perf_counter() - t
    # the shared-metric part of our scoring alone, for a like-for-like comparison with pysaliency
    t = time.perf_counter()
    for (_payloads, models), (human, fixations) in zip(stimuli, finals):
        for m in models:
            metrics.pcc(m, human), metrics.sim(m, human), metrics.kld(m, human), metrics.nss(m, fixations), metrics.auc_judd(m, fixations)
    ours_shared_s = time.perf_counter() - t
    worst = max(abs(a[k] - b[k]) for sa, sb in zip(ours_scores, naive_scores) for a, b in zip(sa, sb) for k in a
                if not (math.isnan(a[k]) and math.isnan(b[k])))
    pairs = n_stimuli * 3
    rows = [
        ["platform: fold on arrival + suite", ours_s, 1e3 * ours_s / n_stimuli, 1.0],
        ["recompute everything on arrival + single metrics", naive_s, 1e3 * naive_s / n_stimuli, naive_s / ours_s],
        ["scoring only, 5 shared metrics: ours", ours_shared_s, 1e3 * ours_shared_s / pairs, float("nan")],
        ["scoring only, 5 shared metrics: pysaliency", ps_s, 1e3 * ps_s / pairs, ps_s / ours_shared_s],
    ]
    table(f"3. Study: {n_stimuli} stimuli x {n_participants} participants (bubble, {size} px), 3 model maps each",
          ["way", "seconds", "ms per stimulus (pair)", "x platform"], rows)
    print(f"\n   largest difference between the two ways' scores: {worst:.2e}")
    results["study"] = {"stimuli": n_stimuli, "participants": n_participants, "px": size, "max_abs_difference": worst,
                        "rows": [dict(zip(["way", "seconds", "ms_per_unit", "ratio"], r)) for r in rows]}


# --- 5. report tables --------------------------------------------------------------------------


def bench_report(results: dict, n_stimuli: int) -> None:
    """The report's tables for a big study: 11 methods x 2 task kinds x 3 conditions, all metrics."""
    from analysis import report_tables as reports
    from analysis.report_tables import CeilingRecord, JobRecord, ScoreRecord

    g = np.random.default_rng(5)
    methods = ["gradient", "smoothgrad", "integrated_gradients", "guided_backprop", "gradcam", "guided_gradcam", "xrai",
               "rise", "lime", "fem", "occlusion"]
    names = {"paint": ("pcc", "sim", "spearman", "kld", "iou_top10", "iou_top30"),
             "bubble": ("pcc", "sim", "spearman", "kld", "iou_top10", "iou_top30", "nss", "auc_judd")}
    scores, jobs, ceilings = [], [], []
    for sid in range(n_stimuli):
        condition = ("original", "glass_blur-1", "glass_blur-2")[sid % 3]
        for kind, metric_names in names.items():
            ceilings += [CeilingRecord(sid, condition, kind, m, 20, 0.8 + 0.05 * g.random(), 0.2 + 0.05 * g.random()) for m in metric_names]
            scores += [ScoreRecord(sid, condition, kind, "efficientnet_lite0", method, "default", m, g.random())
                       for method in methods for m in metric_names]
        jobs += [JobRecord(sid, condition, "efficientnet_lite0", method, "default", g.random(), g.random()) for method in methods]
    t = time.perf_counter()
    rows = reports.summary_rows(scores, jobs, ceilings)
    summary_s = time.perf_counter() - t
    t = time.perf_counter()
    reports.reliability_rows(ceilings)
    reliability_s = time.perf_counter() - t
    table(f"5. Report tables: {n_stimuli} stimuli, {len(scores)} scores, {len(rows)} rows (bootstrap 2000, paired per condition)",
          ["table", "seconds"], [["summary (mean, std, CI, normalised, insertion/deletion)", summary_s], ["ceilings and floors", reliability_s]])
    results["report"] = {"stimuli": n_stimuli, "scores": len(scores), "rows": len(rows), "summary_s": summary_s, "reliability_s": reliability_s}


# --- 4. bad input ----------------------------------------------------------------------------------


def bench_bad_input(results: dict) -> None:
    rng = np.random.default_rng(4)
    q = rng.random((224, 224)) ** 3
    f = rng.random((224, 224)) < 0.003
    cases = {
        "model 112x150 vs human 224x224 (resized)": (rng.random((112, 150)), q),
        "constant model map": (np.full((224, 224), 0.5), q),
        "all-zero model map": (np.zeros((224, 224)), q),
    }
    rows = []
    for label, (p, qq) in cases.items():
        values = metric_suite(p, HumanReference.prepare(qq, f))
        rows.append([label] + [values[k] for k in ("pcc", "sim", "spearman", "kld", "iou_top10", "nss", "auc_judd")])
    table("4a. Bad input: metric values (NaN = undefined, never an exception)",
          ["case", "pcc", "sim", "spearman", "kld", "iou10", "nss", "auc"], rows)
    broken = np.ones((4, 4))
    broken[1, 2] = np.nan
    try:
        npy_load(npy_bytes(broken), "modelmaps/ab/17-comparison.npy")
        nan_message = "accepted (wrong)"
    except ValueError as exc:
        nan_message = f"refused: {exc}"
    try:
        mean_map(np.zeros((4, 4)), 0)
        empty_message = "a map was made (wrong)"
    except ValueError as exc:
        empty_message = f"no map: {exc}; the report lists it under 'no responses yet', the export has has_map false"
    print(f"\n   NaN in a stored map: {nan_message}")
    print(f"   stimulus with no responses: {empty_message}")
    results["bad_input"] = {"metrics": [dict(zip(["case", "pcc", "sim", "spearman", "kld", "iou_top10", "nss", "auc_judd"], r)) for r in rows],
                            "nan_in_stored_map": nan_message, "no_responses": empty_message}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stimuli", type=int, default=1000)
    parser.add_argument("--participants", type=int, default=20)
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--skip", default="", help="comma-separated sections to skip: fold,metrics,study,report,bad")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    ps = load_pysaliency()
    results = {"machine": {"python": platform.python_version(), "numpy": np.__version__, "cpus": os.cpu_count(),
                           "blas_threads": os.environ["OPENBLAS_NUM_THREADS"],
                           "load_average": os.getloadavg()}, "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    print(f"analysis bench · numpy {np.__version__} · {os.cpu_count()} CPUs · BLAS threads {os.environ['OPENBLAS_NUM_THREADS']}"
          f" · load average {os.getloadavg()[0]:.1f} (shared machine)")
    if "fold" not in skip:
        bench_fold(results)
    if "metrics" not in skip:
        bench_metrics(results, ps)
    if "study" not in skip:
        bench_study(results, ps, args.stimuli, args.participants)
    if "report" not in skip:
        bench_report(results, args.stimuli)
    if "bad" not in skip:
        bench_bad_input(results)
    results["load_average_end"] = os.getloadavg()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=float))
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
