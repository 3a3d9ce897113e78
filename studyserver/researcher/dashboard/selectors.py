"""Reads for the dashboard pages: the study list with each study's progress (archived studies in
their own list), a study's counts for the confirmation pages, and the gallery's rows.

Progress on the study detail page is `studyserver.researcher.selectors.study_progress`, the same
dict the REST API's progress endpoint serves (the page polls that endpoint)."""
from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, Q

from analysis.models import HumanMap, Score
from annotations.models import Participant, Stimulus, StimulusRole, Study
from annotations.selectors import responses_included
from explain.models import ExplanationJob
from explain.selectors import stimulus_jobs

from .. import selectors as researcher_selectors


def _by_study(queryset, column: str, **counts) -> dict[int, dict]:
    """{study id: {name: count}} from one GROUP BY query."""
    rows = queryset.order_by().values(column).annotate(**counts)
    return {row[column]: row for row in rows}


def studies_with_counts(studies) -> list[Study]:
    """The studies (an iterable, order kept), each with n_main (main stimuli), n_participants,
    n_completed, n_responses (of included participants, on main stimuli), responses_target
    (main stimuli x participants per stimulus x task kinds) and progress (0..1, None without a target).
    Four queries whatever the number of studies (grouped counts, not correlated subqueries: those
    took 12 s for one study of 5000 responses in bench/dashboard.py)."""
    studies = list(studies)
    ids = [study.pk for study in studies]
    main = _by_study(Stimulus.objects.filter(study__in=ids, role=StimulusRole.MAIN), "study", n=Count("id"))
    people = _by_study(Participant.objects.filter(study__in=ids), "study", n=Count("id"),
                       completed=Count("id", filter=Q(status=Participant.Status.COMPLETED)))
    answered = _by_study(
        responses_included(studies=ids),
        "trial__stimulus__study", n=Count("id"),
    )
    for study in studies:
        study.n_main = main.get(study.pk, {}).get("n", 0)
        study.n_participants = people.get(study.pk, {}).get("n", 0)
        study.n_completed = people.get(study.pk, {}).get("completed", 0)
        study.n_responses = answered.get(study.pk, {}).get("n", 0)
        study.responses_target = study.n_main * study.participants_per_stimulus * len(study.task_kinds)
        done = min(study.n_responses, study.responses_target)
        study.progress = done / study.responses_target if study.responses_target else None
    return studies


def study_list(*, user, archived: bool = False) -> list[Study]:
    """The studies a list shows the user, newest first: those not archived, or only the archived
    ones; each with the counts of `studies_with_counts`."""
    return studies_with_counts(researcher_selectors.study_list(user=user, archived=archived))


def study_counts(*, study: Study) -> dict[str, int]:
    """What a study holds, for its confirmation pages: stimuli (all roles), variants, participants, shares."""
    stimuli = study.stimuli.aggregate(n=Count("id"), variants=Count("id", filter=Q(source__isnull=False)))
    return {"stimuli": stimuli["n"], "variants": stimuli["variants"], "participants": study.participants.count(),
            "shares": study.shares.count()}


@dataclass
class ModelRow:
    job: ExplanationJob
    # task kind -> metric -> value (None where undefined)
    scores: dict[str, dict[str, float | None]] = field(default_factory=dict)


@dataclass
class HumanRow:
    task_kind: str
    human_map: HumanMap | None
    n_responses: int = 0


@dataclass
class StimulusRow:
    stimulus: Stimulus
    humans: list[HumanRow]
    n_responses: int
    models: list[ModelRow]

    @property
    def has_model_map(self) -> bool:
        return any(m.job.status == ExplanationJob.Status.DONE for m in self.models)


def main_stimuli(*, study: Study):
    """The study's analysed stimuli, in id order."""
    return study.stimuli.filter(role=StimulusRole.MAIN).order_by("id")


def study_gallery(*, study: Study, stimulus_ids: list[int] | None = None) -> list[StimulusRow]:
    """Per stimulus (all main stimuli, or those listed): its source, its human maps with the answered
    trials per task kind, each explanation job of its image (with its map) and the scores between them."""
    stimuli = main_stimuli(study=study).select_related("source")
    if stimulus_ids is not None:
        stimuli = stimuli.filter(id__in=stimulus_ids)
    stimuli = list(stimuli)
    answered = {}
    done = responses_included().filter(trial__stimulus__in=stimuli)
    for sid, kind, n in done.values_list("trial__stimulus_id", "trial__task_kind").annotate(n=Count("id")):
        answered[(sid, kind)] = n
    human_maps = {(h.stimulus_id, h.task_kind): h for h in HumanMap.objects.filter(stimulus__in=stimuli)}
    jobs = stimulus_jobs(study=study, stimuli=stimuli)
    scores: dict[tuple[int, int], dict[str, dict[str, float | None]]] = {}
    for score in Score.objects.filter(stimulus__in=stimuli):
        scores.setdefault((score.stimulus_id, score.job_id), {}).setdefault(score.task_kind, {})[score.metric] = score.value
    rows = []
    for stimulus in stimuli:
        models = [ModelRow(job=job, scores=scores.get((stimulus.pk, job.pk), {})) for job in jobs[stimulus.pk]]
        humans = [HumanRow(kind, human_maps.get((stimulus.pk, kind)), answered.get((stimulus.pk, kind), 0)) for kind in study.task_kinds]
        rows.append(StimulusRow(stimulus, humans, sum(h.n_responses for h in humans), models))
    return rows
