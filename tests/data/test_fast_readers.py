"""The fast text readers (pyarrow.csv, the vectorised LibSVM tokenizer) give exactly what the
per-cell parsers give: the same arrays, or the same located message. Clean files never reach
the per-cell parsers.

Each differential test parses a generated file twice, once as shipped and once with
``readers.USE_FAST_READERS = False`` (every cell in Python, the reference), and compares.
"""

from __future__ import annotations

import contextlib
import os
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sgdlab.data import convert, load_csv, load_data, readers
from sgdlab.data.formats import FORMATS
from sgdlab.data.libsvm import load_libsvm, open_libsvm
from sgdlab.data.shards import ShardSet
from sgdlab.data.text import open_csv
from sgdlab.errors import ConfigError, DataError, SgdlabError

TMP = tempfile.mkdtemp(prefix="sgdlab-fast-readers-")
FUZZ = settings(max_examples=400, deadline=None, database=None, derandomize=True,
                suppress_health_check=list(HealthCheck))


@contextlib.contextmanager
def slow_only():
    old = readers.USE_FAST_READERS
    readers.USE_FAST_READERS = False
    try:
        yield
    finally:
        readers.USE_FAST_READERS = old


def outcome(fn):
    """``("ok", value)`` or ``("error", type, message)``."""
    try:
        return ("ok", fn())
    except SgdlabError as e:
        return ("error", type(e).__name__, str(e))


def dataset_key(ds):
    return (ds.X.dtype.str, ds.X.shape, ds.X.tobytes(), ds.y.dtype.str, ds.y.tobytes(), ds.task,
            ds.classes, ds.feature_names, ds.name)


def same_both_ways(fn, key=lambda v: v):
    fast = outcome(fn)
    with slow_only():
        slow = outcome(fn)
    if fast[0] == "ok" and slow[0] == "ok":
        assert key(fast[1]) == key(slow[1])
    else:
        assert fast == slow
    return fast


def _write(name: str, data: bytes) -> str:
    path = os.path.join(TMP, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


# -- CSV -------------------------------------------------------------------------------------

HOSTILE = ["", " ", "nan", "NaN", "inf", "-inf", "1e999", "-1e39", "1e300", "abc", '"1,2"',
           '"', '""', '"3"', '" 4 "', '"5"x', "1_000", "0x10", "\u0661", "\x00", "caf\u00e9",
           "\t", "1 2", " 7 ", "+", "-", ".", "1e", "+.5", "1.", "TRUE", "None", "\r", "\n",
           "\r\n", ",", ";", "9" * 400, "4294967296", "-0", "007", "1E5", "Infinity", "\x0c"]
number = st.one_of(st.floats(allow_nan=False, allow_infinity=False, width=32).map(repr),
                   st.integers(-10 ** 6, 10 ** 6).map(str))
cell = st.one_of(number, number, number, st.sampled_from(HOSTILE), st.text(max_size=3))
label = st.one_of(st.sampled_from(["0", "1", "2", " 1", "cat", "dog", "", "nan", "1.5", "-3",
                                   "x y", '"a,b"', "1e400"]), number)


def rare(draw, common, hostile, one_in: int):
    """A draw from ``common``, or one time in ``one_in`` from ``hostile``."""
    return draw(hostile if draw(st.integers(1, one_in)) == 1 else common)


@st.composite
def csv_files(draw):
    """Mostly clean files (numbers, a label), some with one or two hostile cells or lines."""
    width = draw(st.integers(2, 4))
    sep = draw(st.sampled_from([",", ",", ";", "\t"]))
    header = rare(draw, st.just(sep.join([f"f{j}" for j in range(width - 1)] + ["y"])),
                  st.lists(cell, min_size=1, max_size=5).map(sep.join), 8)
    odd = draw(st.sampled_from([10, 40, 200]))  # how rare a hostile cell is, in this file
    rows = []
    for _ in range(draw(st.integers(0, 12))):
        if draw(st.integers(1, odd)) == 1:  # a blank, ragged or free-form line
            rows.append(draw(st.sampled_from(["", " ", "\t", ",,", "1,2,3,4,5", '""'])))
            continue
        cells = [rare(draw, number, cell, odd) for _ in range(width - 1)]
        rows.append(sep.join(cells + [rare(draw, st.sampled_from(["0", "1", "2"]), label, odd)]))
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    lead = draw(st.sampled_from(["", "\ufeff", "\n", "\n\n", "\ufeff\n"]))
    text = lead + header + newline + newline.join(rows) + draw(st.sampled_from(["", newline]))
    return (text.encode("utf-8") if draw(st.integers(0, 19)) else text.encode("utf-16")), sep


@FUZZ
@given(csv_files(), st.sampled_from([None, "y", 0, "1"]),
       st.sampled_from([None, "classification", "regression"]))
def test_csv_load_is_the_same_fast_or_slow(file, label_column, task):
    data, sep = file
    path = _write("d.csv", data)
    same_both_ways(lambda: load_csv(path, label_column=label_column, task=task, delimiter=sep),
                   dataset_key)


def chunk_key(source_fn):
    src = source_fn()
    out = []
    for X, labels, where in src.chunks():
        out.append((X.tobytes(), X.shape, list(labels), [where(i) for i in range(len(labels))]))
    return src.names, src.label_name, out


@FUZZ
@given(csv_files(), st.sampled_from([None, "y", 0]))
def test_csv_convert_chunks_are_the_same_fast_or_slow(file, label_column):
    """Chunks of 1-3 rows, so that the fast reader stops mid-file, and the slow one goes on."""
    data, sep = file
    path = _write("c.csv", data)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(readers, "CHUNK_BYTES", 3 * readers.CSV_CELL_BYTES)
        same_both_ways(lambda: chunk_key(lambda: open_csv(path, label_column, sep)))


def test_a_clean_csv_is_parsed_by_pyarrow_only(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3000, 7)).astype(np.float32)
    y = rng.integers(0, 3, 3000)
    lines = ["a,b,c,d,e,f,g,label"] + [",".join(repr(float(v)) for v in row) + f",{t}"
                                       for row, t in zip(X, y)]
    p = tmp_path / "clean.csv"
    p.write_text("\n".join(lines) + "\n")
    t = tmp_path / "clean.tsv"
    t.write_text("\n".join(line.replace(",", "\t") for line in lines) + "\n")
    before = readers.SLOW_PATH_RUNS.copy()
    ds = load_csv(p)
    tsv = load_data(str(t))
    shards = ShardSet(convert(p, tmp_path / "sh", block_rows=500))
    assert readers.SLOW_PATH_RUNS == before  # the per-cell parser never ran
    assert ds.X.tobytes() == X.tobytes() and ds.y.tolist() == y.tolist()
    assert tsv.X.tobytes() == X.tobytes()
    Xs, ys = shards.read_all()
    assert Xs.tobytes() == X.tobytes() and ys.tolist() == y.tolist()
    # one bad cell: the per-cell parser runs once and names it, as before
    lines[2001] = lines[2001].replace(lines[2001].split(",")[3], "oops", 1)
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"clean\.csv, line 2002, column 'd': 'oops' is not a "
                                        r"number"):
        load_csv(p)
    assert readers.SLOW_PATH_RUNS["csv"] == before["csv"] + 1


def test_text_labels_and_spaces_stay_as_the_slow_parser_reads_them(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text('a, b ,y\n 1 , 2 , cat \n3,"4", dog\n"5",6,"cat"\n')
    before = readers.SLOW_PATH_RUNS.copy()
    ds = load_csv(p)
    assert readers.SLOW_PATH_RUNS == before
    assert ds.feature_names == ("a", "b") and ds.classes == ("cat", "dog")
    assert ds.y.tolist() == [0, 1, 0] and ds.X.tolist() == [[1, 2], [3, 4], [5, 6]]


# -- LibSVM ----------------------------------------------------------------------------------

TOKENS = ["1:2", "2:0.5", "3:-1e-3", "4:+7", "10:1.5", "1:1", "0:3", "-1:2", "qid:4", "a:b",
          "3:x", "2:", ":2", "1:2:3", "2:nan", "3:inf", "4:1e999", "5:1e300", "2:1_0", "007:1",
          "+2:1", "1e2:1", "1.0:1", "\u0661:1", "2:\u0661", "#", "# c 1:2", "999999999999:1",
          "3:1", "3:2"]
svm_label = st.sampled_from(["1", "0", "-1", "+1", "2.5", "cat", "1:2", "3"])


@st.composite
def svm_files(draw):
    odd = draw(st.sampled_from([4, 20, 200]))
    lines = []
    for _ in range(draw(st.integers(0, 10))):
        if draw(st.integers(1, odd)) == 1:
            lines.append(draw(st.sampled_from(["", " ", "\t", "# only a comment"])))
            continue
        idx = sorted(draw(st.lists(st.integers(1, 9), max_size=5, unique=True)))
        toks = [f"{j}:{draw(number)}" for j in idx]
        if draw(st.integers(1, odd)) == 1:
            toks.insert(draw(st.integers(0, len(toks))), draw(st.sampled_from(TOKENS)))
        sep = draw(st.sampled_from([" ", "  ", "\t"]))
        lines.append(rare(draw, st.sampled_from(["1", "0", "-1", "+1"]), svm_label, odd)
                     + sep + sep.join(toks))
    newline = draw(st.sampled_from(["\n", "\n", "\r\n", "\r"]))
    text = newline.join(lines) + draw(st.sampled_from(["", newline]))
    data = text.encode("utf-8")
    if draw(st.integers(0, 19)) == 0:
        data += b"1 1:\xe9\n"
    return data


@FUZZ
@given(svm_files(), st.sampled_from([None, 9, 12]), st.booleans(),
       st.sampled_from([None, "classification", "regression"]), st.sampled_from([7, 64, 4096]))
def test_libsvm_is_the_same_fast_or_slow(data, n_features, zero_based, task, block):
    """Loading and the convert chunks; small blocks, so that one file mixes both parsers."""
    path = _write("d.svm", data)
    with pytest.MonkeyPatch.context() as mp:
        from sgdlab.data import libsvm
        mp.setattr(libsvm, "BLOCK_BYTES", block)
        mp.setattr(readers, "CHUNK_BYTES", 3 * 8 * 12)
        same_both_ways(lambda: load_libsvm(path, n_features=n_features, zero_based=zero_based,
                                           task=task), dataset_key)

        def chunks():
            src = open_libsvm(path, n_features=n_features, zero_based=zero_based)
            n = sum(len(labels) for labels, _ in src.scan())
            if n == 0:
                return None
            src.finish_scan(n)
            return chunk_key(lambda: src)

        same_both_ways(chunks)


def test_a_clean_libsvm_file_is_tokenised_vectorised(tmp_path, monkeypatch):
    from sgdlab.data import libsvm
    monkeypatch.setattr(libsvm, "BLOCK_BYTES", 1000)  # many blocks
    rng = np.random.default_rng(1)
    X = np.where(rng.random((500, 9)) < 0.5, rng.standard_normal((500, 9)), 0)
    X = X.astype(np.float32)
    y = rng.integers(-1, 2, 500)
    p = tmp_path / "a.svm"
    p.write_text("".join(f"{t:+d} " + " ".join(f"{j + 1}:{float(v)!r}" for j, v in
                                                enumerate(row) if v) + "\r\n"
                         for row, t in zip(X, y)))
    before = readers.SLOW_PATH_RUNS.copy()
    ds = load_data(str(p))
    shards = ShardSet(convert(p, tmp_path / "sh", block_rows=64))
    assert readers.SLOW_PATH_RUNS == before
    width = int(np.flatnonzero(X.any(axis=0)).max()) + 1
    np.testing.assert_array_equal(ds.X, X[:, :width])
    assert ds.classes == (-1, 0, 1) and ds.y.tolist() == (y + 1).tolist()
    Xs, ys = shards.read_all()
    assert Xs.tobytes() == ds.X.tobytes() and ys.tobytes() == ds.y.tobytes()
    assert shards.classes == ds.classes and shards.feature_names == ds.feature_names


# -- the registry ----------------------------------------------------------------------------

def test_every_format_loads_and_opens_with_the_same_options():
    import inspect
    seen = set()
    for name, fmt in FORMATS.items():
        assert fmt.name == name and fmt.extensions and fmt.description
        load = set(inspect.signature(fmt.load).parameters) - {"path", "task"}
        opened = set(inspect.signature(fmt.open).parameters) - {"path"}
        assert load == opened == set(fmt.options), name
        assert set(fmt.defaults) <= load
        assert fmt.layout in ("columns", "table", "xy")
        assert (fmt.layout == "columns") == ("label_column" in load) == (fmt.columns is not None)
        assert not seen & set(fmt.extensions)
        seen |= set(fmt.extensions)


def test_libsvm_options_and_refusals(tmp_path):
    p = tmp_path / "a.libsvm"
    p.write_text("1 1:2 3:1\n0 0:5\n")
    with pytest.raises(DataError, match=r"a\.libsvm, line 2, token '0:5': index 0 is below 1"):
        load_data(str(p))
    ds = load_data(str(p), zero_based=True)
    assert ds.X.tolist() == [[0, 2, 0, 1], [5, 0, 0, 0]] and ds.feature_names[-1] == "x3"
    assert load_data(str(p), zero_based=True, n_features=6).d == 6
    with pytest.raises(DataError, match=r"token '3:1': index 3 is beyond the 3 features given "
                                        r"with n_features; pass a larger n_features"):
        load_data(str(p), zero_based=True, n_features=3)
    with pytest.raises(ConfigError, match=r"label_column does not apply to \.libsvm files "
                                          r"\(the label comes first on each line\)"):
        load_data(str(p), label_column=0)
    with pytest.raises(ConfigError, match=r"option 'delimiter' does not apply to \.libsvm "
                                          r"files; valid options: n_features, zero_based"):
        load_data(str(p), delimiter=",")
    with pytest.raises(ConfigError, match="n_features must be a whole number >= 1"):
        load_data(str(p), n_features=0)
    (tmp_path / "e.svm").write_text("\n# nothing\n")
    with pytest.raises(DataError, match=r"e\.svm: has no data rows"):
        load_data(str(tmp_path / "e.svm"))
    (tmp_path / "z.svm").write_text("1\n0 qid:2\n")
    with pytest.raises(DataError, match=r"z\.svm: no line has a feature: 2 line\(s\) .*pass "
                                        r"n_features=N"):
        load_data(str(tmp_path / "z.svm"))
    (tmp_path / "big.svm").write_text("1 1:2\n0 2:1e300 1:nan\n")
    with pytest.raises(DataError, match=r"big\.svm, line 2, column 'x0': value is NaN"):
        load_data(str(tmp_path / "big.svm"))
    (tmp_path / "t.svm").write_text("cat 1:2 # a comment\ndog qid:1 2:1\n")
    ds = load_data(str(tmp_path / "t.svm"))
    assert ds.classes == ("cat", "dog") and ds.X.tolist() == [[2, 0], [0, 1]]
    with pytest.raises(DataError, match=r"t\.svm, line 1, column 'label': label 'cat' is not a "
                                        "number"):
        load_data(str(tmp_path / "t.svm"), task="regression")
