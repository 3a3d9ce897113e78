import math

from django import template

register = template.Library()


@register.filter
def dictget(mapping, key):
    """{{ mapping|dictget:key }}: mapping[key], or None when absent."""
    return mapping.get(key) if hasattr(mapping, "get") else None


def _num(value, digits=3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}"


@register.filter
def num(value, digits=3):
    """A number with `digits` decimals, or an en dash where undefined (None, NaN)."""
    return _num(value, int(digits))


@register.filter
def mean_std(summary):
    """'0.584 ± 0.186' from a statistics.Summary ('–' where undefined)."""
    if summary is None or not summary.n:
        return "–"
    if summary.n == 1 or summary.std is None or not math.isfinite(summary.std):
        return _num(summary.mean)
    return f"{_num(summary.mean)} ± {_num(summary.std)}"


@register.filter
def ci(summary):
    """'[0.471, 0.690]', the bootstrap 95% CI of a Summary ('' where undefined)."""
    if summary is None or summary.n < 2 or not math.isfinite(summary.ci_low):
        return ""
    return f"[{_num(summary.ci_low)}, {_num(summary.ci_high)}]"


@register.simple_tag
def percent(part, whole) -> int:
    """{% percent part whole %}: round(100 * part / whole), capped to 0..100 (0 without a whole)."""
    if not whole:
        return 0
    return max(0, min(100, round(100 * (part or 0) / whole)))


def duration_text(seconds: int) -> str:
    """'3 d 4 h', '2 h 5 min', '12 min', 'under a minute'."""
    minutes = seconds // 60
    days, hours, mins = minutes // 1440, (minutes // 60) % 24, minutes % 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {mins} min"
    return f"{mins} min" if mins else "under a minute"


@register.filter
def unsteady(summary) -> bool:
    """Whether a normalised score's 95% CI is wider than twice the floor-to-ceiling range (2 on the
    normalised scale) or unbounded: then ceiling and floor lie too close together, for the stimuli and
    participants there are, to say where between them the model is."""
    if summary is None or summary.n < 2:
        return False
    return not (math.isfinite(summary.ci_low) and math.isfinite(summary.ci_high)) or summary.ci_high - summary.ci_low > 2


@register.filter
def estimate_text(progress: dict) -> str:
    """The estimated completion in words (studyserver/researcher/static/researcher/dashboard.js writes the same)."""
    estimate = progress["estimate"]
    if progress["responses"]["target"] == 0:
        return "No target yet: the study has no main stimuli."
    if estimate["remaining"] <= 0:
        return "Complete: every stimulus has its responses."
    if progress["status"] == "draft":
        return "Not launched yet."
    if progress["status"] == "closed":
        return f"Closed with {estimate['remaining']} responses missing: no more are collected."
    if progress["status"] == "paused":
        return "Paused: no estimate until the study is resumed."
    if estimate["seconds_left"] is None:
        return "No responses in the last 24 hours yet, so no estimate."
    at = estimate["completes_at"].strftime("%Y-%m-%d %H:%M")
    return (f"About {duration_text(estimate['seconds_left'])} more ({estimate['remaining']} responses at "
            f"{estimate['responses_per_hour']:.1f} per hour), around {at} UTC.")
