"""1-D interpolation between two solutions: is there a barrier between them?

Along the line ``w(t) = (1 - t) w_a + t w_b`` the objective of a convex problem never rises
above the chord joining its end values, so two solutions of a convex objective are joined by
a path that goes no higher than they are. Between two minima of a network the line usually
climbs over a ridge first. The **barrier height** measures the climb (Frankle et al. 2020)::

    barrier = max_{t in [0, 1]}  J(w(t)) - ((1 - t) J(w_a) + t J(w_b))

which is <= 0 (up to rounding) for a convex ``J``. Values for ``t`` outside ``[0, 1]``
(default ``[-0.25, 1.25]``) show the walls beyond each solution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from .surface import Surface

__all__ = ["Interpolation", "interpolate", "DEFAULT_TS"]

#: 61 points from -0.25 to 1.25; t = 0, 0.5 and 1 are on the grid.
DEFAULT_TS = np.linspace(-0.25, 1.25, 61)


@dataclass
class Interpolation:
    """Values along ``(1 - t) w_a + t w_b``; every array has the shape of ``t``."""

    t: np.ndarray
    train_loss: np.ndarray
    train_accuracy: np.ndarray
    val_loss: np.ndarray | None
    val_accuracy: np.ndarray | None
    barrier: float              # absolute, in units of the objective
    barrier_relative: float     # barrier / max(J(w_a), J(w_b))
    seeds: tuple = ()

    def to_dict(self) -> dict:
        opt = (lambda a: None if a is None else a.tolist())
        return {"t": self.t.tolist(), "train_loss": self.train_loss.tolist(),
                "train_accuracy": self.train_accuracy.tolist(),
                "val_loss": opt(self.val_loss), "val_accuracy": opt(self.val_accuracy),
                "barrier": self.barrier, "barrier_relative": self.barrier_relative,
                "seeds": list(self.seeds)}


def barrier_height(t: np.ndarray, values: np.ndarray) -> float:
    """``max`` over ``t`` in [0, 1] of the value minus the chord between ``t = 0`` and ``t = 1``.

    ``t`` must contain 0 and 1; raises :class:`ConfigError` otherwise.
    """
    t, values = np.asarray(t, float), np.asarray(values, float)
    i0, i1 = np.flatnonzero(np.isclose(t, 0.0)), np.flatnonzero(np.isclose(t, 1.0))
    if not len(i0) or not len(i1):
        raise ConfigError("interpolation points must include t = 0 and t = 1 to measure a "
                          f"barrier; got t from {t.min():g} to {t.max():g} ({len(t)} points)")
    inside = (t >= 0) & (t <= 1)
    chord = (1 - t) * values[i0[0]] + t * values[i1[0]]
    return float(np.max(values[inside] - chord[inside]))


def interpolate(wa, wb, train: Surface, validation: Surface | None = None,
                ts=DEFAULT_TS, seeds: tuple = ()) -> Interpolation:
    """Objective and accuracy along the line through two flat solutions ``wa, wb: (D,)``.

    All points of the line are evaluated in one batched call per surface.
    """
    ts = np.asarray(ts, float)
    wa, wb = np.asarray(wa), np.asarray(wb)
    if wa.shape != wb.shape:
        raise ConfigError(f"cannot interpolate between parameter vectors of shapes {wa.shape} "
                          f"and {wb.shape}: train both with the same model")
    coefs = ts[:, None]
    basis = (wb - wa)[None]
    loss, acc = train.plane(wa, basis, coefs)
    vl = va = None
    if validation is not None:
        vl, va = validation.plane(wa, basis, coefs)
    b = barrier_height(ts, loss)
    scale = max(abs(loss[np.isclose(ts, 0)][0]), abs(loss[np.isclose(ts, 1)][0]), 1e-12)
    return Interpolation(ts, loss, acc, vl, va, b, b / scale, tuple(seeds))
