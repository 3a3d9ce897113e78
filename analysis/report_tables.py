"""Report tables from score, faithfulness and ceiling records (pure Python/numpy, no Django).

The shape of the seed lab report's tables ("PCC 0.58 +/- 0.19 ..."), one row per (model, method,
params, task kind, condition), every metric as mean +/- std with a bootstrap 95% CI over stimuli,
the scores normalised by the human ceiling and floor (`normalisation.py`: undefined, with a note, where
the ceiling is not better than the floor by a margin), and RISE's insertion/deletion AUCs. Reads are
`selectors.py`; figures `figures.py`; CSV writing is here.
"""
from __future__ import annotations

import json
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable, NamedTuple

import numpy as np

from .csv_cells import csv_line
from .normalisation import bounds_note
from .scoring import ALL_METRICS, LOWER_IS_BETTER
from .statistics import EMPTY, NormalisedSummary, Resampler, Summary, bootstrap_columns, normalised_columns

FAITHFULNESS = ("insertion", "deletion")
METRIC_LABELS = {
    "pcc": "PCC", "sim": "SIM", "spearman": "Spearman", "kld": "KLD", "iou_top10": "IoU top 10%",
    "iou_top30": "IoU top 30%", "nss": "NSS", "auc_judd": "AUC-Judd", "insertion": "Insertion AUC",
    "deletion": "Deletion AUC",
}
LOWER_BETTER = LOWER_IS_BETTER | {"deletion"}


def params_label(params: dict | None) -> str:
    """A short stable label for a method's parameters ("default" when there are none)."""
    if not params:
        return "default"
    return ", ".join(f"{k}={json.dumps(v, sort_keys=True, separators=(',', ':'))}" for k, v in sorted(params.items()))


class ScoreRecord(NamedTuple):
    stimulus_id: int
    condition: str
    task_kind: str
    model_key: str
    method_key: str
    params: str
    metric: str
    value: float | None


class JobRecord(NamedTuple):
    """A finished model map of a stimulus, with its faithfulness AUCs (None where not computed)."""

    stimulus_id: int
    condition: str
    model_key: str
    method_key: str
    params: str
    insertion: float | None
    deletion: float | None


class CeilingRecord(NamedTuple):
    stimulus_id: int
    condition: str
    task_kind: str
    metric: str
    n_participants: int
    ceiling: float | None
    floor: float | None


@dataclass
class SummaryRow:
    model_key: str
    method_key: str
    params: str
    task_kind: str
    condition: str
    n_stimuli: int
    metrics: dict[str, Summary] = field(default_factory=dict)
    normalised: dict[str, NormalisedSummary] = field(default_factory=dict)  # NaN mean + note: undefined
    faithfulness: dict[str, Summary] = field(default_factory=dict)

    @property
    def method_label(self) -> str:
        return self.method_key if self.params == "default" else f"{self.method_key} ({self.params})"


def _rng(seed: int, *key) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(repr(key).encode())])


def _nan(value) -> float:
    return float("nan") if value is None else float(value)


def summary_rows(
    scores: Iterable[ScoreRecord],
    jobs: Iterable[JobRecord],
    ceilings: Iterable[CeilingRecord],
    *,
    seed: int = 0,
) -> list[SummaryRow]:
    """One row per (model, method, params, task kind, condition) that has scores, sorted.

    Bootstrap draws are shared by everything over the same stimuli of a (task kind, condition)
    (every method, every metric, the normalised scores): a paired bootstrap, seeded by `seed` and
    the (task kind, condition), so a report is the same every time.
    """
    values: dict[tuple, dict[int, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    stimuli_of: dict[tuple[str, str], set[int]] = defaultdict(set)
    for r in scores:
        values[(r.model_key, r.method_key, r.params, r.task_kind, r.condition)][r.stimulus_id][r.metric] = _nan(r.value)
        stimuli_of[(r.task_kind, r.condition)].add(r.stimulus_id)
    faith: dict[tuple, dict[int, tuple[float, float]]] = defaultdict(dict)
    faith_stimuli: dict[str, set[int]] = defaultdict(set)
    for j in jobs:
        faith[(j.model_key, j.method_key, j.params, j.condition)][j.stimulus_id] = (_nan(j.insertion), _nan(j.deletion))
        faith_stimuli[j.condition].add(j.stimulus_id)
    bounds = {(c.stimulus_id, c.task_kind, c.metric): (_nan(c.ceiling), _nan(c.floor)) for c in ceilings}
    order = {kc: sorted(ids) for kc, ids in stimuli_of.items()}
    resamplers = {kc: Resampler(_rng(seed, *kc)) for kc in order}
    faith_order = {c: sorted(ids) for c, ids in faith_stimuli.items()}
    faith_resamplers = {c: Resampler(_rng(seed, "faithfulness", c)) for c in faith_order}
    ceiling_cache: dict[tuple, np.ndarray] = {}

    def ceiling_matrix(kind: str, condition: str, names: tuple[str, ...]) -> np.ndarray:
        """(stimuli x metrics x 2): ceiling and floor, the same for every method of the group."""
        key = (kind, condition, names)
        if key not in ceiling_cache:
            nan2 = (np.nan, np.nan)
            ceiling_cache[key] = np.array(
                [[bounds.get((s, kind, m), nan2) for m in names] for s in order[(kind, condition)]], dtype=np.float64
            ).reshape(len(order[(kind, condition)]), len(names), 2)
        return ceiling_cache[key]

    rows = []
    for key in sorted(values):
        model, method, params, kind, condition = key
        per_stimulus, stimuli = values[key], order[(kind, condition)]
        names = tuple(m for m in ALL_METRICS if any(m in v for v in per_stimulus.values()))
        empty: dict[str, float] = {}
        matrix = np.array([[per_stimulus.get(s, empty).get(m, np.nan) for m in names] for s in stimuli], dtype=np.float64)
        matrix = matrix.reshape(len(stimuli), len(names))
        resampler = resamplers[(kind, condition)]
        row = SummaryRow(model, method, params, kind, condition, len(per_stimulus))
        row.metrics = dict(zip(names, bootstrap_columns(matrix, resampler=resampler)))
        bounds_matrix = ceiling_matrix(kind, condition, names)
        normalised = normalised_columns(matrix, bounds_matrix[..., 0], bounds_matrix[..., 1], resampler=resampler,
                                        lower_is_better=[name in LOWER_IS_BETTER for name in names])
        row.normalised = dict(zip(names, normalised))  # n == 0: no stimulus with score, ceiling and floor
        pairs = faith.get((model, method, params, condition))
        if pairs:
            ids = faith_order[condition]
            column = np.array([pairs.get(s, (np.nan, np.nan)) for s in ids], dtype=np.float64).reshape(len(ids), 2)
            row.faithfulness = dict(zip(FAITHFULNESS, bootstrap_columns(column, resampler=faith_resamplers[condition])))
        else:
            row.faithfulness = dict.fromkeys(FAITHFULNESS, EMPTY)
        rows.append(row)
    return rows


@dataclass
class ReliabilityRow:
    task_kind: str
    condition: str
    metric: str
    n_stimuli: int
    ceiling: Summary
    floor: Summary
    note: str = ""  # why scores cannot be normalised by this ceiling and floor ("" when they can)


def reliability_rows(ceilings: Iterable[CeilingRecord], *, seed: int = 0) -> list[ReliabilityRow]:
    """The study's ceiling and floor per (task kind, condition, metric): means over stimuli with CIs
    (one shared bootstrap draw per task kind and condition), and a note where the ceiling is not
    better than the floor by the normalisation margin (`normalisation.py`)."""
    groups: dict[tuple, dict[int, tuple[float, float]]] = defaultdict(dict)
    stimuli_of: dict[tuple[str, str], set[int]] = defaultdict(set)
    for c in ceilings:
        groups[(c.task_kind, c.condition, c.metric)][c.stimulus_id] = (_nan(c.ceiling), _nan(c.floor))
        stimuli_of[(c.task_kind, c.condition)].add(c.stimulus_id)
    order = {kc: sorted(ids) for kc, ids in stimuli_of.items()}
    resamplers = {kc: Resampler(_rng(seed, "reliability", *kc)) for kc in order}
    rows = []
    for key in sorted(groups, key=lambda k: (k[0], k[1], ALL_METRICS.index(k[2]) if k[2] in ALL_METRICS else 99)):
        kind, condition, metric = key
        ids, per_stimulus = order[(kind, condition)], groups[key]
        matrix = np.array([per_stimulus.get(s, (np.nan, np.nan)) for s in ids], dtype=np.float64).reshape(len(ids), 2)
        ceiling, floor = bootstrap_columns(matrix, resampler=resamplers[(kind, condition)])
        note = bounds_note(ceiling.mean, floor.mean, lower_is_better=metric in LOWER_IS_BETTER,
                           ceiling_ci=(ceiling.ci_low, ceiling.ci_high), floor_ci=(floor.ci_low, floor.ci_high))
        rows.append(ReliabilityRow(*key, n_stimuli=len(per_stimulus), ceiling=ceiling, floor=floor, note=note))
    return rows


@dataclass
class CurvePoint:
    k: int
    summary: Summary  # over stimuli that reach 2k participants


def mean_curves(curves: Iterable[tuple[int, str, str, list]], *, seed: int = 0) -> dict[tuple[str, str], list[CurvePoint]]:
    """(task kind, metric) -> the per-stimulus reliability curves averaged at each k, with CIs.
    Input: (stimulus id, task kind, metric, [[k, mean, std, reps], ...])."""
    by_k: dict[tuple[str, str], dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for _stimulus_id, kind, metric, points in curves:
        for k, mean, _std, _reps in points:
            by_k[(kind, metric)][int(k)].append(_nan(mean))
    out = {}
    for key, per_k in sorted(by_k.items()):
        rng = _rng(seed, "curve", *key)
        out[key] = [CurvePoint(k, bootstrap_columns(np.array(per_k[k]).reshape(-1, 1), rng=rng)[0]) for k in sorted(per_k)]
    return out


# --- CSV -----------------------------------------------------------------------------------------


def _fmt(value: float) -> str:
    return "" if value is None or not np.isfinite(value) else f"{value:.6g}"


def csv_text(header: list[str], rows: Iterable[list]) -> str:
    """A header line and one line per row; floats to 6 significant digits (NaN, inf: empty), text
    neutralised against spreadsheet formulas (analysis/csv_cells.py)."""
    return csv_line(header) + "".join(csv_line(row, number_format=_fmt) for row in rows)


def _summary_cells(s: Summary) -> list:
    return [s.n, s.mean, s.std, s.ci_low, s.ci_high]


def summary_csv(rows: list[SummaryRow]) -> str:
    """One line per row; per metric: n, mean, std, ci_low, ci_high, then the normalised mean and CI
    and a note (empty cells and the reason where the normalised score is undefined)."""
    header = ["model", "method", "params", "task_kind", "condition", "n_stimuli"]
    for m in ALL_METRICS:
        header += [f"{m}_{x}" for x in ("n", "mean", "std", "ci_low", "ci_high")]
        header += [f"{m}_normalised_{x}" for x in ("mean", "ci_low", "ci_high", "note")]
    for m in FAITHFULNESS:
        header += [f"{m}_{x}" for x in ("n", "mean", "std", "ci_low", "ci_high")]
    lines = []
    for r in rows:
        line = [r.model_key, r.method_key, r.params, r.task_kind, r.condition, r.n_stimuli]
        for m in ALL_METRICS:
            line += _summary_cells(r.metrics.get(m, EMPTY))
            n = r.normalised.get(m, EMPTY)
            line += [n.mean, n.ci_low, n.ci_high, getattr(n, "note", "")]
        for m in FAITHFULNESS:
            line += _summary_cells(r.faithfulness.get(m, EMPTY))
        lines.append(line)
    return csv_text(header, lines)


def reliability_csv(rows: list[ReliabilityRow]) -> str:
    header = ["task_kind", "condition", "metric", "n_stimuli", "ceiling_mean", "ceiling_std", "ceiling_ci_low",
              "ceiling_ci_high", "floor_mean", "floor_std", "floor_ci_low", "floor_ci_high", "note"]
    return csv_text(header, (
        [r.task_kind, r.condition, r.metric, r.n_stimuli, r.ceiling.mean, r.ceiling.std, r.ceiling.ci_low,
         r.ceiling.ci_high, r.floor.mean, r.floor.std, r.floor.ci_low, r.floor.ci_high, r.note]
        for r in rows
    ))


def curves_csv(curves: Iterable[tuple[int, str, str, list]]) -> str:
    header = ["stimulus_id", "task_kind", "metric", "k", "mean", "std", "repetitions"]
    return csv_text(header, (
        [sid, kind, metric, int(k), _nan(mean), _nan(std), int(reps)]
        for sid, kind, metric, points in curves
        for k, mean, std, reps in points
    ))
