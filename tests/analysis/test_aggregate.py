import numpy as np
import pytest

from analysis.aggregate import mean_map, running_sum_add


def test_running_sum_equals_batch_mean():
    maps = [np.random.default_rng(i).random((7, 9)) for i in range(5)]
    total = None
    for m in maps:
        total = running_sum_add(total, m)
    assert np.allclose(mean_map(total, 5), np.mean(maps, axis=0), rtol=0, atol=1e-15)


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="does not match"):
        running_sum_add(np.zeros((2, 2)), np.zeros((3, 3)))


def test_mean_of_nobody_is_refused():
    with pytest.raises(ValueError):
        mean_map(np.zeros((2, 2)), 0)
