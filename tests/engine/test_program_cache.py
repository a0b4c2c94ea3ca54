"""Compiled programs are reused across equal runs and never shared across different ones."""

import threading

import jax
import numpy as np
import pytest
from helpers import counted_compilations

from sgdlab import TrainConfig
from sgdlab.data import Dataset
from sgdlab.engine import cache, train


def _data(n=64, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    return Dataset(X, (X[:, 0] > 0).astype(np.int32), classes=(0, 1))


def test_second_equal_run_compiles_nothing_and_gives_the_same_bits():
    ds, val = _data(), _data(seed=1)
    cfg = TrainConfig(model="logistic", batch_size=8, epochs=2, lr=0.05, seed=3)
    first = train(ds, val, cfg)
    with counted_compilations() as compiles:
        # New data of the same shape: only values differ, so the stored programs serve it.
        second = train(_data(seed=2), val, cfg)
        assert compiles == []
        again = train(ds, val, cfg)
        assert compiles == []
    assert np.array_equal(np.asarray(first.params["W"]), np.asarray(again.params["W"]))
    assert first.history.without_time() == again.history.without_time()
    assert not np.array_equal(np.asarray(first.params["W"]), np.asarray(second.params["W"]))


def test_a_different_setting_or_shape_gets_its_own_program():
    ds = _data()
    cfg = TrainConfig(model="logistic", batch_size=8, epochs=1, lr=0.05)
    train(ds, None, cfg)
    before = cache.stats()["misses"]
    a = train(ds, None, cfg.replace(lr=0.5))        # the rate is a runtime input: no compile
    assert cache.stats()["misses"] == before
    b = train(ds, None, cfg.replace(batch_size=4))  # another (K, B) shape
    c = train(_data(n=200), None, cfg)              # another (padded) N
    assert cache.stats()["misses"] == before + 2
    base = train(ds, None, cfg)
    assert not np.array_equal(np.asarray(a.params["W"]), np.asarray(base.params["W"]))
    assert b.steps == 16 and c.steps == 25


def test_similar_sizes_share_a_program_and_padding_changes_no_bit(monkeypatch):
    assert [cache.padded_rows(n) for n in (1, 40, 64, 65, 1437, 1438, 70000)] == \
        [64, 64, 64, 128, 1536, 1536, 70000]
    assert [cache.bucket_steps(k) for k in (1, 3, 45, 512, 600)] == [1, 4, 64, 512, 600]
    cfg = TrainConfig(model="softmax", batch_size=8, epochs=2, lr=0.05, seed=1)
    train(_data(n=50), None, cfg)
    before = cache.stats()["misses"]
    padded = train(_data(n=45, seed=4), _data(n=20, seed=5), cfg)
    assert cache.stats()["misses"] == before + 1  # the evaluator is new, the chunk is not
    monkeypatch.setattr(cache, "PAD_BELOW_ROWS", 0)
    monkeypatch.setattr(cache, "BUCKET_BELOW_STEPS", 0)
    exact = train(_data(n=45, seed=4), _data(n=20, seed=5), cfg)
    leaves = jax.tree_util.tree_leaves
    for a, b in zip(leaves(padded.params), leaves(exact.params)):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    assert padded.history.without_time() == exact.history.without_time()


def test_clear_forgets_programs():
    ds = _data()
    cfg = TrainConfig(model="svm", batch_size=16, epochs=1)
    train(ds, None, cfg)
    cache.clear()
    assert cache.stats() == {"hits": 0, "misses": 0, "entries": 0,
                             "built": {"chunk": 0, "checked_chunk": 0, "evaluate": 0}}
    train(ds, None, cfg)
    assert cache.stats()["misses"] == 1


def test_a_program_built_by_two_threads_at_once_is_compiled_once():
    """Threads asking the program store for one key while it is being built wait for that
    build: one compilation, one program, and the build's error reaches every thread."""
    cache.clear()
    started, release, builds = threading.Event(), threading.Event(), []

    def build():
        builds.append(1)
        started.set()
        release.wait(5)
        return object()

    got = []
    first = threading.Thread(target=lambda: got.append(cache.get_or_build("chunk", ("k",), build)))
    first.start()
    started.wait(5)
    second = threading.Thread(target=lambda: got.append(cache.get_or_build("chunk", ("k",), build)))
    second.start()
    release.set()
    first.join(5)
    second.join(5)
    assert len(builds) == 1 and len(got) == 2 and got[0] is got[1]
    assert cache.stats()["built"]["chunk"] == 1

    def failing():
        raise RuntimeError("no compiler")
    with pytest.raises(RuntimeError, match="no compiler"):
        cache.get_or_build("chunk", ("bad",), failing)
    assert cache.get_or_build("chunk", ("bad",), object) is not None  # not stored as failed
