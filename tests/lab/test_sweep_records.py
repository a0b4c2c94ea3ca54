"""A sweep's stored run records: a damaged or foreign ``runs/*.json`` is treated as absent and
the run is redone (and its record written again), never half-read into a traceback."""

import json

import pytest

from sgdlab.data import load_data
from sgdlab.engine import TrainConfig, train
from sgdlab.lab.records import load_record, make_record, save_record
from sgdlab.lab.runbook import RunBook, RunRequest

KEY = "b0032-lr0.1-s0"


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A real record written by the sweep's own code, and the config it was made with."""
    data = load_data("gaussian:n=200,d=4,n_classes=3")
    cfg = TrainConfig(model="softmax", batch_size=32, lr=0.1, seed=0, epochs=2)
    result = train(data, data, cfg)
    out = tmp_path_factory.mktemp("records")
    record = make_record(result, "fp")
    assert record.key == KEY
    save_record(out, record)
    return out, cfg, data


def _damaged(record: dict):
    """Valid JSON of the wrong shape, one kind of damage each."""
    yield "a list", [record]
    yield "a number", 3
    for key in ("history", "summary", "status", "config", "lr", "key", "lr_multiplier"):
        yield f"missing {key}", {k: v for k, v in record.items() if k != key}
    yield "history a dict", {**record, "history": {"step": 0}}
    yield "history empty", {**record, "history": []}
    yield "history row a list", {**record, "history": [[0, 1]]}
    yield "history text", {**record, "history": [{**record["history"][0], "step": "abc"}]}
    yield "summary a list", {**record, "summary": [1, 2]}
    yield "summary figure text", {**record, "summary": {**record["summary"], "steps": "x"}}
    yield "unknown status", {**record, "status": "fine"}
    yield "batch size not the config's", {**record, "batch_size": 64}
    yield "batch size a bool", {**record, "batch_size": True}
    yield "phase a number", {**record, "phase": 1}
    yield "search exponent text", {**record, "x": "abc"}
    yield "deep nesting", None


def test_a_record_of_the_wrong_shape_is_treated_as_absent(stored):
    out, cfg, _ = stored
    path = out / "runs" / f"{KEY}.json"
    good = json.loads(path.read_text())
    assert load_record(out, KEY, cfg.to_dict(), "fp") is not None
    cases = 0
    for what, value in _damaged(good):
        text = "[" * 100_000 + "]" * 100_000 if value is None else json.dumps(value)
        path.write_text(text)
        assert load_record(out, KEY, cfg.to_dict(), "fp") is None, what
        cases += 1
    path.write_text(json.dumps(good))
    assert load_record(out, KEY, cfg.to_dict(), "fp").key == KEY
    assert cases == 21


def test_the_sweep_redoes_a_damaged_record(stored):
    out, cfg, data = stored
    path = out / "runs" / f"{KEY}.json"
    good = json.loads(path.read_text())
    path.write_text(json.dumps([good]))      # valid JSON, wrong shape: AttributeError before
    events = []
    book = RunBook(data, data, fingerprint="fp", out=out, emit=events.append)
    record = book.run(RunRequest(cfg))
    assert [e["reused"] for e in events if e["event"] == "run_end"] == [False]
    assert record.key == KEY and isinstance(json.loads(path.read_text()), dict)
    events.clear()
    book.run(RunRequest(cfg))                # written again: now it is reused
    assert [e["reused"] for e in events if e["event"] == "run_end"] == [True]
