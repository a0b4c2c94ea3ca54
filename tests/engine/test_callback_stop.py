"""A callback that returns True from a "row" event stops the run after that row."""

import numpy as np

from sgdlab import TrainConfig
from sgdlab.data import Dataset
from sgdlab.engine import train


def _data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)).astype(np.float32)
    return Dataset(X, (X[:, 0] > 0).astype(np.int32), classes=(0, 1))


def test_stop_after_the_third_evaluation():
    seen = []

    def stop_at_third(event):
        if event["event"] == "row":
            seen.append(event["row"]["step"])
            return len(seen) == 3  # rows at steps 0, 6, 12 (one per epoch of 6 steps)

    r = train(_data(), _data(seed=1), TrainConfig(model="logistic", batch_size=10, epochs=5),
              callback=stop_at_third)
    assert r.status == "stopped"
    assert r.steps == 12 and [row["step"] for row in r.history] == [0, 6, 12]
    assert seen == [0, 6, 12]


def test_a_stop_on_the_last_row_still_counts_as_completed():
    r = train(_data(), None, TrainConfig(model="logistic", batch_size=10, epochs=2),
              callback=lambda e: e["event"] == "row" and e["row"]["step"] == 12)
    assert r.status == "completed" and r.steps == 12


def test_callbacks_returning_nothing_change_nothing():
    cfg = TrainConfig(model="logistic", batch_size=10, epochs=2)
    a = train(_data(), None, cfg, callback=lambda e: None)
    b = train(_data(), None, cfg)
    assert a.status == b.status == "completed"
    assert np.array_equal(np.asarray(a.params["W"]), np.asarray(b.params["W"]))
