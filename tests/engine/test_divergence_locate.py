"""A diverged chunk located by the fast kernel re-run for fewer steps: the same answer, bit for
bit, as the step-checking kernel, without compiling it (see ``TwoTier.locate``)."""

import inspect

import jax
import numpy as np
import optax
import pytest

from sgdlab.data import load_data
from sgdlab.engine import TrainConfig, cache, train
from sgdlab.engine.batched import FED_ACTIVE_ARG, make_batch_chunk_fn
from sgdlab.engine.chunk import ACTIVE_ARG, make_chunk_fn
from sgdlab.engine.two_tier import TwoTier

DATA = "linreg:n=500,d=5"   # 400 training rows: 25 steps per epoch at batch 16
K = 16                     # steps per compiled chunk


@pytest.fixture
def located(monkeypatch):
    """``[(active steps of the bad chunk, steps kept)]`` of every chunk ``locate`` placed."""
    seen, real = [], TwoTier.locate

    def spy(self, state, args, losses):
        found = real(self, state, args, losses)
        if found is not None:
            seen.append((int(args[self.active]), found[2] - int(np.asarray(state.step))))
        return found

    monkeypatch.setattr(TwoTier, "locate", spy)
    return seen


def _diverging(**kw):
    return TrainConfig(model="linreg", batch_size=16, epochs=3, lr=8.0, chunk_steps=K,
                       standardize=False, **kw)


def test_a_diverging_run_ends_the_same_without_compiling_the_checked_kernel(located,
                                                                           monkeypatch):
    data = load_data(DATA)
    cache.clear()
    fast = train(data, None, _diverging())
    assert cache.stats()["built"]["checked_chunk"] == 0
    [(n, kept)] = located
    assert 0 < kept < n  # the bad step lies inside its chunk: steps before it were kept
    monkeypatch.setattr(TwoTier, "locate", lambda self, state, args, losses: None)
    cache.clear()
    checked = train(data, None, _diverging())
    assert cache.stats()["built"]["checked_chunk"] == 1
    assert fast.status == checked.status == "diverged"
    assert fast.diverged_at_step == checked.diverged_at_step and fast.steps == checked.steps
    for a, b in zip(jax.tree_util.tree_leaves(fast.params),
                    jax.tree_util.tree_leaves(checked.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert [r["step"] for r in fast.history] == [r["step"] for r in checked.history]
    np.testing.assert_array_equal(fast.step_losses, checked.step_losses)


def test_an_optax_object_s_run_is_located_by_the_checked_kernel(located):
    """An optax object's state may be overwritten, turning NaN back into numbers, which the
    re-runs would not see: its runs keep the step-checking kernel."""
    cache.clear()
    r = train(load_data(DATA), None, _diverging(optimizer=optax.sgd(8.0)))
    assert r.status == "diverged" and not located
    assert cache.stats()["built"]["checked_chunk"] == 1


@pytest.mark.parametrize("make,position", [(make_chunk_fn, ACTIVE_ARG),
                                           (make_batch_chunk_fn, FED_ACTIVE_ARG)])
def test_the_active_positions_name_the_kernels_n_active(make, position):
    kernel = make(lambda *a: None, optax.sgd(1.0))
    after_state = list(inspect.signature(kernel).parameters)[1:]
    assert after_state[position] == "n_active"
