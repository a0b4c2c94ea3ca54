"""Behaviour of the training loop: accounting, accuracy, schedules, stopping, determinism."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import counted_compilations

import sgdlab
from sgdlab import TrainConfig
from sgdlab.data import Dataset, split
from sgdlab.engine import train
from sgdlab.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def digits_split():
    from sgdlab.data import digits
    return split(digits(), validation=0.2, test=0.2, seed=0)


def _blobs(n=300, d=5, seed=0):
    from sgdlab.data import GENERATORS
    return GENERATORS["blobs"](n=n, d=d, seed=seed)


def test_exact_accounting_2000_by_200():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 3)).astype(np.float32)
    ds = Dataset(X, (X[:, 0] > 0).astype(np.int32), classes=(0, 1))
    r = train(ds, None, TrainConfig(model="logistic", batch_size=200, epochs=3))
    assert r.steps_per_epoch == 10
    assert r.steps == 30 and r.examples == 6000 and r.epochs == 3.0


def test_partial_last_batch_is_masked_not_dropped():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(10, 2)).astype(np.float32)
    ds = Dataset(X, (X[:, 0] > 0).astype(np.int32), classes=(0, 1))
    r = train(ds, None, TrainConfig(model="logistic", batch_size=3, epochs=2))
    assert r.steps == 8 and r.examples == 20
    r = train(ds, None, TrainConfig(model="logistic", batch_size=3, epochs=2, drop_last=True))
    assert r.steps == 6 and r.examples == 18


def test_full_batch_matches_numpy_gradient_descent():
    """batch = N is plain gradient descent: compare with a hand-written NumPy softmax GD."""
    rng = np.random.default_rng(1)
    n, d, k, lr, l2, steps = 40, 4, 3, 0.5, 0.01, 25
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = rng.integers(0, k, n).astype(np.int32)
    ds = Dataset(X, y, classes=(0, 1, 2))
    cfg = TrainConfig(model="softmax", batch_size=n, max_steps=steps, epochs=None, lr=lr,
                      l2=l2, standardize=False, sampling="sequential")
    r = train(ds, None, cfg)
    W0 = np.asarray(sgdlab.models.linear().init(jax.random.PRNGKey(0), d, k)["W"], np.float64).T
    W, b = W0.copy(), np.zeros(k)
    Xd, onehot = X.astype(np.float64), np.eye(k)[y]
    for _ in range(steps):
        s = Xd @ W + b
        p = np.exp(s - s.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        g = (p - onehot) / n
        W, b = W - lr * (Xd.T @ g + l2 * W), b - lr * g.sum(0)
    np.testing.assert_allclose(np.asarray(r.params["W"]).T, W, rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(r.params["b"], b, rtol=2e-4, atol=2e-5)


def _mean_test_accuracy(**settings) -> list:
    """Test accuracy over three seeded splits (one 359-example split varies by +-1.5%)."""
    from sgdlab.data import digits
    scores = []
    for seed in range(3):
        tr, va, te = split(digits(), validation=0.2, test=0.2, seed=seed)
        r = train(tr, va, TrainConfig(batch_size=32, seed=seed, **settings))
        assert r.status == "completed"
        scores.append(r.score(te.X, np.asarray(te.classes)[te.y]))
    return scores


def test_digits_softmax_batch32_reaches_95():
    scores = _mean_test_accuracy(model="softmax", epochs=30, lr=0.1)
    assert np.mean(scores) >= 0.95, scores


def test_digits_mlp_reaches_97():
    scores = _mean_test_accuracy(model="mlp", hidden=(128,), epochs=40, lr=0.1)
    assert np.mean(scores) >= 0.97, scores


def test_perceptron_separates_blobs_perfectly():
    ds = _blobs()
    r = train(ds, None, TrainConfig(model="perceptron", batch_size=1, epochs=20, lr=1.0))
    assert r.score(ds.X, np.asarray(ds.classes)[ds.y]) == 1.0


def test_linear_regression_recovers_weights():
    from sgdlab.data import GENERATORS
    ds = GENERATORS["linreg"](n=2000, d=5, noise=0.01, seed=0)
    r = train(ds, None, TrainConfig(model="linreg", batch_size=32, epochs=30, lr=0.05,
                                    standardize=False))
    np.testing.assert_allclose(np.asarray(r.params["W"])[0], ds.meta["w_true"], atol=0.01)
    np.testing.assert_allclose(float(r.params["b"][0]), ds.meta["b_true"], atol=0.01)


def test_l2_logistic_matches_scikit_learn():
    """Same penalty, trained to convergence: weights agree to 1e-3 relative."""
    from sklearn.linear_model import LogisticRegression
    from sgdlab.data import digits
    full = digits()
    keep = full.y < 2
    X = full.X[keep]
    X = ((X - X.mean(0)) / np.where(X.std(0) > 0, X.std(0), 1)).astype(np.float32)
    y = full.y[keep].astype(np.int32)
    n, lam = len(X), 0.05
    ref = LogisticRegression(C=1.0 / (lam * n), tol=1e-12, max_iter=10000).fit(X, y)
    cfg = TrainConfig(model="logistic", batch_size=n, max_steps=4000, epochs=None, lr=1.0,
                      optimizer="nesterov", momentum=0.9, l2=lam, standardize=False,
                      eval_every="end")
    r = train(Dataset(X, y, classes=(0, 1)), None, cfg)
    w = np.asarray(r.params["W"])[0]
    assert np.linalg.norm(w - ref.coef_[0]) / np.linalg.norm(ref.coef_[0]) < 1e-3
    assert abs(float(r.params["b"][0]) - ref.intercept_[0]) < 1e-3 * max(1, abs(ref.intercept_[0]))


def test_no_recompilation_after_first_chunk(digits_split):
    tr, va, _ = digits_split
    counts = []
    cfg = TrainConfig(batch_size=16, epochs=3, eval_every="20 steps", chunk_steps=16)
    with counted_compilations() as compiles:
        train(tr, va, cfg, callback=lambda e: counts.append(len(compiles))
              if e["event"] == "chunk" else None)
    assert len(counts) > 10
    assert counts[-1] == counts[0], "a chunk after the first triggered a compilation"


def test_same_seed_same_bits_different_seed_differs(digits_split):
    tr, va, _ = digits_split
    cfg = TrainConfig(model="mlp", hidden=(32,), batch_size=16, epochs=2, seed=7)
    a, b = train(tr, va, cfg), train(tr, va, cfg)
    for la, lb in zip(jax.tree_util.tree_leaves(a.params), jax.tree_util.tree_leaves(b.params)):
        assert np.array_equal(np.asarray(la), np.asarray(lb))
    assert a.history.without_time() == b.history.without_time()
    c = train(tr, va, cfg.replace(seed=8))
    assert not np.array_equal(np.asarray(c.params["layers"][0]["W"]),
                              np.asarray(a.params["layers"][0]["W"]))


def test_eval_every_steps_and_epochs(digits_split):
    tr, va, _ = digits_split
    spe = -(-tr.n // 50)
    r = train(tr, va, TrainConfig(batch_size=50, epochs=2, eval_every="7 steps"))
    steps = [row["step"] for row in r.history]
    assert steps == [0] + list(range(7, 2 * spe, 7)) + ([2 * spe] if (2 * spe) % 7 else [])
    r = train(tr, va, TrainConfig(batch_size=50, epochs=3, eval_every="1 epoch"))
    assert [row["epoch"] for row in r.history] == [0.0, 1.0, 2.0, 3.0]
    r = train(tr, va, TrainConfig(batch_size=50, epochs=2, eval_every="0.5 epochs, 5 steps"))
    steps = [row["step"] for row in r.history]
    assert all(s % 5 == 0 or s in (spe // 2 + (spe % 2), spe, 2 * spe) or
               s == -(-3 * spe // 2) for s in steps)


def test_eval_rows_hold_honest_columns(digits_split):
    tr, va, _ = digits_split
    r = train(tr, va, TrainConfig(batch_size=32, epochs=2))
    for col in ("step", "epoch", "examples", "train_seconds", "wall_seconds", "eval_seconds",
                "train_loss", "val_loss", "val_accuracy"):
        assert col in r.history.columns
    ts = r.history.column("train_seconds")
    assert np.all(np.diff(ts) >= 0)
    assert r.history[-1]["wall_seconds"] >= ts[-1] + r.history[-1]["eval_seconds"] - 1e-6
    assert r.compile_seconds > 0


def test_time_based_evaluation_and_max_time(digits_split):
    tr, va, _ = digits_split
    r = train(tr, va, TrainConfig(batch_size=1, epochs=None, max_time="0.6s",
                                  eval_every="0.1s", chunk_steps=64))
    assert r.status == "max_time"
    assert r.train_seconds >= 0.6
    assert len(r.history) >= 4


def test_target_stops_early(digits_split):
    tr, va, _ = digits_split
    r = train(tr, va, TrainConfig(batch_size=32, epochs=50, target=0.9, eval_every="5 steps"))
    assert r.status == "target_reached"
    assert r.history[-1]["val_accuracy"] >= 0.9
    assert r.epochs < 50


def test_divergence_stops_and_keeps_last_finite_params(digits_split):
    tr, va, _ = digits_split
    # squared loss with a too-large step grows geometrically: a sure divergence
    r = train(tr, va, TrainConfig(model="linreg", batch_size=32, epochs=5, lr=10.0))
    assert r.status == "diverged"
    assert r.diverged_at_step is not None and r.diverged_at_step >= 1
    assert "smaller learning rate" in r.message and f"step {r.diverged_at_step}" in r.message
    for leaf in jax.tree_util.tree_leaves(r.params):
        assert np.all(np.isfinite(np.asarray(leaf)))
    assert len(r.history) >= 2


def test_momentum_and_adam_train(digits_split):
    tr, va, _ = digits_split
    for opt, lr in (("momentum", 0.05), ("nesterov", 0.05), ("adam", 0.01)):
        r = train(tr, va, TrainConfig(batch_size=32, epochs=5, lr=lr, optimizer=opt,
                                      schedule="cosine"))
        assert r.history[-1]["val_accuracy"] > 0.9, opt


def test_custom_model_and_loss():
    def init(key, n_in, n_out):
        return {"W": jnp.zeros((n_in, n_out)), "b": jnp.zeros(n_out)}

    def apply(p, X):
        return X @ p["W"] + p["b"]

    def my_loss(out, y):
        return -jax.nn.log_softmax(out)[jnp.arange(out.shape[0]), y]

    ds = _blobs()
    r = sgdlab.fit(ds, model=(init, apply), loss=my_loss, batch_size=16, epochs=5,
                   validation_fraction=0.2)
    assert r.history[-1]["val_accuracy"] > 0.95


def test_config_errors_are_clear():
    with pytest.raises(ConfigError, match=r"setting 'lr' \(--lr\) must be a finite number > 0"):
        TrainConfig(lr=0)
    for beyond_64_bits in (-(2 ** 63) - 1, 10 ** 400):  # np.isfinite refuses such ints
        with pytest.raises(ConfigError, match="setting 'lr' .* must be a finite number > 0"):
            TrainConfig(lr=beyond_64_bits)
    with pytest.raises(ConfigError, match=r"setting 'momentum' \(--momentum\) must be a finite "
                                          r"number in \[0, 1\)"):
        TrainConfig(momentum=10 ** 400)  # beyond a float
    with pytest.raises(ConfigError, match=r"setting 'batch_size' \(--batch-size\) must be a whole "
                                          "number >= 1, got 0"):
        TrainConfig(batch_size=0)
    with pytest.raises(ConfigError, match="valid optimizers: adam, adamw, momentum, nesterov, "):
        TrainConfig(optimizer="adagrad")
    with pytest.raises(ConfigError, match="no stopping rule"):
        TrainConfig(epochs=None)


def test_batch_larger_than_data_is_refused():
    ds = _blobs(n=50)
    with pytest.raises(ConfigError, match="larger than the number of training examples"):
        train(ds, None, TrainConfig(model="logistic", batch_size=51))


def test_hinge_with_three_classes_is_refused(digits_split):
    tr, _, _ = digits_split
    with pytest.raises(ConfigError, match="needs 2 classes"):
        train(tr, None, TrainConfig(model="svm"))


def test_regression_labels_with_classification_loss_refused():
    from sgdlab.data import GENERATORS
    with pytest.raises(DataError, match="real-valued"):
        train(GENERATORS["linreg"](), None, TrainConfig(model="softmax"))


def test_two_continued_one_epoch_calls_equal_one_two_epoch_call(digits_split):
    tr, va, _ = digits_split
    cfg = TrainConfig(model="mlp", hidden=(16,), batch_size=64, optimizer="momentum", lr=0.05)
    whole = train(tr, va, cfg.replace(epochs=2))
    first = train(tr, va, cfg.replace(epochs=1))
    from sgdlab import TrainState
    start = TrainState(first.params, first.opt_state, first.steps)
    second = train(tr, va, cfg.replace(epochs=2), start=start,
                   position={"epoch": 1, "step_in_epoch": 0})
    assert second.steps == whole.steps
    for a, b in zip(jax.tree_util.tree_leaves(whole.params),
                    jax.tree_util.tree_leaves(second.params)):
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_step_losses_keep_every_step_and_agree_with_rows(digits_split):
    tr, va, _ = digits_split
    r = train(tr, va, TrainConfig(batch_size=100, epochs=2, eval_every="5 steps"))
    assert r.step_losses.shape == (r.steps,)
    # each history row's train_loss is the mean of the step losses since the previous row
    steps = [row["step"] for row in r.history]
    for (a, b), row in zip(zip(steps, steps[1:]), r.history[1:]):
        assert row["train_loss"] == pytest.approx(r.step_losses[a:b].mean(), rel=1e-5)


def test_a_loss_object_with_a_named_model_is_used():
    """model='mlp' by name with a custom loss callable: the callable is what trains."""
    calls = []

    def my_loss(out, y):
        calls.append(out.shape)  # traced once when the step is compiled
        return -jax.nn.log_softmax(out)[jnp.arange(out.shape[0]), y]

    ds = _blobs()
    r = sgdlab.fit(ds, model="mlp", hidden=(8,), loss=my_loss, batch_size=16, epochs=2)
    assert calls and r.loss.name == "custom"
