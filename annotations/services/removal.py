"""Deleting rows with everything that cascades from them and the files they name.

Used by `stimulus_remove` and the researcher's `study_delete` (drafts only). Invariants:
* A stored file is deleted only after the deletion commits, and only if no remaining row names it
  in the same field (a clone's stimuli name the same immutable upload and rendition files).
* Every file field of every cascaded row counts (stimulus uploads and renditions, human maps, model
  maps), found through Django's deletion collector, so a file field added later is covered too.
* Explanation jobs are keyed by image content, not by stimulus, so nothing here touches them; the
  researcher's services prune the jobs of images no stimulus holds any more.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from typing import Iterable

from django.db import models, router, transaction
from django.db.models.deletion import Collector

log = logging.getLogger(__name__)

# (model, file field name) -> stored names
NamedFiles = dict[tuple[type[models.Model], str], set[str]]


def _file_fields(model: type[models.Model]) -> list[models.FileField]:
    return [f for f in model._meta.concrete_fields if isinstance(f, models.FileField)]


def _named_files(collector: Collector) -> NamedFiles:
    """Every file named by a row the collector will delete, by (model, field)."""
    found: NamedFiles = defaultdict(set)
    # The collector loads cascaded rows with only their keys: read the names in one query per model.
    querysets = [model._base_manager.filter(pk__in=[obj.pk for obj in instances]) for model, instances in collector.data.items()]
    for queryset in querysets + list(collector.fast_deletes):
        for field in _file_fields(queryset.model):
            found[(queryset.model, field.name)].update(queryset.values_list(field.attname, flat=True))
    return {key: {name for name in names if name} for key, names in found.items()}


def _unreferenced(files: NamedFiles) -> NamedFiles:
    """The names no remaining row of the same model names in the same field."""
    orphans: NamedFiles = {}
    for (model, field), names in files.items():
        still = set(model._base_manager.filter(**{f"{field}__in": names}).values_list(field, flat=True))
        if names - still:
            orphans[(model, field)] = names - still
    return orphans


def _files_delete(files: NamedFiles) -> None:
    """Delete the files (checked again: a row made since may name one); a failure is logged."""
    for (model, field), names in _unreferenced(files).items():
        storage = model._meta.get_field(field).storage
        for name in sorted(names):
            try:
                storage.delete(name)
            except OSError:
                log.exception("could not delete stored file %s (%s.%s)", name, model._meta.label, field)


def rows_delete(objects: Iterable[models.Model]) -> tuple[dict[str, int], int]:
    """Delete the rows and everything that cascades from them, inside the caller's transaction; once
    it commits, delete the files they named that no remaining row names. A PROTECT relation raises
    ProtectedError (nothing deleted). Returns ({model label: rows deleted}, files to delete)."""
    objects = list(objects)
    if not objects:
        return {}, 0
    collector = Collector(using=router.db_for_write(type(objects[0])), origin=objects[0])
    collector.collect(objects)
    files = _named_files(collector)
    _, counts = collector.delete()
    orphans = _unreferenced(files)
    if orphans:
        transaction.on_commit(lambda: _files_delete(orphans), robust=True)
    return {label: n for label, n in counts.items() if n}, sum(len(names) for names in orphans.values())
