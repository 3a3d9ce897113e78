"""Reads of the analysis: score, faithfulness, ceiling and curve records of a study's main stimuli,
the assembled report (cached per process until its data changes), and scores grouped for the API."""
from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from dataclasses import dataclass, field
from statistics import mean, stdev

import numpy as np
from django.core.cache import cache
from django.db.models import Count, Max, Min, Sum

from annotations.models import Response, Stimulus, StimulusRole, Study
from explain.models import ExplanationJob
from explain.selectors import stimulus_jobs
from studyserver.storage import array_load

from . import report_tables
from .aggregate import mean_map
from .models import HumanCeiling, HumanMap, MapRecipe, ReliabilityRun, Score
from .normalisation import normalise_one
from .recipes import ParticipantMap, participant_map, recipe_default
from .report_tables import CeilingRecord, JobRecord, ScoreRecord, params_label
from .scoring import LOWER_IS_BETTER


def recipe_for(study: Study, task_kind: str) -> dict:
    """The study's recipe for the kind: its MapRecipe if set, else the platform default."""
    chosen = MapRecipe.objects.filter(study=study, task_kind=task_kind).values_list("recipe", flat=True).first()
    return chosen if chosen is not None else recipe_default(task_kind)


def response_map(response: Response, stimulus: Stimulus, recipe: dict) -> ParticipantMap:
    """The participant's map of the stimulus, as the recipe says."""
    return participant_map(response.payload, recipe, height=stimulus.height, width=stimulus.width)


def human_map_mean(human_map: HumanMap) -> np.ndarray | None:
    """H x W float64 per-pixel mean over the included participants, or None when there is none."""
    if not human_map.n_participants or not human_map.sum_file:
        return None
    return mean_map(array_load(human_map.sum_file), human_map.n_participants)


def human_map_fixations(human_map: HumanMap) -> np.ndarray | None:
    """H x W bool binary fixation map (any participant's point in the pixel), or None (paint, n = 0)."""
    if not human_map.n_participants or not human_map.fixations_file:
        return None
    return array_load(human_map.fixations_file) > 0


def _main(study: Study):
    return Stimulus.objects.filter(study=study, role=StimulusRole.MAIN)


def score_records(study: Study) -> list[ScoreRecord]:
    rows = Score.objects.filter(stimulus__in=_main(study)).values_list(
        "stimulus_id", "stimulus__condition", "task_kind", "job__model_key", "job__method_key", "job__params", "metric", "value"
    )
    return [ScoreRecord(s, c, k, mk, me, params_label(p), m, v) for s, c, k, mk, me, p, m, v in rows]


def job_records(study: Study) -> list[JobRecord]:
    """Every DONE model map of each main stimulus' own jobs (`stimulus_jobs`: the study's models and
    methods, the stimulus' target; a job serves every stimulus that asks for exactly it)."""
    stimuli = list(_main(study))
    jobs = stimulus_jobs(study=study, stimuli=stimuli, done=True)
    return [JobRecord(s.pk, s.condition, job.model_key, job.method_key, params_label(job.params), job.map.insertion_auc,
                      job.map.deletion_auc) for s in stimuli for job in jobs[s.pk]]


def ceiling_records(study: Study) -> list[CeilingRecord]:
    rows = HumanCeiling.objects.filter(stimulus__in=_main(study)).values_list(
        "stimulus_id", "stimulus__condition", "task_kind", "metric", "n_participants", "ceiling", "floor"
    )
    return [CeilingRecord(*row) for row in rows]


def curve_records(study: Study) -> list[tuple[int, str, str, list]]:
    rows = HumanCeiling.objects.filter(stimulus__in=_main(study)).exclude(curve=[]).values_list("stimulus_id", "task_kind", "metric", "curve")
    return [tuple(row) for row in rows]


@dataclass
class KindStatus:
    """Per task kind: how many main stimuli have a map, which have none, the reliability run."""

    task_kind: str
    with_map: int
    without: list[Stimulus]
    run: ReliabilityRun | None
    recipe: dict = field(default_factory=dict)
    sigma_px: tuple[float | None, float | None] = (None, None)  # range actually used, stimulus px

    @property
    def recipe_label(self) -> str:
        r = self.recipe
        if r.get("kind") == "paint_mask":
            return "binary paint mask per participant"
        if r.get("sigma_px") is not None:
            sigma = f"sigma {r['sigma_px']:g} stimulus px"
        else:
            sigma = f"sigma {r.get('sigma_display_px', 0):g} screen px"
        lo, hi = self.sigma_px
        used = "" if lo is None else (f" (= {lo:.1f} stimulus px)" if abs(hi - lo) < 0.05 else f" (= {lo:.1f}–{hi:.1f} stimulus px)")
        return f"Gaussian per {'click' if r.get('points') == 'clicks' else 'sample'}, {sigma}{used}"


@dataclass
class StudyReport:
    study: Study
    rows: list[report_tables.SummaryRow]
    reliability: list[report_tables.ReliabilityRow]
    curves: dict[tuple[str, str], list[report_tables.CurvePoint]]
    kinds: list[KindStatus] = field(default_factory=list)
    refused: int = 0  # score rows of refused model maps
    n_stimuli: int = 0


def _fingerprint(study: Study) -> str:
    """Changes whenever anything the report shows changes."""
    main = _main(study)
    parts = [
        Score.objects.filter(stimulus__in=main).aggregate(n=Count("id"), t=Max("computed_at")),
        HumanCeiling.objects.filter(stimulus__in=main).aggregate(n=Count("id"), t=Max("computed_at")),
        HumanMap.objects.filter(stimulus__in=main).aggregate(n=Count("id"), t=Max("updated_at")),
        ExplanationJob.objects.filter(image_sha256__in=main.values("sha256")).aggregate(
            n=Count("id"), t=Max("finished_at"), i=Count("map__insertion_auc"), d=Count("map__deletion_auc"),
            si=Sum("map__insertion_auc"), sd=Sum("map__deletion_auc"),
        ),
        list(ReliabilityRun.objects.filter(study=study).values_list("task_kind", "status", "computed")),
        list(study.map_recipes.values_list("task_kind", "updated_at")),
        main.aggregate(n=Count("id")),
    ]
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:24]


def _kind_status(study: Study) -> list[KindStatus]:

    runs = {r.task_kind: r for r in ReliabilityRun.objects.filter(study=study)}
    out = []
    for kind in study.task_kinds:
        maps = HumanMap.objects.filter(stimulus__in=_main(study), task_kind=kind, n_participants__gt=0)
        without = list(_main(study).exclude(id__in=maps.values("stimulus_id")))
        sigma = maps.aggregate(lo=Min("sigma_px_min"), hi=Max("sigma_px_max"))
        out.append(KindStatus(kind, _main(study).count() - len(without), without, runs.get(kind),
                              recipe_for(study, kind), (sigma["lo"], sigma["hi"])))
    return out


def study_report(study: Study, *, seed: int = 0) -> StudyReport:
    """The whole report of a study (tables, reliability, curves, per-kind status)."""
    key = f"analysis-report:{study.pk}:{seed}:{_fingerprint(study)}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    ceilings = ceiling_records(study)
    report = StudyReport(
        study=study,
        rows=report_tables.summary_rows(score_records(study), job_records(study), ceilings, seed=seed),
        reliability=report_tables.reliability_rows(ceilings, seed=seed),
        curves=report_tables.mean_curves(curve_records(study), seed=seed),
        kinds=_kind_status(study),
        refused=Score.objects.filter(stimulus__in=_main(study)).exclude(note="").count(),
        n_stimuli=_main(study).count(),
    )
    cache.set(key, report, timeout=3600)
    return report


def per_stimulus_scores_csv(study: Study) -> str:
    """Every score row of the study with its stimulus, job, the stimulus' ceiling and floor, and its
    normalised score (`normalisation.normalise_one`: empty, with the reason in `normalised_note`,
    where the stimulus' ceiling is not better than its floor by the margin)."""
    bounds = {(c.stimulus_id, c.task_kind, c.metric): (c.ceiling, c.floor) for c in ceiling_records(study)}
    rows = Score.objects.filter(stimulus__in=_main(study)).order_by("stimulus_id", "job_id", "task_kind", "metric").values_list(
        "stimulus_id", "stimulus__name", "stimulus__condition", "stimulus__class_index", "task_kind", "job_id",
        "job__model_key", "job__method_key", "job__params", "metric", "value", "n_participants", "note",
    )
    lines = []
    for sid, name, condition, label, kind, job, model, method, params, metric, value, n, note in rows:
        ceiling, floor = bounds.get((sid, kind, metric), (None, None))
        normalised, why = normalise_one(value, ceiling, floor, lower_is_better=metric in LOWER_IS_BETTER)
        lines.append([sid, name, condition, label if label is not None else "", kind, job, model, method, params_label(params),
                      metric, _f(value), n, _f(ceiling), _f(floor), normalised, why, note])
    header = ["stimulus_id", "stimulus", "condition", "class_index", "task_kind", "job_id", "model", "method", "params",
              "metric", "value", "n_participants", "ceiling", "floor", "normalised", "normalised_note", "note"]
    return report_tables.csv_text(header, lines)


def per_stimulus_reliability_csv(study: Study) -> str:
    rows = HumanCeiling.objects.filter(stimulus__in=_main(study)).order_by("stimulus_id", "task_kind", "metric").values_list(
        "stimulus_id", "stimulus__name", "stimulus__condition", "task_kind", "metric", "n_participants", "ceiling",
        "ceiling_std", "floor", "floor_std", "repetitions", "seed",
    )
    header = ["stimulus_id", "stimulus", "condition", "task_kind", "metric", "n_participants", "ceiling", "ceiling_std",
              "floor", "floor_std", "repetitions", "seed"]
    return report_tables.csv_text(header, ([*r[:6], _f(r[6]), _f(r[7]), _f(r[8]), _f(r[9]), r[10], r[11]] for r in rows))


def _f(value) -> float:
    return float("nan") if value is None else float(value)


# --- scores by group -------------------------------------------------------------------------------------


def _summary(values: list[float]) -> dict:
    return {
        "n": len(values),
        "mean": mean(values) if values else None,
        "sd": stdev(values) if len(values) > 1 else None,
    }


def study_scores(*, study: Study) -> list[dict]:
    """Scores of this study's main stimuli grouped by (model, method, params, task kind, metric):
    summary over stimuli (undefined values, stored as null, are counted apart), a breakdown by
    condition, and every stimulus's value with its ceiling, floor and normalised score (null, with
    the reason in `normalised_note`, where undefined: `analysis.normalisation`)."""
    scores = (
        Score.objects.filter(stimulus__study=study, stimulus__role=StimulusRole.MAIN)
        .select_related("job", "stimulus")
        .order_by("job__model_key", "job__method_key", "job__params_hash", "task_kind", "metric", "stimulus_id")
    )
    bounds = {(c["stimulus_id"], c["task_kind"], c["metric"]): (c["ceiling"], c["floor"]) for c in HumanCeiling.objects.filter(
        stimulus__study=study, stimulus__role=StimulusRole.MAIN).values("stimulus_id", "task_kind", "metric", "ceiling", "floor")}
    groups: dict[tuple, dict] = {}
    for score in scores:
        job = score.job
        ceiling, floor = bounds.get((score.stimulus_id, score.task_kind, score.metric), (None, None))
        normalised, note = normalise_one(score.value, ceiling, floor, lower_is_better=score.metric in LOWER_IS_BETTER)
        key = (job.model_key, job.method_key, job.params_hash, score.task_kind, score.metric)
        group = groups.setdefault(key, {
            "model": job.model_key, "method": job.method_key, "params": job.params, "task_kind": score.task_kind,
            "metric": score.metric, "values": [],
        })
        group["values"].append({
            "stimulus_id": score.stimulus_id, "stimulus_name": score.stimulus.name, "condition": score.stimulus.condition,
            "value": score.value, "n_participants": score.n_participants, "ceiling": ceiling, "floor": floor,
            "normalised": normalised if math.isfinite(normalised) else None, "normalised_note": note,
        })
    result = []
    for group in groups.values():
        defined = [v["value"] for v in group["values"] if v["value"] is not None]
        by_condition = defaultdict(list)
        for v in group["values"]:
            if v["value"] is not None:
                by_condition[v["condition"]].append(v["value"])
        group["summary"] = {**_summary(defined), "undefined": len(group["values"]) - len(defined)}
        group["by_condition"] = [{"condition": c, **_summary(vals)} for c, vals in sorted(by_condition.items())]
        result.append(group)
    return result
