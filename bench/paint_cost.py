"""What one paint answer costs the web process: the rasteriser, and the check every answer goes through.

    .venv/bin/python bench/paint_cost.py [--json PATH]

Each case runs in a fresh Python process, so its peak memory is its own: CPU seconds (user + system)
and the growth of the peak resident set (getrusage ru_maxrss) over the process after its imports and
the payload. Cases, on a 500 x 375 image:
- normal: 12 strokes of ~150 points 2 px apart, radius 14 (the middle default brush), one erase.
- bomb 15k / 50k: one stroke of 15,000 / 50,000 points spread over the image, radius 500 (the image).
- widest 15k: the same 15,000 points with the widest radius accepted (a quarter of the long side, 125).
- limit: a payload of just under MAX_PAINT_WORK, the most a check can be made to rasterise.
Engines: "v1" is the previous rasteriser (tests/analysis/rasterize_v1_ref.py, every (segment, row)
pair at once); "paint_mask" the current one; "check" is what an answer goes through
(`payload_clean`, then `paint_mask` when it is accepted), refused answers included.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
W, H = 500, 375

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {root!r})
import numpy as np
from annotations.rasterize import paint_mask, paint_work
from annotations.payloads import MAX_PAINT_WORK, PayloadInvalid, payload_clean
from tests.analysis import rasterize_v1_ref

W, H = {w}, {h}
rng = np.random.default_rng(1)


def bomb(n, radius):
    xs, ys = rng.uniform(0, W, n), rng.uniform(0, H, n)
    return [{{"radius": radius, "erase": False, "points": [[round(float(x), 2), round(float(y), 2), i]
                                                           for i, (x, y) in enumerate(zip(xs, ys))]}}]


def normal():
    strokes = []
    for s in range(12):
        x, y, angle, points = rng.uniform(100, 400), rng.uniform(80, 300), rng.uniform(0, 6.28), []
        for i in range(150):
            angle += rng.normal(0, 0.15)
            x, y = float(np.clip(x + 2 * np.cos(angle), 0, W)), float(np.clip(y + 2 * np.sin(angle), 0, H))
            points.append([x, y, i * 8])
        strokes.append({{"radius": 14.0, "erase": s == 7, "points": points}})
    return strokes


def limit():
    # the widest brush, points added until the next one would pass the limit
    stroke = bomb(20_000, 125.0)[0]
    lo, hi = 1, len(stroke["points"])
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if paint_work([{{**stroke, "points": stroke["points"][:mid]}}], H, W) <= MAX_PAINT_WORK:
            lo = mid
        else:
            hi = mid - 1
    return [{{**stroke, "points": stroke["points"][:lo]}}]


strokes = {{"normal": normal, "bomb 15k": lambda: bomb(15_000, 500.0), "bomb 50k": lambda: bomb(50_000, 500.0),
           "widest 15k": lambda: bomb(15_000, 125.0), "limit": limit}}[{case!r}]()
payload = {{"display": {{"width": W, "height": H}}, "pointer_types": ["mouse"], "strokes": strokes}}
rules = {{"brush_radii": [6 * W / 500, 14 * W / 500, 28 * W / 500], "time_limit_ms": None}}


def check():
    try:
        cleaned = payload_clean("paint", payload, width=W, height=H, rules=rules)
    except PayloadInvalid as exc:
        return f"{{exc.status}} {{exc.field}}"
    paint_mask(cleaned["strokes"], H, W)
    return "accepted"


run = {{"v1": lambda: rasterize_v1_ref.paint_mask(strokes, H, W) is not None and "rasterised",
       "paint_mask": lambda: paint_mask(strokes, H, W) is not None and "rasterised", "check": check}}[{engine!r}]
before = resource.getrusage(resource.RUSAGE_SELF)
started = time.perf_counter()
outcome = run()
wall = time.perf_counter() - started
after = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({{"outcome": outcome, "work": paint_work(strokes, H, W), "wall_s": wall,
                  "cpu_s": after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime,
                  "peak_growth_mib": (after.ru_maxrss - before.ru_maxrss) / 1024}}))
"""

CASES = ["normal", "bomb 15k", "bomb 50k", "widest 15k", "limit"]
ENGINES = ["v1", "paint_mask", "check"]


def measure(case: str, engine: str) -> dict:
    code = CHILD.format(root=str(ROOT), w=W, h=H, case=case, engine=engine)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=600)
    return {"case": case, "engine": engine, **json.loads(out.stdout.strip().splitlines()[-1])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--engines", default=",".join(ENGINES))
    args = parser.parse_args()
    rows = []
    print(f"{'case':<12} {'engine':<11} {'work':>11} {'CPU s':>7} {'wall s':>7} {'peak MiB':>9}  outcome")
    for case in args.cases.split(","):
        for engine in args.engines.split(","):
            row = measure(case, engine)
            rows.append(row)
            print(f"{case:<12} {engine:<11} {row['work']:>11,} {row['cpu_s']:>7.2f} {row['wall_s']:>7.2f} "
                  f"{row['peak_growth_mib']:>9.1f}  {row['outcome']}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
