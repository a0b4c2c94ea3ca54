"""``sgdlab train`` end to end, and every bad input as a message with exit code 2."""

import json
import subprocess
import sys

import numpy as np
import pytest

from helpers import help_of

from sgdlab.cli.main import main


def run_cli(*args, cwd=None):
    """Run the real console entry point in a subprocess (exit code, stdout, stderr)."""
    p = subprocess.run([sys.executable, "-m", "sgdlab.cli.main", *args], capture_output=True,
                       text=True, cwd=cwd, timeout=300)
    return p.returncode, p.stdout, p.stderr


def test_train_digits_writes_run_dir(tmp_path):
    out = tmp_path / "d1"
    code = main(["train", "--data", "digits", "--model", "softmax", "--batch-size", "32",
                 "--epochs", "3", "--lr", "0.1", "--seed", "0", "--out", str(out), "--quiet"])
    assert code == 0
    for name in ("config.json", "history.csv", "metrics.json", "params.npz",
                 "curves_epoch.png", "curves_time.png"):
        assert (out / name).is_file(), name
    import pandas as pd
    h = pd.read_csv(out / "history.csv")
    assert list(h["epoch"]) == [0.0, 1.0, 2.0, 3.0]
    assert h["val_accuracy"].iloc[-1] > 0.9
    m = json.loads((out / "metrics.json").read_text())
    assert m["status"] == "completed" and m["environment"]["cpu_count"] >= 1
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["batch_size"] == 32 and cfg["data"] == "digits"
    with np.load(out / "params.npz", allow_pickle=False) as z:
        assert z["W"].shape == (10, 64)


def test_config_file_and_flag_override(tmp_path):
    toml = tmp_path / "s.toml"
    toml.write_text('[train]\nmodel = "mlp"\nhidden = [16]\nepochs = 1\nlr = 0.5\nbatch_size = 64\n')
    out = tmp_path / "r"
    assert main(["train", "--config", str(toml), "--lr", "0.05", "--out", str(out),
                 "--quiet"]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model"] == "mlp" and cfg["lr"] == 0.05 and cfg["hidden"] == [16]


@pytest.fixture(scope="module")
def piped_train(tmp_path_factory):
    """``sgdlab train --epochs 2`` run once as a console command, its output piped (not a
    terminal): ``-> (exit code, stdout, stderr, run directory)``."""
    run_dir = tmp_path_factory.mktemp("piped") / "r"
    return (*run_cli("train", "--epochs", "2", "--out", str(run_dir)), run_dir)


def test_progress_and_summary_are_printed(piped_train):
    code, out, err, _ = piped_train
    assert code == 0, err
    assert "validation accuracy" in out
    assert "Traceback" not in err


def test_piped_output_keeps_whole_numbers(piped_train):
    code, out, err, run_dir = piped_train
    assert code == 0, err
    assert "…" not in out and "…" not in err
    final = [line for line in err.splitlines() if line.startswith("train: epoch 2.00")]
    assert len(final) == 1 and "val 0.9" in final[0] and "ex/s" in final[0]
    assert f"run directory: {run_dir}" in out


def _csv(tmp_path, text, name="d.csv"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


BAD_INPUTS = [
    (lambda t: ["--data", str(t / "missing.csv")], "not found"),
    (lambda t: ["--data", _csv(t, "a,b,y\n1,2,0\n3,x,1\n")], "line 3"),
    (lambda t: ["--data", _csv(t, "a,b,y\n1,nan,0\n3,4,1\n")], "NaN"),
    (lambda t: ["--data", _csv(t, "a,b,y\n1,2,0\n3,4,1\n"), "--label-column", "species"],
     "species"),
    (lambda t: ["--data", "digits", "--model", "svm"], "needs 2 classes"),
    (lambda t: ["--batch-size", "0"],
     "setting 'batch_size' (--batch-size) must be a whole number >= 1"),
    (lambda t: ["--batch-size", "100000"], "larger than the number of training examples"),
    (lambda t: ["--lr", "0"], "setting 'lr' (--lr) must be a finite number > 0"),
    (lambda t: ["--lr", "-1"], "setting 'lr' (--lr) must be a finite number > 0"),
    (lambda t: ["--lr", "fast"], "setting 'lr' (--lr) must be a finite number > 0"),
    (lambda t: ["--model", "sofmax"], "valid"),
    (lambda t: ["--loss", "hinj"], "valid"),
    (lambda t: ["--eval-every", "sometimes"], "evaluation schedule"),
    (lambda t: ["--config", str(t / "nope.toml")], "config file not found"),
    (lambda t: ["--processes", "0"], "--processes must be a whole number >= 1"),
    (lambda t: ["--coordinator", "h:1", "--num-processes", "-2"], "--num-processes must be"),
    (lambda t: ["--validation-data", _shards(t)], "is a shard set, which is streamed"),
]


def _shards(tmp_path):
    from sgdlab.data.convert import convert
    return str(convert(_csv(tmp_path, "a,b,y\n1,2,0\n3,4,1\n5,6,0\n"), tmp_path / "sh"))


@pytest.mark.parametrize("make_args,needle", BAD_INPUTS)
def test_bad_input_exit_2_no_traceback(tmp_path, make_args, needle, capsys):
    code = main(["train", "--quiet", "--epochs", "1", "--out", str(tmp_path / "o"),
                 *make_args(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert needle in err
    assert "Traceback" not in err


def test_bad_input_in_a_real_process(tmp_path):
    code, _, err = run_cli("train", "--model", "nonsense", "--out", str(tmp_path / "o"))
    assert code == 2 and "valid" in err and "Traceback" not in err


def test_divergence_exit_1_with_message(tmp_path, capsys):
    code = main(["train", "--model", "linreg", "--lr", "10", "--epochs", "3",
                 "--quiet", "--out", str(tmp_path / "o")])
    assert code == 1
    assert "diverged at step" in capsys.readouterr().err
    assert (tmp_path / "o" / "history.csv").is_file()


def test_help_has_examples():
    out = help_of("train")
    assert "examples:" in out and "--eval-every" in out


def test_python_dash_m_sgdlab_is_the_same_command_line():
    p = subprocess.run([sys.executable, "-m", "sgdlab", "train", "--batch-size", "0"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 2 and "batch" in p.stderr.lower() and "Traceback" not in p.stderr
    p = subprocess.run([sys.executable, "-m", "sgdlab", "--help"], capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0 and "train" in p.stdout and "sweep" in p.stdout


def test_the_summary_has_no_orphan_footnote_and_names_the_run_directory(tmp_path, capsys):
    out = tmp_path / "run-with-a-rather-long-name-that-would-squeeze-a-caption"
    assert main(["train", "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    assert main(["train", "--epochs", "1", "--out", str(tmp_path / "again")]) == 0
    text = capsys.readouterr().out
    assert "attempts" not in text and "random search" not in text
    assert f"run directory: {tmp_path / 'again'}" in text


def test_the_progress_bar_ends_on_the_final_evaluation():
    from sgdlab.cli.display import TrainProgress
    from sgdlab.engine import TrainConfig
    import io

    from rich.console import Console
    bar = TrainProgress(TrainConfig(), None,
                        out=Console(file=io.StringIO(), force_terminal=True, width=120))
    bar({"event": "start", "total_steps": 10, "steps_per_epoch": 5})
    bar({"event": "chunk", "train_seconds": 0.1, "loss": 0.5, "examples": 320, "epoch": 2.0,
         "step": 10})
    bar({"event": "row", "row": {"step": 10, "val_accuracy": 0.961}})
    assert "val 0.9610" in bar.progress.tasks[0].fields["info"]


def test_an_mlp_on_a_regression_file_works_with_default_settings(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 4))
    y = 150 + 80 * (np.tanh(X[:, 0]) - 0.5 * X[:, 1]) + rng.standard_normal(300)
    rows = "\n".join(",".join(f"{v:.5f}" for v in (*x, t)) for x, t in zip(X, y))
    data = _csv(tmp_path, "a,b,c,d,target\n" + rows + "\n")
    out = tmp_path / "r"
    assert main(["train", "--data", data, "--label-column", "target", "--model", "mlp",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "mlp / squared" in text and "lr 0.01" in text
    assert "losses in standardised target units" in text
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["val_r2"] > 0.8
    # a classification loss on these labels names the flags that fix it
    assert main(["train", "--data", data, "--label-column", "target", "--model", "softmax",
                 "--out", str(tmp_path / "s"), "--quiet"]) == 2
    assert "--model mlp / --model linear without --loss" in capsys.readouterr().err


def _frames(text: str) -> list[str]:
    """The visible lines of terminal output: colour and cursor codes removed, a line per
    newline or carriage return."""
    import re
    text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", text)
    return [line for line in re.split(r"[\r\n]", text) if line.strip()]


def test_an_80_column_terminal_gets_whole_lines(tmp_path):
    import io

    from rich.console import Console

    import sgdlab
    from sgdlab.cli.display import TrainProgress, print_summary
    from sgdlab.engine import TrainConfig
    buf = io.StringIO()
    term = Console(file=buf, force_terminal=True, width=80)
    bar = TrainProgress(TrainConfig(), None, out=term)
    with bar:
        result = sgdlab.fit("digits", epochs=2, callback=bar)
    print_summary(result, str(tmp_path / "a-long-run-directory-name" / ("x" * 60)), term)
    lines = _frames(buf.getvalue())
    # every line fits, but the path: it is printed whole for the terminal to wrap
    assert lines[-1].startswith("run directory: ") and lines[-1].endswith("x" * 60)
    assert all(len(line) <= 80 for line in lines[:-1]), max(lines[:-1], key=len)
    assert not any("…" in line for line in lines)
    assert any("epoch 2.00" in line and "val 0.9" in line for line in lines)
    assert any("validation accuracy" in line for line in lines)


def test_config_file_mistakes_name_the_file_and_the_closest_setting(tmp_path, capsys):
    typo = tmp_path / "typo.toml"
    typo.write_text("[train]\nepocs = 3\n")
    section = tmp_path / "section.toml"
    section.write_text("[trian]\nepochs = 3\n")
    data = _csv(tmp_path, "a,b,y\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n9,1,0\n")
    column = tmp_path / "column.toml"
    column.write_text(f'data = "{data}"\nlabel_column = "lable"\n')
    expected = {typo: "typo.toml: unknown setting 'epocs' (did you mean 'epochs'?)",
                section: "section.toml: unknown table [trian] (did you mean 'train'?)",
                column: f"(label_column = 'lable' in {column})"}
    for path, needle in expected.items():
        assert main(["train", "--config", str(path), "--quiet",
                     "--out", str(tmp_path / "o")]) == 2
        assert needle in capsys.readouterr().err


def test_a_runs_config_json_reruns_it_and_run_options_work_in_a_file(tmp_path):
    first = tmp_path / "first"
    assert main(["train", "--epochs", "1", "--batch-size", "64", "--lr", "0.3",
                 "--out", str(first), "--quiet"]) == 0
    again = tmp_path / "again"
    assert main(["train", "--config", str(first / "config.json"), "--out", str(again),
                 "--quiet"]) == 0
    assert json.loads((again / "config.json").read_text()) == \
        json.loads((first / "config.json").read_text())
    assert json.loads((again / "metrics.json").read_text())["val_accuracy"] == \
        json.loads((first / "metrics.json").read_text())["val_accuracy"]
    toml = tmp_path / "run.toml"
    toml.write_text(f'out = "{tmp_path / "from-file"}"\ncheckpoint_every = "1 epoch"\n'
                    'epochs = 2\n[sweep]\nseeds = 2\n')
    assert main(["train", "--config", str(toml), "--quiet"]) == 0
    assert list((tmp_path / "from-file" / "checkpoints").iterdir())


def test_train_without_data_picks_data_that_fits_the_model(tmp_path, capsys):
    for model, data in (("logistic", "blobs"), ("svm", "blobs"), ("linreg", "linreg"),
                        ("softmax", "digits")):
        out = tmp_path / model
        assert main(["train", "--model", model, "--epochs", "1", "--out", str(out),
                     "--quiet"]) == 0
        assert json.loads((out / "config.json").read_text())["data"] == data
        err = capsys.readouterr().err
        assert (f"using the built-in '{data}' data" in err) == (data != "digits")
