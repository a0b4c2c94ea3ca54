"""The sharded on-disk format for data larger than memory, and its reader.

A shard set is a directory::

    manifest.json      what the shards hold (below)
    X-00000.npy        features, (rows_s, d) float32, C order: each example flattened
    y-00000.npy        labels, (rows_s,) int32 class indices or float32 regression targets
    X-00001.npy ...
    stats.npy          (n_blocks, 2, d) float64: per-block feature mean and sum of squared
                       deviations M2, so training statistics of any set of blocks need no pass

Rows are grouped in **blocks** of ``block_rows`` rows (the last one may be shorter); a shard
holds ``shard_blocks`` whole blocks. A block is the unit the streaming reader fetches, shuffles
among, and holds out for validation. ``manifest.json``::

    {"format": "sgdlab-shards", "version": 1, "rows": N, "features": d,
     "example_shape": [H, W, C], "task": ...,
     "classes": [...], "feature_names": [...], "x_dtype": "float32", "y_dtype": "int32",
     "block_rows": R, "shard_blocks": S, "source": "in.csv",
     "shards": [{"x": "X-00000.npy", "y": "y-00000.npy", "rows": n,
                 "sha256_x": "...", "sha256_y": "..."}, ...]}

``example_shape`` is the shape of one example (``prod(example_shape) == d``): blocks are read
back as ``(rows, *example_shape)``. A manifest without it (written before examples had a
shape) means ``[d]``. ``stats.npy`` stays per flattened feature whatever the shape;
:meth:`ShardSet.standardizer` combines it per channel for examples of more than one axis.

Blocks are read with positioned reads (``os.preadv``) into caller-owned buffers, not through a
memory map: pages of a mapped file count in the process's resident set, so mapping 20 GB
would report (and briefly hold) 20 GB of RSS, while ``pread`` keeps it at the buffer size.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError
from .dataset import TASKS
from .split import Standardizer

MANIFEST = "manifest.json"
FORMAT = "sgdlab-shards"
VERSION = 1


def is_shard_dir(path) -> bool:
    """Whether ``path`` is a directory holding a ``manifest.json``."""
    try:
        return os.path.isdir(path) and os.path.isfile(os.path.join(path, MANIFEST))
    except TypeError:
        return False


def as_shards(X) -> "ShardSet | None":
    """A :class:`ShardSet` for a ShardSet or a directory holding ``manifest.json``, else None."""
    if isinstance(X, ShardSet):
        return X
    if isinstance(X, (str, os.PathLike)) and is_shard_dir(X):
        return ShardSet(X)
    return None


def combine_stats(counts: np.ndarray, means: np.ndarray, m2s: np.ndarray):
    """Merge per-block ``(count, mean (d,), M2 (d,))`` into the overall mean and M2.

    Chan et al.'s pairwise update, applied as one vectorised sum: with ``n = sum n_b`` and
    ``mu = sum n_b mu_b / n``, ``M2 = sum M2_b + sum n_b (mu_b - mu)^2``. Unlike
    ``E[x^2] - mu^2`` it does not cancel catastrophically when ``|mu| >> std``.
    """
    counts = np.asarray(counts, np.float64)[:, None]
    n = counts.sum()
    mean = (counts * means).sum(axis=0) / n
    m2 = m2s.sum(axis=0) + (counts * (means - mean) ** 2).sum(axis=0)
    return mean, m2, n


class ShardSet:
    """A validated shard directory: sizes, labels metadata, and block reads.

    Attributes: ``n`` rows, ``example_shape`` (one example's shape, ``(d,)`` for tabular
    data), ``d`` features per flattened example (``prod(example_shape)``), ``task``,
    ``classes``, ``feature_names``, ``block_rows``, ``n_blocks``, ``block_sizes
    (n_blocks,)``, ``name``.
    """

    def __init__(self, path):
        self.path = Path(path)
        self.name = self.path.name or str(self.path)
        man_path = self.path / MANIFEST
        if not man_path.is_file():
            raise DataError(f"{self.path}: no {MANIFEST}; create a shard set with "
                            f"'sgdlab data convert IN {self.path}'")
        try:
            m = json.loads(man_path.read_text())
        except (OSError, ValueError) as e:
            raise DataError(f"{man_path}: cannot read the manifest: {e}") from None
        if not isinstance(m, dict) or m.get("format") != FORMAT:
            raise DataError(f"{man_path}: not an sgdlab shard manifest (format is not {FORMAT!r})")
        if m.get("version") != VERSION:
            raise DataError(f"{man_path}: manifest version {m.get('version')!r} is not "
                            f"supported (this sgdlab reads version {VERSION}); convert again")
        try:
            self.n, self.d = int(m["rows"]), int(m["features"])
            self.task, self.classes = m["task"], tuple(m["classes"])
            self.feature_names = tuple(m["feature_names"])
            self.block_rows, self.shard_blocks = int(m["block_rows"]), int(m["shard_blocks"])
            self.y_dtype = np.dtype(m["y_dtype"])
            self.shards = list(m["shards"])
            rows = [int(s["rows"]) for s in self.shards]
            shape = m.get("example_shape", [self.d])
            self.example_shape = tuple(int(v) for v in shape)
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"{man_path}: manifest is missing or has a bad field: {e}") from None
        if (not self.example_shape or min(self.example_shape) < 1
                or math.prod(self.example_shape) != self.d):
            raise DataError(f"{man_path}: example_shape {list(self.example_shape)} does not "
                            f"hold the {self.d} features of a row; the manifest is damaged, "
                            "convert again")
        if self.task not in TASKS or sum(rows) != self.n or self.n < 1:
            raise DataError(f"{man_path}: inconsistent manifest (task {self.task!r}, "
                            f"{self.n} rows, shards hold {sum(rows)}); convert again")
        self._check_sizes(man_path, rows)
        self.manifest = m
        sizes = []
        for r in rows:
            full, rest = divmod(r, self.block_rows)
            sizes += [self.block_rows] * full + ([rest] if rest else [])
        self.block_sizes = np.array(sizes, np.int64)
        self.n_blocks = len(sizes)
        starts = np.cumsum([0] + [-(-r // self.block_rows) for r in rows])
        self._block_shard = np.repeat(np.arange(len(rows)), np.diff(starts))
        self._shard_first_block = starts  # block index where each shard begins
        self._fds: dict = {}
        self._stats = None
        self._checked: set = set()  # blocks whose checksum and values this process verified

    def _check_sizes(self, man_path: Path, rows: list) -> None:
        """The manifest's sizes, before anything is allocated from them: every count >= 1,
        shard names plain file names in this directory, and every feature shard at least as
        long as the rows it declares (the exact length is checked when it is opened)."""
        if self.block_rows < 1 or self.shard_blocks < 1 or min(rows, default=0) < 1:
            raise DataError(f"{man_path}: block_rows {self.block_rows}, shard_blocks "
                            f"{self.shard_blocks} and the rows of every shard must be >= 1; "
                            "the manifest is damaged, convert again")
        for s, r in zip(self.shards, rows):
            for key in ("x", "y"):
                name = s.get(key)
                if not isinstance(name, str) or os.path.basename(name) != name or \
                        name.startswith("."):
                    raise DataError(f"{man_path}: shard file name {name!r} is not a file name "
                                    "in the shard directory; the manifest is damaged, convert "
                                    "again")
            f = self.path / s["x"]
            try:
                size = os.stat(f).st_size
            except OSError as e:
                raise DataError(f"{f}: cannot read shard: {e.strerror or e}") from None
            if size < r * self.d * 4:
                raise DataError(f"{f}: {size:,} bytes, fewer than the {r:,} rows of {self.d:,} "
                                "float32 features the manifest declares; the shard set is "
                                "damaged, convert again")

    @property
    def n_classes(self) -> int:
        return len(self.classes) if self.task == "classification" else 0

    def __repr__(self) -> str:
        shape = "" if len(self.example_shape) == 1 else f", example_shape={self.example_shape}"
        return (f"ShardSet({str(self.path)!r}, n={self.n}, d={self.d}{shape}, "
                f"blocks={self.n_blocks})")

    # -- reading -------------------------------------------------------------------------------
    def _open(self, key: str, s: int):
        """``(fd, data offset)`` of shard ``s`` array ``key`` ('x' or 'y'), header checked."""
        if (key, s) in self._fds:
            return self._fds[key, s]
        f = self.path / self.shards[s][key]
        want = (int(self.shards[s]["rows"]),) + ((self.d,) if key == "x" else ())
        dtype = np.dtype(np.float32) if key == "x" else self.y_dtype
        try:
            with open(f, "rb") as fh:
                version = np.lib.format.read_magic(fh)
                read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                        else np.lib.format.read_array_header_2_0)
                shape, fortran, dt = read(fh)
                offset = fh.tell()
            fd = os.open(f, os.O_RDONLY)
        except (OSError, ValueError) as e:
            raise DataError(f"{f}: cannot read shard: {e}") from None
        if tuple(shape) != want or fortran or dt != dtype:
            os.close(fd)
            raise DataError(f"{f}: shard holds {dt} {tuple(shape)}, the manifest says "
                            f"{dtype} {want}; the shard set is damaged, convert again")
        size = offset + int(np.prod(want)) * dtype.itemsize
        if os.fstat(fd).st_size != size:  # cut short or appended to since conversion
            actual = os.fstat(fd).st_size
            os.close(fd)
            raise DataError(f"{f}: {actual:,} bytes where the manifest means {size:,}; the "
                            "shard set was changed or damaged after conversion, convert again")
        self._fds[key, s] = (fd, offset)
        return fd, offset

    def _pread(self, key: str, b: int, out: np.ndarray) -> None:
        s = int(self._block_shard[b])
        fd, offset = self._open(key, s)
        row0 = (b - int(self._shard_first_block[s])) * self.block_rows
        row_bytes = out.itemsize * (self.d if key == "x" else 1)
        view = memoryview(out.reshape(-1).view(np.uint8))
        pos, done = offset + row0 * row_bytes, 0
        while done < len(view):  # preadv may return short counts on large reads
            got = os.preadv(fd, [view[done:]], pos + done)
            if got <= 0:
                raise DataError(f"{self.path / self.shards[s][key]}: file is shorter than the "
                                "manifest says; the shard set is damaged, convert again")
            done += got

    def read_block(self, b: int, x_out: np.ndarray | None = None, y_out: np.ndarray | None = None):
        """Block ``b`` as ``X (r, *example_shape) float32`` (``(r, d)`` for tabular data) and
        ``y (r,)``, read into ``x_out``/``y_out`` (C-contiguous, ``(r, d)`` or
        ``(r, *example_shape)``: the bytes are the same).

        The first time a process reads a block, it is checked: against the manifest's CRC-32
        of the block (shard sets converted since checksums were recorded per block), and for
        values that are not finite (NaN or infinity written into a shard after conversion),
        each a :class:`DataError` naming the file and the row. Later epochs read it unchecked.
        """
        r = int(self.block_sizes[b])
        x = np.empty((r,) + self.example_shape, np.float32) if x_out is None else x_out[:r]
        y = np.empty(r, self.y_dtype) if y_out is None else y_out[:r]
        self._pread("x", b, x)
        self._pread("y", b, y)
        if b not in self._checked:
            self._check_block(b, x, y)
            self._checked.add(b)
        return x, y

    def _check_block(self, b: int, x: np.ndarray, y: np.ndarray) -> None:
        s = int(self._block_shard[b])
        entry, k = self.shards[s], b - int(self._shard_first_block[s])
        row0 = k * self.block_rows
        for key, arr in (("x", x), ("y", y)):
            sums = entry.get(f"crc32_{key}")
            if sums is not None and zlib.crc32(arr) != sums[k]:
                raise DataError(
                    f"{self.path / entry[key]}: rows {row0:,} to {row0 + len(arr) - 1:,} do not "
                    "match their checksum in the manifest; the file was changed or damaged "
                    "after conversion, convert again")
        for key, arr in (("x", x.reshape(len(x), -1)), ("y", y)):
            if arr.dtype.kind == "f" and not np.isfinite(arr).all():
                bad = np.argwhere(~np.isfinite(arr))[0]
                where = f"row {row0 + int(bad[0]):,}" + (
                    f", column {self.feature_names[int(bad[1])]!r}" if key == "x" and
                    len(self.feature_names) == self.d else "")
                raise DataError(f"{self.path / entry[key]}, {where}: {arr[tuple(bad)]} is not "
                                "a finite number; the shard set was changed after conversion "
                                "(convert checks every value), convert again")

    def read_all(self):
        """Every row in memory (for small sets and tests): ``X (N, *example_shape)``,
        ``y (N,)``."""
        parts = [self.read_block(b) for b in range(self.n_blocks)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def close(self) -> None:
        for fd, _ in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def __del__(self):  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass

    # -- statistics and checks -------------------------------------------------------------
    def standardizer(self, blocks) -> Standardizer:
        """A fitted :class:`Standardizer` for the rows of ``blocks``, from ``stats.npy`` alone.

        Same rule as :meth:`Standardizer.fit` (population std, 1 for constant columns; per
        channel for examples of more than one axis); the figures agree with a pass over the
        rows to float64 rounding, not bit for bit.

        Per channel: ``stats.npy`` holds each flattened feature's mean and M2 over ``n`` rows;
        the ``P = d / C`` positions of channel ``c`` are ``P`` groups of ``n`` values, merged
        as blocks are (:func:`combine_stats`): ``mean_c`` is the mean of their means and
        ``M2_c = sum_p M2_p + n sum_p (mean_p - mean_c)^2``.
        """
        if self._stats is None:
            try:
                self._stats = np.load(self.path / "stats.npy", allow_pickle=False)
            except (OSError, ValueError) as e:
                raise DataError(f"{self.path / 'stats.npy'}: cannot read: {e}") from None
        blocks = np.asarray(blocks)
        mean, m2, n = combine_stats(self.block_sizes[blocks], self._stats[blocks, 0],
                                    self._stats[blocks, 1])
        if len(self.example_shape) > 1:
            c = self.example_shape[-1]
            positions = self.d // c
            mean, m2, n = combine_stats(np.full(positions, n), mean.reshape(positions, c),
                                        m2.reshape(positions, c))
        std = np.sqrt(m2 / n)
        constant = std <= Standardizer._REL_TOL * np.abs(mean)
        return Standardizer(mean, np.where(constant, 1.0, std))

    def verify(self) -> None:
        """Recompute every shard's sha256 and compare with the manifest (reads everything)."""
        for s in self.shards:
            for key in ("x", "y"):
                f = self.path / s[key]
                if file_sha256(f) != s[f"sha256_{key}"]:
                    raise DataError(f"{f}: checksum does not match the manifest; the file is "
                                    "damaged or was changed, convert again")


def file_sha256(path, bufsize: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(bufsize):
            h.update(chunk)
    return h.hexdigest()
