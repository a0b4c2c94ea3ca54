"""Every setting declares what it changes in a compiled program, and the program key follows:
a setting that would silently reuse a program compiled for other settings cannot be added."""

import dataclasses

import pytest

from sgdlab.cli.common import CONFIG_KEYS
from sgdlab.engine import TrainConfig, cache
from sgdlab.engine.config import KEY_ROLES, key_fields
from sgdlab.optim import OPTIMIZER_OPTIONS

#: A second valid value for every setting (the test fails for a new setting without one).
OTHER = {"model": "mlp", "loss": "multiclass_svm", "hidden": (7,), "activation": "tanh",
         "channels": (3,), "kernel": 3, "batch_size": 8, "sampling": "replacement", "drop_last": True, "lr": 0.3,
         "optimizer": "momentum", "momentum": 0.5, "weight_decay": 0.5, "schedule": "cosine", "l2": 0.01,
         "gradient": "numerical", "epochs": 3.0, "max_steps": 5, "max_time": 9.0,
         "target": 0.5, "eval_every": "3 steps", "chunk_steps": 4,
         "validation_fraction": 0.3, "test_fraction": 0.1, "standardize": False,
         "buffer_mb": 8.0, "seed": 3, "extra": {"note": 1}}


def test_every_setting_declares_its_role():
    for f in dataclasses.fields(TrainConfig):
        assert f.metadata.get("key") in KEY_ROLES, f"{f.name} declares no program-key role"
    assert set(OTHER) == {f.name for f in dataclasses.fields(TrainConfig)}


def _key(config):
    return cache.program_key(config, True, None, None, 100, 4, config.batch_size)


@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(TrainConfig)])
def test_a_setting_enters_the_program_key_exactly_when_it_is_compiled_in(name):
    # an optimiser's option only matters to the optimiser that takes it (the base config uses
    # that one); a number as lr is a runtime input
    takes = [opt for opt, names in OPTIMIZER_OPTIONS.items() if name in names]
    base = TrainConfig(optimizer=takes[0]) if takes else TrainConfig()
    changed = base.replace(**{name: OTHER[name]})
    role = {f.name: f.metadata["key"] for f in dataclasses.fields(TrainConfig)}[name]
    if name == "lr":
        assert _key(changed) == _key(base)  # runtime: one program serves every rate
        import optax
        assert _key(base.replace(lr=optax.constant_schedule(0.1))) != _key(base)
    elif role in ("model", "objective", "optimizer"):
        assert _key(changed) != _key(base), name
    elif role == "shape":
        # enters as the shapes the caller passes (K, B), not from the config itself
        assert cache.program_key(changed, True, None, None, 100) == \
            cache.program_key(base, True, None, None, 100)
    else:
        assert _key(changed.replace(batch_size=base.batch_size)) == _key(base), name


def test_the_command_line_keys_are_the_settings():
    assert set(CONFIG_KEYS) == {f.name for f in dataclasses.fields(TrainConfig)} - {"extra"}
    assert key_fields("shape") == ("batch_size", "chunk_steps")


def test_an_option_of_another_optimiser_does_not_split_programs():
    base = TrainConfig(optimizer="sgd")
    assert _key(base.replace(momentum=0.5)) == _key(base)
    assert _key(base.replace(weight_decay=0.5)) == _key(base)


@pytest.mark.parametrize("text", ["6,,16", "128,", ",64"])
def test_an_empty_entry_in_a_list_of_widths_is_refused(text):
    from sgdlab.errors import ConfigError
    with pytest.raises(ConfigError, match=r"channels|an empty entry between commas"):
        TrainConfig(model="cnn", channels=text)
    with pytest.raises(ConfigError, match="an empty entry between commas"):
        TrainConfig(model="mlp", hidden=text)
