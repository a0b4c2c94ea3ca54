"""The batch-size sweep: which batch size (and learning rate) reaches the target fastest here.

The recipe of the source text, made measurable: fix the other hyperparameters, train with
several batch sizes, scale the learning rate with the batch size, plot validation accuracy
against *training time* (not epochs) and pick the batch size that improves fastest.

For every batch size ``B`` in the sweep, every learning-rate multiplier ``m`` of the grid and
every seed ``s``, one run trains with ``lr = m * scaled_lr(lr0, B, B0, rule)`` under the same
per-run budget (training seconds, epochs or steps). Runs are evaluated often (by default every
``max(4, ceil(0.1 * steps_per_epoch))`` steps, plus ``budget / 50`` of training time when the
budget is a time), and the target crossing is interpolated between rows (:mod:`.measure`), so
time-to-target neither counts evaluation nor depends much on how often one evaluates.
A divergent run is recorded as such and the sweep goes on.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from ..data.dataset import Dataset
from ..data.sampling import steps_per_epoch
from ..data.split import split
from ..engine.config import TrainConfig
from ..engine.fit import train
from ..engine.schedule import parse_duration
from ..errors import ConfigError
from ..optim import LR_SCALINGS, scaled_lr
from .records import data_fingerprint, load_record, make_record, run_key, save_record
from .summary import SweepResult, summarise

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
    try:
        seconds = parse_duration(text)
    except ConfigError:
        raise ConfigError(f"cannot read budget {text!r}; write a training time ('30s', "
                          "'2 min'), epochs ('5 epochs') or steps ('2000 steps')") from None
    return {"epochs": None, "max_steps": None, "max_time": seconds}


def default_batch_sizes(n: int, largest: int = 1024) -> tuple:
    """Powers of two from 1 up to ``min(largest, n)``: ``(1, 2, 4, ..., 1024)``."""
    top = min(largest, n)
    return tuple(2 ** i for i in range(int(math.log2(top)) + 1))


@dataclass(frozen=True)
class SweepConfig:
    """What a sweep varies and how long each run may train; one default per line."""

    batch_sizes: tuple | None = None  # None: powers of two from 1 to min(1024, N)
    lr: float = 0.1                   # base learning rate lr0, tuned at base_batch
    base_batch: int = 32              # B0 of the scaling rule
    lr_scaling: str = "sqrt"          # none | linear | sqrt: lr(B) from lr0 and B / B0
    lr_grid: tuple = (1.0,)           # multipliers of lr(B) tried per batch size; best kept
    seeds: int = 3                    # repeats per (batch size, lr); medians and ranges
    target: float | None = None       # validation accuracy (R^2); None: 0.99 x best, floored
    budget: str = "0.2s"              # per run: training time, 'N epochs' or 'N steps'
    eval_every: str | None = None     # None: the per-batch-size default (module docstring)
    stop_at_target: bool = False      # end each run at the target (needs an explicit target)
    probe: bool = True                # time steps per batch size (throughput probe)
    noise: bool = True                # measure the gradient noise scale B_simple
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
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"learning rate must be a finite number > 0, got {self.lr!r}")
        if not isinstance(self.base_batch, int) or self.base_batch < 1:
            raise ConfigError(f"base batch must be a whole number >= 1, got {self.base_batch!r}")
        if self.lr_scaling not in LR_SCALINGS:
            raise ConfigError(f"unknown learning-rate scaling {self.lr_scaling!r}; valid "
                              f"scalings: {', '.join(LR_SCALINGS)}")
        grid = tuple(float(m) for m in self.lr_grid)
        if not grid or any(not (math.isfinite(m) and m > 0) for m in grid):
            raise ConfigError(f"learning-rate grid multipliers must be numbers > 0, got "
                              f"{self.lr_grid!r}; e.g. --lr-grid 0.5,1,2")
        set_("lr_grid", tuple(sorted(set(grid))))
        if not isinstance(self.seeds, int) or self.seeds < 1:
            raise ConfigError(f"seeds must be a whole number >= 1, got {self.seeds!r}")
        if self.target is not None and not self.target <= 1.0:
            raise ConfigError(f"target must be at most 1 (an accuracy or R^2), got {self.target}")
        if self.stop_at_target and self.target is None:
            raise ConfigError("stopping at the target needs a target: add --target-accuracy")
        parse_budget(self.budget)
        if self.noise_batches is not None:
            from .noise import check_batches
            check_batches(*tuple(self.noise_batches))
            set_("noise_batches", tuple(self.noise_batches))

    def lr_for(self, batch_size: int, multiplier: float = 1.0) -> float:
        return multiplier * scaled_lr(self.lr, batch_size, self.base_batch, self.lr_scaling)

    def to_dict(self) -> dict:
        return asdict(self)


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


def plan_runs(sweep: SweepConfig, base: TrainConfig, n_train: int) -> list:
    """``[(key, TrainConfig, lr_multiplier)]`` in the order they run: seed-major, so an early
    stop still leaves one complete pass over the batch sizes."""
    sizes = sweep.batch_sizes or default_batch_sizes(n_train)
    too_big = [b for b in sizes if b > n_train]
    if too_big:
        raise ConfigError(f"batch sizes {too_big} exceed the number of training examples "
                          f"({n_train}); remove them from --batch-sizes or use more data")
    stop = dict(parse_budget(sweep.budget))
    stop["target"] = sweep.target if sweep.stop_at_target else None
    runs = []
    for s in range(sweep.seeds):
        for b in sizes:
            for m in sweep.lr_grid:
                lr = sweep.lr_for(b, m)
                cfg = base.replace(batch_size=b, lr=lr, seed=base.seed + s,
                                   eval_every=eval_schedule_for(sweep, n_train, b,
                                                                base.drop_last), **stop)
                runs.append((run_key(b, lr, base.seed + s), cfg, m))
    return runs


Callback = Callable[[dict], None]


def run_sweep(data: Dataset, sweep: SweepConfig | None = None, base: TrainConfig | None = None,
              *, validation: Dataset | None = None, out: str | Path | None = None,
              callback: Callback | None = None, model=None, loss=None) -> SweepResult:
    """Run (or resume) a sweep and summarise it; see the module docstring.

    ``base`` holds everything not swept (model, optimiser, sampling, L2, ...). Without
    ``validation`` the data is split by ``base.validation_fraction`` and ``base.seed``; every
    run sees the same split. With ``out``, each finished run is stored under ``out/runs/`` and
    reused by a later call with the same settings and data, and ``sweep.json``, ``runs.csv`` and
    ``summary.csv`` are written (plots and the HTML report: :mod:`sgdlab.report.sweep`).
    ``callback`` receives progress events: ``plan``, ``run_start``, ``run_end``, ``phase``,
    ``probe``. Resuming compares settings and data, not code: after passing a different custom
    ``model``/``loss`` object, use a new ``out``.
    """
    sweep = sweep or SweepConfig()
    base = base or TrainConfig()
    t0 = time.perf_counter()
    if validation is None:
        parts = split(data, validation=base.validation_fraction, test=base.test_fraction,
                      seed=base.seed)
        train_part, validation = parts.train, parts.validation
    else:
        train_part = data
    if validation is None:
        raise ConfigError("a sweep needs validation data to measure time to target; set "
                          "--validation-fraction above 0 (e.g. 0.2)")
    runs = plan_runs(sweep, base, train_part.n)
    fingerprint = data_fingerprint(train_part, validation)
    emit = callback or (lambda event: None)
    emit({"event": "plan", "runs": len(runs),
          "extra": (len({c.batch_size for _, c, _ in runs}) if sweep.probe else 0)
          + (1 if sweep.noise else 0)})

    records = []
    for i, (key, cfg, mult) in enumerate(runs):
        emit({"event": "run_start", "index": i, "total": len(runs), "key": key,
              "batch_size": cfg.batch_size, "lr": cfg.lr, "seed": cfg.seed})
        record = load_record(out, key, cfg.to_dict(), fingerprint) if out else None
        reused = record is not None
        if record is None:
            result = train(train_part, validation, cfg, model=model, loss=loss)
            record = make_record(key, result, fingerprint, mult)
            if out:
                save_record(out, record)
        records.append(record)
        emit({"event": "run_end", "index": i, "total": len(runs), "key": key,
              "reused": reused, "status": record["status"], "batch_size": cfg.batch_size})

    result = summarise(records, sweep, base, train_part, validation, emit=emit, out=out,
                       fingerprint=fingerprint, model=model, loss=loss)
    result.seconds = time.perf_counter() - t0
    if out:
        from .summary import write_tables
        write_tables(result, out)
    return result


def enable_compile_cache(path: str | Path) -> None:
    """Keep compiled programs on disk under ``path`` (JAX's persistent compilation cache).

    A sweep compiles the same chunk kernel once per (batch size, learning rate) and again for
    every seed; with the cache every repeat, and every resumed or re-run sweep, loads it
    instead (about 0.1 s instead of about 1 s each on a 2-core CPU). Compilation is never part of
    the measured training time either way. Process-wide: call it once, before training.
    """
    import jax
    from jax.experimental.compilation_cache import compilation_cache
    Path(path).mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    # JAX decides once per process whether the cache is in use; make it look again.
    compilation_cache.reset_cache()


def disable_compile_cache() -> None:
    """Undo :func:`enable_compile_cache` (compile in memory only again)."""
    import jax
    from jax.experimental.compilation_cache import compilation_cache
    jax.config.update("jax_compilation_cache_dir", None)
    compilation_cache.reset_cache()
