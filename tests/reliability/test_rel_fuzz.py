"""Fuzzing the loaders and the config parser: every input is accepted or refused with a
documented error (:class:`sgdlab.SgdlabError`), never another exception or a hang.

Inputs come from Hypothesis: CSV text built from hostile cells (NaN, huge numbers, quotes,
NUL, non-UTF-8 bytes, ragged rows) and raw text; valid .npy/.npz/.parquet files (some holding
NaN or inf) with bytes flipped, cut or inserted; in-memory arrays of any dtype and shape;
config dicts of any value types; schedules, durations, hidden sizes (arbitrary Unicode text
and number-like text: signs, other scripts' digits, huge numbers, units) and TOML files. What
is accepted is checked too: loaded features and labels are finite, a duration is finite and
> 0, hidden sizes are whole numbers >= 1. The number of examples each test ran is printed in
the test summary.
"""

import io
import math
import os
import tempfile

import numpy as np
import pytest
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sgdlab import TrainConfig
from sgdlab.cli.common import read_config_file
from sgdlab.data import from_arrays, load_csv, load_npy, load_npz, load_parquet
from sgdlab._types import layer_widths
from sgdlab.engine.config_types import MAX_DIMENSION
from sgdlab.engine.schedule import EvalSchedule, parse_duration
from sgdlab.errors import ConfigError, SgdlabError

from fuzz_helpers import fuzz

TMP = tempfile.mkdtemp(prefix="sgdlab-fuzz-")
# NumPy warns about headers it has to re-parse (damaged ones look like Python 2 files).
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _write(name: str, data: bytes) -> str:
    path = os.path.join(TMP, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


# ---------------------------------------------------------------------------------- CSV

HOSTILE = ["", " ", "nan", "NaN", "inf", "-inf", "1e999", "-1e39", "abc", '"1,2"', '"',
           '""', "1_000", "0x10", "\u0661", "\x00", "caf\u00e9", "\t", "1 2", "+", "-",
           ".", "1e", "TRUE", "None", "\r", "\n", ",", "ー", "9" * 400]
cell = st.one_of(st.floats().map(repr), st.integers(-10 ** 40, 10 ** 40).map(str),
                 st.sampled_from(HOSTILE), st.text(max_size=4))
row = st.lists(cell, max_size=5).map(",".join)
csv_text = st.builds(lambda h, rows: "\n".join([h, *rows]),
                     st.one_of(st.just("a,b,y"), row), st.lists(row, max_size=8))
csv_bytes = st.one_of(csv_text.map(lambda t: t.encode("utf-8")), st.binary(max_size=120),
                      csv_text.map(lambda t: t.encode("utf-16")))
csv_case = st.tuples(csv_bytes, st.sampled_from([None, "y", 0, -1, "1", "zz", 9]),
                     st.sampled_from([None, "classification", "regression"]))


@fuzz("CSV loader", csv_case, 1000)
def test_fuzz_csv_loader(case):
    data, label, task = case
    ds = load_csv(_write("f.csv", data), label_column=label, task=task)
    assert ds.X.dtype == np.float32 and np.isfinite(ds.X).all() and len(ds.y) == ds.n


# ---------------------------------------------------------------------- binary formats


def _npy_bytes(arr) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def _npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _parquet_bytes(**columns) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq
    buf = io.BytesIO()
    columns = columns or {"a": [1.0, 2.0, 3.0, 4.0], "b": [1, 2, 3, 4],
                          "y": ["u", "v", "u", "v"]}
    pq.write_table(pa.table(columns), buf)
    return buf.getvalue()


def _with(a, at, value):
    a = a.copy()
    a[at] = value
    return a


_GRID = np.arange(24, dtype=np.float64).reshape(8, 3) % 3
#: Valid files, and valid files holding a NaN or an inf in the features or the labels (which
#: must be refused; a mutation may turn them into finite values, which must then load).
BASES = {
    "npy": _npy_bytes(_GRID),
    "npy_nonfinite": _npy_bytes(_with(_with(_GRID + 0.25, (2, 1), np.nan), (5, 2), np.inf)),
    "npz": _npz_bytes(X=np.ones((6, 2), np.float32), y=np.arange(6) % 2),
    "npz_nonfinite": _npz_bytes(X=_with(np.ones((6, 2), np.float32), (4, 0), -np.inf),
                                y=_with(np.arange(6) * 0.5, 3, np.nan)),
    "parquet": _parquet_bytes(),
    "parquet_nonfinite": _parquet_bytes(a=[1.0, np.nan, 3.0, 4.0], b=[1.0, 2.0, np.inf, 4.0],
                                        y=[0.5, 1.5, 2.5, None]),
}


def assert_loaded_finite(ds):
    """An accepted file gives finite float32 features and labels without NaN (finite, when
    they are real-valued), one label per row."""
    assert ds.X.dtype == np.float32 and ds.X.ndim == 2 and np.isfinite(ds.X).all()
    assert ds.y.shape == (ds.n,) and ds.n > 0
    if ds.y.dtype.kind == "f":
        assert np.isfinite(ds.y).all()
    else:
        assert ds.y.dtype.kind in "iu" and (ds.y >= 0).all()


@pytest.mark.parametrize("name,load", [("npy_nonfinite", load_npy),
                                       ("npz_nonfinite", load_npz),
                                       ("parquet_nonfinite", load_parquet)])
def test_files_with_nan_or_inf_are_refused(name, load):
    with pytest.raises(SgdlabError, match="NaN|inf|finite|missing"):
        load(_write("f." + name.split("_")[0], BASES[name]))


def mutated(base: bytes):
    """A valid file with some bytes flipped, a cut, or an insertion."""
    n = len(base)
    flips = st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, 255)), max_size=6)
    return st.one_of(
        flips.map(lambda fs: bytes(_flip(base, fs))),
        st.integers(0, n).map(lambda k: base[:k]),
        st.tuples(st.integers(0, n), st.binary(min_size=1, max_size=16)).map(
            lambda t: base[:t[0]] + t[1] + base[t[0]:]),
    )


def _flip(base, flips):
    out = bytearray(base)
    for i, v in flips:
        out[i] = v
    return out


def _mutated(kind):
    return st.one_of(mutated(BASES[kind]), mutated(BASES[kind + "_nonfinite"]))


@fuzz(".npy loader", _mutated("npy"), 500)
def test_fuzz_npy_loader(data):
    assert_loaded_finite(load_npy(_write("f.npy", data)))


@fuzz(".npz loader", _mutated("npz"), 500)
def test_fuzz_npz_loader(data):
    assert_loaded_finite(load_npz(_write("f.npz", data)))


@fuzz("Parquet loader", _mutated("parquet"), 200)
def test_fuzz_parquet_loader(data):
    assert_loaded_finite(load_parquet(_write("f.parquet", data)))


# ------------------------------------------------------------------------ in-memory arrays

dtypes = st.one_of(hnp.floating_dtypes(), hnp.integer_dtypes(), hnp.boolean_dtypes(),
                   hnp.complex_number_dtypes(), st.just(np.dtype(object)),
                   hnp.unicode_string_dtypes(max_len=3))
shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)
arrays = st.one_of(hnp.arrays(dtypes, shapes),
                   st.lists(st.lists(st.one_of(st.floats(), st.integers(), st.text(max_size=2),
                                               st.none()), max_size=3), max_size=4))


@fuzz("from_arrays", st.tuples(arrays, arrays, st.sampled_from([None, "classification",
                                                                "regression"])), 800)
def test_fuzz_from_arrays(case):
    X, y, task = case
    ds = from_arrays(X, y, task=task)
    assert ds.X.shape[0] == len(ds.y) > 0 and np.isfinite(ds.X).all()


# ------------------------------------------------------------------------ config parsing

FIELDS = [f for f in TrainConfig.__dataclass_fields__]
values = st.one_of(st.none(), st.booleans(), st.integers(-10 ** 20, 10 ** 20), st.floats(),
                   st.text(max_size=8), st.sampled_from(["1 epoch", "10 steps", "2s", "adam",
                                                         "shuffle", "mlp", "64,32", "cosine"]),
                   st.lists(st.integers(-3, 300), max_size=3), st.dictionaries(
                       st.text(max_size=3), st.integers(), max_size=2))
config_dicts = st.dictionaries(st.one_of(st.sampled_from(FIELDS), st.text(max_size=6)),
                               values, max_size=6)


@fuzz("TrainConfig.from_dict", config_dicts, 1000)
def test_fuzz_train_config(d):
    cfg = TrainConfig.from_dict(d)
    cfg.eval_schedule  # an accepted config is usable
    assert cfg.batch_size >= 1 and cfg.lr > 0


schedule_text = st.one_of(
    st.text(max_size=20),
    st.lists(st.builds("{}{}{}".format, st.one_of(st.floats().map(repr),
                                                  st.integers(-5, 10 ** 30).map(str),
                                                  st.sampled_from(["1e999", ".5", "0", "nan"])),
                       st.sampled_from(["", " "]),
                       st.sampled_from(["", "s", "steps", "epoch", "min", "h", "x", "e"])),
             max_size=3).map(", ".join))


@fuzz("EvalSchedule.parse", schedule_text, 800)
def test_fuzz_schedule(text):
    s = EvalSchedule.parse(text)
    for v in (s.every_steps, s.every_seconds, s.every_epochs):
        assert v is None or (v > 0 and math.isfinite(v))


def only_config_errors(parse, text):
    """``parse(text)``, or None when it refuses with a :class:`ConfigError`; any other
    exception (another error kind included) fails the test."""
    try:
        return parse(text)
    except SgdlabError as e:
        assert isinstance(e, ConfigError), (text, e)
        return None


#: Number-like text: signs, other scripts' digits, huge and tiny numbers, spaces, units.
digits_any = st.text(st.characters(categories=["Nd"]), min_size=1, max_size=4)
number_text = st.one_of(st.floats().map(repr), st.integers(-10 ** 30, 10 ** 400).map(str),
                        digits_any, st.sampled_from(["1e999", "1e-400", "5e-324", ".5", "5.",
                                                     "0", "nan", "inf", "1_000", "0x10",
                                                     "\u0661\u0662", "\u00b2", "1e\u0663"]))
sign = st.sampled_from(["", "", "+", "-", " ", "\u2212"])
space = st.sampled_from(["", " ", "\t", "\n", "\u00a0"])
unit = st.one_of(st.sampled_from(["", "s", "S", "sec", "seconds", "m", "min", "MIN", "h",
                                  "hours", "ms", "d", "steps", "epoch", "\u00b5s", "x"]),
                 st.text(max_size=3))
#: ... and well-formed durations (any size, any unit's case), so that many are accepted
plain_number = st.one_of(st.floats(min_value=0, allow_nan=False).map(repr),
                         st.integers(0, 10 ** 400).map(str))
known_unit = st.sampled_from(["", "s", "sec", "secs", "second", "seconds", "m", "min", "mins",
                              "minute", "minutes", "h", "hour", "hours"]).flatmap(
    lambda u: st.sampled_from([u, u.upper(), u.title()]))
duration_text = st.one_of(st.text(max_size=24),
                          st.builds("{}{}{}{}{}".format, sign, number_text, space, unit, space),
                          st.builds("{}{}{}{}{}".format, space, plain_number, space, known_unit,
                                    space))


@fuzz("parse_duration", duration_text, 800)
def test_fuzz_parse_duration(text):
    d = only_config_errors(parse_duration, text)
    if d is None:
        return
    assert isinstance(d, float) and math.isfinite(d) and d > 0, (text, d)
    assert parse_duration(repr(d)) == d  # a plain number of seconds reads back
    assert TrainConfig(max_time=text).max_time == d


hidden_part = st.one_of(st.integers(-5, 10 ** 30).map(str), digits_any,
                        st.builds("{}{}{}{}".format, sign, number_text, space, unit),
                        st.sampled_from(["+3", " 7 ", "1_0", "0x10", "1e3", "2.0", "",
                                         "\u0661\u0662", "-0", "\uff17"]))
hidden_text = st.one_of(st.text(max_size=24), st.lists(hidden_part, max_size=4).map(",".join))


def parse_hidden(text):
    return layer_widths(text, "hidden sizes", empty=False)


@fuzz("layer_widths", hidden_text, 800)
def test_fuzz_parse_hidden(text):
    sizes = only_config_errors(parse_hidden, text)
    if sizes is None:
        assert only_config_errors(lambda t: TrainConfig(model="mlp", hidden=t), text) is None
        return
    assert isinstance(sizes, tuple) and sizes, (text, sizes)
    assert all(type(h) is int and h >= 1 for h in sizes), (text, sizes)
    assert parse_hidden(",".join(map(str, sizes))) == sizes
    cfg = only_config_errors(lambda t: TrainConfig(model="mlp", hidden=t), text)
    assert cfg is None or cfg.hidden == sizes
    if max(sizes) <= MAX_DIMENSION:  # within the limit: the config takes it as parsed
        assert cfg is not None and cfg.hidden == sizes


def test_npz_with_a_damaged_name_flag_is_refused():
    """Found by the .npz fuzzer: bytes 7 (flags: 0x08, bit 11 = UTF-8 names) and 30 (the
    member name's first byte: 0x80) of a valid archive changed."""
    data = bytes(_flip(BASES["npz"], [(7, 8), (30, 128)]))
    with pytest.raises(SgdlabError):
        load_npz(_write("f.npz", data))


def test_hidden_sizes_as_text_above_the_limit_are_refused():
    with pytest.raises(ConfigError, match="hidden"):
        TrainConfig(model="mlp", hidden=(MAX_DIMENSION + 1,))  # refused as a tuple ...
    with pytest.raises(ConfigError, match="hidden"):
        TrainConfig(model="mlp", hidden=str(MAX_DIMENSION + 1))  # ... but not as text


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_parse_duration_refuses_non_finite_numbers(value):
    with pytest.raises(ConfigError):
        parse_duration(value)


toml_values = st.one_of(st.integers(-10 ** 6, 10 ** 6).map(str), st.floats().map(
    lambda f: repr(f) if np.isfinite(f) else "nan"), st.sampled_from(
    ['"mlp"', '"1 epoch"', "true", "[16, 8]", '"x"', "{a = 1}", "[]", '"64,32"', "inf"]))
toml_line = st.builds("{} = {}".format, st.one_of(st.sampled_from(FIELDS + ["data", "train"]),
                                                  st.text("abc_-", min_size=1, max_size=5)),
                      toml_values)
toml_text = st.one_of(
    st.lists(toml_line, max_size=6).map(lambda ls: "\n".join(ls)),
    st.lists(toml_line, max_size=6).map(lambda ls: "[train]\n" + "\n".join(ls)),
    st.text(max_size=60))


@fuzz("TOML config reader + TrainConfig", toml_text, 400)
def test_fuzz_toml_config(text):
    path = _write("c.toml", text.encode("utf-8", "surrogatepass"))
    settings_ = read_config_file(path)
    settings_.pop("data", None)
    TrainConfig.from_dict(settings_)
