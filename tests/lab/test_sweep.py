"""The sweep on digits: budgets respected, the recommendation follows the data, resume works,
divergence is recorded, and bad settings are errors that say how to fix them."""

import json
import math

import numpy as np
import pytest

from sgdlab.data import Dataset
from sgdlab.engine import TrainConfig
from sgdlab.errors import ConfigError
from sgdlab.lab.sweep import (SweepConfig, default_batch_sizes, parse_budget, plan_runs,
                              run_sweep)


@pytest.fixture(scope="module")
def digits_sweep(digits_ds, tmp_path_factory, compile_cache):
    out = tmp_path_factory.mktemp("sweep")
    events = []
    sweep = SweepConfig(batch_sizes=(16, 64, 256), seeds=2, budget="30 epochs",
                        target=0.93, probe=True, noise=True, noise_draws=4)
    result = run_sweep(digits_ds, sweep, TrainConfig(model="softmax"), out=out,
                       callback=events.append)
    return result, out, events, sweep


def test_every_run_stays_within_its_budget(digits_sweep):
    result, _, events, _ = digits_sweep
    assert len(result.per_run) == 3 * 2
    for rec in result.records:
        spe = rec["summary"]["steps_per_epoch"]
        assert rec["status"] == "completed"
        assert rec["summary"]["steps"] == math.ceil(30 * spe)  # exactly the budget
    starts = [e for e in events if e["event"] == "run_start"]
    assert [e["index"] for e in starts] == list(range(6))


def test_recommendation_is_the_minimum_of_the_measured_medians(digits_sweep):
    result, _, _, _ = digits_sweep
    medians = {g["batch_size"]: g["time_median"] for g in result.per_batch}
    assert all(math.isfinite(t) for t in medians.values())  # digits reaches 0.93
    rec = result.recommendation
    assert rec["batch_size"] == min(medians, key=medians.get)
    assert rec["seconds"] == min(medians.values())
    # Medians really are medians of the per-seed crossings.
    for g in result.per_batch:
        times = [r["time_to_target"] for r in result.per_run if r["batch_size"] == g["batch_size"]]
        assert g["time_median"] == pytest.approx(float(np.median(times)))
        assert g["time_low"] <= g["time_median"] <= g["time_high"]
    assert len(rec["sentences"]) == 4
    assert f"Batch size {rec['batch_size']}" in rec["sentences"][0]
    assert "runner-up" in rec["sentences"][1]
    assert "B_simple" in rec["sentences"][3]


def test_per_batch_figures_are_consistent(digits_sweep):
    result, out, _, _ = digits_sweep
    for g in result.per_batch:
        b = g["batch_size"]
        assert g["examples_median"] == pytest.approx(
            np.median([r["examples_to_target"] for r in result.per_run if r["batch_size"] == b]))
        assert g["epochs_median"] <= 30 and g["final_median"] > 0.9
        assert g["throughput"] > 0 and g["compile_seconds"] > 0
    assert [p["batch_size"] for p in result.throughput] == [16, 64, 256]
    assert result.throughput[0]["step_cost_ratio"] == 1.0
    assert result.noise["b_small"] == 16 and result.noise["b_big"] == 256
    assert result.noise["low"] <= result.noise["b_simple"] <= result.noise["high"]
    saved = json.loads((out / "sweep.json").read_text())
    assert saved["recommendation"]["batch_size"] == result.recommendation["batch_size"]
    assert (out / "summary.csv").read_text().count("\n") == 4
    assert len(list((out / "runs").glob("*.json"))) == 6


def test_rerun_with_the_same_directory_resumes(digits_sweep, digits_ds):
    result, out, _, sweep = digits_sweep
    victim = out / "runs" / f"{result.records[-1]['key']}.json"
    victim.unlink()  # as if the sweep had been killed during its last run
    events = []
    again = run_sweep(digits_ds, sweep, TrainConfig(model="softmax"), out=out,
                      callback=events.append)
    reused = [e["reused"] for e in events if e["event"] == "run_end"]
    assert reused == [True] * 5 + [False]
    assert victim.is_file()
    first = {r["key"]: r["history"] for r in result.records[:5]}
    assert all(first[r["key"]] == r["history"] for r in again.records[:5])
    # A changed setting is a different run: nothing is reused.
    events.clear()
    run_sweep(digits_ds, SweepConfig(batch_sizes=(16,), seeds=1, budget="30 epochs", lr=0.2,
                                     probe=False, noise=False),
              TrainConfig(model="softmax"), out=out, callback=events.append)
    assert [e["reused"] for e in events if e["event"] == "run_end"] == [False]


def test_divergent_run_is_marked_and_the_sweep_goes_on():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((512, 5)).astype(np.float32)
    y = (X @ rng.standard_normal(5) + 0.1 * rng.standard_normal(512)).astype(np.float32)
    ds = Dataset(X, y, "regression", name="linreg")
    # Linear scaling from lr 0.3 at batch 4 gives lr 19.2 at batch 256: far past stability.
    result = run_sweep(ds, SweepConfig(batch_sizes=(4, 256), lr=0.3, base_batch=4,
                                       lr_scaling="linear", seeds=1, budget="10 epochs",
                                       target=0.9, probe=False, noise=False),
                       TrainConfig(model="linreg"))
    status = {r["batch_size"]: r["status"] for r in result.per_run}
    assert status == {4: "completed", 256: "diverged"}
    big = next(g for g in result.per_batch if g["batch_size"] == 256)
    assert big["diverged"] == 1 and math.isinf(big["time_median"])
    assert result.recommendation["batch_size"] == 4
    assert result.metric == "val_r2"


def test_defaults_and_budgets():
    assert default_batch_sizes(1438) == (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
    assert default_batch_sizes(100) == (1, 2, 4, 8, 16, 32, 64)
    assert parse_budget("30s") == {"epochs": None, "max_steps": None, "max_time": 30.0}
    assert parse_budget("2 min")["max_time"] == 120.0
    assert parse_budget("2000 steps")["max_steps"] == 2000
    runs = plan_runs(SweepConfig(batch_sizes=(16, 64), lr_grid=(0.5, 1), seeds=2,
                                 lr_scaling="linear", lr=0.1, base_batch=16),
                     TrainConfig(), n_train=1000)
    assert len(runs) == 8
    lrs = {(c.batch_size, c.lr) for _, c, _ in runs}
    assert lrs == {(16, 0.05), (16, 0.1), (64, 0.2), (64, 0.4)}
    assert {c.seed for _, c, _ in runs} == {0, 1}


@pytest.mark.parametrize("settings, match", [
    (dict(budget="forever"), "cannot read budget"),
    (dict(budget="1.5 steps"), "must be whole"),
    (dict(batch_sizes=(0, 4)), "batch sizes must be whole numbers >= 1"),
    (dict(lr_grid=(1, -2)), "--lr-grid"),
    (dict(lr_scaling="cubic"), "valid scalings: none, linear, sqrt"),
    (dict(seeds=0), "seeds must be"),
    (dict(stop_at_target=True), "add --target-accuracy"),
    (dict(noise_batches=(64, 8)), "small < big"),
    (dict(lr=0.0), "learning rate must be"),
])
def test_bad_sweep_settings_are_config_errors(settings, match):
    with pytest.raises(ConfigError, match=match):
        SweepConfig(**settings)


def test_batch_larger_than_the_data_is_a_config_error(digits_ds):
    with pytest.raises(ConfigError, match=r"exceed the number of training examples \(1438\)"):
        run_sweep(digits_ds, SweepConfig(batch_sizes=(32, 4096)))
    with pytest.raises(ConfigError, match="--validation-fraction"):
        run_sweep(digits_ds, SweepConfig(batch_sizes=(32,)),
                  TrainConfig(validation_fraction=0.0))
