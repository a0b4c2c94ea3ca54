"""Aligned host arrays: the CPU device uses them in place, so a fit does not copy its data."""

import jax
import numpy as np
import pytest

from sgdlab.data import Dataset, GENERATORS, Standardizer
from sgdlab.data.hostmem import ALIGN, aligned, empty_aligned, is_aligned
from sgdlab.engine import cache
from sgdlab.engine.fit import device_array


@pytest.mark.parametrize("shape", [(1,), (7, 3), (1000, 13)])
def test_empty_aligned_has_the_shape_and_alignment(shape):
    a = empty_aligned(shape, np.float32)
    assert a.shape == shape and a.dtype == np.float32 and is_aligned(a)


def test_aligned_copies_only_when_needed():
    raw = np.empty(4 * 101 + 4, np.uint8)
    off = 4 if raw.ctypes.data % ALIGN == 0 else 0  # a float32 view that is *not* aligned
    if (raw.ctypes.data + off) % ALIGN == 0:
        off += 4
    a = raw[off:off + 4 * 100].view(np.float32)
    a[:] = np.arange(100)
    b = aligned(a)
    assert b is not a and is_aligned(b) and np.array_equal(a, b)
    assert aligned(b) is b
    c = aligned(np.arange(5), np.float32)
    assert c.dtype == np.float32 and np.array_equal(c, [0, 1, 2, 3, 4])


def test_dataset_features_are_aligned_including_subsets_and_standardized_copies():
    ds = GENERATORS["gaussian"](n=300, d=5, n_classes=3, seed=0)
    assert is_aligned(ds.X)
    unaligned = np.ascontiguousarray(ds.X[:, ::-1])[1:]  # offset by one row of 20 bytes
    assert is_aligned(Dataset(unaligned, ds.y[1:], classes=ds.classes).X)
    for idx in (np.arange(0, 300, 3), np.arange(300) % 2 == 0):
        sub = ds.subset(idx)
        assert is_aligned(sub.X) and np.array_equal(sub.X, ds.X[idx])
    Z = Standardizer().fit(ds.X).transform(ds.X)
    assert is_aligned(Z) and Z.dtype == np.float32


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="aliasing is a CPU-backend property")
def test_training_data_reaches_the_cpu_device_without_a_copy():
    ds = GENERATORS["blobs"](n=200, d=4, seed=1)
    on_device = device_array(ds.X)
    assert on_device.unsafe_buffer_pointer() == ds.X.ctypes.data
    assert np.array_equal(np.asarray(on_device), ds.X)


def test_large_sets_are_not_padded_so_they_are_not_copied():
    assert cache.padded_rows(60_000, 784 * 4) == 60_000  # 188 MB: no padded copy
    assert cache.padded_rows(1_437, 64 * 4) == 1_536     # small: padded to share programs
