"""The parameters of a fine-tuning run, checked, with their defaults and meanings."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

LOSSES = ("harmonization", "outside_gradient")
BATCHNORM_RULES = ("frozen", "train")


class InvalidFinetuneParams(ValueError):
    """A parameter is unknown or out of range; the message names it and the valid values."""


@dataclass(frozen=True)
class FinetuneParams:
    """loss: "harmonization" (Fel et al. 2022) or "outside_gradient" (Ross et al. 2017).
    alignment_weight: lambda, the factor on the alignment term as the loss module defines it (the
      control run always uses 0).
    epochs, batch_size (0: the device's default), learning_rate: AdamW's.
    weight_decay: AdamW's decoupled decay (w -= lr * weight_decay * w each step) on convolution and
      linear weights; none on biases and normalisation layers. The loss carries no L2 term.
    label_smoothing: of the cross-entropy (labelled images only).
    validation_fraction: the share of source images held out (by source, seeded).
    seed: data order, dropout and split; the control and the aligned run share it.
    unlabelled: "predicted" (an unlabelled image's saliency explains the model's predicted class) or
      "skip" (it gets no alignment term).
    batchnorm: "frozen" (running statistics kept from pre-training, affine parameters trained) or
      "train" (statistics updated from each batch).
    mixed_precision: bfloat16 autocast for the passes on CUDA (ignored on the CPU).
    bootstrap_resamples: of the paired bootstrap CIs over held-out images.
    workers: DataLoader worker processes (0: load in the training process).
    """

    loss: str = "harmonization"
    alignment_weight: float = 1.0
    epochs: int = 5
    batch_size: int = 0
    learning_rate: float = 1e-4
    weight_decay: float = 1e-5
    label_smoothing: float = 0.1
    validation_fraction: float = 0.2
    seed: int = 0
    unlabelled: str = "predicted"
    batchnorm: str = "frozen"
    mixed_precision: bool = True
    bootstrap_resamples: int = 2000
    workers: int = 0

    @classmethod
    def from_dict(cls, values: dict | None) -> FinetuneParams:
        """Defaults filled in, unknown names refused, values coerced and checked."""
        values = dict(values or {})
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise InvalidFinetuneParams(f"unknown parameter(s) {', '.join(unknown)}; valid: {', '.join(fields)}")
        coerced = {}
        for name, value in values.items():
            kind = type(fields[name].default)
            try:
                if kind is int and isinstance(value, float) and not value.is_integer():
                    raise ValueError(value)
                coerced[name] = kind(value) if kind is not bool else _boolean(value)
            except (TypeError, ValueError):
                raise InvalidFinetuneParams(f"{name}={value!r} must be of type {kind.__name__}") from None
        return cls(**coerced).checked()

    def checked(self) -> FinetuneParams:
        checks = [
            (self.loss in LOSSES, f"loss must be one of {', '.join(LOSSES)}"),
            (math.isfinite(self.alignment_weight) and self.alignment_weight >= 0, "alignment_weight must be >= 0"),
            (1 <= self.epochs <= 10_000, "epochs must be 1..10000"),
            (0 <= self.batch_size <= 4096, "batch_size must be 0 (device default) .. 4096"),
            (math.isfinite(self.learning_rate) and 0 < self.learning_rate <= 1, "learning_rate must be in (0, 1]"),
            (math.isfinite(self.weight_decay) and 0 <= self.weight_decay <= 1, "weight_decay must be in [0, 1]"),
            (0 <= self.label_smoothing < 1, "label_smoothing must be in [0, 1)"),
            (0 < self.validation_fraction < 1, "validation_fraction must be in (0, 1)"),
            (self.unlabelled in ("predicted", "skip"), "unlabelled must be predicted or skip"),
            (self.batchnorm in BATCHNORM_RULES, f"batchnorm must be one of {', '.join(BATCHNORM_RULES)}"),
            (100 <= self.bootstrap_resamples <= 100_000, "bootstrap_resamples must be 100..100000"),
            (0 <= self.workers <= 64, "workers must be 0..64"),
        ]
        for ok, message in checks:
            if not ok:
                raise InvalidFinetuneParams(message)
        return self

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def _boolean(value) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        return value.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ValueError(value)
