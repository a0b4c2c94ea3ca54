"""User networks through the whole tool: a Flax and an Equinox network of one architecture
follow the same loss curve from the same start, a Flax run resumes bit for bit, the lab and
the estimators take them, and real-valued labels give them the squared loss."""

import shutil

import equinox as eqx
import flax.linen as nn
import jax
import numpy as np
import pytest
from flax import nnx
from sklearn.datasets import load_digits

import sgdlab
from helpers import back_to_a_middle_checkpoint
from sgdlab import TrainConfig
from sgdlab.data import from_arrays
from sgdlab.engine import train
from sgdlab.lab.noise import estimate_noise_scale
from sgdlab.lab.prepare import prepare
from sgdlab.user_models import to_model

D, HIDDEN, K = 64, 32, 10


class LinenMLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(K, name="out")(nn.tanh(nn.Dense(HIDDEN, name="hidden")(x)))


class NNXMLP(nnx.Module):
    def __init__(self, rngs):
        self.hidden = nnx.Linear(D, HIDDEN, rngs=rngs)
        self.out = nnx.Linear(HIDDEN, K, rngs=rngs)

    def __call__(self, x):
        return self.out(nnx.tanh(self.hidden(x)))


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    return d.data.astype(np.float32), d.target


def _equinox_copy(flax_params):
    """An Equinox MLP holding the Flax network's weights (Equinox stores them output-major)."""
    net = eqx.nn.MLP(D, K, HIDDEN, depth=1, activation=jax.nn.tanh, key=jax.random.PRNGKey(1))
    h, o = flax_params["hidden"], flax_params["out"]
    return eqx.tree_at(lambda m: (m.layers[0].weight, m.layers[0].bias, m.layers[1].weight,
                                  m.layers[1].bias), net,
                       (h["kernel"].T, h["bias"], o["kernel"].T, o["bias"]))


def test_flax_and_equinox_networks_follow_the_same_loss_curve(digits):
    X, y = digits
    data = from_arrays(X, y)
    cfg = TrainConfig(epochs=3, batch_size=32, lr=0.05, eval_every="20 steps")
    linen = to_model(LinenMLP())
    start = linen.init(jax.random.PRNGKey(0), D, K)
    a = train(data, None, cfg, model=linen, init_params=start)
    b = train(data, None, cfg, model=_equinox_copy(start))
    curve_a = [r["train_loss"] for r in a.history]
    curve_b = [r["train_loss"] for r in b.history]
    assert len(curve_a) == len(curve_b) == 10  # the start row (no loss yet), then every 20 steps
    np.testing.assert_allclose(curve_a[1:], curve_b[1:], rtol=1e-4)
    assert curve_a[-1] < 0.5 * curve_a[1]  # and they did learn


def test_a_flax_run_resumes_bit_identically(digits, tmp_path):
    X, y = digits
    job = dict(batch_size=32, epochs=2, lr=0.05, checkpoint_every="15 steps",
               keep_checkpoints=100, plots=False)
    ref = tmp_path / "ref"
    whole = sgdlab.fit(X, y, model=LinenMLP(), out=ref, **job)
    run = tmp_path / "run"
    shutil.copytree(ref, run)
    middle = back_to_a_middle_checkpoint(run, whole.steps)
    again = sgdlab.fit(X, y, model=LinenMLP(), resume=run, plots=False)
    assert again.extra["resumed_from_step"] == middle
    for u, v in zip(jax.tree_util.tree_leaves(whole.params),
                    jax.tree_util.tree_leaves(again.params)):
        np.testing.assert_array_equal(u, v)


def test_an_nnx_network_trains_and_its_fit_result_predicts(digits):
    X, y = digits
    r = sgdlab.fit(X, y, model=NNXMLP(nnx.Rngs(0)), epochs=5, lr=0.1, plots=False)
    assert r.status == "completed" and r.history[-1]["val_accuracy"] > 0.9
    assert r.predict(X[:7]).shape == (7,)


def test_the_noise_scale_takes_a_user_network(digits):
    X, y = digits
    prepared = prepare(from_arrays(X, y), TrainConfig(), model=LinenMLP())
    params = prepared.model.init(jax.random.PRNGKey(0), D, K)
    noise = estimate_noise_scale(params, prepared, b_small=8, b_big=128, draws=64)
    assert np.isfinite(noise.b_simple) and noise.b_simple > 0


def test_an_estimator_around_a_flax_network(digits):
    X, y = digits
    est = sgdlab.MiniBatchNetworkClassifier(LinenMLP(), batch_size=32, max_iter=20,
                                            learning_rate=0.2, random_state=0)
    est.fit(X[:1400] / 16.0, y[:1400])
    assert est.score(X[1400:] / 16.0, y[1400:]) > 0.9


def test_real_labels_give_a_user_network_the_squared_loss(digits):
    X, _ = digits
    target = X[:, 20] - X[:, 43]  # a linear function of two pixels
    r = sgdlab.fit(X, target, model=_Regressor(), task="regression",
                   epochs=5, lr=0.01, plots=False)
    assert r.loss.name == "squared" and r.history[-1]["val_r2"] > 0.8


class _Regressor(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(1)(nn.tanh(nn.Dense(HIDDEN)(x)))


def test_the_network_estimator_names_a_wrong_image_shape(digits):
    X, y = digits
    images = X.reshape(-1, 8, 8, 1)
    est = sgdlab.MiniBatchNetworkClassifier("cnn", max_iter=1, random_state=0)
    est.fit(images[:300], y[:300])
    assert est.example_shape_ == (8, 8, 1)
    np.testing.assert_array_equal(est.predict(X[:20]), est.predict(images[:20]))  # flattened
    with pytest.raises(sgdlab.DataError, match=r"fitted on examples of shape \(8, 8, 1\); X "
                                               r"has shape \(3, 8, 8\): give \(3, 8, 8, 1\)"):
        est.predict(images[:3, :, :, 0])


def test_a_configured_cnn_estimator_pickles(digits):
    """get_model('cnn', channels=...) is a Model of closures; the estimator pickles it as its
    recorded options and rebuilds it."""
    import pickle
    X, y = digits
    images = X.reshape(-1, 8, 8, 1) / 16.0
    model = sgdlab.models.get_model("cnn", channels=(4,), kernel=3, hidden=(16,))
    est = sgdlab.MiniBatchNetworkClassifier(model, max_iter=1, random_state=0)
    again = pickle.loads(pickle.dumps(est.fit(images[:300], y[:300])))
    assert again.module.apply.spec == model.apply.spec
    np.testing.assert_array_equal(again.predict(images[300:400]), est.predict(images[300:400]))
