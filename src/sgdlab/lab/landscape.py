"""Everything ``sgdlab landscape`` measures, in one call that returns numbers (no files).

Order of work, each step reusing the last: K restarts of one configuration -> pairwise
distances and a verdict -> 1-D interpolation between the first two solutions -> a random
filter-normalised 2-D slice around the first solution -> training paths of batch size 1, B
and N from one initialisation on their PCA plane -> the convexity probe (random segments
and segments between the restart solutions, float64) -> the saddle demos.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from ..data.dataset import Dataset
from ..engine.config import TrainConfig
from ..errors import ConfigError
from ..models import n_params
from .convexity import ConvexityReport, probe_convexity
from .interpolate import Interpolation, interpolate
from .restarts import RestartReport, run_restarts
from .saddle import SURFACES, SaddleDemo, saddle_demo
from .directions import check_normalize
from .slices import Slice, check_grid, path_slice, random_slice, record_paths
from .surface import Problem, flatten

__all__ = ["LandscapeResult", "run_landscape", "path_batch_sizes"]

Progress = Callable[[str], None]


@dataclass
class LandscapeResult:
    """The measurements of one landscape run; ``seconds`` holds the time of each stage."""

    problem: Problem
    restarts: RestartReport
    interpolation: Interpolation
    random_slice: Slice | None
    path_slice: Slice | None
    convexity: ConvexityReport | None
    saddles: list
    seconds: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)


def path_batch_sizes(batch_size: int, n_train: int) -> dict:
    """Labels -> batch sizes for the side-by-side paths: 1, a mini-batch, and N (full)."""
    mini = batch_size if 1 < batch_size < n_train else min(32, max(2, n_train // 2))
    return {"stochastic (B=1)": 1, f"mini-batch (B={mini})": mini,
            f"full batch (B={n_train})": n_train}


def _check_saddles(saddles: Sequence[str]) -> list:
    names = list(SURFACES) if "all" in saddles else [s for s in saddles if s != "none"]
    for s in names:
        if s not in SURFACES:
            raise ConfigError(f"unknown saddle demo {s!r}; valid: {', '.join(SURFACES)}, all, "
                              "none")
    return names


def run_landscape(data: Dataset, config: TrainConfig, *, seeds: Sequence[int] = range(5),
                  grid: int = 51, span: float = 1.0, normalize: str = "filter",
                  path_steps: int = 200, convexity_segments: int = 100,
                  saddles: Sequence[str] = ("saddle", "monkey"), split_seed: int = 0,
                  slices: bool = True, progress: Progress | None = None) -> LandscapeResult:
    """Run every landscape measurement for ``config`` on ``data`` (see the module docstring).

    ``seeds`` are the restart seeds (the first one also seeds the paths and directions);
    ``grid`` points per side of each 2-D slice; ``span`` the half-width of the random slice in
    filter-normalised units; ``slices=False`` skips both 2-D slices.
    """
    say = progress or (lambda msg: None)
    config.one_batch_size("sgdlab landscape")
    # Every setting is checked before the first training run, so a typo costs no minutes.
    saddle_names = _check_saddles(saddles)
    if slices:
        check_grid(grid)
        check_normalize(normalize)
        if not span > 0:
            raise ConfigError(f"slice span must be > 0, got {span}")
        if path_steps < 2:
            raise ConfigError(f"path steps must be at least 2, got {path_steps}")
    if convexity_segments < 0:
        raise ConfigError(f"convexity segments must be >= 0, got {convexity_segments}")
    seeds = [int(s) for s in seeds]
    secs: dict = {}
    t = time.perf_counter()
    problem = Problem.from_data(data, config, split_seed=split_seed)

    say(f"training {len(seeds)} restarts")
    rest = run_restarts(problem, seeds, on_result=lambda s, r: say(
        f"restart seed {s}: validation accuracy {r.history.last('val_accuracy'):.4f}"))
    secs["restarts"] = time.perf_counter() - t
    first = rest.results[0].params
    sols = [flatten(r.params) for r in rest.results]
    train_s = problem.surface(first)
    val_s = problem.surface(first, "validation")

    t = time.perf_counter()
    say("interpolating between the first two solutions")
    interp = interpolate(sols[0], sols[1], train_s, val_s, seeds=tuple(seeds[:2]))
    secs["interpolation"] = time.perf_counter() - t

    rslice = pslice = None
    if slices:
        t = time.perf_counter()
        say(f"random {grid}x{grid} slice around the seed-{seeds[0]} solution")
        rslice = random_slice(train_s, first, grid=grid, span=span, normalize=normalize,
                              seed=seeds[0])
        secs["random_slice"] = time.perf_counter() - t
        t = time.perf_counter()
        sizes = path_batch_sizes(config.batch_size, problem.train.n)
        say(f"recording {path_steps}-step paths for batch sizes {list(sizes.values())}")
        paths = record_paths(problem, sizes, steps=path_steps, seed=seeds[0])
        pslice = path_slice(train_s, paths, grid=grid)
        secs["path_slice"] = time.perf_counter() - t

    conv = None
    if convexity_segments or len(sols) > 1:
        t = time.perf_counter()
        say(f"convexity probe, float64: {convexity_segments} random + "
            f"{len(sols) * (len(sols) - 1) // 2} solution segments")
        conv = probe_convexity(problem.surface(first, x64=True), first,
                               n_random=convexity_segments, solutions=sols, labels=seeds,
                               normalize=normalize, seed=seeds[0])
        secs["convexity"] = time.perf_counter() - t

    t = time.perf_counter()
    demos: list[SaddleDemo] = [saddle_demo(n) for n in saddle_names]
    secs["saddles"] = time.perf_counter() - t
    info = {"data": data.name, "n_train": problem.train.n,
            "n_validation": problem.validation.n if problem.validation else 0,
            "model": problem.model.name, "loss": problem.loss.name,
            "n_params": n_params(first), "seeds": seeds, "grid": grid, "span": span,
            "normalize": normalize, "path_steps": path_steps, "split_seed": split_seed,
            "config": config.to_dict()}
    return LandscapeResult(problem, rest, interp, rslice, pslice, conv, demos, secs, info)
