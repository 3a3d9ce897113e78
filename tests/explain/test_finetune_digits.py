"""Proof that fine-tuning toward human maps works, on a CPU: scikit-learn's digits, strokes as maps.

Per seed: a small CNN trained 5 epochs on ~1200 noisy upsampled digits (AdamW 1e-3, lambda 1), its
control (lambda 0, the same data, order and seed) and the base, measured on the ~600 held-out digits.
Targets: on every seed the aligned model's held-out Spearman of the map the loss trains (the positive
part of the signed input gradient) with the strokes beats the control's by at least 0.3, and the
mean top-1 accuracy over the seeds is within 3 points of the control's.
"""
import numpy as np
import pytest
import torch

from explain.finetune import FinetuneParams, finetune_run
from explain.finetune.digits import digits_data, digits_net

SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # deterministic per seed, and faster than 2 threads on a shared 2-core machine
    try:
        out = {}
        for seed in SEEDS:
            params = FinetuneParams(epochs=5, batch_size=32, learning_rate=1e-3, weight_decay=0.0, validation_fraction=1 / 3,
                                    seed=seed, bootstrap_resamples=500)
            out[seed] = finetune_run(digits_data(seed), lambda seed=seed: digits_net(seed), params,
                                     out_dir=tmp_path_factory.mktemp(f"digits{seed}"), device="cpu")
        return out
    finally:
        torch.set_num_threads(threads)


def _spearman(result, model, name="gradient_positive"):
    return result["models"][model]["alignment"][name]["spearman"]["mean"]


@pytest.mark.slow
def test_the_aligned_model_looks_at_the_strokes_and_keeps_its_accuracy(results):
    for seed, result in results.items():
        assert result["split"]["train_images"] == 1198 and result["split"]["held_out_images"] == 599
        assert result["trained_map"] == "gradient_positive"
        gain = _spearman(result, "aligned") - _spearman(result, "control")
        assert gain >= 0.3, (seed, gain)
        difference = result["differences"]["aligned_minus_control"]["alignment"]["gradient_positive"]["spearman"]
        assert difference["ci_low"] > 0.2 and difference["n"] == 599
    accuracy = {name: np.mean([r["models"][name]["accuracy"]["all"]["top1"] for r in results.values()]) for name in ("control", "aligned")}
    assert accuracy["control"] > 0.9 and accuracy["aligned"] >= accuracy["control"] - 0.03, accuracy
    assert all(r["models"]["base"]["accuracy"]["all"]["top1"] < 0.2 for r in results.values())  # it did learn
