"""Importing the MIT benchmark layout: per-observer .mat fixations give the same maps as a CSV of
the same fixations; density-only layouts (CAT2000) are scored without an invented ceiling."""
import numpy as np
import pytest
import scipy.io

from analysis.human_data import ImportProblems, human_maps_build, read_import
from tests.analysis.human_data_fixtures import (
    IMAGES,
    fixated_pixels,
    grey_png,
    human_map_naive,
    png_bytes,
    synthetic_fixations,
    write_csv_import,
    write_mit_import,
)

ROWS = synthetic_fixations()


def _by_key(data, recipe=None):
    return {m.image.name.rsplit("/", 1)[-1].split(".")[0]: m for m in human_maps_build(data, recipe)}


@pytest.mark.parametrize("weighting,maps_format", [("none", "PNG"), ("duration", "JPEG")])
def test_the_mit_layout_and_a_csv_of_the_same_fixations_give_the_same_maps(tmp_path, weighting, maps_format):
    options = {"sigma_px": 2.5, "weighting": weighting}
    mit = read_import(write_mit_import(tmp_path / "mit", ROWS, maps_format=maps_format), "mit", options)
    csv = read_import(write_csv_import(tmp_path / "csv", ROWS), "fixations-csv", options)
    assert mit.recipe == csv.recipe
    mit_maps, csv_maps = _by_key(mit), _by_key(csv)
    for key in IMAGES:
        a, b = mit_maps[key], csv_maps[key]
        assert a.participants == b.participants == ("p01", "p02", "p03", "p04")
        assert np.array_equal(a.human_map, b.human_map)  # bit for bit
        assert np.array_equal(a.fixations, b.fixations)
        for participant in a.participants:
            fa, fb = a.image.fixations[participant], b.image.fixations[participant]
            assert np.array_equal(fa.x, fb.x) and np.array_equal(fa.y, fb.y)
            np.testing.assert_allclose(fa.start_ms, fb.start_ms, rtol=1e-12)  # samples at 240 Hz -> ms
            assert np.array_equal(fa.duration_ms, fb.duration_ms)
        np.testing.assert_allclose(a.human_map, human_map_naive(ROWS, key, 2.5, weighting=weighting), rtol=1e-12)
        # the layout's own fixPts map (also as a lossy JPEG, as MIT1003 ships it) is the same set of fixated
        # pixels; its fixMap is kept as given data
        assert np.array_equal(a.image.fixation_map.load(), fixated_pixels(ROWS, key))
        assert a.image.density.load().sum() == pytest.approx(1.0)


def test_zero_based_mat_coordinates_and_another_sample_rate(tmp_path):
    inner = [r for r in ROWS if r["x"] + 1 < IMAGES[r["image"]][0] and r["y"] + 1 < IMAGES[r["image"]][1]]
    root = write_mit_import(tmp_path, inner, sample_rate_hz=1000.0, maps=False)  # the .mat files hold x + 1, y + 1
    data = read_import(root, "mit", {"sigma_px": 2.5, "mat_origin": "zero_based", "mat_sample_rate_hz": 1000})
    as_stored = [{**r, "x": r["x"] + 1, "y": r["y"] + 1} for r in inner]
    for key, maps in _by_key(data).items():
        np.testing.assert_allclose(maps.human_map, human_map_naive(as_stored, key, 2.5), rtol=1e-12)
    beach = data.images[0].fixations["p01"]
    starts = [r["start_ms"] for r in inner if r["image"] == "beach" and r["participant"] == "p01"]
    np.testing.assert_allclose(beach.start_ms, starts, rtol=1e-12)


def test_a_density_only_layout_is_the_human_map_with_no_ceiling(tmp_path):
    """CAT2000's layout: Stimuli/<category>/<n>.jpg, FIXATIONMAPS/<category>/<n>.jpg (density) and
    FIXATIONLOCS/<category>/<n>.mat (fixLocs, binary)."""
    root = tmp_path / "trainSet"
    density = np.random.default_rng(3).random((32, 48))
    locs = np.zeros((32, 48), dtype=np.uint8)
    locs[[3, 10, 20], [5, 30, 47]] = 1
    for folder in ("Stimuli/Action", "FIXATIONMAPS/Action", "FIXATIONLOCS/Action"):
        (root / folder).mkdir(parents=True)
    (root / "Stimuli/Action/001.png").write_bytes(png_bytes(48, 32))
    (root / "FIXATIONMAPS/Action/001.png").write_bytes(grey_png(density))
    scipy.io.savemat(root / "FIXATIONLOCS/Action/001.mat", {"fixLocs": locs})
    (root / "readme.txt").write_text("CAT2000")
    data = read_import(tmp_path, "mit", {})
    assert data.recipe is None and [i.kind for i in data.images] == ["density"]
    assert data.notes == ["1 file not read (not in a STIMULI, FIXATIONMAPS, FIXATIONLOCS or DATA/<observer> folder, "
                          "or not a file type read there): trainSet/readme.txt"]
    (maps,) = human_maps_build(data)
    expected = np.round(density * 255) / 255
    np.testing.assert_allclose(maps.human_map, expected / expected.sum(), rtol=1e-12)
    assert maps.participants == () and np.array_equal(maps.fixations, locs == 1)
    assert "no split-half ceiling or floor exists" in maps.no_ceiling
    with pytest.raises(ValueError, match="no split-half ceiling"):
        maps.stack()


def test_observer_fixations_need_a_sigma_but_maps_alone_do_not(tmp_path):
    with pytest.raises(ImportProblems) as excinfo:
        read_import(write_mit_import(tmp_path, ROWS), "mit", {})
    assert [(p["file"], p["field"]) for p in excinfo.value.problems] == [("options", "sigma_px")]
    assert "ALLSTIMULI/beach.png holds fixations" in excinfo.value.problems[0]["problem"]


def test_raw_mit1003_eye_data_is_refused_with_the_reason(tmp_path):
    root = write_mit_import(tmp_path, ROWS, maps=False)
    raw = {"street": {"DATA": {"eyeData": np.random.default_rng(0).random((500, 2)) * 30}}}
    scipy.io.savemat(root / "DATA" / "p01" / "street.mat", raw)
    with pytest.raises(ImportProblems) as excinfo:
        read_import(root, "mit", {"sigma_px": 2.5})
    (problem,) = excinfo.value.problems
    assert problem["file"] == "DATA/p01/street.mat" and problem["field"] == "fixations"
    assert "raw eye-tracker samples (DATA.eyeData) but no fixations" in problem["problem"]


def test_bad_mit_files_are_all_listed(tmp_path):
    root = write_mit_import(tmp_path, ROWS)
    (root / "ALLFIXATIONMAPS" / "street_fixMap.png").write_bytes(grey_png(np.ones((10, 10)) * 0.5))  # wrong size
    (root / "ALLFIXATIONMAPS" / "beach_fixPts.png").write_bytes(b"not a png")
    (root / "DATA" / "p09").mkdir()
    scipy.io.savemat(root / "DATA" / "p09" / "moon.mat", {"fixations": np.array([[1.0, 1.0]])})  # unknown image
    scipy.io.savemat(root / "DATA" / "p02" / "street.mat", {"fixations": np.array([[1.0, 1.0], [49.5, 2]]),
                                                            "durations": np.array([100.0, -1.0])})
    scipy.io.savemat(root / "DATA" / "p03" / "beach.mat", {"fixations": np.array([[1.0, 1.0], [41.0, 2]])})
    with pytest.raises(ImportProblems) as excinfo:
        read_import(root, "mit", {"sigma_px": 2.5})
    found = {(p["file"], p["row"], p["field"]): p["problem"] for p in excinfo.value.problems}
    assert set(found) == {
        ("ALLFIXATIONMAPS/street_fixMap.png", None, None), ("ALLFIXATIONMAPS/beach_fixPts.png", None, None),
        ("DATA/p09/moon.mat", None, None), ("DATA/p02/street.mat", 2, "durations"), ("DATA/p03/beach.mat", 2, "x"),
    }
    assert "the map is 10x10 px (width x height); its image ALLSTIMULI/street.png is 48x32" in found[
        ("ALLFIXATIONMAPS/street_fixMap.png", None, None)]
    assert "x in [0, 40)" in found[("DATA/p03/beach.mat", 2, "x")]  # 41 (1-based) is x = 40: outside
