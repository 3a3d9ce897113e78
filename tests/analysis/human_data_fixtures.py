"""Small synthetic human data sets in each import format, written as researchers hold them.

Every builder writes the same fixations (`synthetic_fixations`) so formats can be compared. Coordinates
lie on a 1/16 px grid and times on whole milliseconds, so converting them (MATLAB's 1-based pixels,
samples at 240 Hz) and back is exact in floating point.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

# Two images of different sizes (MIT1003's differ too): key -> (width, height).
IMAGES = {"street": (48, 32), "beach": (40, 56)}
PARTICIPANTS = ("p01", "p02", "p03", "p04")
CSV_HEADER = ("participant", "image", "x", "y", "start_ms", "duration_ms")


def png_bytes(width: int, height: int, seed: int = 0, mode: str = "RGB") -> bytes:
    rng = np.random.default_rng(seed)
    channels = 3 if mode == "RGB" else 1
    pixels = rng.integers(0, 256, size=(height, width, channels), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels if channels == 3 else pixels[..., 0], mode).save(out, format="PNG")
    return out.getvalue()


def image_files(images=IMAGES) -> dict[str, bytes]:
    """key -> PNG bytes, one distinct picture per image."""
    return {key: png_bytes(w, h, seed=i) for i, (key, (w, h)) in enumerate(sorted(images.items()))}


def synthetic_fixations(images=IMAGES, participants=PARTICIPANTS, per=(3, 7), seed=1) -> list[dict]:
    """Rows {participant, image (key), x, y (image px, 1/16 grid, inside), start_ms, duration_ms}, in
    temporal order per participant and image. Some fixations share a pixel (as real ones do)."""
    rng = np.random.default_rng(seed)
    rows = []
    for key, (width, height) in sorted(images.items()):
        for participant in participants:
            n = int(rng.integers(per[0], per[1] + 1))
            xs = rng.integers(0, width * 16, size=n) / 16.0
            ys = rng.integers(0, height * 16, size=n) / 16.0
            xs[-1], ys[-1] = xs[0], ys[0]  # a refixation of the same spot
            start = 0
            for x, y in zip(xs, ys):
                duration = int(rng.integers(80, 600))
                rows.append({"participant": participant, "image": key, "x": float(x), "y": float(y),
                             "start_ms": float(start), "duration_ms": float(duration)})
                start += duration + int(rng.integers(20, 60))
    return rows


def csv_bytes(rows: list[dict], header=CSV_HEADER, *, image_suffix: str = ".png", delimiter: str = ",",
              rename: dict | None = None) -> bytes:
    """The rows as a CSV; image names get `image_suffix`; `rename` maps platform column names to the file's."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerow([(rename or {}).get(c, c) for c in header])
    for row in rows:
        cells = {**row, "image": row["image"] + image_suffix}
        writer.writerow([cells.get(c, "") if isinstance(cells.get(c, ""), str) else repr(cells[c]) for c in header])
    return out.getvalue().encode()


def write_csv_import(root: Path, rows: list[dict], images=IMAGES, **kwargs) -> Path:
    """root/fixations.csv plus root/stimuli/<key>.png."""
    (root / "stimuli").mkdir(parents=True, exist_ok=True)
    for key, data in image_files(images).items():
        (root / "stimuli" / f"{key}.png").write_bytes(data)
    (root / "fixations.csv").write_bytes(csv_bytes(rows, **kwargs))
    return root


def fixated_pixels(rows: list[dict], key: str, images=IMAGES) -> np.ndarray:
    """H x W bool: the pixels holding a fixation of `rows` on image `key` (floor of x, y)."""
    width, height = images[key]
    fixated = np.zeros((height, width), dtype=bool)
    for row in rows:
        if row["image"] == key:
            fixated[int(np.floor(row["y"])), int(np.floor(row["x"]))] = True
    return fixated


def grey_png(values: np.ndarray, fmt: str = "PNG") -> bytes:
    """An 8-bit grey image of values in [0, 1] (rounded to 1/255); JPEG at quality 75 (lossy)."""
    out = io.BytesIO()
    Image.fromarray(np.round(values * 255).astype(np.uint8), "L").save(out, format=fmt, **(
        {"quality": 75} if fmt == "JPEG" else {}))
    return out.getvalue()


def write_mit_import(root: Path, rows: list[dict], images=IMAGES, *, sample_rate_hz=240.0, maps=True,
                     stimuli_folder="ALLSTIMULI", maps_folder="ALLFIXATIONMAPS", maps_format="PNG") -> Path:
    """MIT1003's layout: stimuli, DATA/<observer>/<key>.mat (fixations 1-based, starts in samples,
    durations ms, as pysaliency's extraction of checkFixations saves them), and per image a
    `_fixPts` binary map and a `_fixMap` density map (here a box-blurred stand-in: maps are read as
    given, their content does not matter)."""
    (root / stimuli_folder).mkdir(parents=True, exist_ok=True)
    for key, data in image_files(images).items():
        (root / stimuli_folder / f"{key}.png").write_bytes(data)
    for key in images:
        for participant in sorted({r["participant"] for r in rows if r["image"] == key}):
            mine = [r for r in rows if r["image"] == key and r["participant"] == participant]
            folder = root / "DATA" / participant
            folder.mkdir(parents=True, exist_ok=True)
            scipy.io.savemat(folder / f"{key}.mat", {
                "fixations": np.array([[r["x"] + 1, r["y"] + 1] for r in mine]),
                "starts": np.array([r["start_ms"] * sample_rate_hz / 1000.0 for r in mine]),
                "durations": np.array([r["duration_ms"] for r in mine]),
            })
        if maps:
            (root / maps_folder).mkdir(parents=True, exist_ok=True)
            fixated = fixated_pixels(rows, key, images)
            ext = ".jpg" if maps_format == "JPEG" else ".png"
            (root / maps_folder / f"{key}_fixPts{ext}").write_bytes(grey_png(fixated.astype(float), maps_format))
            (root / maps_folder / f"{key}_fixMap{ext}").write_bytes(grey_png(_box_blur(fixated), maps_format))
    return root


def _box_blur(fixated: np.ndarray) -> np.ndarray:
    density = fixated.astype(float)
    for axis in (0, 1):
        density = (np.roll(density, 1, axis) + density + np.roll(density, -1, axis)) / 3
    return density / density.max()


def random_maps(images=IMAGES, participants=PARTICIPANTS, seed=2) -> dict[tuple[str, str], np.ndarray]:
    """(participant, key) -> a non-negative H x W float map with zeros (like click maps)."""
    rng = np.random.default_rng(seed)
    out = {}
    for key, (width, height) in sorted(images.items()):
        for participant in participants:
            values = rng.random((height, width))
            values[values < 0.6] = 0.0
            out[(participant, key)] = values
    return out


def write_maps_import(root: Path, maps: dict, images=IMAGES, *, ext=".npy") -> Path:
    """stimuli/<key>.png and participants/<participant>/<key><ext> (.npy, .mat or 16-bit .png)."""
    (root / "stimuli").mkdir(parents=True, exist_ok=True)
    for key, data in image_files(images).items():
        (root / "stimuli" / f"{key}.png").write_bytes(data)
    for (participant, key), values in maps.items():
        folder = root / "participants" / participant
        folder.mkdir(parents=True, exist_ok=True)
        map_write(folder / f"{key}{ext}", values)
    return root


def map_write(path: Path, values: np.ndarray) -> None:
    if path.suffix == ".npy":
        np.save(path, values)
    elif path.suffix == ".mat":
        scipy.io.savemat(path, {"map": values})
    else:  # 16-bit grey PNG of values scaled to [0, 1]
        Image.fromarray(np.round(values / values.max() * 65535).astype(np.uint16)).save(path)


def gaussian_naive(points, weights, width: int, height: int, sigma: float) -> np.ndarray:
    """The recipe written out pixel by pixel: sum_i w_i exp(-d^2 / 2 sigma^2) at pixel centres, / sum."""
    out = np.zeros((height, width))
    for (x, y), w in zip(points, weights):
        for i in range(height):
            for j in range(width):
                out[i, j] += w * np.exp(-((j + 0.5 - x) ** 2 + (i + 0.5 - y) ** 2) / (2 * sigma * sigma))
    return out / out.sum()


def human_map_naive(rows: list[dict], key: str, sigma: float, images=IMAGES, *, weighting="none") -> np.ndarray:
    """The mean over participants of each one's normalised Gaussian map, computed naively."""
    width, height = images[key]
    maps = []
    for participant in sorted({r["participant"] for r in rows if r["image"] == key}):
        mine = [r for r in rows if r["image"] == key and r["participant"] == participant]
        weights = [r["duration_ms"] if weighting == "duration" else 1.0 for r in mine]
        maps.append(gaussian_naive([(r["x"], r["y"]) for r in mine], weights, width, height, sigma))
    return np.mean(maps, axis=0)
