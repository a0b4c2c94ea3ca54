"""Any optax GradientTransformation as ``optimizer=`` and any optax schedule as ``lr=``."""

import json

import numpy as np
import optax
import pytest

import sgdlab
from sgdlab.errors import ConfigError


def test_an_optax_object_trains_and_matches_the_named_optimiser():
    named = sgdlab.fit("digits", optimizer="adam", lr=0.01, epochs=2)
    obj = sgdlab.fit("digits", optimizer=optax.adam(0.01), epochs=2)
    # the named optimiser is optax's adam at rate 1 times a runtime rate: same updates
    np.testing.assert_allclose(np.asarray(obj.params["W"]), np.asarray(named.params["W"]),
                               rtol=1e-4, atol=1e-6)
    decayed = sgdlab.fit("digits", optimizer=optax.adamw(0.01, weight_decay=0.5), epochs=2)
    # decoupled weight decay shrinks the weights relative to plain adam
    assert np.linalg.norm(decayed.params["W"]) < np.linalg.norm(obj.params["W"])


def test_a_schedule_as_lr_is_the_rate_of_every_step():
    constant = sgdlab.fit("digits", lr=optax.constant_schedule(0.1), epochs=2)
    number = sgdlab.fit("digits", lr=0.1, epochs=2)
    np.testing.assert_allclose(np.asarray(constant.params["W"]), np.asarray(number.params["W"]),
                               atol=1e-6)
    # a schedule that is 0 after the first step stops learning: one epoch = many epochs
    first_step_only = optax.piecewise_constant_schedule(0.1, {1: 0.0})
    one = sgdlab.fit("digits", lr=first_step_only, epochs=1)
    three = sgdlab.fit("digits", lr=first_step_only, epochs=3)
    np.testing.assert_array_equal(np.asarray(one.params["W"]), np.asarray(three.params["W"]))


def test_object_settings_are_recorded_and_must_be_given_again_to_resume(tmp_path):
    sgdlab.fit("digits", optimizer=optax.sgd(0.1, momentum=0.9), epochs=1, out=tmp_path / "r",
               plots=False, checkpoint_every="1 epoch")
    recorded = json.loads((tmp_path / "r" / "config.json").read_text())["optimizer"]
    assert recorded.startswith("<python object: ")
    with pytest.raises(ConfigError, match=r"pass them again: fit\(resume=..., optimizer=...\)"):
        sgdlab.fit(resume=tmp_path / "r", epochs=2)
    again = sgdlab.fit(resume=tmp_path / "r", epochs=2,
                       optimizer=optax.sgd(0.1, momentum=0.9))
    assert again.status == "completed" and again.epochs == 2


@pytest.mark.parametrize("settings,needle", [
    ({"lr": optax.constant_schedule(0.1), "schedule": "cosine"}, "drop schedule='cosine'"),
    ({"lr": optax.constant_schedule(0.1), "optimizer": optax.sgd(0.1)}, "carries its own"),
    ({"optimizer": 3}, "must be one of sgd, .* or an optax GradientTransformation, got 3"),
    ({"optimizer": optax.sgd(0.1), "on_divergence": "halve-lr"}, "halves a numeric lr"),
])
def test_contradictions_are_one_message(settings, needle):
    with pytest.raises(ConfigError, match=needle):
        sgdlab.fit("digits", epochs=1, **settings)


def test_named_adamw_is_optax_adamw_with_the_rate_at_run_time():
    named = sgdlab.fit("digits", optimizer="adamw", lr=0.01, weight_decay=0.05, epochs=2)
    obj = sgdlab.fit("digits", optimizer=optax.adamw(0.01, weight_decay=0.05), epochs=2)
    np.testing.assert_allclose(np.asarray(named.params["W"]), np.asarray(obj.params["W"]),
                               rtol=1e-4, atol=1e-6)
    with pytest.raises(ConfigError, match=r"setting 'weight_decay' \(--weight-decay\) must be a "
                                          "finite number >= 0"):
        sgdlab.fit("digits", optimizer="adamw", weight_decay=-1.0, epochs=1)
