"""The batch-size sweep: which batch size (and learning rate) reaches the target fastest here.

The recipe of the source text, made measurable and fair: fix the other hyperparameters, train
with several batch sizes, each **at its own best learning rate** (Shallue et al. 2018: no
scaling rule holds everywhere), plot validation accuracy against *training time* (not epochs)
and pick the batch size that reaches the target soonest.

1. **Target.** Given, or chosen by a *pilot*: at the swept batch size nearest the base batch,
   the search's first bracket of learning rates trains for the whole budget, and the target is
   0.99 x the best final validation value, floored to 0.01.
2. **Search** (:mod:`.lr_search`, the default). For each batch size ``B`` the scaling rule
   gives the centre ``lr_0(B) = scaled_lr(lr, B, base_batch, rule)`` of a log-spaced bracket,
   widened until the best point is interior and refined once; every point is every seed.
   ``lr_grid`` tries fixed multipliers of ``lr_0(B)`` instead, and ``lr_search=False`` keeps
   ``lr_0(B)`` alone (the scaling rule, the old behaviour).
3. **Runs stop at the target** (``stop_at_target``), under a per-run budget cap (training
   seconds, epochs or steps), so no run trains past the crossing for nothing. The learning
   rate and the seed are runtime inputs of the compiled chunk: one compiled training program
   per batch size serves the whole search. A warm-up precedes each batch size's first timed
   run (:mod:`.runbook`).
4. **Summary** (:mod:`.summary`): per batch size the learning rate ranked best by
   :func:`.lr_search.rank` (every seed reached, then the fewest median steps: the same program,
   so the fastest); between batch sizes the lowest median time,
   with a bootstrap test of the winner against the others, a confirmation with fresh seeds,
   the decomposition time = steps x seconds per step, and the noise scales.

Runs are evaluated often (by default every ``max(4, ceil(0.1 * steps_per_epoch))`` steps,
plus ``budget / 50`` of training time when the budget is a time), and the target crossing is
interpolated between rows (:mod:`.measure`), so time-to-target neither counts evaluation nor
depends much on how often one evaluates. A divergent run is recorded as such and the sweep
goes on.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..data.dataset import Dataset
from ..data.sampling import steps_per_epoch
from ..data.split import split
from ..engine import cache
from ..engine.config import TrainConfig
from ..engine.schedule import parse_duration, reads_as_duration
from ..errors import ConfigError
from ..optim import LR_SCALINGS, check_rate, scaled_lr
from .lr_search import Outcome, search_lr
from .measure import crossing, final_metric, median, metric_name, target_from
from .records import data_fingerprint, run_key
from .next_run import confirmation_sentence, train_command
from .runbook import RunBook
from .summary import (SweepResult, confirmation_row, nearest_to_base, summarise,
                      write_tables)

#: Confirmation runs use seeds ``base.seed + CONFIRM_SEED_OFFSET + i``: fresh, never searched.
CONFIRM_SEED_OFFSET = 1000

_COUNT = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(epochs?|ep|steps?)\s*$")


def parse_budget(text: str) -> dict:
    """Per-run stopping rule as TrainConfig fields: ``"30s"``, ``"2 min"``, ``"5 epochs"``,
    ``"2000 steps"``.

    >>> parse_budget("5 epochs")
    {'epochs': 5.0, 'max_steps': None, 'max_time': None}
    """
    m = _COUNT.match(str(text).lower())
    if m:
        value = float(m.group(1))
        if value <= 0:
            raise ConfigError(f"budget must be > 0, got {text!r}")
        if m.group(2).startswith("step"):
            if value != int(value):
                raise ConfigError(f"a budget in steps must be whole, got {text!r}")
            return {"epochs": None, "max_steps": int(value), "max_time": None}
        return {"epochs": value, "max_steps": None, "max_time": None}
    if not reads_as_duration(text):
        raise ConfigError(f"cannot read budget {text!r}; write a training time ('30s', "
                          "'2 min'), epochs ('5 epochs') or steps ('2000 steps')")
    try:
        seconds = parse_duration(text)
    except ConfigError:  # read, but not a finite time > 0
        raise ConfigError(f"budget must be a finite time > 0, got {text!r}") from None
    return {"epochs": None, "max_steps": None, "max_time": seconds}


def default_batch_sizes(n: int, largest: int = 1024) -> tuple:
    """Powers of two from 1 up to ``min(largest, n)``: ``(1, 2, 4, ..., 1024)``."""
    top = min(largest, n)
    return tuple(2 ** i for i in range(int(math.log2(top)) + 1))


@dataclass(frozen=True)
class SweepConfig:
    """What a sweep varies and how long each run may train; one default per line."""

    batch_sizes: tuple | None = None  # None: powers of two from 1 to min(1024, N)
    lr: float = 0.1                   # base learning rate lr0, at base_batch
    base_batch: int = 32              # B0 of the scaling rule
    lr_scaling: str = "sqrt"          # none | linear | sqrt: the search's centre lr_0(B)
    lr_search: bool = True            # search the lr per batch size (False: lr_0(B) alone)
    lr_grid: tuple | None = None      # fixed multipliers of lr_0(B) instead of the search
    search_factor: float = 4.0        # ratio of neighbouring lrs of the search's bracket
    search_points: int = 8            # at most this many lrs per batch size
    seeds: int = 3                    # repeats per (batch size, lr); medians and ranges
    target: float | None = None       # validation accuracy (R^2); None: from the pilot
    budget: str = "0.2s"              # cap per run: training time, 'N epochs' or 'N steps'
    eval_every: str | None = None     # None: the per-batch-size default (module docstring)
    stop_at_target: bool = True       # end each run at the target
    confirm: bool = True              # re-run the recommendation with fresh seeds
    warm_up: bool = True              # an untimed run before each batch size's first
    probe: bool = True                # time steps per batch size (throughput probe)
    noise: bool = True                # measure the gradient noise scales
    noise_batches: tuple | None = None  # (small, big); None: smallest and largest batch sizes
    noise_draws: int = 16             # pairs of batches per evaluation row of the noise run

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen dataclass)
        if self.batch_sizes is not None:
            sizes = tuple(self.batch_sizes)
            if not sizes or any(not isinstance(b, int) or isinstance(b, bool) or b < 1
                                for b in sizes):
                raise ConfigError(f"batch sizes must be whole numbers >= 1, got {sizes!r}; "
                                  "e.g. --batch-sizes 1,4,16,64")
            set_("batch_sizes", tuple(sorted(set(sizes))))
        check_rate(self.lr)
        if not isinstance(self.base_batch, int) or self.base_batch < 1:
            raise ConfigError(f"base batch must be a whole number >= 1, got {self.base_batch!r}")
        if self.lr_scaling not in LR_SCALINGS:
            raise ConfigError(f"unknown learning-rate scaling {self.lr_scaling!r}; valid "
                              f"scalings: {', '.join(LR_SCALINGS)}")
        if self.lr_grid is not None:
            grid = tuple(float(m) for m in self.lr_grid)
            if not grid or any(not (math.isfinite(m) and m > 0) for m in grid):
                raise ConfigError(f"learning-rate grid multipliers must be numbers > 0, got "
                                  f"{self.lr_grid!r}; e.g. --lr-grid 0.5,1,2")
            set_("lr_grid", tuple(sorted(set(grid))))
        if not (isinstance(self.search_factor, (int, float)) and self.search_factor > 1
                and math.isfinite(self.search_factor)):
            raise ConfigError(f"search factor must be a number > 1, got "
                              f"{self.search_factor!r}; e.g. --search-factor 4")
        if not isinstance(self.search_points, int) or self.search_points < 3:
            raise ConfigError(f"search points must be a whole number >= 3 (a bracket), got "
                              f"{self.search_points!r}")
        if not isinstance(self.seeds, int) or self.seeds < 1:
            raise ConfigError(f"seeds must be a whole number >= 1, got {self.seeds!r}")
        if self.target is not None and (isinstance(self.target, bool) or not isinstance(
                self.target, (int, float)) or not math.isfinite(self.target)):
            raise ConfigError(f"target must be a finite number (an accuracy or R^2), got "
                              f"{self.target}")
        if self.target is not None and not self.target <= 1.0:
            raise ConfigError(f"target must be at most 1 (an accuracy or R^2), got {self.target}")
        parse_budget(self.budget)
        if self.noise_batches is not None:
            from .noise import check_batches
            check_batches(*tuple(self.noise_batches))
            set_("noise_batches", tuple(self.noise_batches))

    @property
    def lr_mode(self) -> str:
        """``grid`` (fixed multipliers), ``search`` (the default) or ``rule`` (lr_0(B) only)."""
        return "grid" if self.lr_grid else "search" if self.lr_search else "rule"

    def lr_for(self, batch_size: int, multiplier: float = 1.0) -> float:
        """``multiplier * lr_0(B)``: the scaling rule's learning rate, scaled."""
        return multiplier * scaled_lr(self.lr, batch_size, self.base_batch, self.lr_scaling)

    def to_dict(self) -> dict:
        return {**asdict(self), "lr_mode": self.lr_mode}


def eval_schedule_for(sweep: SweepConfig, n: int, batch_size: int, drop_last: bool) -> str:
    """Per-run evaluation schedule (see the module docstring)."""
    if sweep.eval_every:
        return sweep.eval_every
    spe = steps_per_epoch(n, batch_size, drop_last)
    parts = [f"{max(4, math.ceil(0.1 * spe))} steps"]
    seconds = parse_budget(sweep.budget)["max_time"]
    if seconds:
        parts.append(f"{seconds / 50:.6g}s")
    return ", ".join(parts)


def batch_sizes_for(sweep: SweepConfig, n_train: int) -> tuple:
    """The swept batch sizes, checked against the number of training examples."""
    sizes = sweep.batch_sizes or default_batch_sizes(n_train)
    too_big = [b for b in sizes if b > n_train]
    if too_big:
        raise ConfigError(f"batch sizes {too_big} exceed the number of training examples "
                          f"({n_train}); remove them from --batch-sizes or use more data")
    return tuple(sizes)


def run_config(sweep: SweepConfig, base: TrainConfig, n_train: int, batch_size: int,
               lr: float, seed: int, target: float | None) -> TrainConfig:
    """The configuration of one run: ``base`` with this batch size, lr, seed and stopping."""
    return base.replace(batch_size=batch_size, lr=lr, seed=seed, target=target,
                        eval_every=eval_schedule_for(sweep, n_train, batch_size,
                                                     base.drop_last),
                        **parse_budget(sweep.budget))


def plan_runs(sweep: SweepConfig, base: TrainConfig, n_train: int,
              target: float | None = None) -> list:
    """``[(key, TrainConfig, lr_multiplier)]`` of a sweep without search (``grid`` or
    ``rule``): every batch size x multiplier x seed, batch-size-major."""
    sizes = batch_sizes_for(sweep, n_train)
    stop = target if sweep.stop_at_target else None
    runs = []
    for b in sizes:
        for m in sweep.lr_grid or (1.0,):
            for s in range(sweep.seeds):
                cfg = run_config(sweep, base, n_train, b, sweep.lr_for(b, m), base.seed + s,
                                 stop)
                runs.append((run_key(b, cfg.lr, cfg.seed), cfg, m))
    return runs


Callback = Callable[[dict], None]


def run_sweep(data: Dataset, sweep: SweepConfig | None = None, base: TrainConfig | None = None,
              *, validation: Dataset | None = None, out: str | Path | None = None,
              callback: Callback | None = None, model=None, loss=None) -> SweepResult:
    """Run (or resume) a sweep and summarise it; see the module docstring.

    ``base`` holds everything not swept (model, optimiser, sampling, L2, ...). Without
    ``validation`` the data is split by ``base.validation_fraction`` and ``base.seed``; every
    run sees the same split. With ``out``, each finished run is stored under ``out/runs/`` and
    reused by a later call with the same settings and data, and ``sweep.json``, ``runs.csv``,
    ``points.csv`` and ``summary.csv`` are written (plots and the HTML report:
    :mod:`sgdlab.report.sweep`). ``callback`` receives progress events: ``plan``, ``replan``,
    ``run_start``, ``run_end``, ``phase``, ``probe``. Resuming compares settings and data, not
    code: after passing a different custom ``model``/``loss`` object, use a new ``out``.
    """
    sweep = sweep or SweepConfig()
    base = base or TrainConfig()
    t0 = time.perf_counter()
    built0 = cache.stats()["built"]
    if validation is None:
        parts = split(data, validation=base.validation_fraction, test=base.test_fraction,
                      seed=base.seed)
        train_part, validation = parts.train, parts.validation
    else:
        train_part = data
    if validation is None:
        raise ConfigError("a sweep needs validation data to measure time to target; set "
                          "--validation-fraction above 0 (e.g. 0.2)")
    sizes = batch_sizes_for(sweep, train_part.n)
    emit = callback or (lambda event: None)
    extra = (len(sizes) if sweep.probe else 0) + (1 if sweep.noise else 0)
    per_lr = {"search": 4, "grid": len(sweep.lr_grid or ()), "rule": 1}[sweep.lr_mode]
    runs = len(sizes) * per_lr * sweep.seeds + (sweep.seeds if sweep.confirm else 0)
    emit({"event": "plan", "runs": runs, "extra": extra})
    book = RunBook(train_part, validation, fingerprint=data_fingerprint(train_part, validation),
                   out=out, emit=emit, model=model, loss=loss, warm_up=sweep.warm_up)

    target, source = sweep.target, "given"
    if target is None and sweep.stop_at_target:
        book.expect(runs + (3 if sweep.lr_mode == "search" else per_lr), extra)
        target, source = pilot_target(book, sweep, base, sizes, train_part.n)
    stop = target if sweep.stop_at_target else None
    if sweep.lr_mode != "search":  # a fixed grid or the rule alone: every run is known now
        for _, cfg, m in plan_runs(sweep, base, train_part.n, target):
            book.run(cfg, "search", m)
    for i, b in enumerate(sizes if sweep.lr_mode == "search" else ()):
        lr0 = sweep.lr_for(b)

        def evaluate(lr, b=b, lr0=lr0):
            recs = [book.run(run_config(sweep, base, train_part.n, b, lr, base.seed + s, stop),
                             "search", lr / lr0)
                    for s in range(sweep.seeds)]
            return outcome(recs, target)

        search_lr(evaluate, lr0, factor=sweep.search_factor, max_points=sweep.search_points)
        left = (len(sizes) - i - 1) * per_lr * sweep.seeds
        book.expect(left + (sweep.seeds if sweep.confirm else 0), extra)

    def config_for(b: int, lr: float, run_target: float | None) -> TrainConfig:
        return run_config(sweep, base, train_part.n, b, lr, base.seed, run_target)

    result = summarise([r for r in book.records if r.get("phase", "search") == "search"],
                       sweep, base, train_part, validation, target=target if sweep.stop_at_target
                       else sweep.target, config_for=config_for, emit=emit, out=out,
                       fingerprint=book.fingerprint, target_source=source, model=model,
                       loss=loss)
    rec = result.recommendation
    if sweep.confirm and rec.get("batch_size") is not None:
        book.expect(sweep.seeds, 0)
        emit({"event": "phase", "name": "confirmation"})
        confirm = [book.run(run_config(sweep, base, train_part.n, rec["batch_size"], rec["lr"],
                                       base.seed + CONFIRM_SEED_OFFSET + s, stop), "confirm")
                   for s in range(sweep.seeds)]
        result.confirmation = confirmation_row(confirm, result.target)
        rec["sentences"].append(confirmation_sentence(result.confirmation))
    result.records = book.records
    rec["command"] = train_command(base, rec, data.name)
    result.compilations = {kind: n - built0.get(kind, 0)
                           for kind, n in cache.stats()["built"].items()}
    result.seconds = time.perf_counter() - t0
    if out:
        write_tables(result, out)
    return result


def outcome(records: list, target: float | None) -> Outcome:
    """One learning rate's :class:`~.lr_search.Outcome` over its seeds' records."""
    metric = metric_name(records[0]["history"])
    steps, finals, reached = [], [], 0
    for r in records:
        c = crossing(r["history"], target, metric) if target is not None else \
            {"reached": False, "step": math.inf}
        reached += c["reached"]
        steps.append(math.ceil(c["step"] - 1e-9) if c["reached"] else math.inf)
        finals.append(final_metric(r["history"], metric))
    finite = [f for f in finals if math.isfinite(f)]
    return Outcome(lr=records[0]["lr"], seeds=len(records), reached=reached,
                   diverged=sum(r["status"] == "diverged" for r in records),
                   steps_median=float(math.ceil(median(steps) - 1e-9))
                   if math.isfinite(median(steps)) else math.inf,
                   final_median=float(np.median(finite)) if finite else math.nan)


def pilot_target(book: RunBook, sweep: SweepConfig, base: TrainConfig, sizes: tuple,
                 n_train: int) -> tuple[float, str]:
    """Train the first learning rates of the batch size nearest the base batch for the whole
    budget, one seed each; ``-> (target, sentence saying how it was chosen)``.

    The target is 0.99 x the best final validation value, floored to 0.01 (R^2 may be
    negative: then the value itself). A pilot that learned nothing (no final value above the
    value before training) is an error: its target would be met before any step. When the
    target is no better than always guessing the most frequent class, the sentence says so.
    """
    b = nearest_to_base(sizes, sweep.base_batch)
    mults = {"search": (1.0, sweep.search_factor, 1 / sweep.search_factor),
             "grid": sweep.lr_grid, "rule": (1.0,)}[sweep.lr_mode]
    finals, start = {}, -math.inf
    for m in mults:
        rec = book.run(run_config(sweep, base, n_train, b, sweep.lr_for(b, m), base.seed, None),
                       "pilot", m)
        v = final_metric(rec["history"])
        start = max(start, final_metric(rec["history"][:1]))
        if rec["status"] != "diverged" and math.isfinite(v):
            finals[rec["lr"]] = v
    lrs = ", ".join(f"{sweep.lr_for(b, m):.3g}" for m in mults)
    if not finals:
        raise ConfigError(f"every pilot run at batch size {b} diverged (learning rates {lrs}), "
                          "so no target could be chosen; lower --lr or give --target-accuracy")
    lr, best = max(finals.items(), key=lambda kv: kv[1])
    target = target_from(best)
    if not target > start:
        raise ConfigError(f"the pilot at batch size {b} (learning rates {lrs}) learned nothing "
                          f"within the budget of {sweep.budget}: its best validation value, "
                          f"{best:.4g}, gives a target no better than before training "
                          f"({start:.4g}); raise --lr or --budget, or give --target-accuracy")
    text = (f"0.99 x the best final value ({best:.4g}, at batch size {b} and learning rate "
            f"{lr:.3g} after the whole budget of {sweep.budget}), floored to 0.01")
    guess = _majority_rate(book.validation)
    if guess is not None and target <= guess:
        text += (f"; note that always guessing the most frequent class scores {guess:.3g} on "
                 "the validation set, so this target says little: give a higher "
                 "--target-accuracy")
    return target, text


def _majority_rate(data: Dataset) -> float | None:
    """Accuracy of always predicting the most frequent class (None for regression)."""
    if data.task != "classification" or not len(data.y):
        return None
    _, counts = np.unique(np.asarray(data.y), return_counts=True)
    return float(counts.max() / counts.sum())
