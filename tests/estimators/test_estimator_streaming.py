"""Estimators fit a streamed shard set the same way they fit arrays."""

import numpy as np
import pytest

from sgdlab import MiniBatchSGDClassifier, MiniBatchSGDRegressor
from sgdlab.data import GENERATORS, write_shards
from sgdlab.errors import DataError


@pytest.fixture(scope="module")
def blob_shards(tmp_path_factory):
    ds = GENERATORS["gaussian"](n=3000, d=8, n_classes=3, seed=0)
    path = tmp_path_factory.mktemp("shards") / "gauss"
    write_shards(path, [(ds.X, ds.y)], ds.n, ds.d, classes=ds.classes, block_rows=256)
    return ds, path


def test_sequential_stream_fit_equals_array_fit(blob_shards):
    ds, path = blob_shards
    kw = dict(loss="softmax", batch_size=32, max_iter=3, sampling="sequential",
              learning_rate=0.1, random_state=0)
    streamed = MiniBatchSGDClassifier(**kw).fit(str(path))
    in_memory = MiniBatchSGDClassifier(**kw).fit(ds.X, np.asarray(ds.classes)[ds.y])
    np.testing.assert_allclose(streamed.coef_, in_memory.coef_, rtol=1e-5, atol=1e-6)
    assert list(streamed.classes_) == list(in_memory.classes_)
    assert streamed.score(ds.X, np.asarray(ds.classes)[ds.y]) > 0.8


def test_stream_fit_with_early_stopping_and_shuffle(blob_shards):
    ds, path = blob_shards
    clf = MiniBatchSGDClassifier(loss="log_loss", batch_size=64, max_iter=5, random_state=0,
                                 early_stopping=True, validation_fraction=0.2).fit(str(path))
    assert clf.n_features_in_ == 8 and "val_accuracy" in clf.history_[-1]
    assert clf.score(ds.X, np.asarray(ds.classes)[ds.y]) > 0.8


def test_stream_fit_refuses_y_and_wrong_task(blob_shards):
    _, path = blob_shards
    with pytest.raises(DataError, match="without y"):
        MiniBatchSGDClassifier().fit(str(path), np.zeros(3))
    with pytest.raises(DataError, match="for classification"):
        MiniBatchSGDRegressor().fit(str(path))


def test_stream_fit_patience_stops_early(blob_shards):
    _, path = blob_shards
    clf = MiniBatchSGDClassifier(loss="softmax", batch_size=32, max_iter=200, random_state=0,
                                 early_stopping=True, n_iter_no_change=2, tol=0.5).fit(str(path))
    assert clf.status_ == "stopped" and clf.n_iter_ < 200
