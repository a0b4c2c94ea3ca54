"""Splits are deterministic and stratified; the standardizer only ever sees training data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sgdlab.data import Splits, Standardizer, from_arrays, split
from sgdlab.data.synthetic import linear_regression
from sgdlab.errors import ConfigError, DataError


def imbalanced(n_per_class=(600, 300, 100)):
    y = np.repeat(np.arange(len(n_per_class)), n_per_class)
    X = np.arange(len(y) * 2, dtype=np.float32).reshape(-1, 2)
    return from_arrays(X, y)


def test_stratified_split_keeps_proportions_and_partitions():
    ds = imbalanced()
    parts = split(ds, validation=0.2, test=0.1, seed=0)
    assert isinstance(parts, Splits)
    assert (parts.train.n, parts.validation.n, parts.test.n) == (700, 200, 100)
    assert np.bincount(parts.validation.y).tolist() == [120, 60, 20]
    assert np.bincount(parts.test.y).tolist() == [60, 30, 10]
    # Disjoint and complete: first feature is a unique row id.
    ids = np.concatenate([p.X[:, 0] for p in parts])
    assert sorted(ids.tolist()) == sorted(ds.X[:, 0].tolist())
    assert parts.train.classes == ds.classes and parts.train.meta["split"] == "train"


def test_split_is_deterministic_by_seed():
    ds = imbalanced()
    a, b, c = split(ds, seed=1), split(ds, seed=1), split(ds, seed=2)
    assert a.validation.X.tobytes() == b.validation.X.tobytes()
    assert a.validation.X.tobytes() != c.validation.X.tobytes()
    assert a.test is None


def test_every_class_with_two_examples_stays_in_train():
    ds = imbalanced((50, 2, 2, 1))
    parts = split(ds, validation=0.5, seed=0)
    assert set(parts.train.y.tolist()) == {0, 1, 2, 3}


def test_regression_and_unstratified_split():
    ds = linear_regression(n=101, seed=0)
    parts = split(ds, validation=0.25, test=0.25)
    assert (parts.train.n, parts.validation.n, parts.test.n) == (51, 25, 25)
    assert split(imbalanced(), validation=0.1, stratify=False).validation.n == 100
    assert split(ds, validation=0).validation is None


@settings(max_examples=30, deadline=None)
@given(counts=st.lists(st.integers(1, 30), min_size=2, max_size=5),
       validation=st.floats(0.05, 0.5), seed=st.integers(0, 100))
def test_split_properties(counts, validation, seed):
    ds = imbalanced(tuple(counts))
    n = sum(counts)
    if round(n * validation + 1e-9) == 0:
        return
    try:
        parts = split(ds, validation=validation, seed=seed)
    except DataError:
        return  # legitimately too small; its message is tested elsewhere
    assert parts.train.n + parts.validation.n == n
    present = {c for c, k in enumerate(counts) if k >= 2}
    assert present <= set(parts.train.y.tolist())


@pytest.mark.parametrize("validation, test, pattern", [
    (1.0, 0.0, r"validation fraction must be a number in \[0, 1\), got 1.0"),
    (-0.1, 0.0, r"validation fraction must be .* got -0.1"),
    (0.6, 0.5, r"validation \(0.6\) \+ test \(0.5\) = 1.1 must be < 1"),
])
def test_split_fraction_errors(validation, test, pattern):
    with pytest.raises(ConfigError, match=pattern):
        split(imbalanced(), validation=validation, test=test)


def test_split_empty_part_errors():
    ds = from_arrays(np.ones((10, 1)), [0, 1] * 5, name="tiny")
    with pytest.raises(DataError, match=r"tiny: validation fraction 0.01 of 10 examples gives 0 validation examples; use validation >= 0.05 or validation=0"):
        split(ds, validation=0.01)
    singletons = from_arrays(np.ones((3, 1)), [0, 1, 2], name="single")
    with pytest.raises(DataError, match=r"single: the validation part would be empty .*class counts: \[1, 1, 1\]"):
        split(singletons, validation=0.4)


def test_standardizer_uses_train_stats_only():
    ds = from_arrays(np.c_[np.arange(100.0), np.full(100, 7.0), np.linspace(-3, 5, 100)],
                     np.arange(100) % 2)
    parts = split(ds, validation=0.3, seed=0)
    sc = Standardizer().fit(parts.train.X)
    train = parts.train.X.astype(np.float64)
    np.testing.assert_allclose(sc.mean, train.mean(0), rtol=1e-12)
    np.testing.assert_allclose(sc.scale[[0, 2]], train.std(0)[[0, 2]], rtol=1e-12)
    assert sc.scale[1] == 1.0  # constant column: no division by zero
    Zt = sc.transform(parts.train.X)
    assert Zt.dtype == np.float32
    np.testing.assert_allclose(Zt.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(Zt[:, [0, 2]].std(0), 1, atol=1e-5)
    assert np.all(Zt[:, 1] == 0)
    # Validation data goes through the train statistics, so it is not exactly centred.
    Zv = sc.transform(parts.validation.X)
    np.testing.assert_allclose(Zv, (parts.validation.X - sc.mean) / sc.scale, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(Standardizer().fit_transform(parts.train.X), Zt)


def test_standardizer_round_trip_and_errors():
    X = np.random.default_rng(0).normal(3, 2, size=(50, 4)).astype(np.float32)
    sc = Standardizer().fit(X)
    back = Standardizer.from_dict(json.loads(json.dumps(sc.to_dict())))
    np.testing.assert_array_equal(back.transform(X), sc.transform(X))
    with pytest.raises(DataError, match="fitted on 4 features but X has 3"):
        sc.transform(X[:, :3])
    with pytest.raises(DataError, match="not fitted"):
        Standardizer().transform(X)
    with pytest.raises(DataError, match="mean shape .*scale shape"):
        Standardizer.from_dict({"mean": [0.0, 1.0], "scale": [1.0]})
    with pytest.raises(DataError, match="need 'mean' and 'scale'"):
        Standardizer.from_dict({"mean": [0.0]})
