"""export_human_maps writes what a training script needs; the Dataset reads it back in every format."""
import csv
import json

import numpy as np
import pytest
import torch
from django.core.management import CommandError, call_command
from PIL import Image

from analysis import services
from analysis.models import HumanMap
from explain.finetune.dataset import HumanMapDataset

pytestmark = pytest.mark.django_db


def test_export_in_every_format_and_the_dataset_reads_it(scored_study, tmp_path):
    maps = {(m.stimulus_id, m.task_kind): m for m in HumanMap.objects.filter(stimulus__study=scored_study)}
    for fmt in ("npy", "npz", "png"):
        out = tmp_path / fmt
        call_command("export_human_maps", scored_study.slug, "--out", str(out), "--format", fmt)
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["format"] == fmt and len(manifest["entries"]) == 5 * 2  # stimuli x kinds
        spearman = manifest["study_ceiling"]["bubble"]["spearman"]
        assert spearman["n_stimuli"] == 4 and spearman["ceiling_ci"][0] <= spearman["ceiling"] <= spearman["ceiling_ci"][1]
        lines = list(csv.DictReader((out / "manifest.csv").open()))
        assert [int(r["stimulus_id"]) for r in lines] == [e["stimulus_id"] for e in manifest["entries"]]
        for entry in manifest["entries"]:
            stimulus = scored_study.stimuli.get(pk=entry["stimulus_id"])
            assert Image.open(out / entry["image"]).size == (stimulus.width, stimulus.height)
            assert entry["class_index"] == stimulus.class_index and entry["class_name"] == stimulus.class_name
            if not entry["has_map"]:
                assert entry["name"] == "motorcycle_left.png" and entry["n_participants"] == 0 and entry["map"] is None
                continue
            human_map = maps[(stimulus.pk, entry["task_kind"])]
            mean = services.human_map_mean(human_map)
            assert entry["n_participants"] == human_map.n_participants == 4
            assert entry["recipe"]["kind"] == human_map.recipe["kind"] and set(entry["ceiling"]) >= {"pcc", "spearman"}
            assert entry["source_stimulus_id"] == stimulus.source_id
            if fmt == "npy":
                stored = np.load(out / entry["map"])
                assert stored.dtype == np.float32 and stored.shape == (stimulus.height, stimulus.width)
                assert np.array_equal(stored, mean.astype(np.float32))
            elif fmt == "npz":
                with np.load(out / entry["map"]) as archive:
                    assert np.array_equal(archive["human_map"], mean.astype(np.float32))
                    if entry["task_kind"] == "bubble":
                        assert np.array_equal(archive["fixations"], services.human_map_fixations(human_map))
            else:
                restored = np.asarray(Image.open(out / entry["map"]), dtype=np.float64) / 65535 * entry["png_scale"]
                assert np.abs(restored - mean).max() <= entry["png_scale"] / 65535
            if entry["task_kind"] == "bubble" and fmt != "npz":
                fixations = np.load(out / entry["fixations"]) if fmt == "npy" else np.asarray(Image.open(out / entry["fixations"])) > 0
                assert np.array_equal(fixations, services.human_map_fixations(human_map))
            if entry["task_kind"] == "paint":
                assert entry["fixations"] is None

        with pytest.raises(ValueError, match="task kinds"):
            HumanMapDataset(out)
        data = HumanMapDataset(out, task_kind="bubble", size=64)
        assert len(data) == 5
        batch = next(iter(torch.utils.data.DataLoader(data, batch_size=5)))
        assert batch["image"].shape == (5, 3, 64, 64) and batch["human_map"].shape == (5, 1, 64, 64)
        assert sorted(batch["has_map"].tolist()) == [0.0, 1.0, 1.0, 1.0, 1.0]
        labels = {e["stimulus_id"]: e["class_index"] for e in manifest["entries"]}
        assert batch["label"].tolist() == [labels[int(s)] for s in batch["stimulus_id"]]
        unmapped = batch["has_map"] == 0
        assert batch["human_map"][unmapped].abs().sum() == 0 and (batch["human_map"][~unmapped].sum(dim=(1, 2, 3)) > 0).all()
        assert len(HumanMapDataset(out, task_kind="paint", include_unmapped=False)) == 4


def test_export_refuses_unknown_study_kind_and_format(scored_study, tmp_path):
    with pytest.raises(CommandError, match="no study"):
        call_command("export_human_maps", "nope", "--out", str(tmp_path))
    with pytest.raises(CommandError, match="task kind"):
        call_command("export_human_maps", scored_study.slug, "--out", str(tmp_path), "--task-kind", "mouse")
    with pytest.raises(CommandError):
        call_command("export_human_maps", scored_study.slug, "--out", str(tmp_path), "--format", "tiff")


def test_export_responses_command(scored_study, tmp_path):
    from annotations.models import Response

    call_command("export_responses", scored_study.slug, "--out", str(tmp_path / "r.jsonl"))
    lines = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert len(lines) == Response.objects.filter(trial__stimulus__study=scored_study).count()
    call_command("export_responses", scored_study.slug, "--out", str(tmp_path / "r.csv"), "--format", "csv")
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert [int(r["response_id"]) for r in rows] == [line["response_id"] for line in lines]
    with pytest.raises(CommandError, match="no study"):
        call_command("export_responses", "nope", "--out", str(tmp_path / "x"))
