"""The engine's loop pieces on their own: the two-tier kernel, the ledger, the evaluation
schedule's boundaries, and run_loop driven by a scripted source (no compilation, no data)."""

import numpy as np
import pytest

from sgdlab._types import TrainState
from sgdlab.engine import TrainConfig, run_loop, setup_run
from sgdlab.engine.two_tier import TwoTier
from sgdlab.engine.ledger import RunLedger
from sgdlab.engine.schedule import EvalSchedule


# -- the two-tier kernel ---------------------------------------------------------------------
def test_two_tier_builds_the_checked_kernel_only_on_a_bad_chunk():
    built = []

    def fast(state, n):
        return state + n, np.arange(3.0), state + n < 10  # "diverges" past 10

    def checked(state, n):
        return state + 1, np.array([1.0, 0.0, 0.0]), state + 1  # stops at the first bad step

    def build():
        built.append(1)
        return checked

    kernel = TwoTier(fast, build)
    assert kernel(0, 3)[2] == -1 and kernel(3, 3)[2] == -1 and not built
    state, losses, first_bad = kernel(8, 3)  # fast says not ok: redo checked from state 8
    assert built == [1] and (state, first_bad) == (9, 9)
    assert kernel.compile_seconds >= kernel.last_compile_seconds >= 0
    kernel(9, 3)
    assert built == [1]  # built once, reused
    assert kernel.last_compile_seconds == 0.0


# -- the ledger ------------------------------------------------------------------------------
def test_the_ledger_counts_steps_examples_and_losses_up_to_a_bad_step():
    events = []
    ledger = RunLedger(4, 0.0, lambda: "params", step=0,
                       evaluate=lambda p: {"val_accuracy": 0.5},
                       callback=lambda e: events.append(e["event"]) or
                       (e["event"] == "row" and e["row"]["step"] == 6))
    ledger.add_row()
    assert ledger.add_chunk(0.5, np.array([1.0, 3.0, 5.0]), np.full(3, 2), 3, -1) == 3
    row = ledger.add_row()
    assert row["step"] == 3 and row["epoch"] == 0.75 and row["examples"] == 6
    assert row["train_loss"] == 3.0 and row["val_accuracy"] == 0.5
    # a chunk of 4 whose third step (step count 6 -> the 7th) went bad: only 3 count
    assert ledger.add_chunk(0.25, np.array([2.0, 2.0, 2.0, 9.0]), np.full(4, 2), 4, 6) == 3
    row = ledger.add_row()
    assert row["step"] == 6 and row["train_loss"] == 2.0 and ledger.stop_requested
    totals = ledger.totals()
    assert totals["steps"] == 6 and totals["examples"] == 12 and totals["train_seconds"] == 0.75
    np.testing.assert_array_equal(totals["step_losses"], [1, 3, 5, 2, 2, 2])
    assert events == ["row", "chunk", "row", "chunk", "row"]


# -- the schedule's boundaries ---------------------------------------------------------------
@pytest.mark.parametrize("spec,step,spe,next_gap", [
    ("5 steps", 0, 10, 5), ("5 steps", 7, 10, 3), ("1 epoch", 3, 7, 4),
    ("0.5 epochs", 0, 7, 4), ("0.5 epochs", 4, 7, 3), ("5 steps, 1 epoch", 8, 9, 1),
])
def test_steps_to_the_next_boundary(spec, step, spe, next_gap):
    assert EvalSchedule.parse(spec).steps_to_next(step, spe, 1000) == next_gap


def test_a_boundary_is_due_once_crossed_and_time_counts_from_the_last_evaluation():
    s = EvalSchedule.parse("5 steps, 2s")
    assert not s.due(4, 0.0, 0, 0.0, 100) and s.due(5, 0.0, 0, 0.0, 100)
    assert not s.due(9, 1.0, 5, 0.0, 100) and s.due(9, 2.0, 5, 0.0, 100)
    e = EvalSchedule.parse("1 epoch")
    assert not e.due(6, 0.0, 0, 0.0, 7) and e.due(7, 0.0, 0, 0.0, 7)


# -- run_loop with a scripted source -------------------------------------------------------
class ScriptedSource:
    """A source whose 'kernel' adds one per step; it fails at ``bad_step`` if given."""

    session_options: dict = {}
    agree = None
    info = {"scripted": True}

    def __init__(self, spe, K, bad_step=None):
        self.steps_per_epoch, self.chunk_steps, self.bad_step = spe, K, bad_step
        self.calls, self.seeked, self.entered = [], None, []

    position = property(lambda self: {"epoch": 0, "step_in_epoch": 0})

    def seek(self, epoch, step_in_epoch, row=None):
        self.seeked = (epoch, step_in_epoch)

    def build(self, setup, state):
        return state

    def evaluator(self, setup, state):
        return lambda p: {"val_accuracy": 0.5}

    def enter(self, phase):
        self.entered.append((phase.step, phase.batch_size))

        def fast(s, n):
            step = int(s.step) + n
            bad = self.bad_step is not None and step > self.bad_step
            return s._replace(step=np.int32(step)), np.ones(self.chunk_steps), not bad

        def checked(s, n):
            return s._replace(step=np.int32(self.bad_step)), np.ones(self.chunk_steps), \
                self.bad_step
        return TwoTier(fast, lambda: checked)

    def run_chunk(self, kernel, state, n):
        self.calls.append(n)
        new, losses, first_bad = kernel(state, n)
        return new, losses, np.ones(self.chunk_steps), first_bad

    def params(self, state):
        return state.params

    def step(self, state):
        return int(state.step)

    def local(self, state):
        return state


def _run(config, source, epoch_rows=None, **kw):
    setup = setup_run(config, example_shape=(2,), n_classes=3,
                      steps_per_epoch=source.steps_per_epoch, epoch_rows=epoch_rows)
    state = TrainState({"W": np.zeros((3, 2), np.float32), "b": np.zeros(3, np.float32)},
                       (), np.int32(0))
    return run_loop(setup, source, state, wall0=0.0,
                    result_fields={"task": "classification", "classes": (0, 1, 2),
                                   "standardizer": None}, **kw)


def test_chunks_are_cut_at_evaluation_boundaries_and_at_the_end():
    source = ScriptedSource(spe=10, K=8)
    result = _run(TrainConfig(epochs=2.5, eval_every="6 steps"), source)
    # 25 steps, evaluations at 6, 12, 18, 24 and the end: chunks never cross them
    assert source.calls == [6, 6, 6, 6, 1]
    assert [row["step"] for row in result.history] == [0, 6, 12, 18, 24, 25]
    assert result.status == "completed" and result.steps == 25
    assert result.extra == {"chunk_steps": 8, "scripted": True}


def test_a_bad_step_ends_the_run_as_diverged_there():
    source = ScriptedSource(spe=10, K=8, bad_step=11)
    result = _run(TrainConfig(epochs=3, eval_every="1 epoch"), source)
    assert result.status == "diverged" and result.diverged_at_step == 12
    assert result.steps == 11 and "diverged at step 12" in result.message


def test_a_callback_stops_the_run_after_its_row():
    source = ScriptedSource(spe=10, K=4)
    result = _run(TrainConfig(epochs=5, eval_every="4 steps"), source,
                  callback=lambda e: e["event"] == "row" and e["row"]["step"] >= 8)
    assert result.status == "stopped" and result.steps == 8


def test_a_chunk_never_crosses_a_phase_boundary_and_each_phase_enters_once():
    from sgdlab.data.sampling import EpochRows
    # 100 rows: batch 10 for 25 examples (3 steps: 30 examples), then 20 from 95 examples
    # (from step 3 at 30 examples, 4 steps end the epoch at 100 >= 95: step 7), then 10
    source = ScriptedSource(spe=10, K=8)
    result = _run(TrainConfig(batch_schedule="10:0,20:25,10:95", max_steps=12,
                              eval_every="end"), source, epoch_rows=EpochRows((100,)))
    assert source.entered == [(0, 10), (3, 20), (7, 10)]
    assert source.calls == [3, 4, 5]
    assert result.steps == 12
    assert [p["start_step"] for p in result.extra["batch_phases"]] == [0, 3, 7]


# -- locating a bad step with the fast kernel ------------------------------------------------
class _Toy:
    """A fast kernel over a scalar 'parameter' ``p`` with a scripted trajectory: step ``k``
    (global) has loss ``losses[k]`` and leaves ``p = states[k + 1]``; ``ok`` checks the
    active losses and the final state, as the real fast kernel does."""

    def __init__(self, losses, states):
        self.losses, self.states, self.calls = np.asarray(losses), np.asarray(states), []

    def fast(self, state, n):
        self.calls.append(int(n))
        s0, K = int(state.step), 4
        out = np.zeros(K)
        out[:n] = self.losses[s0:s0 + n]
        p = self.states[s0 + n]
        new = TrainState(p, 0.0, np.int32(s0 + n))
        return new, out, bool(np.isfinite(out).all() and np.isfinite(p))

    def checked(self, state, n):
        s0 = int(state.step)
        for k in range(n):
            if not (np.isfinite(self.losses[s0 + k]) and np.isfinite(self.states[s0 + k + 1])):
                out = np.zeros(4)
                out[:k] = self.losses[s0:s0 + k]
                return TrainState(self.states[s0 + k], 0.0, np.int32(s0 + k)), out, s0 + k
        raise AssertionError("not a bad chunk")


@pytest.mark.parametrize("losses,states,bad", [
    # the loss of global step 5 is NaN, the state before it finite: step 5 is the bad one
    ([1, 1, 1, 1, 1, np.nan, 1, 1], [0, 1, 2, 3, 4, 5, 6, 7, 8], 5),
    # the state after step 5 is inf (its loss finite), so step 6's loss is NaN: step 5
    ([1, 1, 1, 1, 1, 1, np.nan, np.nan], [0, 1, 2, 3, 4, 5, np.inf, np.inf, np.inf], 5),
    # only the chunk's final state went bad: its last step, 7
    ([1] * 8, [0, 1, 2, 3, 4, 5, 6, 7, np.inf], 7),
    # the chunk's first step: its loss
    ([1, 1, 1, 1, np.nan, 1, 1, 1], [0, 1, 2, 3, 4, 5, 6, 7, 8], 4),
])
def test_the_fast_kernel_locates_a_bad_step_like_the_checked_one(losses, states, bad):
    toy, built = _Toy(losses, states), []
    kernel = TwoTier(toy.fast, lambda: built.append(1) or toy.checked, active=0)
    start = TrainState(4.0, 0.0, np.int32(4))
    state, out, first_bad = kernel(start, np.int32(4))
    want = toy.checked(start, 4)
    assert first_bad == bad == want[2] and not built
    assert (float(state.params), int(state.step)) == (float(want[0].params), int(want[0].step))
    np.testing.assert_array_equal(out, want[1])
    assert len(toy.calls) <= 3  # the chunk, then at most two shorter re-runs


def test_a_state_the_re_runs_cannot_vouch_for_goes_to_the_checked_kernel():
    # the state goes inf at step 5 and stays inf while every loss stays finite (Adam's second
    # moment overflowing does this): no shorter re-run is ok, so the checked kernel decides
    toy, built = _Toy([1] * 8, [0, 1, 2, 3, 4, 5, np.inf, np.inf, np.inf]), []
    kernel = TwoTier(toy.fast, lambda: built.append(1) or toy.checked, active=0)
    state, out, first_bad = kernel(TrainState(4.0, 0.0, np.int32(4)), np.int32(4))
    assert built == [1] and first_bad == 5 and int(state.step) == 5
