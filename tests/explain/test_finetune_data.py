"""The fine-tuning data: an export read back, split by source, agreement scores equal to the platform's."""
import json

import numpy as np
import pytest
import torch

from analysis import metrics
from explain.finetune.agreement import finite_mean, paired_bootstrap, pcc_rows, spearman_rows
from explain.finetune.dataset import HumanMapDataset, TensorMapDataset, map_resize
from explain.finetune.split import SplitImpossible, split_by_source
from tests.explain.finetune_support import export_write


def test_rows_agree_with_the_platforms_metrics_on_random_maps_with_ties():
    g = np.random.default_rng(0)
    p = g.random((6, 20, 24))
    q = np.round(g.random((6, 20, 24)) * 4) / 4  # many ties, as in painted maps
    q[2] = 0.0  # constant: NaN
    p[3, :10] = 0.0
    ours_s, ours_p = spearman_rows(p, q), pcc_rows(p, q)
    for i in range(6):
        for ours, theirs in ((ours_s[i], metrics.spearman(p[i], q[i])), (ours_p[i], metrics.pcc(p[i], q[i]))):
            assert (np.isnan(ours) and np.isnan(theirs)) or ours == pytest.approx(theirs, abs=1e-12)
    assert np.isnan(ours_s[2]) and np.isnan(ours_p[2]) and np.isfinite(ours_s[[0, 1, 3, 4, 5]]).all()


def test_map_resize_is_the_platforms_resize():
    m = np.random.default_rng(1).random((37, 53))
    for shape in ((224, 224), (16, 12), (37, 53)):
        assert np.allclose(map_resize(m, shape), metrics.resize_to(m, shape), atol=1e-12)


def test_paired_bootstrap_over_finite_pairs():
    a = np.array([1.0, 2.0, np.nan, 4.0, 5.0])
    b = np.array([0.5, 1.5, 1.0, np.nan, 4.0])
    r = paired_bootstrap(a, b, resamples=500, seed=3)
    assert r["n"] == 3 and r["mean"] == pytest.approx((0.5 + 0.5 + 1.0) / 3) and 0.5 <= r["ci_low"] <= r["mean"] <= r["ci_high"] <= 1.0
    assert r == paired_bootstrap(a, b, resamples=500, seed=3)
    assert paired_bootstrap([np.nan], [1.0])["mean"] is None and finite_mean([np.nan, 1.0, 3.0]) == {"mean": 2.0, "n": 2}


def test_split_keeps_every_variant_with_its_source_and_is_seeded():
    facts = [{"source_id": s} for s in (1, 1, 1, 2, 2, 3, 4, 4, 5, 6, 7, 8, 9, 10)]
    train, held_out = split_by_source(facts, 0.3, seed=0)
    assert sorted(train + held_out) == list(range(len(facts)))
    assert not {facts[i]["source_id"] for i in train} & {facts[i]["source_id"] for i in held_out}
    assert len({facts[i]["source_id"] for i in held_out}) == 3  # round(0.3 * 10 sources)
    assert (train, held_out) == split_by_source(facts, 0.3, seed=0)
    assert {tuple(split_by_source(facts, 0.3, seed=s)[1]) for s in range(6)} != {tuple(held_out)}
    with pytest.raises(SplitImpossible, match="1 source"):
        split_by_source([{"source_id": 5}, {"source_id": 5}], 0.5, seed=0)
    with pytest.raises(ValueError, match="between 0 and 1"):
        split_by_source(facts, 1.0, seed=0)


def test_an_export_reads_with_sources_conditions_and_ceilings(tmp_path):
    manifest = export_write(tmp_path, sources=3, unlabelled={101}, unmapped={102})
    data = HumanMapDataset(tmp_path, size=(24, 32))
    assert len(data) == 6 and data.study_ceiling["spearman"]["ceiling"] == 0.62
    facts = data.facts
    assert [f["source_id"] for f in facts] == [100, 100, 102, 102, 104, 104]
    assert [f["condition"] for f in facts[:2]] == ["original", "gaussian_noise-3"] and facts[1]["label"] == -1
    item = data[1]
    assert item["image"].shape == (3, 24, 32) and item["human_map"].shape == (1, 24, 32) and int(item["label"]) == -1
    assert float(item["ceiling_spearman"]) == pytest.approx(0.6)
    assert data[2]["has_map"] == 0 and data[2]["human_map"].abs().sum() == 0 and torch.isnan(data[2]["ceiling_spearman"])
    fingerprint = data.fingerprint()
    manifest["entries"][0]["map_revision"] = 2
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert HumanMapDataset(tmp_path, size=(24, 32)).fingerprint() != fingerprint
    with pytest.raises(ValueError, match="no manifest.json"):
        HumanMapDataset(tmp_path / "images")


def test_a_tensor_dataset_checks_shapes_and_infers_maps():
    images, labels, maps = torch.zeros(3, 1, 8, 8), torch.tensor([0, 1, -1]), torch.zeros(3, 8, 8)
    maps[0, 2, 2] = 1.0
    data = TensorMapDataset(images, labels, maps, sources=[7, 7, 8])
    assert [f["has_map"] for f in data.facts] == [True, False, False] and data.facts[1]["source_id"] == 7
    with pytest.raises(ValueError, match="must agree"):
        TensorMapDataset(images, labels, torch.zeros(3, 8, 9))
