"""An exploding learning rate: stopped within one chunk, marked diverged, no NaN checkpoint.

And the optional recovery: ``halve-lr`` goes back to the last checkpoint with half the
learning rate, a bounded number of times, and the history says which rate made each row.
"""

import json

import numpy as np
import pytest

import sgdlab
from sgdlab.cli.main import main
from sgdlab.engine.checkpoint import CheckpointStore
from sgdlab.errors import DivergedWarning

DATA = "linreg:n=500,d=5"   # 400 training rows: 25 steps per epoch at batch 16
K = 4                      # steps per compiled chunk


def _all_checkpoints_finite(run_dir):
    store = CheckpointStore(run_dir)
    assert store.steps(), "expected at least the step-0 checkpoint"
    for step in store.steps():
        snap = store.read(step)
        for name, a in snap.arrays.items():
            assert np.all(np.isfinite(a)), (step, name)
    return store.steps()


def test_exploding_lr_stops_within_one_chunk_and_writes_no_nan_checkpoint(tmp_path):
    out = tmp_path / "run"
    chunks = []
    with pytest.warns(DivergedWarning, match="diverged at step"):
        r = sgdlab.fit(DATA, model="linreg", lr=8.0, batch_size=16, epochs=3, chunk_steps=K,
                       out=out, plots=False, checkpoint_every="5 steps", keep_checkpoints=50,
                       callback=lambda e: chunks.append(e["step"]) if e["event"] == "chunk"
                       else 0)
    assert r.status == "diverged"
    bad = r.diverged_at_step
    # The step that went non-finite was not applied: the state is the one before it ...
    assert r.steps == bad - 1
    # ... and it happened inside the last chunk: no chunk ran after it.
    assert chunks[-1] == r.steps and chunks[-2] < bad <= chunks[-2] + K
    m = json.loads((out / "metrics.json").read_text())
    assert m["status"] == "diverged" and m["diverged_at_step"] == bad
    assert f"diverged at step {bad}" in m["message"]
    steps = _all_checkpoints_finite(out)
    assert max(steps) <= r.steps  # the last good one is kept; nothing after divergence
    for leaf in (r.params["W"], r.params["b"]):
        assert np.all(np.isfinite(np.asarray(leaf)))


def test_cli_divergence_exits_1_and_keeps_checkpoints(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--data", DATA, "--model", "linreg", "--lr", "8", "--epochs", "3",
                 "--batch-size", "16", "--chunk-steps", str(K), "--quiet", "--out", str(out),
                 "--checkpoint-every", "5 steps"])
    assert code == 1
    assert "diverged at step" in capsys.readouterr().err
    _all_checkpoints_finite(out)


def test_halve_lr_restarts_from_last_checkpoint_until_it_trains(tmp_path):
    out = tmp_path / "run"
    # Only the step-0 checkpoint exists before the end, so each retry restarts there.
    r = sgdlab.fit(DATA, model="linreg", lr=8.0, batch_size=16, epochs=3, chunk_steps=K,
                   eval_every="10 steps", out=out, plots=False, checkpoint_every="end",
                   on_divergence="halve-lr", max_retries=4)
    assert r.status == "completed"
    retries = r.extra["divergence_retries"]
    assert [x["lr_from"] for x in retries] == [8.0 / 2 ** i for i in range(len(retries))]
    assert all(x["restart_step"] == 0 and x["lr_to"] == x["lr_from"] / 2 for x in retries)
    final_lr = retries[-1]["lr_to"]
    assert r.config.lr == final_lr
    # Every row says which learning rate produced it: the step-0 row comes from the
    # checkpoint of the first attempt, every row after the restart from the final rate.
    assert [row["lr"] for row in r.history] == [8.0] + [final_lr] * (len(r.history) - 1)
    assert [row["step"] for row in r.history] == [0, 10, 20, 30, 40, 50, 60, 70, 75]
    m = json.loads((out / "metrics.json").read_text())
    assert m["divergence_retries"] == retries
    assert "lr" in (out / "history.csv").read_text().splitlines()[0].split(",")
    _all_checkpoints_finite(out)


def test_halve_lr_retries_are_bounded_and_recorded(tmp_path):
    with pytest.warns(DivergedWarning, match="after 2 learning-rate halvings"):
        r = sgdlab.fit(DATA, model="linreg", lr=1e4, batch_size=16, epochs=3, chunk_steps=K,
                       checkpoint_every="5 steps", out=tmp_path / "run", plots=False,
                       on_divergence="halve-lr", max_retries=2)
    assert r.status == "diverged"
    retries = r.extra["divergence_retries"]
    assert len(retries) == 2 and [x["lr_to"] for x in retries] == [5e3, 2.5e3]
    # a retry restarts from the newest checkpoint, which is before the divergence
    assert all(x["restart_step"] < x["diverged_at_step"] for x in retries)
    assert "after 2 learning-rate halvings" in r.message
    _all_checkpoints_finite(tmp_path / "run")


def test_halve_lr_without_a_run_directory_uses_in_memory_checkpoints():
    r = sgdlab.fit(DATA, model="linreg", lr=8.0, batch_size=16, epochs=2, chunk_steps=K,
                   checkpoint_every="end", on_divergence="halve-lr", max_retries=4)
    assert r.status == "completed" and r.extra["divergence_retries"]


@pytest.mark.parametrize("bad, needle", [
    (dict(on_divergence="retry"), "unknown divergence policy 'retry'"),
    (dict(max_retries=-1), "max_retries must be"),
    (dict(keep_checkpoints=0), "keep_checkpoints must be"),
    (dict(checkpoint_every="often"), "cannot read evaluation schedule part"),
])
def test_bad_recovery_settings_are_refused(bad, needle):
    with pytest.raises(sgdlab.ConfigError, match=needle):
        sgdlab.fit(DATA, model="linreg", epochs=1, **bad)


def test_a_non_finite_validation_loss_ends_the_run_as_diverged(tmp_path, capsys):
    """``--lr 1e30`` on softmax: every step stays finite (train loss about 1e29) but the
    outputs overflow, so the validation loss is NaN. That is a divergence, not a completed
    run: exit code 1, status "diverged" in metrics.json and model.json, at the row's step."""
    out = tmp_path / "run"
    code = main(["train", "--data", "digits", "--model", "softmax", "--lr", "1e30",
                 "--epochs", "2", "--quiet", "--out", str(out)])
    assert code == 1
    err = capsys.readouterr().err
    assert "diverged at step 45: the validation loss became NaN/inf" in err
    for name in ("metrics.json", "model.json"):
        assert json.loads((out / name).read_text())["status"] == "diverged"
    m = json.loads((out / "metrics.json").read_text())
    assert m["diverged_at_step"] == 45 and m["steps"] == 45
