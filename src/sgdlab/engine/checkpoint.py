"""Checkpoints: everything needed to continue a run bit-exactly, committed atomically.

A checkpoint is two files in ``RUN_DIR/checkpoints/``::

    ckpt-000000120.npz    named arrays (no pickle): params/<path>, opt/<path>, step
    ckpt-000000120.json   the manifest: size and sha256 of the .npz, the loop state, the
                          config, the data fingerprint, and a sha256 of its own body

The loop state in the manifest is what the host loop carries between chunks: the step, the
batch plan position ``(epoch, step_in_epoch, row)`` (the order of an epoch is a pure function of
``(seed, epoch)``, so seed + position is the whole sampling PRNG state; ``row`` is the slot of
the epoch's order the next step starts at, which places it at any batch size), the examples count,
the clocks, the partial train-loss sum since the last history row, the last evaluation mark,
and the history itself (JSON floats are written with ``repr``, so they round-trip exactly).

Commit protocol: the ``.npz`` is written to a temporary file (created exclusively under an
unpredictable name, so nothing planted is opened), fsynced and renamed; then the ``.json`` the
same way; then the directory is fsynced. A symbolic link at a checkpoint's name or at
``checkpoints/`` itself is refused, never written through. The manifest is the commit record: a
checkpoint exists only if its manifest parses, its body checksum matches and the ``.npz``
has the recorded size and sha256. A kill at any moment therefore leaves the previous
checkpoints intact and the new one either complete or ignored. Reading falls back from the
newest checkpoint to older ones, warning with the name of each bad file.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from .._types import TrainState
from ..data.arrays import read_npz_arrays
from ..data.hostmem import check_allocation
from ..errors import ConfigError, DataError, RunDirError
from .checkpoint_check import check_snapshot
from .rundir import refuse_symlink, replace_file, write_error

FORMAT = "sgdlab-checkpoint-1"
_NAME = re.compile(r"^ckpt-(\d{9})\.json$")


class CheckpointWarning(UserWarning):
    """A checkpoint file was unreadable or failed its checksum and was skipped."""


@dataclass
class Snapshot:
    """One checkpoint in memory.

    ``arrays``: ``{"params/W": (k, d), "opt/0/mu/W": ..., "step": ()}`` host copies.
    ``meta``: JSON-able loop state and provenance (see the module docstring).
    """

    arrays: dict
    meta: dict = field(default_factory=dict)

    @property
    def step(self) -> int:
        return int(self.meta["step"])


# --------------------------------------------------------------------------------------------
# pytrees <-> named arrays
# --------------------------------------------------------------------------------------------


def _key_name(k) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(k, attr):
            return str(getattr(k, attr))
    return str(k)


def tree_to_arrays(tree, prefix: str) -> dict[str, np.ndarray]:
    """``{prefix/path: array}`` for every leaf, as *copies* on the host.

    Copies matter: on the CPU a NumPy view of a device buffer aliases it, and a checkpoint
    must hold the values of its step, whatever happens to the buffer afterwards.
    """
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        name = "/".join([prefix, *(_key_name(k) for k in path)])
        out[name] = np.array(leaf, copy=True)
    return out


def arrays_to_tree(arrays: dict, prefix: str, like, what: str):
    """Rebuild the structure of ``like`` from ``arrays`` (as written by :func:`tree_to_arrays`).

    Every leaf must be present with the shape and dtype of ``like``'s; otherwise a
    :class:`ConfigError` names the leaf, e.g. the model shape changed since the checkpoint.
    """
    flat, treedef = jax.tree_util.tree_flatten_with_path(like)
    leaves = []
    for path, ref in flat:
        name = "/".join([prefix, *(_key_name(k) for k in path)])
        if name not in arrays:
            raise ConfigError(f"the checkpoint has no {what} array {name!r}: it was written for "
                              "a different model or optimiser; resume with the original settings")
        a = arrays[name]
        if a.shape != tuple(jnp.shape(ref)) or a.dtype != jnp.asarray(ref).dtype:
            raise ConfigError(
                f"{what} {name!r} has shape {a.shape} ({a.dtype}) in the checkpoint but "
                f"{tuple(jnp.shape(ref))} ({jnp.asarray(ref).dtype}) now: the model shape, "
                "optimiser or data changed; resume with the original settings")
        # jnp.array copies: on the CPU an aligned NumPy array would otherwise be used in place,
        # and the restored state must never alias the snapshot kept for divergence recovery.
        leaves.append(jnp.array(a, copy=True))
    return jax.tree_util.tree_unflatten(treedef, leaves)


def state_to_arrays(state: TrainState) -> dict[str, np.ndarray]:
    out = tree_to_arrays(state.params, "params")
    out.update(tree_to_arrays(state.opt_state, "opt"))
    out["step"] = np.array(state.step, copy=True)
    return out


def state_from_arrays(arrays: dict, like: TrainState) -> TrainState:
    """A :class:`TrainState` shaped like ``like`` (from ``optimizer.init``) from named arrays."""
    params = arrays_to_tree(arrays, "params", like.params, "parameter")
    opt = arrays_to_tree(arrays, "opt", like.opt_state, "optimiser state")
    return TrainState(params, opt, jnp.array(arrays["step"], copy=True))


def all_finite(arrays: dict) -> bool:
    return all(np.all(np.isfinite(a)) for a in arrays.values()
               if np.issubdtype(a.dtype, np.inexact))


# --------------------------------------------------------------------------------------------
# durable files
# --------------------------------------------------------------------------------------------


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durable(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file created exclusively under an unpredictable name
    beside ``path``, fsync, rename over ``path``: complete or absent after a kill, and no
    planted file or link is ever opened (a link at ``path`` itself is refused). Raises
    ``OSError``; :meth:`CheckpointStore.save` words it."""
    replace_file(path, data)


def _unlink_own(path: Path) -> None:
    """Delete a checkpoint file; a symbolic link with its name was not written by sgdlab and
    is refused (:class:`RunDirError`) rather than silently dropped."""
    refuse_symlink(path)
    path.unlink(missing_ok=True)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _body_digest(body: dict) -> str:
    return sha256(json.dumps(body, sort_keys=True).encode())


# --------------------------------------------------------------------------------------------
# the store
# --------------------------------------------------------------------------------------------


class CheckpointStore:
    """The checkpoints of one run directory; keeps the newest ``keep`` (``keep >= 1``)."""

    def __init__(self, run_dir: str | os.PathLike, keep: int = 3):
        if not isinstance(keep, int) or isinstance(keep, bool) or keep < 1:
            raise ConfigError(f"keep_checkpoints must be a whole number >= 1, got {keep!r}")
        self.dir = Path(run_dir) / "checkpoints"
        self.keep = keep

    def paths(self, step: int) -> tuple[Path, Path]:
        return self.dir / f"ckpt-{step:09d}.npz", self.dir / f"ckpt-{step:09d}.json"

    def steps(self) -> list[int]:
        """Steps of the committed-looking checkpoints (manifest present), newest first."""
        if not self.dir.is_dir():
            return []
        found = [int(m.group(1)) for p in self.dir.iterdir() if (m := _NAME.match(p.name))]
        return sorted(found, reverse=True)

    def _writable_dir(self) -> Path:
        """``RUN_DIR/checkpoints``, created if missing; a symbolic link there is refused
        (pruning would otherwise delete files in whatever directory it points to)."""
        refuse_symlink(self.dir)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise write_error(e, self.dir, "create checkpoint directory") from None
        refuse_symlink(self.dir)  # created meanwhile by someone else
        return self.dir

    def save(self, snap: Snapshot) -> Path:
        """Commit ``snap``; refuse non-finite arrays (a checkpoint is always a good state)."""
        if not all_finite(snap.arrays):
            raise ValueError("refusing to checkpoint a non-finite state")  # engine bug, not user
        npz_path, json_path = self.paths(snap.step)
        buf = io.BytesIO()
        np.savez(buf, **snap.arrays)
        data = buf.getvalue()
        body = {"format": FORMAT, "arrays": npz_path.name, "arrays_size": len(data),
                "arrays_sha256": sha256(data), **snap.meta}
        manifest = {"body": body, "body_sha256": _body_digest(body)}
        self._writable_dir()
        try:
            write_durable(npz_path, data)
            try:
                write_durable(json_path, json.dumps(manifest).encode())
            except BaseException:
                if not json_path.exists():  # arrays nobody commits: drop them (complete or
                    npz_path.unlink(missing_ok=True)  # absent); pruning would do it later
                raise
            fsync_dir(self.dir)
        except OSError as e:
            raise RunDirError(f"{write_error(e, json_path, 'write checkpoint')}; earlier "
                              "checkpoints are intact") from None
        try:
            self.prune()
        except OSError as e:
            raise write_error(e, self.dir, "remove old checkpoints in") from None
        return json_path

    def prune(self) -> None:
        """Delete all but the newest ``keep`` checkpoints, orphaned arrays and temp files."""
        steps = self.steps()
        keep = set(steps[:self.keep])
        for step in steps[self.keep:]:
            npz_path, json_path = self.paths(step)
            _unlink_own(json_path)  # un-commit first, then drop the arrays
            _unlink_own(npz_path)
        for p in self.dir.iterdir():
            m = re.match(r"^ckpt-(\d{9})\.npz$", p.name)
            if m and int(m.group(1)) not in keep:
                _unlink_own(p)
            elif p.name.endswith(".tmp"):
                p.unlink(missing_ok=True)  # a leftover (or a link: only the link goes)

    def discard_after(self, step: int) -> None:
        """Delete checkpoints newer than ``step``: on resume they are a future being redone
        (or were skipped as corrupt), and must not outrank the new ones when pruning."""
        refuse_symlink(self.dir)
        try:
            for newer in self.steps():
                if newer > step:
                    npz_path, json_path = self.paths(newer)
                    _unlink_own(json_path)
                    _unlink_own(npz_path)
        except OSError as e:
            raise write_error(e, self.dir, "remove checkpoints in") from None

    def read(self, step: int) -> Snapshot:
        """The checkpoint at ``step``, verified: its checksums, then, as a file a person can
        edit, every size before it is allocated and every entry a resume uses
        (:func:`~sgdlab.engine.checkpoint_check.check_snapshot`). :class:`RunDirError` names
        the bad file."""
        npz_path, json_path = self.paths(step)
        try:
            manifest = json.loads(_read_bounded(json_path))
            body = manifest["body"]
            ok = manifest["body_sha256"] == _body_digest(body)
        except (OSError, ValueError, KeyError, TypeError, RecursionError, DataError) as e:
            raise RunDirError(f"{json_path}: unreadable checkpoint manifest "
                              f"({_reason(e)})") from None
        if not ok or body.get("format") != FORMAT:
            raise RunDirError(f"{json_path}: checkpoint manifest fails its checksum")
        try:
            data = _read_bounded(npz_path, body.get("arrays_size"))
        except OSError as e:
            raise RunDirError(f"{npz_path}: cannot read checkpoint arrays ({e.strerror})") \
                from None
        except DataError as e:
            raise RunDirError(f"{npz_path}: {_reason(e)}") from None
        if len(data) != body["arrays_size"] or sha256(data) != body["arrays_sha256"]:
            raise RunDirError(f"{npz_path}: checkpoint arrays fail their checksum (size "
                              f"{len(data)}, expected {body['arrays_size']}): truncated or "
                              "corrupted")
        try:
            arrays = read_npz_arrays(io.BytesIO(data), str(npz_path),
                                     "the checkpoint is damaged; resume from an older one")
        except DataError as e:
            raise RunDirError(str(e)) from None
        check_snapshot(arrays, body, step, f"{json_path} and {npz_path.name}")
        meta = {k: v for k, v in body.items()
                if k not in ("format", "arrays", "arrays_size", "arrays_sha256")}
        return Snapshot(arrays, meta)

    def latest(self) -> Snapshot:
        """The newest valid checkpoint; bad ones are skipped with a :class:`CheckpointWarning`."""
        steps = self.steps()
        if not steps:
            raise RunDirError(
                f"no checkpoint in {self.dir.parent}: nothing to resume (was the run started "
                "with checkpoints, and is this its directory?); start it again without --resume")
        for step in steps:
            try:
                return self.read(step)
            except RunDirError as e:
                warnings.warn(f"skipping bad checkpoint: {e}; falling back to an older one",
                              CheckpointWarning, stacklevel=2)
        raise RunDirError(
            f"no valid checkpoint in {self.dir}: all {len(steps)} failed their checks (see "
            "the warnings above); the run cannot be resumed, start it again without --resume")


def _read_bounded(path: Path, expected: object = None) -> bytes:
    """The bytes of ``path``; its size (which must be ``expected`` when that is a whole
    number) is checked against the memory available before it is read."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if isinstance(expected, int) and size != expected:
            raise DataError(f"checkpoint arrays fail their checksum (size {size}, expected "
                            f"{expected}): truncated or corrupted")
        check_allocation(size, str(path), "its bytes", "the checkpoint is damaged; resume "
                                                       "from an older one")
        return fh.read()


def _reason(e: Exception) -> str:
    """An error's message without the file name it may start with (the caller names it)."""
    text = str(e) if not isinstance(e, RecursionError) else "nested too deeply"
    head, sep, rest = text.partition(": ")
    return rest if sep and os.sep in head else text
