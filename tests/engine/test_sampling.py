import numpy as np
import pytest

from sgdlab.data.sampling import BatchPlan, steps_per_epoch
from sgdlab.errors import ConfigError


@pytest.mark.parametrize("n,b,expected", [(2000, 200, 10), (32000, 32, 1000), (10, 3, 4),
                                          (10, 10, 1), (10, 1, 10)])
def test_steps_per_epoch_counts_exactly(n, b, expected):
    assert steps_per_epoch(n, b) == expected


def test_drop_last_floors():
    assert steps_per_epoch(10, 3, drop_last=True) == 3


def test_shuffle_sees_every_example_once_per_epoch():
    plan = BatchPlan(103, 10, "shuffle", seed=1)
    for _ in range(3):
        idx, w = plan.take(plan.steps_per_epoch)
        seen = idx[w > 0]
        assert sorted(seen.tolist()) == list(range(103))
        assert w.sum() == 103  # padded slots carry weight 0


def test_shuffle_orders_differ_between_epochs():
    plan = BatchPlan(50, 5, "shuffle", seed=0)
    a, _ = plan.take(10)
    b, _ = plan.take(10)
    assert not np.array_equal(a, b)


def test_sequential_is_consecutive():
    plan = BatchPlan(7, 3, "sequential")
    idx, w = plan.take(3)
    assert idx.tolist() == [[0, 1, 2], [3, 4, 5], [6, 0, 0]]
    assert w.tolist() == [[1, 1, 1], [1, 1, 1], [1, 0, 0]]


def test_replacement_draws_uniform_iid():
    plan = BatchPlan(10, 5, "replacement", seed=3)
    idx, w = plan.take(10_000)
    assert w.min() == 1.0
    counts = np.bincount(idx.ravel(), minlength=10)
    assert any(len(set(row)) < 5 for row in idx.tolist())  # repeats within a batch happen
    # 50,000 draws over 10 values: each count is 5,000 +- a few standard deviations (~67)
    assert np.all(np.abs(counts - 5000) < 400)


def test_take_crosses_epochs_and_pads():
    plan = BatchPlan(6, 4, "sequential")
    idx, w = plan.take(3, pad_to=5)
    assert idx.shape == (5, 4)
    assert w[:3].sum() == 6 + 4 and w[3:].sum() == 0
    assert plan.position == {"epoch": 1, "step_in_epoch": 1, "row": 4}


def test_restart_from_position_continues_identically():
    a = BatchPlan(37, 4, "shuffle", seed=5)
    full, _ = a.take(25)
    b = BatchPlan(37, 4, "shuffle", seed=5)
    first, _ = b.take(12)
    c = BatchPlan(37, 4, "shuffle", seed=5, **b.position)
    rest, _ = c.take(13)
    assert np.array_equal(full, np.concatenate([first, rest]))


@pytest.mark.parametrize("b", [0, 11, -1])
def test_batch_size_out_of_range(b):
    with pytest.raises(ConfigError, match="between 1 and the number of training examples"):
        BatchPlan(10, b)


def test_unknown_sampling_lists_valid():
    with pytest.raises(ConfigError, match="replacement, sequential, shuffle"):
        BatchPlan(10, 2, "random")
