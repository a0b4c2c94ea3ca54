"""Training histories as TensorBoard event files, so runs and sweep members sit side by side.

Needs the ``tensorboard`` extra (``pip install 'sgdlab[tensorboard]'``, which brings
`tensorboardX <https://github.com/lanpa/tensorboardX>`_); viewing needs TensorBoard itself
(``pip install tensorboard``, then ``tensorboard --logdir LOGDIR``).

Each run is a directory ``LOGDIR/RUN_NAME`` (TensorBoard's "run"); several runs under one
``LOGDIR`` are drawn on the same charts. Every numeric history column becomes a scalar at global
step ``row["step"]`` (:func:`tag_for` names it):

==================  ======================================  ============================
column              tag                                     step axis
==================  ======================================  ============================
train_loss          ``loss/train``                          optimisation steps
val_loss            ``loss/validation``                     optimisation steps
val_accuracy        ``accuracy/validation``                 optimisation steps
val_mse, val_r2     ``mse/validation``, ``r2/validation``   optimisation steps
train_seconds, ...  ``time/train_seconds``, ...             optimisation steps
epoch, examples     ``progress/epoch``, ``progress/...``    optimisation steps
lr                  ``optimiser/lr``                        optimisation steps
loss and metrics    ``accuracy_vs_time/validation``,        training milliseconds:
                    ``loss_vs_time/train``, ...             ``round(train_seconds*1000)``
==================  ======================================  ============================

TensorBoard has one step axis per chart, so the curves against training time (the measure
sgdlab compares batch sizes by) are written again under ``*_vs_time`` tags whose step is the
training time in milliseconds. Live, :class:`TensorBoardWriter` also writes each compiled
chunk's mean step loss as ``loss/train_chunk``. Missing and non-finite values (the first row's
``train_loss`` is NaN: no step yet) are left out; TensorBoard stores scalars as float32.

Writes are synchronous and flushed after every history row, so a write error (a full disk, a
directory removed under the run) surfaces in the training call as a
:class:`~sgdlab.errors.RunDirError`, never as a hang or a lost background-thread traceback
(tensorboardX's ``SummaryWriter`` writes on a thread; this module uses its ``RecordWriter``,
``summary.scalar`` and event protocol buffers directly).
"""

from __future__ import annotations

import io
import itertools
import math
import os
import shlex
import socket
import struct
import time
from pathlib import Path, PurePath

from ..errors import ConfigError, RunDirError
from ..files import make_directory, write_bytes_atomic

__all__ = ["MISSING_MESSAGE", "TensorBoardWriter", "sweep_run_name", "tag_for", "time_tag_for",
           "write_history", "write_sweep"]

MISSING_MESSAGE = ("TensorBoard output needs the 'tensorboard' extra: "
                   "pip install 'sgdlab[tensorboard]'")

#: Tags of the history columns (:mod:`sgdlab.engine.history`); others follow :func:`tag_for`.
TAGS = {
    "train_loss": "loss/train", "val_loss": "loss/validation",
    "val_accuracy": "accuracy/validation", "val_mse": "mse/validation",
    "val_r2": "r2/validation",
    "train_seconds": "time/train_seconds", "wall_seconds": "time/wall_seconds",
    "eval_seconds": "time/eval_seconds",
    "epoch": "progress/epoch", "examples": "progress/examples",
    "lr": "optimiser/lr",
}
_PARTS = {"train_": "train", "val_": "validation", "test_": "test"}
_NOT_VS_TIME = ("time", "progress", "optimiser", "other")
#: The tag of a chunk event's mean step loss (live writer only).
CHUNK_TAG = "loss/train_chunk"
#: The file :func:`write_history` writes (replaced, not added to, when written again).
HISTORY_FILE = "events.out.tfevents.sgdlab-history"

_serial = itertools.count()


def tag_for(column: str) -> str | None:
    """The TensorBoard tag of a history column; ``None`` for ``step`` (the step axis).

    ``val_X``, ``train_X``, ``test_X`` become ``X/validation``, ``X/train``, ``X/test``;
    ``*_seconds`` ``time/*``; anything else ``other/<column>``.
    """
    if column == "step":
        return None
    if column in TAGS:
        return TAGS[column]
    for prefix, part in _PARTS.items():
        if column.startswith(prefix) and len(column) > len(prefix):
            return f"{column[len(prefix):]}/{part}"
    if column.endswith("_seconds"):
        return f"time/{column}"
    return f"other/{column}"


def time_tag_for(column: str) -> str | None:
    """The ``*_vs_time`` tag of a loss or metric column (step: training milliseconds)."""
    tag = tag_for(column)
    if tag is None:
        return None
    section, _, part = tag.partition("/")
    return None if section in _NOT_VS_TIME else f"{section}_vs_time/{part}"


def sweep_run_name(record) -> str:
    """``"B=64 lr=2.26 seed=0"`` for a sweep record (:class:`~sgdlab.lab.records.RunRecord`);
    runs of other phases than the search (the pilot, the confirmation) are prefixed with it:
    ``"confirm B=64 lr=2.26 seed=1000"``."""
    name = f"B={record.batch_size} lr={record.lr:.3g} seed={record.seed}"
    return name if record.phase == "search" else f"{record.phase} {name}"


def _require_library():
    try:
        import tensorboardX  # noqa: F401
        from tensorboardX import summary
        from tensorboardX.proto import event_pb2
        from tensorboardX.record_writer import masked_crc32c
    except ImportError as e:
        raise ConfigError(MISSING_MESSAGE) from e
    return masked_crc32c, summary, event_pb2


def check_available() -> None:
    """Raise the :data:`MISSING_MESSAGE` error now when the writer library is not installed
    (before a long sweep, rather than after it)."""
    _require_library()


def _run_dir(logdir, run_name: str | None) -> Path:
    if run_name is None:
        return Path(logdir)
    name = str(run_name)
    parts = PurePath(name).parts
    if not name.strip() or PurePath(name).is_absolute() or ".." in parts:
        raise ConfigError(f"TensorBoard run name {name!r} must be a relative name inside the "
                          f"log directory (no '..', not absolute, not empty), e.g. 'b64-lr0.1'")
    return Path(logdir) / name


def _make_run_dir(path: Path) -> Path:
    """Create the run directory (a symbolic link there is refused: the event files written
    into it would land wherever it points)."""
    try:
        return make_directory(path, "TensorBoard run directory")
    except RunDirError as e:
        if os.path.islink(path):
            raise
        cause = e.__cause__ or e.__context__
        raise _write_error(cause, path) if isinstance(cause, OSError) else e from None


def _write_error(e: OSError, where: Path) -> RunDirError:
    reason = e.strerror or str(e)
    return RunDirError(f"cannot write TensorBoard events to {where}: {reason}; check that the "
                       f"directory exists, is writable and its disk has space, or write the "
                       f"events to another log directory")


def _number(v) -> float | None:
    """``v`` as a finite float, or ``None`` (not a number, a bool, NaN or infinite)."""
    if isinstance(v, (bool, str, bytes)) or v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _row_scalars(row: dict) -> list[tuple[str, int, float]]:
    """``[(tag, step, value)]`` of one history row (see the module docstring)."""
    step = _number(row.get("step"))
    if step is None:
        return []
    out = []
    for col, v in row.items():
        tag, value = tag_for(col), _number(v)
        if tag is not None and value is not None:
            out.append((tag, int(step), value))
    ms = _number(row.get("train_seconds"))
    if ms is not None:
        for col, v in row.items():
            tag, value = time_tag_for(col), _number(v)
            if tag is not None and value is not None:
                out.append((tag, round(ms * 1000), value))
    return out


def _create_exclusive(path: Path):
    """A new file at ``path`` for writing, created here (``O_CREAT | O_EXCL | O_NOFOLLOW``):
    a file or link planted at the name is never opened. ``-> binary file object``."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o666)
    except FileExistsError:
        what = "a symbolic link" if os.path.islink(path) else "a file sgdlab did not create"
        raise RunDirError(f"{str(path)!r} is {what}; sgdlab writes its event files only as new "
                          f"files, never through a link or over another file: remove it "
                          f"(rm {shlex.quote(str(path))}) and run again") from None
    return os.fdopen(fd, "wb")


class _EventFile:
    """One event file: a version header, then scalar events, in TFRecord framing (length,
    masked CRC32C of the length, the event, masked CRC32C of the event); synchronous writes
    to ``sink``, a binary file object (a new file, or memory for :func:`write_history`)."""

    def __init__(self, path: Path, lib, sink):
        self._lib = lib
        _, _, event_pb2 = lib
        self.path = path
        self._sink = sink
        self._write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))

    def _write(self, event) -> None:
        crc = self._lib[0]
        data = event.SerializeToString()
        header = struct.pack("<Q", len(data))
        self._sink.write(header + struct.pack("<I", crc(header)) + data +
                         struct.pack("<I", crc(data)))

    def scalars(self, items, wall_time: float) -> None:
        _, summary, event_pb2 = self._lib
        for tag, step, value in items:
            self._write(event_pb2.Event(wall_time=wall_time, step=step,
                                        summary=summary.scalar(tag, value)))

    def flush(self) -> None:
        self._sink.flush()
        if hasattr(self._sink, "fileno"):
            os.fsync(self._sink.fileno())

    def close(self) -> None:
        self._sink.close()


def _event_file_name() -> str:
    host = socket.gethostname() or "localhost"
    return (f"events.out.tfevents.{int(time.time()):010d}.{host}.{os.getpid()}."
            f"{next(_serial):06d}")


class TensorBoardWriter:
    """A training callback that writes the history as TensorBoard scalars while it grows.

    ``TensorBoardWriter(logdir, run_name)`` writes into ``logdir/run_name`` (``run_name=None``:
    ``logdir`` itself is the run), creating it. Pass it as ``callback=`` to
    :func:`sgdlab.fit` (or call it from another callback with each event): ``"row"`` events
    write every numeric column at step ``row["step"]`` and flush; ``"chunk"`` events write the
    chunk's mean step loss as ``loss/train_chunk`` (``chunks=False``: not); ``"end"`` closes
    the file. It never asks the run to stop (returns ``None``).

    A later event after ``"end"`` (a learning-rate-halving retry, a second ``fit`` with the
    same writer) opens a new event file in the same run directory, as does a resumed run
    given the same ``logdir`` and ``run_name``; TensorBoard reads them together. Steps
    trained again after the checkpoint a run resumed from then appear twice.

    Raises :class:`~sgdlab.errors.ConfigError` when tensorboardX is not installed (the
    ``tensorboard`` extra) and :class:`~sgdlab.errors.RunDirError` when the directory or file
    cannot be created or written (here or from the callback); the writer is also a context
    manager that closes the file on exit.
    """

    def __init__(self, logdir: str | os.PathLike, run_name: str | None = None, *,
                 chunks: bool = True):
        self._lib = _require_library()
        self.path = _run_dir(logdir, run_name)
        self.chunks = chunks
        self.files: list[Path] = []
        self._file: _EventFile | None = None
        self._open()

    def _open(self) -> _EventFile:
        if self._file is None:
            path = self.path / _event_file_name()
            _make_run_dir(self.path)
            try:
                sink = _create_exclusive(path)
                try:
                    self._file = _EventFile(path, self._lib, sink)
                except BaseException:
                    sink.close()
                    raise
            except OSError as e:
                raise _write_error(e, self.path) from e
            self.files.append(path)
        return self._file

    def __call__(self, event: dict) -> None:
        kind = event.get("event")
        if kind == "row":
            self.write_row(event["row"])
        elif kind == "chunk" and self.chunks:
            loss = _number(event.get("loss"))
            if loss is not None:
                self._guarded(lambda f: f.scalars([(CHUNK_TAG, int(event["step"]), loss)],
                                                  time.time()))
        elif kind == "start":
            self._open()
        elif kind == "end":
            self.close()

    def write_row(self, row: dict, wall_time: float | None = None) -> None:
        """Write one history row (every numeric column) and flush."""
        items = _row_scalars(row)

        def write(f: _EventFile):
            f.scalars(items, time.time() if wall_time is None else wall_time)
            f.flush()
        self._guarded(write)

    def _guarded(self, action) -> None:
        f = self._open()
        try:
            action(f)
        except OSError as e:
            self._drop()
            raise _write_error(e, f.path) from e

    def _drop(self) -> None:
        """Forget the open file after a write error (a later write opens a new one)."""
        f, self._file = self._file, None
        if f is not None:
            try:
                f.close()
            except OSError:
                pass

    def flush(self) -> None:
        if self._file is not None:
            self._guarded(lambda f: f.flush())

    def close(self) -> None:
        """Flush and close the current event file (idempotent)."""
        f, self._file = self._file, None
        if f is not None:
            try:
                f.close()
            except OSError as e:
                raise _write_error(e, f.path) from e

    def __enter__(self) -> TensorBoardWriter:
        return self

    def __exit__(self, *exc) -> bool:
        if exc[0] is None:
            self.close()
        else:
            self._drop()  # keep the original error
        return False


def write_history(history, logdir: str | os.PathLike, run_name: str | None = None) -> Path:
    """Write a finished run's history as the TensorBoard run ``logdir/run_name``.

    ``history``: a :class:`~sgdlab.engine.history.History` or list of row dicts (a sweep
    record's ``"history"``, ``History.from_csv_text`` of a run directory's ``history.csv``), or
    anything with a ``.history`` (a :class:`~sgdlab.FitResult`). Tags and steps as the live
    :class:`TensorBoardWriter` writes them (no ``loss/train_chunk``); each point's wall time is
    its row's ``wall_seconds`` after a start placed so the last row is now, so TensorBoard's
    "relative" axis shows the run's own clock. The file is ``HISTORY_FILE``, written like every
    sgdlab file (:func:`sgdlab.files.write_bytes_atomic`: a new temporary file of a random
    name, renamed over it; a link at the name refused): writing the same run again replaces
    it. ``-> the run directory``.
    """
    lib = _require_library()
    rows = list(getattr(history, "history", history))
    path = _run_dir(logdir, run_name)
    walls = [w for w in (_number(r.get("wall_seconds")) for r in rows) if w is not None]
    start = time.time() - (max(walls) if walls else 0.0)
    _make_run_dir(path)
    buffer = io.BytesIO()
    f = _EventFile(path / HISTORY_FILE, lib, buffer)
    for row in rows:
        wall = _number(row.get("wall_seconds"))
        f.scalars(_row_scalars(row), start + wall if wall is not None else time.time())
    write_bytes_atomic(path / HISTORY_FILE, buffer.getvalue())
    return path


def write_sweep(sweep, logdir: str | os.PathLike) -> dict:
    """Write every run of a sweep as its own TensorBoard run under ``logdir``.

    ``sweep``: a :class:`~sgdlab.lab.summary.SweepResult` (:func:`sgdlab.sweep`'s result; its
    ``records``) or a list of its records (:class:`~sgdlab.lab.records.RunRecord`). Runs are
    named by :func:`sweep_run_name`
    (``"B=64 lr=2.26 seed=0"``, with more digits of the learning rate where two would share a
    name). ``-> {run name: run directory}`` in the sweep's order.
    """
    records = list(getattr(sweep, "records", sweep))
    _require_library()
    names: dict[str, dict] = {}
    for rec in records:
        name = sweep_run_name(rec)
        if name in names:
            name = name.replace(f"lr={rec.lr:.3g}", f"lr={rec.lr:.10g}")
        base, i = name, 2
        while name in names:
            name, i = f"{base} ({i})", i + 1
        names[name] = rec
    return {name: write_history(rec.history, logdir, name) for name, rec in names.items()}
