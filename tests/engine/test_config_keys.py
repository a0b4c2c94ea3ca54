"""Every setting declares what it changes in a compiled program, and the program key follows:
a setting that would silently reuse a program compiled for other settings cannot be added."""

import dataclasses

import pytest
from setting_values import other_value

from sgdlab.cli.common import CONFIG_KEYS
from sgdlab.engine import TrainConfig, cache
from sgdlab.engine.config import KEY_ROLES, factories_taking, key_fields, settings

#: A second valid value for every setting, derived from its declaration.
OTHER = {name: other_value(name) for name in settings()}
#: ... except where a fixed value reads better in a failure
OTHER.update({"model": "mlp", "loss": "multiclass_svm", "optimizer": "momentum",
              "gradient": "numerical", "max_time": 9.0, "epochs": 3.0, "max_steps": 5})


def test_every_setting_declares_its_role():
    assert set(settings()) == {f.name for f in dataclasses.fields(TrainConfig)}
    for name, declared in settings().items():
        assert declared.role in KEY_ROLES, f"{name} declares no program-key role"
    assert set(OTHER) >= set(settings())


def _key(config):
    return cache.program_key(config, True, None, None, 100, 4, config.batch_size)


@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(TrainConfig)])
def test_a_setting_enters_the_program_key_exactly_when_it_is_compiled_in(name):
    # a model's or an optimiser's option only matters to the factory that takes it (the base
    # config uses that one); a number as lr is a runtime input
    takes = factories_taking(name)
    role = settings()[name].role
    base = TrainConfig(**{role: takes[0]}) if takes else TrainConfig()
    if name == "loss":
        base = TrainConfig(model="mlp")  # a task that takes any loss
    if name == "lr_scaling":
        base = TrainConfig(batch_schedule="32:0,64:1e")  # it scales a schedule's rates
    changed = base.replace(**{name: OTHER[name]})
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


def test_an_option_of_another_model_does_not_split_programs():
    # a softmax run does not depend on the cnn's channels nor on the mlp's widths
    base = TrainConfig(model="softmax")
    for option, value in (("channels", (3,)), ("kernel", 3), ("hidden", (7,)),
                          ("activation", "tanh")):
        assert _key(base.replace(**{option: value})) == _key(base), option
    mlp = TrainConfig(model="mlp")
    assert _key(mlp.replace(channels=(3,))) == _key(mlp)
    assert _key(mlp.replace(hidden=(7,))) != _key(mlp)


@pytest.mark.parametrize("text", ["6,,16", "128,", ",64"])
def test_an_empty_entry_in_a_list_of_widths_is_refused(text):
    from sgdlab.errors import ConfigError
    with pytest.raises(ConfigError, match=r"setting 'channels' \(--channels\): .*an empty entry "
                                          "between commas"):
        TrainConfig(model="cnn", channels=text)
    with pytest.raises(ConfigError, match="an empty entry between commas"):
        TrainConfig(model="mlp", hidden=text)
