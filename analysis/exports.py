"""Exports of a study: human maps for training (a folder or a zip) and raw responses (JSONL, CSV).

Human maps export layout (one entry per main stimulus and task kind of the study):

    manifest.json    {"format_version", "study", "title", "exported_at", "format", "study_ceiling", "entries": [...]}
    manifest.csv     the same entries, one line each (recipe as JSON, ceilings as columns)
    images/<stimulus id>.png                the 8-bit RGB rendition participants and models saw
    maps/<stimulus id>-<kind>.npy|png|npz   the human map at stimulus resolution (H x W)
    fixations/<stimulus id>-<kind>.npy|png  the binary fixation map (bubble, mouse)

npy: map float32 (the per-pixel mean over included participants), fixations bool. npz (compressed):
one file per entry holding `human_map` and, where there is one, `fixations`. png: map as 16-bit
greyscale of map / max (the entry's `png_scale` is max: map = png / 65535 * png_scale), fixations as
8-bit 0/255. Entries without responses have `has_map` false and no files (the training weight is 0).
"""
from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Iterator

import numpy as np
from django.utils import timezone
from PIL import Image

from annotations.models import Participant, Response, StimulusRole, Study

from .csv_cells import csv_line
from .models import HumanCeiling, HumanMap
from .selectors import human_map_fixations, human_map_mean
from .statistics import bootstrap_columns

FORMATS = ("npy", "png", "npz")
FORMAT_VERSION = 1
CEILING_METRICS = ("pcc", "spearman", "sim", "auc_judd", "nss")


class DirectorySink:
    """Writes export files under a folder (created)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def write(self, name: str, data: bytes) -> None:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


class ZipSink:
    """Writes export files into an open zip file (deflated; maps compress well)."""

    def __init__(self, archive: zipfile.ZipFile):
        self.archive = archive

    def write(self, name: str, data: bytes) -> None:
        self.archive.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _png(array: np.ndarray, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, format="PNG")
    return buffer.getvalue()


def _map_files(sink, stem: str, mean: np.ndarray, fixations: np.ndarray | None, fmt: str) -> dict:
    """Write one entry's files; returns the manifest fields naming them."""
    if fmt == "npy":
        sink.write(f"maps/{stem}.npy", _npy(mean.astype(np.float32)))
        if fixations is not None:
            sink.write(f"fixations/{stem}.npy", _npy(fixations.astype(bool)))
        return {"map": f"maps/{stem}.npy", "fixations": f"fixations/{stem}.npy" if fixations is not None else None}
    if fmt == "npz":
        arrays = {"human_map": mean.astype(np.float32)}
        if fixations is not None:
            arrays["fixations"] = fixations.astype(bool)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        sink.write(f"maps/{stem}.npz", buffer.getvalue())
        return {"map": f"maps/{stem}.npz", "fixations": f"maps/{stem}.npz" if fixations is not None else None}
    top = float(mean.max())
    scaled = np.round(mean / top * 65535).astype(np.uint16) if top > 0 else np.zeros(mean.shape, np.uint16)
    sink.write(f"maps/{stem}.png", _png(scaled))
    if fixations is not None:
        sink.write(f"fixations/{stem}.png", _png(fixations.astype(np.uint8) * 255, "L"))
    return {"map": f"maps/{stem}.png", "fixations": f"fixations/{stem}.png" if fixations is not None else None, "png_scale": top}


def _ceilings(study: Study) -> dict[tuple[int, str], dict]:
    out: dict[tuple[int, str], dict] = {}
    for sid, kind, metric, ceiling, floor in HumanCeiling.objects.filter(stimulus__study=study, metric__in=CEILING_METRICS).values_list(
        "stimulus_id", "task_kind", "metric", "ceiling", "floor"
    ):
        entry = out.setdefault((sid, kind), {"ceiling": {}, "floor": {}})
        entry["ceiling"][metric], entry["floor"][metric] = ceiling, floor
    return out


def _study_ceilings(study: Study, kinds: list[str]) -> dict:
    """task kind -> metric -> the study's ceiling and floor (means over stimuli, bootstrap 95% CI),
    e.g. for Harmonization's alignment = mean Spearman / ceiling."""
    rows = HumanCeiling.objects.filter(stimulus__study=study, stimulus__role=StimulusRole.MAIN, task_kind__in=kinds,
                                       metric__in=CEILING_METRICS).values_list("task_kind", "metric", "ceiling", "floor")
    grouped: dict[tuple[str, str], list] = {}
    for kind, metric, ceiling, floor in rows:
        grouped.setdefault((kind, metric), []).append((np.nan if ceiling is None else ceiling, np.nan if floor is None else floor))
    out: dict[str, dict] = {}
    for (kind, metric), values in sorted(grouped.items()):
        ceiling, floor = bootstrap_columns(np.array(values), rng=np.random.default_rng([0, len(values)]))
        out.setdefault(kind, {})[metric] = {
            "ceiling": _finite(ceiling.mean), "ceiling_ci": [_finite(ceiling.ci_low), _finite(ceiling.ci_high)],
            "floor": _finite(floor.mean), "floor_ci": [_finite(floor.ci_low), _finite(floor.ci_high)], "n_stimuli": ceiling.n,
        }
    return out


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def human_maps_export(study: Study, sink, *, fmt: str = "npy", task_kind: str | None = None) -> dict:
    """Write the study's human maps, fixation maps, images and manifests into `sink`; returns the
    manifest. Raises ValueError for an unknown format or task kind."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    kinds = [task_kind] if task_kind else list(study.task_kinds)
    if not set(kinds) <= set(study.task_kinds):
        raise ValueError(f"study {study.slug} has no task kind {task_kind!r} (it has {', '.join(study.task_kinds)})")
    maps = {(m.stimulus_id, m.task_kind): m for m in HumanMap.objects.filter(stimulus__study=study, task_kind__in=kinds)}
    ceilings = _ceilings(study)
    entries = []
    for stimulus in study.stimuli.filter(role=StimulusRole.MAIN).order_by("id"):
        with stimulus.rendition.open("rb") as handle:
            sink.write(f"images/{stimulus.pk}.png", handle.read())
        for kind in kinds:
            human_map = maps.get((stimulus.pk, kind))
            mean = human_map_mean(human_map) if human_map else None
            entry = {
                "stimulus_id": stimulus.pk, "name": stimulus.name, "condition": stimulus.condition,
                "source_stimulus_id": stimulus.source_id, "image": f"images/{stimulus.pk}.png", "image_sha256": stimulus.sha256,
                "width": stimulus.width, "height": stimulus.height, "class_index": stimulus.class_index,
                "class_name": stimulus.class_name, "task_kind": kind,
                "n_participants": human_map.n_participants if human_map else 0, "has_map": mean is not None,
                "map": None, "fixations": None,
                "recipe": {**human_map.recipe, "sigma_px_min": human_map.sigma_px_min, "sigma_px_max": human_map.sigma_px_max} if human_map else None,
                "map_revision": human_map.revision if human_map else None,
                **ceilings.get((stimulus.pk, kind), {"ceiling": {}, "floor": {}}),
            }
            if mean is not None:
                entry.update(_map_files(sink, f"{stimulus.pk}-{kind}", mean, human_map_fixations(human_map), fmt))
            entries.append(entry)
    manifest = {
        "format_version": FORMAT_VERSION, "study": study.slug, "title": study.title, "exported_at": timezone.now().isoformat(),
        "format": fmt, "map_dtype": "float32", "fixations_dtype": "bool",
        "map_definition": "per-pixel mean over included participants' maps at stimulus resolution, each participant weighing equally",
        "study_ceiling": _study_ceilings(study, kinds),
        "entries": entries,
    }
    sink.write("manifest.json", json.dumps(manifest, indent=1).encode())
    sink.write("manifest.csv", manifest_csv(entries).encode())
    return manifest


def manifest_csv(entries: list[dict]) -> str:
    """manifest.csv: one line per entry; text cells neutralised against spreadsheet formulas."""
    metrics = CEILING_METRICS
    header = ["stimulus_id", "name", "condition", "source_stimulus_id", "image", "image_sha256", "width", "height",
              "class_index", "class_name", "task_kind", "n_participants", "has_map", "map", "fixations", "png_scale",
              "recipe", "map_revision"] + [f"ceiling_{m}" for m in metrics] + [f"floor_{m}" for m in metrics]
    lines = [csv_line(header)]
    for e in entries:
        row = [e.get(h) for h in header[:16]]
        row += [json.dumps(e["recipe"], sort_keys=True) if e["recipe"] else "", e["map_revision"]]
        row += [e["ceiling"].get(m) for m in metrics] + [e["floor"].get(m) for m in metrics]
        lines.append(csv_line(row))
    return "".join(lines)


# --- raw responses -----------------------------------------------------------------------------


def _responses(study: Study):
    return (
        Response.objects.filter(trial__stimulus__study=study)
        .select_related("trial__participant", "trial__stimulus")
        .order_by("id")
    )


def _response_fields(response: Response) -> dict:
    trial, participant, stimulus = response.trial, response.trial.participant, response.trial.stimulus
    return {
        "response_id": response.pk, "client_uuid": str(response.client_uuid), "created_at": response.created_at.isoformat(),
        "duration_ms": response.duration_ms, "participant_id": participant.pk, "external_id": participant.external_id,
        "participant_status": participant.status, "excluded": participant.status == Participant.Status.EXCLUDED,
        "task_kind": trial.task_kind, "trial_id": trial.pk, "position": trial.position, "stimulus_id": stimulus.pk,
        "stimulus": stimulus.name, "role": stimulus.role, "condition": stimulus.condition, "source_stimulus_id": stimulus.source_id,
        "class_index": stimulus.class_index, "width": stimulus.width, "height": stimulus.height,
    }


def responses_jsonl(study: Study) -> Iterator[str]:
    """One JSON object per line per stored response (every role; `excluded` says who is left out of
    the maps), with the raw payload exactly as stored (stimulus px, ms)."""
    for response in _responses(study).iterator(chunk_size=500):
        yield json.dumps({**_response_fields(response), "payload": response.payload}, separators=(",", ":")) + "\n"


RESPONSE_COLUMNS = [
    "response_id", "client_uuid", "created_at", "duration_ms", "participant_id", "external_id", "participant_status",
    "excluded", "task_kind", "trial_id", "position", "stimulus_id", "stimulus", "role", "condition", "source_stimulus_id",
    "class_index", "width", "height", "n_strokes", "n_points", "payload",
]


def responses_csv(study: Study) -> Iterator[str]:
    """The same as CSV: one line per response, the payload as a JSON column plus point counts; text
    cells (the participant's external id, the stimulus name, ...) neutralised against spreadsheet
    formulas (analysis/csv_cells.py)."""
    yield csv_line(RESPONSE_COLUMNS)
    for response in _responses(study).iterator(chunk_size=500):
        payload = response.payload or {}
        strokes = payload.get("strokes", [])
        fields = {
            **_response_fields(response),
            "n_strokes": len(strokes),
            "n_points": sum(len(s.get("points", [])) for s in strokes) + len(payload.get("clicks", [])) + len(payload.get("samples", [])),
            "payload": json.dumps(payload, separators=(",", ":")),
        }
        yield csv_line(fields[c] for c in RESPONSE_COLUMNS)
