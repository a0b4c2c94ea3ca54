"""Fuzzing what sgdlab reads from files a person (or an attacker) can write: every hostile
input is accepted or refused with a documented error, never another exception, a
MemoryError, an allocation the file's length does not back, or a hang.

* IDX headers: any type byte, 0-5 axes, lengths up to 2^32 - 1, payloads too short, exact or
  too long, plain or gzip (some with a damaged CRC or length);
* ``.npy``/``.npz`` headers: shapes of any size (huge, negative, many axes), dtypes NumPy
  reads and does not (object, strings, void, big-endian), Fortran order, payloads of any
  length; read whole, row by row (prediction) and as checkpoint arrays;
* checkpoints: the manifest's loop state with any JSON value in any entry, arrays dropped,
  added, retyped, reshaped or made non-finite, checksums recomputed (an edit, not damage);
  what is accepted is then restored as a resume restores it;
* settings files: TOML and JSON with deep nesting, numbers of thousands of digits, NaN and
  infinity, huge strings and lists, read and turned into a configuration;
* CSV headers: repeated, empty, quoted, padded, numeric and non-ASCII names, loaded and
  matched to a model's features as ``sgdlab predict`` does.

The number of examples each fuzzer ran is printed in the test summary.
"""

import gzip
import io
import json
import math
import os
import shutil
import struct
import tempfile
import zipfile

import numpy as np
import pytest
from hypothesis import strategies as st

import sgdlab
from sgdlab import TrainConfig
from sgdlab.cli.common import read_config_file
from sgdlab.data import load_csv, load_data, load_npy, load_npz
from sgdlab.data.arrays import ArrayRows, read_npz_arrays
from sgdlab.data.features import open_features
from sgdlab.engine.checkpoint import CheckpointStore, state_from_arrays
from sgdlab.engine.session import CheckpointPolicy, Session
from sgdlab.errors import ConfigError, DataError, RunDirError, SgdlabError

from fuzz_helpers import accepted, fuzz
from rel_helpers import rewrite_checkpoint

TMP = tempfile.mkdtemp(prefix="sgdlab-fuzz-files-")
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _write(name: str, data: bytes) -> str:
    path = os.path.join(TMP, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


# ---------------------------------------------------------------------------------- IDX

IDX_CODES = [0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E]
ITEM = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}
length = st.one_of(st.integers(0, 6), st.sampled_from([2 ** 31, 2 ** 32 - 1, 60000, 28]),
                   st.integers(0, 2 ** 32 - 1))
idx_case = st.one_of(
    st.fixed_dictionaries({  # hostile
        "code": st.one_of(st.sampled_from(IDX_CODES), st.integers(0, 255)),
        "shape": st.lists(length, min_size=0, max_size=5),
        "payload": st.sampled_from(["exact", "short", "long", "none"]),
        "gzip": st.sampled_from(["no", "ok", "crc", "length"]),
        "labels": st.sampled_from(["match", "short", "none", "huge"]),
    }),
    st.fixed_dictionaries({  # well formed, to be read as written
        "code": st.sampled_from(IDX_CODES),
        "shape": st.lists(st.integers(1, 5), min_size=3, max_size=4),
        "payload": st.just("exact"),
        "gzip": st.sampled_from(["no", "ok"]),
        "labels": st.just("match"),
    }))


def _idx(code, shape, payload) -> bytes:
    head = bytes([0, 0, code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)
    n = math.prod(shape) * ITEM.get(code, 1)
    if payload == "none" or n > 4096:  # a header that lies: its payload is small
        return head + bytes(min(n, 37))
    body = bytes(range(256)) * (n // 256 + 1)
    return head + {"exact": body[:n], "short": body[:max(n - 3, 0)],
                   "long": body[:n] + b"\x07"}[payload]


def _gz(data: bytes, how: str) -> bytes:
    if how == "no":
        return data
    z = bytearray(gzip.compress(data))
    if how == "crc":
        z[-8] ^= 0x5A
    elif how == "length":
        z[-1] ^= 0x01
    return bytes(z)


@fuzz("IDX headers", idx_case, 400)
def test_fuzz_idx_headers(case):
    suffix = "" if case["gzip"] == "no" else ".gz"
    images = _write(f"f-images-idx3-ubyte{suffix}",
                    _gz(_idx(case["code"], case["shape"], case["payload"]), case["gzip"]))
    labels = os.path.join(TMP, f"f-labels-idx1-ubyte{suffix}")
    if os.path.exists(labels):
        os.remove(labels)
    n = case["shape"][0] if case["shape"] else 0
    if case["labels"] != "none":
        count = {"match": n, "short": max(n - 1, 0), "huge": 2 ** 32 - 1}[case["labels"]]
        _write(os.path.basename(labels), _gz(_idx(0x08, [count], "exact"), case["gzip"]))
    ds = load_data(images)
    assert case["gzip"] in ("no", "ok"), "damaged gzip data was accepted"
    assert ds.X.dtype == np.float32 and np.isfinite(ds.X).all() and ds.X.shape[0] == ds.n
    assert ds.X.ndim == 4 and ds.n == n and len(ds.y) == n
    accepted("IDX headers")


# ------------------------------------------------------------------------------ NumPy headers

dims = st.one_of(st.integers(0, 5), st.sampled_from([2 ** 31, 2 ** 40, 10 ** 15, -1, -10]))
npy_header = st.fixed_dictionaries({
    "shape": st.lists(dims, max_size=6),
    "descr": st.sampled_from(["<f4", "<f8", ">f8", "<i8", "|u1", "|b1", "<c16", "|O", "<U3",
                              "|V8", "<M8[s]", "<f2", "zz"]),
    "fortran": st.booleans(),
    "payload": st.one_of(st.integers(0, 200), st.just(-1)),  # -1: as the shape declares
    "where": st.sampled_from(["npy", "npz", "npz-compressed"]),
})


def _npy_bytes(h) -> bytes:
    shape = tuple(h["shape"])
    header = repr({"descr": h["descr"], "fortran_order": h["fortran"], "shape": shape})
    header = header.encode("latin1")
    pad = 64 - (10 + len(header) + 1) % 64
    head = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header) + pad + 1) + header + \
        b" " * pad + b"\n"
    try:
        n = math.prod(shape) * np.dtype(h["descr"]).itemsize
    except TypeError:
        n = 16
    size = h["payload"] if h["payload"] >= 0 else (n if 0 <= n <= 4096 else 64)
    return head + bytes((i * 37) % 251 for i in range(size))


def _npz_with(members: dict, compressed: bool) -> bytes:
    out = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED
    with zipfile.ZipFile(out, "w", compression=method) as z:
        for name, data in members.items():
            z.writestr(name + ".npy", data)
    return out.getvalue()


@fuzz("NumPy (.npy/.npz) headers", st.tuples(npy_header, npy_header), 500)
def test_fuzz_numpy_headers(case):
    x, y = case
    if x["where"] == "npy":
        path = _write("h.npy", _npy_bytes(x))
        readers = [lambda: load_npy(path), lambda: _rows(path, None)]
    else:
        path = _write("h.npz", _npz_with({"X": _npy_bytes(x), "y": _npy_bytes(y)},
                                         x["where"] == "npz-compressed"))
        readers = [lambda: load_npz(path), lambda: _rows(path, "X"),
                   lambda: read_npz_arrays(path, "h.npz", "fix"),
                   lambda: list(open_features(path, [f"x{j}" for j in range(3)], 3,
                                              block_rows=2))]
    for read in readers:
        try:
            got = read()
        except SgdlabError:
            continue
        if hasattr(got, "X"):  # a Dataset: what training gets
            assert got.X.dtype == np.float32 and np.isfinite(got.X).all() and got.n > 0
        accepted("NumPy (.npy/.npz) headers, by a reader")


def _rows(path, key):
    with ArrayRows(path, key) as rows:
        total = 0
        while True:
            block = rows.read(3)
            if not len(block):
                break
            total += len(block)
        assert total == rows.n


# ------------------------------------------------------------------------------- checkpoints

RUN = dict(model="mlp", hidden=(4,), optimizer="momentum", batch_size=16, epochs=2,
           checkpoint_every="4 steps", plots=False)


@pytest.fixture(scope="module")
def finished_run():
    out = os.path.join(TMP, "ck-run")
    sgdlab.fit("gaussian:n=120,d=3", out=out, **RUN)
    return out


json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10 ** 30, 10 ** 30),
              st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    max_leaves=8)
LOOP_KEYS = ["step", "position", "examples", "train_seconds", "eval_seconds", "wall_seconds",
             "since_row", "last_eval", "status", "history", "config", "data", "policy"]
body_edit = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(LOOP_KEYS), json_value),
    st.tuples(st.just("drop"), st.sampled_from(LOOP_KEYS), st.none()),
    st.tuples(st.just("position"), st.sampled_from(["epoch", "step_in_epoch", "row"]),
              st.one_of(st.integers(-3, 10 ** 12), json_value)),
    st.tuples(st.just("last_eval"), st.sampled_from(["step", "time"]),
              st.one_of(st.integers(-3, 10 ** 12), json_value)),
    st.tuples(st.just("history row"), st.integers(0, 5), json_value),
)
array_edit = st.one_of(
    st.tuples(st.just("drop"), st.integers(0, 20)),
    st.tuples(st.just("dtype"), st.integers(0, 20),
              st.sampled_from(["float64", "float16", "int32", "int64", "bool", "<U2",
                               "complex64"])),
    st.tuples(st.just("shape"), st.integers(0, 20),
              st.lists(st.integers(0, 5), max_size=3)),
    st.tuples(st.just("nonfinite"), st.integers(0, 20), st.sampled_from([np.nan, np.inf])),
    st.tuples(st.just("add"), st.text("abc/", min_size=1, max_size=6)),
    st.tuples(st.just("step"), st.sampled_from([-5, 0, 3, 2 ** 31 - 1, 10 ** 12])),
)
checkpoint_case = st.tuples(st.lists(body_edit, max_size=3), st.lists(array_edit, max_size=3),
                            st.sampled_from(["none", "truncate", "garbage"]))


def _edit_body(edits):
    def apply(b):
        for kind, key, value in edits:
            if kind == "set":
                b[key] = value
            elif kind == "drop":
                b.pop(key, None)
            elif kind in ("position", "last_eval") and isinstance(b.get(kind), dict):
                b[kind][key] = value
            elif kind == "history row" and isinstance(b.get("history"), list) and b["history"]:
                b["history"][key % len(b["history"])] = value
    return apply


def _edit_arrays(edits):
    def apply(a):
        names = sorted(a)
        for edit in edits:
            kind, name = edit[0], names[edit[1] % len(names)] if len(edit) > 1 and \
                isinstance(edit[1], int) else None
            if kind == "drop":
                a.pop(name, None)
            elif kind == "dtype" and name in a:
                a[name] = np.zeros(a[name].shape, edit[2])
            elif kind == "shape" and name in a:
                a[name] = np.ones(tuple(edit[2]), a[name].dtype)
            elif kind == "nonfinite" and name in a and a[name].dtype.kind == "f" and a[name].size:
                a[name] = a[name].copy()
                a[name].flat[0] = edit[2]
            elif kind == "add":
                a[edit[1]] = np.zeros(2)
            elif kind == "step":
                a["step"] = np.array(edit[1], np.int64 if abs(edit[1]) >= 2 ** 31 else np.int32)
        return a
    return apply


def _raw(how):
    if how == "truncate":
        return lambda data: data[:len(data) // 3]
    if how == "garbage":
        return lambda data: data[:40] + bytes(range(200)) + data[240:]
    return None


@fuzz("checkpoints (edited, re-signed) read and restored", checkpoint_case, 250,
      refusal=(RunDirError, ConfigError))
def test_fuzz_checkpoints(case):
    body_edits, array_edits, raw = case
    run = os.path.join(TMP, "ck-edit")
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(_FINISHED[0], run)
    rewrite_checkpoint(run, arrays=_edit_arrays(array_edits), body=_edit_body(body_edits),
                       raw=_raw(raw))
    store = CheckpointStore(run)
    snap = store.read(store.steps()[0])  # RunDirError: refused as damaged or edited
    # accepted: it must restore as a resume restores it (a ConfigError names a misfit)
    like = _LIKE[0]
    state = state_from_arrays(snap.arrays, like)
    loop = Session(None, CheckpointPolicy(), resume=snap).restore(like)
    assert int(state.step) == snap.step == loop["state"].step
    assert all(isinstance(loop[k], (int, float)) for k in ("examples", "train_seconds"))
    from sgdlab.data.sampling import BatchPlan
    plan = BatchPlan(96, 16)  # the run's plan: 96 training rows, 6 steps per epoch
    plan.seek(**loop["position"])
    plan.take(2)  # the next batches are drawn from wherever the position says
    accepted("checkpoints (edited, re-signed) read and restored")


_FINISHED, _LIKE = [], []


@pytest.fixture(autouse=True, scope="module")
def _checkpoint_reference(finished_run):
    from sgdlab.engine.checkpoint import CheckpointStore as Store
    _FINISHED.append(finished_run)
    snap = Store(finished_run).latest()
    from sgdlab.engine.setup import setup_run
    config = TrainConfig.from_dict(snap.meta["config"])
    setup = setup_run(config, example_shape=(3,), n_classes=3, steps_per_epoch=6)
    _LIKE.append(setup.initial_state())
    yield


def test_fuzzed_checkpoints_that_pass_resume_for_real(finished_run, tmp_path):
    """End to end: a few edits that keep the checkpoint acceptable, resumed by fit."""
    for i, edit in enumerate([lambda b: b.update(examples=b["examples"] + 7),
                              lambda b: b.update(wall_seconds=1e6),
                              lambda b: b["history"].append({"step": 1, "note": "x"})]):
        run = shutil.copytree(finished_run, tmp_path / f"run{i}")
        rewrite_checkpoint(run, body=edit)
        result = sgdlab.fit(resume=run, epochs=3, plots=False)
        assert result.status == "completed" and result.steps == 18


# --------------------------------------------------------------------------- settings files

deep = st.integers(1, 700).map(lambda d: "[" * d + "1" + "]" * d)
big_number = st.integers(10, 6000).map(lambda n: "9" * n)
toml_value = st.one_of(deep, big_number, st.sampled_from(["nan", "inf", "-inf", "1e999", '""',
                                                          '"' + "x" * 5000 + '"', "[]",
                                                          "[" + ", ".join(["1"] * 3000) + "]",
                                                          "{a = {b = {c = {d = 1}}}}",
                                                          "0x10", "1_000", "true"]),
                       st.integers(-10 ** 6, 10 ** 6).map(str))
json_text_value = toml_value.map(lambda v: {"nan": "NaN", "inf": "Infinity",
                                            "-inf": "-Infinity", "true": "true"}.get(v, v))
SETTING = st.sampled_from(["epochs", "lr", "hidden", "seed", "batch_size", "max_time",
                           "channels", "target", "data", "sweep", "extra", "unknown"])
config_text = st.one_of(
    st.builds(lambda k, v: f"{k} = {v}\n", SETTING, toml_value).map(lambda t: ("toml", t)),
    st.builds(lambda k, v: f"[train]\n{k} = {v}\n", SETTING, toml_value).map(
        lambda t: ("toml", t)),
    st.builds(lambda k, v: json.dumps({k: 0}).replace("0", v), SETTING, json_text_value).map(
        lambda t: ("json", t)),
    st.builds(lambda d: "[" * d + "]" * d, st.integers(1, 100_000)).map(lambda t: ("json", t)),
)


@fuzz("settings files (TOML/JSON)", config_text, 300, refusal=ConfigError)
def test_fuzz_settings_files(case):
    kind, text = case
    path = _write(f"s.{kind}", text.encode())
    settings = read_config_file(path, extra_keys=("sweep",))
    settings.pop("data", None)
    settings.pop("sweep", None)
    TrainConfig.from_dict(settings)
    accepted("settings files (TOML/JSON)")


# ------------------------------------------------------------------------------ CSV headers

name = st.one_of(st.sampled_from(["a", "b", "y", "", " a ", "a ", '"a"', "1", "2.5", "é",
                                  "\ufeffa", "column_1", "x0", "x1", "a,b"]),
                 st.text(max_size=3))
csv_header = st.tuples(st.lists(name, min_size=1, max_size=5),
                       st.sampled_from([None, "y", "a", 0, -1]))


@fuzz("CSV headers (load and predict's matching)", csv_header, 400, refusal=DataError)
def test_fuzz_csv_headers(case):
    import csv
    header, label = case
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    for i in range(6):
        writer.writerow([str((i * (j + 3)) % 5) for j in range(len(header))])
    path = _write("h.csv", buf.getvalue().encode("utf-8"))
    names = None
    try:
        ds = load_csv(path, label_column=label)
        names = list(ds.feature_names)
        assert len(set(names)) == len(names), f"repeated feature names accepted: {names}"
        assert ds.X.shape == (ds.n, len(names))
        accepted("CSV headers (load and predict's matching)")
    except DataError:
        pass
    model_names = names or ["a", "b"]
    blocks = open_features(path, model_names, len(model_names), block_rows=4)
    rows = sum(len(b.X) for b in blocks)
    assert rows == 6
