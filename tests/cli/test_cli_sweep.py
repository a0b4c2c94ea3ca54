"""``sgdlab sweep`` end to end, resuming, and bad input as one message with exit code 2;
``sgdlab train --noise-scale``."""

import json

import pytest

from helpers import help_of

from sgdlab.cli.main import main

SMALL = ["--data", "digits", "--batch-sizes", "64", "--seeds", "1", "--budget", "10 epochs",
         "--target-accuracy", "0.9", "--no-probe", "--no-noise"]


def test_sweep_writes_report_and_resumes(tmp_path, capsys):
    out = tmp_path / "s1"
    assert main(["sweep", *SMALL, "--out", str(out), "--quiet", "--compile-cache", "off"]) == 0
    quiet = capsys.readouterr().out.splitlines()
    assert quiet[0].startswith("next: sgdlab train --data digits --batch-size 64 --lr ")
    assert quiet[1] == f"report: {out / 'report.html'}" and len(quiet) == 2
    for name in ("report.html", "accuracy_time.png", "accuracy_epochs.png",
                 "steps_to_target.png", "throughput.png", "sweep.json", "summary.csv",
                 "runs.csv", "points.csv"):
        assert (out / name).is_file(), name
    saved = json.loads((out / "sweep.json").read_text())
    n_runs = len(list((out / "runs").glob("*.json")))
    # every lr tried (one seed) + the 3 pilot runs (stopped at the given target: their steps
    # set how often the first runs evaluate) + a confirmation seed (+ one extra when it
    # contradicted)
    assert n_runs in (len(saved["points"]) + 4, len(saved["points"]) + 5)
    assert len(list((out / "runs").glob("pilot-*.json"))) == 3
    assert len(saved["points"]) >= 4 and saved["sweep"]["lr_mode"] == "search"
    assert saved["recommendation"]["batch_size"] == 64
    assert saved["command"].startswith("sgdlab train --data digits --batch-size 64 --lr ")
    assert saved["noise"] is None and saved["probe"] == []

    # Same directory again, with the progress display and summary: nothing is redone.
    assert main(["sweep", *SMALL, "--out", str(out), "--compile-cache", "off"]) == 0
    captured = capsys.readouterr()
    assert f"{n_runs} of {n_runs} runs were finished already" in captured.out
    assert "batch size 64" in captured.out and "report:" in captured.out
    assert "sgdlab train --data digits --batch-size 64" in captured.out
    assert "Traceback" not in captured.err


def test_sweep_help_has_examples():
    text = help_of("sweep")
    assert "examples:" in text and "--lr-scaling" in text and "--budget" in text
    words = " ".join(text.split())  # the help is wrapped to the terminal
    assert "sgdlab sweep --batch-warmup" in words and "within 5% of B0's" in words


@pytest.mark.parametrize("args, message", [
    (["--batch-sizes", "4,x"], "comma-separated whole numbers"),
    (["--batch-sizes", "32,4096"], "exceed the number of training examples"),
    (["--budget", "forever"], "cannot read budget"),
    (["--lr-scaling", "cubic"], "valid scalings"),
    (["--lr-grid", "1,two"], "comma-separated numbers"),
    (["--stop-at-target", "--full-budget"], "contradict each other"),
    (["--lr-grid", "1,2", "--no-lr-search"], "contradict each other"),
    (["--search-factor", "0.5"], "--search-factor"),
    (["--lr-resolution", "1"], "--lr-resolution"),
    (["--timing-rounds", "0"], "timing rounds must be"),
    (["--budget", "0s"], "must be a finite time > 0"),
    (["--noise-batches", "64,8"], "small < big"),
    (["--seeds", "0"], "seeds must be"),
    (["--model", "sofmax", "--batch-sizes", "8"], "valid"),
    (["--batch-warmup", "--batch-sizes", "32"], "--batch-warmup branches from a small batch"),
    (["--batch-warmup", "--batch-sizes", "16,64", "--schedule", "cosine"],
     "--batch-warmup measures at a constant learning rate"),
    (["--batch-warmup", "--workers", "ray"], "--batch-warmup runs in this process"),
])
def test_bad_sweep_input_is_one_message(args, message, tmp_path, capsys):
    code = main(["sweep", *args, "--out", str(tmp_path / "x"), "--quiet",
                 "--compile-cache", "off"])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err


def test_train_noise_scale_option(tmp_path):
    out = tmp_path / "t"
    assert main(["train", "--epochs", "1", "--noise-scale", "--out", str(out), "--quiet"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["noise_scale"] > 0
    assert m["noise_scale_low"] <= m["noise_scale"] <= m["noise_scale_high"]


def test_a_shard_directory_is_refused_by_in_memory_verbs_with_the_verb_that_takes_it(
        tmp_path, capsys):
    import numpy as np
    rng = np.random.default_rng(0)
    rows = ["a,b,y"] + [f"{x:.3f},{z:.3f},{int(x > z)}" for x, z in rng.standard_normal((60, 2))]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    assert main(["data", "convert", str(tmp_path / "d.csv"), str(tmp_path / "shards")]) == 0
    capsys.readouterr()
    for verb in ("sweep", "gradcheck"):
        code = main([verb, "--data", str(tmp_path / "shards"), "--quiet"]
                    if verb == "sweep" else [verb, "--data", str(tmp_path / "shards")])
        err = capsys.readouterr().err
        assert code == 2 and "shard directory" in err and "'sgdlab train'" in err, (verb, err)
    assert "shard directories are for 'sgdlab train'" in " ".join(help_of("gradcheck").split())



def test_a_target_nobody_reaches_still_gives_the_table_verdict_and_report(tmp_path, capsys):
    out = tmp_path / "never"
    code = main(["sweep", "--batch-sizes", "16,64", "--seeds", "1", "--target-accuracy",
                 "0.999", "--budget", "20 steps", "--no-noise", "--no-lr-search", "--out",
                 str(out), "--compile-cache", "off"])
    captured = capsys.readouterr()
    assert code == 1 and "Traceback" not in captured.err
    assert "No batch size reached" in captured.err and "--budget" in captured.err
    assert (out / "report.html").is_file() and (out / "decomposition.png").is_file()
    assert "sweep on digits" in captured.out


def test_a_piped_sweep_prints_plain_progress_lines(tmp_path, capsys, monkeypatch):
    from sgdlab.cli import display
    monkeypatch.setattr(display, "PIPED_PROGRESS_SECONDS", 0.0)  # every update prints
    assert main(["sweep", *SMALL, "--out", str(tmp_path / "s"), "--compile-cache", "off"]) == 0
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("sweep: ")]
    assert len(lines) > 3
    done, total = lines[-1].split()[1].split("/")
    assert done == total  # the last line is the final state
    assert all("\x1b" not in ln for ln in lines)  # plain text, no bar


class _Captured(Exception):
    pass


def _captured_sweep(monkeypatch, capsys, *argv) -> tuple[dict, str]:
    """What ``sgdlab sweep ARGV`` hands run_sweep (the run itself not made), and its stderr."""
    import sgdlab.lab.sweep
    seen = {}

    def capture(data, sweep, base, **kwargs):
        seen.update(data=data, sweep=sweep, base=base, data_command=kwargs["data_command"])
        raise _Captured

    monkeypatch.setattr(sgdlab.lab.sweep, "run_sweep", capture)
    capsys.readouterr()
    with pytest.raises(_Captured):
        main(["sweep", *argv])
    return seen, capsys.readouterr().err


def test_a_sweep_given_no_data_or_model_runs_the_demo_problem(tmp_path, monkeypatch, capsys):
    from sgdlab.lab.sweep_config import DEMO
    seen, err = _captured_sweep(monkeypatch, capsys, "--out", str(tmp_path / "s"))
    assert seen["data_command"] == ("--data", DEMO["data"])
    assert seen["data"].n == 4000 and seen["data"].X.shape[1] == 16 * 16
    assert seen["base"].model == "mlp" and tuple(seen["base"].hidden) == DEMO["hidden"]
    assert "the demo problem: --data digits-augmented" in err and "--data digits for" in err
    # a flag of the demo's own model still applies to it
    seen, _ = _captured_sweep(monkeypatch, capsys, "--hidden", "32", "--out", str(tmp_path / "t"))
    assert seen["base"].model == "mlp" and tuple(seen["base"].hidden) == (32,)


@pytest.mark.parametrize("argv", [["--data", "digits"], ["--model", "softmax"]])
def test_naming_data_or_a_model_leaves_the_demo(tmp_path, monkeypatch, capsys, argv):
    seen, err = _captured_sweep(monkeypatch, capsys, *argv, "--out", str(tmp_path / "s"))
    assert seen["data_command"] == ("--data", "digits") and "demo" not in err
    assert seen["base"].model == "softmax"
