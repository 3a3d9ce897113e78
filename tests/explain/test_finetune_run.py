"""A fine-tuning run: control and aligned copies, checkpoints that resume, the result on held-out images."""
import json

import pytest
import torch
from torch import nn

from explain.finetune import CheckpointMismatch, FinetuneParams, InvalidFinetuneParams, finetune_run
from explain.finetune.digits import digits_data, digits_net
from explain.finetune.run import headline
from explain.zoo import SplitNet
from tests.explain.finetune_support import export_write

SMALL = {"epochs": 3, "batch_size": 32, "learning_rate": 1e-3, "bootstrap_resamples": 200, "validation_fraction": 0.25}


@pytest.fixture(autouse=True)
def _one_thread():
    """One thread: on a shared 2-core machine two threads ran several times slower, and the weights
    compared bit for bit below come from one process anyway."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _weights(path):
    return torch.load(path, weights_only=True)


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class Stop(Exception):
    pass


def test_an_interrupted_run_resumes_from_its_checkpoint_and_ends_with_the_same_weights(tmp_path):
    data = digits_data(0, count=240)
    whole = finetune_run(data, lambda: digits_net(0), SMALL, out_dir=tmp_path / "whole", device="cpu")

    def stop_after_first_epoch(event):
        if event["stage"] == "checkpoint" and event["run"] == "aligned" and event["epoch"] == 1:
            raise Stop

    with pytest.raises(Stop):
        finetune_run(data, lambda: digits_net(0), SMALL, out_dir=tmp_path / "cut", device="cpu", progress=stop_after_first_epoch)
    assert not (tmp_path / "cut" / "result.json").exists() and (tmp_path / "cut" / "aligned" / "checkpoint.pt").exists()
    events = []
    again = finetune_run(data, lambda: digits_net(0), SMALL, out_dir=tmp_path / "cut", device="cpu", progress=events.append)
    trained = {(e["run"], e["epoch"]) for e in events if e["stage"] == "train"}
    assert trained == {("aligned", 2), ("aligned", 3)}  # control finished before, aligned epoch 1 kept
    for run in ("control", "aligned"):
        assert _same(_weights(tmp_path / "whole" / run / "model.pt"), _weights(tmp_path / "cut" / run / "model.pt"))
    assert again["models"] == whole["models"] and again["differences"] == whole["differences"]
    assert [h["loss"] for h in again["training"]["aligned"]] == [h["loss"] for h in whole["training"]["aligned"]]


def test_the_control_is_the_same_training_without_the_alignment_term(tmp_path):
    data = digits_data(1, count=160)
    params = {**SMALL, "epochs": 2}
    finetune_run(data, lambda: digits_net(1), params, out_dir=tmp_path / "a", device="cpu")
    finetune_run(data, lambda: digits_net(1), {**params, "alignment_weight": 0.0}, out_dir=tmp_path / "b", device="cpu")
    control = _weights(tmp_path / "a" / "control" / "model.pt")
    assert _same(control, _weights(tmp_path / "b" / "control" / "model.pt"))  # lambda does not touch the control
    assert _same(control, _weights(tmp_path / "b" / "aligned" / "model.pt"))  # lambda 0 is the control
    assert not _same(control, _weights(tmp_path / "a" / "aligned" / "model.pt"))


def test_a_finished_run_is_returned_and_another_runs_checkpoints_are_refused(tmp_path):
    data = digits_data(2, count=120)
    params = {**SMALL, "epochs": 1}
    first = finetune_run(data, lambda: digits_net(2), params, out_dir=tmp_path, device="cpu")
    events = []
    assert finetune_run(data, lambda: digits_net(2), params, out_dir=tmp_path, device="cpu", progress=events.append) == first
    assert events == []  # nothing trained or measured again
    files = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    with pytest.raises(CheckpointMismatch, match="another run.*differs in learning_rate"):
        finetune_run(data, lambda: digits_net(2), {**params, "learning_rate": 1e-2}, out_dir=tmp_path, device="cpu")
    with pytest.raises(CheckpointMismatch, match="differs in base_weights"):
        finetune_run(data, lambda: digits_net(3), params, out_dir=tmp_path, device="cpu")
    assert {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()} == files  # nothing overwritten
    assert json.loads((tmp_path / "result.json").read_text()) == first
    # only the bootstrap differs: the trained models are reused, the measurement is redone
    events = []
    other = finetune_run(data, lambda: digits_net(2), {**params, "bootstrap_resamples": 300}, out_dir=tmp_path, device="cpu",
                         progress=events.append)
    assert {e["stage"] for e in events} == {"evaluate"} and other["models"] == first["models"]


@pytest.mark.parametrize("bad,match", [({"loss": "mse"}, "loss must be"), ({"epochs": 0}, "epochs"), ({"lr": 1}, "unknown"),
                                       ({"epochs": 1.5}, "epochs"), ({"alignment_weight": -1}, "alignment_weight"),
                                       ({"mixed_precision": "maybe"}, "mixed_precision")])
def test_bad_parameters_are_refused_by_name(bad, match):
    with pytest.raises(InvalidFinetuneParams, match=match):
        FinetuneParams.from_dict(bad)


def _small_rgb_net() -> SplitNet:
    torch.manual_seed(5)
    features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(8), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
    return SplitNet(features, nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Dropout(0.1), nn.Linear(32, 3)))


def test_a_run_on_an_export_folder_reports_per_condition_with_the_human_ceiling(tmp_path):
    export_write(tmp_path / "export", sources=8, unlabelled={101}, unmapped={104})
    events = []
    result = finetune_run(tmp_path / "export", _small_rgb_net, {**SMALL, "epochs": 2, "batch_size": 4}, out_dir=tmp_path / "run",
                          device="cpu", task_kind="paint", input_size=(24, 32), progress=events.append)
    split = result["split"]
    assert split == {"train_images": 12, "held_out_images": 4, "train_sources": 6, "held_out_sources": 2}
    held_out = result["per_image"]
    assert {row["condition"] for row in held_out} == {"original", "gaussian_noise-3"}
    for name in ("base", "control", "aligned"):
        accuracy = result["models"][name]["accuracy"]
        assert set(accuracy) == {"all", "original", "gaussian_noise-3"}
        assert accuracy["all"]["n"] == sum(1 for row in held_out if row["label"] >= 0)
        assert set(result["models"][name]["alignment"]) == {"gradient_positive", "gradient_abs", "gradcam"}
    ceiling = result["ceiling"]["spearman"]
    mapped_sources = [row["stimulus_id"] for row in held_out if row["has_map"]]
    assert ceiling["n"] == len(mapped_sources) and 0.6 <= ceiling["value"] <= 0.68
    spearman = result["models"]["aligned"]["alignment"]["gradient_positive"]["spearman"]
    assert spearman["over_ceiling"]["mean"] == pytest.approx(spearman["mean"] / ceiling["value"])
    assert result["ceiling"]["pcc"]["value"] == pytest.approx(0.7)
    difference = result["differences"]["aligned_minus_control"]["alignment"]["gradient_positive"]["spearman"]
    assert difference["ci_low"] <= difference["mean"] <= difference["ci_high"] and difference["n"] == len(mapped_sources)
    assert result["trained_map"] == "gradient_positive" and "gradient_abs" in result["maps"]
    line = json.dumps(headline(result))
    assert "\n" not in line and json.loads(line)["map"] == "gradient_positive"
    steps = [e for e in events if e["stage"] == "train"]
    assert [e["global_step"] for e in steps] == list(range(1, 13)) and steps[-1]["total_steps"] == 12
    assert {e["model"] for e in events if e["stage"] == "evaluate"} == {"base", "control", "aligned"}


def test_a_model_without_features_is_measured_without_gradcam(tmp_path):
    data = digits_data(0, count=60)
    plain = lambda: nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 32 * 32, 10))  # noqa: E731
    result = finetune_run(data, plain, {**SMALL, "epochs": 1}, out_dir=tmp_path, device="cpu")
    assert "gradcam" not in result["models"]["aligned"]["alignment"] and "gradcam" in result["maps_missing"]
    assert result["ceiling"]["spearman"]["value"] is None and "no human ceiling" in result["ceiling"]["spearman"]["reason"]
    assert result["models"]["aligned"]["alignment"]["gradient_positive"]["spearman"]["over_ceiling"] is None
