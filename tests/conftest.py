"""Shared fixtures. Tests run on the CPU backend with 64-bit off unless a test enables it."""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")


def _share_compiled_programs() -> None:
    """One persistent JAX compilation cache for the whole session: its test processes and
    every subprocess they start (kill-and-resume runs, two-process runs, docs examples)
    compile the same programs again and again; with the cache each is compiled once.
    ``XDG_CACHE_HOME`` points inside it too (the default cache of ``sgdlab sweep``).

    Set here, before JAX is imported, by the first process (xdist's controller, or pytest
    without xdist), inherited through the environment by the rest, removed at its exit.
    A cache the caller set up already is used as it is. Tests that count compilations switch
    it off inside their block (``helpers.counted_compilations``).
    """
    if "JAX_COMPILATION_CACHE_DIR" in os.environ:
        return
    path = tempfile.mkdtemp(prefix="sgdlab-tests-compiled-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = path
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    # ``sgdlab sweep`` keeps its programs in the user's cache directory: the session's own,
    # so the tests neither read nor fill the home directory's.
    os.environ["XDG_CACHE_HOME"] = os.path.join(path, "xdg-cache")


_share_compiled_programs()

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def digits_ds():
    from sgdlab.data import digits
    return digits()


@pytest.fixture
def rng():
    return np.random.default_rng(0)
