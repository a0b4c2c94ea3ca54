"""Run directories: files a person and pandas can read, each written atomically.

Every write goes to a temporary name in the same directory, is flushed and fsynced, then
renamed over the final name, so a killed run leaves each file either complete or absent.
Parameters are stored as ``.npz`` of named arrays (never pickle).
"""

from __future__ import annotations

import json
import math
import os
import platform
import tempfile
from pathlib import Path

import jax
import numpy as np

from ..errors import RunDirError


def prepare_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` (and parents); refuse a path that exists as a file."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise RunDirError(f"run directory {str(p)!r} exists and is not a directory")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunDirError(f"cannot create run directory {str(p)!r}: {e.strerror}") from None
    return p


def current_umask() -> int:
    """The process's file-creation mask (reading it means setting it; set it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates 0600; a run file is shared like any other program's output, so it
        # gets the mode open() would give it: 0666 less the umask (0644 under the usual 022).
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text_atomic(path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (set, tuple)):
        return list(o)
    return str(o)


def _clean(o):
    """JSON has no NaN/inf: write them as null."""
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {str(k): _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    return o


def write_json_atomic(path, obj) -> None:
    write_text_atomic(path, json.dumps(_clean(obj), indent=2, default=_json_default) + "\n")


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


def load_params_like(path, like):
    """Load ``.npz`` arrays into the structure of ``like`` (no pickle)."""
    with np.load(path, allow_pickle=False) as z:
        names = list(flatten_params(like))
        leaves = [z[n] for n in names]
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(like), leaves)


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
