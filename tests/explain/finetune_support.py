"""A human-maps export written the way `export_human_maps` writes it (manifest.json, images/, maps/),
without a database: sources with corrupted variants, conditions, labels, ceilings."""
import json

import numpy as np
from PIL import Image


def export_write(root, *, sources: int = 6, variants=("original", "gaussian_noise-3"), size=(40, 48), seed: int = 0,
                 unlabelled=(), unmapped=(), ceilings: bool = True) -> dict:
    """Each source image has one entry per condition (variants share the source's id, the original
    has source_stimulus_id None); class = source index % 3; the human map is a bright square where
    the image has a bright square. Stimulus ids listed in `unlabelled` / `unmapped` get no label / map."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "maps").mkdir(exist_ok=True)
    entries, stimulus_id = [], 100
    height, width = size
    for source in range(sources):
        top, left = rng.integers(0, height - 12), rng.integers(0, width - 12)
        original_id = stimulus_id
        for condition in variants:
            image = (rng.random((height, width, 3)) * 80).astype(np.uint8)
            image[top:top + 12, left:left + 12] = 200 + 20 * (source % 3)
            human = np.zeros((height, width), np.float32)
            human[top:top + 12, left:left + 12] = 0.5 + rng.random()
            Image.fromarray(image).save(root / f"images/{stimulus_id}.png")
            has_map = stimulus_id not in unmapped
            if has_map:
                np.save(root / f"maps/{stimulus_id}-paint.npy", human)
            entries.append({
                "stimulus_id": stimulus_id, "name": f"s{source}-{condition}.png", "condition": condition,
                "source_stimulus_id": None if condition == "original" else original_id, "image": f"images/{stimulus_id}.png",
                "image_sha256": f"sha-{stimulus_id}", "width": width, "height": height,
                "class_index": None if stimulus_id in unlabelled else source % 3, "class_name": "x", "task_kind": "paint",
                "n_participants": 4 if has_map else 0, "has_map": has_map, "map": f"maps/{stimulus_id}-paint.npy" if has_map else None,
                "fixations": None, "recipe": None, "map_revision": 1,
                "ceiling": {"spearman": 0.6 + 0.01 * source, "pcc": 0.7} if ceilings and has_map else {}, "floor": {},
            })
            stimulus_id += 1
    manifest = {"format_version": 1, "study": "s", "format": "npy", "entries": entries,
                "study_ceiling": {"paint": {"spearman": {"ceiling": 0.62, "n_stimuli": sources}}} if ceilings else {}}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return manifest
