"""Writes for a study's stimuli while it is a draft: upload one image or a zip with labels, generate
corrupted variants, remove (keyword-only, atomic).

Nothing is half-done: every check runs before the first row or file is written; the rows of one
call are created in one transaction, and the files written by a call that fails are deleted again
(`stored_files_rollback`). Stored files are never overwritten or shared between uploads, except by
`study_clone`, whose copies name the same immutable files; a file is deleted only when no stimulus
names it any more.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
from contextvars import ContextVar
from typing import IO, Iterable, Iterator

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Q
from PIL import Image

from studyserver.errors import Conflict, InvalidInput, NotFound

from ..corruptions import corrupt_png, corruption_request_problems
from ..imagenet import imagenet_class_resolve
from ..images import ImageInfo, ImageRejected, image_inspect, image_rendition
from ..models import Stimulus, StimulusRole, Study
from ..regions import RegionInvalid, region_clean
from ..uploads import ArchiveLimits, LabelRow, UploadRejected, zip_upload_read
from .removal import rows_delete

_written: ContextVar[list | None] = ContextVar("stimulus_files_written", default=None)


@contextlib.contextmanager
def stored_files_rollback() -> Iterator[None]:
    """Delete the files saved inside this block if the block raises (outermost block only)."""
    if _written.get() is not None:
        yield
        return
    written: list = []
    token = _written.set(written)
    try:
        yield
    except BaseException:
        for storage, name in written:
            storage.delete(name)
        raise
    finally:
        _written.reset(token)


def _file_save(field, filename: str, data: bytes) -> None:
    field.save(filename, ContentFile(data), save=False)
    written = _written.get()
    if written is not None:
        written.append((field.storage, field.name))


def _draft_locked(study: Study, action: str) -> Study:
    """The study re-read under a row lock (so a launch or a deletion waits for, or is waited for by,
    this write), if it still exists and is a draft."""
    locked = Study.objects.select_for_update().filter(pk=study.pk).first()
    if locked is None:
        raise NotFound(f"study {study.slug} no longer exists")
    study = locked
    if study.status != Study.Status.DRAFT:
        raise Conflict(f"study {study.slug} is {study.status}; {action} only while it is a draft")
    return study


def _class_resolve(class_index: int | str | None, class_name: str) -> tuple[int | None, str]:
    if class_index in (None, "") and not class_name:
        return None, ""
    try:
        return imagenet_class_resolve(class_index if class_index not in (None, "") else class_name)
    except ValueError as exc:
        raise InvalidInput(str(exc), fields={"class": [str(exc)]}) from None


def known_region_resolve(region, *, role: str, width: int, height: int) -> tuple[dict | None, str | None]:
    """(the cleaned region, None) or (None, why it is wrong) for this role and rendition size.

    A region (annotations.regions) is {"boxes": [[x0, y0, x1, y1], ...], "polygons": [[[x, y], ...], ...]}
    in stimulus pixels; a bare box [x0, y0, x1, y1] is accepted as shorthand. Required for catch
    stimuli (their attention check), optional for practice ones (the instructions' example), refused
    for main stimuli."""
    if region is None:
        if role == StimulusRole.CATCH:
            return None, "a catch stimulus needs its known_region (boxes or polygons in image pixels)"
        return None, None
    if role == StimulusRole.MAIN:
        return None, "known_region is only for catch and practice stimuli"
    if isinstance(region, (list, tuple)):
        region = {"boxes": [list(region)]}
    try:
        return region_clean(region, width=width, height=height), None
    except RegionInvalid as exc:
        return None, f"{exc.field}: {exc}"


def _source_problem(study: Study, source: Stimulus | None, condition: str) -> str | None:
    """Why `source` cannot take a variant of this condition, or None (see `_variant_exists`)."""
    if source is None:
        return None
    if source.study_id != study.pk:
        return f"source stimulus {source.pk} belongs to another study"
    if source.source_id is not None:
        return f"source stimulus {source.pk} is itself a variant; variants are made from originals"
    if condition == "original":
        return "a variant needs a condition other than 'original'"
    return _variant_exists(source, condition)


def _variant_exists(source: Stimulus | None, condition: str) -> str | None:
    if source is not None and Stimulus.objects.filter(source=source, condition=condition).exists():
        return f"stimulus {source.pk} already has a variant with condition {condition!r}"
    return None


def _rendition_png(data: bytes) -> tuple[bytes, int, int]:
    """The 8-bit RGB PNG participants and models see (EXIF orientation applied), and its size."""
    picture = image_rendition(data)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=False, compress_level=6)
    return buffer.getvalue(), picture.width, picture.height


def _inspect(data: bytes, filename: str) -> ImageInfo:
    try:
        return image_inspect(data, max_pixels=settings.STIMULUS_MAX_PIXELS, max_bytes=settings.STIMULUS_MAX_BYTES)
    except ImageRejected as exc:
        raise InvalidInput(f"{filename}: {exc}", fields={"image": [str(exc)]}) from None


@transaction.atomic
def stimulus_create(
    *,
    study: Study,
    data: bytes,
    filename: str,
    name: str = "",
    class_index: int | str | None = None,
    class_name: str = "",
    condition: str = "original",
    source: Stimulus | None = None,
    role: str = StimulusRole.MAIN,
    known_region: dict | list | None = None,
    corruption: str = "",
    severity: int | None = None,
    seed: int | None = None,
) -> Stimulus:
    """Store an image as a stimulus of a draft study. Refuses non-images, images over the limits,
    duplicates, unknown classes, bad known regions and variants of variants; writes files last."""
    study = _draft_locked(study, "stimuli can be added")
    info = _inspect(data, filename)
    if Stimulus.objects.filter(study=study, sha256=info.sha256).exists():
        raise Conflict(f"{filename}: this image is already a stimulus of study {study.slug}")
    condition = condition or "original"
    if conflict := _variant_exists(source, condition):
        raise Conflict(conflict, fields={"source": [conflict]})
    if problem := _source_problem(study, source, condition):
        raise InvalidInput(problem, fields={"source": [problem]})
    rendition, width, height = _rendition_png(data)
    known_region, problem = known_region_resolve(known_region, role=role, width=width, height=height)
    if problem:
        raise InvalidInput(f"{filename}: {problem}", fields={"known_region": [problem]})
    index, full_name = _class_resolve(class_index, class_name)
    stimulus = Stimulus(
        study=study,
        sha256=info.sha256,
        width=width,
        height=height,
        name=(name or filename.rsplit("/", 1)[-1])[:200],
        class_index=index,
        class_name=full_name,
        condition=condition,
        source=source,
        role=role,
        known_region=known_region,
        corruption=corruption,
        severity=severity,
        seed=seed,
    )
    stimulus.full_clean(exclude=["image", "rendition", "width", "height"])
    with stored_files_rollback():
        _file_save(stimulus.image, filename, data)
        _file_save(stimulus.rendition, "rendition.png", rendition)
        stimulus.width, stimulus.height = width, height
        stimulus.save()
    return stimulus


# --- zip + CSV -----------------------------------------------------------------------------------


def archive_limits() -> ArchiveLimits:
    return ArchiveLimits(
        max_members=settings.STIMULUS_ZIP_MAX_FILES,
        max_member_bytes=settings.STIMULUS_MAX_BYTES,
        max_total_bytes=settings.STIMULUS_ZIP_MAX_TOTAL_BYTES,
        max_ratio=settings.STIMULUS_ZIP_MAX_RATIO,
    )


def _rows_check(study: Study, rows: list[LabelRow], files: dict[str, bytes]) -> dict[str, ImageInfo]:
    """Every image decodes within the limits, is new to the study and to the upload, catch regions
    fit, and sources resolve. Raises InvalidInput listing every problem."""
    problems, infos, by_sha = [], {}, {}
    existing = set(study.stimuli.values_list("sha256", flat=True))
    in_upload = {row.file for row in rows}
    for row in rows:
        try:
            info = image_inspect(files[row.file], max_pixels=settings.STIMULUS_MAX_PIXELS, max_bytes=settings.STIMULUS_MAX_BYTES)
        except ImageRejected as exc:
            problems.append(f"{row.file}: {exc}")
            continue
        infos[row.file] = info
        if info.sha256 in existing:
            problems.append(f"{row.file}: this image is already a stimulus of study {study.slug}")
        if info.sha256 in by_sha:
            problems.append(f"{row.file}: the same image as {by_sha[info.sha256]}")
        by_sha.setdefault(info.sha256, row.file)
        _, problem = known_region_resolve(row.known_region, role=row.role, width=info.width, height=info.height)
        if problem:
            problems.append(f"{row.where}: {problem}")
        if row.source and row.source not in in_upload:
            matches = list(study.stimuli.filter(name=row.source, source__isnull=True)[:2])
            if len(matches) != 1:
                found = "two stimuli have that name" if matches else "no such file in the zip or stimulus in the study"
                problems.append(f"{row.where}: source {row.source!r}: {found}")
            elif (problem := _source_problem(study, matches[0], row.condition)) is not None:
                problems.append(f"{row.where}: {problem}")
    if problems:
        raise InvalidInput("; ".join(problems[:20]), fields={"archive": problems})
    return infos


def stimuli_import_zip(*, study: Study, archive: IO[bytes], labels: bytes | None = None) -> list[Stimulus]:
    """All images of a zip as stimuli, labelled by its CSV (see annotations/uploads.py), or nothing:
    any problem anywhere raises InvalidInput listing them all, and no row or file is left behind.
    Returns the stimuli in CSV order."""
    with transaction.atomic():
        _draft_locked(study, "stimuli can be added")
    try:
        upload = zip_upload_read(
            archive, limits=archive_limits(), labels=labels, class_resolve=imagenet_class_resolve
        )
    except UploadRejected as exc:
        raise InvalidInput(str(exc), fields={exc.field: exc.problems}) from None
    _rows_check(study, upload.rows, upload.files)
    created: dict[str, Stimulus] = {}
    with stored_files_rollback(), transaction.atomic():
        study = _draft_locked(study, "stimuli can be added")
        in_upload = {row.file for row in upload.rows}
        ordered = [r for r in upload.rows if r.source not in in_upload] + [r for r in upload.rows if r.source in in_upload]
        for row in ordered:
            source = created.get(row.source) or (study.stimuli.get(name=row.source, source__isnull=True) if row.source else None)
            class_value = row.class_value or (source.class_index if source is not None else None)
            created[row.file] = _row_create(
                row,
                study=study,
                data=upload.files[row.file],
                filename=row.file,
                name=row.name or row.file.rsplit("/", 1)[-1],
                class_index=class_value,
                condition=row.condition,
                source=source,
                role=row.role,
                known_region=list(row.known_region) if row.known_region else None,
            )
    return [created[row.file] for row in upload.rows]


def _row_create(row: LabelRow, **kwargs) -> Stimulus:
    try:
        return stimulus_create(**kwargs)
    except (InvalidInput, Conflict) as exc:
        message = f"{row.where}: {exc.message}"
        raise type(exc)(message, fields={"archive": [message]}) from None


# --- corrupted variants --------------------------------------------------------------------------


def variant_seed(*, seed: int, source_sha256: str, corruption: str, severity: int) -> int:
    """The seed passed to `corrupt` for one variant: a 63-bit hash of (seed, source image, corruption,
    severity), so each variant is reproducible on its own, whatever else is generated with it."""
    digest = hashlib.sha256(f"{seed}:{source_sha256}:{corruption}:{severity}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def _rendition_array(stimulus: Stimulus) -> np.ndarray:
    with stimulus.rendition.open("rb") as handle:
        return np.asarray(Image.open(io.BytesIO(handle.read())).convert("RGB"))


def _variant_sources(study: Study, source_ids: Iterable[int] | None) -> list[Stimulus]:
    originals = study.stimuli.filter(role=StimulusRole.MAIN, source__isnull=True)
    if source_ids is None:
        return list(originals)
    wanted = list(dict.fromkeys(source_ids))
    found = {s.pk: s for s in originals.filter(pk__in=wanted)}
    missing = [i for i in wanted if i not in found]
    if missing:
        message = f"not original main stimuli of study {study.slug}: {', '.join(map(str, missing))}"
        raise InvalidInput(message, fields={"sources": [message]})
    return [found[i] for i in wanted]


def stimulus_variants_create(
    *, study: Study, corruptions: list[str], severities: list[int], seed: int, source_ids: list[int] | None = None
) -> list[Stimulus]:
    """For each source (default: every original main stimulus) x corruption x severity, a variant
    stimulus: condition "<corruption>-<severity>", linked to its source, same class, made server-side
    by `corrupt(source rendition, corruption, severity, variant_seed(...))`. All or nothing."""
    with transaction.atomic():
        _draft_locked(study, "variants can be generated")
    if problems := corruption_request_problems(corruptions, severities):
        raise InvalidInput("; ".join(sum(problems.values(), [])), fields=problems)
    sources = _variant_sources(study, source_ids)
    pairs = [(c, s) for c in dict.fromkeys(corruptions) for s in dict.fromkeys(severities)]
    count, limit = len(sources) * len(pairs), settings.STIMULUS_VARIANTS_MAX
    pixels, pixel_limit = sum(s.width * s.height for s in sources) * len(pairs), settings.STIMULUS_VARIANTS_MAX_PIXELS
    if count > limit or pixels > pixel_limit:
        message = (
            f"{count} variants of {pixels} pixels in all requested; at most {limit} variants and {pixel_limit} "
            "pixels per request (they are computed while the request waits): ask for fewer sources, "
            "corruptions or severities at a time"
        )
        raise InvalidInput(message, fields={"corruptions": ["too many"]})
    if not sources:
        raise InvalidInput(f"study {study.slug} has no original main stimuli to corrupt", fields={"sources": ["none"]})
    taken = list(
        Stimulus.objects.filter(source__in=sources, condition__in=[f"{c}-{s}" for c, s in pairs]).values_list(
            "source_id", "condition"
        )
    )
    if taken:
        listed = ", ".join(f"{cond} of stimulus {sid}" for sid, cond in taken[:20])
        raise Conflict(f"these variants exist already: {listed}", fields={"corruptions": [listed]})
    created = []
    with stored_files_rollback(), transaction.atomic():
        study = _draft_locked(study, "variants can be generated")
        for source in sources:
            pixels = _rendition_array(source)
            stem = source.name.rsplit(".", 1)[0]
            for name, severity in pairs:
                used = variant_seed(seed=seed, source_sha256=source.sha256, corruption=name, severity=severity)
                condition = f"{name}-{severity}"
                created.append(
                    stimulus_create(
                        study=study,
                        data=corrupt_png(pixels, name, severity, used),
                        filename=f"{stem}-{condition}.png",
                        name=f"{stem} [{condition}]",
                        class_index=source.class_index,
                        condition=condition,
                        source=source,
                        corruption=name,
                        severity=severity,
                        seed=used,
                    )
                )
    return created


# --- removal -------------------------------------------------------------------------------------


@transaction.atomic
def stimulus_remove(*, study: Study, stimulus: Stimulus) -> list[int]:
    """Remove a stimulus of a draft study, and its variants with it. Returns the removed ids.
    Files are deleted after the commit, unless another stimulus (a clone) still names them."""
    study = _draft_locked(study, "stimuli can be removed")
    doomed = list(Stimulus.objects.filter(Q(pk=stimulus.pk) | Q(source=stimulus.pk)).values_list("pk", flat=True))
    rows_delete(Stimulus.objects.filter(pk__in=doomed))
    return sorted(doomed)
