"""How long generating one corrupted variant takes, per corruption and severity, on a real photo.

Prints a table (milliseconds per image, median of --repeat runs) for chelsea (451 x 300) and the
same photo upscaled to about 1000 px on its long side. `--json PATH` also writes the figures.

    .venv/bin/python bench/corruptions.py [--repeat 3] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from annotations.corruptions import CORRUPTIONS, corrupt_png  # noqa: E402


def photo(long_side: int | None) -> np.ndarray:
    import skimage.data

    image = Image.open(Path(skimage.data.__file__).parent / "chelsea.png").convert("RGB")
    if long_side:
        scale = long_side / max(image.size)
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BICUBIC)
    return np.asarray(image)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    images = {"451x300": photo(None), "1000x665": photo(1000)}
    rows = []
    for name in CORRUPTIONS:
        for severity in (1, 3, 5):
            row = {"corruption": name, "severity": severity}
            for label, image in images.items():
                times = []
                for _ in range(args.repeat):
                    start = time.perf_counter()
                    corrupt_png(image, name, severity, seed=0)
                    times.append((time.perf_counter() - start) * 1000)
                row[label] = statistics.median(times)
            rows.append(row)
    print(f"{'corruption':18s} {'sev':>3s} {'451x300 ms':>11s} {'1000x665 ms':>12s}")
    for row in rows:
        print(f"{row['corruption']:18s} {row['severity']:3d} {row['451x300']:11.1f} {row['1000x665']:12.1f}")
    print("(times include PNG encoding; medians of", args.repeat, "runs)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    sys.exit(main())
