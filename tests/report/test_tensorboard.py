"""TensorBoard event files: a real run written live and after the fact, read back with
TensorBoard's own reader, scalar by scalar against the history; sweep members as named runs;
the missing extra and write errors as sgdlab errors."""

import dataclasses
import errno
import math
import sys

import numpy as np
import pytest

import sgdlab
from sgdlab.errors import ConfigError, RunDirError
from sgdlab.lab.records import make_record
from sgdlab.lab.summary import SweepResult

# the test extra installs both; a missing one is a failure, not a skip
import tensorboardX  # noqa: E402,F401
from tensorboard.backend.event_processing import event_accumulator  # noqa: E402

from sgdlab.report import tensorboard as tb

COLUMNS = {"train_loss": "loss/train", "val_loss": "loss/validation",
           "val_accuracy": "accuracy/validation", "train_seconds": "time/train_seconds",
           "wall_seconds": "time/wall_seconds", "eval_seconds": "time/eval_seconds",
           "epoch": "progress/epoch", "examples": "progress/examples"}
VS_TIME = {"train_loss": "loss_vs_time/train", "val_loss": "loss_vs_time/validation",
           "val_accuracy": "accuracy_vs_time/validation"}


def read_scalars(run_dir) -> dict:
    """``{tag: [(step, value), ...]}`` as TensorBoard loads the run directory."""
    acc = event_accumulator.EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def expected_scalars(history) -> dict:
    """What the module docstring promises for ``history``, at float32 (TensorBoard's type)."""
    want: dict = {}
    for row in history:
        ms = round(row["train_seconds"] * 1000)
        for col, value in row.items():
            if col == "step" or not math.isfinite(value):
                continue
            want.setdefault(COLUMNS[col], []).append((row["step"], float(np.float32(value))))
            if col in VS_TIME:
                want.setdefault(VS_TIME[col], []).append((ms, float(np.float32(value))))
    return want


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """One real run followed by a writer: ``(result, run directory, chunk events, writer)``."""
    logdir = tmp_path_factory.mktemp("tb")
    writer = tb.TensorBoardWriter(logdir, "digits b32")
    chunks = []

    def both(event):  # how a caller combines the writer with its own callback
        if event["event"] == "chunk":
            chunks.append(dict(event))
        return writer(event)

    result = sgdlab.fit("digits", epochs=2, eval_every="1 epoch", plots=False, callback=both)
    return result, logdir / "digits b32", chunks, writer


def test_live_writer_scalars_equal_the_history(live):
    result, run_dir, chunks, writer = live
    assert [row["step"] for row in result.history] == [0, 45, 90]
    got = read_scalars(run_dir)
    want = expected_scalars(result.history)
    assert {t: v for t, v in got.items() if t != tb.CHUNK_TAG} == want
    # The first row has no training loss yet (NaN): left out, not written as NaN.
    assert [s for s, _ in got["loss/train"]] == [45, 90]
    assert got["accuracy/validation"][-1] == (90, float(np.float32(
        result.history[-1]["val_accuracy"])))
    assert got["accuracy_vs_time/validation"][-1][0] == \
        round(result.history[-1]["train_seconds"] * 1000)
    # Each compiled chunk's mean step loss at the chunk's step.
    assert got[tb.CHUNK_TAG] == [(c["step"], float(np.float32(c["loss"]))) for c in chunks]
    assert chunks and all(c["step"] > 0 for c in chunks)
    # "end" closed the file: one event file, nothing left open.
    assert writer._file is None and len(writer.files) == 1 and writer.files[0].is_file()


def test_write_history_matches_the_live_run_and_replaces_itself(live, tmp_path):
    result, run_dir, _, _ = live
    path = tb.write_history(result, tmp_path, "after")  # a FitResult or its rows
    assert path == tmp_path / "after"
    got = read_scalars(path)
    assert got == expected_scalars(result.history)
    live_got = read_scalars(run_dir)
    assert got == {t: v for t, v in live_got.items() if t != tb.CHUNK_TAG}
    # Writing the same run again replaces the file instead of doubling every point.
    tb.write_history(list(result.history), tmp_path, "after")
    assert sorted(p.name for p in path.iterdir()) == [tb.HISTORY_FILE]
    assert read_scalars(path) == got


def test_write_history_wall_times_follow_the_run_clock(live, tmp_path):
    result, _, _, _ = live
    path = tb.write_history(result.history, tmp_path, "clock")
    acc = event_accumulator.EventAccumulator(str(path), size_guidance={"scalars": 0})
    acc.Reload()
    walls = [e.wall_time for e in acc.Scalars("loss/validation")]
    rows = [r["wall_seconds"] for r in result.history]
    assert np.allclose(np.diff(walls), np.diff(rows), atol=1e-3)


def test_write_sweep_writes_one_named_run_per_member(live, tmp_path):
    result, _, _, _ = live
    rec = make_record(result, "f" * 16)
    records = [rec,
               dataclasses.replace(rec, seed=1),
               dataclasses.replace(rec, lr=rec.lr * (1 + 1e-6)),  # same name at 3 digits
               dataclasses.replace(rec, phase="confirm", seed=1000)]
    sweep = SweepResult(sweep={}, base={}, data="digits", n_train=1437, n_validation=360,
                        metric="val_accuracy", target=0.9, target_source="given",
                        records=tuple(records))
    runs = tb.write_sweep(sweep, tmp_path)
    b, lr = rec.batch_size, f"{rec.lr:.3g}"
    more = f"{rec.lr * (1 + 1e-6):.10g}"
    assert list(runs) == [f"B={b} lr={lr} seed=0", f"B={b} lr={lr} seed=1",
                          f"B={b} lr={more} seed=0", f"confirm B={b} lr={lr} seed=1000"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(runs)
    want = expected_scalars(result.history)
    for path in runs.values():
        assert read_scalars(path) == want
    assert list(tb.write_sweep(records[:1], tmp_path / "list")) == list(runs)[:1]


def test_writer_reopens_after_end_for_a_retry(tmp_path):
    writer = tb.TensorBoardWriter(tmp_path, "retry", chunks=False)
    row = {"step": 10, "epoch": 0.5, "train_seconds": 0.25, "train_loss": 1.5,
           "val_accuracy": 0.5, "lr": 0.2}
    writer({"event": "start"})
    writer({"event": "chunk", "step": 10, "loss": 9.0})  # chunks=False: not written
    writer({"event": "row", "row": row, "params": None})
    writer({"event": "end", "result": None})
    writer({"event": "start"})
    assert writer({"event": "row", "row": {**row, "step": 20, "lr": 0.1}}) is None
    writer.close()
    writer.close()  # idempotent
    assert len(writer.files) == 2
    got = read_scalars(tmp_path / "retry")
    assert got["optimiser/lr"] == [(10, float(np.float32(0.2))), (20, float(np.float32(0.1)))]
    assert got["accuracy_vs_time/validation"] == [(250, 0.5), (250, 0.5)]
    assert tb.CHUNK_TAG not in got


def test_tags():
    assert tb.tag_for("step") is None
    assert tb.tag_for("val_r2") == "r2/validation"
    assert tb.tag_for("test_accuracy") == "accuracy/test"
    assert tb.tag_for("compile_seconds") == "time/compile_seconds"
    assert tb.tag_for("noise") == "other/noise"
    assert tb.time_tag_for("val_mse") == "mse_vs_time/validation"
    assert tb.time_tag_for("epoch") is None


def test_missing_library_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import now fails
    message = ("TensorBoard output needs the 'tensorboard' extra: "
               "pip install 'sgdlab[tensorboard]'")
    with pytest.raises(ConfigError) as err:
        tb.TensorBoardWriter(tmp_path, "run")
    assert str(err.value) == message
    with pytest.raises(ConfigError, match="sgdlab\\[tensorboard\\]"):
        tb.write_history([{"step": 0, "val_loss": 1.0}], tmp_path, "run")
    assert not (tmp_path / "run").exists()


def test_write_errors_become_run_dir_errors(monkeypatch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(RunDirError, match="cannot write TensorBoard events to .*a-file"):
        tb.TensorBoardWriter(blocker, "run")

    writer = tb.TensorBoardWriter(tmp_path, "full")

    def no_space(*args):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(tb._EventFile, "_write", no_space)
    row = {"step": 1, "train_seconds": 0.1, "train_loss": 1.0}
    with pytest.raises(RunDirError) as err:
        writer({"event": "row", "row": row, "params": None})
    text = str(err.value)
    assert str(tmp_path / "full") in text and "No space left on device" in text
    assert "disk has space" in text and not isinstance(err.value, OSError)
    monkeypatch.undo()
    import sgdlab.files
    monkeypatch.setattr(sgdlab.files.os, "fsync", no_space)  # the disk fills as it is written
    with pytest.raises(RunDirError, match="No space left on device"):
        tb.write_history([row], tmp_path, "full-after")
    monkeypatch.undo()
    assert list((tmp_path / "full-after").iterdir()) == []  # no partial file left


@pytest.mark.parametrize("name", ["../outside", "/abs", "", "a/../../b"])
def test_run_name_stays_inside_the_log_directory(tmp_path, name):
    with pytest.raises(ConfigError, match="run name"):
        tb.TensorBoardWriter(tmp_path, name)


def test_train_command_line_writes_the_run_under_the_logdir(tmp_path, monkeypatch, capsys):
    from sgdlab.cli.main import main
    out = tmp_path / "my-run"
    assert main(["train", "--epochs", "2", "--out", str(out), "--quiet",
                 "--tensorboard", str(tmp_path / "tb")]) == 0
    acc = event_accumulator.EventAccumulator(str(tmp_path / "tb" / "my-run"))
    acc.Reload()
    values = [e.value for e in acc.Scalars("accuracy/validation")]
    import json
    assert values[-1] == pytest.approx(json.loads((out / "metrics.json").read_text())
                                       ["val_accuracy"], rel=1e-6)
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    assert main(["train", "--epochs", "1", "--out", str(tmp_path / "r2"), "--quiet",
                 "--tensorboard", str(tmp_path / "tb")]) == 2
    assert "pip install 'sgdlab[tensorboard]'" in capsys.readouterr().err
    assert not (tmp_path / "r2").exists() or not (tmp_path / "r2" / "metrics.json").exists()
