"""Each input that once ended in a traceback, a silent exit or a misleading message, tried as a
user would: now one message naming what, where and how to fix it, exit code 2 (bad input) or 1
(the environment), never a traceback."""

import pytest

from sgdlab.cli.main import main


def run(capsys, *argv) -> tuple[int, str]:
    """``sgdlab ARGV`` in this process: its exit code and standard error."""
    capsys.readouterr()
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return code, err


def one_error(err: str) -> str:
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1, err
    return errors[0]


@pytest.mark.parametrize("flags,message", [
    (["--epochs", "1e308"], r"epochs 1e\+308 at 45 steps per epoch are inf steps, more than the "
                            r"2,147,483,647 a run can count; give at most 47,721,858 epochs"),
    (["--epochs", "1e12", "--max-time", "1s"], r"are 4\.5e\+13 steps, more than"),
    (["--max-steps", "3000000000"], r"max steps 3,000,000,000 is more than the 2,147,483,647 a "
                                    r"run can count"),
])
def test_a_step_count_beyond_the_counter_is_refused(tmp_path, capsys, flags, message):
    import re
    code, err = run(capsys, "train", *flags, "--out", tmp_path / "run", "--quiet")
    assert code == 2 and re.search(message, one_error(err))
    assert not (tmp_path / "run").exists()


# -- the sweep's settings -----------------------------------------------------------------------

@pytest.mark.parametrize("budget,message", [
    ("0s", "budget must be a finite time > 0, got '0s'"),
    ("0", "budget must be a finite time > 0, got '0'"),
    ("0 min", "budget must be a finite time > 0, got '0 min'"),
    ("1e999s", "budget must be a finite time > 0, got '1e999s'"),
    ("0 epochs", "budget must be > 0, got '0 epochs'"),
    ("soon", "cannot read budget 'soon'; write a training time"),
])
def test_a_budget_of_no_time_says_so(tmp_path, capsys, budget, message):
    code, err = run(capsys, "sweep", f"--budget={budget}", "--out", tmp_path / "s", "--quiet")
    assert code == 2 and message in one_error(err)


@pytest.mark.parametrize("target", ["nan", "inf", "-inf"])
def test_a_non_finite_sweep_target_says_so(tmp_path, capsys, target):
    code, err = run(capsys, "sweep", f"--target-accuracy={target}", "--out", tmp_path / "s")
    assert code == 2 and "target must be a finite number at most 1 (an accuracy or R^2), got " \
                         f"{float(target)}" in one_error(err)


def test_a_sweep_reads_a_run_directory_config_json(tmp_path, capsys, monkeypatch):
    """docs/cli.md: --config takes a run directory's own config.json (it failed as TOML)."""
    import json

    import sgdlab.lab.sweep

    code, _ = run(capsys, "train", "--data", "blobs:n=200,d=3", "--model", "logistic",
                  "--lr", "0.05", "--batch-size", "8", "--epochs", "1", "--out",
                  tmp_path / "run", "--quiet")
    assert code == 0
    seen = {}

    class Stop(Exception):
        pass

    def capture(data, sweep, base, **kwargs):
        seen.update(data=data, sweep=sweep, base=base)
        raise Stop

    monkeypatch.setattr(sgdlab.lab.sweep, "run_sweep", capture)
    with pytest.raises(Stop):
        main(["sweep", "--config", str(tmp_path / "run" / "config.json"), "--budget", "2 steps",
              "--out", str(tmp_path / "s"), "--compile-cache", "off", "--quiet"])
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert seen["data"].name == saved["data"] == "blobs:n=200,d=3"
    assert seen["base"].model == "logistic" and seen["base"].lr == 0.05
    assert seen["sweep"].budget == "2 steps"
    (tmp_path / "bad.toml").write_text("sweep = 5\n")
    code, err = run(capsys, "sweep", "--config", tmp_path / "bad.toml", "--out", tmp_path / "s")
    assert code == 2 and "[sweep] must be a table of sweep settings, got int" in one_error(err)


# -- settings files -----------------------------------------------------------------------------

@pytest.mark.parametrize("name,text,message", [
    ("deep.toml", "epochs = " + "[" * 600 + "]" * 600,
     "values nested more than 8 deep; TOML settings are"),
    ("deep.json", '{"epochs": ' + "[" * 100000 + "]" * 100000 + "}",
     "values nested more than 8 deep; JSON settings are"),
    ("deep20.toml", "epochs = " + "[" * 20 + "]" * 20, "values nested more than 8 deep"),
    ("huge.toml", "seed = " + "9" * 5000, "holds a number of more than 4,300 digits; no "
                                           "setting takes one"),
    ("huge.json", '{"seed": ' + "9" * 5000 + "}", "holds a number of more than 4,300 digits"),
    ("big.toml", "#" * 2_000_000, "2,000,000 bytes, more than a settings file holds"),
])
def test_a_deep_or_huge_settings_file_is_one_message(tmp_path, capsys, name, text, message):
    (tmp_path / name).write_text(text)
    for verb in ("train", "sweep"):
        code, err = run(capsys, verb, "--config", tmp_path / name, "--out", tmp_path / "o",
                        "--quiet")
        assert code == 2 and f"{name}: {message}" in one_error(err)


# -- the user's own network -----------------------------------------------------------------------

NETS = '''
import jax.numpy as jnp
import sgdlab


def _linear(name, W, b, shift=0.0):
    def init(key, n_in, n_out):
        return {"W": W(n_out, n_in), "b": b(n_out)}

    def apply(p, X):
        return X @ jnp.asarray(p["W"]).T + p["b"] + shift
    return sgdlab.Model(name, init, apply)


def int_params():
    return _linear("ints", lambda k, d: jnp.zeros((k, d), jnp.int32),
                   lambda k: jnp.zeros((k,), jnp.int32))


def python_ints():
    return _linear("pyints", lambda k, d: [[0] * d for _ in range(k)], lambda k: 0)


def inf_params():
    return _linear("infs", lambda k, d: jnp.full((k, d), jnp.inf), lambda k: jnp.zeros((k,)))


def nan_outputs():
    return _linear("nans", lambda k, d: jnp.zeros((k, d)), lambda k: jnp.zeros((k,)), jnp.nan)


def exits():
    raise SystemExit(3)


def exits_in_init():
    def init(key, n_in, n_out):
        raise SystemExit(4)
    return sgdlab.Model("exits_in_init", init, lambda p, X: X)
'''


@pytest.fixture
def nets(tmp_path, monkeypatch):
    import importlib
    import sys
    name = f"rel_nets_{abs(hash(str(tmp_path))) % 10 ** 8}"
    (tmp_path / f"{name}.py").write_text(NETS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    importlib.invalidate_caches()
    return name


@pytest.mark.parametrize("factory,code_,message", [
    ("int_params", 2, r"the network '{m}:int_params' initialises parameter \['W'\] as int32; "
                      r"parameters must be floating-point arrays \(integers have no gradient\)"),
    ("python_ints", 2, r"initialises parameter \['W'\]\[0\]\[0\] as int; parameters must be "
                       r"floating-point arrays"),
    ("inf_params", 2, r"the network '{m}:inf_params' initialises parameter \['W'\] with NaN or "
                      r"infinite values; gradient descent needs finite starting values"),
    ("nan_outputs", 1, r"training diverged at step 1: the network '{m}:nan_outputs' outputs "
                       r"NaN/inf at its initial parameters, before any update, so no learning "
                       r"rate can help"),
    ("exits", 2, r"the model factory '{m}:exits' called sys\.exit\(3\) \(a factory or network "
                 r"must return, or raise an exception\)"),
    ("exits_in_init", 2, r"code given to sgdlab \(a network's init or apply, a loss, a "
                         r"callback\) called sys\.exit\(4\)"),
])
def test_a_user_network_that_cannot_train_is_one_message(tmp_path, capsys, nets, factory,
                                                         code_, message):
    import re
    code, err = run(capsys, "train", "--model", f"{nets}:{factory}", "--epochs", "1",
                    "--out", tmp_path / "run", "--quiet")
    line = one_error(err) if code_ == 2 else err.strip().splitlines()[-1]
    assert code == code_ and re.search(message.format(m=nets), line), err
    assert "learning rate (e.g." not in err


# -- warnings ---------------------------------------------------------------------------------------

def test_a_warning_is_one_line_without_a_source_path(tmp_path, capsys, monkeypatch):
    """A library's warning (matplotlib's, here while a report is drawn) is printed as sgdlab's
    own line, not as 'path/to/module.py:123: UserWarning: ...', whichever verb draws it."""
    import matplotlib.pyplot as plt

    import sgdlab.report.plots as plots

    def legend_of_nothing(draw):
        def drawn(*args, **kwargs):
            plt.figure().add_subplot().legend()  # matplotlib warns: no labelled artists
            plt.close("all")
            return draw(*args, **kwargs)
        return drawn

    for name in ("plot_curves", "plot_metric_vs_time"):
        monkeypatch.setattr(plots, name, legend_of_nothing(getattr(plots, name)))
    for verb in ("train", "compare-methods"):
        code, err = run(capsys, verb, "--data", "blobs:n=200", "--model", "logistic",
                        "--out", tmp_path / verb, *(["--epochs", "1"] if verb == "train" else
                                                    ["--budget", "0.1s", "--quiet"]))
        assert code == 0, err
        assert f"sgdlab {verb}: warning: No artists with labels found to put in legend" in err
        assert ".py:" not in err and "UserWarning" not in err, err


# -- the estimators ---------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["missing", "folder", "file"])
def test_an_estimator_given_a_path_says_what_it_takes(tmp_path, kind):
    from sgdlab.errors import DataError
    from sgdlab.estimators import MiniBatchSGDClassifier, MiniBatchSGDRegressor
    path = {"missing": tmp_path / "nonexistent", "folder": tmp_path,
            "file": tmp_path / "d.csv"}[kind]
    if kind == "file":
        path.write_text("a,y\n1,0\n2,1\n")
    why = {"missing": "no such file or directory",
           "folder": "a directory without a manifest.json, not a shard set",
           "file": "a file; the estimators take arrays, or a shard directory"}[kind]
    for estimator in (MiniBatchSGDClassifier(), MiniBatchSGDRegressor()):
        name = type(estimator).__name__
        with pytest.raises(DataError, match=rf"{name}\.fit: X is the path .*: {why}\. Give "
                                            r"arrays \(load a file with "
                                            r"sgdlab\.data\.load_data\(path\)"):
            estimator.fit(str(path))
        with pytest.raises(DataError, match=rf"{name}\.partial_fit: X is the path"):
            estimator.partial_fit(path, [0, 1])
