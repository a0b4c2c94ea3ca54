"""Named tasks: every ``--model`` name resolves to the documented model and loss, options and
loss overrides behave, unknown names say what is valid, and each task actually learns."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sgdlab._types import Model
from sgdlab.errors import ConfigError
from sgdlab.losses import LOSSES, encode_targets, objective
from sgdlab.models import linear
from sgdlab.tasks import OPEN_LOSS, TASK_MODELS, is_regression, resolve

EXPECTED = {
    "linreg": ("linear", "squared"),
    "perceptron": ("linear", "perceptron"),
    "logistic": ("linear", "logistic"),
    "svm": ("linear", "hinge"),
    "softmax": ("linear", "softmax"),
    "multiclass_svm": ("linear", "multiclass_svm"),
    "mlp": ("mlp", "softmax"),
    "linear": ("linear", "softmax"),
    "cnn": ("cnn", "softmax"),
}


def test_task_table():
    assert set(TASK_MODELS) >= set(EXPECTED)  # an architecture added is a task too
    for name, (model_name, loss_name) in EXPECTED.items():
        model, loss = resolve(name)
        assert isinstance(model, Model)
        assert (model.name, loss.name) == (model_name, loss_name), name
        assert loss is LOSSES[loss_name]


def test_mlp_options_pass_through():
    model, _ = resolve("mlp", hidden=(6, 4), activation="tanh")
    p = jax.eval_shape(lambda key: model.init(key, 3, 2), jax.random.PRNGKey(0))
    assert [lay["W"].shape for lay in p["layers"]] == [(6, 3), (4, 6), (2, 4)]
    with pytest.raises(ConfigError, match="unknown activation 'relu6'"):
        resolve("mlp", activation="relu6")
    with pytest.raises(ConfigError, match="hidden layer sizes"):
        resolve("mlp", hidden=(0,))


def test_hidden_and_activation_ignored_for_linear_tasks():
    model, loss = resolve("logistic", hidden=(5,), activation="tanh")
    assert model.name == "linear" and loss.name == "logistic"


def test_cnn_options_pass_through():
    model, loss = resolve("cnn", channels=(2, 3), kernel=3, hidden=(7,), activation="tanh")
    assert loss.name == "softmax"
    p = jax.eval_shape(lambda key: model.init(key, (8, 8, 1), 4), jax.random.PRNGKey(0))
    assert [c["W"].shape for c in p["conv"]] == [(2, 3, 3, 1), (3, 3, 3, 2)]
    assert [lay["W"].shape for lay in p["layers"]] == [(7, 2 * 2 * 3), (4, 7)]
    assert model.apply.spec == {"builtin": "cnn", "channels": [2, 3], "kernel": 3,
                                "hidden": [7], "activation": "tanh"}
    # mlp ignores the cnn options, as linear ignores hidden
    assert resolve("mlp", channels=(4,), kernel=3)[0].apply.spec["hidden"] == [128]
    with pytest.raises(ConfigError, match="cnn kernel size"):
        resolve("cnn", kernel=0)


def test_import_path_and_network_objects_take_any_loss(tmp_path, monkeypatch):
    (tmp_path / "tasknets_mod.py").write_text(
        "import sgdlab\ndef make():\n    return sgdlab.models.mlp(hidden=(3,))\n")
    monkeypatch.chdir(tmp_path)
    model, loss = resolve("tasknets_mod:make")
    assert model.name == "tasknets_mod:make" and loss.name == "softmax"
    assert model.apply.spec == {"import": "tasknets_mod:make"}
    assert resolve("tasknets_mod:make", "squared")[1].name == "squared"


def test_loss_override_for_open_tasks():
    assert OPEN_LOSS >= {"mlp", "linear", "cnn"}
    for name in ("mlp", "linear", "cnn"):
        _, loss = resolve(name, "multiclass_hinge")
        assert loss.name == "multiclass_svm"
        _, loss = resolve(name, "hinge")
        assert loss.name == "hinge"


def test_fixed_task_accepts_its_own_loss_or_alias():
    assert resolve("logistic", "log")[1].name == "logistic"
    assert resolve("svm", "hinge")[1].name == "hinge"
    assert resolve("linreg", "mse")[1].name == "squared"


def test_fixed_task_rejects_other_loss():
    with pytest.raises(ConfigError, match=r"model 'logistic' always uses loss 'logistic', got "
                                          r"loss 'hinge'; use --model linear --loss hinge"):
        resolve("logistic", "hinge")


def test_unknown_names():
    with pytest.raises(ConfigError, match=r"unknown model 'sofmax'; valid models: (.*, )?cnn, "
                                          r"(.*, )?linear, linreg, logistic, (.*, )?mlp, "
                                          r"multiclass_svm, (.*, )?perceptron, (.*, )?softmax, "
                                          r"svm\b"):
        resolve("sofmax")
    with pytest.raises(ConfigError, match=r"unknown loss 'hing'; valid losses: .*hinge"):
        resolve("linear", "hing")


def test_user_model():
    custom = linear()._replace(name="mine")
    model, loss = resolve(custom)
    assert model is custom and loss.name == "softmax"
    assert resolve(custom, "squared")[1].name == "squared"


def test_is_regression():
    assert is_regression("squared") and is_regression("mse") and is_regression(LOSSES["squared"])
    for name in ("hinge", "perceptron", "logistic", "softmax", "multiclass_svm"):
        assert not is_regression(name)
    assert is_regression(resolve("linreg")[1])


@pytest.mark.parametrize("task", sorted(EXPECTED))
def test_every_task_learns_a_separable_problem(task):
    """A few full-batch gradient steps on easy data reach high training accuracy (or a small
    error for linreg): the model, loss, encoding and predict of each task fit together."""
    rng = np.random.default_rng(0)
    n, d = 200, 3
    X = rng.normal(size=(n, d)).astype(np.float32)
    model, loss = resolve(task, hidden=(16,))
    if loss.target_kind == "real":
        y = (X @ np.array([1.0, -2.0, 0.5]) + 0.3).astype(np.float32)
        n_classes = 0
    else:
        n_classes = 2 if loss.target_kind == "sign" else 3
        score = X[:, 0] if n_classes == 2 else X[:, 0] + 0.8 * X[:, 1]
        y = (np.digitize(score, [0.0]) if n_classes == 2
             else np.digitize(score, [-0.6, 0.6])).astype(np.int32)
    targets = encode_targets(loss, y, n_classes)
    # the cnn takes images: each row as a 1 x d picture of one channel
    shape = (1, d, 1) if task == "cnn" else d
    params = model.init(jax.random.PRNGKey(0), shape, loss.n_outputs(n_classes))
    Xj, w = jnp.asarray(X).reshape(n, *np.atleast_1d(shape)), jnp.ones(n)

    @jax.jit
    def train(p):
        def step(p, _):
            g = jax.grad(lambda q: objective(model.apply, loss, q, Xj, targets, w, 1e-4))(p)
            return jax.tree_util.tree_map(lambda a, b: a - 0.2 * b, p, g), None
        return jax.lax.scan(step, p, None, length=300)[0]

    params = train(params)
    pred = np.asarray(loss.predict(model.apply(params, Xj)))
    if loss.target_kind == "real":
        assert np.mean((pred - y) ** 2) < 1e-3
    else:
        assert np.mean(pred == y) > 0.9
