"""2-D slices of the loss surface, and training paths drawn on them.

A slice is the function of two numbers ``f(a, b) = J(c + a e_1 + b e_2)`` on a G x G grid,
evaluated in one batched call (:meth:`Surface.plane`). Two planes are offered:

* **random**: ``c`` is a solution, ``e_1, e_2`` filter-normalised Gaussian directions
  (Li et al. 2018), ``a, b in [-span, span]``; the picture of the basin around the solution.
* **path** (PCA): random directions are nearly orthogonal to any training path in D
  dimensions, so a path projected on them is a dot. The plane that shows a path is spanned by
  the top two principal directions of the path points' offsets from its end ``c``
  (Li et al. section 7): ``e_1, e_2`` are orthonormal, ``(a, b) = ((w - c) . e_1, (w - c) . e_2)``
  are the path's coordinates, and ``explained`` says what share of the path's spread the plane
  holds. Paths of batch size 1, B and N from one initialisation side by side show the
  zig-zag of stochastic steps against the smooth full-batch path.

Gradient arrows are ``-grad f(a, b) = -(e_1 . grad J, e_2 . grad J)``: the steepest descent
of the restricted function, perpendicular to its level curves in the ``(a, b)`` coordinates.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .._types import Params
from ..engine import train
from ..errors import ConfigError
from ..optim import scaled_lr
from .directions import random_directions
from .surface import Problem, Surface, flatten

__all__ = ["Slice", "check_grid", "random_slice", "record_paths", "pca_plane", "path_slice",
           "tortuosity"]


@dataclass
class Slice:
    """``loss[j, i] = f(alphas[i], betas[j])`` (rows follow ``b``, as ``contour`` expects).

    ``arrows_at: (A, 2)`` points and ``arrows: (A, 2)`` descent directions ``-grad f``;
    ``paths`` maps a label to ``{"coords": (n, 2), "loss": (n,), "step": (n,), "lr": float,
    "tortuosity": float}`` where ``loss`` is the objective at the true (off-plane) path point
    and ``tortuosity`` the path length over its net displacement (:func:`tortuosity`).
    """

    kind: str
    alphas: np.ndarray
    betas: np.ndarray
    loss: np.ndarray
    accuracy: np.ndarray
    arrows_at: np.ndarray
    arrows: np.ndarray
    seconds: float              # evaluating the grid, compilation excluded
    compile_seconds: float      # compiling the grid program (0 when it was cached)
    paths: dict = field(default_factory=dict)
    explained: tuple = ()
    normalize: str = ""

    def to_dict(self) -> dict:
        return {"kind": self.kind, "alphas": self.alphas.tolist(), "betas": self.betas.tolist(),
                "loss": self.loss.tolist(), "accuracy": self.accuracy.tolist(),
                "seconds": self.seconds, "compile_seconds": self.compile_seconds,
                "explained": list(self.explained),
                "normalize": self.normalize,
                "paths": {k: {n: np.asarray(v).tolist() if n not in ("lr", "tortuosity") else v
                              for n, v in p.items()}
                          for k, p in self.paths.items()}}


#: smallest ratio of the path plane's short side to its long side.
MIN_ASPECT = 0.75


def check_grid(grid: int) -> int:
    if not isinstance(grid, (int, np.integer)) or isinstance(grid, bool) or grid < 3:
        raise ConfigError(f"grid must be a whole number >= 3 (points per side), got {grid!r}")
    return int(grid)


def _evaluate(surface: Surface, center, basis, alphas, betas, n_arrows: int):
    aa, bb = np.meshgrid(alphas, betas)                              # (G, G), row = beta
    c0, t = surface.compile_seconds, time.perf_counter()
    loss, acc = surface.plane(center, basis, np.stack([aa.ravel(), bb.ravel()], 1))
    compile_s = surface.compile_seconds - c0
    seconds = time.perf_counter() - t - compile_s
    ga, gb = (np.linspace(v[0], v[-1], n_arrows + 2)[1:-1] for v in (alphas, betas))
    at = np.stack([m.ravel() for m in np.meshgrid(ga, gb)], 1)     # (A, 2), inside the grid
    arrows = -surface.plane_gradient(center, basis, at)
    shape = (len(betas), len(alphas))
    return loss.reshape(shape), acc.reshape(shape), at, arrows, (seconds, compile_s)


def random_slice(surface: Surface, params: Params, *, grid: int = 51, span: float = 1.0,
                 normalize: str = "filter", seed: int = 0, n_arrows: int = 9) -> Slice:
    """``J`` on ``params + a d_1 + b d_2`` for ``a, b`` in ``[-span, span]`` (G x G points)."""
    grid = check_grid(grid)
    if not span > 0:
        raise ConfigError(f"slice span must be > 0, got {span}")
    basis = random_directions(np.random.default_rng(seed), params, 2, normalize)
    axis = np.linspace(-span, span, grid)
    loss, acc, at, arrows, secs = _evaluate(surface, flatten(params), basis, axis, axis,
                                            n_arrows)
    return Slice("random", axis, axis, loss, acc, at, arrows, *secs, normalize=normalize)


def record_paths(problem: Problem, batch_sizes: dict, *, steps: int = 200, seed: int = 0,
                 points: int = 100, scale_lr: bool = True,
                 on_done: Callable | None = None) -> dict:
    """Train from one initialisation (``seed``) with each batch size for ``steps`` steps and
    keep the parameters every ``max(1, steps // points)`` steps.

    ``batch_sizes`` maps a label to a batch size, e.g. ``{"stochastic (B=1)": 1, ...}``. Every
    path takes the same number of steps from the same start. With ``scale_lr``, a batch
    ``b`` smaller than the configured ``B`` steps with ``lr * sqrt(b / B)`` (the square-root
    rule, which keeps the variance of an update's noise equal to that of batch ``B``), so the
    single-example path zig-zags inside the basin instead of being thrown out of it; larger
    batches keep ``lr``. Returns ``{label: {"step": (n,), "params": (n, D), "lr": float}}``.
    """
    every = max(1, steps // points)
    base = problem.config
    out = {}
    for label, b in batch_sizes.items():
        if b > problem.train.n:
            raise ConfigError(f"path batch size {b} exceeds the {problem.train.n} training "
                              "examples")
        lr = scaled_lr(base.lr, b, base.batch_size, "sqrt") \
            if scale_lr and b < base.batch_size else base.lr
        rows: list = []

        def keep(event, rows=rows):
            if event["event"] == "row":
                rows.append((event["row"]["step"], flatten(event["params"])))
        cfg = base.replace(batch_size=int(b), max_steps=int(steps), epochs=None, lr=lr,
                           max_time=None, target=None, seed=seed, eval_every=f"{every} steps")
        train(problem.train, problem.validation, cfg, model=problem.model, loss=problem.loss,
              standardizer=problem.standardizer, callback=keep)
        out[label] = {"step": np.array([r[0] for r in rows]),
                      "params": np.stack([r[1] for r in rows]), "lr": lr}
        if on_done:
            on_done(label)
    return out


def tortuosity(points: np.ndarray) -> float:
    """Path length over net displacement of ``points: (n, D)``, in the full space.

    1 for a straight path; the zig-zag of small-batch steps makes it larger. Points are the
    recorded ones, so steps between two records count by their chord.
    """
    steps = np.linalg.norm(np.diff(points.astype(np.float64), axis=0), axis=1).sum()
    net = np.linalg.norm(points[-1].astype(np.float64) - points[0])
    return float(steps / net) if net > 0 else float("inf")


def pca_plane(paths: dict, origin: np.ndarray) -> tuple[np.ndarray, tuple]:
    """Orthonormal ``(2, D)`` top principal directions of every path point minus ``origin``,
    and the share of the squared offsets each one captures.

    With ``M: (n, D)`` the stacked offsets and ``n << D``, the directions come from the small
    Gram matrix ``G = M M^T: (n, n)``: if ``G u = lambda u`` then ``e = M^T u / sqrt(lambda)``
    is a unit right singular vector of ``M``. An SVD of ``M`` itself costs ``O(n^2 D)`` with a
    far larger constant.
    """
    M = np.concatenate([p["params"] for p in paths.values()]).astype(np.float64) - origin[None]
    lam, U = np.linalg.eigh(M @ M.T)                                  # ascending
    lam, U = lam[::-1], U[:, ::-1]
    if len(lam) < 2 or not lam[1] > 1e-12 * lam[0]:
        raise ConfigError("a path plane needs at least two independent directions of "
                          "movement; record more steps")
    basis = (M.T @ U[:, :2]) / np.sqrt(lam[:2])
    total = float(np.sum(np.clip(lam, 0, None)))
    return basis.T, (float(lam[0] / total), float(lam[1] / total))


def path_slice(surface: Surface, paths: dict, *, grid: int = 51, margin: float = 0.2,
               n_arrows: int = 9, origin_label: str | None = None) -> Slice:
    """The PCA plane of ``paths`` (from :func:`record_paths`), centred on the end of the path
    ``origin_label`` (default: the last one, the largest batch), with every path projected."""
    grid = check_grid(grid)
    label = origin_label or list(paths)[-1]
    origin = paths[label]["params"][-1].astype(np.float64)
    basis, explained = pca_plane(paths, origin)
    projected = {k: (p["params"] - origin[None]) @ basis.T for k, p in paths.items()}
    allc = np.concatenate(list(projected.values()))
    lo, hi = allc.min(0), allc.max(0)
    # Paths are long along PC 1 and thin along PC 2; widen the thin side to at least
    # MIN_ASPECT of the long one so the (equal-scale) contour shows the valley around them.
    mid, half = (lo + hi) / 2, np.maximum((hi - lo) / 2, 1e-6)
    half = np.maximum(half, MIN_ASPECT * half.max())
    lo, hi = mid - half, mid + half
    pad = margin * (hi - lo)
    alphas = np.linspace(lo[0] - pad[0], hi[0] + pad[0], grid)
    betas = np.linspace(lo[1] - pad[1], hi[1] + pad[1], grid)
    loss, acc, at, arrows, secs = _evaluate(surface, origin, basis, alphas, betas, n_arrows)
    # One batched call for every path point: the true (off-plane) objective along each path.
    values = surface.points(np.concatenate([p["params"] for p in paths.values()]))[0]
    ends = np.cumsum([len(p["params"]) for p in paths.values()])[:-1]
    out = {k: {"coords": projected[k], "step": p["step"], "loss": v, "lr": p.get("lr"),
               "tortuosity": tortuosity(p["params"])}
           for (k, p), v in zip(paths.items(), np.split(values, ends))}
    return Slice("path", alphas, betas, loss, acc, at, arrows, *secs, out, explained, "pca")
