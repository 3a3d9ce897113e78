"""The whole metric suite of one model map against one human map (pure numpy, no Django).

`HumanReference.prepare(q, fixations)` does the human side once (centring, SIM normalisation,
ranks, sum, top regions); `metric_suite(p, reference)` then scores any number of model maps against
it. Each value equals the single function in `metrics.py` (tested), only cheaper in bulk.

Metric names (Score.metric): pcc, sim, spearman, kld, iou_top10, iou_top30 for every task kind;
nss and auc_judd only where a fixation map exists (bubble, mouse). Paint has no fixations: its NSS
and AUC are not computed (a union of painted areas is not a set of fixations, and it grows toward
the whole image as n grows, which would make the scores depend on n).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import metrics

MAP_METRICS = ("pcc", "sim", "spearman", "kld", "iou_top10", "iou_top30")
FIXATION_METRICS = ("nss", "auc_judd")
ALL_METRICS = MAP_METRICS + FIXATION_METRICS
TOP_FRACTIONS = {"iou_top10": 0.10, "iou_top30": 0.30}
LOWER_IS_BETTER = frozenset({"kld"})
NAN = float("nan")


def _tops(m: np.ndarray) -> dict[str, np.ndarray]:
    return dict(zip(TOP_FRACTIONS, metrics.top_regions(m, tuple(TOP_FRACTIONS.values()))))


@dataclass(frozen=True)
class HumanReference:
    """A human map (Q, H x W float64) and optional fixations (F, H x W bool), prepared for scoring."""

    q: np.ndarray
    fixations: np.ndarray | None
    finite: bool
    centred: metrics.Centred
    ranks: metrics.Centred | None
    sim_normalised: np.ndarray | None
    kld_normalised: np.ndarray | None  # None: Q holds a negative or non-finite value
    tops: dict[str, np.ndarray]

    @classmethod
    def prepare(cls, q: np.ndarray, fixations: np.ndarray | None = None) -> "HumanReference":
        q = np.asarray(q, dtype=np.float64)
        finite = bool(np.isfinite(q.sum()))
        if fixations is not None:
            fixations = np.asarray(fixations).astype(bool, copy=False)
            if fixations.shape != q.shape:
                raise ValueError(f"fixation map {fixations.shape} and human map {q.shape} differ in shape")
        return cls(
            q=q,
            fixations=fixations,
            finite=finite,
            centred=metrics.centred(q),
            ranks=metrics.centred(metrics.rank_average(q).reshape(q.shape)) if finite else None,
            sim_normalised=metrics.sim_normalise(q),
            kld_normalised=metrics.kld_normalise(q),
            tops=_tops(q) if finite else {},
        )

    @property
    def metric_names(self) -> tuple[str, ...]:
        return ALL_METRICS if self.fixations is not None else MAP_METRICS


def _kld(p: np.ndarray, ref: HumanReference) -> float:
    pn = metrics.kld_normalise(p)
    if pn is None or ref.kld_normalised is None:
        return NAN
    return metrics.kld_of_normalised(pn, ref.kld_normalised)


def metric_suite(p: np.ndarray, ref: HumanReference) -> dict[str, float]:
    """Every metric of model map P against the prepared human map (P resized to Q's shape first).
    Undefined values are NaN (see metrics.py); nothing raises for constant or all-zero maps."""
    p = metrics.resize_to(p, ref.q.shape)
    finite = bool(np.isfinite(p.sum()))
    out = {"pcc": metrics.pearson_of_centred(metrics.centred(p), ref.centred)}
    out["sim"] = metrics.sim_of_normalised(metrics.sim_normalise(p), ref.sim_normalised)
    if finite and ref.ranks is not None:
        out["spearman"] = metrics.pearson_of_centred(metrics.centred(metrics.rank_average(p)), ref.ranks)
    else:
        out["spearman"] = NAN
    out["kld"] = _kld(p, ref)
    p_tops = _tops(p) if finite else {}
    for name in TOP_FRACTIONS:
        if not (finite and ref.finite):
            out[name] = NAN
            continue
        out[name] = metrics.region_iou(p_tops[name], ref.tops[name])
    if ref.fixations is not None:
        out["nss"] = metrics.nss(p, ref.fixations)
        out["auc_judd"] = metrics.auc_judd(p, ref.fixations)
    return out
