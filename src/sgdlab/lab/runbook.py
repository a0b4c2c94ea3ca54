"""The sweep's runs: reuse a stored run, or train it; record it; report progress.

A run is one :func:`sgdlab.engine.train` call with a full :class:`~sgdlab.engine.TrainConfig`,
asked for as a :class:`RunRequest`. :class:`RunBook` keeps every record in the order the sweep
asked for it, so the sweep itself only decides *which* runs to make (the pilot, the rounds of
the learning-rate searches, the confirmation). The requests of one call of
:meth:`RunBook.run_all` do not depend on each other: they may run in any order (here one after
another, in the order given).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..data.dataset import Dataset
from ..engine import place_data, train
from ..engine.config import TrainConfig
from .records import RunRecord, load_record, make_record, run_key, save_record


@dataclass(frozen=True)
class RunRequest:
    """One run the sweep wants: its configuration (``max_steps`` its cap), its ``phase``
    (``pilot``, ``search`` or ``confirm``), and what the record keeps besides: the multiplier
    of the scaling rule's learning rate, the search exponent ``x`` and why it was capped."""

    config: TrainConfig
    phase: str = "search"
    lr_multiplier: float = 1.0
    x: float | None = None
    cap_reason: str = ""

    @property
    def key(self) -> str:
        c = self.config
        return run_key(c.batch_size, c.lr, c.seed, self.phase)


class RunBook:
    """Make (or reuse) runs and keep their records in order; see the module docstring.

    ``emit`` receives ``run_start`` / ``run_end`` events (``index``, ``total``, ``key``,
    ``batch_size``, ``lr``, ``seed``, ``phase``; ``run_end`` adds ``reused`` and ``status``)
    and ``replan`` events (``runs``: the expected number of runs, which grows as the search
    learns where the best learning rates lie).
    """

    def __init__(self, train_part: Dataset, validation: Dataset, *, fingerprint: str,
                 out: str | Path | None = None, emit: Callable[[dict], None] | None = None,
                 model=None, loss=None):
        self.train_part, self.validation = train_part, validation
        self.fingerprint, self.out = fingerprint, out
        self.emit = emit or (lambda event: None)
        self.model, self.loss = model, loss
        self.placed = None  # the data on the device, prepared once for every run
        self.records: list[RunRecord] = []
        self.expected = 0
        self.reused = 0

    def expect(self, more: int, extra: int = 0) -> None:
        """Announce ``more`` runs still to come (beyond those made so far)."""
        self.expected = len(self.records) + more
        self.emit({"event": "replan", "runs": self.expected, "extra": extra})

    def run_all(self, requests: list[RunRequest]) -> list[RunRecord]:
        """The records of ``requests``, in their order."""
        return [self.run(r) for r in requests]

    def run(self, request: RunRequest) -> RunRecord:
        """The record of ``request``: stored under ``out`` with the same settings and data, or
        trained now."""
        cfg, key = request.config, request.key
        index = len(self.records)
        self.expected = max(self.expected, index + 1)
        self.emit({"event": "run_start", "index": index, "total": self.expected, "key": key,
                   "batch_size": cfg.batch_size, "lr": cfg.lr, "seed": cfg.seed,
                   "phase": request.phase})
        record = load_record(self.out, key, cfg.to_dict(), self.fingerprint) \
            if self.out else None
        reused = record is not None
        if record is None:
            result = self.train(cfg)
            record = make_record(result, self.fingerprint, request.phase,
                                 lr_multiplier=request.lr_multiplier, x=request.x,
                                 cap_reason=request.cap_reason)
            if self.out:
                save_record(self.out, record)
        self.reused += reused
        self.records.append(record)
        self.emit({"event": "run_end", "index": index, "total": self.expected, "key": key,
                   "reused": reused, "status": record.status,
                   "batch_size": cfg.batch_size, "phase": request.phase})
        return record

    def train(self, cfg: TrainConfig):
        """One run of ``cfg`` on the sweep's data (prepared on the device once, by the first
        run, for all of them)."""
        if self.placed is None:
            self.placed = place_data(self.train_part, self.validation, cfg, model=self.model,
                                     loss=self.loss)
        return train(self.train_part, self.validation, cfg, model=self.model, loss=self.loss,
                     placed=self.placed)
