"""ChannelScaler: StandardScaler for rows, per-channel standardisation for images, so a
pipeline can scale images in front of the network estimators."""

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from sgdlab.estimators import ChannelScaler, MiniBatchNetworkClassifier


@parametrize_with_checks([ChannelScaler()])
def test_sklearn_transformer_checks(estimator, check, monkeypatch):
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")  # else check_array_api_input skips itself
    check(estimator)


def test_rows_are_scaled_as_standard_scaler_does():
    X = np.random.default_rng(0).normal(3, 2, (50, 4))
    X[:, 2] = 7.0  # a constant column maps to 0
    np.testing.assert_allclose(ChannelScaler().fit_transform(X),
                               StandardScaler().fit_transform(X), atol=1e-12)


def test_images_are_scaled_per_channel_and_back():
    rng = np.random.default_rng(1)
    X = rng.normal([1.0, -5.0, 20.0], [0.5, 3.0, 10.0], (40, 6, 5, 3))
    scaler = ChannelScaler().fit(X)
    flat = X.reshape(-1, 3)
    np.testing.assert_allclose(scaler.mean_, flat.mean(axis=0))
    np.testing.assert_allclose(scaler.scale_, flat.std(axis=0))
    Z = scaler.transform(X)
    assert Z.shape == X.shape and Z.dtype == X.dtype
    np.testing.assert_allclose(Z.reshape(-1, 3).mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(Z.reshape(-1, 3).std(axis=0), 1)
    np.testing.assert_allclose(scaler.inverse_transform(Z), X)
    with pytest.raises(ValueError, match=r"fitted on 3 channels .* with 4"):
        scaler.transform(rng.normal(size=(2, 6, 5, 4)))


def test_a_pipeline_trains_the_cnn_on_raw_digit_images():
    """The digits' pixels run 0..16; scaled per channel in the pipeline, 3 epochs of the cnn
    classify held-out images well: the median of three seeds (one seed's score after 3 epochs
    ranges from 0.72 to 0.95)."""
    d = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(d.images[..., None], d.target,
                                                        test_size=0.25, random_state=0)
    scores = [make_pipeline(ChannelScaler(),
                            MiniBatchNetworkClassifier("cnn", max_iter=3, random_state=seed))
              .fit(X_train, y_train).score(X_test, y_test) for seed in range(3)]
    assert sorted(scores)[1] >= 0.85, scores
