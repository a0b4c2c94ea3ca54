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
from concurrent.futures import ThreadPoolExecutor

from ..data.dataset import Dataset
from ..engine.config import TrainConfig
from ..engine import train
from .measure import crossing
from .noise import NoiseScaleMeter
from .prepare import prepare
from .sweep_config import BIG_NOISE_BATCH


def measure_noise(train_part: Dataset, validation: Dataset, cfg: TrainConfig, sizes: list,
                  noise_batches: tuple | None = None, draws: int = 16, *, model=None,
                  loss=None) -> dict:
    """``{"estimate": {...}, "trace": [{"step", "b_simple"}]}`` of a run of ``cfg``.

    The two-batch estimator uses ``noise_batches`` ``(small, big)`` or
    :func:`default_noise_batches`.
    """
    from .hessian_noise import lower_moments
    small, big = noise_batches or default_noise_batches(sizes, train_part.n)
    prepared = prepare(train_part, cfg, model, loss)
    meter = NoiseScaleMeter(prepared, l2=cfg.l2, b_small=small, b_big=big, draws=draws,
                            seed=cfg.seed)
    examples, hessian_examples = curvature_samples(prepared)
    # The curvature's program needs only the parameters' shapes: it compiles in a thread
    # while the run trains (nothing of this run is timed).
    lowered = lower_moments(prepared.setup(cfg).init_params(), prepared, l2=cfg.l2,
                            examples=examples, hessian_examples=hessian_examples)
    with ThreadPoolExecutor(max_workers=1) as pool:
        program = pool.submit(lowered.compile)
        result = train(train_part, validation, cfg, model=model, loss=loss, callback=meter)
        program = program.result()
    target = cfg.target
    c = crossing(result.history, target) if target is not None else {"reached": False}
    # The run stops at the row that reached the target, so its last rows are the ones near
    # it: the estimate pools the second half of the run, that row included. (Cutting at the
    # interpolated crossing step would drop that row and could leave only step 0.)
    est = meter.estimate().to_dict()
    est.update(batch_size=cfg.batch_size, lr=cfg.lr, reached_target=c["reached"],
               at_step=result.steps)
    est.update(_with_curvature(result.params, prepared, cfg.l2, cfg.seed, program))
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
