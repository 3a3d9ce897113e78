"""Report figures with matplotlib's object API (no pyplot state; safe in threads): grouped bar charts
of a metric with 95% CIs and the human ceiling, and reliability curves. Pure: rows in, bytes out."""
from __future__ import annotations

import io
import textwrap
from typing import Iterable

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .reports import FAITHFULNESS, LOWER_BETTER, METRIC_LABELS, CurvePoint, ReliabilityRow, SummaryRow, params_label

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


def metric_bars(rows: list[SummaryRow], metric: str, reliability: Iterable[ReliabilityRow], fmt: str, *, title: str = "",
                method_defaults: dict[str, dict] | None = None) -> bytes:
    """Bars: x = model/method/params, one bar per (task kind, condition) series, error bars = the
    bootstrap 95% CI of the mean over stimuli. Over each bar, a black tick marks the study's human
    ceiling of its series and a grey tick its floor. Insertion/deletion do not depend on the task
    kind: one series per condition. Labels name the model only when there are several (else the
    title does) and only the parameters that differ from `method_defaults` (method key -> defaults)."""
    faith = metric in FAITHFULNESS
    reliability = list(reliability)

    def value(row: SummaryRow):
        return (row.faithfulness if faith else row.metrics).get(metric)

    rows = [r for r in rows if value(r) is not None and value(r).n > 0]
    if not rows:
        return _empty(f"No {METRIC_LABELS.get(metric, metric)} values yet.", fmt)
    groups = sorted({(r.model_key, r.method_key, r.params) for r in rows})
    series = sorted({(None if faith else r.task_kind, r.condition) for r in rows}, key=lambda s: (s[0] or "", s[1]))
    cells = {((r.model_key, r.method_key, r.params), (None if faith else r.task_kind, r.condition)): value(r) for r in rows}
    models = sorted({model for model, _, _ in groups})
    labels = []
    for model, method, params in groups:
        changed = params_changed(params, (method_defaults or {}).get(method, {}))
        labels.append("\n".join([method] + ([model] if len(models) > 1 else []) + ([textwrap.fill(changed, 20)] if changed else [])))
    label_lines = max(label.count("\n") + 1 for label in labels)
    fig = Figure(figsize=(max(5.5, len(groups) * max(0.55 * len(series), 1.0) + 2.0), 4.4))
    ax = fig.add_subplot()
    width = 0.8 / len(series)
    x = np.arange(len(groups))
    marked = {"ceiling": False, "floor": False}
    for i, s in enumerate(series):
        summaries = [cells.get((g, s)) for g in groups]
        means = np.array([v.mean if v else np.nan for v in summaries])
        low = np.array([v.mean - v.ci_low if v and np.isfinite(v.ci_low) else 0 for v in summaries])
        high = np.array([v.ci_high - v.mean if v and np.isfinite(v.ci_high) else 0 for v in summaries])
        centres = x - 0.4 + width * (i + 0.5)
        ax.bar(centres, means, width * 0.9, yerr=[low, high], capsize=2.5, color=COLOURS[i % len(COLOURS)], alpha=0.9,
               label=s[1] if faith else f"{s[0]} · {s[1]}", error_kw={"linewidth": 1})
        bound = None if faith else _ceiling_of(reliability, s, metric)
        for name, colour in (("ceiling", "#1d2430"), ("floor", "#9aa3ad")):
            level = getattr(bound, name).mean if bound else np.nan
            if np.isfinite(level):
                ax.hlines([level] * len(centres), centres - width * 0.48, centres + width * 0.48, colors=colour, linewidth=2.2,
                          label=None if marked[name] else f"human {name} of the series", zorder=3)
                marked[name] = True
    ax.set_xticks(x, labels, fontsize=8)
    direction = "lower is better" if metric in LOWER_BETTER else "higher is better"
    ax.set_ylabel(f"{METRIC_LABELS.get(metric, metric)} ({direction})", fontsize=9)
    of_model = f"{models[0]}; " if len(models) == 1 else ""
    ax.set_title(f"{title or METRIC_LABELS.get(metric, metric)}\n{of_model}mean over stimuli; error bars: 95% bootstrap CI", fontsize=9)
    ax.axhline(0, color="#1d2430", linewidth=0.6)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.08 - 0.04 * label_lines),
              ncol=min(4, len(series) + 2), frameon=False)
    return _bytes(fig, fmt)


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
