"""Writes for studies: design (create, edit), lifecycle (launch, pause, resume, close, archive,
restore, delete), clone and sharing (keyword-only, atomic). Stimulus writes live in `stimuli.py`
(re-exported here).

Lifecycle: draft -> live (launch) -> paused (pause) -> live (resume) ...; live or paused -> closed.
A draft that was never launched can be deleted, with everything it holds (`study_delete`). A closed
study can be archived (hidden from the study lists, its data kept; participants see a closed study)
and restored. Deleting, archiving and restoring are recorded in the audit log (studyserver.audit).
Settings (`EDITABLE`) change freely while a study is a draft. Once launched, the study's design --
what participants consented to and do, and what the models compute -- is frozen (`FROZEN_ONCE_LAUNCHED`);
the title, the number of participants per stimulus, the completion code and the redirect URL stay
editable while it is live or paused; a closed study keeps only its title editable. Changing a frozen
setting raises Conflict (409) naming the fields; sending a frozen field with its current value is fine.
"""
from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.text import slugify

from annotations.models import Stimulus, StimulusRole, Study, StudyShare
from annotations.services import stimuli as stimulus_services
from annotations.services.removal import rows_delete
from annotations.services.stimuli import (  # noqa: F401  (the API and the dashboard reach every study write here)
    stimuli_import_zip,
    stimulus_create,
    stimulus_variants_create,
)
from annotations.task_params import TaskParamsInvalid, task_params_resolve
from explain.models import ExplanationJob
from explain.services.jobs import explanation_jobs_create, explanation_jobs_prune
from explain.study_config import DEFAULT_EXPLAIN_CONFIG, explain_config_clean
from studyserver.audit.models import AuditAction
from studyserver.audit.services import audit_record
from studyserver.errors import Conflict, InvalidInput, NotFound

EDITABLE = (
    "slug",
    "title",
    "task_kinds",
    "task_params",
    "participants_per_stimulus",
    "stimuli_per_participant",
    "consent_text",
    "instructions_text",
    "completion_code",
    "redirect_url",
    "explain_config",
)
EDITABLE_WHILE_RUNNING = ("title", "participants_per_stimulus", "completion_code", "redirect_url")
FROZEN_ONCE_LAUNCHED = tuple(f for f in EDITABLE if f not in EDITABLE_WHILE_RUNNING)
EDITABLE_WHEN_CLOSED = ("title",)


def editable_fields(status: str) -> tuple[str, ...]:
    if status == Study.Status.DRAFT:
        return EDITABLE
    if status == Study.Status.CLOSED:
        return EDITABLE_WHEN_CLOSED
    return EDITABLE_WHILE_RUNNING


def _task_params_clean(params: Any) -> dict:
    """task_params as annotations.task_params defines them (docs/tasks.md); InvalidInput names the field."""
    try:
        task_params_resolve(params)
    except TaskParamsInvalid as exc:
        raise InvalidInput(f"task_params.{exc.field}: {exc}", fields={"task_params": [f"{exc.field}: {exc}"]}) from None
    return params


def _slug_free(slug: str, *, exclude_pk: int | None = None) -> None:
    if Study.objects.filter(slug=slug).exclude(pk=exclude_pk).exists():
        message = f"the slug {slug!r} is taken; choose another"
        raise Conflict(message, fields={"slug": [message]})


def _slug_new(title: str) -> str:
    base = (slugify(title) or "study")[:60]
    slug, n = base, 1
    while Study.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


def _validate(study: Study) -> None:
    _task_params_clean(study.task_params)
    study.full_clean(exclude=["owner"], validate_unique=False)  # the slug's uniqueness: _slug_free (409)
    explain_config_clean(study.explain_config)


@transaction.atomic
def study_create(*, owner, title: str, slug: str = "", **fields: Any) -> Study:
    """A draft study owned by `owner`. An empty slug is made from the title (unique); an empty
    explain_config means Grad-CAM on EfficientNet-Lite0."""
    unknown = sorted(set(fields) - set(EDITABLE))
    if unknown:
        raise InvalidInput(f"unknown setting(s): {', '.join(unknown)}", fields={name: ["unknown"] for name in unknown})
    slug = slug or _slug_new(title)
    _slug_free(slug)
    study = Study(owner=owner, slug=slug, title=title, **fields)
    if not study.explain_config:
        study.explain_config = DEFAULT_EXPLAIN_CONFIG
    _validate(study)
    study.save()
    return study


@transaction.atomic
def study_update(*, study: Study, **changes: Any) -> Study:
    """Change settings. Fields that may not change in the study's status, and whose value differs,
    raise Conflict naming them (nothing is changed)."""
    study = _locked(study)
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise InvalidInput(f"unknown setting(s): {', '.join(unknown)}", fields={name: ["unknown"] for name in unknown})
    changed = {name: value for name, value in changes.items() if getattr(study, name) != value}
    allowed = editable_fields(study.status)
    frozen = sorted(name for name in changed if name not in allowed)
    if frozen:
        message = f"study {study.slug} is {study.status}; these settings cannot change any more: {', '.join(frozen)}"
        raise Conflict(message, fields={name: [f"frozen while the study is {study.status}"] for name in frozen}, code="frozen")
    if "slug" in changed:
        _slug_free(changed["slug"], exclude_pk=study.pk)
    for name, value in changed.items():
        setattr(study, name, value)
    _validate(study)
    study.save()
    return study


def _locked(study: Study) -> Study:
    """The study re-read under its row lock; NotFound if it was deleted meanwhile."""
    locked = Study.objects.select_for_update().filter(pk=study.pk).first()
    if locked is None:
        raise NotFound(f"study {study.slug} no longer exists")
    return locked


def _transition(study: Study, *, allowed_from: tuple[str, ...], to: str, verb: str, hint: str = "") -> Study:
    study = _locked(study)
    if study.status not in allowed_from:
        raise Conflict(f"study {study.slug} is {study.status}; only a {' or '.join(allowed_from)} study can be {verb}{hint}")
    study.status = to
    return study


@transaction.atomic
def study_launch(*, study: Study) -> Study:
    """Open a draft study to participants, freeze its design and queue its explanation jobs."""
    hint = "; resume a paused study instead" if study.status == Study.Status.PAUSED else ""
    study = _transition(study, allowed_from=(Study.Status.DRAFT,), to=Study.Status.LIVE, verb="launched", hint=hint)
    if not study.stimuli.filter(role=StimulusRole.MAIN).exists():
        raise InvalidInput(f"study {study.slug} has no stimuli; upload images before launching")
    unchecked = study.stimuli.filter(role=StimulusRole.CATCH, known_region__isnull=True).values_list("name", flat=True)
    if unchecked:
        raise InvalidInput(f"catch stimuli without a known region: {', '.join(unchecked)}",
                           fields={"known_region": ["required for a catch stimulus"]})
    if not study.completion_code:
        study.completion_code = secrets.token_hex(4).upper()
    if not study.explain_config:
        study.explain_config = DEFAULT_EXPLAIN_CONFIG
    study.launched_at = study.launched_at or timezone.now()
    study.full_clean()
    study.save()
    explanation_jobs_create(study=study)
    return study


@transaction.atomic
def study_pause(*, study: Study) -> Study:
    """Stop admitting participants and handing out trials; answers to trials already handed out
    are still accepted."""
    study = _transition(study, allowed_from=(Study.Status.LIVE,), to=Study.Status.PAUSED, verb="paused")
    study.save(update_fields=["status"])
    return study


@transaction.atomic
def study_resume(*, study: Study) -> Study:
    study = _transition(study, allowed_from=(Study.Status.PAUSED,), to=Study.Status.LIVE, verb="resumed")
    study.save(update_fields=["status"])
    return study


@transaction.atomic
def study_close(*, study: Study) -> Study:
    """End data collection for good (results stay readable)."""
    study = _transition(study, allowed_from=(Study.Status.LIVE, Study.Status.PAUSED), to=Study.Status.CLOSED, verb="closed")
    study.save(update_fields=["status"])
    return study


def _audit(study: Study, action: str, actor, **details) -> None:
    audit_record(action=action, actor=actor, study_id=study.pk, study_slug=study.slug,
                 target=f"study {study.slug} ({study.title})", details=details)


@transaction.atomic
def study_archive(*, study: Study, actor) -> Study:
    """Archive a closed study: it leaves the study lists (its URL still works and says "archived"),
    participants still see a closed study, and nothing is deleted. `actor`: the user, for the audit log."""
    study = _locked(study)
    if study.archived_at is not None:
        raise Conflict(f"study {study.slug} is archived already")
    if study.status != Study.Status.CLOSED:
        hint = "; a draft can be deleted instead" if study.status == Study.Status.DRAFT else "; close it first"
        raise Conflict(f"study {study.slug} is {study.status}; only a closed study can be archived{hint}")
    study.archived_at = timezone.now()
    study.save(update_fields=["archived_at"])
    _audit(study, AuditAction.STUDY_ARCHIVED, actor,
           participants=study.participants.count(), stimuli=study.stimuli.count())
    return study


@transaction.atomic
def study_restore(*, study: Study, actor) -> Study:
    """Bring an archived study back into the study lists (it stays closed)."""
    study = _locked(study)
    if study.archived_at is None:
        raise Conflict(f"study {study.slug} is not archived")
    study.archived_at = None
    study.save(update_fields=["archived_at"])
    _audit(study, AuditAction.STUDY_RESTORED, actor)
    return study


@transaction.atomic
def study_delete(*, study: Study, actor, confirm: str) -> dict[str, int]:
    """Delete a draft that was never launched, for good: the study, its stimuli and variants, their
    stored files (uploads and renditions; a file a clone's stimulus still names stays), its shares,
    map recipes and anything else hanging off it. Explanation jobs are keyed by image: those of its
    images that a stimulus of another study also holds stay; the others are deleted with their maps.

    confirm: the study's slug, typed by the person deleting (InvalidInput otherwise). Conflict (409)
    for a study that was launched (archive a closed one instead) or holds participant records.
    Returns the counts recorded in the audit log: stimuli, variants, files, explanation_jobs_kept,
    explanation_jobs_deleted, rows. The files go once the transaction commits."""
    study = _locked(study)
    if study.status != Study.Status.DRAFT or study.launched_at is not None:
        hint = "; archive it instead" if study.status == Study.Status.CLOSED else "; close it, then archive it"
        raise Conflict(f"study {study.slug} is {study.status}; only a draft that was never launched can be deleted{hint}")
    participants = study.participants.count()
    if participants:
        raise Conflict(f"study {study.slug} holds {participants} participant record(s); it cannot be deleted")
    if confirm != study.slug:
        message = f"to delete study {study.slug}, confirm with its slug: confirm={study.slug}"
        raise InvalidInput(message, fields={"confirm": [f"must be {study.slug!r}"]})
    stimulus_ids = list(study.stimuli.values_list("pk", flat=True))
    variants = study.stimuli.filter(source__isnull=False).count()
    images = set(study.stimuli.values_list("sha256", flat=True))
    pk, slug, title = study.pk, study.slug, study.title
    deleted, files = rows_delete([study])
    pruned = explanation_jobs_prune(image_sha256s=images)
    kept = ExplanationJob.objects.filter(image_sha256__in=images).count()
    details = {
        "stimuli": len(stimulus_ids), "variants": variants, "files": files + pruned["files"],
        "explanation_jobs_kept": kept, "explanation_jobs_deleted": pruned["jobs"], "rows": sum(deleted.values()) + pruned["jobs"],
    }
    audit_record(action=AuditAction.STUDY_DELETED, actor=actor, study_id=pk, study_slug=slug,
                 target=f"study {slug} ({title}), a draft", details=details)
    return details


_STIMULUS_COPIED = (
    "image", "rendition", "width", "height", "sha256", "name", "class_index", "class_name", "condition", "role",
    "known_region", "corruption", "severity", "seed",
)


@transaction.atomic
def study_clone(*, study: Study, owner, slug: str = "", title: str = "") -> Study:
    """A new draft owned by `owner` with the settings and stimuli (variants linked to the copied
    sources) of `study`, any status. Not copied: participants, data, shares, completion code, status.
    The copies name the same stored files (immutable; see stimuli.py)."""
    fields = {name: getattr(study, name) for name in EDITABLE if name not in ("slug", "title", "completion_code")}
    clone = study_create(owner=owner, slug=slug, title=title or f"{study.title} (copy)", **fields)
    copies: dict[int, Stimulus] = {}
    for stimulus in sorted(study.stimuli.all(), key=lambda s: (s.source_id is not None, s.pk)):  # sources first
        copy = Stimulus(study=clone, source=copies.get(stimulus.source_id), **{f: getattr(stimulus, f) for f in _STIMULUS_COPIED})
        copy.save()
        copies[stimulus.pk] = copy
    return clone


@transaction.atomic
def study_share_set(*, study: Study, username: str, role: str) -> StudyShare:
    """Share `study` with the researcher `username` as `role` (view or edit); a second call changes the role."""
    if role not in StudyShare.Role.values:
        raise InvalidInput(f"role must be one of {', '.join(StudyShare.Role.values)}", fields={"role": ["invalid"]})
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise InvalidInput(f"no researcher named {username!r}", fields={"username": ["unknown"]})
    if user.pk == study.owner_id:
        raise InvalidInput(f"{username} owns study {study.slug}", fields={"username": ["the owner"]})
    share, _ = StudyShare.objects.update_or_create(study=study, user=user, defaults={"role": role})
    return share


@transaction.atomic
def study_share_remove(*, study: Study, username: str) -> None:
    deleted, _ = StudyShare.objects.filter(study=study, user__username=username).delete()
    if not deleted:
        raise NotFound(f"study {study.slug} is not shared with {username!r}")


@transaction.atomic
def stimulus_remove(*, study: Study, stimulus: Stimulus) -> list[int]:
    """Remove a stimulus of a draft study and its variants (`annotations.services.stimuli.stimulus_remove`),
    then the explanation jobs of their images that no stimulus holds any more. Returns the removed ids."""
    images = set(Stimulus.objects.filter(Q(pk=stimulus.pk) | Q(source=stimulus.pk)).values_list("sha256", flat=True))
    removed = stimulus_services.stimulus_remove(study=study, stimulus=stimulus)
    explanation_jobs_prune(image_sha256s=images)
    return removed
