"""Divergence of streamed runs: the fast kernel every chunk; on a NaN, the bad step located by
the fast kernel re-run for fewer steps, or by the checked kernel when that cannot tell."""

import numpy as np
import pytest

import sgdlab
from sgdlab import TrainConfig
from sgdlab.data import from_arrays
from sgdlab.engine import stream_fit, train

TINY_MB = 0.01
#: squared loss on raw features with lr 3 blows up at step 49: inside the chunk of steps
#: 41..50, so that chunk must be re-run from the state before it
CFG = dict(model="linreg", batch_size=16, epochs=3, sampling="sequential", standardize=False,
           validation_fraction=0.0, eval_every="10 steps", chunk_steps=20)


@pytest.fixture
def checked_builds(monkeypatch):
    """How many times the streamed loop built the checked fed kernel."""
    built = []
    make = stream_fit.make_checked_batch_chunk_fn

    def counting(*args):
        built.append(1)
        return make(*args)

    monkeypatch.setattr(stream_fit, "make_checked_batch_chunk_fn", counting)
    return built


@pytest.mark.parametrize("located_by", ["fast", "checked"])
def test_streamed_divergence_stops_where_the_in_memory_run_stops(shard_set, checked_builds,
                                                                 located_by, monkeypatch):
    if located_by == "checked":  # the fallback: the re-runs could not tell
        from sgdlab.engine.two_tier import TwoTier
        monkeypatch.setattr(TwoTier, "locate", lambda self, state, args, losses: None)
    path, X, y = shard_set
    memory = train(from_arrays(X, y), None, TrainConfig(lr=3.0, **CFG))
    streamed = sgdlab.fit(str(path), buffer_mb=TINY_MB, lr=3.0, **CFG)
    assert memory.status == streamed.status == "diverged"
    assert memory.diverged_at_step == streamed.diverged_at_step == 49
    assert streamed.steps == memory.steps == 48 and streamed.examples == memory.examples
    assert streamed.history.without_time() == memory.history.without_time()
    np.testing.assert_array_equal(streamed.step_losses, memory.step_losses)
    for key in ("W", "b"):  # the last finite parameters, bit for bit
        np.testing.assert_array_equal(streamed.params[key], memory.params[key])
        assert np.isfinite(streamed.params[key]).all()
    assert streamed.message == memory.message
    # built once, for the chunk that diverged, only when the fast kernel's re-runs cannot tell
    assert checked_builds == ([1] if located_by == "checked" else [])


def test_a_streamed_run_that_does_not_diverge_never_builds_the_checked_kernel(
        shard_set, checked_builds):
    path, _, _ = shard_set
    r = sgdlab.fit(str(path), buffer_mb=TINY_MB, lr=0.5, **CFG)
    assert r.status == "completed" and r.steps == 189
    assert r.step_losses.shape == (189,) and np.isfinite(r.step_losses).all()
    assert checked_builds == []
