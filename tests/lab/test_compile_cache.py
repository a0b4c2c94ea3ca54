"""The sweep's compile cache: the user's own directory, created private, refused when someone
else could write into it, and JAX's setting restored after the block."""

import os
import stat

import pytest

from sgdlab.errors import RunDirError
from sgdlab.lab import compile_cache
from sgdlab.lab.compile_cache import compile_cache_in, private_directory, user_cache_dir


def test_the_default_is_under_the_users_cache_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert user_cache_dir() == tmp_path / "xdg" / "sgdlab" / "compile-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dirs/are/ignored")  # the XDG rule
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert user_cache_dir() == tmp_path / "home" / ".cache" / "sgdlab" / "compile-cache"


def test_a_new_cache_directory_is_private(tmp_path):
    p = private_directory(tmp_path / "a" / "cache")
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o700


def test_a_cache_others_can_write_is_refused(tmp_path):
    p = tmp_path / "shared"
    p.mkdir()
    os.chmod(p, 0o777)
    with pytest.raises(RunDirError, match=r"writable by other users .*chmod go-w"):
        private_directory(p)


def test_a_cache_of_another_user_is_refused(tmp_path, monkeypatch):
    p = tmp_path / "theirs"
    p.mkdir(mode=0o700)
    monkeypatch.setattr(compile_cache.os, "geteuid", lambda: os.stat(p).st_uid + 1)
    with pytest.raises(RunDirError, match=r"belongs to another user .*--compile-cache"):
        private_directory(p)


def test_the_callers_setting_is_back_after_the_block(tmp_path):
    import jax
    before = jax.config.jax_compilation_cache_dir
    with compile_cache_in(tmp_path / "c") as path:
        assert jax.config.jax_compilation_cache_dir == str(path)
    assert jax.config.jax_compilation_cache_dir == before
