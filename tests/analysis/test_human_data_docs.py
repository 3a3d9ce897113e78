"""docs/import.md's worked fixations-csv example, run as written: the numbers it states hold."""
import json
import re
from pathlib import Path

import numpy as np
import pytest

from analysis.human_data import human_maps_build, read_import
from tests.analysis.human_data_fixtures import png_bytes

DOC = (Path(__file__).resolve().parents[2] / "docs" / "import.md").read_text()
SECTION = DOC.split("### Worked example: fixations-csv", 1)[1].split("## Format `mit`", 1)[0]
CSVS = re.findall(r"```csv\n(.*?)```", SECTION, re.S)
JSONS = re.findall(r"```json\n(.*?)```", SECTION, re.S)


def _export(tmp_path, csv_text, beach=True):
    (tmp_path / "stimuli").mkdir()
    (tmp_path / "stimuli" / "street.jpg").write_bytes(png_bytes(1024, 768, seed=1))  # PNG bytes: any format works
    if beach:
        (tmp_path / "stimuli" / "beach.jpg").write_bytes(png_bytes(768, 1024, seed=2))
    (tmp_path / "fixations.csv").write_text(csv_text)
    return tmp_path


def test_the_worked_example_gives_the_stated_sigma_and_participants(tmp_path):
    options = json.loads(JSONS[0])
    data = read_import(_export(tmp_path, CSVS[0]), "fixations-csv", options)
    maps = {m.image.name: m for m in human_maps_build(data)}
    assert "**37.94 px**" in SECTION
    assert maps["stimuli/street.jpg"].participant_maps[0].sigma_px == pytest.approx(37.94, abs=0.005)
    assert maps["stimuli/street.jpg"].participants == ("s01", "s02")
    assert maps["stimuli/beach.jpg"].participants == ("s02",)
    assert len(maps["stimuli/street.jpg"].image.fixations["s01"]) == 2


def test_the_screen_coordinates_example_lands_where_stated(tmp_path):
    options = {**json.loads(JSONS[0]), "coordinates": "screen"}
    data = read_import(_export(tmp_path, CSVS[1], beach=False), "fixations-csv", options)
    (street,) = [i for i in data.images if i.fixations]
    fixations = street.fixations["s01"]
    assert (fixations.x[0], fixations.y[0]) == (512.0, 384.0)
    (maps,) = [m for m in human_maps_build(data) if m.image is street]
    assert "30.35 image px" in SECTION
    assert maps.participant_maps[0].sigma_px == pytest.approx(30.35, abs=0.005)
    assert np.unravel_index(maps.human_map.argmax(), maps.human_map.shape) in {(383, 511), (384, 512), (383, 512), (384, 511)}
