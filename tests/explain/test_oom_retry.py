"""A worker that runs out of memory retries with half the rows per pass, down to 1 (explain.services)."""
import pytest
import torch

from explain.methods.batching import batch_size_for
from explain.services.runs import _shrinking_batches
from explain.zoo import ZooModel


def _model(device="cpu"):
    return ZooModel(key="k", net=None, input_size=(8, 8), mean=(0, 0, 0), std=(1, 1, 1), class_names=("a",),
                    weights_hash="h", device=torch.device(device))


def test_first_try_is_uncapped_then_halves_until_it_fits():
    seen = []

    def run():
        size = batch_size_for("cpu", 32)  # a batch_size a researcher asked for
        seen.append(size)
        if size > 1:
            raise torch.OutOfMemoryError("out of memory")
        return "done"

    assert _shrinking_batches(_model(), run, "job") == "done"
    assert seen == [32, 2, 1]  # 32 as asked; then half the CPU default (4), then 1
    assert batch_size_for("cpu", 32) == 32  # the cap is gone afterwards


def test_gives_up_at_one_row_and_other_errors_pass_through():
    def always():
        raise torch.OutOfMemoryError("out of memory")

    with pytest.raises(torch.OutOfMemoryError):
        _shrinking_batches(_model(), always, "job")

    def broken():
        raise ValueError("not memory")

    with pytest.raises(ValueError):
        _shrinking_batches(_model(), broken, "job")
