"""Random search on the digits: beats chance, loses to SGD, local beats global; same contract."""

import math

import jax
import numpy as np
import pytest

import sgdlab
from sgdlab import TrainConfig
from sgdlab.data import split
from sgdlab.errors import ConfigError
from sgdlab.lab.random_search import random_search
from sgdlab.optim.random_search import RandomSearchConfig

ATTEMPTS = 1000


@pytest.fixture(scope="module")
def parts(digits_ds):
    return split(digits_ds, validation=0.2, seed=0)


@pytest.fixture(scope="module")
def runs(parts):
    cfg = TrainConfig(model="softmax", seed=0)
    return {mode: random_search(parts.train, parts.validation, cfg,
                                RandomSearchConfig(mode=mode, attempts=ATTEMPTS))
            for mode in ("global", "local", "weighted")}


def test_random_search_beats_chance_but_not_sgd(runs, parts):
    sgd = sgdlab.engine.train(parts.train, parts.validation,
                              TrainConfig(model="softmax", batch_size=32, epochs=5, lr=0.1))
    best = max(r.history[-1]["val_accuracy"] for r in runs.values())
    assert best >= 0.30                      # chance is 0.10 on 10 balanced classes
    assert sgd.history[-1]["val_accuracy"] > best + 0.1


def test_local_search_beats_global_search_at_equal_attempts(runs):
    g, l = runs["global"], runs["local"]
    assert g.steps == l.steps == ATTEMPTS
    assert l.history[-1]["val_accuracy"] > g.history[-1]["val_accuracy"]
    assert l.history[-1]["train_loss"] < g.history[-1]["train_loss"]


def test_loss_weighted_average_descends(runs):
    h = runs["weighted"].history
    assert h[-1]["train_loss"] < h[0]["train_loss"] - 0.5
    assert h[-1]["val_accuracy"] > runs["global"].history[-1]["val_accuracy"]


def test_history_and_result_follow_the_fit_contract(runs, parts):
    r = runs["local"]
    n = parts.train.n
    assert r.history[0]["step"] == 0 and r.history[-1]["step"] == ATTEMPTS
    assert all(row["examples"] == row["step"] * n for row in r.history)
    secs = r.history.column("train_seconds")
    assert np.all(np.diff(secs) >= 0) and secs[-1] == r.train_seconds
    assert {"val_loss", "val_accuracy", "train_loss", "eval_seconds",
            "wall_seconds"} <= set(r.history.columns)
    # The best-so-far loss of global/local search can only go down.
    assert np.all(np.diff(r.history.column("train_loss")) <= 0)
    assert r.status == "completed" and r.examples == ATTEMPTS * n
    assert r.config.extra["method"] == "random-search-local"
    assert r.score(parts.validation.X, parts.validation.y) == pytest.approx(
        r.history[-1]["val_accuracy"])


def test_attempts_round_up_to_whole_generations_and_runs_repeat(parts):
    cfg = TrainConfig(model="softmax", seed=3)
    search = RandomSearchConfig(mode="local", attempts=130, population=50)
    a = random_search(parts.train, None, cfg, search)
    b = random_search(parts.train, None, cfg, search)
    assert a.steps == 150 and [row["step"] for row in a.history][-1] == 150
    for u, v in zip(jax.tree_util.tree_leaves(a.params), jax.tree_util.tree_leaves(b.params)):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))
    assert a.history.without_time() == b.history.without_time()


def test_fit_method_and_run_directory(tmp_path):
    r = sgdlab.fit("digits", model="softmax", method="random-weighted", attempts=200,
                   population=20, sigma=0.1, out=tmp_path / "rs")
    assert r.steps == 210 and math.isfinite(r.history[-1]["val_accuracy"])
    assert (tmp_path / "rs" / "history.csv").is_file()
    assert (tmp_path / "rs" / "curves_time.png").is_file()


def test_max_time_and_target_stop_a_search(parts):
    r = random_search(parts.train, parts.validation,
                      TrainConfig(model="softmax", max_time=1e-9),
                      RandomSearchConfig(mode="global", attempts=None, population=10))
    assert r.status == "max_time" and r.steps > 0
    r = random_search(parts.train, parts.validation, TrainConfig(model="softmax", target=0.2),
                      RandomSearchConfig(mode="weighted", attempts=5000, sigma=0.1))
    assert r.status == "target_reached" and r.history[-1]["val_accuracy"] >= 0.2


def test_bad_search_settings_raise():
    with pytest.raises(ConfigError, match="unknown random-search mode 'annealing'"):
        RandomSearchConfig(mode="annealing")
    with pytest.raises(ConfigError, match="population must be a whole number >= 1"):
        RandomSearchConfig(population=0)
    with pytest.raises(ConfigError, match="sigma must be a finite number > 0"):
        RandomSearchConfig(sigma=-1.0)
    with pytest.raises(ConfigError, match="only apply to random search"):
        sgdlab.fit("digits", sigma=0.1)
    with pytest.raises(ConfigError, match="unknown method 'genetic'"):
        sgdlab.fit("digits", method="genetic")
    with pytest.raises(ConfigError, match="random search has no budget"):
        random_search(None, None, TrainConfig(), RandomSearchConfig(attempts=None))
