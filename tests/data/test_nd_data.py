"""Examples of any shape: N-D arrays, per-channel standardisation, .npz and IDX files, the
image built-ins, and shard sets that keep the example shape."""

from __future__ import annotations

import gzip
import json
import struct

import numpy as np
import pytest

from sgdlab.data import Standardizer, from_arrays, load_data, load_idx, split
from sgdlab.data.builtin import digits, digits_images
from sgdlab.data.convert import convert, write_shards
from sgdlab.data.features import read_features
from sgdlab.data.formats import for_path
from sgdlab.data.shards import MANIFEST, ShardSet
from sgdlab.data.stream import ShardStream, read_load
from sgdlab.data.synthetic import images
from sgdlab.errors import DataError


def image_data(n=60, shape=(5, 4, 3), classes=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(2.0, 3.0, (n,) + shape).astype(np.float32)
    X[..., 0] += 10.0  # channels with different statistics
    y = np.arange(n) % classes
    return X, y


# -- Dataset, from_arrays, subset, split -------------------------------------------------------

def test_from_arrays_keeps_the_example_shape():
    X, y = image_data()
    ds = from_arrays(X, y)
    assert ds.X.shape == (60, 5, 4, 3) and ds.X.dtype == np.float32
    assert ds.example_shape == (5, 4, 3) and ds.d == 60 and ds.n == 60
    assert len(ds.feature_names) == 60 and ds.feature_names[-1] == "x59"
    np.testing.assert_array_equal(ds.X, X)
    seq = from_arrays(np.zeros((4, 7, 2), np.int64), [0, 1, 0, 1])  # (N, T, d), ints converted
    assert seq.example_shape == (7, 2) and seq.X.dtype == np.float32
    assert from_arrays(np.ones((3, 2)), [0, 1, 0]).example_shape == (2,)  # tabular: (d,)


def test_from_arrays_n_d_errors():
    with pytest.raises(DataError, match=r"features must be 2-D \(N, d\), got 1-D .*"
                                        r"X\.reshape\(-1, 1\)"):
        from_arrays(np.ones(3), [0, 1, 0])
    X = np.ones((3, 2, 2, 1))
    X[1, 1, 0, 0] = np.nan
    with pytest.raises(DataError, match=r"imgs, row index 1, column 'x2' \(index \(1, 0, 0\) of "
                                        r"each example of shape \(2, 2, 1\)\): value is NaN"):
        from_arrays(X, [0, 1, 0], name="imgs")
    with pytest.raises(DataError, match=r"examples of shape \(2, 0\) hold no values"):
        from_arrays(np.ones((3, 2, 0)), [0, 1, 0])
    with pytest.raises(DataError, match=r"4 feature names for 6 feature columns"):
        from_arrays(np.ones((3, 2, 3)), [0, 1, 0], feature_names=list("abcd"))
    with pytest.raises(DataError, match=r"X has 3 rows but y has 2 labels"):
        from_arrays(np.ones((3, 2, 3)), [0, 1])


def test_subset_and_stratified_split_keep_the_shape():
    X, y = image_data(n=90)
    ds = from_arrays(X, y)
    sub = ds.subset(np.array([3, 1, 4]))
    assert sub.X.shape == (3, 5, 4, 3) and sub.X.ctypes.data % 64 == 0
    np.testing.assert_array_equal(sub.X, X[[3, 1, 4]])
    parts = split(ds, validation=0.2, test=0.1, seed=1)
    assert [p.X.shape[1:] for p in parts] == [(5, 4, 3)] * 3
    assert sum(p.n for p in parts) == 90
    for p in parts:  # stratified: every class alike
        assert set(np.bincount(p.y, minlength=3)) == {p.n // 3}
        np.testing.assert_array_equal(p.X, X[p.meta["rows"]])


# -- Standardizer ------------------------------------------------------------------------------

def test_standardizer_is_per_channel_for_n_d_data():
    X, _ = image_data(n=50)
    X[..., 2] = 7.0  # a constant channel maps to 0
    s = Standardizer().fit(X)
    flat = X.astype(np.float64).reshape(-1, 3)  # every example and position, per channel
    np.testing.assert_allclose(s.mean, flat.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(s.scale[:2], flat.std(axis=0)[:2], rtol=1e-12)
    assert s.mean.shape == s.scale.shape == (3,) and s.scale[2] == 1.0
    Z = s.transform(X)
    assert Z.shape == X.shape and Z.dtype == np.float32
    expect = (X - s.mean.astype(np.float32)) / s.scale.astype(np.float32)
    np.testing.assert_array_equal(Z, expect)
    np.testing.assert_allclose(Z[..., :2].reshape(-1, 2).mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(Z[..., :2].reshape(-1, 2).std(axis=0), 1, atol=1e-5)
    assert not Z[..., 2].any()
    again = Standardizer.from_dict(json.loads(json.dumps(s.to_dict())))  # the saved format
    np.testing.assert_array_equal(again.transform(X), Z)
    with pytest.raises(DataError, match=r"fitted on 3 channels .* shape \(5, 4, 2\), 2 along "
                                        r"the last axis"):
        s.transform(X[..., :2])


def test_standardizer_blocks_agree_and_tabular_is_unchanged(monkeypatch):
    X, _ = image_data(n=40, shape=(3, 3, 2))
    whole = Standardizer().fit(X)
    monkeypatch.setattr(Standardizer, "_CHUNK_VALUES", 50)  # blocks of 2 examples
    np.testing.assert_allclose(Standardizer().fit(X).mean, whole.mean, rtol=1e-12)
    T = X.reshape(40, -1)
    tab = Standardizer().fit(T)
    assert tab.mean.shape == (18,)
    np.testing.assert_allclose(tab.mean, T.astype(np.float64).mean(axis=0), rtol=1e-12)
    with pytest.raises(DataError, match=r"fitted on 18 features but X has 17"):
        tab.transform(T[:, :17])
    with pytest.raises(DataError, match=r"expects 2-D features \(N, d\) or examples of any "
                                        r"shape"):
        Standardizer().fit(np.ones(4))


# -- files: .npz, .npy, IDX --------------------------------------------------------------------

def test_npz_loads_n_d_and_npy_points_to_npz(tmp_path):
    X, y = image_data()
    np.savez(tmp_path / "imgs.npz", X=X, y=y)
    ds = load_data(str(tmp_path / "imgs.npz"))
    assert ds.example_shape == (5, 4, 3) and ds.classes == (0, 1, 2)
    np.testing.assert_array_equal(ds.X, X)
    np.save(tmp_path / "imgs.npy", X)
    with pytest.raises(DataError, match=r"imgs\.npy: expected a 2-D array \(N, d\+1\) .* 4-D "
                                        r"array of shape \(60, 5, 4, 3\); for examples of shape "
                                        r"\(N, \.\.\.\) save X and y apart in an \.npz archive"):
        load_data(str(tmp_path / "imgs.npy"))


def idx_bytes(values: np.ndarray, code: int = 0x08) -> bytes:
    """An IDX file: magic (0, 0, type, axes), each length as big-endian uint32, the values."""
    dtype = {0x08: ">u1", 0x0D: ">f4"}[code]
    head = bytes([0, 0, code, values.ndim]) + struct.pack(f">{values.ndim}I", *values.shape)
    return head + values.astype(dtype).tobytes()


def write_mnist(folder, n=12, h=4, w=3, gz=False, prefix="train", labels=True):
    rng = np.random.default_rng(n)
    imgs = rng.integers(0, 256, (n, h, w)).astype(np.uint8)
    labs = (np.arange(n) % 10).astype(np.uint8)
    suffix = ".gz" if gz else ""
    opener = gzip.open if gz else open
    img_path = folder / f"{prefix}-images-idx3-ubyte{suffix}"
    with opener(img_path, "wb") as fh:
        fh.write(idx_bytes(imgs))
    if labels:
        with opener(folder / f"{prefix}-labels-idx1-ubyte{suffix}", "wb") as fh:
            fh.write(idx_bytes(labs))
    return img_path, imgs, labs


@pytest.mark.parametrize("gz", [False, True])
def test_idx_images_load_with_their_labels(tmp_path, gz):
    path, imgs, labs = write_mnist(tmp_path, gz=gz)
    assert for_path(path).name == "idx"
    ds = load_data(str(path))
    assert ds.X.shape == (12, 4, 3, 1) and ds.X.dtype == np.float32
    np.testing.assert_array_equal(ds.X[..., 0], imgs)  # grey levels as stored
    assert ds.classes == tuple(range(10)) and ds.y.tolist() == labs.tolist()
    assert ds.name == path.name
    assert load_idx(path).X.tobytes() == ds.X.tobytes()


def test_idx_labels_found_compressed_or_not(tmp_path):
    path, imgs, labs = write_mnist(tmp_path, gz=True, labels=False)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(labs))  # plain beside .gz
    assert load_data(str(path)).y.tolist() == labs.tolist()
    # the t10k-images.idx3-ubyte spelling
    (tmp_path / "t10k-images.idx3-ubyte").write_bytes(idx_bytes(imgs[:5]))
    (tmp_path / "t10k-labels.idx1-ubyte").write_bytes(idx_bytes(labs[:5]))
    assert load_data(str(tmp_path / "t10k-images.idx3-ubyte")).n == 5


def test_idx_errors_name_the_file(tmp_path):
    path, imgs, labs = write_mnist(tmp_path, labels=False)
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: no labels file: looked for "
                                        r"train-labels-idx1-ubyte and train-labels-idx1-ubyte"
                                        r"\.gz beside it"):
        load_data(str(path))
    lab = tmp_path / "train-labels-idx1-ubyte"
    lab.write_bytes(idx_bytes(labs[:7]))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte holds 12 images but .*"
                                        r"train-labels-idx1-ubyte holds 7 labels"):
        load_data(str(path))
    lab.write_bytes(idx_bytes(labs))
    path.write_bytes(b"\x00\x00\x08\x03" + idx_bytes(imgs)[4:-5])  # cut short
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: truncated: its header "
                                        r"declares 12 x 4 x 3 values of uint8 \(144 bytes\) "
                                        r"but only 139 bytes follow the header"):
        load_data(str(path))
    path.write_bytes(idx_bytes(imgs) + b"\x00")
    with pytest.raises(DataError, match=r"holds more bytes than its header declares"):
        load_data(str(path))
    path.write_bytes(b"\x08\x03\x00\x00" + idx_bytes(imgs)[4:])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: not an IDX file: magic "
                                        r"number 0x08030000"):
        load_data(str(path))
    path.write_bytes(idx_bytes(imgs.reshape(12, 12)))
    with pytest.raises(DataError, match=r"an images file holds \(N, H, W\) or \(N, H, W, C\) "
                                        r"values, this one \(12, 12\)"):
        load_data(str(path))
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte: is an IDX labels file; load "
                                        r"the images file"):
        load_data(str(lab))
    bad = tmp_path / "bad-images-idx3-ubyte.gz"
    bad.write_bytes(gzip.compress(idx_bytes(imgs))[:40])
    (tmp_path / "bad-labels-idx1-ubyte").write_bytes(idx_bytes(labs))
    with pytest.raises(DataError, match=r"bad-images-idx3-ubyte\.gz: (truncated|cannot read)"):
        load_data(str(bad))


def test_idx_float_images_are_checked_finite(tmp_path):
    imgs = np.ones((3, 2, 2), np.float32)
    imgs[2, 1, 0] = np.inf
    (tmp_path / "f-images-idx3-ubyte").write_bytes(idx_bytes(imgs, 0x0D))
    (tmp_path / "f-labels-idx1-ubyte").write_bytes(idx_bytes(np.arange(3)))
    with pytest.raises(DataError, match=r"f-images-idx3-ubyte, row index 2, column 'x2' "
                                        r"\(index \(1, 0, 0\) .*\): value is inf"):
        load_data(str(tmp_path / "f-images-idx3-ubyte"))


# -- built-ins ---------------------------------------------------------------------------------

def test_digits_images_are_digits_reshaped():
    flat, img = digits(), load_data("digits-images")
    assert img.X.shape == (1797, 8, 8, 1) and img.name == "digits-images"
    np.testing.assert_array_equal(img.X.reshape(1797, 64), flat.X)
    assert img.y.tobytes() == flat.y.tobytes() and img.classes == flat.classes
    assert img.d == 64 and img.feature_names == flat.feature_names
    assert digits_images().X[5, 2, 3, 0] == flat.X[5, 2 * 8 + 3]
    with pytest.raises(DataError, match=r"built-in 'digits-images' takes no parameters"):
        load_data("digits-images:n=3")


def test_synthetic_images_are_seeded_and_learnable():
    a = images(n=400, height=6, width=5, channels=2, n_classes=4, seed=3)
    assert a.X.shape == (400, 6, 5, 2) and a.X.dtype == np.float32
    assert a.X.tobytes() == images(n=400, height=6, width=5, channels=2, n_classes=4,
                                   seed=3).X.tobytes()
    assert a.X.tobytes() != images(n=400, height=6, width=5, channels=2, n_classes=4,
                                   seed=4).X.tobytes()
    assert np.bincount(a.y).tolist() == [100] * 4
    P = a.meta["patterns"].reshape(4, -1)
    nearest = ((a.X.reshape(400, 1, -1) - P[None]) ** 2).sum(-1).argmin(axis=1)
    assert (nearest == a.y).mean() > 0.9  # the class pattern stands out of the noise
    spec = load_data("images:n=50,height=3,width=3,channels=3,n_classes=5", seed=1)
    assert spec.example_shape == (3, 3, 3) and spec.n_classes == 5


# -- shard sets --------------------------------------------------------------------------------

@pytest.mark.parametrize("source", ["npz", "idx"])
def test_convert_and_stream_keep_the_example_shape(tmp_path, source):
    if source == "npz":
        X, y = image_data(n=70)
        path = tmp_path / "imgs.npz"
        np.savez(path, X=X, y=y)
    else:
        path, _, _ = write_mnist(tmp_path, n=70, gz=True)
    ds = load_data(str(path))
    shards = ShardSet(convert(path, tmp_path / "sh", block_rows=16))
    manifest = json.loads((tmp_path / "sh" / MANIFEST).read_text())
    assert manifest["example_shape"] == list(ds.example_shape)
    assert shards.example_shape == ds.example_shape and shards.d == ds.d
    Xs, ys = shards.read_all()
    assert Xs.shape == ds.X.shape and Xs.tobytes() == ds.X.tobytes()
    assert ys.tobytes() == ds.y.tobytes()
    assert shards.read_block(1)[0].shape == (16,) + ds.example_shape
    assert read_load(shards, np.array([0, 4]))[0].shape == (16 + 6,) + ds.example_shape
    # per-channel statistics from stats.npy equal a pass over the rows
    s = shards.standardizer(np.arange(shards.n_blocks))
    full = Standardizer().fit(ds.X)
    assert s.mean.shape == (ds.example_shape[-1],)
    np.testing.assert_allclose(s.mean, full.mean, rtol=1e-9)
    np.testing.assert_allclose(s.scale, full.scale, rtol=1e-9)
    stream = ShardStream(shards, np.arange(shards.n_blocks), batch_size=8,
                         sampling="sequential")
    Xb, _, _, count = stream.take(3, pad_to=4)
    assert Xb.shape == (4, 8) + ds.example_shape
    np.testing.assert_array_equal(Xb[:3].reshape((24,) + ds.example_shape), ds.X[:24])
    assert not Xb[3].any() and count.tolist() == [8, 8, 8, 0]
    stream.close()
    shards.close()


def test_old_manifests_mean_a_row_and_bad_shapes_are_refused(tmp_path):
    X, y = image_data(n=20, shape=(2, 3))
    write_shards(tmp_path / "a", [(X, y)], 20, 6, classes=(0, 1, 2), example_shape=(2, 3))
    assert ShardSet(tmp_path / "a").example_shape == (2, 3)
    assert "example_shape=(2, 3)" in repr(ShardSet(tmp_path / "a"))
    man_path = tmp_path / "a" / MANIFEST
    m = json.loads(man_path.read_text())
    del m["example_shape"]
    man_path.write_text(json.dumps(m))
    old = ShardSet(tmp_path / "a")
    assert old.example_shape == (6,) and old.read_all()[0].shape == (20, 6)
    m["example_shape"] = [4, 2]
    man_path.write_text(json.dumps(m))
    with pytest.raises(DataError, match=r"manifest\.json: example_shape \[4, 2\] does not hold "
                                        r"the 6 features of a row"):
        ShardSet(tmp_path / "a")
    with pytest.raises(DataError, match=r"example shape \(5,\) does not hold the 6 features"):
        write_shards(tmp_path / "b", [(X, y)], 20, 6, classes=(0, 1, 2), example_shape=(5,))


def test_tabular_conversion_records_a_row_shape(tmp_path):
    X, y = image_data(n=20, shape=(4,))
    np.savez(tmp_path / "t.npz", X=X, y=y)
    shards = ShardSet(convert(tmp_path / "t.npz", tmp_path / "sh"))
    assert shards.example_shape == (4,) and shards.read_all()[0].shape == (20, 4)


# -- prediction --------------------------------------------------------------------------------

def test_read_features_of_n_d_files(tmp_path):
    X, y = image_data(n=10)
    np.savez(tmp_path / "imgs.npz", X=X, y=y)
    names = [f"x{j}" for j in range(60)]
    got = read_features(tmp_path / "imgs.npz", names, 60, example_shape=(5, 4, 3))
    assert got.X.shape == (10, 5, 4, 3) and got.y.tolist() == y.tolist()
    with pytest.raises(DataError, match=r"holds examples of shape \(5, 4, 3\); the model takes "
                                        r"examples of shape \(3, 4, 5\)"):
        read_features(tmp_path / "imgs.npz", names, 60, example_shape=(3, 4, 5))
    np.savez(tmp_path / "flat.npz", X=X.reshape(10, -1), y=y)  # a table of the right width
    assert read_features(tmp_path / "flat.npz", names, 60,
                         example_shape=(5, 4, 3)).X.shape == (10, 5, 4, 3)
    path, _, labs = write_mnist(tmp_path, n=6)
    got = read_features(path, [f"x{j}" for j in range(12)], 12)
    assert got.X.shape == (6, 4, 3, 1) and got.y.tolist() == labs.tolist()
    (tmp_path / "train-labels-idx1-ubyte").unlink()  # images alone can be predicted on
    got = read_features(path, [f"x{j}" for j in range(12)], 12)
    assert got.X.shape == (6, 4, 3, 1) and got.y is None
    with pytest.raises(DataError, match=r"examples of shape \(4, 3, 1\) hold 12 features; the "
                                        r"model takes 10"):
        read_features(path, [f"x{j}" for j in range(10)], 10)
