"""The sweep on digits: the learning-rate searches per batch size in rounds, runs capped in
steps and stopped at the target, one compiled program per batch size, replays that retrace the
runs, a decision that follows the table, the confirmation, resume, and bad settings as errors
that say how to fix them."""

import json
import math
import shutil
import threading

import numpy as np
import pytest

from sgdlab.data import Dataset
from sgdlab.engine import TrainConfig, cache
from sgdlab.errors import ConfigError
from sgdlab.lab.measure import steps_to_target
from sgdlab.lab.sweep import (SweepConfig, chunk_steps_for, default_batch_sizes,
                              eval_schedule_for, run_sweep)
from sgdlab.lab.caps import parse_budget
from sgdlab.lab.runbook import RunBook
from sgdlab.lab.sweep_config import EVALS_PER_RUN

SIZES = (16, 64, 256)


@pytest.fixture(scope="module")
def digits_sweep(digits_ds, tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    events = []
    sweep = SweepConfig(batch_sizes=SIZES, seeds=3, target=0.93, noise_draws=4)
    cache.clear()
    result = run_sweep(digits_ds, sweep, TrainConfig(model="softmax"), out=out,
                       callback=events.append)
    return result, out, events, sweep


def test_runs_stop_at_the_target_or_their_cap(digits_sweep):
    result, _, events, _ = digits_sweep
    for rec in result.records:
        assert rec.summary["steps"] <= rec.cap
        assert rec.config["chunk_steps"] == chunk_steps_for(rec.batch_size)
        if rec.status == "target_reached":
            assert rec.history[-1]["val_accuracy"] >= 0.93
            assert all(r["val_accuracy"] < 0.93 for r in rec.history[:-1])
        else:
            assert rec.status in ("completed", "diverged")
            assert rec.status == "diverged" or rec.summary["steps"] == rec.cap
    starts = [e for e in events if e["event"] == "run_start"]
    assert [e["index"] for e in starts] == list(range(len(result.records)))
    assert {e["phase"] for e in starts} >= {"search", "confirm"}


def test_every_batch_size_searched_from_its_centre(digits_sweep):
    result, _, _, sweep = digits_sweep
    for b in SIZES:
        points = sorted((p for p in result.points if p.batch_size == b), key=lambda p: p.order)
        lr0 = sweep.lr_for(b)
        assert points[0].lr == pytest.approx(lr0)            # the centre first ...
        assert {round(p.lr / lr0, 6) for p in points[1:3]} == {0.25, 4.0}  # ... then both sides
        chosen = [p for p in points if p.chosen]
        assert len(chosen) == 1
        reached = [p for p in points if math.isfinite(p.steps_median)]
        assert chosen[0].steps_median == min(p.steps_median for p in reached)
        assert all(float(k).is_integer() for p in points for k in p.seed_steps
                   if math.isfinite(k))


def test_one_compiled_training_program_per_batch_size(digits_sweep):
    result, _, _, _ = digits_sweep
    assert result.cost.runs >= 3 * 4 * 3
    # the probe, the search, the replays, the confirmation and the noise run share them
    assert result.cost.compilations["chunk"] == 3
    assert result.cost.compilations["evaluate"] == 1


def test_replays_retrace_the_runs_and_give_every_reached_seed_a_time(digits_sweep):
    result, _, _, _ = digits_sweep
    for row in result.batches:
        if not math.isfinite(row.steps_median):
            continue
        # the search's 3 seeds, and 3 more when the confirmation extended a tie
        runs = [r for r in result.runs if r.batch_size == row.batch_size and r.lr == row.lr
                and r.phase in ("search", "extra")]
        assert len(runs) == row.seeds in (3, 6)
        for r in runs:
            # a replay that did not retrace exactly its steps would be timed as inf
            assert math.isfinite(r.time_to_target) == r.reached
        assert row.time_median == pytest.approx(float(np.median(row.seed_times)))
        assert row.time_low <= row.time_median <= row.time_high
        assert row.calls == math.ceil(row.steps_median / chunk_steps_for(row.batch_size))


def test_the_decision_follows_the_table(digits_sweep):
    result, _, _, _ = digits_sweep
    rec = result.recommendation
    medians = {g.batch_size: g.time_median for g in result.batches if g.timed}
    assert rec.fastest == min(medians, key=medians.get)
    assert rec.batch_size in rec.decision.near and rec.batch_size in rec.tied
    near = [g for g in result.batches if g.batch_size in rec.decision.near
            and g.every_seed_reached]
    assert rec.batch_size == min(near, key=lambda g: (g.steps_median, -g.batch_size)).batch_size
    assert rec.seconds == medians[rec.batch_size]
    assert result.command.startswith("sgdlab train --data digits")
    assert f"--batch-size {rec.batch_size}" in result.command
    assert any("gradient noise scale" in s for s in rec.sentences)
    conf = result.confirmation
    assert conf.seeds == (1000, 1001, 1002)
    assert conf.sweep_low <= conf.sweep_high
    assert conf.outside == (not conf.sweep_low <= conf.time_median <= conf.sweep_high)
    assert rec.sentences[-1].startswith("Confirmation with fresh seeds")


def test_outputs(digits_sweep):
    result, out, _, _ = digits_sweep
    assert [p.batch_size for p in result.probe] == list(SIZES)
    assert result.noise.low <= result.noise.b_simple <= result.noise.high
    assert result.noise.trace and all(v > 0 for _, v in result.noise.trace)
    saved = json.loads((out / "sweep.json").read_text())
    assert saved["recommendation"]["batch_size"] == result.recommendation.batch_size
    assert "NaN" not in (out / "sweep.json").read_text()
    assert (out / "summary.csv").read_text().count("\n") == 4
    assert (out / "points.csv").read_text().count("\n") == len(result.points) + 1
    assert (out / "runs.csv").read_text().count("\n") == len(result.runs) + 1
    c = result.cost
    assert c.wall_seconds >= sum(c.phases.values()) * 0.99
    assert c.train_seconds > 0 and c.replay_seconds > 0 and c.replays >= 3
    # the programs were compiled in the probe: its compilation is added to the runs' own
    assert sum(p.compile_seconds for p in result.probe) > 0
    assert c.compile_seconds == pytest.approx(
        _runs_compile(result) + sum(p.compile_seconds for p in result.probe))


def _runs_compile(result) -> float:
    """The compilation seconds the sweep's runs recorded themselves."""
    return sum(r.summary["compile_seconds"] for r in result.records
               if math.isfinite(r.summary.get("compile_seconds") or math.nan))


def test_rerun_with_the_same_directory_resumes(digits_sweep, digits_ds):
    result, out, _, sweep = digits_sweep
    victim = out / "runs" / f"{result.records[5].key}.json"
    victim.unlink()  # as if the sweep had been killed there
    events = []
    again = run_sweep(digits_ds, sweep, TrainConfig(model="softmax"), out=out,
                      callback=events.append)
    # the searches' runs come first; the confirmation's follow the timed decision (runs made
    # in threads end in any order: each event names its record's index)
    ended = {e["index"]: e["reused"] for e in events if e["event"] == "run_end"
             and e["phase"] in ("pilot", "search")}
    reused = [ended[i] for i in sorted(ended)]
    assert reused.count(False) == 1 and reused[5] is False
    assert victim.is_file()
    # Steps are deterministic and the probe is reused, so the searches asked for the same
    # points again (only the confirmation's extra seeds may differ: they follow timing).
    searched = lambda res: [(r.key, r.cap) for r in res.records  # noqa: E731
                            if r.phase in ("pilot", "search")]
    assert searched(again) == searched(result)
    searched_runs = sum(r.phase in ("pilot", "search") for r in again.records)
    assert again.cost.reused >= searched_runs - 1
    # a reused probe compiled nothing in this call: its stored compilation is not counted
    assert again.cost.compile_seconds == pytest.approx(_runs_compile(again))


def test_a_fresh_sweep_with_the_same_probe_makes_the_same_runs(digits_ds, tmp_path):
    """The search's decisions depend on the probe's step costs and the exact steps, never on
    how fast a run happened to be."""
    sweep = SweepConfig(batch_sizes=(32, 128), seeds=2, target=0.92, noise=False,
                        confirm=False, timing_rounds=1)
    a = run_sweep(digits_ds, sweep, TrainConfig(), out=tmp_path / "a")
    (tmp_path / "b").mkdir()
    shutil.copy(tmp_path / "a" / "throughput.json", tmp_path / "b" / "throughput.json")
    b = run_sweep(digits_ds, sweep, TrainConfig(), out=tmp_path / "b")
    key = lambda r: (r.key, r.cap, r.status, r.summary["steps"])  # noqa: E731
    assert [key(r) for r in a.records] == [key(r) for r in b.records]
    assert b.cost.reused == 0


def test_runs_made_in_threads_are_the_runs_made_one_after_another(digits_ds, tmp_path,
                                                                  monkeypatch):
    """With the probe, a round's runs are made several at a time (one thread per usable
    CPU): the same runs, in the same order, with the same steps and histories as one after
    another (the same stored probe: the same caps)."""
    import sgdlab.lab.sweep as sweep_module
    sweep = SweepConfig(batch_sizes=(16, 64, 256), seeds=2, target=0.92, noise=False,
                        confirm=False, timing_rounds=1)
    monkeypatch.setattr(sweep_module, "usable_cpus", lambda: 1)
    a = run_sweep(digits_ds, sweep, TrainConfig(), out=tmp_path / "a")
    (tmp_path / "b").mkdir()
    shutil.copy(tmp_path / "a" / "throughput.json", tmp_path / "b" / "throughput.json")
    monkeypatch.setattr(sweep_module, "usable_cpus", lambda: 3)
    made = []
    original = RunBook.make
    monkeypatch.setattr(RunBook, "make", lambda self, request: made.append(
        threading.get_ident()) or original(self, request))
    b = run_sweep(digits_ds, sweep, TrainConfig(), out=tmp_path / "b")
    assert len(set(made)) > 1  # the runs were made in more than one thread
    key = lambda r: (r.key, r.cap, r.status, r.summary["steps"])  # noqa: E731
    assert [key(r) for r in a.records] == [key(r) for r in b.records]
    assert [r.history.without_time() for r in a.records] == \
        [r.history.without_time() for r in b.records]
    assert b.recommendation.batch_size in (16, 64, 256)


def _easy_linreg(n=2048, d=8, seed=0):
    """Isotropic standardised inputs: the best lr is about 1 at every large batch size."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    y = (X @ rng.standard_normal(d) + 0.3 * rng.standard_normal(n)).astype(np.float32)
    return Dataset(X, y, "regression", name="linreg")


def test_search_matches_a_fine_grid_on_a_large_batch():
    """The sqrt rule from 0.01 at batch 32 gives 0.04 at batch 512, where about 1 is best:
    the search must find it, with steps within 10 % of a factor-sqrt(2) grid's best."""
    ds = _easy_linreg()
    common = dict(batch_sizes=(8, 512), lr=0.01, base_batch=32, lr_scaling="sqrt", seeds=1,
                  target=0.85, budget="400 steps", probe=False, noise=False, confirm=False,
                  timing_rounds=1)
    base = TrainConfig(model="linreg")
    searched = run_sweep(ds, SweepConfig(**common, search_points=14), base)
    grid = run_sweep(ds, SweepConfig(**common, lr_grid=tuple(2.0 ** (k / 2)
                                                             for k in range(0, 20))), base)
    big = searched.batch(512)
    assert big.lr >= 4 * SweepConfig(**common).lr_for(512)
    best_grid = min(p.steps_median for p in grid.points if p.batch_size == 512)
    assert big.steps_median <= 1.1 * best_grid, (big, best_grid)
    assert searched.recommendation.batch_size is not None


def test_rule_mode_keeps_the_scaled_lr_and_records_divergence():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((512, 5)).astype(np.float32)
    y = (X @ rng.standard_normal(5) + 0.1 * rng.standard_normal(512)).astype(np.float32)
    ds = Dataset(X, y, "regression", name="linreg")
    # Linear scaling from lr 0.3 at batch 4 gives lr 19.2 at batch 256: far past stability.
    result = run_sweep(ds, SweepConfig(batch_sizes=(4, 256), lr=0.3, base_batch=4,
                                       lr_scaling="linear", lr_search=False, seeds=1,
                                       budget="10 epochs", target=0.9, probe=False,
                                       noise=False, confirm=False, timing_rounds=1),
                       TrainConfig(model="linreg"))
    status = {r.batch_size: r.status for r in result.runs}
    assert status == {4: "target_reached", 256: "diverged"}
    big = result.batch(256)
    assert big.diverged == 1 and math.isinf(big.time_median)
    assert big.status_text == "all 1 diverged"
    assert result.recommendation.batch_size == 4
    assert "At batch size 256 most seeds of the best learning rate tried diverged" in \
        " ".join(result.recommendation.sentences)
    assert result.metric == "val_r2" and result.sweep["lr_mode"] == "rule"


def test_pilot_chooses_the_target_when_none_is_given(digits_ds):
    result = run_sweep(digits_ds, SweepConfig(batch_sizes=(32, 128), seeds=1,
                                              budget="5 epochs", probe=False, noise=False,
                                              confirm=False, lr_search=False,
                                              timing_rounds=1),
                       TrainConfig(model="softmax"))
    pilot = [r for r in result.records if r.phase == "pilot"]
    assert len(pilot) == 1 and pilot[0].batch_size == 32
    assert pilot[0].status == "completed"     # the pilot trains its whole budget
    best = pilot[0].history[-1]["val_accuracy"]
    assert result.target == math.floor(100 * 0.99 * best) / 100
    assert "0.99 x the best final value" in result.target_source and result.target_auto
    assert steps_to_target(pilot[0].history, result.target) <= pilot[0].summary["steps"]
    # it evaluates EVALS_PER_RUN times over its length (and at step 0): the target needs its
    # last value, and its steps to the target set how often the first search runs evaluate
    assert len(pilot[0].history) <= EVALS_PER_RUN + 2
    pilot_steps = steps_to_target(pilot[0].history, result.target)
    first = next(r for r in result.records if r.phase == "search" and r.batch_size == 32)
    assert first.config["eval_every"] == f"{int(pilot_steps // EVALS_PER_RUN)} steps"


def test_a_given_target_gets_the_pilot_runs_stopped_at_it(digits_ds):
    """With a given target the pilot only finds its steps to it: its runs stop there, and the
    first search runs evaluate EVALS_PER_RUN times over those steps, not every 5 % of an
    epoch."""
    result = run_sweep(digits_ds, SweepConfig(batch_sizes=(32, 128), seeds=1, target=0.9,
                                              budget="5 epochs", probe=False, noise=False,
                                              confirm=False, lr_search=False,
                                              timing_rounds=1),
                       TrainConfig(model="softmax"))
    assert result.target == 0.9 and result.target_source == "given"
    pilot = [r for r in result.records if r.phase == "pilot"]
    assert len(pilot) == 1 and pilot[0].status == "target_reached"
    pilot_steps = steps_to_target(pilot[0].history, 0.9)
    assert pilot_steps <= pilot[0].summary["steps"]
    first = next(r for r in result.records if r.phase == "search" and r.batch_size == 32)
    assert first.config["eval_every"] == f"{int(pilot_steps // EVALS_PER_RUN)} steps"
    # with --eval-every the pilot would decide nothing: there is none
    fixed = run_sweep(digits_ds, SweepConfig(batch_sizes=(32,), seeds=1, target=0.9,
                                             budget="5 epochs", probe=False, noise=False,
                                             confirm=False, lr_search=False, timing_rounds=1,
                                             eval_every="7 steps"),
                      TrainConfig(model="softmax"))
    assert not [r for r in fixed.records if r.phase == "pilot"]


def test_defaults_and_schedules():
    assert default_batch_sizes(1438) == (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
    assert default_batch_sizes(100) == (1, 2, 4, 8, 16, 32, 64)
    assert parse_budget("30s") == {"epochs": None, "max_steps": None, "max_time": 30.0}
    assert parse_budget("2 min")["max_time"] == 120.0
    assert parse_budget("2000 steps")["max_steps"] == 2000
    sweep = SweepConfig()
    assert sweep.lr_mode == "search" and sweep.stop_at_target and sweep.budget is None
    # evaluated every 5 % of an epoch, at least every step
    assert eval_schedule_for(sweep, 1000, 10, False) == "5 steps"
    assert eval_schedule_for(sweep, 1000, 500, False) == "1 steps"
    assert chunk_steps_for(1) == 4096 and chunk_steps_for(64) == 256
    assert chunk_steps_for(1024) == 16


@pytest.mark.parametrize("settings, match", [
    (dict(budget="forever"), "cannot read budget"),
    (dict(budget="1.5 steps"), "must be whole"),
    (dict(budget="0s"), "must be a finite time > 0"),
    (dict(batch_sizes=(0, 4)), "batch sizes must be whole numbers >= 1"),
    (dict(lr_grid=(1, -2)), "--lr-grid"),
    (dict(lr_scaling="cubic"), "valid scalings: none, linear, sqrt"),
    (dict(seeds=0), "seeds must be"),
    (dict(seeds=10 ** 9), "seeds must be a whole number from 1 to 1000"),
    (dict(timing_rounds=10 ** 9), "timing rounds must be"),
    (dict(search_factor=1.0), "--search-factor"),
    (dict(lr_resolution=1.0), "--lr-resolution"),
    (dict(search_points=2), "search points must be"),
    (dict(timing_rounds=0), "timing rounds must be"),
    (dict(noise_batches=(64, 8)), "small < big"),
    (dict(lr=0.0), "learning rate must be"),
    (dict(target=float("nan")), "target must be a finite number"),
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


def test_a_failing_run_among_threads_stops_the_runs_not_begun(digits_ds, monkeypatch):
    """Runs made in threads: the first failure ends the round with its error, and the runs
    not begun by then are not made."""
    from sgdlab.lab.runbook import RunRequest
    from sgdlab.lab.records import data_fingerprint
    book = RunBook(digits_ds, digits_ds, fingerprint=data_fingerprint(digits_ds, digits_ds),
                   threads=2)
    made = []

    def make(self, request):
        made.append(request.config.seed)
        if request.config.seed == 0:
            raise ConfigError("run 0 failed")
        threading.Event().wait(0.2)
        return original(self, request)

    original = RunBook.make
    monkeypatch.setattr(RunBook, "make", make)
    cfg = TrainConfig(model="softmax", batch_size=64, lr=0.1, max_steps=2)
    requests = [RunRequest(cfg.replace(seed=s)) for s in range(20)]
    with pytest.raises(ConfigError, match="run 0 failed"):
        book.run_all(requests)
    assert len(made) < len(requests)
