"""The sweep's noise-scale run: B_simple traced over training, both noise scales at the target.

One short run of a swept batch size (the one nearest the base batch, at the learning rate its
search kept, so its compiled program is one the sweep already built) carries a
:class:`~.noise.NoiseScaleMeter`: at every evaluation row it estimates ``B_simple`` from pairs of
batches, giving a trace that grows as the loss falls. The run stops at the target, and there
both scales of McCandlish et al. (2018) are measured from per-example gradients and
Hessian-vector products (:mod:`.hessian_noise`): ``B_simple = tr(Sigma) / |G|^2`` and
``B_noise = tr(H Sigma) / (G^T H G)``.

The two-batch estimate pools the rows in the second half of the run, which ends at the row that
first reached the target (McCandlish et al. relate the critical batch size to the noise scale
*at* the loss one trains to); the whole run's second half when it never does.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from ..data.dataset import Dataset
from ..engine.config import TrainConfig
from ..engine import train
from .measure import crossing
from .noise import NoiseScaleMeter
from .prepare import prepare
from .sweep_config import BIG_NOISE_BATCH


class NoisePrograms(NamedTuple):
    """The noise run's compiled programs besides training: the meter's two-batch gradient
    norms (:func:`.noise.lower_sq_norms`) and the curvature's moments
    (:func:`.hessian_noise.lower_moments`). They depend on shapes only (the parameters', the
    data's, the batches'), so a sweep compiles them while its searches run."""

    norms: object
    moments: object


def lower_noise_programs(train_part: Dataset, cfg: TrainConfig, sizes: list,
                         noise_batches: tuple | None = None, draws: int = 16, *, model=None,
                         loss=None) -> list:
    """The lowered :class:`NoisePrograms` of a noise run like ``cfg`` (any batch size and
    learning rate), in its order; compile each (e.g. in a thread) and pass them on."""
    from .hessian_noise import lower_moments
    from .noise import lower_sq_norms
    small, big = noise_batches or default_noise_batches(sizes, train_part.n)
    prepared = prepare(train_part, cfg, model, loss)
    params = prepared.setup(cfg).init_params()
    examples, hessian_examples = curvature_samples(prepared)
    return [lower_sq_norms(prepared, params, l2=cfg.l2, draws=draws, b_small=small,
                           b_big=big),
            lower_moments(params, prepared, l2=cfg.l2, examples=examples,
                          hessian_examples=hessian_examples)]


def compile_noise_programs(lowered: list) -> NoisePrograms:
    """:class:`NoisePrograms` from :func:`lower_noise_programs`' lowered programs."""
    return NoisePrograms(*(program.compile() for program in lowered))


def measure_noise(train_part: Dataset, validation: Dataset, cfg: TrainConfig, sizes: list,
                  noise_batches: tuple | None = None, draws: int = 16, *, model=None,
                  loss=None, programs: NoisePrograms | None = None) -> dict:
    """``{"estimate": {...}, "trace": [{"step", "b_simple"}]}`` of a run of ``cfg``.

    The two-batch estimator uses ``noise_batches`` ``(small, big)`` or
    :func:`default_noise_batches`. ``programs``: compiled ahead for the same settings
    (:func:`lower_noise_programs`); default: compiled now.
    """
    small, big = noise_batches or default_noise_batches(sizes, train_part.n)
    if programs is None:
        programs = compile_noise_programs(lower_noise_programs(
            train_part, cfg, sizes, noise_batches, draws, model=model, loss=loss))
    prepared = prepare(train_part, cfg, model, loss)
    meter = NoiseScaleMeter(prepared, l2=cfg.l2, b_small=small, b_big=big, draws=draws,
                            seed=cfg.seed, norms=programs.norms)
    result = train(train_part, validation, cfg, model=model, loss=loss, callback=meter)
    target = cfg.target
    c = crossing(result.history, target) if target is not None else {"reached": False}
    # The run stops at the row that reached the target, so its last rows are the ones near
    # it: the estimate pools the second half of the run, that row included. (Cutting at the
    # interpolated crossing step would drop that row and could leave only step 0.)
    est = meter.estimate().to_dict()
    est.update(batch_size=cfg.batch_size, lr=cfg.lr, reached_target=c["reached"],
               at_step=result.steps)
    est.update(_with_curvature(result.params, prepared, cfg.l2, cfg.seed, programs.moments))
    return {"estimate": est, "trace": meter.trace()}


def default_noise_batches(sizes, n: int) -> tuple[int, int]:
    """``(small, big)``: the smallest swept batch size and the largest up to
    :data:`BIG_NOISE_BATCH`; ``(1, min(BIG_NOISE_BATCH, N))`` when they coincide."""
    small = sizes[0]
    big = max((b for b in sizes if b <= BIG_NOISE_BATCH), default=small)
    return (small, big) if small < big else (1, min(BIG_NOISE_BATCH, n))


def curvature_samples(prepared) -> tuple[int, int]:
    """``(examples, hessian_examples)`` of the sweep's curvature measurement.

    Smaller samples than the defaults: the sweep needs the figure, not the last 5 %. The
    cost is examples x hessian_examples per-row passes; a convolutional network's are
    costly (the cnn on the digits as images on a 2-core CPU: 28 s at 512 x 2048, 6 minutes
    with XLA's convolutions), so it takes 1/16 of them (wider intervals, which the report
    shows). The built-in cnn convolves by matrix products on a CPU, hence its own test."""
    from ..engine.chunk import uses_convolution
    from ..engine.setup import model_input
    if getattr(prepared.model.apply, "spec", {}).get("builtin") == "cnn" or uses_convolution(
            prepared.model, model_input(prepared.example_shape), prepared.n_out):
        return 128, 512
    return 512, 2048


def _with_curvature(params, prepared, l2: float, seed: int, program=None) -> dict:
    """``b_noise`` (with its interval), ``hessian_b_simple`` and a ``reason`` when B_noise
    cannot be formed; NaN stays out of the result (None instead). ``program``: the
    measurement's program compiled ahead (:func:`.hessian_noise.lower_moments`)."""
    from .hessian_noise import noise_scales
    examples, hessian_examples = curvature_samples(prepared)
    s = noise_scales(params, prepared, l2=l2, seed=seed, examples=examples,
                     hessian_examples=hessian_examples, program=program)

    def clean(v):
        return float(v) if v is not None and math.isfinite(v) else None

    return {"b_noise": clean(s.b_noise), "b_noise_low": clean(s.b_noise_low),
            "b_noise_high": clean(s.b_noise_high), "hessian_b_simple": clean(s.b_simple),
            "reason": s.reason}
