"""Run directories: files a person and pandas can read, each written atomically.

Every file is written by :mod:`sgdlab.files` (re-exported here for the engine's modules): a
temporary name created exclusively in the same directory, flushed and fsynced, then renamed
over the final name, so a killed run leaves each file either complete or absent; a symbolic
link planted at a final name is refused (:func:`refuse_symlink`); fixed names that must be
opened in place (the lock, the growing history) go through :func:`open_nofollow`. A failed
write (disk full, quota, I/O error, permissions) is one :class:`RunDirError` saying what,
where and how to fix it (:func:`write_error`), and leaves no partial file behind. Parameters
are stored as ``.npz`` of named arrays (never pickle).
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import jax
import numpy as np

from ..files import (append_whole, current_umask, make_directory,  # noqa: F401
                     open_nofollow, refuse_symlink, replace_file, symlink_error,
                     write_bytes_atomic, write_error, write_json_atomic, write_text_atomic)


def prepare_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` (and parents); refuse a path that exists as a file or is a symbolic
    link (see :func:`~sgdlab.files.make_directory`)."""
    return make_directory(path, "run directory")


def flatten_params(params) -> dict[str, np.ndarray]:
    """``{"layers/0/W": array, ...}``: a pytree as named arrays."""
    flat, _ = jax.tree_util.tree_flatten_with_path(params)
    out = {}
    for path, leaf in flat:
        name = "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)
        out[name or "param"] = np.asarray(leaf)
    return out


def save_params(path, params) -> None:
    import io
    buf = io.BytesIO()
    np.savez(buf, **flatten_params(params))
    write_bytes_atomic(path, buf.getvalue())


def environment() -> dict:
    """Versions and hardware, recorded with every run."""
    import optax
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    dev = jax.devices()[0]
    return {
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": getattr(jax.lib, "__version__", jax.__version__),
        "optax": optax.__version__,
        "numpy": np.__version__,
        "platform": dev.platform,
        "device": getattr(dev, "device_kind", str(dev)),
        "device_count": jax.device_count(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "system": f"{platform.system()} {platform.release()}",
    }
