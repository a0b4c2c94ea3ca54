"""What a sweep varies and how long each run may train: :class:`SweepConfig`, one default per
line, checked when built.

Light on purpose (no JAX): the command line reads these defaults for its help texts.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ..errors import ConfigError
from ..optim import LR_SCALINGS, check_rate, scaled_lr
from .caps import parse_budget
from .lr_search import RESOLUTION

#: The sweep's problem when neither data nor a model is given: the digits grown into an
#: MNIST-shaped problem (no download), with a one-hidden-layer MLP, where the batch size
#: matters (batch 64 reaches the target about 4x sooner than batches 2 to 8) and a default
#: sweep takes about a minute on two cores. ``--data digits`` names the plain digits, on which
#: every batch size reaches a target within milliseconds.
DEMO = {"data": "digits-augmented:n=4000,side=16,shift=1,noise=0.15", "model": "mlp",
        "hidden": (64,)}

#: Fraction of an epoch between the evaluations of a run when its steps cannot be expected.
EVAL_FRACTION = 0.05
#: Evaluations up to the expected steps to the target (so the crossing is found to ~1 %).
EVALS_PER_RUN = 16
#: Epochs of the pilot's runs when no --budget is given.
PILOT_EPOCHS = 10
#: The larger batch of the noise run's two-batch estimate is at most this: each evaluation
#: row draws ``noise_draws`` batches of it, and a larger one adds cost, not accuracy.
BIG_NOISE_BATCH = 256


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
    lr_resolution: float = RESOLUTION  # ratio of neighbouring lrs at the finest refinement
    search_points: int = 12           # at most this many lrs per batch size
    seeds: int = 3                    # repeats per (batch size, lr); medians and ranges
    target: float | None = None       # validation accuracy (R^2); None: from the pilot
    budget: str | None = None         # cap per run: 'N epochs', 'N steps' or time; None: auto
    eval_every: str | None = None     # None: every EVAL_FRACTION of an epoch
    stop_at_target: bool = True       # end each run at the target
    timing_rounds: int = 3            # replays of each seed's run, in random order
    confirm: bool = True              # re-run the recommendation with fresh seeds
    probe: bool = True                # time steps per batch size (throughput probe)
    noise: bool = True                # measure the gradient noise scales
    noise_batches: tuple | None = None  # (small, big); None: smallest, largest up to 256
    noise_draws: int = 8              # pairs of batches per evaluation row of the noise run

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
        if not (_real(self.search_factor) and self.search_factor > 1):
            raise ConfigError(f"search factor must be a number > 1, got "
                              f"{self.search_factor!r}; e.g. --search-factor 4")
        if not (_real(self.lr_resolution) and 1 < self.lr_resolution <= self.search_factor):
            raise ConfigError(f"learning-rate resolution must be a number > 1 and at most the "
                              f"search factor ({self.search_factor:g}), got "
                              f"{self.lr_resolution!r}; e.g. --lr-resolution 1.19")
        _count("search points", self.search_points, 3, MAX_COUNT, "(a bracket)")
        _count("seeds", self.seeds, 1, MAX_COUNT)
        _count("timing rounds", self.timing_rounds, 1, MAX_COUNT)
        if self.target is not None and not (_real(self.target) and self.target <= 1.0):
            raise ConfigError(f"target must be a finite number at most 1 (an accuracy or "
                              f"R^2), got {self.target}")
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


#: Most seeds, learning rates per batch size or timing rounds a sweep takes.
MAX_COUNT = 1000


def _count(what: str, v, low: int, high: int, why: str = "") -> None:
    if not isinstance(v, int) or isinstance(v, bool) or not low <= v <= high:
        raise ConfigError(f"{what} must be a whole number from {low} {why + ' ' if why else ''}"
                          f"to {high}, got {v!r}")


def _real(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
