"""ImageNet-C corruptions: the paper's code (ported here line by line) as the reference at 224 px,
determinism from the seed, size adaptation, and the seeds' glass blur example."""
import io
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import correlate
from skimage.filters import gaussian

from annotations.corruptions import CORRUPTIONS, REFERENCE_SIZE, corrupt, corrupt_png, corruption_get, disk_kernel
from studyserver.researcher.demo import demo_photo_bytes

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = ["gaussian_noise", "glass_blur", "motion_blur", "defocus_blur", "contrast", "jpeg_compression", "pixelate"]


def photo(name="chelsea.png") -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(demo_photo_bytes(name))).convert("RGB"))


@pytest.fixture(scope="module")
def cat224() -> np.ndarray:
    """ImageNet-C's input: the short side resized to 256, centre crop 224 (here with Pillow)."""
    img = Image.open(io.BytesIO(demo_photo_bytes("chelsea.png"))).convert("RGB")
    w, h = img.size
    img = img.resize((round(w * 256 / h), 256), Image.Resampling.BILINEAR)
    left, top = (img.width - 224) // 2, (img.height - 224) // 2
    return np.asarray(img.crop((left, top, left + 224, top + 224)))


def test_the_required_corruptions_exist_with_the_papers_tables():
    assert set(REQUIRED) <= set(CORRUPTIONS)
    tables = {
        "gaussian_noise": [(0.08,), (0.12,), (0.18,), (0.26,), (0.38,)],
        "glass_blur": [(0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)],
        "motion_blur": [(10, 3), (15, 5), (15, 8), (15, 12), (20, 15)],
        "defocus_blur": [(3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)],
        "contrast": [(0.4,), (0.3,), (0.2,), (0.1,), (0.05,)],
        "jpeg_compression": [(25,), (18,), (15,), (10,), (7,)],
        "pixelate": [(0.6,), (0.5,), (0.4,), (0.3,), (0.25,)],
    }
    for name, table in tables.items():
        assert list(CORRUPTIONS[name].table) == table, name


# --- the paper's functions at 224 px (hendrycks/robustness, make_imagenet_c.py), seeded with our rng ---


def paper_gaussian_noise(x, c, rng):
    x = np.array(x) / 255.0
    return np.clip(x + rng.normal(size=x.shape, scale=c), 0, 1) * 255


def paper_contrast(x, c):
    x = np.array(x) / 255.0
    means = np.mean(x, axis=(0, 1), keepdims=True)
    return np.clip((x - means) * c + means, 0, 1) * 255


def paper_pixelate(x, c):
    x = Image.fromarray(x)
    x = x.resize((int(224 * c), int(224 * c)), Image.Resampling.BOX)
    return np.asarray(x.resize((224, 224), Image.Resampling.BOX))


def paper_jpeg(x, c):
    output = io.BytesIO()
    Image.fromarray(x).save(output, "JPEG", quality=c)
    return np.asarray(Image.open(output))


def paper_glass_blur(x, c, rng):
    """The paper's loop verbatim (numpy tuple "swap" included); offsets drawn per iteration at once."""
    x = np.uint8(gaussian(np.array(x) / 255.0, sigma=c[0], channel_axis=-1) * 255)
    for _ in range(c[2]):
        rows, cols = range(224 - c[1], c[1], -1), range(224 - c[1], c[1], -1)
        offsets = rng.integers(-c[1], c[1], size=(len(rows), len(cols), 2), dtype=np.int16)
        for i, h in enumerate(rows):
            for j, w in enumerate(cols):
                dx, dy = int(offsets[i, j, 0]), int(offsets[i, j, 1])
                h_prime, w_prime = h + dy, w + dx
                x[h, w], x[h_prime, w_prime] = x[h_prime, w_prime], x[h, w]
    return np.clip(gaussian(x / 255.0, sigma=c[0], channel_axis=-1), 0, 1) * 255


def imagecorruptions_motion_blur(x, radius, sigma, angle):
    """`imagecorruptions`' numpy motion blur (np.roll shifts), the reference for ours."""

    def shift(image, dx, dy):
        if dx < 0:
            shifted = np.roll(image, shift=image.shape[1] + dx, axis=1)
            shifted[:, dx:] = shifted[:, dx - 1 : dx]
        elif dx > 0:
            shifted = np.roll(image, shift=dx, axis=1)
            shifted[:, :dx] = shifted[:, dx : dx + 1]
        else:
            shifted = image
        if dy < 0:
            shifted = np.roll(shifted, shift=image.shape[0] + dy, axis=0)
            shifted[dy:, :] = shifted[dy - 1 : dy, :]
        elif dy > 0:
            shifted = np.roll(shifted, shift=dy, axis=0)
            shifted[:dy, :] = shifted[dy : dy + 1, :]
        return shifted

    width = radius * 2 + 1
    k = np.exp(-(np.arange(width) ** 2) / (2 * sigma**2)) / (np.sqrt(2 * np.pi) * sigma)
    kernel = k / k.sum()
    point = (width * np.sin(np.deg2rad(angle)), width * np.cos(np.deg2rad(angle)))
    hypot = math.hypot(point[0], point[1])
    blurred = np.zeros_like(x, dtype=np.float32)
    for i in range(width):
        dy = -math.ceil(((i * point[0]) / hypot) - 0.5)
        dx = -math.ceil(((i * point[1]) / hypot) - 0.5)
        if np.abs(dy) >= x.shape[0] or np.abs(dx) >= x.shape[1]:
            break
        blurred = blurred + kernel[i] * shift(x, dx, dy)
    return np.clip(blurred, 0, 255)


@pytest.mark.parametrize("severity", [1, 3, 5])
def test_at_224_px_the_deterministic_corruptions_are_the_papers(cat224, severity):
    for name, ref in (("contrast", paper_contrast), ("pixelate", paper_pixelate), ("jpeg_compression", paper_jpeg)):
        (c,) = CORRUPTIONS[name].table[severity - 1]
        assert np.array_equal(corrupt(cat224, name, severity, 0), np.uint8(ref(cat224, c))), name


@pytest.mark.parametrize("severity", [1, 2, 5])
def test_at_224_px_the_random_corruptions_are_the_papers_given_the_same_draws(cat224, severity):
    (c,) = CORRUPTIONS["gaussian_noise"].table[severity - 1]
    ours = corrupt(cat224, "gaussian_noise", severity, seed=11)
    assert np.array_equal(ours, np.uint8(paper_gaussian_noise(cat224, c, np.random.default_rng(11))))
    glass = CORRUPTIONS["glass_blur"].table[severity - 1]
    ours = corrupt(cat224, "glass_blur", severity, seed=11)
    assert np.array_equal(ours, np.uint8(paper_glass_blur(cat224, glass, np.random.default_rng(11))))


@pytest.mark.parametrize("severity", [1, 4])
def test_motion_blur_matches_imagecorruptions_numpy_port(cat224, severity):
    radius, sigma = CORRUPTIONS["motion_blur"].table[severity - 1]
    angle = np.random.default_rng(5).uniform(-45, 45)
    reference = imagecorruptions_motion_blur(cat224.astype(np.float64), radius, sigma, angle)
    ours = corrupt(cat224, "motion_blur", severity, seed=5).astype(int)
    # Ours sums in float64, the reference in float32: at most one grey level apart after truncation.
    assert np.abs(ours - np.uint8(reference).astype(int)).max() <= 1
    assert (ours != np.uint8(reference)).mean() < 0.01


def test_defocus_is_a_normalised_disk_filter_with_reflect_101_borders(cat224):
    kernel = disk_kernel(6, 0.5)
    assert kernel.shape == (17, 17) and kernel.sum() == pytest.approx(1.0)
    assert np.allclose(kernel, kernel.T) and np.allclose(kernel, kernel[::-1, ::-1])
    assert kernel[8, 8] > 0 and kernel[8, 0] < 1e-6  # inside vs beyond radius 6
    x = cat224 / 255.0
    direct = np.stack([correlate(x[:, :, d], kernel, mode="mirror") for d in range(3)], axis=-1)
    ours = corrupt(cat224, "defocus_blur", 3, 0).astype(int)
    assert np.abs(ours - np.uint8(np.clip(direct, 0, 1) * 255).astype(int)).max() <= 1


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_same_seed_same_bytes_and_size_kept(name):
    image = photo()
    first = corrupt_png(image, name, 3, seed=1234)
    assert first == corrupt_png(image, name, 3, seed=1234)
    out = np.asarray(Image.open(io.BytesIO(first)))
    assert out.shape == image.shape and out.dtype == np.uint8
    assert not np.array_equal(out, image)


@pytest.mark.parametrize("name", ["gaussian_noise", "glass_blur", "motion_blur", "impulse_noise", "shot_noise"])
def test_a_different_seed_gives_a_different_image(name):
    image = photo()
    assert corrupt_png(image, name, 2, seed=1) != corrupt_png(image, name, 2, seed=2)


def test_glass_blur_at_severity_2_changes_the_image_measurably_and_keeps_its_size():
    image = photo()
    out = corrupt(image, "glass_blur", 2, seed=0)
    assert out.shape == image.shape == (300, 451, 3)
    diff = np.abs(out.astype(float) - image)
    assert diff.mean() > 4.0  # grey levels; the local shuffle and blur move every edge
    # High frequencies are gone: the Laplacian's energy drops by more than half.
    lap = lambda a: np.abs(np.diff(a.astype(float).mean(2), 2, axis=0)).mean()  # noqa: E731
    assert lap(out) < 0.5 * lap(image)


def test_severity_makes_the_corruption_stronger():
    image = photo()
    for name in REQUIRED:
        distances = [np.abs(corrupt(image, name, s, 0).astype(float) - image).mean() for s in (1, 3, 5)]
        assert distances[0] < distances[1] < distances[2], (name, distances)


def test_pixel_distances_scale_with_the_short_side(cat224):
    """A 448 px image (each pixel doubled) pixelates into the same 56 px grid as its 224 px self."""
    big = cat224.repeat(2, axis=0).repeat(2, axis=1)
    small_out = corrupt(cat224, "pixelate", 5, 0)
    assert np.array_equal(corrupt(big, "pixelate", 5, 0), small_out.repeat(2, axis=0).repeat(2, axis=1))
    # Blurs use sigma * 2 on the doubled image: its blur, shrunk back, is close to the 224 px blur.
    blurred = corrupt(big, "defocus_blur", 3, 0).reshape(224, 2, 224, 2, 3).mean(axis=(1, 3))
    assert np.abs(blurred - corrupt(cat224, "defocus_blur", 3, 0)).mean() < 1.5


def test_unknown_names_and_severities_are_refused_naming_the_valid_ones():
    from annotations.corruptions import UnknownCorruption

    with pytest.raises(UnknownCorruption, match="glass_blur"):
        corruption_get("glas_blur", 2)
    with pytest.raises(UnknownCorruption, match="1, 2, 3, 4, 5"):
        corruption_get("glass_blur", 6)
    with pytest.raises(ValueError, match="uint8"):
        corrupt(np.zeros((10, 10), np.float32), "contrast", 1, 0)


def test_reference_size_is_imagenet_cs_crop():
    assert REFERENCE_SIZE == 224


def test_pure_modules_import_no_django():
    code = (
        "import sys; import annotations.corruptions, annotations.uploads; "
        "bad = [m for m in sys.modules if m == 'django' or m.startswith('django.')]; assert not bad, bad"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
