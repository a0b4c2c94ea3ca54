"""The sweep's runs: reuse a stored run, or train it; record it; report progress.

A run is one :func:`sgdlab.engine.train` call with a full :class:`~sgdlab.engine.TrainConfig`,
asked for as a :class:`RunRequest`. :class:`RunBook` keeps every record in the order the sweep
asked for it, so the sweep itself only decides *which* runs to make (the pilot, the rounds of
the learning-rate searches, the confirmation). The requests of one call of
:meth:`RunBook.run_all` do not depend on each other: they may run in any order (here one after
another, in the order given, or ``threads`` at a time in threads of this process,
:class:`ThreadWorkers`; with an *executor*, e.g.
:class:`~sgdlab.lab.ray_executor.RayExecutor`, concurrently on its workers, each record
written by this process as it arrives). Whatever is timed for a comparison (the probe, the
replays) goes through :meth:`RunBook.timed`: here, or on the executor's one timing worker.

An executor has one method, ``start(book) -> workers``, called at the first run; the workers
have ``device`` (the device kind every run is made on), ``make_all(requests, started,
finished)`` (make the records of ``requests``: ``started(i)`` when request ``i`` is handed to
a worker, ``finished(i, record)`` as each arrives), ``call(fn, *args)`` (``fn(book, *args)`` on
the timing worker, with that worker's own book of the sweep's data) and ``close()``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..data.dataset import Dataset
from ..engine import place_data, train
from ..engine.config import TrainConfig
from .records import RunRecord, here, load_record, make_record, run_key, save_record


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
    learns where the best learning rates lie). ``executor``: where runs are made (module
    docstring); None: here, one after another, or ``threads`` at a time (:class:`ThreadWorkers`:
    only where nothing reads the runs' clocks).
    """

    def __init__(self, train_part: Dataset, validation: Dataset, *, fingerprint: str,
                 out: str | Path | None = None, emit: Callable[[dict], None] | None = None,
                 model=None, loss=None, executor=None, threads: int = 1):
        self.train_part, self.validation = train_part, validation
        self.fingerprint, self.out = fingerprint, out
        self.emit = emit or (lambda event: None)
        self.model, self.loss = model, loss
        self.placed = None  # the data on the device, prepared once for every run
        self.records: list[RunRecord] = []
        self.expected = 0
        self.reused = 0
        self.executor, self.workers = executor, None
        self.threads = threads

    @property
    def device(self) -> str:
        """The device kind every run of this book is made on (records of another are redone)."""
        return self.started().device if self.executor is not None else here().device

    def started(self):
        """The executor's workers for this book (without an executor, ``threads`` threads of
        this process: :class:`ThreadWorkers`), started at the first call."""
        if self.workers is None:
            self.workers = self.executor.start(self) if self.executor is not None else \
                ThreadWorkers(self, self.threads)
        return self.workers

    def close(self) -> None:
        """Let the executor's workers go (nothing to do without one)."""
        if self.workers is not None:
            self.workers.close()
            self.workers = None

    def expect(self, more: int, extra: int = 0) -> None:
        """Announce ``more`` runs still to come (beyond those made so far)."""
        self.expected = len(self.records) + more
        self.emit({"event": "replan", "runs": self.expected, "extra": extra})

    def run_all(self, requests: list[RunRequest]) -> list[RunRecord]:
        """The records of ``requests``, in their order."""
        if self.executor is None and (self.threads <= 1 or len(requests) < 2):
            return [self.run(r) for r in requests]
        return self._run_on_workers(requests)

    def _stored(self, request: RunRequest) -> RunRecord | None:
        return load_record(self.out, request.key, request.config.to_dict(), self.fingerprint,
                           self.device) if self.out else None

    def _start_event(self, index: int, request: RunRequest) -> None:
        cfg = request.config
        self.expected = max(self.expected, index + 1)
        self.emit({"event": "run_start", "index": index, "total": self.expected,
                   "key": request.key, "batch_size": cfg.batch_size, "lr": cfg.lr,
                   "seed": cfg.seed, "phase": request.phase})

    def _end_event(self, index: int, request: RunRequest, record: RunRecord,
                   reused: bool) -> None:
        self.emit({"event": "run_end", "index": index, "total": self.expected,
                   "key": request.key, "reused": reused, "status": record.status,
                   "batch_size": request.config.batch_size, "phase": request.phase})

    def _run_on_workers(self, requests: list[RunRequest]) -> list[RunRecord]:
        """:meth:`run_all` on the executor's workers: stored records reused, the others made
        concurrently and each saved (atomically, by this process) as it arrives."""
        first = len(self.records)
        records = [self._stored(r) for r in requests]
        for i, (request, record) in enumerate(zip(requests, records)):
            if record is not None:
                self._start_event(first + i, request)
                self._end_event(first + i, request, record, True)
        todo = [i for i, record in enumerate(records) if record is None]

        def started(j: int) -> None:
            self._start_event(first + todo[j], requests[todo[j]])

        def finished(j: int, record: RunRecord) -> None:
            i = todo[j]
            if self.out:
                save_record(self.out, record)
            records[i] = record
            self._end_event(first + i, requests[i], record, False)

        if todo:
            self.started().make_all([requests[i] for i in todo], started, finished)
        self.reused += len(requests) - len(todo)
        self.records.extend(records)
        return records

    def make(self, request: RunRequest) -> RunRecord:
        """Train ``request`` here and record it (nothing stored, nothing reused)."""
        result = self.train(request.config)
        return make_record(result, self.fingerprint, request.phase,
                           lr_multiplier=request.lr_multiplier, x=request.x,
                           cap_reason=request.cap_reason)

    def timed(self, fn: Callable, *args, progress: Callable | None = None):
        """``fn(book, *args, progress=...)`` where this sweep's times are measured: here (no
        run of the book in flight), or on the executor's one timing worker (with its own book
        of the same data, and no progress reports), so every time of a comparison comes from
        one device."""
        if self.executor is None:
            return fn(self, *args, progress=progress)
        return self.started().call(fn, *args)

    def run(self, request: RunRequest) -> RunRecord:
        """The record of ``request``: stored under ``out`` with the same settings and data, or
        trained now."""
        index = len(self.records)
        self._start_event(index, request)
        record = self._stored(request)
        reused = record is not None
        if record is None:
            record = self.make(request)
            if self.out:
                save_record(self.out, record)
        self.reused += reused
        self.records.append(record)
        self._end_event(index, request, record, reused)
        return record

    def train(self, cfg: TrainConfig, *, init_params=None, callback=None):
        """One run of ``cfg`` on the sweep's data (prepared on the device once, by the first
        run, for all of them), from ``init_params`` when given (a branch of a batch-size
        warmup), with ``callback`` (:func:`sgdlab.engine.train`'s)."""
        self.place(cfg)
        return train(self.train_part, self.validation, cfg, model=self.model, loss=self.loss,
                     placed=self.placed, init_params=init_params, callback=callback)

    def place(self, cfg: TrainConfig) -> None:
        """Put the sweep's data on the device for runs like ``cfg``, unless it is there
        (prepared alike for every batch size and batch schedule)."""
        if self.placed is None:
            one = cfg.replace(batch_schedule=None, lr_scaling="none")
            self.placed = place_data(self.train_part, self.validation, one, model=self.model,
                                     loss=self.loss)


class ThreadWorkers:
    """The workers of a :class:`RunBook` without an executor: ``threads`` runs made at once
    in threads of this process (a compiled call releases the interpreter lock, so the runs
    of a round use as many CPU cores). Their records are those of runs made one after
    another (each run depends on its configuration and seed alone); their clocks share the
    machine, so the sweep times nothing this way (:meth:`RunBook.timed` runs alone)."""

    def __init__(self, book: RunBook, threads: int):
        self.book, self.threads = book, threads
        self.device = here().device

    def make_all(self, requests: list[RunRequest], started: Callable,
                 finished: Callable) -> None:
        """Make ``requests`` concurrently; ``started(i)`` (as request ``i`` is handed to the
        threads) and ``finished(i, record)`` (as each run ends) are called from this thread.
        A run that fails (or an interrupt) cancels the runs not begun; the records finished
        by then have been handed to ``finished``."""
        self.book.place(requests[0].config)  # once, before the threads share it
        pool = ThreadPoolExecutor(max_workers=self.threads)
        try:
            running = {}
            for i, request in enumerate(requests):
                started(i)
                running[pool.submit(self.book.make, request)] = i
            for future in as_completed(running):
                finished(running[future], future.result())
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def call(self, fn: Callable, *args):
        return fn(self.book, *args)

    def close(self) -> None:
        """Nothing to let go: the threads end with each :meth:`make_all`."""
