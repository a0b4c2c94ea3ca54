"""The method comparison: equal budgets, a complete table, traces that show the batch-1 zig-zag."""

import math

import numpy as np
import pytest

from sgdlab import TrainConfig
from sgdlab.data import split
from sgdlab.errors import ConfigError
from sgdlab.lab.compare import compare_methods, time_to_target
from sgdlab.engine.history import History
from sgdlab.report.compare import write_comparison

BUDGET = 0.2


@pytest.fixture(scope="module")
def comparison(digits_ds):
    parts = split(digits_ds, validation=0.2, seed=0)
    return compare_methods(parts.train, parts.validation, budget=BUDGET,
                           methods=["sgd-1", "full-batch"], trace_steps=40)


def test_every_method_gets_the_same_training_time(comparison):
    assert [r["method"] for r in comparison.rows] == ["sgd-1", "full-batch"]
    for r in comparison.rows:
        # Each run stops at the first check after its budget is spent.
        assert r["status"] == "max_time" and r["train_seconds"] >= BUDGET
        assert r["steps"] > 0 and r["examples"] > 0 and 0 <= r["val_accuracy"] <= 1
    by = {r["method"]: r for r in comparison.rows}
    n_train = comparison.settings["n_train"]
    assert by["sgd-1"]["examples"] == by["sgd-1"]["steps"]
    assert by["full-batch"]["examples"] == by["full-batch"]["steps"] * n_train
    assert by["sgd-1"]["steps"] > by["full-batch"]["steps"]   # cheaper steps, more of them


def test_batch_one_zig_zags_and_full_batch_descends_smoothly(comparison):
    sgd1, full = comparison.traces["sgd-1"], comparison.traces["full-batch"]
    assert len(sgd1) == len(full) == 40
    assert np.all(np.diff(full) < 0)                  # every full-batch step lowers the loss
    ups = np.sum(np.diff(sgd1) > 0)
    assert ups >= 10                                   # batch 1 goes up again and again
    assert np.sum(np.abs(np.diff(sgd1))) > 5 * np.sum(np.abs(np.diff(full)))


def test_run_directory_holds_table_histories_and_plots(comparison, tmp_path):
    import pandas as pd
    out = write_comparison(tmp_path / "cmp", comparison, data_name="digits")
    table = pd.read_csv(out / "comparison.csv")
    assert list(table["method"]) == ["sgd-1", "full-batch"]
    assert {"val_accuracy", "time_to_target", "steps", "examples"} <= set(table.columns)
    for name in ("accuracy_vs_time.png", "loss_vs_steps.png", "metrics.json",
                 "history_sgd-1.csv", "trace_full-batch.csv"):
        assert (out / name).stat().st_size > 0, name
    h = pd.read_csv(out / "history_full-batch.csv")
    assert h["train_seconds"].is_monotonic_increasing


def test_time_to_target_is_the_first_crossing():
    h = History([{"train_seconds": 0.0, "val_accuracy": 0.1},
                 {"train_seconds": 0.5, "val_accuracy": 0.92},
                 {"train_seconds": 0.9, "val_accuracy": 0.95}])
    assert time_to_target(h, "val_accuracy", 0.9) == 0.5
    assert math.isnan(time_to_target(h, "val_accuracy", 0.99))


def test_bad_comparison_settings_raise(digits_ds):
    parts = split(digits_ds, validation=0.2, seed=0)
    with pytest.raises(ConfigError, match="unknown method 'adam'"):
        compare_methods(parts.train, parts.validation, methods=["adam"])
    with pytest.raises(ConfigError, match="time budget must be > 0"):
        compare_methods(parts.train, parts.validation, budget=0)
    with pytest.raises(ConfigError, match="needs a small linear model"):
        compare_methods(parts.train, parts.validation, methods=["numerical"],
                        base=TrainConfig(model="mlp"))
