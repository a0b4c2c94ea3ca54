"""One file per finished sweep run, so an interrupted sweep resumes where it stopped.

A run is a :class:`RunRecord`, stored as ``<out>/runs/<key>.json`` (written atomically: a killed
sweep leaves each file complete or absent) holding its full
:class:`~sgdlab.engine.TrainConfig`, a fingerprint of the data it saw, its summary and its
history. A later sweep with the same output directory reuses a file only when both the
configuration and the data fingerprint are identical, so changing a setting or the data never
silently mixes old results in; a damaged or foreign file is treated as absent (the run is
redone).
"""

from __future__ import annotations

import hashlib
import json
import math
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
class RunRecord:
    """One finished run of a sweep.

    ``phase`` is ``pilot`` (chooses the target), ``search`` (a point of a learning-rate
    search), ``confirm`` (fresh seeds at the recommendation) or ``extra`` (more seeds for the
    tied batch sizes when the confirmation contradicted the sweep);
    ``x`` is the search exponent of its learning rate (``lr = lr_0(B) * factor**x``, None
    outside the search); ``cap_reason`` says what set ``config["max_steps"]``
    (:data:`CAP_REASONS`); ``history`` has one row per evaluation.
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
                "cap_reason": self.cap_reason}

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
                   cap_reason=str(d.get("cap_reason", "")))


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
                cap_reason: str = "") -> RunRecord:
    """The record of one finished run (see :class:`RunRecord`)."""
    cfg = result.config
    return RunRecord(key=run_key(cfg.batch_size, cfg.lr, cfg.seed, phase),
                     batch_size=cfg.batch_size, lr=cfg.lr, seed=cfg.seed, phase=phase,
                     data=fingerprint, config=cfg.to_dict(), status=result.status,
                     summary=result.summary(), history=History(dict(r) for r in result.history),
                     lr_multiplier=lr_multiplier, x=x, cap_reason=cap_reason)


def _nan(v):
    return math.nan if v is None else v


def save_record(out: Path, record: RunRecord) -> None:
    runs = prepare_dir(Path(out) / "runs")
    write_json_atomic(runs / f"{record.key}.json", record.to_dict())


def load_record(out: Path, key: str, config: dict, fingerprint: str) -> RunRecord | None:
    """The stored record of ``key`` if it was made with this exact config and data, else None.

    A damaged or foreign file (not JSON, JSON of another shape, missing fields) is treated as
    absent: the run is simply redone.
    """
    path = Path(out) / "runs" / f"{key}.json"
    if not path.is_file():
        return None
    try:
        stored = json.loads(path.read_text())
        record = RunRecord.from_dict(stored)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    # JSON turned tuples into lists and NaN into null: compare through the same round trip.
    same_config = record.config == json.loads(json.dumps(config, default=list))
    if not same_config or record.data != fingerprint or record.key != key:
        return None
    return record


def stored_result(out, name: str, key: dict, compute):
    """``compute()``, stored in ``out/name`` with ``key`` and reused while the key matches
    (the probe and the noise run of a resumed sweep); without ``out``, just ``compute()``."""
    path = Path(out) / name if out else None
    key = json.loads(json.dumps(key, default=str))
    if path is not None and path.is_file():
        try:
            stored = json.loads(path.read_text())
            if isinstance(stored, dict) and stored.get("key") == key:
                return stored["value"]
        except (OSError, ValueError, KeyError):
            pass
    value = compute()
    if path is not None:
        write_json_atomic(path, {"key": key, "value": value})
    return value
