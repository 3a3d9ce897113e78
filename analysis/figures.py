"""Report figures with matplotlib's object API (no pyplot state; safe in threads): grouped bar charts
of a metric with 95% CIs and the human ceiling, of the normalised score (with the reason where it is
undefined), and reliability curves. Pure: rows in, bytes out."""
from __future__ import annotations

import io
import textwrap
from dataclasses import dataclass
from typing import Iterable

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .report_tables import (
    FAITHFULNESS,
    LOWER_BETTER,
    METRIC_LABELS,
    CurvePoint,
    ReliabilityRow,
    SummaryRow,
    params_label,
)
from .statistics import Summary

FORMATS = {"png": "image/png", "svg": "image/svg+xml"}
COLOURS = ["#2457c5", "#d9730d", "#2e8540", "#b42318", "#7a4bbd", "#0f8a8a", "#8a6d0f", "#5b6676"]


def _bytes(fig: Figure, fmt: str) -> bytes:
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {sorted(FORMATS)}, got {fmt!r}")
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=130 if fmt == "png" else None, bbox_inches="tight", metadata={"Date": None} if fmt == "svg" else None)
    return buffer.getvalue()


def _empty(message: str, fmt: str) -> bytes:
    fig = Figure(figsize=(6, 2.2))
    ax = fig.add_subplot()
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=11, color="#5b6676", wrap=True)
    return _bytes(fig, fmt)


def _ceiling_of(reliability: Iterable[ReliabilityRow], series: tuple, metric: str) -> ReliabilityRow | None:
    for r in reliability:
        if (r.task_kind, r.condition, r.metric) == (series[0], series[1], metric):
            return r
    return None


def params_changed(params: str, defaults: dict) -> str:
    """A params label (reports.params_label) without the entries that equal the method's defaults."""
    if params == "default":
        return ""
    same = {params_label({key: value}) for key, value in defaults.items()}
    return ", ".join(token for token in params.split(", ") if token not in same)


@dataclass
class _Bars:
    """The layout of a grouped bar chart: x groups (model, method, params), series (task kind or None,
    condition), the Summary of each cell, and the axis."""

    groups: list[tuple[str, str, str]]
    series: list[tuple[str | None, str]]
    cells: dict[tuple, Summary]
    models: list[str]
    label_lines: int
    fig: Figure
    ax: object

    def centres(self, i: int) -> np.ndarray:
        return np.arange(len(self.groups)) - 0.4 + self.width * (i + 0.5)

    @property
    def width(self) -> float:
        return 0.8 / len(self.series)

    def draw_series(self, i: int, label: str) -> list[Summary | None]:
        """The bars of series i with their CIs (a NaN mean draws no bar); returns the summaries."""
        summaries = [self.cells.get((g, self.series[i])) for g in self.groups]
        means = np.array([v.mean if v else np.nan for v in summaries])
        low = np.array([v.mean - v.ci_low if v and np.isfinite(v.ci_low) else 0 for v in summaries])
        high = np.array([v.ci_high - v.mean if v and np.isfinite(v.ci_high) else 0 for v in summaries])
        self.ax.bar(self.centres(i), means, self.width * 0.9, yerr=[low, high], capsize=2.5, color=COLOURS[i % len(COLOURS)],
                    alpha=0.9, label=label, error_kw={"linewidth": 1})
        return summaries

    def finish(self, ylabel: str, title: str, notes: list[str]) -> None:
        ax = self.ax
        of_model = f"{self.models[0]}; " if len(self.models) == 1 else ""
        ax.set_ylabel(ylabel, fontsize=9)
        ax.set_title(f"{title}\n{of_model}mean over stimuli; error bars: 95% bootstrap CI", fontsize=9)
        ax.axhline(0, color="#1d2430", linewidth=0.6)
        ax.grid(axis="y", alpha=0.3)
        below = -0.08 - 0.04 * self.label_lines
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, below), ncol=min(4, len(self.series) + 2), frameon=False)
        if notes:  # under the legend: why a bar is missing or a ceiling cannot normalise
            text = "\n".join(textwrap.shorten(n, 150) for n in notes[:12]) + ("\n..." if len(notes) > 12 else "")
            ax.text(0.0, below - 0.12 - 0.05 * ((len(self.series) + 2 + 3) // 4), text, transform=ax.transAxes, va="top",
                    ha="left", fontsize=6.5, color="#9a3412")


def _bars(rows: list[SummaryRow], value, by_kind: bool, method_defaults: dict[str, dict] | None) -> _Bars:
    groups = sorted({(r.model_key, r.method_key, r.params) for r in rows})
    series = sorted({(r.task_kind if by_kind else None, r.condition) for r in rows}, key=lambda s: (s[0] or "", s[1]))
    cells = {((r.model_key, r.method_key, r.params), (r.task_kind if by_kind else None, r.condition)): value(r) for r in rows}
    models = sorted({model for model, _, _ in groups})
    labels = []
    for model, method, params in groups:
        changed = params_changed(params, (method_defaults or {}).get(method, {}))
        labels.append("\n".join([method] + ([model] if len(models) > 1 else []) + ([textwrap.fill(changed, 20)] if changed else [])))
    label_lines = max(label.count("\n") + 1 for label in labels)
    fig = Figure(figsize=(max(5.5, len(groups) * max(0.55 * len(series), 1.0) + 2.0), 4.4))
    ax = fig.add_subplot()
    ax.set_xticks(np.arange(len(groups)), labels, fontsize=8)
    return _Bars(groups, series, cells, models, label_lines, fig, ax)


def _series_label(s: tuple[str | None, str]) -> str:
    return s[1] if s[0] is None else f"{s[0]} · {s[1]}"


def metric_bars(rows: list[SummaryRow], metric: str, reliability: Iterable[ReliabilityRow], fmt: str, *, title: str = "",
                method_defaults: dict[str, dict] | None = None) -> bytes:
    """Bars: x = model/method/params, one bar per (task kind, condition) series, error bars = the
    bootstrap 95% CI of the mean over stimuli. Over each bar, a black tick marks the study's human
    ceiling of its series and a grey tick its floor; where the two are too close to normalise by, a
    note under the figure says so. Insertion/deletion do not depend on the task kind: one series per
    condition. Labels name the model only when there are several (else the title does) and only the
    parameters that differ from `method_defaults` (method key -> defaults)."""
    faith = metric in FAITHFULNESS
    reliability = list(reliability)

    def value(row: SummaryRow):
        return (row.faithfulness if faith else row.metrics).get(metric)

    rows = [r for r in rows if value(r) is not None and value(r).n > 0]
    if not rows:
        return _empty(f"No {METRIC_LABELS.get(metric, metric)} values yet.", fmt)
    bars = _bars(rows, value, not faith, method_defaults)
    marked = {"ceiling": False, "floor": False}
    notes = []
    for i, s in enumerate(bars.series):
        bars.draw_series(i, _series_label(s))
        bound = None if faith else _ceiling_of(reliability, s, metric)
        centres, width = bars.centres(i), bars.width
        for name, colour in (("ceiling", "#1d2430"), ("floor", "#9aa3ad")):
            level = getattr(bound, name).mean if bound else np.nan
            if np.isfinite(level):
                bars.ax.hlines([level] * len(centres), centres - width * 0.48, centres + width * 0.48, colors=colour,
                               linewidth=2.2, label=None if marked[name] else f"human {name} of the series", zorder=3)
                marked[name] = True
        if bound is not None and bound.note and np.isfinite(bound.ceiling.mean):
            notes.append(f"{_series_label(s)}: no normalised score, {bound.note}")
    direction = "lower is better" if metric in LOWER_BETTER else "higher is better"
    label = METRIC_LABELS.get(metric, metric)
    bars.finish(f"{label} ({direction})", title or label, notes)
    return _bytes(bars.fig, fmt)


def normalised_bars(rows: list[SummaryRow], metric: str, fmt: str, *, title: str = "",
                    method_defaults: dict[str, dict] | None = None) -> bytes:
    """The normalised score (0 = the series' human floor, 1 = its ceiling) as bars, laid out as
    `metric_bars`. Where it is undefined (ceiling not better than floor by the margin) there is no
    bar: an "n/a" marks the gap and a note under the figure gives the reason."""
    label = METRIC_LABELS.get(metric, metric)
    rows = [r for r in rows if metric in r.normalised and r.normalised[metric].n > 0]
    if not rows:
        return _empty(f"No normalised {label} yet: it needs scores and the human ceiling and floor.", fmt)
    bars = _bars(rows, lambda r: r.normalised[metric], True, method_defaults)
    for level, name, colour in ((1.0, "human ceiling", "#1d2430"), (0.0, "human floor", "#9aa3ad")):
        bars.ax.axhline(level, color=colour, linewidth=1.4, linestyle="--", label=name, zorder=1)
    undefined: dict[tuple[str, str], list[str]] = {}  # (series, reason) -> methods
    for i, s in enumerate(bars.series):
        summaries = bars.draw_series(i, _series_label(s))
        for (model, method, _params), centre, v in zip(bars.groups, bars.centres(i), summaries):
            if v is not None and v.note:
                bars.ax.text(centre, 0.02, "n/a", rotation=90, ha="center", va="bottom", fontsize=7, color="#9a3412")
                name = method if len(bars.models) == 1 else f"{method} ({model})"
                undefined.setdefault((_series_label(s), v.note), []).append(name)
    notes = [f"n/a {series} ({', '.join(dict.fromkeys(names))}): {note}" for (series, note), names in undefined.items()]
    bars.finish(f"normalised {label} (0 = floor, 1 = ceiling)", title or f"normalised {label}", notes)
    return _bytes(bars.fig, fmt)


def reliability_curves(
    curves: dict[tuple[str, str], list[CurvePoint]],
    per_stimulus: Iterable[tuple[int, str, str, list]],
    metric: str,
    fmt: str,
) -> bytes:
    """Split-half reliability vs participants per half: one thin line per stimulus, the mean over
    stimuli as a thick line with its 95% CI band, one colour per task kind."""
    kinds = sorted(kind for kind, m in curves if m == metric)
    if not kinds:
        return _empty("No reliability curves yet: they need at least two participants on a stimulus.", fmt)
    fig = Figure(figsize=(6.5, 4.0))
    ax = fig.add_subplot()
    stimuli = list(per_stimulus)
    for i, kind in enumerate(kinds):
        colour = COLOURS[i % len(COLOURS)]
        for _sid, k_kind, m, points in stimuli:
            if (k_kind, m) == (kind, metric) and points:
                ax.plot([p[0] for p in points], [np.nan if p[1] is None else p[1] for p in points], color=colour, alpha=0.15, linewidth=0.8,
                        marker="o" if len(points) == 1 else None, markersize=3)  # one k: a dot, not an invisible line
        points = curves[(kind, metric)]
        ks = [p.k for p in points]
        ax.plot(ks, [p.summary.mean for p in points], color=colour, linewidth=2.2, marker="o", label=f"{kind}: mean over stimuli")
        ax.fill_between(ks, [p.summary.ci_low for p in points], [p.summary.ci_high for p in points], color=colour, alpha=0.2)
        if len(ks) == 1:  # a band needs two k to show: the CI as an error bar instead
            mean = points[0].summary.mean
            ax.errorbar(ks, [mean], yerr=[[mean - points[0].summary.ci_low], [points[0].summary.ci_high - mean]],
                        color=colour, capsize=4, linewidth=1.2)
    all_k = [p.k for kind in kinds for p in curves[(kind, metric)]]
    if all_k and max(all_k) - min(all_k) < 2:  # too few k for integer ticks: widen to whole participants
        ax.set_xlim(min(all_k) - 1, max(all_k) + 1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("participants per half (k)")
    ax.set_ylabel(f"{METRIC_LABELS.get(metric, metric)} between two halves")
    ax.set_title("How many participants are enough: split-half reliability vs k\n"
                 "thin lines: stimuli; thick: mean over stimuli; band (a bar at one k): its 95% bootstrap CI", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, frameon=False)
    return _bytes(fig, fmt)
