"""Batch-size schedules: the text and its checks, the phase table against a step-by-step
count, exact accounting across boundaries, one program per batch size, the history's columns,
and bit-identical resume from a checkpoint in each phase (in memory; streamed and two-process
runs in tests/stream and tests/distributed)."""

import math
import re
import shutil

import numpy as np
import pytest
from helpers import (back_to_a_middle_checkpoint, counted_compilations,
                     keep_checkpoints_up_to)
from hypothesis import given, settings as hsettings, strategies as st

import sgdlab
from sgdlab.cli.main import main
from sgdlab.data import load_data, split
from sgdlab.data.sampling import BatchPlan, EpochRows, steps_per_epoch
from sgdlab.engine import TrainConfig, cache, train
from sgdlab.engine.batch_schedule import BatchSchedule, PhaseTable
from sgdlab.engine.fit import memory_epochs
from sgdlab.engine.session import CheckpointPolicy, Session
from sgdlab.engine.setup import phase_table
from sgdlab.errors import ConfigError


@pytest.fixture(scope="module")
def digits():
    parts = split(load_data("digits"), validation=0.2, seed=0)
    return parts.train, parts.validation


# -- the text ----------------------------------------------------------------------------------
def test_the_text_reads_back_and_python_lists_mean_the_same():
    s = BatchSchedule.parse(" 16:0, 64@0.2:2000 ,256:8e3")
    assert s.text == "16:0,64@0.2:2000,256:8000" and BatchSchedule.parse(s.text) == s
    assert s.batch_sizes == (16, 64, 256) and s.gives_lr
    e = BatchSchedule.parse("16:0,64:2e,256:8.5epochs")
    assert e.text == "16:0,64:2e,256:8.5e" and [p.unit for p in e.phases[1:]] == ["epochs"] * 2
    assert BatchSchedule.parse([(16, 0), (64, 2000, 0.2), (256, 8000)]) == s
    assert BatchSchedule.parse([(16, 0), (64, "2e")]).text == "16:0,64:2e"
    assert s.with_lr_factor(0.5).text == "16:0,64@0.1:2000,256:8000"
    config = TrainConfig(batch_schedule=[(16, 0), (64, 2000)])
    assert config.batch_schedule == "16:0,64:2000" and config.batch_size == 16


#: Bad schedules the configuration refuses, and the one message each gives from Python, a TOML
#: file and the command line.
BAD_TEXT = [
    ("abc", r"cannot read phase 1 \('abc'\) of the batch schedule 'abc'; write BATCH:START"),
    ("16:0,x:3", r"phase 2 \('x:3'\) .*: the batch size 'x' is not a number"),
    ("0:0", r"phase 1 \('0:0'\) .*: the batch size must be a whole number in \[1, 1048576\], "
            "got 0"),
    ("16:0,64:2000,256:2000", r"must start its phases at increasing counts: phase 3 starts "
                              r"at 2000, not after phase 2's 2000"),
    ("16:0,64:2000,256:1000", r"increasing counts: phase 3 starts at 1000"),
    ("16:100,64:2000", r"the first phase of the batch schedule '16:100,64:2000' must start at "
                       "0"),
    ("16:0,64:2e,256:8000", r"mixes starts in examples and in epochs"),
    ("16@0:0,64:200", r"phase 1 \('16@0:0'\) .*: the learning rate must be a finite number > "
                      "0, got 0"),
    ("16:0,64:2.5", r"a number of examples is whole, got 2.5 \(write epochs with an e: 2.5e\)"),
    ("16:0,64:-5", r"the start must be a finite number >= 0, got -5"),
]


@pytest.mark.parametrize("text,message", BAD_TEXT)
def test_a_bad_schedule_gives_one_message_from_python_toml_and_the_command_line(
        tmp_path, capsys, text, message):
    message = r"setting 'batch_schedule' \(--batch-schedule\): .*" + message
    with pytest.raises(ConfigError, match=message):
        TrainConfig(batch_schedule=text)
    toml = tmp_path / "c.toml"
    toml.write_text(f'batch_schedule = "{text}"\n')
    assert main(["train", "--quiet", "--config", str(toml), "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err) and "Traceback" not in err, err
    assert main(["train", "--quiet", f"--batch-schedule={text}", "--out",
                 str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err) and "Traceback" not in err, err


#: Schedules that only the data can refuse (digits: 1,438 training rows, 90 steps per epoch at
#: 16), and settings that contradict a schedule.
BAD_ON_DATA = [
    (dict(batch_schedule="16:0,4096:2000"), r"phase 2 of the batch schedule \(batch 4096 from "
     r"2000 examples\) is larger than the 1438 training examples"),
    (dict(batch_schedule="16:0,64:5000"), r"phase 2 of the batch schedule \(batch 64 from "
     r"5000 examples\) never starts: the run ends after 180 steps \(2876 examples, 2 epochs\)"),
    (dict(batch_schedule="16:0,64:3e"), r"phase 2 .*\(batch 64 from 3 epochs\) never starts"),
    (dict(batch_schedule="16:0,64:10,128:12"), r"phase 2 of the batch schedule \(batch 64 "
     r"from 10 examples\) never runs: phase 3 \(batch 128 from 12 examples\) starts at the "
     "same step 1"),
    (dict(batch_schedule="16:0,64:200", batch_size=64), r"batch_size=64 \(--batch-size\) "
     r"contradicts the batch schedule '16:0,64:200', whose first phase trains at 16"),
    (dict(lr_scaling="sqrt"), r"lr_scaling='sqrt' \(--lr-scaling\) scales the learning rate "
     "of a batch schedule's phases"),
]


@pytest.mark.parametrize("settings,message", BAD_ON_DATA)
def test_a_schedule_the_data_refuses_gives_one_message_everywhere(tmp_path, capsys,
                                                                   settings, message):
    with pytest.raises(ConfigError, match=message):
        sgdlab.fit("digits", epochs=2, plots=False, **settings)
    toml = tmp_path / "c.toml"
    toml.write_text("".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in settings.items()))
    assert main(["train", "--quiet", "--epochs", "2", "--config", str(toml), "--out",
                 str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err) and "Traceback" not in err, err
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in settings.items()]
    assert main(["train", "--quiet", "--epochs", "2", *flags, "--out",
                 str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err) and "Traceback" not in err, err


def test_several_processes_need_every_phase_divisible_before_any_starts(capsys):
    assert main(["train", "--quiet", "--processes", "2", "--batch-schedule",
                 "16:0,33:500"]) == 2
    assert "batch size 33 of the batch schedule must be a multiple of the number of " \
           "processes (2)" in capsys.readouterr().err


def test_per_phase_rates_need_a_numeric_rate_of_a_named_optimiser():
    import optax
    with pytest.raises(ConfigError, match=r"per-phase learning rates \(@LR, --lr-scaling\) "
                                          "multiply a numeric lr of a named optimiser"):
        TrainConfig(batch_schedule="16:0,64@0.1:100", optimizer=optax.sgd(0.1))
    TrainConfig(batch_schedule="16:0,64:100", optimizer=optax.sgd(0.1))  # phases at its rate


@pytest.mark.parametrize("verb", ["sweep", "landscape"])
def test_verbs_that_measure_fixed_batch_sizes_refuse_a_schedule(tmp_path, capsys, verb):
    toml = tmp_path / "c.toml"
    toml.write_text('batch_schedule = "16:0,64:500"\n')
    assert main([verb, "--data", "digits", "--config", str(toml), "--quiet", "--out",
                 str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"batch_schedule='16:0,64:500' (--batch-schedule): sgdlab {verb} measures fixed " \
           "batch sizes, one at a time; drop it" in err and "Traceback" not in err, err


def test_tools_that_train_one_batch_size_refuse_a_schedule():
    from sgdlab.engine.setup import setup_run
    from sgdlab.lab.compare import compare_methods
    from sgdlab.lab.random_search import random_search
    digits = load_data("digits")
    scheduled = TrainConfig(batch_schedule="16:0,64:100", max_time=1.0)
    with pytest.raises(ConfigError, match="sgdlab compare measures fixed batch sizes"):
        compare_methods(digits, digits, base=scheduled)
    with pytest.raises(ConfigError, match="random search measures fixed batch sizes"):
        random_search(digits, None, scheduled)
    with pytest.raises(ConfigError, match="applies to training runs .* this tool trains one "
                                          "batch size at a time: drop it"):
        setup_run(TrainConfig(batch_schedule="16:0,64:100"), example_shape=(4,), n_classes=3,
                  steps_per_epoch=10)


# -- the phase table against a step-by-step count ----------------------------------------------
def _walk(n, sampling, drop_last, phases, steps):
    """Draw ``steps`` steps one at a time from a plan, switching batch size when a phase's
    start is reached (a direct count, the oracle of the table): ``-> (phase start steps,
    examples after each step, epoch of each step, per-epoch rows seen)``."""
    plan = BatchPlan(n, phases[0].batch_size, sampling, seed=7, drop_last=drop_last)
    starts, seen, epoch_of, rows = [0], [0], [], {}
    x, i = 0, 0
    for t in range(steps):
        while i + 1 < len(phases):
            nxt = phases[i + 1]
            reached = x >= nxt.start if nxt.unit == "examples" else \
                plan.epoch + plan.slot / n >= nxt.start - 1e-12
            if not reached:
                break
            i += 1
            starts.append(t)
            plan.set_batch_size(nxt.batch_size)
        epoch_of.append(plan.epoch)
        e = plan.epoch
        idx, w = plan.take(1)
        x += int((w > 0).sum())
        rows.setdefault(e, []).extend(idx[w > 0].tolist())
        seen.append(x)
    return starts, seen, epoch_of, rows


@st.composite
def cases(draw):
    n = draw(st.integers(5, 60))
    sampling = draw(st.sampled_from(["shuffle", "sequential", "replacement"]))
    drop_last = draw(st.booleans())
    k = draw(st.integers(1, 4))
    sizes = [draw(st.integers(1, n)) for _ in range(k)]
    if draw(st.booleans()):
        starts = [0] + sorted(draw(st.lists(st.integers(1, 6 * n), min_size=k - 1,
                                            max_size=k - 1, unique=True)))
        text = ",".join(f"{b}:{s}" for b, s in zip(sizes, starts))
    else:
        starts = [0] + sorted(draw(st.lists(st.integers(1, 24), min_size=k - 1,
                                            max_size=k - 1, unique=True)))
        text = ",".join(f"{b}:{s / 4!r}e" for b, s in zip(sizes, starts))
    return n, sampling, drop_last, text


@hsettings(max_examples=150, deadline=None)
@given(cases())
def test_the_phase_table_agrees_with_a_step_by_step_count(case):
    n, sampling, drop_last, text = case
    schedule = BatchSchedule.parse(text)
    rows = EpochRows((n,), drop_last, sampling == "replacement")
    try:
        table = PhaseTable.build(schedule, rows, lr=0.1)
    except ConfigError as e:
        assert "never runs" in str(e)  # two starts that fall on one step boundary
        return
    steps = table.phases[-1].step + 3 * rows.steps_left(0, schedule.phases[-1].batch_size)
    starts, seen, epoch_of, by_epoch = _walk(n, sampling, drop_last, schedule.phases, steps)
    assert [p.step for p in table.phases] == starts
    assert [table.examples_at(t) for t in range(steps + 1)] == seen
    assert [p.examples for p in table.phases] == [seen[t] for t in starts]
    # the clock: each step's epoch, and fractional epochs that reach e exactly where it starts
    clock = table.clock
    assert [math.floor(clock.epochs(t) + 1e-9) for t in range(steps)] == epoch_of
    for e in range(1, epoch_of[-1] + 1):
        assert clock.step_at(e) == epoch_of.index(e) and clock.epochs(clock.step_at(e)) == e
    # shuffle and sequential: a whole epoch holds every row once, whatever the batch sizes
    if sampling != "replacement" and not drop_last:
        for e in range(epoch_of[-1]):
            assert sorted(by_epoch[e]) == list(range(n))
    # an example budget's steps
    for budget in (1, n, seen[-1] // 2 + 1):
        t = table.step_reaching(budget)
        assert seen[t] >= budget and (t == 0 or seen[t - 1] < budget)


def test_a_boundary_inside_an_epoch_continues_its_permutation():
    plan = BatchPlan(50, 4, "shuffle", seed=3)
    whole = BatchPlan(50, 50, "shuffle", seed=3).take(1)[0][0]  # epoch 0's order
    a, _ = plan.take(3)             # 12 rows at 4
    plan.set_batch_size(16)
    b, wb = plan.take(3)            # 16, 16 and the last 6 rows (masked to 16)
    assert plan.position == {"epoch": 1, "step_in_epoch": 0, "row": 0}
    got = np.concatenate([a.ravel(), b.ravel()[wb.ravel() > 0]])
    np.testing.assert_array_equal(got, whole)
    # with drop_last the epoch ends where fewer rows than the new batch size remain
    drop = BatchPlan(50, 4, "shuffle", seed=3, drop_last=True)
    drop.take(9)                    # 36 rows: 14 left
    drop.set_batch_size(16)
    assert drop.position == {"epoch": 1, "step_in_epoch": 0, "row": 0}


# -- training runs -----------------------------------------------------------------------------
SCHEDULE = "16:0,64:1000,128:2000"  # boundaries inside epoch 0 and inside epoch 1


def test_examples_steps_and_epochs_are_counted_exactly_across_boundaries(digits):
    train_part, val = digits
    n = train_part.n
    config = TrainConfig(batch_schedule=SCHEDULE, epochs=3, eval_every="7 steps, 1 epoch",
                         lr_scaling="sqrt")
    r = train(train_part, val, config)
    table = phase_table(config, steps_per_epoch(n, 16), memory_epochs(n, config))
    phases = [(p.batch_size, p.step, p.examples) for p in table.phases]
    assert n == 1438 and phases == [(16, 0, 0), (64, 63, 1008), (128, 79, 2014)]
    # epoch 0: 63 steps of 16 and 7 of 64 (the last with 430 - 384 = 46 rows); epoch 1: 9 of
    # 64 (2014 >= 2000 examples) then ceil(862 / 128) = 7 of 128; epoch 2: ceil(1438 / 128) =
    # 12 of 128
    assert r.steps == 70 + 16 + 12 and r.examples == 3 * n and r.epochs == 3.0
    assert r.status == "completed"
    for row in r.history:
        assert row["examples"] == table.examples_at(row["step"])
        assert row["epoch"] == table.clock.epochs(row["step"])
        p = table.phases[table.index_at(max(row["step"] - 1, 0))]
        assert row["batch_size"] == p.batch_size and row["lr"] == p.lr
    by_step = {row["step"]: row for row in r.history}
    for e, step in ((1, 70), (2, 86), (3, 98)):  # "1 epoch": a row at each epoch's start
        assert by_step[step]["epoch"] == e and by_step[step]["examples"] == e * n
    # "7 steps": steps of any batch size
    assert sorted(by_step) == sorted(set(range(0, 98, 7)) | {70, 86, 98})
    assert [row["lr"] for row in r.history][-1] == pytest.approx(0.1 * math.sqrt(8))
    assert r.extra["batch_phases"][1] == {"batch_size": 64, "lr": 0.2, "start_step": 63,
                                          "start_examples": 1008, "start_epoch": 0.9}


def test_one_phase_is_the_fixed_batch_run_bit_for_bit(digits):
    train_part, val = digits
    fixed = train(train_part, val, TrainConfig(batch_size=32, epochs=2, eval_every="11 steps"))
    phased = train(train_part, val, TrainConfig(batch_schedule="32:0", epochs=2,
                                                eval_every="11 steps"))
    assert fixed.history.without_time() == phased.history.without_time()
    assert np.array_equal(np.asarray(fixed.params["W"]), np.asarray(phased.params["W"]))


def test_one_program_per_batch_size_reused_across_phases_and_runs(digits):
    train_part, val = digits
    cache.clear()
    config = TrainConfig(batch_schedule="16:0,64:500,16:1500,64:2500", epochs=2,
                         eval_every="1 epoch", chunk_steps=8)
    first = train(train_part, val, config)
    assert len(first.extra["batch_phases"]) == 4
    assert cache.stats()["built"]["chunk"] == 2  # 16 and 64, each once
    with counted_compilations() as compiles:
        again = train(train_part, val, config)
        other = train(train_part, val, config.replace(batch_schedule="64:0,16:300"))
        fixed = train(train_part, val, config.replace(batch_schedule=None, batch_size=64))
        assert compiles == []
    assert cache.stats()["built"]["chunk"] == 2
    assert first.history.without_time() == again.history.without_time()
    assert other.extra["batch_phases"][1]["batch_size"] == 16 and fixed.steps == 2 * 23


def test_a_branch_from_a_checkpoint_continues_at_another_batch_size(digits):
    # the reference trains at 16; a branch from its checkpoint at step 40 trains at 128 for
    # 1,000 more examples: exactly the run whose schedule switches there
    train_part, val = digits
    n = train_part.n
    ref = TrainConfig(batch_size=16, epochs=1, lr=0.1, optimizer="momentum",
                      eval_every="20 steps", chunk_steps=8)
    session = Session(None, CheckpointPolicy(every="40 steps"), lr=None)
    seen = []
    train(train_part, val, ref, session=session, callback=lambda e: e["event"] == "chunk"
          and session.last_good.step == 40 and not seen and seen.append(session.last_good))
    snap = seen[0]
    x = snap.meta["examples"]
    assert (snap.step, x) == (40, 640)
    branch = ref.replace(batch_schedule=f"16:0,128@0.3:{x}", epochs=None, max_steps=10 ** 6)
    table = phase_table(branch, steps_per_epoch(n, 16), memory_epochs(n, branch))
    budget = table.step_reaching(x + 1000)
    branch = branch.replace(max_steps=budget)
    straight = train(train_part, val, branch)  # builds 128's program
    built = cache.stats()["built"]["chunk"]

    def branched():
        return train(train_part, val, branch,
                     session=Session(None, CheckpointPolicy(every="end"), resume=snap))

    branched()  # (restoring a checkpoint first copies its arrays to the device: jax.numpy)
    with counted_compilations() as compiles:
        r = branched()
        assert compiles == []  # every program it needs was built before
    assert cache.stats()["built"]["chunk"] == built
    assert r.examples - x >= 1000 and r.examples - 128 < x + 1000
    after = lambda h: [row for row in h.without_time() if row["step"] > 40]  # noqa: E731
    assert after(r.history) == after(straight.history)
    assert r.history[-1]["batch_size"] == 128 and r.history[-1]["lr"] == 0.3
    assert np.array_equal(np.asarray(r.params["W"]), np.asarray(straight.params["W"]))


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sched") / "run"
    r = sgdlab.fit("digits", out=out, batch_schedule="16:0,64:900,128:2200", epochs=3,
                   optimizer="momentum", eval_every="10 steps", chunk_steps=6,
                   checkpoint_every="9 steps", keep_checkpoints=100, plots=False)
    assert r.status == "completed"
    return out, r


def _back_to(ref_dir, dst, step):
    shutil.copytree(ref_dir, dst)
    keep_checkpoints_up_to(dst, step)


@pytest.mark.parametrize("phase", [0, 1, 2])
def test_resume_from_a_checkpoint_in_each_phase_is_bit_identical(reference_run, tmp_path,
                                                                 phase):
    from reliability.rel_helpers import assert_same_run
    ref_dir, ref = reference_run
    starts = [p["start_step"] for p in ref.extra["batch_phases"]] + [ref.steps]
    run = tmp_path / "run"
    shutil.copytree(ref_dir, run)
    step = back_to_a_middle_checkpoint(run, starts[phase + 1], after=starts[phase])
    r = sgdlab.fit(resume=run, plots=False)
    assert r.extra["resumed_from_step"] == step and r.status == "completed"
    assert_same_run(run, ref_dir)


def test_the_run_directory_records_the_phases_and_a_resume_refuses_another_schedule(
        reference_run, tmp_path, capsys):
    import csv
    import json
    ref_dir, ref = reference_run
    with open(ref_dir / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert {"batch_size", "lr"} <= set(rows[0])
    assert [int(r["batch_size"]) for r in rows][:2] == [16, 16] and rows[-1]["batch_size"] == \
        "128"
    phases = json.loads((ref_dir / "metrics.json").read_text())["batch_phases"]
    assert [p["batch_size"] for p in phases] == [16, 64, 128]
    run = tmp_path / "run"
    _back_to(ref_dir, run, 45)
    assert main(["train", "--resume", str(run), "--batch-schedule", "16:0,64:900",
                 "--quiet"]) == 2
    assert "batch_schedule was '16:0,64:900,128:2200', now '16:0,64:900'" in \
        capsys.readouterr().err


def test_train_help_shows_schedules():
    from helpers import help_of
    text = help_of("train")
    assert '--batch-schedule "16:0,64:2000,256:8000"' in text
    assert '"16:0,64:2e,256:8e" --lr-scaling sqrt' in text and "16@0.05:0,64@0.2:2000" in text
    assert "batch-size schedule:" in text and "--lr-scaling" in text
