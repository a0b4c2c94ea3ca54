"""The recipes of CONTRIBUTING.md hold: a copy of the package gets a new optimiser with an
option and a new architecture with an option, written only where the recipes say, and
everything else follows (the option reaches its factory, the flags, the estimators, the
sweep's next: command, saving, loading, predicting and --init).

The subprocess is the point here: the copy is a package of its own, imported fresh."""

import difflib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "sgdlab"

#: "Add an optimiser": a FACTORIES entry, and its option's setting.
OPTIMISER = {
    "optim/optimizers.py": ("FACTORIES = {\n", '''FACTORIES = {
    "toysgd": lambda rate, toy_decay: optax.chain(optax.add_decayed_weights(toy_decay),
                                                  optax.sgd(rate)),
'''),
    "engine/config.py": ("    extra: dict = field(", '''    toy_decay: float = setting(0.0, "optimizer", "real", "toysgd's weight decay", low=0.0)
    extra: dict = field('''),
}

#: "Add a model": a factory and its MODELS entry, and its option's setting.
MODEL = {
    "models.py": (re.compile(r"(#: Model name -> factory.*\n)?MODELS: dict\[str, Callable\[\.\.\., "
                             r"Model\]\] = \{"), '''def toynet(toy_width: int = 4) -> Model:
    """``tanh(X W1) W2 + b`` with ``W1: (d, toy_width)``, ``W2: (toy_width, k)``."""

    def init(key, n_in, n_out, *, dtype="float32"):
        d, k = math.prod(example_shape(n_in)), output_width(n_out)
        k1, k2 = jax.random.split(key)
        return {"W1": 0.3 * jax.random.normal(k1, (d, toy_width), dtype),
                "W2": 0.3 * jax.random.normal(k2, (toy_width, k), dtype),
                "b": jnp.zeros((k,), dtype)}

    def apply(params, X):
        return jnp.tanh(_rows(X) @ params["W1"]) @ params["W2"] + params["b"]

    return Model("toynet", init, apply)


MODELS: dict[str, Callable[..., Model]] = {"toynet": toynet, '''),
    "engine/config.py": ("    extra: dict = field(", '''    toy_width: int = setting(4, "model", "whole number", "toynet's width", low=1)
    extra: dict = field('''),
}

CHECKS = r'''
import json, shlex, sys
import numpy as np
import sgdlab
from sklearn.base import clone
from sgdlab.cli.common import config_from_args, read_setting_flags
from sgdlab.cli.main import build_parser, main
from sgdlab.engine import TrainConfig, cache
from sgdlab.lab.next_run import train_command

data = sgdlab.load_data("blobs")
X, y = data.X, data.y

# the option reaches the factory that declares it, and only it
narrow = sgdlab.fit("blobs", model="toynet", toy_width=3, epochs=1)
wide = sgdlab.fit("blobs", model="toynet", toy_width=5, epochs=1)
assert narrow.params["W1"].shape[1] == 3 and wide.params["W1"].shape[1] == 5
runs = [sgdlab.fit("blobs", optimizer="toysgd", toy_decay=d, epochs=3, lr=0.5)
        for d in (0.0, 0.5)]
assert np.abs(np.asarray(runs[1].params["W"])).sum() < \
    np.abs(np.asarray(runs[0].params["W"])).sum()  # the decay shrinks the weights
soft = TrainConfig()
key = lambda c: cache.program_key(c, True, None, None, 10, 4, 32)
assert key(soft.replace(toy_width=9)) == key(soft) and key(soft.replace(toy_decay=0.3)) == \
    key(soft)
toy = TrainConfig(model="toynet", optimizer="toysgd")
assert key(toy.replace(toy_width=9)) != key(toy) and key(toy.replace(toy_decay=0.3)) != key(toy)

# the command line: flags, help, a run, its model saved, loaded, predicting, and --init
text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
assert "--toy-width" in text and "--toy-decay" in text and "toynet" in text, text
assert main(["train", "--data", "blobs", "--model", "toynet", "--toy-width", "3",
             "--optimizer", "toysgd", "--toy-decay", "0.1", "--epochs", "2", "--out", "run",
             "--quiet"]) == 0
saved = sgdlab.load("run")
assert saved.params["W1"].shape == (X.shape[1], 3)
fitted = sgdlab.fit("blobs", model="toynet", toy_width=3, epochs=1, out="run2", plots=False)
np.testing.assert_array_equal(sgdlab.load("run2").predict(X), fitted.predict(X))
np.save("x.npy", X)
assert main(["predict", "run", "--data", "x.npy", "--out", "pred.csv"]) == 0
assert len(open("pred.csv").read().splitlines()) == len(X) + 1  # a header and a row each
assert main(["train", "--data", "blobs", "--init", "run", "--epochs", "1", "--out", "tuned",
             "--quiet"]) == 0
assert json.load(open("tuned/config.json"))["toy_width"] == 3

# the estimators take the options as parameters
est = sgdlab.MiniBatchSGDClassifier(optimizer="toysgd", toy_decay=0.2, max_iter=2).fit(X, y)
assert clone(est).get_params()["toy_decay"] == 0.2
net = sgdlab.MiniBatchNetworkClassifier(module="toynet", toy_width=3, max_iter=1).fit(X, y)
assert net.params_["W1"].shape[1] == 3 and net.score(X, y) > 0.5

# the sweep's next: command trains the same configuration
config = TrainConfig(model="toynet", toy_width=3, optimizer="toysgd", toy_decay=0.1)
args = build_parser().parse_args(shlex.split(train_command(config, "blobs"))[1:])
read_setting_flags(args)
assert config_from_args(args) == config
print("the recipes hold")
'''


def _apply(tree: Path, recipe: dict) -> None:
    for name, (anchor, text) in recipe.items():
        path = tree / name
        source = path.read_text()
        if isinstance(anchor, re.Pattern):
            assert anchor.search(source), f"{name}: the recipe's place is gone"
            source = anchor.sub(lambda m: text, source, count=1)
        else:
            assert source.count(anchor) == 1, f"{name}: the recipe's place is gone"
            source = source.replace(anchor, text)
        path.write_text(source)


def _changes(before: Path, after: Path) -> dict:
    """``{file: lines added or changed}`` between two copies of the package."""
    out = {}
    for path in sorted(after.rglob("*.py")):
        old = (before / path.relative_to(after)).read_text().splitlines()
        new = path.read_text().splitlines()
        added = sum(1 for line in difflib.ndiff(old, new) if line.startswith("+ "))
        if added:
            out[str(path.relative_to(after))] = added
    return out


def test_a_new_optimiser_and_a_new_model_need_only_the_recipes_files(tmp_path):
    base = tmp_path / "base" / "sgdlab"
    tree = tmp_path / "src" / "sgdlab"
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(SRC, base, ignore=ignore)
    shutil.copytree(SRC, tree, ignore=ignore)
    _apply(tree, {k: v for k, v in OPTIMISER.items()})
    optimiser = _changes(base, tree)
    assert set(optimiser) == {"optim/optimizers.py", "engine/config.py"}, optimiser
    shutil.rmtree(base)
    shutil.copytree(tree, base, ignore=ignore)
    _apply(tree, MODEL)
    model = _changes(base, tree)
    assert set(model) == {"models.py", "engine/config.py"}, model
    # the lines each recipe wrote, for the record (CONTRIBUTING.md quotes them)
    print(f"optimiser: {optimiser}; model: {model}")

    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "src"), "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", CHECKS], cwd=work, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "the recipes hold" in done.stdout
    assert "sgdlab/__init__.py" not in done.stderr
