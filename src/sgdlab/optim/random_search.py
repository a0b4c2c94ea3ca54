"""Random search: optimisation without gradients, as one compiled kernel.

The parameters are flattened to one vector ``w: (P,)``. Each *generation* draws ``M``
candidates, evaluates the objective ``J`` of every one on the whole training set at once
(``vmap``: a ``(M, P)`` matrix of candidates, one compiled call), and moves:

* ``global``:   ``c_m = scale * z_m``,  ``z_m ~ N(0, I)``; keep the best candidate ever seen.
  (The source texts' first method: fresh random weights each attempt, keep the best.)
* ``local``:    ``c_m = w + sigma * z_m``; if ``min_m J(c_m) < J(w)`` move to that candidate.
  (Perturb the best-so-far with step size ``sigma`` and keep improvements.)
* ``weighted``: ``c_m = w + sigma * z_m``, then ``w <- sum_m a_m c_m = w + sigma sum_m a_m z_m``
  with ``a = softmax(-(J(c) - min J(c)) / (temperature * std J(c)))``: lower loss, larger
  weight. For small ``sigma``, ``J(c_m) ~ J(w) + sigma z_m . grad J`` so the weighted mean of
  the ``z_m`` points against the gradient: an estimate of a descent direction from function
  values alone. Dividing by the spread of the losses makes the weights independent of the
  loss's scale.

``K`` generations run inside one ``lax.scan`` (no Python per attempt or per candidate); a
generation ``k >= n_active`` is skipped by ``lax.cond`` so the host can stop at any attempt
count with one compiled shape. An *attempt* is one evaluation of ``J`` on the training set.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from ..errors import ConfigError, choices_message

MODES = ("global", "local", "weighted")


@dataclass(frozen=True)
class RandomSearchConfig:
    """Settings of a random search (the rest, e.g. model, l2, seed, max_time, target, come
    from :class:`sgdlab.TrainConfig`)."""

    mode: str = "local"             # global | local | weighted (see the module docstring)
    attempts: int | None = 1000     # loss evaluations on the training set; None: max_time rules
    population: int = 50            # candidates per generation, evaluated together by vmap
    scale: float = 0.01             # global: standard deviation of each drawn parameter
    sigma: float = 0.05             # local, weighted: standard deviation of a perturbation
    temperature: float = 1.0        # weighted: softmax temperature, in units of std(losses)
    generations_per_call: int | None = None  # generations per compiled call; None: automatic

    def __post_init__(self):
        if self.mode not in MODES:
            raise ConfigError(choices_message("random-search mode", self.mode, MODES))
        if self.attempts is not None and (not isinstance(self.attempts, int)
                                          or self.attempts < 1):
            raise ConfigError(f"random search needs attempts >= 1, got {self.attempts!r}")
        if not isinstance(self.population, int) or self.population < 1:
            raise ConfigError(f"population must be a whole number >= 1, got {self.population!r}")
        for name in ("scale", "sigma", "temperature"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ConfigError(f"random search {name} must be a finite number > 0, got {v!r}")
        if self.generations_per_call is not None and self.generations_per_call < 1:
            raise ConfigError("generations per call must be >= 1, got "
                              f"{self.generations_per_call}")

    @property
    def attempts_per_generation(self) -> int:
        # 'weighted' also evaluates the new centre once per generation, to report its loss.
        return self.population + (self.mode == "weighted")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


#: field names a caller may pass as keyword settings (e.g. ``sgdlab.fit(..., sigma=0.05)``)
SEARCH_FIELDS = tuple(f.name for f in dataclasses.fields(RandomSearchConfig) if f.name != "mode")


def make_search_chunk(objective_of_flat, config: RandomSearchConfig):
    """``run(state, X, T, n_active, generations) -> (state, losses (K,))``, un-jitted.

    ``state`` is ``(key, w (P,), J(w) ())``: the PRNG key, the current point and its loss.

    ``objective_of_flat(w (P,), X, T) -> J`` is the full training objective at a flat
    parameter vector. ``losses[k]`` is the loss of the current point after generation ``k``.
    """
    M, mode = config.population, config.mode

    def generation(state, X, T):
        key, w, best = state
        key, sub = jax.random.split(key)
        z = jax.random.normal(sub, (M, w.shape[0]), w.dtype)                 # (M, P)
        cands = config.scale * z if mode == "global" else w + config.sigma * z
        J = jax.vmap(lambda c: objective_of_flat(c, X, T))(cands)             # (M,)
        J = jnp.where(jnp.isfinite(J), J, jnp.inf)   # a diverging candidate never wins
        if mode in ("global", "local"):
            i = jnp.argmin(J)
            better = J[i] < best
            return key, jnp.where(better, cands[i], w), jnp.where(better, J[i], best)
        finite = jnp.isfinite(J)
        Jf = jnp.where(finite, J, jnp.max(jnp.where(finite, J, -jnp.inf)))
        spread = jnp.maximum(jnp.std(Jf), 1e-12)
        a = jax.nn.softmax(-(Jf - jnp.min(Jf)) / (config.temperature * spread))
        a = jnp.where(finite, a, 0.0)
        w_new = w + config.sigma * (a / jnp.sum(a)) @ z
        return key, w_new, objective_of_flat(w_new, X, T)

    def run(state, X, T, n_active, generations: int):
        def body(s, k):
            s = jax.lax.cond(k < n_active, lambda s: generation(s, X, T), lambda s: s, s)
            return s, s[2]

        return jax.lax.scan(body, state, jnp.arange(generations, dtype=jnp.int32))

    return run
