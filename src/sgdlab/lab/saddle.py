"""Saddle points: where the gradient vanishes without a minimum.

Following ``-grad f`` leads downhill, but ``grad f = 0`` also at saddle points, and near one
the gradient is tiny, so descent crawls: the gradient norm drops to a plateau before the
path escapes along a descending direction. Two built-in surfaces of two parameters show it:

=========  ======================  ==============================================
name       f(x, y)                 critical point (0, 0)
=========  ======================  ==============================================
saddle     x^2 - y^2               Hessian diag(2, -2): eigenvalues of opposite sign
monkey     x^3 - 3 x y^2           Hessian 0: degenerate, three descending valleys
=========  ======================  ==============================================

A critical point is classified by the eigenvalues of its Hessian (``jax.hessian``): all > 0
a minimum, all < 0 a maximum, both signs a saddle, any ~0 degenerate (the second-order test
says nothing; the monkey saddle is such a point).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ConfigError, choices_message

__all__ = ["SURFACES", "SaddleDemo", "saddle_demo", "find_critical_point", "classify",
           "surface_grid"]


def _saddle(p):
    return p[0] ** 2 - p[1] ** 2


def _monkey(p):
    return p[0] ** 3 - 3.0 * p[0] * p[1] ** 2


#: name -> (f, formula, default starts, learning rate, box half-width)
SURFACES: dict[str, tuple[Callable, str, tuple, float, float]] = {
    # Starts close to the x axis (the attracting direction): descent first slides towards the
    # saddle, stalls there, and only then escapes along +-y.
    "saddle": (_saddle, "x^2 - y^2",
               ((1.0, 1e-3), (-1.0, -1e-2), (0.9, 0.1), (-0.6, 0.3), (1.0, -1e-4)), 0.1, 1.5),
    # Starts on the positive x side, where the surface descends towards the origin.
    "monkey": (_monkey, "x^3 - 3xy^2",
               ((0.8, 1e-3), (0.8, -1e-2), (0.6, 0.15), (0.9, -0.3), (0.7, 1e-5)), 0.05, 1.2),
}

#: eigenvalues with |lambda| below this are "zero" for the classification.
ZERO_EIG = 1e-6


@dataclass
class SaddleDemo:
    """Descent on one built-in surface.

    ``paths[i]: (n_i, 2)`` points of the run from ``starts[i]`` (it stops when it leaves the
    box), ``grad_norms[i]: (n_i,)`` the gradient norm at each point.
    """

    name: str
    formula: str
    lr: float
    box: float
    starts: list
    paths: list
    grad_norms: list
    critical_point: tuple
    hessian: np.ndarray
    eigenvalues: np.ndarray
    kind: str
    grid: tuple = ()            # (xs (n,), ys (n,), f (n, n)) over the box, for plots

    def to_dict(self) -> dict:
        return {"name": self.name, "formula": self.formula, "lr": self.lr,
                "starts": [list(s) for s in self.starts],
                "paths": [p.tolist() for p in self.paths],
                "grad_norms": [g.tolist() for g in self.grad_norms],
                "critical_point": list(self.critical_point),
                "hessian": self.hessian.tolist(), "eigenvalues": self.eigenvalues.tolist(),
                "kind": self.kind, "summary": self.summary}

    @property
    def summary(self) -> str:
        eig = ", ".join(f"{v:+.3g}" for v in self.eigenvalues)
        x, y = self.critical_point
        return (f"{self.name} f = {self.formula}: critical point ({x:.3g}, {y:.3g}), Hessian "
                f"eigenvalues [{eig}] -> {self.kind}")


def classify(eigenvalues, zero: float = ZERO_EIG) -> str:
    """``minimum``, ``maximum``, ``saddle`` or ``degenerate`` from Hessian eigenvalues."""
    ev = np.asarray(eigenvalues, float)
    if np.any(ev > zero) and np.any(ev < -zero):
        return "saddle"          # opposite curvatures: decided even if another is ~0
    if np.any(np.abs(ev) <= zero):
        return "degenerate"
    return "minimum" if np.all(ev > 0) else "maximum"


def find_critical_point(f: Callable, start, iters: int = 100) -> np.ndarray:
    """A zero of ``grad f`` by Newton's method ``p <- p - H^-1 grad f`` in float64.

    Where the Hessian is singular (a degenerate point) the step uses the pseudo-inverse, so
    the iteration still converges, linearly instead of quadratically.
    """
    with jax.enable_x64(True):
        g, h = jax.grad(f), jax.hessian(f)

        def body(p, _):
            return p - jnp.linalg.pinv(h(p), rtol=1e-12) @ g(p), None

        p, _ = jax.lax.scan(body, jnp.asarray(start, jnp.float64), None, length=iters)
        return np.asarray(p)


def _descend(f, starts, lr: float, steps: int, box: float):
    """Gradient descent ``p <- p - lr grad f(p)`` from every start at once (one compiled scan,
    vmapped over starts); per start its points ``(n, 2)`` and gradient norms ``(n,)``."""
    g = jax.vmap(jax.grad(f))

    def body(p, _):
        gp = g(p)
        return p - lr * gp, (p, jnp.linalg.norm(gp, axis=1))

    _, (pts, norms) = jax.jit(lambda p0: jax.lax.scan(body, p0, None, length=steps))(
        jnp.asarray(starts, jnp.float32))
    runs = []
    for i in range(len(starts)):
        p, gn = np.asarray(pts[:, i]), np.asarray(norms[:, i])
        # Both surfaces fall without bound; stop the record where the run leaves the box.
        inside = np.all(np.abs(p) <= box, axis=1)
        n = max(1, int(np.argmin(inside)) if not inside.all() else len(p))
        runs.append((p[:n], gn[:n]))
    return runs


def saddle_demo(name: str = "saddle", starts=None, lr: float | None = None,
                steps: int = 200) -> SaddleDemo:
    """Descent from several starts on a built-in surface, and its critical point's Hessian."""
    if name not in SURFACES:
        raise ConfigError(choices_message("saddle demo", name, SURFACES))
    f, formula, default_starts, default_lr, box = SURFACES[name]
    starts = [tuple(map(float, s)) for s in (starts or default_starts)]
    lr = default_lr if lr is None else float(lr)
    if not lr > 0 or steps < 1:
        raise ConfigError(f"saddle demo needs lr > 0 and steps >= 1, got {lr} and {steps}")
    runs = _descend(f, starts, lr, steps, box)
    # Newton from a point off every symmetry axis, so it does not start on a special line.
    crit = find_critical_point(f, (0.3, 0.2))
    with jax.enable_x64(True):
        H = np.asarray(jax.hessian(f)(jnp.asarray(crit, jnp.float64)))
    eig = np.linalg.eigvalsh((H + H.T) / 2)
    crit = tuple(float(c) if abs(c) > 1e-12 else 0.0 for c in crit)
    return SaddleDemo(name, formula, lr, box, starts, [r[0] for r in runs],
                      [r[1] for r in runs], crit, H, eig, classify(eig), surface_grid(name))


def surface_grid(name: str, n: int = 101) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(xs (n,), ys (n,), f (n, n))`` over the demo's box, rows following ``y``."""
    f, _, _, _, box = SURFACES[name]
    xs = np.linspace(-box, box, n)
    X, Y = np.meshgrid(xs, xs)
    return xs, xs, np.asarray(jax.vmap(f)(jnp.stack([X.ravel(), Y.ravel()], 1))).reshape(n, n)
