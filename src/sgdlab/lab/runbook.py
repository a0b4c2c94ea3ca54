"""The sweep's runs, one at a time: reuse a stored run, warm up, train, record, report progress.

A run is one :func:`sgdlab.engine.train` call with a full :class:`~sgdlab.engine.TrainConfig`.
:class:`RunBook` keeps every record in the order the sweep asked for it, so the sweep itself
only decides *which* runs to make (the pilot, the learning-rate search, the confirmation).

Warm-up: the first run of a batch size after its program was compiled (or loaded) would
otherwise pay for cold caches and an idle core in its training clock and look slow. Before the
first *timed* run of each batch size, the same configuration is trained once for a few
milliseconds of training time (same program: ``max_time`` is not part of a program's shape) and
thrown away.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..data.dataset import Dataset
from ..engine.config import TrainConfig
from ..engine import train
from .records import load_record, make_record, run_key, save_record

#: Training seconds of the throw-away warm-up run of each batch size.
WARM_UP_SECONDS = 0.02


class RunBook:
    """Make (or reuse) runs and keep their records in order; see the module docstring.

    ``emit`` receives ``run_start`` / ``run_end`` events (``index``, ``total``, ``key``,
    ``batch_size``, ``lr``, ``seed``, ``phase``; ``run_end`` adds ``reused`` and ``status``)
    and ``replan`` events (``runs``: the expected number of runs, which grows as the search
    learns where the best learning rates lie).
    """

    def __init__(self, train_part: Dataset, validation: Dataset, *, fingerprint: str,
                 out: str | Path | None = None, emit: Callable[[dict], None] | None = None,
                 model=None, loss=None, warm_up: bool = True):
        self.train_part, self.validation = train_part, validation
        self.fingerprint, self.out = fingerprint, out
        self.emit = emit or (lambda event: None)
        self.model, self.loss, self.warm_up = model, loss, warm_up
        self.records: list[dict] = []
        self.expected = 0
        self._warm: set = set()

    def expect(self, more: int, extra: int = 0) -> None:
        """Announce ``more`` runs still to come (beyond those made so far)."""
        self.expected = len(self.records) + more
        self.emit({"event": "replan", "runs": self.expected, "extra": extra})

    def run(self, cfg: TrainConfig, phase: str = "search", lr_multiplier: float = 1.0) -> dict:
        """The record of ``cfg``: stored under ``out`` with the same settings and data, or
        trained now (after a warm-up if it is this batch size's first timed run)."""
        key = run_key(cfg.batch_size, cfg.lr, cfg.seed)
        key = key if phase == "search" else f"{phase}-{key}"
        index = len(self.records)
        self.expected = max(self.expected, index + 1)
        self.emit({"event": "run_start", "index": index, "total": self.expected, "key": key,
                   "batch_size": cfg.batch_size, "lr": cfg.lr, "seed": cfg.seed,
                   "phase": phase})
        record = load_record(self.out, key, cfg.to_dict(), self.fingerprint) \
            if self.out else None
        reused = record is not None
        if record is None:
            self._warm_up(cfg)
            result = train(self.train_part, self.validation, cfg, model=self.model,
                           loss=self.loss)
            record = make_record(key, result, self.fingerprint, lr_multiplier, phase)
            if self.out:
                save_record(self.out, record)
        self.records.append(record)
        self.emit({"event": "run_end", "index": index, "total": self.expected, "key": key,
                   "reused": reused, "status": record["status"],
                   "batch_size": cfg.batch_size, "phase": phase})
        return record

    def _warm_up(self, cfg: TrainConfig) -> None:
        if not self.warm_up or cfg.batch_size in self._warm:
            return
        self._warm.add(cfg.batch_size)
        seconds = min(cfg.max_time or WARM_UP_SECONDS, WARM_UP_SECONDS)
        train(self.train_part, self.validation, cfg.replace(max_time=seconds, target=None),
              model=self.model, loss=self.loss)
