"""A PyTorch Dataset over a human-maps export (pure torch/numpy/Pillow; no Django, no database).

Ready for training a model toward human maps (REFERENCE.md section 5, Harmonization): each item is
the stimulus as the model sees it (resized whole to size x size, no crop, ImageNet mean/std, as
the explain pipeline feeds models), its ImageNet label, the human map resized the same way, and a
weight of 1.0 where the stimulus has a human map and 0.0 where it has none (the loss zeroes those).

    from analysis.dataset import HumanMapDataset
    data = HumanMapDataset("export/", task_kind="paint", size=224)
    batch = next(iter(torch.utils.data.DataLoader(data, batch_size=16)))
    batch["image"]  # B x 3 x 224 x 224 float32
    batch["label"]  # B int64 (-1 without a label)
    batch["human_map"]  # B x 1 x 224 x 224 float32 (the per-pixel mean; 0 where there is no map)
    batch["has_map"]  # B float32, 1.0 or 0.0
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from .metrics import resize_to

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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


class HumanMapDataset(Dataset):
    """Items of an export folder written by `manage.py export_human_maps` (or the zip, unpacked).

    task_kind: which kind's maps to use; required when the export holds several kinds.
    include_unmapped: keep stimuli without a human map (has_map 0.0), as Harmonization mixes them in.
    """

    def __init__(self, root, *, task_kind: str | None = None, size: int = 224, include_unmapped: bool = True,
                 mean=IMAGENET_MEAN, std=IMAGENET_STD):
        self.root = Path(root)
        manifest = json.loads((self.root / "manifest.json").read_text())
        kinds = sorted({e["task_kind"] for e in manifest["entries"]})
        if task_kind is None:
            if len(kinds) > 1:
                raise ValueError(f"the export holds task kinds {kinds}: choose one with task_kind=")
            task_kind = kinds[0] if kinds else None
        elif task_kind not in kinds:
            raise ValueError(f"the export has no task kind {task_kind!r} (it has {kinds})")
        self.task_kind, self.size = task_kind, int(size)
        self.entries = [e for e in manifest["entries"] if e["task_kind"] == task_kind and (include_unmapped or e["has_map"])]
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.entries)

    def image_tensor(self, entry: dict) -> torch.Tensor:
        with Image.open(self.root / entry["image"]) as image:
            resized = image.convert("RGB").resize((self.size, self.size), Image.BILINEAR)
        array = torch.from_numpy(np.asarray(resized, dtype=np.float32) / 255.0).permute(2, 0, 1)
        return (array - self.mean) / self.std

    def map_tensor(self, entry: dict) -> torch.Tensor:
        if not entry["has_map"]:
            return torch.zeros(1, self.size, self.size)
        resized = resize_to(_read_map(self.root, entry), (self.size, self.size))
        return torch.from_numpy(resized.astype(np.float32)).unsqueeze(0)

    def __getitem__(self, index: int) -> dict:
        entry = self.entries[index]
        label = entry["class_index"]
        return {
            "image": self.image_tensor(entry),
            "label": torch.tensor(-1 if label is None else int(label), dtype=torch.long),
            "human_map": self.map_tensor(entry),
            "has_map": torch.tensor(1.0 if entry["has_map"] else 0.0),
            "stimulus_id": entry["stimulus_id"],
        }
