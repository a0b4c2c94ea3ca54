"""``data convert`` never deletes or overwrites what the user owns before the new shard set is
complete: it builds it beside OUT and swaps it in; ``--overwrite`` replaces only a shard set."""

import errno
import importlib
import os

import numpy as np
import pytest
from stream_helpers import blobs, write_csv

from sgdlab.cli.main import main
from sgdlab.data.convert import convert, write_shards
from sgdlab.data.shards import ShardSet
from sgdlab.errors import DataError

# (``sgdlab.data.convert`` the attribute is the function; the module is needed for patching)
convert_module = importlib.import_module("sgdlab.data.convert")


def snapshot(root):
    """Every entry under ``root`` (hidden ones too): file bytes, or the link target."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            if os.path.islink(p):
                out[rel] = ("link", os.readlink(p))
            elif os.path.isdir(p):
                out[rel] = ("dir",)
            else:
                with open(p, "rb") as fh:
                    out[rel] = ("file", fh.read())
    return out


@pytest.fixture
def work(tmp_path):
    """A folder with a good CSV, a CSV with a bad cell, and a shard set ``sh`` of the first."""
    X, y = blobs(n=120, d=3)
    good = write_csv(tmp_path / "good.csv", X, y)
    (tmp_path / "bad.csv").write_text("a,b,label\n1,2,0\n3,zz,1\n")
    convert(good, tmp_path / "sh", block_rows=16, shard_blocks=2)
    return tmp_path


def test_bad_input_with_overwrite_leaves_the_shard_set_and_no_leftovers(work):
    before = snapshot(work)
    with pytest.raises(DataError, match=r"bad.csv, line 3, column 'b': 'zz' is not a number"):
        convert(work / "bad.csv", work / "sh", overwrite=True)
    assert snapshot(work) == before  # nothing changed, no temporary directory left behind


def test_failure_while_writing_leaves_the_old_shard_set(work, monkeypatch):
    """The label 'emu' is only met in the write pass, in the second input chunk (4,096 rows),
    after the first chunk's shards were written to the temporary directory."""
    X = np.zeros((5000, 2))
    labels = ["cat", "dog"] * 2499 + ["dog", "emu"]
    src = write_csv(work / "late.csv", X, labels)
    started = []
    real = convert_module._ShardWriter._start_shard
    monkeypatch.setattr(convert_module._ShardWriter, "_start_shard",
                        lambda self: (started.append(self.out), real(self)))
    before = snapshot(work)
    with pytest.raises(DataError, match=r"late.csv, line 5001, column 'label': label 'emu'"):
        convert(src, work / "sh", classes=["cat", "dog"], block_rows=64, shard_blocks=4,
                overwrite=True)
    assert len(started) == 16  # 4,096 rows in shards of 256 rows were written, then removed
    assert started[0].parent == work and started[0].name.startswith(".sh.")
    assert snapshot(work) == before


def test_input_inside_the_output_is_refused_and_kept(work):
    inside = work / "sh" / "in.csv"
    inside.write_bytes((work / "good.csv").read_bytes())
    before = snapshot(work)
    for overwrite in (True, False):
        with pytest.raises(DataError, match=r"sh: holds the input file .*in.csv; write the "
                                            r"shard set to a directory outside"):
            convert(inside, work / "sh", overwrite=overwrite)
    assert snapshot(work) == before


def test_overwrite_refuses_a_folder_that_is_not_a_shard_set(work):
    mine = work / "mine"
    (mine / "sub").mkdir(parents=True)
    (mine / "notes.txt").write_text("keep me")
    (mine / "sub" / "data.bin").write_bytes(b"\x00\x01")
    before = snapshot(work)
    with pytest.raises(DataError, match=r"mine: exists and is not empty, and is not a shard set "
                                        r"\(no manifest.json\); --overwrite replaces only a "
                                        r"shard set"):
        convert(work / "good.csv", mine, overwrite=True)
    assert snapshot(work) == before


def test_overwrite_refuses_a_shard_set_holding_other_files(work):
    (work / "sh" / "README.txt").write_text("my notes")
    (work / "sh" / "old").mkdir()
    before = snapshot(work)
    with pytest.raises(DataError, match=r"a shard set that also holds README.txt, old; "
                                        r"--overwrite replaces only a shard set's own files"):
        convert(work / "good.csv", work / "sh", overwrite=True)
    assert snapshot(work) == before


def test_a_file_or_a_symlink_as_output_is_refused(work):
    (work / "out.txt").write_text("a file")
    os.symlink(work / "sh", work / "link")
    before = snapshot(work)
    for overwrite in (True, False):
        with pytest.raises(DataError, match="out.txt: exists and is a file, not a directory"):
            convert(work / "good.csv", work / "out.txt", overwrite=overwrite)
        with pytest.raises(DataError, match=r"link: is a symbolic link \(to .*sh\); give the "
                                            "directory itself"):
            convert(work / "good.csv", work / "link", overwrite=overwrite)
    assert snapshot(work) == before


def test_without_overwrite_a_shard_set_is_kept(work):
    before = snapshot(work)
    with pytest.raises(DataError, match=r"sh: exists and is not empty: it holds a shard set; "
                                        r"pass --overwrite"):
        convert(work / "good.csv", work / "sh")
    assert snapshot(work) == before


def test_overwrite_replaces_a_shard_set_completely(work):
    X, y = blobs(n=50, d=2, seed=3)
    src = write_csv(work / "other.csv", X, y)
    old_files = set(os.listdir(work / "sh"))
    assert len([f for f in old_files if f.startswith("X-")]) == 4  # 120 rows, 32 per shard
    out = convert(src, work / "sh", block_rows=10, overwrite=True)
    shards = ShardSet(out)
    Xs, ys = shards.read_all()
    np.testing.assert_array_equal(Xs, X)
    np.testing.assert_array_equal(ys, y)
    assert sorted(os.listdir(work / "sh")) == ["X-00000.npy", "manifest.json", "stats.npy",
                                               "y-00000.npy"]
    assert not [f for f in os.listdir(work) if f.startswith(".")]  # no .tmp or .old left
    shards.verify()


def test_an_empty_directory_is_filled_and_missing_parents_are_made(work):
    (work / "empty").mkdir()
    convert(work / "good.csv", work / "empty")
    assert ShardSet(work / "empty").n == 120
    convert(work / "good.csv", work / "a" / "b" / "c")
    assert ShardSet(work / "a" / "b" / "c").n == 120


def test_parents_made_for_a_failed_conversion_are_removed(work):
    before = snapshot(work)
    with pytest.raises(DataError, match="is not a number"):
        convert(work / "bad.csv", work / "new" / "deeper" / "out")
    assert snapshot(work) == before


def test_disk_full_while_writing_is_one_error_and_changes_nothing(work, monkeypatch):
    calls = {"n": 0}
    real = convert_module._HashingFile.write

    def full(self, data):
        calls["n"] += 1
        if calls["n"] > 3:
            raise OSError(errno.ENOSPC, "No space left on device", "X-00001.npy")
        return real(self, data)

    monkeypatch.setattr(convert_module._HashingFile, "write", full)
    before = snapshot(work)
    with pytest.raises(DataError, match=r"X-00001.npy: No space left on device; the conversion "
                                        r"stopped and .*sh was left as it was: free some space"):
        convert(work / "good.csv", work / "sh", block_rows=16, shard_blocks=2, overwrite=True)
    assert calls["n"] > 3
    assert snapshot(work) == before


def test_a_failed_swap_puts_the_old_shard_set_back(work, monkeypatch):
    """If moving the new set into place fails, the old one (already renamed aside) returns."""
    real = os.rename
    seen = []

    def rename(a, b):
        seen.append((str(a), str(b)))
        if len(seen) == 2:  # 1: old set aside, 2: new set into place
            raise OSError(errno.EIO, "Input/output error", str(a))
        return real(a, b)

    monkeypatch.setattr(os, "rename", rename)
    before = snapshot(work)
    with pytest.raises(DataError, match=r"Input/output error; the conversion stopped"):
        convert(work / "good.csv", work / "sh", overwrite=True)
    assert len(seen) == 3 and seen[2] == (seen[0][1], seen[0][0])  # 3: old set back
    assert snapshot(work) == before


def test_write_shards_follows_the_same_rules(work):
    X, y = blobs(n=40, d=2)
    with pytest.raises(DataError, match="holds a shard set; pass --overwrite"):
        write_shards(work / "sh", [(X, y.astype(np.int32))], 40, 2)
    write_shards(work / "sh", [(X, y.astype(np.int32))], 40, 2, overwrite=True)
    assert ShardSet(work / "sh").n == 40
    with pytest.raises(DataError, match="1 rows were written but 2 were announced"):
        write_shards(work / "w2", [(X[:1], y[:1].astype(np.int32))], 2, 2)
    assert not (work / "w2").exists()


@pytest.mark.parametrize("case, expected", [
    ("into-shards", "exists and is not empty: it holds a shard set; pass --overwrite"),
    ("bad-overwrite", "bad.csv, line 3, column 'b'"),
    ("input-inside", "holds the input file"),
    ("folder", "is not a shard set (no manifest.json)"),
])
def test_cli_refusals_are_one_message_and_exit_2(work, capsys, case, expected):
    (work / "sh" / "in.csv").write_bytes((work / "good.csv").read_bytes()) \
        if case == "input-inside" else None
    (work / "folder").mkdir()
    (work / "folder" / "keep.txt").write_text("x")
    args = {"into-shards": [str(work / "good.csv"), str(work / "sh")],
            "bad-overwrite": [str(work / "bad.csv"), str(work / "sh"), "--overwrite"],
            "input-inside": [str(work / "sh" / "in.csv"), str(work / "sh"), "--overwrite"],
            "folder": [str(work / "good.csv"), str(work / "folder"), "--overwrite"]}[case]
    before = snapshot(work)
    capsys.readouterr()
    assert main(["data", "convert", *args, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert snapshot(work) == before
