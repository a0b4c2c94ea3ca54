"""The sweep on digits: the learning-rate search per batch size, runs that stop at the target
within their budget, one compiled program per batch size, a recommendation that follows the
data, resume, divergence recorded, and bad settings as errors that say how to fix them."""

import json
import math

import numpy as np
import pytest

from sgdlab.data import Dataset
from sgdlab.engine import TrainConfig, cache
from sgdlab.errors import ConfigError
from sgdlab.lab.sweep import (SweepConfig, default_batch_sizes, parse_budget, plan_runs,
                              run_sweep)


@pytest.fixture(scope="module")
def digits_sweep(digits_ds, tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    events = []
    sweep = SweepConfig(batch_sizes=(16, 64, 256), seeds=2, budget="30 epochs",
                        target=0.93, probe=True, noise=True, noise_draws=4)
    cache.clear()
    result = run_sweep(digits_ds, sweep, TrainConfig(model="softmax"), out=out,
                       callback=events.append)
    return result, out, events, sweep


def test_runs_stop_at_the_target_within_their_budget(digits_sweep):
    result, _, events, _ = digits_sweep
    for rec in result.records:
        spe = rec["summary"]["steps_per_epoch"]
        assert rec["summary"]["steps"] <= math.ceil(30 * spe)
        if rec["status"] == "target_reached":
            assert rec["history"][-1]["val_accuracy"] >= 0.93
            assert all(r["val_accuracy"] < 0.93 for r in rec["history"][:-1])
        else:
            assert rec["status"] in ("completed", "diverged")
    starts = [e for e in events if e["event"] == "run_start"]
    assert [e["index"] for e in starts] == list(range(len(result.records)))
    assert {e["phase"] for e in starts} == {"search", "confirm"}


def test_every_batch_size_searched_its_learning_rate(digits_sweep):
    result, _, _, sweep = digits_sweep
    for b in (16, 64, 256):
        points = [g for g in result.groups if g["batch_size"] == b]
        lr0 = sweep.lr_for(b)
        assert 4 <= len(points) <= sweep.search_points
        assert {round(g["lr"] / lr0, 6) for g in points if g["order"] < 3} == {0.25, 1.0, 4.0}
        chosen = [g for g in points if g["chosen"]]
        assert len(chosen) == 1
        # The kept lr has the fewest median steps among the points every seed reached with.
        full = [g for g in points if g["reached"] == g["seeds"]]
        assert chosen[0]["steps_median"] == min(g["steps_median"] for g in full)
        # ... and it is interior: a worse point on each side, or a divergence above it.
        lrs = sorted(g["lr"] for g in points)
        assert lrs[0] < chosen[0]["lr"] < lrs[-1]
    assert all(float(r["steps_to_target"]).is_integer() for r in result.per_run
               if r["reached"])


def test_one_compiled_training_program_per_batch_size(digits_sweep):
    result, _, _, _ = digits_sweep
    n_runs = len(result.records)
    assert n_runs >= 3 * 4 * 2                   # 3 batch sizes x >= 4 lrs x 2 seeds
    assert result.compilations["chunk"] == 3     # probe and noise run reused them too


def test_recommendation_follows_the_medians_and_the_tie_rule(digits_sweep):
    result, _, _, _ = digits_sweep
    rec = result.recommendation
    medians = {g["batch_size"]: g["time_median"] for g in result.per_batch}
    assert rec["fastest"] == min(medians, key=medians.get)
    assert rec["batch_size"] in rec["tied"] and rec["fastest"] in rec["tied"]
    if len(rec["tied"]) == 1:
        assert rec["batch_size"] == rec["fastest"]
    for g in result.per_batch:
        times = [r["time_to_target"] for r in result.per_run
                 if (r["batch_size"], r["lr"]) == (g["batch_size"], g["lr"])]
        assert g["time_median"] == pytest.approx(float(np.median(times)))
        assert g["time_low"] <= g["time_median"] <= g["time_high"]
    assert f"Batch size {rec['batch_size']}" in rec["sentences"][0]
    assert any("B_simple" in s for s in rec["sentences"])
    assert rec["command"].startswith("sgdlab train --data digits")
    assert f"--batch-size {rec['batch_size']}" in rec["command"]
    conf = result.confirmation
    assert conf["batch_size"] == rec["batch_size"] and conf["lr"] == rec["lr"]
    assert conf["seeds"] == [1000, 1001]
    assert "Confirmation with fresh seeds" in rec["sentences"][-1]


def test_decomposition_and_outputs(digits_sweep):
    result, out, _, _ = digits_sweep
    assert [p["batch_size"] for p in result.throughput] == [16, 64, 256]
    for d, g in zip(result.decomposition, result.per_batch):
        assert d["steps"] == g["steps_median"]
        assert d["compute_seconds"] == pytest.approx(d["steps"] * d["probe_step_seconds"])
        assert d["calls"] >= 1 and d["overhead_seconds"] == pytest.approx(
            d["calls"] * d["call_seconds"])
        assert d["predicted_seconds"] == pytest.approx(d["compute_seconds"]
                                                       + d["overhead_seconds"])
    assert result.noise["low"] <= result.noise["b_simple"] <= result.noise["high"]
    assert result.noise_trace and all(t["b_simple"] > 0 for t in result.noise_trace)
    saved = json.loads((out / "sweep.json").read_text())
    assert saved["recommendation"]["batch_size"] == result.recommendation["batch_size"]
    assert "NaN" not in (out / "sweep.json").read_text()
    assert (out / "summary.csv").read_text().count("\n") == 4
    assert (out / "points.csv").read_text().count("\n") == len(result.groups) + 1


def test_rerun_with_the_same_directory_resumes(digits_sweep, digits_ds):
    result, out, _, sweep = digits_sweep
    victim = out / "runs" / f"{result.records[5]['key']}.json"
    victim.unlink()  # as if the sweep had been killed there
    events = []
    again = run_sweep(digits_ds, sweep, TrainConfig(model="softmax"), out=out,
                      callback=events.append)
    reused = [e["reused"] for e in events if e["event"] == "run_end"]
    assert reused.count(False) == 1 and reused[5] is False
    assert victim.is_file()
    # Steps are deterministic, so the search asked for the same points again.
    assert [r["key"] for r in again.records] == [r["key"] for r in result.records]
    # A changed setting is a different run: nothing is reused.
    events.clear()
    run_sweep(digits_ds, SweepConfig(batch_sizes=(16,), seeds=1, budget="30 epochs",
                                     target=0.92, probe=False, noise=False, confirm=False),
              TrainConfig(model="softmax"), out=out, callback=events.append)
    assert not any(e["reused"] for e in events if e["event"] == "run_end")


def _easy_linreg(n=2048, d=8, seed=0):
    """Isotropic standardised inputs: the best lr is about 1 at every large batch size."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    y = (X @ rng.standard_normal(d) + 0.3 * rng.standard_normal(n)).astype(np.float32)
    return Dataset(X, y, "regression", name="linreg")


def test_search_finds_the_large_lr_a_large_batch_tolerates():
    """The sqrt rule from 0.01 at batch 32 gives 0.04 at batch 512, where about 1 is best:
    the search must find an lr >= 4x the rule's, with steps within 10 % of a fine grid's best."""
    ds = _easy_linreg()
    common = dict(batch_sizes=(8, 512), lr=0.01, base_batch=32, lr_scaling="sqrt", seeds=1,
                  target=0.85, budget="400 steps", eval_every="1 steps", probe=False,
                  noise=False, confirm=False)
    base = TrainConfig(model="linreg")
    searched = run_sweep(ds, SweepConfig(**common), base)
    grid = run_sweep(ds, SweepConfig(**common, lr_grid=tuple(2.0 ** k for k in range(-2, 9))),
                     base)
    big = next(g for g in searched.per_batch if g["batch_size"] == 512)
    rule = SweepConfig(**common).lr_for(512)
    assert big["lr"] >= 4 * rule
    best_grid = min(g["steps_median"] for g in grid.groups if g["batch_size"] == 512)
    assert big["steps_median"] <= 1.1 * best_grid, (big, best_grid)
    assert searched.recommendation["batch_size"] is not None


def test_rule_mode_keeps_the_scaled_lr_and_records_divergence():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((512, 5)).astype(np.float32)
    y = (X @ rng.standard_normal(5) + 0.1 * rng.standard_normal(512)).astype(np.float32)
    ds = Dataset(X, y, "regression", name="linreg")
    # Linear scaling from lr 0.3 at batch 4 gives lr 19.2 at batch 256: far past stability.
    result = run_sweep(ds, SweepConfig(batch_sizes=(4, 256), lr=0.3, base_batch=4,
                                       lr_scaling="linear", lr_search=False, seeds=1,
                                       budget="10 epochs", target=0.9, probe=False,
                                       noise=False, confirm=False),
                       TrainConfig(model="linreg"))
    status = {r["batch_size"]: r["status"] for r in result.per_run}
    assert status == {4: "target_reached", 256: "diverged"}
    big = next(g for g in result.per_batch if g["batch_size"] == 256)
    assert big["diverged"] == 1 and math.isinf(big["time_median"])
    assert big["status_text"] == "all 1 diverged"
    assert result.recommendation["batch_size"] == 4
    assert "256 (all 1 diverged)" in result.recommendation["sentences"][1]
    assert result.metric == "val_r2" and result.sweep["lr_mode"] == "rule"


def test_pilot_chooses_the_target_when_none_is_given(digits_ds):
    result = run_sweep(digits_ds, SweepConfig(batch_sizes=(32, 128), seeds=1,
                                              budget="5 epochs", probe=False, noise=False,
                                              confirm=False, lr_search=False),
                       TrainConfig(model="softmax"))
    pilot = [r for r in result.records if r["phase"] == "pilot"]
    assert len(pilot) == 1 and pilot[0]["batch_size"] == 32
    assert pilot[0]["status"] == "completed"     # the pilot trains its whole budget
    best = pilot[0]["history"][-1]["val_accuracy"]
    assert result.target == math.floor(100 * 0.99 * best) / 100
    assert "0.99 x the best final value" in result.target_source and result.target_auto


def test_defaults_and_budgets():
    assert default_batch_sizes(1438) == (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
    assert default_batch_sizes(100) == (1, 2, 4, 8, 16, 32, 64)
    assert parse_budget("30s") == {"epochs": None, "max_steps": None, "max_time": 30.0}
    assert parse_budget("2 min")["max_time"] == 120.0
    assert parse_budget("2000 steps")["max_steps"] == 2000
    assert SweepConfig().lr_mode == "search" and SweepConfig().stop_at_target
    runs = plan_runs(SweepConfig(batch_sizes=(16, 64), lr_grid=(0.5, 1), seeds=2,
                                 lr_scaling="linear", lr=0.1, base_batch=16),
                     TrainConfig(), n_train=1000, target=0.9)
    assert len(runs) == 8
    lrs = {(c.batch_size, c.lr) for _, c, _ in runs}
    assert lrs == {(16, 0.05), (16, 0.1), (64, 0.2), (64, 0.4)}
    assert {c.seed for _, c, _ in runs} == {0, 1} and {c.target for _, c, _ in runs} == {0.9}


@pytest.mark.parametrize("settings, match", [
    (dict(budget="forever"), "cannot read budget"),
    (dict(budget="1.5 steps"), "must be whole"),
    (dict(batch_sizes=(0, 4)), "batch sizes must be whole numbers >= 1"),
    (dict(lr_grid=(1, -2)), "--lr-grid"),
    (dict(lr_scaling="cubic"), "valid scalings: none, linear, sqrt"),
    (dict(seeds=0), "seeds must be"),
    (dict(search_factor=1.0), "--search-factor"),
    (dict(search_points=2), "search points must be"),
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


def test_a_pilot_that_learns_nothing_is_an_error_not_a_target_met_at_step_0(digits_ds):
    with pytest.raises(ConfigError, match="learned nothing.*--target-accuracy"):
        run_sweep(digits_ds, SweepConfig(batch_sizes=(16, 64), lr=1e-9, seeds=1,
                                         budget="20 steps", probe=False, noise=False,
                                         confirm=False), TrainConfig(model="softmax"))
