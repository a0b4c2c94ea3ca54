"""Shared fixtures. Tests run on the CPU backend with 64-bit off unless a test enables it."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def digits_ds():
    from sgdlab.data import digits
    return digits()


@pytest.fixture
def rng():
    return np.random.default_rng(0)
