"""Datasets for training toward human maps (pure torch/numpy/Pillow; no Django, no database).

Each item is the stimulus as the model sees it (resized whole to the model's input size, no crop,
normalised with the model's mean/std, as the explain pipeline feeds models), its class label (-1
without one), the human map resized the same way, and a weight of 1.0 where the stimulus has a
human map and 0.0 where it has none (the losses zero those):

    from explain.finetune.dataset import HumanMapDataset
    data = HumanMapDataset("export/", task_kind="paint", size=224)
    batch = next(iter(torch.utils.data.DataLoader(data, batch_size=16)))
    batch["image"]  # B x 3 x 224 x 224 float32
    batch["label"]  # B int64 (-1 without a label)
    batch["human_map"]  # B x 1 x 224 x 224 float32 (the per-pixel mean; 0 where there is no map)
    batch["has_map"]  # B float32, 1.0 or 0.0
    batch["ceiling_spearman"], batch["ceiling_pcc"]  # B float64, the human ceiling (NaN: none)

`HumanMapDataset` reads an export folder written by `manage.py export_human_maps` (or its zip,
unpacked); `TensorMapDataset` holds tensors already in memory (the digits demonstration, a
researcher's own data). Both expose `facts` (one dict per item: stimulus_id, source_id, condition,
label, has_map), read without decoding any image, for splitting and per-condition scores.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset

from ..pipeline import image_rgb

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NAN = float("nan")


def map_resize(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """H x W -> size (rows, cols) in float64: bilinear, antialiased when shrinking (Pillow's
    BILINEAR coefficients, as the platform resizes maps before scoring them)."""
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float64))[None, None]
    if tuple(tensor.shape[-2:]) == tuple(size):
        return tensor[0, 0].numpy()
    return F.interpolate(tensor, size=size, mode="bilinear", align_corners=False, antialias=True)[0, 0].numpy()


def _read_map(root: Path, entry: dict) -> np.ndarray:
    path = root / entry["map"]
    if path.suffix == ".npy":
        return np.load(path, allow_pickle=False).astype(np.float64)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            return archive["human_map"].astype(np.float64)
    if path.suffix == ".png":
        return np.asarray(Image.open(path), dtype=np.float64) / 65535.0 * float(entry.get("png_scale") or 0.0)
    raise ValueError(f"unknown map file type: {path.name}")


def _size_pair(size) -> tuple[int, int]:
    pair = (int(size), int(size)) if isinstance(size, (int, np.integer)) else (int(size[0]), int(size[1]))
    if min(pair) < 1:
        raise ValueError(f"size must be positive, got {size!r}")
    return pair


def _number(value) -> float:
    return NAN if value is None else float(value)


class HumanMapDataset(Dataset):
    """Items of an export folder written by `manage.py export_human_maps` (or the zip, unpacked).

    task_kind: which kind's maps to use; required when the export holds several kinds.
    size: the model's input size, an int (square) or (height, width).
    include_unmapped: keep stimuli without a human map (has_map 0.0), as Harmonization mixes them in.
    `study_ceiling`: metric -> the export's study-level ceiling record for this task kind ({} if none).
    """

    def __init__(self, root, *, task_kind: str | None = None, size=224, include_unmapped: bool = True,
                 mean=IMAGENET_MEAN, std=IMAGENET_STD):
        self.root = Path(root)
        manifest_path = self.root / "manifest.json"
        if not manifest_path.is_file():
            raise ValueError(f"{self.root} holds no manifest.json: not a human-maps export (unpack the zip first)")
        manifest = json.loads(manifest_path.read_text())
        kinds = sorted({e["task_kind"] for e in manifest["entries"]})
        if task_kind is None:
            if len(kinds) > 1:
                raise ValueError(f"the export holds task kinds {kinds}: choose one with task_kind=")
            task_kind = kinds[0] if kinds else None
        elif task_kind not in kinds:
            raise ValueError(f"the export has no task kind {task_kind!r} (it has {kinds})")
        self.task_kind, self.size = task_kind, _size_pair(size)
        self.entries = [e for e in manifest["entries"] if e["task_kind"] == task_kind and (include_unmapped or e["has_map"])]
        self.study_ceiling = (manifest.get("study_ceiling") or {}).get(task_kind) or {}
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def facts(self) -> list[dict]:
        return [_facts(e) for e in self.entries]

    def fingerprint(self) -> str:
        """Changes when any entry's image, map or label, the size or the normalisation changes (sha256,
        first 16 hex digits)."""
        keys = [(e["stimulus_id"], e.get("image_sha256"), e.get("map_revision"), e["has_map"], e["class_index"]) for e in self.entries]
        normalisation = [self.mean.flatten().tolist(), self.std.flatten().tolist()]
        return hashlib.sha256(json.dumps([self.task_kind, list(self.size), normalisation, keys]).encode()).hexdigest()[:16]

    def image_tensor(self, entry: dict) -> torch.Tensor:
        with Image.open(self.root / entry["image"]) as image:
            resized = image_rgb(image).resize((self.size[1], self.size[0]), Image.BILINEAR)
        array = torch.from_numpy(np.asarray(resized, dtype=np.float32) / 255.0).permute(2, 0, 1)
        return (array - self.mean) / self.std

    def map_tensor(self, entry: dict) -> torch.Tensor:
        if not entry["has_map"]:
            return torch.zeros(1, *self.size)
        resized = map_resize(_read_map(self.root, entry), self.size)
        return torch.from_numpy(resized.astype(np.float32)).unsqueeze(0)

    def __getitem__(self, index: int) -> dict:
        entry = self.entries[index]
        label = entry["class_index"]
        ceiling = entry.get("ceiling") or {}
        return {
            "image": self.image_tensor(entry),
            "label": torch.tensor(-1 if label is None else int(label), dtype=torch.long),
            "human_map": self.map_tensor(entry),
            "has_map": torch.tensor(1.0 if entry["has_map"] else 0.0),
            "stimulus_id": entry["stimulus_id"],
            "ceiling_spearman": torch.tensor(_number(ceiling.get("spearman")), dtype=torch.float64),
            "ceiling_pcc": torch.tensor(_number(ceiling.get("pcc")), dtype=torch.float64),
        }


def _facts(entry: dict) -> dict:
    source = entry.get("source_stimulus_id")
    label = entry["class_index"]
    return {"stimulus_id": entry["stimulus_id"], "source_id": entry["stimulus_id"] if source is None else source,
            "condition": entry.get("condition") or "original", "label": -1 if label is None else int(label),
            "has_map": bool(entry["has_map"])}


class TensorMapDataset(Dataset):
    """A dataset held in memory: images N x C x H x W (already normalised), labels N (int, -1 none),
    human maps N x H x W (>= 0; all zero where an image has none, when `has_map` is not given),
    optional source ids (variants of one source share one; default: each image its own), conditions
    (default "original") and per-image ceilings (default none)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, human_maps: torch.Tensor, *, has_map=None,
                 sources=None, conditions=None, ceiling_spearman=None, ceiling_pcc=None, study_ceiling=None):
        n = len(images)
        if images.dim() != 4 or human_maps.shape != (n, *images.shape[-2:]) or len(labels) != n:
            raise ValueError(f"images N x C x H x W, labels N and human maps N x H x W must agree; got "
                             f"{tuple(images.shape)}, {tuple(labels.shape)}, {tuple(human_maps.shape)}")
        self.images, self.labels = images.float(), torch.as_tensor(labels, dtype=torch.long)
        self.human_maps = human_maps.float()
        self.has_map = (self.human_maps.flatten(1).amax(1) > 0) if has_map is None else torch.as_tensor(has_map, dtype=torch.bool)
        self.sources = list(range(n)) if sources is None else [int(s) for s in sources]
        self.conditions = ["original"] * n if conditions is None else [str(c) for c in conditions]
        self.ceiling_spearman = torch.full((n,), NAN, dtype=torch.float64) if ceiling_spearman is None else torch.as_tensor(ceiling_spearman, dtype=torch.float64)
        self.ceiling_pcc = torch.full((n,), NAN, dtype=torch.float64) if ceiling_pcc is None else torch.as_tensor(ceiling_pcc, dtype=torch.float64)
        self.study_ceiling = study_ceiling or {}

    def __len__(self) -> int:
        return len(self.images)

    @property
    def facts(self) -> list[dict]:
        return [{"stimulus_id": i, "source_id": self.sources[i], "condition": self.conditions[i],
                 "label": int(self.labels[i]), "has_map": bool(self.has_map[i])} for i in range(len(self))]

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for tensor in (self.images, self.labels, self.human_maps, self.has_map):
            digest.update(tensor.contiguous().numpy().tobytes())
        digest.update(json.dumps([self.sources, self.conditions]).encode())
        return digest.hexdigest()[:16]

    def __getitem__(self, index: int) -> dict:
        return {
            "image": self.images[index],
            "label": self.labels[index],
            "human_map": self.human_maps[index][None] * self.has_map[index],
            "has_map": self.has_map[index].float(),
            "stimulus_id": index,
            "ceiling_spearman": self.ceiling_spearman[index],
            "ceiling_pcc": self.ceiling_pcc[index],
        }
