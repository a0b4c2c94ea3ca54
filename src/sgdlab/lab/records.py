"""One file per finished sweep run, so an interrupted sweep resumes where it stopped.

A run is a :class:`RunRecord`, stored as ``<out>/runs/<key>.json`` (written atomically: a killed
sweep leaves each file complete or absent) holding its full
:class:`~sgdlab.engine.TrainConfig`, a fingerprint of the data it saw, its summary and its
history. A later sweep with the same output directory reuses a file only when both the
configuration and the data fingerprint are identical, so changing a setting or the data never
silently mixes old results in; a damaged or foreign file is treated as absent (the run is
redone).
Each record also names where it ran (:class:`Placement`: the node and the device kind), and a
sweep reuses only records made on the device kind it runs on.
"""

from __future__ import annotations

import hashlib
import json
import functools
import math
import os
import socket
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.dataset import Dataset
from ..engine.history import History
from ..engine.result import FitResult
from ..engine.rundir import prepare_dir, write_json_atomic

#: Why a run was allowed no more steps (``RunRecord.cap_reason``): the sweep's per-run budget,
#: a multiple of the best time so far (:mod:`.caps`), or none beyond its own settings.
CAP_REASONS = ("budget", "behind", "")


@dataclass(frozen=True)
class Placement:
    """Where a run was made: ``node`` (the host name) and ``device`` (the device kind: an
    accelerator's model, e.g. ``NVIDIA H100 80GB HBM3``, or ``cpu: <model> (<n> cores)``).
    Times are comparable only between runs of one device kind."""

    node: str = ""
    device: str = ""

    def to_dict(self) -> dict:
        return {"node": self.node, "device": self.device}

    @classmethod
    def from_dict(cls, d: dict) -> "Placement":
        if not (isinstance(d, dict) and isinstance(d.get("node"), str)
                and isinstance(d.get("device"), str)):
            raise ValueError(f"a placement is {{'node': str, 'device': str}}, got {d!r}")
        return cls(d["node"], d["device"])


@functools.lru_cache(maxsize=1)
def here() -> Placement:
    """The :class:`Placement` of runs made by this process (on its first JAX device)."""
    from ..engine.rundir import environment
    env = environment()
    device = env["device"] if env["platform"] != "cpu" else \
        f"cpu: {env['cpu'] or 'unknown model'} ({os.cpu_count()} cores)"
    return Placement(socket.gethostname(), device)


@dataclass(frozen=True)
class RunRecord:
    """One finished run of a sweep.

    ``phase`` is ``pilot`` (chooses the target), ``search`` (a point of a learning-rate
    search), ``confirm`` (fresh seeds at the recommendation) or ``extra`` (more seeds for the
    tied batch sizes when the confirmation contradicted the sweep);
    ``x`` is the search exponent of its learning rate (``lr = lr_0(B) * factor**x``, None
    outside the search); ``cap_reason`` says what set ``config["max_steps"]``
    (:data:`CAP_REASONS`); ``history`` has one row per evaluation; ``ran_on`` names the node
    and device kind that made the run.
    """

    key: str
    batch_size: int
    lr: float
    seed: int
    phase: str
    data: str
    config: dict
    status: str
    summary: dict
    history: History
    lr_multiplier: float = 1.0
    x: float | None = None
    cap_reason: str = ""
    ran_on: Placement = Placement()

    @property
    def cap(self) -> int | None:
        """The most steps the run was allowed (None: no step cap)."""
        return self.config.get("max_steps")

    def to_dict(self) -> dict:
        return {"key": self.key, "batch_size": self.batch_size, "lr": self.lr,
                "seed": self.seed, "phase": self.phase, "data": self.data,
                "config": self.config, "status": self.status, "summary": self.summary,
                "history": [dict(r) for r in self.history],
                "lr_multiplier": self.lr_multiplier, "x": self.x,
                "cap_reason": self.cap_reason, "ran_on": self.ran_on.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> "RunRecord":
        """A record read back from JSON (``null`` figures become NaN); raises ``KeyError``,
        ``TypeError`` or ``ValueError`` on a file of the wrong shape."""
        history = History({str(k): _nan(v) for k, v in row.items()} for row in d["history"])
        summary = {str(k): _nan(v) for k, v in dict(d["summary"]).items()}
        x = d.get("x")
        return cls(key=str(d["key"]), batch_size=int(d["batch_size"]), lr=float(d["lr"]),
                   seed=int(d["seed"]), phase=str(d["phase"]), data=str(d["data"]),
                   config=dict(d["config"]), status=str(d["status"]), summary=summary,
                   history=history, lr_multiplier=float(d.get("lr_multiplier", 1.0)),
                   x=None if x is None else float(x),
                   cap_reason=str(d.get("cap_reason", "")),
                   ran_on=Placement.from_dict(d["ran_on"]))


def data_fingerprint(*parts: Dataset | None) -> str:
    """SHA-256 (first 16 hex digits) of the features and labels of every part, in order."""
    h = hashlib.sha256()
    for ds in parts:
        if ds is None:
            h.update(b"none")
            continue
        for a in (ds.X, ds.y):
            a = np.ascontiguousarray(a)
            h.update(str((a.dtype.str, a.shape)).encode())
            h.update(a.tobytes())
    return h.hexdigest()[:16]


def run_key(batch_size: int, lr: float, seed: int, phase: str = "search") -> str:
    """``b0064-lr0.1414-s0`` (a search run) or ``confirm-b0064-lr0.1414-s1000``: sortable and
    readable in a file browser."""
    key = f"b{batch_size:04d}-lr{lr:.4g}-s{seed}"
    return key if phase == "search" else f"{phase}-{key}"


def make_record(result: FitResult, fingerprint: str, phase: str = "search", *,
                lr_multiplier: float = 1.0, x: float | None = None,
                cap_reason: str = "", ran_on: Placement | None = None) -> RunRecord:
    """The record of one finished run (see :class:`RunRecord`), made here unless ``ran_on``
    says otherwise."""
    cfg = result.config
    return RunRecord(key=run_key(cfg.batch_size, cfg.lr, cfg.seed, phase),
                     batch_size=cfg.batch_size, lr=cfg.lr, seed=cfg.seed, phase=phase,
                     data=fingerprint, config=cfg.to_dict(), status=result.status,
                     summary=result.summary(), history=History(dict(r) for r in result.history),
                     lr_multiplier=lr_multiplier, x=x, cap_reason=cap_reason,
                     ran_on=ran_on or here())


def _nan(v):
    return math.nan if v is None else v


def save_record(out: Path, record: RunRecord) -> None:
    runs = prepare_dir(Path(out) / "runs")
    write_json_atomic(runs / f"{record.key}.json", record.to_dict())


#: history columns every stored row has (what the sweep's tables read from it)
ROW_COLUMNS = ("step", "epoch", "examples", "train_seconds")
#: summary figures the sweep's tables read (each a number or null)
SUMMARY_FIGURES = ("steps", "train_seconds", "eval_seconds", "compile_seconds",
                   "examples_per_second")


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def well_formed(record, key: str, config: dict) -> bool:
    """Whether ``record`` (parsed JSON) has the shape :func:`make_record` writes, for ``key``
    and ``config``: a dict whose every entry the sweep reads has its type (batch size, rate
    and seed those of the config; a known status; history rows of numbers or nulls with the
    row columns; summary figures numbers or nulls; a placement of two names). A file of another
    shape (a list, missing
    or mistyped keys) is treated as absent, never half-read."""
    from ..engine.result import STATUSES
    if not isinstance(record, dict) or record.get("key") != key:
        return False
    if record.get("config") != config or not isinstance(record.get("data"), str):
        return False
    if any(record.get(k) != config.get(k) or not _number(record.get(k))
           for k in ("batch_size", "lr", "seed")):
        return False
    if record.get("status") not in STATUSES or not isinstance(record.get("phase"), str) or \
            not _number(record.get("lr_multiplier")):
        return False
    ran_on = record.get("ran_on")
    if not isinstance(ran_on, dict) or not all(isinstance(ran_on.get(k), str)
                                               for k in ("node", "device")):
        return False
    summary, history = record.get("summary"), record.get("history")
    if not isinstance(summary, dict) or not all(
            summary.get(k) is None or _number(summary[k]) for k in SUMMARY_FIGURES):
        return False
    if not isinstance(history, list) or not history:
        return False
    return all(isinstance(row, dict) and all(_number(row.get(c)) for c in ROW_COLUMNS) and
               all(v is None or _number(v) for v in row.values()) for row in history)


def load_record(out: Path, key: str, config: dict, fingerprint: str,
                device: str | None = None) -> RunRecord | None:
    """The stored record of ``key`` if it was made with this exact config and data (and, given
    ``device``, on that device kind: steps may differ between kinds), else None.

    A damaged or foreign file (not JSON, or JSON of another shape: see :func:`well_formed`)
    is treated as absent: the run is simply redone and its record written again.
    """
    path = Path(out) / "runs" / f"{key}.json"
    if not path.is_file() or path.is_symlink():
        return None
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        return None
    # JSON turned tuples into lists and NaN into null: compare through the same round trip.
    config = json.loads(json.dumps(config, default=list))
    if not well_formed(stored, key, config) or stored["data"] != fingerprint:
        return None
    if device is not None and stored["ran_on"]["device"] != device:
        return None
    try:
        return RunRecord.from_dict(stored)
    except (KeyError, TypeError, ValueError):
        return None


def stored_result(out, name: str, key: dict, compute, parse=lambda value: value):
    """``parse(compute())``, stored in ``out/name`` with ``key`` and reused while the key
    matches (the probe and the noise run of a resumed sweep); without ``out``, just computed.
    A stored file that is damaged, or whose value ``parse`` refuses (any ``KeyError``,
    ``TypeError`` or ``ValueError``), is treated as absent and computed again."""
    path = Path(out) / name if out else None
    key = json.loads(json.dumps(key, default=str))
    if path is not None and path.is_file() and not path.is_symlink():
        try:
            stored = json.loads(path.read_text())
            if isinstance(stored, dict) and stored.get("key") == key:
                return parse(stored["value"])
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
            pass
    value = compute()
    if path is not None:
        write_json_atomic(path, {"key": key, "value": value})
    return parse(json.loads(json.dumps(value, default=str)))
