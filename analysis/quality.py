"""Data quality per participant: signals, and the flag that puts a participant up for review (pure numpy).

Input: one `TrialEvidence` per answered trial (the participant's map, the stimulus' running sum and n,
a summary of the raw answer made by `answer_summary`, the catch verdict on catch trials). Signals, per
participant (docs/quality.md has the definitions in full):

- agreement: PCC of each of their maps with the leave-one-out mean map of the same stimulus,
  (sum - own) / (n - 1) from the running sum, minus the median of everyone's such PCC on that
  stimulus (so an image that is hard for everyone costs nobody), averaged over their trials;
  agreement_pcc is the plain mean PCC, for display.
- specificity: the mean PCC of their map of image a with the leave-one-out map of the same image,
  minus the mean PCC with the leave-one-out maps of their other images b. Someone who marks the same
  region on every image (always the centre) matches other images' crowds as well as this one's: ~0.
  Everyone's maps of real photos are centre-biased, and so are the crowd maps, so the bias cancels.
- time: the median of their trial durations over the median of all trials' durations.
- marks (strokes, clicks or samples), painted (paint: the final mask's area fraction), touched (the
  fraction of the image the brush passed over or the bubbles / window revealed): medians over trials.
- identical: the fraction of their trials whose geometry (`answer_digest`) repeats another of theirs.
- catch: catch trials passed / answered; catch_score: the mean of their scores (paint IoU with the
  known region, or the fraction of points inside it).

Flag (`quality_flags`, rules from `quality_rules_clean`): a signal flags a participant when it lies
beyond its Tukey fence among all participants with that signal, Q1 - k x IQR on the low side (Q3 + k x
IQR on the high side), k = ``iqr_multiplier`` (3 by default, BubbleView's rule), on a log scale for
the ratio signals, or beyond an absolute ``min`` / ``max`` the study set. A flag asks for review unless
the study's ``action`` is "exclude". Robust z-scores, (x - median) / (1.4826 x MAD), come with it,
and their combined shortfall (the sum of the below-median parts over the fenced signals) is fenced
the same way, which catches a participant somewhat low on several signals at once.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any, Hashable, Mapping, Sequence

import numpy as np

from annotations.rasterize import paint_mask

NAN = float("nan")
SIGNALS = ("agreement", "agreement_pcc", "specificity", "time", "marks", "painted", "touched", "identical", "catch",
           "catch_score")
LOG_SIGNALS = frozenset({"time", "marks", "painted", "touched"})  # ratios and sizes: fenced on a log scale
FENCES = ("low", "high", "both")
MAD_TO_SD = 1.4826  # MAD x this = the standard deviation of a normal distribution
MIN_FENCE_PARTICIPANTS = 4  # quartiles from fewer values would come from the same one or two people
FENCED = {"agreement", "specificity", "time", "touched", "combined"}  # low side, by default
QUALITY_DEFAULTS: dict[str, Any] = {
    "iqr_multiplier": 3.0,  # BubbleView's outlier rule
    "action": "review",
    "signals": {name: {"fence": "low" if name in FENCED else None, "min": None,
                       "max": 0.0 if name == "identical" else None} for name in SIGNALS + ("combined",)},
}


class QualityRulesInvalid(ValueError):
    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class TrialEvidence:
    """One answered trial as the signals need it.

    participant_map: H x W float (density or 0/1 mask, stimulus px); None on catch trials.
    stimulus_sum: H x W float64 running sum of the included participants' maps of the stimulus, and
    stimulus_n their number; includes_own: whether that sum holds this map (False once the participant
    is excluded). duration_ms, marks, painted_fraction, touched_fraction, digest: `answer_summary`.
    catch_passed: the verdict on a catch trial (its map is then not needed), None on main trials;
    catch_score: that trial's score (None when unknown).
    """

    participant_id: Hashable
    stimulus_id: Hashable
    participant_map: np.ndarray | None = None
    stimulus_sum: np.ndarray | None = None
    stimulus_n: int = 0
    includes_own: bool = True
    duration_ms: float | None = None
    marks: int | None = None
    painted_fraction: float | None = None
    touched_fraction: float | None = None
    digest: str | None = None
    catch_passed: bool | None = None
    catch_score: float | None = None


def answer_digest(kind: str, payload: dict) -> str:
    """sha256 of the answer's geometry only (points' x, y; strokes' radius, erase and points), so the
    same answer given twice, whatever its timing, has the same digest."""
    if kind == "paint":
        shape = [[s["radius"], bool(s.get("erase")), [p[:2] for p in s["points"]]] for s in payload.get("strokes", [])]
    else:
        shape = [p[:2] for p in payload.get("clicks" if kind == "bubble" else "samples") or []]
    return hashlib.sha256(json.dumps(shape, separators=(",", ":")).encode()).hexdigest()


def answer_summary(kind: str, payload: dict, *, height: int, width: int, painted: np.ndarray | None = None) -> dict:
    """marks, painted_fraction (paint), touched_fraction and digest of one cleaned payload. Touched:
    paint, the union of every stroke drawn as paint (erasing too); bubble / mouse, the union of discs of
    the bubble / window radius around the points (NaN when the payload has no radius). `painted`: the
    answer's paint mask when the caller has it already (it is not rasterised again)."""
    area = float(height * width)
    digest = answer_digest(kind, payload)
    if kind == "paint":
        strokes = payload.get("strokes", [])
        mask = paint_mask(strokes, height, width) if painted is None else np.asarray(painted, dtype=bool)
        erases = any(s.get("erase") for s in strokes)
        cover = paint_mask([{**s, "erase": False} for s in strokes], height, width) if erases else mask
        return {"marks": len(strokes), "painted_fraction": float(mask.sum() / area),
                "touched_fraction": float(cover.sum() / area), "digest": digest}
    points = payload.get("clicks" if kind == "bubble" else "samples") or []
    radius = payload.get("bubble_radius" if kind == "bubble" else "window_radius")
    discs = [{"radius": radius, "erase": False, "points": [p]} for p in points]
    touched = NAN if not radius else paint_mask(discs, height, width).sum() / area
    return {"marks": len(points), "painted_fraction": None, "touched_fraction": float(touched), "digest": digest}


def _standardised(rows: np.ndarray) -> np.ndarray:
    """Each row centred and scaled to unit norm (a constant or non-finite row becomes NaN)."""
    centred = rows - rows.mean(axis=1, keepdims=True)
    norms = np.sqrt(np.einsum("ij,ij->i", centred, centred))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = centred / norms[:, None]
    out[~(np.isfinite(norms) & (norms > 0))] = NAN
    return out


def leave_one_out(trial: TrialEvidence) -> np.ndarray | None:
    """(sum - own) / (n - 1) (own subtracted only when the sum holds it); None when no one else is left."""
    own = np.asarray(trial.participant_map, dtype=np.float64)
    others = trial.stimulus_n - (1 if trial.includes_own else 0)
    if trial.stimulus_sum is None or others < 1:
        return None
    total = np.asarray(trial.stimulus_sum, dtype=np.float64)
    return ((total - own) if trial.includes_own else total) / others


def _cross_pcc(own: list[np.ndarray], loo: list[np.ndarray | None]) -> np.ndarray:
    """K x K: PCC(own[a], loo[b]); NaN where loo[b] is missing or a map is constant. Vectorised when
    every map has one shape, else pairwise with `metrics.pcc` (which resizes)."""
    k = len(own)
    shapes = {m.shape for m in own} | {m.shape for m in loo if m is not None}
    if len(shapes) == 1:
        zo = _standardised(np.stack([m.ravel() for m in own]))
        zl = np.full_like(zo, NAN)
        for b, m in enumerate(loo):
            if m is not None:
                zl[b] = m.ravel()
        zl = _standardised(zl)
        return np.clip(zo @ zl.T, -1.0, 1.0)
    from .metrics import pcc

    out = np.full((k, k), NAN)
    for a in range(k):
        for b in range(k):
            if loo[b] is not None:
                out[a, b] = pcc(loo[b], own[a])
    return out


@dataclass(frozen=True)
class ParticipantSignals:
    """One participant's raw signals: per main trial its stimulus, LOO PCC and duration; the rest as
    in the module docstring (NaN where undefined). Plain values: storable as JSON."""

    participant_id: Hashable
    stimuli: tuple
    agreements: tuple[float, ...]
    durations: tuple[float, ...]
    specificity: float
    marks: float
    painted: float
    touched: float
    identical: float
    catch_passed: int
    catch_answered: int
    catch_score: float


def _median(values) -> float:
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    return float(np.median(finite)) if finite else NAN


def _mean(values) -> float:
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else NAN


def participant_signals(trials: Sequence[TrialEvidence]) -> ParticipantSignals:
    """The raw signals of one participant from all their trials. Cost O(K^2 x pixels) for K main trials."""
    if not trials or len({t.participant_id for t in trials}) != 1:
        raise ValueError("give the trials of exactly one participant")
    main = [t for t in trials if t.catch_passed is None and t.participant_map is not None]
    catch = [t for t in trials if t.catch_passed is not None]
    own = [np.asarray(t.participant_map, dtype=np.float64) for t in main]
    loo = [leave_one_out(t) for t in main]
    cross = _cross_pcc(own, loo) if main else np.zeros((0, 0))
    diag = np.diag(cross) if main else np.zeros(0)
    off = cross[~np.eye(len(main), dtype=bool)]
    specificity = NAN
    if np.isfinite(diag).any() and np.isfinite(off).any():
        specificity = float(np.nanmean(diag) - np.nanmean(off))
    digests = [t.digest for t in main if t.digest is not None]
    repeats = sum(1 for d in digests if digests.count(d) > 1)
    return ParticipantSignals(
        participant_id=trials[0].participant_id,
        stimuli=tuple(t.stimulus_id for t in main),
        agreements=tuple(float(v) for v in diag),
        durations=tuple(NAN if t.duration_ms is None else float(t.duration_ms) for t in main),
        specificity=specificity,
        marks=_median(t.marks for t in main),
        painted=_median(t.painted_fraction for t in main),
        touched=_median(t.touched_fraction for t in main),
        identical=repeats / len(digests) if digests else NAN,
        catch_passed=sum(1 for t in catch if t.catch_passed),
        catch_answered=len(catch),
        catch_score=_mean(t.catch_score for t in catch),
    )


def study_signals(raw: Mapping[Hashable, ParticipantSignals]) -> dict[Hashable, dict[str, float]]:
    """participant -> {signal: value} for the study (one task kind): agreement is centred on each
    stimulus' median LOO PCC over everyone given here, time on the median duration of all their trials."""
    by_stimulus: dict[Hashable, list[float]] = {}
    durations: list[float] = []
    for signals in raw.values():
        for stimulus, value in zip(signals.stimuli, signals.agreements):
            if math.isfinite(value):
                by_stimulus.setdefault(stimulus, []).append(value)
        durations.extend(d for d in signals.durations if math.isfinite(d))
    centre = {s: float(np.median(v)) for s, v in by_stimulus.items()}
    study_time = float(np.median(durations)) if durations else NAN
    out = {}
    for pid, s in raw.items():
        relative = [v - centre[st] for st, v in zip(s.stimuli, s.agreements) if math.isfinite(v)]
        out[pid] = {
            "agreement": _mean(relative),
            "agreement_pcc": _mean(s.agreements),
            "specificity": s.specificity,
            "time": _median(s.durations) / study_time if study_time > 0 else NAN,
            "marks": s.marks,
            "painted": s.painted,
            "touched": s.touched,
            "identical": s.identical,
            "catch": s.catch_passed / s.catch_answered if s.catch_answered else NAN,
            "catch_score": s.catch_score,
        }
    return out


def quality_signals(trials: Sequence[TrialEvidence]) -> dict[Hashable, dict[str, float]]:
    """`study_signals` of every participant in `trials` (all the study's trials of one task kind)."""
    grouped: dict[Hashable, list[TrialEvidence]] = {}
    for t in trials:
        grouped.setdefault(t.participant_id, []).append(t)
    return study_signals({pid: participant_signals(ts) for pid, ts in grouped.items()})


# --- the flag ------------------------------------------------------------------------------------


def _threshold(value: Any, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise QualityRulesInvalid(f"{field} must be a finite number or null, got {value!r}", field)
    return float(value)


def quality_rules_clean(raw: Any) -> dict:
    """The study's rules merged over QUALITY_DEFAULTS; raises QualityRulesInvalid naming the field.
    {"iqr_multiplier": k > 0, "action": "review" | "exclude", "signals": {name: {"fence": "low" |
    "high" | "both" | null, "min": x | null, "max": x | null}}}; a signal not named keeps its default."""
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise QualityRulesInvalid("quality must be an object", "quality")
    unknown = sorted(set(raw) - set(QUALITY_DEFAULTS))
    if unknown:
        raise QualityRulesInvalid(f"quality.{unknown[0]} is not a setting", f"quality.{unknown[0]}")
    k = raw.get("iqr_multiplier", QUALITY_DEFAULTS["iqr_multiplier"])
    if isinstance(k, bool) or not isinstance(k, (int, float)) or not 0 < k <= 100:
        raise QualityRulesInvalid(f"quality.iqr_multiplier must be a number in (0, 100], got {k!r}", "quality.iqr_multiplier")
    action = raw.get("action", QUALITY_DEFAULTS["action"])
    if action not in ("review", "exclude"):
        raise QualityRulesInvalid(f"quality.action must be review or exclude, got {action!r}", "quality.action")
    given = raw.get("signals", {})
    if not isinstance(given, dict):
        raise QualityRulesInvalid("quality.signals must be an object", "quality.signals")
    signals = {name: dict(rule) for name, rule in QUALITY_DEFAULTS["signals"].items()}
    for name, rule in given.items():
        field = f"quality.signals.{name}"
        if name not in signals:
            raise QualityRulesInvalid(f"{field}: no such signal; use one of {sorted(signals)}", field)
        if not isinstance(rule, dict) or not set(rule) <= {"fence", "min", "max"}:
            raise QualityRulesInvalid(f"{field} must be an object with fence, min, max", field)
        if "fence" in rule:
            if rule["fence"] is not None and rule["fence"] not in FENCES:
                raise QualityRulesInvalid(f"{field}.fence must be one of {list(FENCES)} or null", f"{field}.fence")
            signals[name]["fence"] = rule["fence"]
        for bound in ("min", "max"):
            if bound in rule:
                signals[name][bound] = _threshold(rule[bound], f"{field}.{bound}")
    return {"iqr_multiplier": float(k), "action": action, "signals": signals}


def _scale(name: str, values: np.ndarray) -> np.ndarray:
    """Log scale for the ratio signals (0 -> -inf: nothing at all is beyond any low fence)."""
    if name not in LOG_SIGNALS:
        return values
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(values)


def signal_fences(values: Sequence[float], name: str, k: float) -> tuple[float, float]:
    """(low, high) Tukey fences Q1 - k IQR, Q3 + k IQR of the finite values, on the signal's scale
    (returned on the original scale); (-inf, inf) with fewer than MIN_FENCE_PARTICIPANTS values or a
    zero IQR."""
    scaled = _scale(name, np.asarray(values, dtype=np.float64))
    scaled = scaled[np.isfinite(scaled)]
    if scaled.size < MIN_FENCE_PARTICIPANTS:
        return -math.inf, math.inf
    q1, q3 = np.percentile(scaled, [25, 75])
    if q3 == q1:  # most participants share one value: the spread cannot tell anyone apart
        return -math.inf, math.inf
    low, high = q1 - k * (q3 - q1), q3 + k * (q3 - q1)
    if name in LOG_SIGNALS:
        return float(np.exp(low)), float(np.exp(high))
    return float(low), float(high)


def robust_z(values: Sequence[float], name: str) -> np.ndarray:
    """(x - median) / (1.4826 MAD) on the signal's scale; NaN where undefined (MAD 0, no value)."""
    scaled = _scale(name, np.asarray(values, dtype=np.float64))
    finite = scaled[np.isfinite(scaled)]
    if finite.size == 0:
        return np.full(scaled.shape, NAN)
    median = np.median(finite)
    mad = MAD_TO_SD * np.median(np.abs(finite - median))
    if mad == 0:
        return np.full(scaled.shape, NAN)
    with np.errstate(invalid="ignore"):
        return (scaled - median) / mad


def _oriented(z: np.ndarray, fence: str) -> np.ndarray:
    """Robust z turned so that lower is worse: as is for a low fence, negated for a high one, -|z| for both."""
    return z if fence == "low" else -z if fence == "high" else -np.abs(z)


def _reasons(name: str, value: float, rule: dict, fences: tuple[float, float], k: float) -> list[str]:
    low, high = fences
    out = []
    if value < low:
        out.append(f"{name} {value:.3g} below the fence {low:.3g} (Q1 - {k:g} x IQR)")
    elif value > high:
        out.append(f"{name} {value:.3g} above the fence {high:.3g} (Q3 + {k:g} x IQR)")
    if rule["min"] is not None and value < rule["min"]:
        out.append(f"{name} {value:.3g} below the study's minimum {rule['min']:g}")
    if rule["max"] is not None and value > rule["max"]:
        out.append(f"{name} {value:.3g} above the study's maximum {rule['max']:g}")
    return out


def quality_flags(signals: Mapping[Hashable, Mapping[str, float]], rules: dict) -> dict[Hashable, dict]:
    """participant -> {"flagged", "action" ("review" / "exclude" when flagged, else None), "reasons"
    (one line per rule that flagged), "z" (robust z per signal), "combined", "fences" (low, high per
    fenced signal)}, JSON-able (undefined numbers and absent fences are null). `rules` from
    `quality_rules_clean`; fences are computed over everyone given.

    combined: the shortfall, the sum over the signals with a fence of min(0, robust z turned so that
    lower is worse): how far below the typical participant they are, added up, being good at one
    thing never making up for being poor at another (an undefined z adds nothing; fewer than two
    defined leave it undefined, the single signal's own fence being the rule then). It is fenced (and
    thresholded) like a signal under the rule "combined", so a participant somewhat low on several
    signals at once is flagged though no single one crosses its own fence."""
    pids = list(signals)
    k = rules["iqr_multiplier"]
    table = {name: np.asarray([signals[p].get(name, NAN) for p in pids], dtype=np.float64)
             for name in rules["signals"] if name != "combined"}
    zs = {name: robust_z(values, name) for name, values in table.items()}
    fenced = [_oriented(zs[name], rule["fence"]) for name, rule in rules["signals"].items()
              if rule["fence"] and name != "combined"]
    table["combined"] = np.full(len(pids), NAN)
    if fenced:
        stacked = np.stack(fenced)
        defined = (~np.isnan(stacked)).sum(axis=0) >= 2
        shortfall = np.where(np.isnan(stacked), 0.0, np.minimum(stacked, 0.0)).sum(axis=0)
        table["combined"] = np.where(defined, shortfall, NAN)
    verdicts = {pid: {"flagged": False, "action": None, "reasons": [], "z": {}, "fences": {}} for pid in pids}
    for name, rule in rules["signals"].items():
        values = table[name]
        fences = signal_fences(values, name, k) if rule["fence"] else (-math.inf, math.inf)
        fences = (-math.inf if rule["fence"] == "high" else fences[0], math.inf if rule["fence"] == "low" else fences[1])
        for i, pid in enumerate(pids):
            verdict = verdicts[pid]
            if name == "combined":
                verdict["combined"] = round(float(values[i]), 3) if math.isfinite(values[i]) else None
            else:
                verdict["z"][name] = round(float(zs[name][i]), 3) if math.isfinite(zs[name][i]) else None
            if rule["fence"]:
                verdict["fences"][name] = [f if math.isfinite(f) else None for f in fences]
            if math.isfinite(values[i]):
                verdict["reasons"].extend(_reasons(name, float(values[i]), rule, fences, k))
    for verdict in verdicts.values():
        verdict["flagged"] = bool(verdict["reasons"])
        verdict["action"] = rules["action"] if verdict["flagged"] else None
    return verdicts


__all__ = [
    "QUALITY_DEFAULTS", "SIGNALS", "ParticipantSignals", "QualityRulesInvalid", "TrialEvidence", "answer_digest",
    "answer_summary", "leave_one_out", "participant_signals", "quality_flags", "quality_rules_clean",
    "quality_signals", "robust_z", "signal_fences", "study_signals",
]
