"""Importing a fixations CSV: maps by the recipe, degrees and screen coordinates, matching the
study's stimuli, every bad input listed at once, and bounded work."""
import io
import math
import zipfile

import numpy as np
import pytest

from analysis.human_data import ImportLimits, ImportProblems, KnownStimulus, human_maps_build, read_import
from analysis.recipes import fixation_counts
from annotations.task_params import px_per_degree
from tests.analysis.human_data_fixtures import (
    IMAGES,
    csv_bytes,
    fixated_pixels,
    human_map_naive,
    image_files,
    png_bytes,
    synthetic_fixations,
    write_csv_import,
)

ROWS = synthetic_fixations()


def _maps(data, recipe=None):
    return {m.image.name.rsplit("/", 1)[-1].split(".")[0]: m for m in human_maps_build(data, recipe)}


def _problems(excinfo):
    return [(p["file"], p["row"], p["field"]) for p in excinfo.value.problems]


def test_a_csv_with_its_images_gives_the_recipe_maps(tmp_path):
    data = read_import(write_csv_import(tmp_path, ROWS), "fixations-csv", {"sigma_px": 3.5})
    assert data.recipe == {"kind": "gaussian_points", "points": "fixations", "sigma_px": 3.5, "weighting": "none",
                           "version": 1}
    assert sorted((i.name, i.width, i.height, i.kind) for i in data.images) == [
        ("stimuli/beach.png", 40, 56, "fixations"), ("stimuli/street.png", 48, 32, "fixations")]
    assert all(len(i.sha256) == 64 and i.read_bytes() == image_files()[i.name[8:-4]] for i in data.images)
    maps = _maps(data)
    for key, (width, height) in IMAGES.items():
        built = maps[key]
        assert built.participants == ("p01", "p02", "p03", "p04")
        assert built.human_map.shape == (height, width)
        np.testing.assert_allclose(built.human_map, human_map_naive(ROWS, key, 3.5), rtol=1e-12, atol=1e-15)
        mine = [(r["x"], r["y"]) for r in ROWS if r["image"] == key]
        assert np.array_equal(built.fixations, fixation_counts(mine, height, width))
        assert np.array_equal(built.fixations > 0, fixated_pixels(ROWS, key))
        assert built.no_ceiling is None and built.no_fixation_ceiling is None
        assert built.stack().n == 4 and built.stack().fixations.shape == (4, height, width)


def test_duration_weighting_weighs_each_gaussian_by_its_duration(tmp_path):
    data = read_import(write_csv_import(tmp_path, ROWS), "fixations-csv", {"sigma_px": 3.5, "weighting": "duration"})
    maps = _maps(data)
    for key in IMAGES:
        np.testing.assert_allclose(maps[key].human_map, human_map_naive(ROWS, key, 3.5, weighting="duration"),
                                   rtol=1e-12, atol=1e-15)
        assert all(m.density.sum() == pytest.approx(1.0) for m in maps[key].participant_maps)
        assert not np.allclose(maps[key].human_map, human_map_naive(ROWS, key, 3.5))


def test_sigma_in_degrees_uses_the_screen_geometry(tmp_path):
    screen = {"width_px": 1920, "width_cm": 53.0, "viewing_distance_cm": 60}
    data = read_import(write_csv_import(tmp_path, ROWS), "fixations-csv", {"sigma_deg": 0.1, "screen": screen})
    per_degree = px_per_degree(1920 / 53.0, 60)  # the platform's one conversion
    maps = _maps(data)
    assert maps["street"].participant_maps[0].sigma_px == pytest.approx(0.1 * per_degree, rel=1e-12)
    np.testing.assert_allclose(maps["street"].human_map, human_map_naive(ROWS, "street", 0.1 * per_degree),
                               rtol=1e-12, atol=1e-15)


def test_screen_coordinates_map_to_image_pixels_and_scale_sigma(tmp_path):
    """Each image shown at twice its size with its top-left at (100, 50): screen px -> image px is
    (s - offset) / 2, and a sigma in degrees is half as many image px as screen px."""
    header = ("participant", "image", "x", "y", "start_ms", "duration_ms", "image_left", "image_top", "image_width",
              "image_height")
    screen_rows = [{**r, "x": 100 + 2 * r["x"], "y": 50 + 2 * r["y"], "image_left": 100.0, "image_top": 50.0,
                    "image_width": 2.0 * IMAGES[r["image"]][0], "image_height": 2.0 * IMAGES[r["image"]][1]}
                   for r in ROWS]
    write_csv_import(tmp_path, screen_rows, header=header)
    screen = {"px_per_cm": 40.0, "viewing_distance_cm": 57}
    data = read_import(tmp_path, "fixations-csv", {"sigma_deg": 0.2, "screen": screen, "coordinates": "screen"})
    sigma = 0.2 * px_per_degree(40.0, 57) / 2
    maps = _maps(data)
    for key in IMAGES:
        np.testing.assert_allclose(maps[key].human_map, human_map_naive(ROWS, key, sigma), rtol=1e-12, atol=1e-15)
        assert np.array_equal(maps[key].fixations > 0, fixated_pixels(ROWS, key))


def test_an_eyelink_style_export_maps_its_columns(tmp_path):
    rename = {"participant": "RECORDING_SESSION_LABEL", "image": "imagefile", "x": "CURRENT_FIX_X",
              "y": "CURRENT_FIX_Y", "start_ms": "CURRENT_FIX_START", "duration_ms": "CURRENT_FIX_DURATION"}
    (tmp_path / "stimuli").mkdir()
    for key, data in image_files().items():
        (tmp_path / "stimuli" / f"{key}.png").write_bytes(data)
    (tmp_path / "export.csv").write_bytes(csv_bytes(ROWS, delimiter="\t", rename=rename))
    data = read_import(tmp_path, "fixations-csv", {"sigma_px": 3.5, "columns": rename})
    np.testing.assert_allclose(_maps(data)["beach"].human_map, human_map_naive(ROWS, "beach", 3.5), rtol=1e-12)


def test_images_already_in_the_study_are_matched_by_name_stem_or_sha256(tmp_path):
    files = image_files()
    import hashlib
    stimuli = [KnownStimulus("17", "street.png", hashlib.sha256(files["street"]).hexdigest(), 48, 32),
               KnownStimulus("18", "beach.jpg", hashlib.sha256(files["beach"]).hexdigest(), 40, 56)]
    rows = [{**r, "image": r["image"] if r["image"] == "beach" else stimuli[0].sha256} for r in ROWS]
    (tmp_path / "f.csv").write_bytes(csv_bytes(rows, image_suffix=""))
    data = read_import(tmp_path / "f.csv", "fixations-csv", {"sigma_px": 3.5}, stimuli=stimuli)
    assert sorted((i.stimulus, i.name, i.sha256 == s.sha256, i.read_bytes) for i, s in
                  zip(sorted(data.images, key=lambda i: i.stimulus), stimuli)) == [
        ("17", "street.png", True, None), ("18", "beach.jpg", True, None)]
    maps = {m.image.stimulus: m for m in human_maps_build(data)}
    np.testing.assert_allclose(maps["17"].human_map, human_map_naive(ROWS, "street", 3.5), rtol=1e-12)


def test_an_uploaded_zip_is_read_under_the_upload_rules():
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("fixations.csv", csv_bytes(ROWS))
        for key, data in image_files().items():
            z.writestr(f"{key}.png", data)
        z.writestr("__MACOSX/._street.png", b"junk")
    data = read_import({"upload.zip": archive.getvalue()}, "fixations-csv", {"sigma_px": 3.5})
    assert sorted(i.name for i in data.images) == ["beach.png", "street.png"]
    unsafe = io.BytesIO()
    with zipfile.ZipFile(unsafe, "w") as z:
        z.writestr("../fixations.csv", csv_bytes(ROWS))
    with pytest.raises(ImportProblems, match=r"a '\.\.' part"):
        read_import({"upload.zip": unsafe.getvalue()}, "fixations-csv", {"sigma_px": 3.5})


def test_every_problem_is_listed_at_once_with_file_row_and_field(tmp_path):
    write_csv_import(tmp_path, ROWS[:3])
    text = (tmp_path / "fixations.csv").read_text().splitlines()
    text += [
        "p09,moon.png,1,1,0,100",  # line 5: unknown image
        "p09,moon.png,2,2,0,100",  # line 6: the same unknown image (one problem, counted)
        "p09,street.png,48,3,0,100",  # line 7: x == width is outside
        "p09,street.png,abc,3,0,100",  # line 8: not a number
        "p09,street.png,1.5,2,0,-4",  # line 9: a negative duration
        ",street.png,1,2,0,100",  # line 10: no participant
        "p09,street.png,1,1,0,1e999",  # line 11: an infinite duration
        "p09,beach.png,\"3,5\",2,0,100",  # line 12: a decimal comma
    ]
    (tmp_path / "fixations.csv").write_text("\n".join(text) + "\n")
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "stimuli" / "unused.png").write_bytes(png_bytes(16, 16, seed=9))
    with pytest.raises(ImportProblems) as excinfo:
        read_import(tmp_path, "fixations-csv", {"sigma_px": 3.5})
    assert sorted(_problems(excinfo), key=str) == sorted([
        ("fixations.csv", 5, "image"), ("fixations.csv", 7, "x"), ("fixations.csv", 8, "x"),
        ("fixations.csv", 9, "duration_ms"), ("fixations.csv", 10, "participant"),
        ("fixations.csv", 11, "duration_ms"), ("fixations.csv", 12, "x"),
        ("stimuli/unused.png", None, None),  # no fixation names it
    ], key=str)
    text = {(p["row"]): p["problem"] for p in excinfo.value.problems}
    assert "unknown image 'moon.png'" in text[5] and "(in 2 rows, the first shown)" in text[5]
    assert "outside the image stimuli/street.png (48x32 px" in text[7]
    assert "use '.' as the decimal mark" in text[12]
    assert text[None] == "no fixations or maps of the import name this image"
    assert excinfo.value.total == 8


def test_missing_columns_and_options_are_named(tmp_path):
    (tmp_path / "f.csv").write_text("participant,picture,x\np1,a.png,3\n")
    with pytest.raises(ImportProblems) as excinfo:
        read_import(tmp_path / "f.csv", "fixations-csv", {"sigma_px": 3, "weighting": "duration"})
    assert sorted(_problems(excinfo), key=str) == sorted(
        [("f.csv", 1, "image"), ("f.csv", 1, "y"), ("f.csv", 1, "duration_ms")], key=str)
    with pytest.raises(ImportProblems) as excinfo:
        read_import(tmp_path / "f.csv", "fixations-csv", {"sigma_deg": 1, "maps_normalise": "sum", "outside": "x"})
    assert sorted(p["field"] for p in excinfo.value.problems) == ["maps_normalise", "outside", "sigma_deg"]
    with pytest.raises(ImportProblems, match="fixations need the Gaussian's sigma") as excinfo:
        read_import(write_csv_import(tmp_path / "ok", ROWS), "fixations-csv", {})
    assert excinfo.value.total == 1
    with pytest.raises(ImportProblems, match="unknown format"):
        read_import(tmp_path, "eyelink", {})


def test_outside_fixations_can_be_dropped_and_counted(tmp_path):
    rows = ROWS + [{**ROWS[0], "x": -3.0}, {**ROWS[0], "y": 99.0}, {**ROWS[0], "x": math.nan}]
    write_csv_import(tmp_path, rows)
    with pytest.raises(ImportProblems) as excinfo:
        read_import(tmp_path, "fixations-csv", {"sigma_px": 3.5})
    assert excinfo.value.total == 3
    data = read_import(tmp_path, "fixations-csv", {"sigma_px": 3.5, "outside": "drop"})
    assert data.summary()["dropped_fixations"] == 3
    np.testing.assert_allclose(_maps(data)["beach"].human_map, human_map_naive(ROWS, "beach", 3.5), rtol=1e-12)


def test_drop_first_fixation_drops_each_participants_first_in_time(tmp_path):
    shuffled = ROWS[::-1]  # file order is not time order: start_ms decides
    write_csv_import(tmp_path, shuffled)
    data = read_import(tmp_path, "fixations-csv", {"sigma_px": 3.5, "drop_first_fixation": True})
    kept = [r for r in ROWS if r["start_ms"] != 0]
    assert sum(len(f) for i in data.images for f in i.fixations.values()) == len(kept)
    np.testing.assert_allclose(_maps(data)["street"].human_map, human_map_naive(kept, "street", 3.5), rtol=1e-12)


def test_a_long_csv_stops_at_the_row_limit(tmp_path):
    write_csv_import(tmp_path, ROWS)
    limits = ImportLimits(max_rows=10)
    with pytest.raises(ImportProblems) as excinfo:
        read_import(tmp_path, "fixations-csv", {"sigma_px": 3.5}, limits=limits)
    assert [(p["row"], p["problem"][:27]) for p in excinfo.value.problems] == [(12, "more than 10 fixation rows;")]
    with pytest.raises(ImportProblems, match="'p04' has 7 fixations on stimuli/beach.png; the limit is 5") as excinfo:
        read_import(tmp_path, "fixations-csv", {"sigma_px": 3.5}, limits=ImportLimits(max_fixations_per_map=5))
    assert excinfo.value.total == 3
    # bad rows count too: a file of bad rows costs no more than max_rows rows
    (tmp_path / "fixations.csv").write_text("participant,image,x,y\n" + "p1,street.png,abc,1\n" * 50)
    with pytest.raises(ImportProblems) as excinfo:
        read_import(tmp_path, "fixations-csv", {"sigma_px": 3.5}, limits=limits)
    assert excinfo.value.total == 11 and excinfo.value.problems[-1]["row"] == 12


def test_a_csv_that_is_not_utf8_or_has_a_huge_line_is_refused_where_it_breaks(tmp_path):
    write_csv_import(tmp_path, ROWS[:4])
    good = (tmp_path / "fixations.csv").read_bytes()
    (tmp_path / "fixations.csv").write_bytes(good + b"p1,street.png,1,1,0,10\n" + "p\xe9,street.png\n".encode("latin-1"))
    with pytest.raises(ImportProblems, match="not UTF-8"):
        read_import(tmp_path, "fixations-csv", {"sigma_px": 3.5})
    (tmp_path / "fixations.csv").write_bytes(good + b"p1," + b"9" * 200 + b"\n")
    with pytest.raises(ImportProblems, match="a line is over 100 characters"):
        read_import(tmp_path, "fixations-csv", {"sigma_px": 3.5}, limits=ImportLimits(max_line_chars=100))


def test_links_inside_a_folder_are_refused(tmp_path):
    write_csv_import(tmp_path / "export", ROWS)
    (tmp_path / "secret.txt").write_text("not for the import")
    (tmp_path / "export" / "stimuli" / "link.png").symlink_to(tmp_path / "secret.txt")
    (tmp_path / "export" / "elsewhere").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(ImportProblems) as excinfo:
        read_import(tmp_path / "export", "fixations-csv", {"sigma_px": 3.5})
    assert sorted((p["file"], p["problem"]) for p in excinfo.value.problems) == [
        ("elsewhere", "is a symbolic link; only regular files are read"),
        ("stimuli/link.png", "is a symbolic link; only regular files are read")]


def test_each_participants_raw_fixations_are_a_json_payload_the_recipe_rebuilds_from(tmp_path):
    """What a later step stores per participant and image: JSON (no NaN), rebuilt bit for bit."""
    import json

    from analysis.recipes import participant_map

    write_csv_import(tmp_path, ROWS, header=("participant", "image", "x", "y"))  # no times at all
    data = read_import(tmp_path, "fixations-csv", {"sigma_px": 3.5})
    (built,) = [m for m in human_maps_build(data) if m.image.name == "stimuli/street.png"]
    payload = json.loads(json.dumps(built.image.fixations["p02"].payload(), allow_nan=False))
    assert payload["px_per_degree"] is None and all(f[2] is None and f[3] is None for f in payload["fixations"])
    rebuilt = participant_map(payload, data.recipe, height=32, width=48)
    assert np.array_equal(rebuilt.density, built.participant_maps[1].density)
