"""One file per finished sweep run, so an interrupted sweep resumes where it stopped.

A run is stored as ``<out>/runs/<key>.json`` (written atomically: a killed sweep leaves each file
complete or absent) holding its full :class:`~sgdlab.engine.TrainConfig`, a fingerprint of the
data it saw, its summary and its history. A later sweep with the same output directory reuses a
file only when both the configuration and the data fingerprint are identical, so changing a
setting or the data never silently mixes old results in.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np

from ..data.dataset import Dataset
from ..engine.history import History
from ..engine.result import FitResult
from ..engine.rundir import prepare_dir, write_json_atomic


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


def run_key(batch_size: int, lr: float, seed: int) -> str:
    """``b0064-lr0.1414-s0``: sortable and readable in a file browser."""
    return f"b{batch_size:04d}-lr{lr:.4g}-s{seed}"


def make_record(key: str, result: FitResult, fingerprint: str, lr_multiplier: float,
                phase: str = "search") -> dict:
    """One run as stored: ``phase`` is ``pilot``, ``search`` or ``confirm`` (see the sweep)."""
    cfg = result.config
    return {"key": key, "batch_size": cfg.batch_size, "lr": cfg.lr, "seed": cfg.seed,
            "lr_multiplier": lr_multiplier, "phase": phase, "data": fingerprint,
            "config": cfg.to_dict(),
            "status": result.status, "summary": result.summary(),
            "history": [dict(r) for r in result.history]}


def _nan(v):
    return math.nan if v is None else v


def save_record(out: Path, record: dict) -> None:
    runs = prepare_dir(Path(out) / "runs")
    write_json_atomic(runs / f"{record['key']}.json", record)


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
    row columns; summary figures numbers or nulls). A file of another shape (a list, missing
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
    summary, history = record.get("summary"), record.get("history")
    if not isinstance(summary, dict) or not all(
            summary.get(k) is None or _number(summary[k]) for k in SUMMARY_FIGURES):
        return False
    if not isinstance(history, list) or not history:
        return False
    return all(isinstance(row, dict) and all(_number(row.get(c)) for c in ROW_COLUMNS) and
               all(v is None or _number(v) for v in row.values()) for row in history)


def load_record(out: Path, key: str, config: dict, fingerprint: str) -> dict | None:
    """The stored record of ``key`` if it was made with this exact config and data, else None.

    A damaged or foreign file (not JSON, or JSON of another shape: see :func:`well_formed`)
    is treated as absent: the run is simply redone and its record written again.
    """
    path = Path(out) / "runs" / f"{key}.json"
    if not path.is_file() or path.is_symlink():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        return None
    # JSON turned tuples into lists and NaN into null: compare through the same round trip.
    config = json.loads(json.dumps(config, default=list))
    if not well_formed(record, key, config) or record["data"] != fingerprint:
        return None
    record["history"] = History({k: _nan(v) for k, v in row.items()}
                                for row in record.get("history", []))
    record["summary"] = {k: _nan(v) for k, v in record.get("summary", {}).items()}
    return record
