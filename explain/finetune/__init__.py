"""Fine-tuning a model toward human maps, and measuring what it gained (pure torch/numpy; no Django).

    from explain.finetune import FinetuneParams, finetune_run
    from explain.zoo import model_trainable

    model = model_trainable("efficientnet_lite0")
    result = finetune_run("export/", lambda: model_trainable("efficientnet_lite0").net,
                          FinetuneParams(epochs=5), out_dir="runs/study-1", task_kind="paint",
                          input_size=model.input_size, mean=model.mean, std=model.std)

Modules: `harmonization` (the losses), `dataset` (an export folder or tensors in memory), `split`
(by source image), `training` (one copy, checkpointed each epoch), `evaluation` and `agreement`
(held-out maps and scores), `run` (control + aligned + base, the result dict), `digits` (the
demonstration on scikit-learn's bundled digits; imports scikit-learn). docs/finetune.md explains
the result.
"""
from .dataset import HumanMapDataset, TensorMapDataset
from .params import FinetuneParams, InvalidFinetuneParams
from .run import finetune_run
from .split import SplitImpossible
from .training import CheckpointMismatch, TrainingDiverged

__all__ = ["CheckpointMismatch", "FinetuneParams", "HumanMapDataset", "InvalidFinetuneParams", "SplitImpossible",
           "TensorMapDataset", "TrainingDiverged", "finetune_run"]
