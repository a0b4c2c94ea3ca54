"""The ``sgdlab train`` command a sweep recommends parses back, through the train command
line, to the configuration it was made from: every setting, whatever its value."""

import shlex

from hypothesis import HealthCheck, assume, given, settings as hsettings, strategies as st
from setting_values import values

from sgdlab.cli.common import config_from_args, read_setting_flags
from sgdlab.cli.main import build_parser
from sgdlab.engine import TrainConfig
from sgdlab.engine.config import settings
from sgdlab.errors import ConfigError
from sgdlab.lab.next_run import recommended_command, train_command
from sgdlab.tasks import FIXED_LOSS

PARSER = build_parser()


def parsed(command: str) -> TrainConfig:
    """The configuration ``sgdlab train`` builds from ``command`` (as a shell splits it)."""
    argv = shlex.split(command)
    assert argv[:2] == ["sgdlab", "train"]
    args = PARSER.parse_args(argv[1:])
    read_setting_flags(args)
    return config_from_args(args)


@st.composite
def configs(draw, schedules=True):
    """A valid configuration: each setting at its default or a value its declaration allows,
    made to go together (a task's own loss, a stopping rule, some training data); with
    ``schedules=False`` one batch size for the whole run (what a sweep measures)."""
    skip = {"extra"} | (set() if schedules else {"batch_schedule", "lr_scaling"})
    chosen = {name: draw(values(name)) for name in settings()
              if draw(st.booleans()) and name not in skip}
    if chosen.get("model") in FIXED_LOSS and chosen.get("loss") is not None:
        chosen["loss"] = FIXED_LOSS[chosen["model"]]
    if chosen.get("validation_fraction", 0.2) + chosen.get("test_fraction", 0.0) >= 1:
        chosen["test_fraction"] = 0.0
        chosen["validation_fraction"] = min(chosen.get("validation_fraction", 0.2), 0.5)
    if "epochs" in chosen and chosen["epochs"] is None:
        chosen.setdefault("max_steps", draw(st.integers(1, 10 ** 6)))
    if chosen.get("batch_schedule") is not None:  # the first phase sets the batch size
        chosen.pop("batch_size", None)
    else:
        chosen.pop("lr_scaling", None)  # it scales a schedule's learning rates
    try:
        return TrainConfig(**chosen)
    except ConfigError:
        assume(False)  # a combination the generation above does not foresee


@hsettings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs())
def test_the_next_command_parses_back_to_the_configuration(config):
    command = train_command(config, "digits")
    assert parsed(command) == config, command


@given(configs(schedules=False), st.integers(1, 4096), st.floats(1e-6, 10.0))
@hsettings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_recommended_command_trains_the_measured_pair(base, batch_size, lr):
    command = recommended_command(base, batch_size, lr, "my data.csv", ("--task",
                                                                          "classification"))
    assert parsed(command) == base.replace(batch_size=batch_size, lr=lr)
    assert "'my data.csv'" in command and "--task classification" in command


def test_an_adamw_sweep_recommends_its_weight_decay():
    base = TrainConfig(optimizer="adamw", weight_decay=0.05, epochs=3.0)
    command = recommended_command(base, 64, 0.003, "digits")
    assert "--weight-decay 0.05" in command and "--optimizer adamw" in command
    assert parsed(command) == base.replace(batch_size=64, lr=0.003)


def test_no_recommendation_no_command_and_python_objects_have_none():
    import optax
    assert recommended_command(TrainConfig(), None, None, "digits") is None
    assert train_command(TrainConfig(optimizer=optax.sgd(0.1)), "digits") is None


def test_a_recommended_warmup_schedule_parses_back_with_its_phase_rates():
    # what a sweep's batch-size warmup recommends: tuned learning rates written exactly
    schedule = "8@0.28284271247461906:0,32@0.9513656920021769:448"
    base = TrainConfig(model="softmax", seed=3)
    command = train_command(base.replace(batch_schedule=schedule), "digits")
    assert "--batch-schedule 8@0.28284271247461906:0,32@0.9513656920021769:448" in command
    assert parsed(command) == base.replace(batch_schedule=schedule)
