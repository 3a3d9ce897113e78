"""Importing maps per participant or per image (PNG, .npy, .mat): the human map is the mean of the
participants' normalised maps; a density map alone has no ceiling; bad maps are all listed."""
import numpy as np
import pytest
import scipy.io
from PIL import Image

from analysis.human_data import ImportProblems, human_maps_build, read_import
from analysis.split_half import ceiling_and_floor
from tests.analysis.human_data_fixtures import (
    IMAGES,
    grey_png,
    image_files,
    map_write,
    random_maps,
    write_maps_import,
)

MAPS = random_maps()


def _by_key(data):
    return {m.image.name.rsplit("/", 1)[-1].split(".")[0]: m for m in human_maps_build(data)}


def _expected(key, normalise="sum", scale=lambda v: v):
    maps = [scale(MAPS[(p, key)]) for p in sorted({p for p, k in MAPS if k == key})]
    if normalise == "sum":
        maps = [m / m.sum() for m in maps]
    return np.mean(maps, axis=0)


@pytest.mark.parametrize("ext", [".npy", ".mat", ".png"])
def test_participant_maps_average_to_the_human_map(tmp_path, ext):
    data = read_import(write_maps_import(tmp_path, MAPS, ext=ext), "maps", {})
    assert data.recipe is None and {i.kind for i in data.images} == {"participant_maps"}
    scale = (lambda v: np.round(v / v.max() * 65535) / 65535) if ext == ".png" else (lambda v: v)
    built = _by_key(data)
    for key, (width, height) in IMAGES.items():
        assert built[key].human_map.shape == (height, width)
        np.testing.assert_allclose(built[key].human_map, _expected(key, scale=scale), rtol=1e-12)
        assert built[key].participants == ("p01", "p02", "p03", "p04") and built[key].no_ceiling is None
        assert "no fixation map" in built[key].no_fixation_ceiling
    # the map metrics' split-half ceiling exists: participants can be split
    result = ceiling_and_floor(built["street"].stack(), [built["beach"].stack()], repetitions=4,
                               rng=np.random.default_rng(0))
    assert np.isfinite(result.summary("pcc")["ceiling"]) and "nss" not in result.ceiling


def test_maps_kept_as_given_and_a_fixation_map_for_nss(tmp_path):
    root = write_maps_import(tmp_path, MAPS)
    (root / "fixations").mkdir()
    fixated = np.zeros((32, 48))
    fixated[4, 7] = fixated[20, 40] = 1
    (root / "fixations" / "street.png").write_bytes(grey_png(fixated))
    data = read_import(root, "maps", {"maps_normalise": "none"})
    built = _by_key(data)
    np.testing.assert_allclose(built["street"].human_map, _expected("street", normalise="none"), rtol=1e-12)
    assert np.array_equal(built["street"].fixations, fixated > 0)
    assert "no split-half ceiling" in built["street"].no_fixation_ceiling
    assert built["beach"].fixations is None


def test_a_density_map_per_image_without_participants(tmp_path):
    (tmp_path / "stimuli").mkdir()
    (tmp_path / "maps").mkdir()
    for key, data in image_files().items():
        (tmp_path / "stimuli" / f"{key}.png").write_bytes(data)
        np.save(tmp_path / "maps" / f"{key}.npy", MAPS[("p01", key)] * 7)
    data = read_import(tmp_path, "maps", {})
    for key, maps in _by_key(data).items():
        assert maps.image.kind == "density" and maps.participants == ()
        np.testing.assert_allclose(maps.human_map, MAPS[("p01", key)] / MAPS[("p01", key)].sum(), rtol=1e-12)
        assert "no per-participant data" in maps.no_ceiling


def test_every_bad_map_is_listed(tmp_path):
    root = write_maps_import(tmp_path, MAPS)
    folder = root / "participants" / "p05"
    folder.mkdir()
    np.save(folder / "street.npy", np.ones((10, 10)))  # wrong size
    np.save(folder / "beach.npy", -np.ones((56, 40)))  # negative
    np.save(folder / "moon.npy", np.ones((5, 5)))  # unknown image
    red = np.zeros((56, 40, 3), np.uint8)
    red[..., 0] = 255
    Image.fromarray(red).save(folder / "beach.png")  # a colour map (and p05's second map of beach)
    (root / "participants" / "p06").mkdir()
    map_write(root / "participants" / "p06" / "street.mat", np.ones((32, 48)))
    scipy.io.savemat(root / "participants" / "p06" / "beach.mat", {"a": np.ones((56, 40)), "b": np.ones((56, 40))})
    (root / "participants" / "p06" / "street.npy").write_bytes(b"\x93NUMPY garbage")
    (root / "maps").mkdir()
    np.save(root / "maps" / "street.npy", np.zeros((32, 48)))
    with pytest.raises(ImportProblems) as excinfo:
        read_import(root, "maps", {})
    found = {p["file"]: p["problem"] for p in excinfo.value.problems}
    assert set(found) == {"participants/p05/street.npy", "participants/p05/beach.npy", "participants/p05/moon.npy",
                          "participants/p05/beach.png", "participants/p06/beach.mat", "participants/p06/street.npy",
                          "maps/street.npy"}
    assert "its image stimuli/street.png is 48x32" in found["participants/p05/street.npy"]
    assert "negative values" in found["participants/p05/beach.npy"]
    assert "unknown image 'moon'" in found["participants/p05/moon.npy"]
    assert "in colour" in found["participants/p05/beach.png"]
    assert "one 2-D numeric variable" in found["participants/p06/beach.mat"]
    assert "a second map of participant 'p06'" in found["participants/p06/street.npy"]
    assert "zero everywhere" in found["maps/street.npy"]


def test_options_of_other_formats_are_refused(tmp_path):
    with pytest.raises(ImportProblems) as excinfo:
        read_import(write_maps_import(tmp_path, MAPS), "maps", {"sigma_px": 3, "columns": {}})
    assert {p["field"]: p["problem"] for p in excinfo.value.problems} == {
        "columns": "is not an option of the maps format; only the fixations-csv format takes it",
        "sigma_px": "is not an option of the maps format; only the fixations-csv and mit formats take it",
    }
