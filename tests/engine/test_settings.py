"""Every setting is declared once (engine/config.py); its checks, flag, help, TOML key and
estimator parameter follow from that declaration, with one message from every entry point."""

import dataclasses
import re

import jax
import pytest

import sgdlab
from sgdlab.cli.main import build_parser, main
from sgdlab.engine import TrainConfig
from sgdlab.engine.config import factories_taking, settings
from sgdlab.engine.setup import resolve_model
from sgdlab.errors import ConfigError

#: Bad values, the command line's text for them, and the one message every entry point gives.
BAD = [
    ("lr", -1.0, "-1.0", r"setting 'lr' \(--lr\) must be a finite number > 0"),
    ("momentum", 1.5, "1.5", r"setting 'momentum' \(--momentum\) must be a finite number in "
                             r"\[0, 1\), got 1.5"),
    ("weight_decay", -0.5, "-0.5", r"setting 'weight_decay' \(--weight-decay\) must be a finite "
                                   "number >= 0"),
    ("batch_size", 0, "0", r"setting 'batch_size' \(--batch-size\) must be a whole number >= 1, "
                           "got 0"),
    ("kernel", 65, "65", r"setting 'kernel' \(--kernel\) must be a whole number in \[1, 64\]"),
    ("optimizer", "adagrad", "adagrad", r"setting 'optimizer' \(--optimizer\): unknown "
                                        r"optimizer 'adagrad'; valid optimizers: adam, adamw"),
    ("activation", "relu6", "relu6", r"setting 'activation' \(--activation\): unknown "
                                     "activation 'relu6'"),
    ("hidden", "6,,16", "6,,16", r"setting 'hidden' \(--hidden\): .*an empty entry between "
                                 "commas"),
]


@pytest.mark.parametrize("name,value,text,message", BAD)
def test_a_bad_value_gives_one_message_from_python_toml_and_the_command_line(
        tmp_path, capsys, name, value, text, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**{name: value})
    with pytest.raises(ConfigError, match=message):
        sgdlab.fit("digits", epochs=1, **{name: value})
    toml = tmp_path / "c.toml"
    toml.write_text(f"{name} = {value!r}\n".replace("'", '"'))
    assert main(["train", "--quiet", "--config", str(toml), "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert re.search(message, err), err
    flag = settings()[name].flag(name)
    assert main(["train", "--quiet", flag, text, "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err) and "Traceback" not in err, err


def test_every_setting_has_a_flag_whose_help_comes_from_its_declaration():
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    by_dest = {a.dest: a for a in train._actions}
    for name, declared in settings().items():
        if declared.kind == "table":
            continue  # free-form notes: Python and config.json only
        action = by_dest[name]
        assert declared.flag(name) in action.option_strings
        words = declared.help.split("{")[0][:20]
        assert words in action.help.replace("%%", "%")
        for taker in factories_taking(name):
            assert taker in action.help


def test_help_lists_the_registries_as_they_are():
    from sgdlab.models import ACTIVATIONS
    from sgdlab.optim.optimizers import FACTORIES
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    helps = {a.dest: a.help for a in train._actions}
    assert all(name in helps["optimizer"] for name in FACTORIES)
    assert all(name in helps["activation"] for name in ACTIVATIONS)
    assert "momentum, nesterov" in helps["momentum"] and "adamw" in helps["weight_decay"]


def test_an_option_reaches_exactly_the_model_factory_that_declares_it():
    def shapes(config, shape):
        model, loss = resolve_model(config, n_classes=3)
        params = jax.eval_shape(lambda k: model.init(k, shape, 3), jax.random.PRNGKey(0))
        return [leaf.shape for leaf in jax.tree_util.tree_leaves(params)]

    image = (8, 8, 1)
    cnn = TrainConfig(model="cnn")
    assert shapes(cnn.replace(channels=(3,)), image) != shapes(cnn, image)
    assert shapes(cnn.replace(kernel=3), image) != shapes(cnn, image)
    assert shapes(cnn.replace(hidden=(9,)), image) != shapes(cnn, image)
    mlp = TrainConfig(model="mlp")
    assert shapes(mlp.replace(hidden=(9,)), 4) != shapes(mlp, 4)
    assert shapes(mlp.replace(channels=(3,), kernel=3), 4) == shapes(mlp, 4)  # not its options
    linear = TrainConfig(model="softmax")
    assert shapes(linear.replace(hidden=(9,), channels=(3,)), 4) == shapes(linear, 4)


def test_an_optimiser_takes_its_options_from_the_config_not_a_table_of_its_own():
    from sgdlab.optim import make_optimizer
    with pytest.raises(ConfigError, match=r"optimizer 'momentum' takes option\(s\) momentum"):
        make_optimizer("momentum", 0.1)
    assert make_optimizer("momentum", 0.1, momentum=0.5) is not None


def test_every_default_and_range_is_declared_once():
    # the defaults live in the declarations; the estimators read them
    from sgdlab.estimators import MiniBatchSGDClassifier
    params = MiniBatchSGDClassifier().get_params()
    for name in ("momentum", "weight_decay"):
        assert params[name] == getattr(TrainConfig(), name)
    for f in dataclasses.fields(TrainConfig):
        assert "setting" in f.metadata, f.name


def test_estimators_check_a_setting_with_its_declaration():
    from sgdlab.estimators import MiniBatchSGDClassifier
    X = [[0.0, 1.0], [1.0, 0.0]] * 10
    y = [0, 1] * 10
    with pytest.raises(ConfigError, match=r"momentum=1.5 is not valid; it must be a finite "
                                          r"number in \[0, 1\)"):
        MiniBatchSGDClassifier(optimizer="momentum", momentum=1.5).fit(X, y)
    with pytest.raises(ConfigError, match="optimizer='adagrad' is not valid; it must be one of "
                                          "sgd, momentum, nesterov, adam, adamw"):
        MiniBatchSGDClassifier(optimizer="adagrad").fit(X, y)
    fitted = MiniBatchSGDClassifier(optimizer="adamw", weight_decay=0.5, max_iter=2).fit(X, y)
    assert fitted.get_params()["weight_decay"] == 0.5
