"""Sizes read from a data file are checked against the file and the memory available before
anything is allocated, and damaged compressed data is refused: one DataError naming the file,
never a MemoryError, a traceback or training on damaged values."""

import gzip
import io
import struct
import zipfile

import numpy as np
import pytest

from sgdlab.data import hostmem, load_data, load_npy, load_npz
from sgdlab.data.arrays import read_npz_arrays
from sgdlab.data.convert import convert
from sgdlab.errors import DataError

from test_nd_data import idx_bytes, write_mnist


def idx_header(shape, code=0x08) -> bytes:
    return bytes([0, 0, code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)


@pytest.fixture
def little_memory(monkeypatch):
    """A machine with ``n`` bytes available: ``little_memory(n)``."""
    def set_(n):
        monkeypatch.setattr(hostmem, "available_memory", lambda: n)
    return set_


# -- IDX ------------------------------------------------------------------------------------

def test_an_idx_header_claiming_2_31_images_is_refused_before_reading(tmp_path):
    (tmp_path / "big-images-idx3-ubyte").write_bytes(idx_header((2 ** 31, 28, 28)) + bytes(100))
    (tmp_path / "big-labels-idx1-ubyte").write_bytes(idx_header((2 ** 31,)) + bytes(100))
    with pytest.raises(DataError, match=r"big-images-idx3-ubyte: truncated: its header declares "
                                        r"2,147,483,648 x 28 x 28 values of uint8 "
                                        r"\(1,683,627,180,032 bytes\) but only 100 bytes follow"):
        load_data(str(tmp_path / "big-images-idx3-ubyte"))


def test_a_gzip_idx_file_cannot_declare_more_than_deflate_can_hold(tmp_path):
    (tmp_path / "big-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(idx_header((2 ** 31, 28, 28)) + bytes(100)))
    (tmp_path / "big-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_header((2 ** 31,))))
    with pytest.raises(DataError, match=r"big-images-idx3-ubyte\.gz: its header declares "
                                        r"2,147,483,648 x 28 x 28 values of uint8 .* more than a "
                                        r"gzip file of \d+ bytes can hold \(deflate compresses "
                                        r"at most 1032:1\)"):
        load_data(str(tmp_path / "big-images-idx3-ubyte.gz"))
    with pytest.raises(DataError, match=r"more than a gzip file"):
        convert(str(tmp_path / "big-images-idx3-ubyte.gz"), str(tmp_path / "shards"))


def test_idx_values_larger_than_the_memory_available_are_refused(tmp_path, little_memory):
    path, _, _ = write_mnist(tmp_path, n=12, h=4, w=3)
    little_memory(500)  # the 144 pixels and their float32 copy need 720 bytes
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: its 12 x 4 x 3 values as "
                                        r"read and as float32 need 720 bytes of memory, more "
                                        r"than the 500 bytes this machine has available; convert "
                                        r"it to a shard set and stream it \(sgdlab data convert "
                                        r"train-images-idx3-ubyte shards/"):
        load_data(str(path))
    little_memory(10 ** 6)
    assert load_data(str(path)).n == 12


def _damaged_pixel_gzip(data: bytes) -> bytes:
    """``data`` gzip-compressed without compression (stored blocks: the pixels are bytes of
    the file), one pixel changed after the CRC was computed: a stream that still decompresses,
    to damaged values."""
    z = bytearray(gzip.compress(data, compresslevel=0))
    z[-20] ^= 0x5A  # a value byte near the end (the trailer is the last 8 bytes)
    return bytes(z)


@pytest.mark.parametrize("damage", ["pixel", "crc", "length"])
def test_a_gzip_stream_whose_crc_or_length_fails_is_refused(tmp_path, damage):
    path, imgs, labs = write_mnist(tmp_path, n=40, h=4, w=4, gz=True)
    raw = idx_bytes(imgs)
    if damage == "pixel":
        data = _damaged_pixel_gzip(raw)
        assert gzip.GzipFile(fileobj=io.BytesIO(data)).read(len(raw)) != raw  # it decompresses
    else:
        data = bytearray(gzip.compress(raw))
        data[-8 if damage == "crc" else -4] ^= 0xFF
        data = bytes(data)
    path.write_bytes(data)
    expected = r"train-images-idx3-ubyte\.gz: cannot read as an IDX file: the gzip data is " \
               r"damaged \((CRC check failed|Incorrect length).*\); download the file again"
    with pytest.raises(DataError, match=expected):
        load_data(str(path))
    with pytest.raises(DataError, match=expected):  # converted, it is refused the same way
        convert(str(path), str(tmp_path / "shards"))
    assert not (tmp_path / "shards").exists()


def test_a_damaged_gzip_labels_file_is_refused(tmp_path):
    path, imgs, labs = write_mnist(tmp_path, n=40, h=4, w=4, gz=True)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(_damaged_pixel_gzip(idx_bytes(labs)))
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte\.gz: .*\(CRC check failed"):
        load_data(str(path))


# -- NumPy ------------------------------------------------------------------------------------

def test_an_npy_array_larger_than_the_memory_available_is_refused(tmp_path, little_memory):
    np.save(tmp_path / "t.npy", np.ones((50, 4)))
    little_memory(1000)  # 1,600 bytes as read, 800 as float32
    with pytest.raises(DataError, match=r"t\.npy: the array \(shape \(50, 4\) of float64\) as "
                                        r"read and as float32 need 2\.3 KiB of memory, more than "
                                        r"the 1,000 bytes this machine has available; convert "
                                        r"the file to a shard set and stream it"):
        load_npy(tmp_path / "t.npy")
    np.savez(tmp_path / "a.npz", X=np.ones((50, 4)), y=np.arange(50))
    with pytest.raises(DataError, match=r"a\.npz: arrays 'X' and 'y' as read and as float32 "
                                        r"need .* of memory, more than the 1,000 bytes"):
        load_npz(tmp_path / "a.npz")


def test_an_npz_member_claiming_a_huge_shape_is_refused_before_reading(tmp_path):
    buf = io.BytesIO()
    np.savez(buf, W=np.zeros((8, 4), np.float32))
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as zin, \
            zipfile.ZipFile(out, "w") as zout:
        for info in zin.infolist():  # the header's shape rewritten, the member's size kept
            zout.writestr(info.filename, zin.read(info).replace(b"(8, 4)", b"(8000000000, 4)"))
    with pytest.raises(DataError, match=r"ck\.npz: array 'W' is truncated or damaged: its header "
                                        r"declares shape \(8000000000, 4\) of float32 "
                                        r"\(128,000,000,000 bytes\) but only \d+ bytes follow"):
        read_npz_arrays(io.BytesIO(out.getvalue()), "ck.npz", "fix")


def test_npz_arrays_are_read_when_they_fit(tmp_path, little_memory):
    buf = io.BytesIO()
    np.savez(buf, W=np.arange(6.0).reshape(2, 3), step=np.array(3))
    arrays = read_npz_arrays(io.BytesIO(buf.getvalue()), "ck.npz", "fix")
    assert sorted(arrays) == ["W", "step"] and arrays["W"][1, 2] == 5.0
    little_memory(10)
    with pytest.raises(DataError, match=r"ck\.npz: its 2 arrays need 56 bytes of memory, more "
                                        r"than the 10 bytes this machine has available; fix"):
        read_npz_arrays(io.BytesIO(buf.getvalue()), "ck.npz", "fix")
    with pytest.raises(DataError, match=r"ck\.npz: cannot read as an \.npz archive"):
        read_npz_arrays(io.BytesIO(buf.getvalue()[:30]), "ck.npz", "fix")


# -- shard manifests --------------------------------------------------------------------------

@pytest.fixture
def shard_dir(tmp_path):
    rows = "\n".join(f"{i % 7}.5,{i % 3},{i % 2}" for i in range(40))
    (tmp_path / "d.csv").write_text("a,b,y\n" + rows + "\n")
    return convert(str(tmp_path / "d.csv"), str(tmp_path / "shards"))


@pytest.mark.parametrize("edit,message", [
    ({"block_rows": 0}, r"block_rows 0, shard_blocks \d+ and the rows of every shard must be "
                        r">= 1; the manifest is damaged"),
    ({"block_rows": -3}, r"block_rows -3"),
    ({"rows": 10 ** 15, "block_rows": 1, "shards": [{"x": "X-00000.npy", "y": "y-00000.npy",
                                                    "rows": 10 ** 15}]},
     r"X-00000\.npy: \d+ bytes, fewer than the 1,000,000,000,000,000 rows of 2 float32 "
     r"features the manifest declares"),
    ({"features": 10 ** 10, "example_shape": [10 ** 10]}, r"fewer than the 40 rows of "
                                                           r"10,000,000,000 float32 features"),
    ({"shards": [{"x": "../d.csv", "y": "y-00000.npy", "rows": 40}]},
     r"shard file name '\.\./d\.csv' is not a file name in the shard directory"),
    ({"shards": [{"x": "/etc/passwd", "y": "y-00000.npy", "rows": 40}]},
     r"shard file name '/etc/passwd' is not a file name"),
])
def test_a_shard_manifest_whose_sizes_lie_is_refused_before_allocating(shard_dir, edit,
                                                                        message):
    import json

    from sgdlab.data.shards import ShardSet
    path = shard_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest.update(edit)
    path.write_text(json.dumps(manifest))
    with pytest.raises(DataError, match=message):
        ShardSet(shard_dir)


# -- what a data path names -------------------------------------------------------------------

def test_a_fifo_is_refused_not_read(tmp_path):
    import os
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)  # opening it would wait for a writer forever
    with pytest.raises(DataError, match=r"pipe\.csv: is a FIFO \(named pipe\); sgdlab reads a "
                                        r"data file more than once"):
        load_data(str(fifo))


def test_a_folder_of_csv_files_is_not_an_unsupported_file_type(tmp_path):
    (tmp_path / "parts").mkdir()
    for name in ("a.csv", "b.csv"):
        (tmp_path / "parts" / name).write_text("x,y\n1,0\n")
    with pytest.raises(DataError, match=r"parts: is a directory without a manifest\.json, not a "
                                        r"shard set \(it holds 2 file\(s\), e\.g\. 'a\.csv'\); "
                                        r"give one data file, or convert one into a shard set"):
        load_data(str(tmp_path / "parts"))


# -- found by the fuzzers (tests/reliability/test_rel_fuzz_files.py) ----------------------------

def test_an_idx_header_with_an_empty_axis_is_refused(tmp_path):
    """0 x 2 x 2^31 x 2^31 values: no bytes, but a shape NumPy cannot make (a ValueError)."""
    (tmp_path / "e-images-idx3-ubyte").write_bytes(idx_header((0, 2, 2 ** 31, 2 ** 31)))
    with pytest.raises(DataError, match=r"e-images-idx3-ubyte: its header declares 0 x 2 x "
                                        r"2,147,483,648 x 2,147,483,648 values of uint8: no "
                                        r"values \(an axis of length 0\)"):
        load_data(str(tmp_path / "e-images-idx3-ubyte"))


@pytest.mark.parametrize("shape,message", [
    ("(-1,)", r"shape \(-1,\) is no array's: a negative or too large length"),
    ("(2147483648, 0, 2147483648, 2147483648, 4)", r"is no array's"),
    ("(1099511627776, 0)", r"its 1,099,511,627,776 rows of shape \(0,\) hold no values"),
])
def test_npy_shapes_that_hold_nothing_or_cannot_exist_are_refused(tmp_path, shape, message):
    """Read row by row, 2^40 rows of nothing took hours; a negative length read backwards."""
    from sgdlab.data.arrays import ArrayRows
    header = f"{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}".encode()
    header += b" " * (64 - (10 + len(header) + 1) % 64) + b"\n"
    path = tmp_path / "h.npy"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header)
    with pytest.raises(DataError, match=message):
        with ArrayRows(str(path)) as rows:
            rows.read(3)
