"""One fine-tuning run: the aligned model, its control, and what each gained on held-out images.

    result = finetune_run(data, model_factory, params, out_dir="runs/x", progress=print)

data: a `HumanMapDataset` / `TensorMapDataset` (anything with `facts`, `fingerprint()` and
`study_ceiling`), or the path of an export folder (then `input_size`, `mean`, `std` and
params-independent `task_kind` say how to read it). model_factory: returns a fresh trainable model
whose forward gives logits and which, for Grad-CAM, has a `features` layer (`explain.zoo.
model_trainable(key).net` or a researcher's own `SplitNet`); it is called once and copied, so base,
control and aligned start from the same weights.

Three models are measured on the same held-out images: base (the factory's weights), control
(trained with alignment weight 0: the same data, order, steps and seed) and aligned (the chosen
loss). Differences aligned - control and base - control carry paired bootstrap CIs over images.

out_dir: `run.json` (what the run is), `control/checkpoint.pt`, `aligned/checkpoint.pt` (each epoch;
a later call resumes), `control/model.pt`, `aligned/model.pt` (final state dicts) and `result.json`
(the returned dict; a finished run called again returns it without training).
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..zoo import device_pick
from .agreement import finite_mean, paired_bootstrap
from .dataset import IMAGENET_MEAN, IMAGENET_STD, HumanMapDataset
from .evaluation import MAPS, METRICS, evaluate
from .params import FinetuneParams
from .split import split_by_source
from .training import CheckpointMismatch, Progress, batch_size_for, train_run

RESULT_FORMAT = 1
CEILING_MIN = 0.05  # a ceiling below this makes "score / ceiling" noise: reported as None, with the reason
TRAINED_MAP = {"harmonization": "gradient_positive", "outside_gradient": None}
TRAINED_QUANTITY = {
    "harmonization": "the positive part of the signed input gradient of the target logit (mean over channels), "
                     "standardised and cut at its mean, toward the human map",
    "outside_gradient": "the input gradient of sum_k log p_k, squared, outside the human map (pushed toward 0)",
}


def weights_hash(net: nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(net.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def run_fingerprint(identity: dict, leave_out: tuple[str, ...] = ("workers",)) -> str:
    """What makes two runs the same run: data, base weights, split and the parameters that change
    training or measuring (not `workers`), first 16 hex digits of a sha256. Checkpoints also leave
    out `bootstrap_resamples` (it changes no weight)."""
    params = {k: v for k, v in identity["params"].items() if k not in leave_out}
    return hashlib.sha256(json.dumps({**identity, "params": params}, sort_keys=True).encode()).hexdigest()[:16]


def _json_write(path: Path, value: dict) -> None:
    partial = path.with_name(path.name + f".{os.getpid()}.partial")
    partial.write_text(json.dumps(value, indent=1, allow_nan=False))
    os.replace(partial, path)


def finetune_run(data, model_factory: Callable[[], nn.Module], params: FinetuneParams | dict | None = None, *,
                 out_dir, progress: Progress | None = None, device: torch.device | str | None = None,
                 task_kind: str | None = None, input_size=(224, 224), mean=IMAGENET_MEAN, std=IMAGENET_STD) -> dict:
    """Train control and aligned copies, measure base, control and aligned on the held-out split and
    return the result dict (JSON-able; see `summary`). Raises InvalidFinetuneParams, SplitImpossible,
    CheckpointMismatch (out_dir holds another run) or TrainingDiverged, each naming the problem."""
    params = params if isinstance(params, FinetuneParams) else FinetuneParams.from_dict(params)
    params = params.checked()
    if isinstance(data, (str, os.PathLike)):
        data = HumanMapDataset(data, task_kind=task_kind, size=input_size, mean=mean, std=std)
    device = torch.device(device) if device else device_pick()
    out = Path(out_dir)
    facts = data.facts
    train, held_out = split_by_source(facts, params.validation_fraction, params.seed)
    base = model_factory()
    identity = {"format": RESULT_FORMAT, "params": params.as_dict(), "data": data.fingerprint(),
                "base_weights": weights_hash(base), "train": [facts[i]["stimulus_id"] for i in train]}
    fingerprint = run_fingerprint(identity)
    stored = _stored_result(out, fingerprint)
    if stored is not None:
        return stored
    trained = _claim(out, identity, fingerprint)
    size = batch_size_for(params, device)
    nets = {"base": base.to(device).eval()}
    histories = _train_both(nets, data, train, params, out, trained, device, progress)
    scores = {}
    for name, net in nets.items():
        def tick(done, name=name):
            if progress:
                progress({"stage": "evaluate", "model": name, "done": done, "total": len(held_out)})
        scores[name] = evaluate(net, data, held_out, device=device, batch_size=size, progress=tick)
    result = summary(scores, [facts[i] for i in held_out], data, params, histories)
    result.update({"fingerprint": fingerprint, "device": str(device), "out_dir": str(out),
                   "split": {"train_images": len(train), "held_out_images": len(held_out),
                             "train_sources": len({facts[i]["source_id"] for i in train}),
                             "held_out_sources": len({facts[i]["source_id"] for i in held_out})}})
    _json_write(out / "result.json", result)
    return result


def _claim(out: Path, identity: dict, fingerprint: str) -> str:
    """Write out/run.json for this run and return its training fingerprint; CheckpointMismatch,
    naming what differs, when out holds another run's training (its files are left as they are)."""
    trained = run_fingerprint(identity, ("workers", "bootstrap_resamples"))
    path = out / "run.json"
    if path.exists():
        previous = json.loads(path.read_text())
        if previous.get("trained_fingerprint") != trained:
            differs = sorted(k for k in ("data", "base_weights", "train") if previous.get(k) != identity[k])
            differs += sorted(k for k, v in identity["params"].items() if (previous.get("params") or {}).get(k) != v)
            raise CheckpointMismatch(f"{out} holds another run (it differs in {', '.join(differs) or 'its format'}); "
                                     "use another out dir or remove it")
    out.mkdir(parents=True, exist_ok=True)
    _json_write(path, {**identity, "fingerprint": fingerprint, "trained_fingerprint": trained})
    return trained


def _train_both(nets: dict[str, nn.Module], data, train: list[int], params: FinetuneParams, out: Path, trained: str,
                device: torch.device, progress: Progress | None) -> dict[str, list[dict]]:
    """Add to `nets` "control" and "aligned": copies of nets["base"] trained on data[train] with
    alignment weight 0 and params.alignment_weight (final state dicts saved as out/<name>/model.pt);
    returns their histories."""
    steps_total = 2 * params.epochs * -(-len(train) // batch_size_for(params, device))
    histories = {}
    for position, (name, weight) in enumerate((("control", 0.0), ("aligned", params.alignment_weight))):
        net = copy.deepcopy(nets["base"]).to(device)
        for parameter in net.parameters():
            parameter.requires_grad_(True)
        histories[name] = train_run(net, data, train, params, alignment_weight=weight, run_dir=out / name,
                                    fingerprint=f"{trained}-{name}", device=device, name=name, progress=progress,
                                    steps_before=position * steps_total // 2, steps_total=steps_total)
        torch.save(net.state_dict(), out / name / "model.pt")
        nets[name] = net
    return histories


def headline(result: dict) -> dict:
    """The run in one line (JSON-able): for the map the loss trained (else gradient_abs) the mean
    Spearman of base, control and aligned and aligned - control with its CI; top-1 accuracy of
    each over all held-out labelled images and aligned - control."""
    trained = result["trained_map"] or "gradient_abs"
    models, difference = result["models"], result["differences"]["aligned_minus_control"]
    return {
        "map": trained, "loss": result["params"]["loss"], "held_out_images": result["split"]["held_out_images"],
        "spearman": {name: m["alignment"][trained]["spearman"]["mean"] for name, m in models.items()},
        "spearman_aligned_minus_control": {k: difference["alignment"][trained]["spearman"][k] for k in ("mean", "ci_low", "ci_high")},
        "top1": {name: m["accuracy"]["all"]["top1"] for name, m in models.items()},
        "top1_aligned_minus_control": {k: difference["accuracy"]["all"][k] for k in ("mean", "ci_low", "ci_high")},
    }


def _stored_result(out: Path, fingerprint: str) -> dict | None:
    path = out / "result.json"
    if not path.exists():
        return None
    stored = json.loads(path.read_text())
    return stored if stored.get("fingerprint") == fingerprint else None


def _ceilings(per_image_ceilings: dict[str, np.ndarray], data) -> dict:
    """metric -> {"value", "source", "n"} or {"value": None, "reason"}: the mean of the held-out
    images' own ceilings where they have them, else the study's, else none."""
    out = {}
    for metric in METRICS:
        per_image = np.asarray(per_image_ceilings[metric], dtype=np.float64)
        per_image = per_image[np.isfinite(per_image)]
        study = (getattr(data, "study_ceiling", {}) or {}).get(metric) or {}
        if per_image.size:
            value, source, n = float(per_image.mean()), "the held-out images' split-half ceilings (mean)", int(per_image.size)
        elif study.get("ceiling") is not None:
            value, source, n = float(study["ceiling"]), "the study's ceiling (mean over its stimuli)", study.get("n_stimuli")
        else:
            out[metric] = {"value": None, "reason": "no human ceiling: the data holds no split-half ceiling for these images"}
            continue
        if not (math.isfinite(value) and value >= CEILING_MIN):
            out[metric] = {"value": None, "reason": f"the human ceiling {value:.3f} is under {CEILING_MIN}: a ratio to it would be noise"}
            continue
        out[metric] = {"value": value, "source": source, "n": n}
    return out


def summary(scores: dict[str, dict], held_out: list[dict], data, params: FinetuneParams, histories: dict) -> dict:
    """The result: per model mean agreement (and / ceiling) per map and metric, top-1 accuracy per
    condition; per model other than the control its difference to the control with a paired
    bootstrap 95% CI over held-out images; which map the loss trained; the training histories."""
    ceilings = _ceilings(scores["control"]["ceilings"], data)
    conditions = sorted({f["condition"] for f in held_out})
    masks = {"all": np.ones(len(held_out), bool), **{c: np.array([f["condition"] == c for f in held_out]) for c in conditions}}
    maps = [name for name in MAPS if name in scores["control"]]
    models = {}
    for name, s in scores.items():
        alignment = {m: {metric: _scaled(finite_mean(s[m][metric]), ceilings[metric]) for metric in METRICS} for m in maps}
        accuracy = {c: _accuracy(s["correct"][mask]) for c, mask in masks.items()}
        models[name] = {"alignment": alignment, "accuracy": accuracy}
    differences = {}
    for name in ("aligned", "base"):
        seed = params.seed
        alignment = {m: {metric: _scaled(paired_bootstrap(scores[name][m][metric], scores["control"][m][metric],
                                                          resamples=params.bootstrap_resamples, seed=seed), ceilings[metric])
                         for metric in METRICS} for m in maps}
        accuracy = {c: paired_bootstrap(scores[name]["correct"][mask], scores["control"]["correct"][mask],
                                        resamples=params.bootstrap_resamples, seed=seed) for c, mask in masks.items()}
        differences[f"{name}_minus_control"] = {"alignment": alignment, "accuracy": accuracy}
    return {
        "format": RESULT_FORMAT,
        "params": params.as_dict(),
        "trained_map": TRAINED_MAP[params.loss],
        "trained_quantity": TRAINED_QUANTITY[params.loss],
        "maps": {name: MAPS[name] for name in maps},
        "maps_missing": {} if "gradcam" in maps else {"gradcam": "the model has no `features` layer"},
        "ceiling": ceilings,
        "models": models,
        "differences": differences,
        "per_image": _per_image(scores, held_out, maps),
        "training": histories,
    }


def _scaled(record: dict, ceiling: dict) -> dict:
    value = ceiling.get("value")
    mean = record.get("mean")
    scaled = {key: (record[key] / value if value and record.get(key) is not None else None)
              for key in ("mean", "ci_low", "ci_high") if key in record}
    return {**record, "over_ceiling": scaled if value and mean is not None else None}


def _accuracy(correct: np.ndarray) -> dict:
    labelled = correct[np.isfinite(correct)]
    return {"top1": float(labelled.mean()) if labelled.size else None, "n": int(labelled.size)}


def _per_image(scores: dict, held_out: list[dict], maps: list[str]) -> list[dict]:
    rows = []
    for i, fact in enumerate(held_out):
        row = {"stimulus_id": fact["stimulus_id"], "condition": fact["condition"], "label": fact["label"], "has_map": fact["has_map"]}
        for name, s in scores.items():
            row[name] = {"correct": _finite(s["correct"][i]), "predicted": int(s["predicted"][i]),
                         **{f"{m}_{metric}": _finite(s[m][metric][i]) for m in maps for metric in METRICS}}
        rows.append(row)
    return rows


def _finite(value) -> float | None:
    return float(value) if np.isfinite(value) else None
