"""User networks as sgdlab models: Flax linen, Flax NNX and Equinox modules, factories and
"module:attr" import paths; their checks and messages; L2 skipping their biases; and that
sgdlab itself never imports Flax or Equinox."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import equinox as eqx
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import sgdlab
from sgdlab._types import Model
from sgdlab.engine.predictor import build_model, model_spec
from sgdlab.errors import ConfigError
from sgdlab.losses import is_bias, l2_penalty, objective
from sgdlab.models import get_model, mlp
from sgdlab.user_models import (
    from_equinox,
    from_linen,
    from_nnx,
    is_equinox_module,
    is_linen_module,
    is_nnx_module,
    load_import_path,
    to_model,
)

D, HIDDEN, K = 4, 8, 3
KEY = jax.random.PRNGKey(0)


class LinenMLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Dense(HIDDEN, name="hidden")(x))
        return nn.Dense(K, name="out")(x)


class NNXMLP(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.hidden = nnx.Linear(D, HIDDEN, rngs=rngs)
        self.out = nnx.Linear(HIDDEN, K, rngs=rngs)

    def __call__(self, x):
        return self.out(nnx.relu(self.hidden(x)))


def eqx_mlp(key=KEY):
    return eqx.nn.MLP(D, K, HIDDEN, depth=1, activation=jax.nn.relu, key=key)


def _random(shape, seed):
    return jax.random.normal(jax.random.PRNGKey(seed), shape)


#: one set of weights: kernels input-major (Flax), biases non-zero so they count
W1, B1, W2, B2 = _random((D, HIDDEN), 1), _random((HIDDEN,), 2), _random((HIDDEN, K), 3), \
    _random((K,), 4)


def test_linen_nnx_equinox_and_mlp_with_the_same_weights_give_the_same_scores():
    X = _random((5, D), 9)
    outs = []

    linen = to_model(LinenMLP())
    p = linen.init(KEY, D, K)
    assert jax.tree_util.tree_map(jnp.shape, p) == {
        "hidden": {"kernel": (D, HIDDEN), "bias": (HIDDEN,)},
        "out": {"kernel": (HIDDEN, K), "bias": (K,)}}
    p = {"hidden": {"kernel": W1, "bias": B1}, "out": {"kernel": W2, "bias": B2}}
    outs.append(linen.apply(p, X))

    nnx_model = to_model(NNXMLP(nnx.Rngs(0)))
    q = nnx_model.init(KEY, D, K)
    assert jax.tree_util.tree_map(jnp.shape, q) == {
        "hidden": {"kernel": (D, HIDDEN), "bias": (HIDDEN,)},
        "out": {"kernel": (HIDDEN, K), "bias": (K,)}}
    outs.append(nnx_model.apply(p, X))  # the same nested dict of parameters

    eq = to_model(eqx_mlp())
    r = eq.init(KEY, D, K)
    r = eqx.tree_at(lambda m: (m.layers[0].weight, m.layers[0].bias, m.layers[1].weight,
                               m.layers[1].bias), r, (W1.T, B1, W2.T, B2))
    outs.append(eq.apply(r, X))

    builtin = mlp((HIDDEN,))
    outs.append(builtin.apply({"layers": [{"W": W1.T, "b": B1}, {"W": W2.T, "b": B2}]}, X))

    want = np.maximum(np.asarray(X) @ np.asarray(W1) + np.asarray(B1), 0) @ np.asarray(W2) + \
        np.asarray(B2)
    for out in outs:
        assert out.shape == (5, K)
        np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("make", [lambda: LinenMLP(), lambda: NNXMLP(nnx.Rngs(0)), eqx_mlp])
def test_user_networks_train_under_jit(make):
    model = get_model(make())
    p = model.init(KEY, D, K)
    X, y = _random((16, D), 5), jnp.arange(16) % K

    @jax.jit
    def step(p):
        J, g = jax.value_and_grad(objective, argnums=2)(model.apply, "softmax", p, X, y,
                                                        jnp.ones(16), 1e-3)
        return J, jax.tree_util.tree_map(lambda a, b: a - 0.5 * b, p, g)

    first, p = step(p)
    for _ in range(30):
        last, p = step(p)
    assert float(last) < 0.8 * float(first)


def test_l2_skips_the_biases_of_each_kind():
    params = {
        "linen": to_model(LinenMLP()).init(KEY, D, K),
        "nnx": to_model(NNXMLP(nnx.Rngs(0))).init(KEY, D, K),
        "eqx": to_model(eqx_mlp()).init(KEY, D, K),
    }
    params = jax.tree_util.tree_map(lambda a: a + 1.0, params)  # biases non-zero
    for kind, p in params.items():
        leaves = jax.tree_util.tree_flatten_with_path(p)[0]
        biases = [leaf for path, leaf in leaves if is_bias(path)]
        weights = [leaf for path, leaf in leaves if not is_bias(path)]
        assert sorted(b.size for b in biases) == [K, HIDDEN], kind
        assert sorted(w.size for w in weights) == [HIDDEN * K, D * HIDDEN], kind
        want = 0.5 * sum(float(jnp.sum(w ** 2)) for w in weights)
        np.testing.assert_allclose(float(l2_penalty(p)), want, rtol=1e-6)
    # the NNX State itself (Param variables, paths ending in .value) is read the same way
    _, state = nnx.split(NNXMLP(nnx.Rngs(0)), nnx.Param)
    paths = [path for path, _ in jax.tree_util.tree_flatten_with_path(state)[0]]
    assert [path[-1] for path in paths if is_bias(path)] == \
        [jax.tree_util.GetAttrKey("value")] * 2
    assert sum(is_bias(path) for path in paths) == 2


def test_is_bias_path_entries():
    DK, GA, SK = jax.tree_util.DictKey, jax.tree_util.GetAttrKey, jax.tree_util.SequenceKey
    assert is_bias((DK("layers"), SK(0), DK("b")))
    assert is_bias((DK("Dense_0"), DK("bias")))
    assert is_bias((GA("layers"), SK(1), GA("bias")))
    assert is_bias((DK("out"), DK("bias"), GA("value")))
    assert not is_bias((DK("out"), DK("kernel"), GA("value")))
    assert not is_bias((GA("weight"),)) and not is_bias(()) and not is_bias((DK(0),))
    assert not is_bias((GA("value"),))


def test_detection_and_wrong_output_width():
    assert is_linen_module(LinenMLP()) and not is_linen_module(LinenMLP)
    assert is_nnx_module(NNXMLP(nnx.Rngs(0))) and is_equinox_module(eqx_mlp())
    assert not any(f(mlp()) for f in (is_linen_module, is_nnx_module, is_equinox_module))
    for model in (from_linen(LinenMLP()), from_nnx(NNXMLP(nnx.Rngs(0))),
                  from_equinox(eqx_mlp())):
        with pytest.raises(ConfigError, match=r"gives 3 scores per example, but the data and "
                                              r"loss need 10 .*make its last layer 10 wide"):
            model.init(KEY, D, 10)
    with pytest.raises(ConfigError, match=r"fails on examples of shape \(5,\)"):
        from_nnx(NNXMLP(nnx.Rngs(0))).init(KEY, 5, K)
    with pytest.raises(ConfigError, match=r"must give a vector of scores per example"):
        from_equinox(eqx.nn.MLP(D, "scalar", 4, 1, key=KEY)).init(KEY, D, 1)


def test_state_that_is_not_a_parameter_is_refused():
    class LinenBN(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.BatchNorm(use_running_average=False)(nn.Dense(K)(x))

    with pytest.raises(ConfigError, match=r"keeps state besides its parameters \(collections: "
                                          r"batch_stats\).*LayerNorm instead of BatchNorm"):
        to_model(LinenBN()).init(KEY, D, K)

    class NNXBN(nnx.Module):
        def __init__(self, rngs):
            self.lin = nnx.Linear(D, K, rngs=rngs)
            self.bn = nnx.BatchNorm(K, rngs=rngs)

        def __call__(self, x):
            return self.bn(self.lin(x))

    with pytest.raises(ConfigError, match=r"holds state besides its nnx.Param parameters: "
                                          r"bn.mean \(BatchStat\), bn.var \(BatchStat\)"):
        to_model(NNXBN(nnx.Rngs(0)))


def test_instances_keep_their_parameters_factories_of_a_key_redraw():
    """An NNX or Equinox instance holds its parameters: every init returns them. A function of
    a key builds a new module, so restarts with different keys differ."""
    for net in (NNXMLP(nnx.Rngs(0)), eqx_mlp()):
        model = to_model(net)
        a, b = model.init(jax.random.PRNGKey(1), D, K), model.init(jax.random.PRNGKey(2), D, K)
        jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)
    for factory in (lambda key: NNXMLP(nnx.Rngs(key)), lambda key: eqx_mlp(key)):
        model = to_model(factory)
        a, b = model.init(jax.random.PRNGKey(1), D, K), model.init(jax.random.PRNGKey(2), D, K)
        assert not np.allclose(jax.tree_util.tree_leaves(a)[-1], jax.tree_util.tree_leaves(b)[-1])
        again = model.init(jax.random.PRNGKey(1), D, K)
        jax.tree_util.tree_map(np.testing.assert_array_equal, a, again)
    # linen draws from the key in any case
    linen = to_model(LinenMLP())
    assert not np.allclose(linen.init(jax.random.PRNGKey(1), D, K)["out"]["kernel"],
                           linen.init(jax.random.PRNGKey(2), D, K)["out"]["kernel"])


def test_equinox_modules_are_called_per_example():
    class PerExample(eqx.Module):
        lin: eqx.nn.Linear

        def __call__(self, x):
            assert x.shape == (2, 3), x.shape  # one example, never the batch
            return self.lin(x.reshape(-1))

    model = to_model(PerExample(eqx.nn.Linear(6, K, key=KEY)))
    p = model.init(KEY, (2, 3), K)  # N-D examples reach the module as they are
    assert model.apply(p, jnp.ones((7, 2, 3))).shape == (7, K)


def test_dtype_and_nd_examples():
    class Conv(nn.Module):
        @nn.compact
        def __call__(self, x):  # (B, H, W, C)
            x = nn.Conv(4, (3, 3))(x)
            return nn.Dense(K)(x.reshape(x.shape[0], -1))

    model = to_model(Conv())
    p = model.init(KEY, (6, 6, 1), K)
    assert model.apply(p, jnp.ones((2, 6, 6, 1))).shape == (2, K)
    p16 = model.init(KEY, (6, 6, 1), K, dtype=jnp.float16)
    assert all(leaf.dtype == jnp.float16 for leaf in jax.tree_util.tree_leaves(p16))


def test_factories_and_get_model_dispatch():
    assert get_model(LinenMLP()).name == "LinenMLP"
    assert get_model(NNXMLP(nnx.Rngs(0))).name == "NNXMLP"
    assert get_model(eqx_mlp()).name == "MLP"
    assert get_model(LinenMLP).name == "LinenMLP"  # a class of no argument is called
    pair = mlp((2,))
    assert get_model(lambda: pair).init is pair.init
    assert get_model(lambda: (pair.init, pair.apply)).apply is pair.apply
    with pytest.raises(ConfigError, match=r"options hidden configure the built-in models"):
        get_model(LinenMLP(), hidden=(3,))
    with pytest.raises(ConfigError, match=r"model 3 is not a model name or a Flax linen or NNX "
                                          r"module, an Equinox module"):
        get_model(3)
    with pytest.raises(ConfigError, match=r"the model factory 'NNXMLP' raised TypeError: .*"
                                          r"rngs.*pass an instance, or a function of a key"):
        get_model(NNXMLP)
    with pytest.raises(ConfigError, match=r"the model factory '<lambda>' returned int, not a "
                                          r"Flax linen or NNX module"):
        get_model(lambda: 3)
    with pytest.raises(ConfigError, match=r"must take no argument or one \(a jax.random key\), "
                                          r"it requires 2"):
        get_model(lambda a, b: None)


# ------------------------------------------------------------------ import paths

NETS = '''
import equinox as eqx
import flax.linen as nn
import jax


class Net(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(3)(nn.relu(nn.Dense(8)(x)))


def make_eqx(key):
    return eqx.nn.MLP(4, 3, 8, 1, key=key)


def make_pair():
    import sgdlab
    m = sgdlab.models.mlp(hidden=(5,))
    return m.init, m.apply


def broken():
    raise ValueError("boom")


class Holder:
    @staticmethod
    def make():
        return Net()


not_a_net = 3
'''


@pytest.fixture
def nets(tmp_path, monkeypatch):
    """A module of networks in a fresh working directory; its name differs per test (a
    module stays in sys.modules once imported)."""
    name = f"usernets_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(NETS)
    (tmp_path / f"{name}_dep.py").write_text("import not_installed_dependency_xyz\n")
    monkeypatch.chdir(tmp_path)
    yield name
    for mod in (name, f"{name}_dep"):
        sys.modules.pop(mod, None)


def test_import_path_builds_a_model_that_rebuilds(nets):
    before = list(sys.path)
    for attr in ("Net", "make_eqx", "make_pair", "Holder.make"):
        path = f"{nets}:{attr}"
        model = load_import_path(path)
        assert isinstance(model, Model) and model.name == path
        assert model.apply.spec == {"import": path}
        assert model_spec(model) == {"import": path}
        p = model.init(KEY, D, K)
        X = _random((2, D), 3)
        again = build_model(model_spec(model))
        np.testing.assert_array_equal(again.apply(p, X), model.apply(p, X))
        assert get_model(path).name == path
    assert sys.path == before  # the working directory was on sys.path only for the import


def test_import_path_errors(nets):
    cases = [
        ("nosuch_module_qq:make",
         (r"cannot import the model 'nosuch_module_qq:make': no module named 'nosuch_module_qq' "
          r"in the working directory \(.*\) or the installed packages; run from the directory "
          r"that holds nosuch_module_qq.py, or install its package")),
        ("nosuch_pkg_qq.sub:make", r"no module named 'nosuch_pkg_qq'.*holds nosuch_pkg_qq/sub.py"),
        (f"{nets}:Nte", rf"'{nets}' has no attribute 'Nte' \(model '{nets}:Nte'\); closest: Net"),
        (f"{nets}:Holder.mkae", rf"'{nets}.Holder' has no attribute 'mkae'.*closest: make"),
        (f"{nets}.Net", (r"a model import path has the form 'package.module:factory' \(a module, "
                         r"a colon, an attribute\)")),
        (f"{nets}:", r"has the form 'package.module:factory'"),
        (f"{nets}:a:b", r"has the form 'package.module:factory'"),
        (f"{nets}:broken", rf"the model factory '{nets}:broken' raised ValueError: boom"),
        (f"{nets}:not_a_net", r"model 3 is not a model name"),
        (f"{nets}_dep:make", (rf"importing the module '{nets}_dep' of the model '{nets}_dep:make' "
                              r"failed: No module named 'not_installed_dependency_xyz'; install")),
    ]
    for path, match in cases:
        with pytest.raises(ConfigError, match=match):
            load_import_path(path)
    with pytest.raises(ConfigError, match=r"no module named 'nosuch_module_qq'"):
        get_model("nosuch_module_qq:make")


def test_sgdlab_does_not_import_flax_or_equinox():
    code = ("import sgdlab, sys\n"
            "import sgdlab.user_models, sgdlab.models, sgdlab.tasks\n"
            "sgdlab.models.get_model('cnn'); sgdlab.tasks.resolve('mlp')\n"
            "m = sgdlab.models.mlp(); sgdlab.user_models.to_model((m.init, m.apply))\n"
            "assert 'flax' not in sys.modules and 'equinox' not in sys.modules, "
            "sorted(k for k in sys.modules if k.startswith(('flax', 'equinox')))\n")
    subprocess.run([sys.executable, "-c", textwrap.dedent(code)], check=True)


def test_a_top_level_factory_given_as_an_object_rebuilds_by_its_import_path(nets):
    load_import_path(f"{nets}:make_eqx")  # imports the module
    factory = sys.modules[nets].make_eqx
    model = to_model(factory)
    assert model_spec(model) == {"import": f"{nets}:make_eqx"}
    p = model.init(KEY, D, K)
    X = _random((2, D), 3)
    np.testing.assert_array_equal(build_model(model_spec(model)).apply(p, X), model.apply(p, X))


@pytest.mark.parametrize("make, message", [
    (lambda d, k: {"W": jnp.zeros((d, k), jnp.int32)},
     r"initialises parameter \['W'\] as int32; parameters must be floating-point arrays"),
    (lambda d, k: {"W": jnp.full((d, k), jnp.inf)},
     r"initialises parameter \['W'\] with NaN or infinite values"),
    (lambda d, k: {"W": jnp.zeros((d, k), bool)}, "as bool"),
])
def test_a_network_whose_init_is_not_trainable_is_one_message(make, message):
    """Integer parameters used to be a TypeError from jax.grad; infinite ones a divergence
    at step 1 blamed on the learning rate."""
    X = np.random.default_rng(0).random((40, 3)).astype(np.float32)
    y = np.arange(40) % 2

    def init(key, d, k):
        return make(d, k)

    def apply(params, X):
        return X @ params["W"].astype(jnp.float32)
    with pytest.raises(ConfigError, match=message):
        sgdlab.fit(X, y, model=(init, apply), epochs=1)
