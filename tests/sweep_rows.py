"""Hand-made sweep rows for tests of the verdict, the tables and the report (no training)."""

import math

from sgdlab.lab.tables import BatchRow


def batch_row(b, t, steps, *, seeds=3, reached=None, diverged=0, times=None, lr=0.1,
              final=0.95, step_seconds=None, call_seconds=1e-4, calls=1, cap=None,
              cap_reason="", search_end="resolution", at_edge=None, multiplier=1.0,
              steps_best=None):
    """A :class:`BatchRow` of batch size ``b`` with median time ``t`` and median ``steps``.

    ``times`` defaults to ``seeds`` times spread 10 % around ``t`` (``inf`` when ``t`` is);
    ``step_seconds`` to ``(t - calls * call_seconds) / steps``, so that probe and replays
    agree."""
    reached = seeds if reached is None else reached
    if times is None:
        times = tuple(math.inf if not math.isfinite(t) else t * f
                      for f in ((0.9, 1.0, 1.1) if seeds == 3 else (1.0,) * seeds))
    finite = [x for x in times if math.isfinite(x)]
    if step_seconds is None:
        step_seconds = ((t - calls * call_seconds) / steps
                        if math.isfinite(t) and math.isfinite(steps) and steps else 1e-4)
    predicted = (steps * step_seconds + calls * call_seconds) if math.isfinite(steps) \
        else math.nan
    return BatchRow(
        batch_size=b, lr=lr, lr_multiplier=multiplier, points=5, seeds=seeds,
        reached=reached, diverged=diverged, steps_median=steps,
        steps_best=steps if steps_best is None else steps_best, steps_best_lr=lr,
        epochs_median=math.nan, examples_median=math.nan, final_median=final,
        seed_times=tuple(times), time_median=t,
        time_low=min(finite) if finite else math.inf,
        time_high=max(times) if finite else math.inf, calls=calls if math.isfinite(t) else None,
        step_seconds=step_seconds, call_seconds=call_seconds, predicted_seconds=predicted,
        at_edge=at_edge, search_end=search_end, cap=cap, cap_reason=cap_reason,
        compile_seconds=0.1)
