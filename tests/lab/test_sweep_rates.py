"""Learning rates taken from a finished sweep (``--lr-from-sweep``, ``fit(lr_from_sweep=)``):
each batch size, or each batch-schedule phase without @LR, at the rate the sweep tuned; a
sweep.json read as untrusted input; one message for each thing that cannot be."""

import json
import math

import pytest

import sgdlab
from sgdlab.cli.main import main
from sgdlab.errors import ConfigError
from sgdlab.lab import sweep_rates
from sgdlab.lab.sweep_rates import rate_for, schedule_with_rates, tuned_rates

ROWS = [{"batch_size": 16, "lr": 0.1, "steps_median": 120.0},
        {"batch_size": 64, "lr": 0.4, "steps_median": 40.0},
        {"batch_size": 256, "lr": 1.6, "steps_median": math.inf}]   # never reached: not tuned


@pytest.fixture
def sweep_dir(tmp_path):
    d = tmp_path / "sweep1"
    d.mkdir()
    (d / "sweep.json").write_text(json.dumps({"batches": ROWS, "target": 0.9}))
    return d


def test_rates_of_the_batch_sizes_that_reached(sweep_dir):
    assert tuned_rates(sweep_dir) == {16: 0.1, 64: 0.4}
    assert tuned_rates(sweep_dir / "sweep.json") == {16: 0.1, 64: 0.4}


def test_phases_without_a_rate_take_their_batch_sizes():
    rates = {16: 0.1, 64: 0.4}
    assert schedule_with_rates("16:0,64:2000,64@0.3:3e3", rates, "s") == \
        "16@0.1:0,64@0.4:2000,64@0.3:3000"
    with pytest.raises(ConfigError, match=r"tuned no learning rate for batch size 256 "
                                          r"\(tuned: 16, 64\); give phase 2 its own rate "
                                          r"\(256@LR:2000\)"):
        schedule_with_rates("16:0,256:2000", rates, "s")
    with pytest.raises(ConfigError, match="batch size 32 .* give --lr"):
        rate_for(32, rates, "s")


@pytest.mark.parametrize("content, match", [
    ("not json", "cannot read the tuned learning rates"),
    (json.dumps([1, 2]), "cannot read the tuned learning rates"),
    (json.dumps({"batches": [{"batch_size": "16", "lr": 0.1}]}), "without a whole batch size"),
    (json.dumps({"batches": [3]}), "a batch row is int"),
    (json.dumps({"batches": [{"batch_size": 16, "lr": 10 ** 400, "steps_median": 5}]}),
     "without a whole batch size and a learning rate"),
    (json.dumps({"batches": [{"batch_size": 16, "lr": 0.1, "steps_median": 10 ** 400}]}),
     "no batch size of that sweep reached its target"),
    (json.dumps({"batches": [{"batch_size": 16, "lr": 0.1, "steps_median": None}]}),
     "no batch size of that sweep reached its target"),
])
def test_a_foreign_sweep_json_is_one_message(tmp_path, content, match):
    (tmp_path / "sweep.json").write_text(content)
    with pytest.raises(ConfigError, match=match):
        tuned_rates(tmp_path)


def test_a_missing_linked_or_oversized_sweep_json_is_refused(tmp_path, sweep_dir, monkeypatch):
    with pytest.raises(ConfigError, match="no sweep.json there"):
        tuned_rates(tmp_path / "nowhere")
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / "sweep.json").symlink_to(sweep_dir / "sweep.json")
    with pytest.raises(ConfigError, match="symbolic link"):
        tuned_rates(tmp_path / "linked")
    monkeypatch.setattr(sweep_rates, "MAX_SWEEP_JSON_BYTES", 10)
    with pytest.raises(ConfigError, match="more than a sweep writes"):
        tuned_rates(sweep_dir)


def test_fit_trains_each_phase_at_the_sweeps_rate(sweep_dir):
    r = sgdlab.fit("digits", model="softmax", batch_schedule="16:0,64:500", epochs=1,
                   lr_from_sweep=sweep_dir, plots=False)
    assert r.config.batch_schedule == "16@0.1:0,64@0.4:500"
    assert [p["lr"] for p in r.extra["batch_phases"]] == [0.1, 0.4]
    fixed = sgdlab.fit("digits", model="softmax", batch_size=64, epochs=1,
                       lr_from_sweep=sweep_dir, plots=False)
    assert fixed.config.lr == 0.4
    with pytest.raises(ConfigError, match="both set the learning rate"):
        sgdlab.fit("digits", model="softmax", batch_size=64, lr=0.2, lr_from_sweep=sweep_dir)
    with pytest.raises(ConfigError, match=r"give batch_size= \(or batch_schedule=\)"):
        sgdlab.fit("digits", model="softmax", lr_from_sweep=sweep_dir)


def test_train_takes_the_rates_from_the_command_line(sweep_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data", "digits", "--model", "softmax", "--epochs", "1",
                 "--batch-schedule", "16:0,64:500", "--lr-from-sweep", str(sweep_dir),
                 "--out", str(out), "--quiet"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["batch_schedule"] == "16@0.1:0,64@0.4:500"
    for argv, message in (
            (["--batch-size", "64", "--lr", "0.2"], "both set the learning rate"),
            ([], "give --batch-size"),
            (["--batch-size", "32"], "tuned no learning rate for batch size 32")):
        code = main(["train", "--data", "digits", "--epochs", "1", "--lr-from-sweep",
                     str(sweep_dir), "--out", str(tmp_path / "x"), "--quiet", *argv])
        err = capsys.readouterr().err
        assert code == 2 and message in err and "Traceback" not in err
