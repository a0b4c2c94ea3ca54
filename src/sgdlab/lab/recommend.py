"""Pick the batch size that reaches the target fastest, and say why in plain sentences.

The choice is the data's, nothing else: per batch size the learning rate the search kept, and
between batch sizes the lowest *median* training time to the target over seeds, tested against
the others by a bootstrap over the seeds (:mod:`.ties`; tied batch sizes are resolved by a
stated rule). The evidence sentences report

1. the pick, its time, spread and steps, and how its learning rate compares with the rule's;
2. whether it is distinguishable from the others (or which are tied), and which batch sizes
   missed the target (per seed: reached / diverged);
3. the decomposition the source texts teach, time = steps x seconds per step, with the probe's
   step cost against the runs' (:func:`decomposition_sentence`);
4. where steps to target stop scaling, with the fit and its quality (:mod:`.scaling_fit`);
5. the gradient noise scales against the critical batch size, and what to conclude.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import numpy as np

from .scaling_fit import fell_or_rose, fit_steps_scaling, scaling_sentence
from .ties import RULE, tie_analysis

#: Probe and runs agree on the cost of a step when their ratio is within this factor.
AGREE = 1.25
#: A probed step more than this many times cheaper at a larger batch size is a probe artifact.
PROBE_ARTIFACT = 2.0


class Recommendation(NamedTuple):
    batch_size: int | None
    lr: float | None
    seconds: float
    sentences: list
    scaling: dict
    fastest: int | None = None
    tied: list = []
    distinguishable: bool = False
    rule: str = RULE
    p_slower: dict = {}

    def to_dict(self) -> dict:
        d = dict(self._asdict())
        d["p_slower"] = {str(k): v for k, v in self.p_slower.items()}
        return d


def _t(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "never"
    return f"{seconds * 1000:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"


def _what(metric: str, target: float) -> str:
    name = "validation R^2" if metric == "val_r2" else "validation accuracy"
    return f"{name} {target:g}" if _finite(target) else f"the target {name}"


def _nan_low(v) -> float:
    return -math.inf if v is None or not math.isfinite(v) else v


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def status_text(reached: int, diverged: int, seeds: int) -> str:
    """``"3 of 3 reached"``, ``"2 of 3 reached, 1 diverged"``, ``"all 3 diverged"``."""
    if diverged == seeds:
        return f"all {seeds} diverged"
    text = f"{reached} of {seeds} reached"
    return text + (f", {diverged} diverged" if diverged else "")


def recommend(per_batch: Sequence[dict], *, target: float, metric: str = "val_accuracy",
              noise: dict | None = None, seeds: int = 1, times_by_batch: dict | None = None,
              decomposition: Sequence[dict] | None = None,
              noise_trace: Sequence[dict] | None = None) -> Recommendation:
    """The recommendation from per-batch-size rows.

    Each row needs ``batch_size``, ``lr``, ``time_median``, ``time_low``, ``time_high``,
    ``steps_median`` (infinite when the median run missed the target) and ``final_median``;
    optionally ``reached``, ``diverged``, ``seeds`` and ``lr_multiplier`` (the kept lr over the
    scaling rule's). ``times_by_batch`` maps a batch size to its per-seed times (default: the
    median alone, so every difference counts). ``noise`` is the noise-scale dict of the sweep
    (``b_simple``, ``low``, ``high``, optionally ``b_noise`` and ``reason``), or None.
    """
    rows = sorted(per_batch, key=lambda r: r["batch_size"])
    steps = [r.get("steps_best", r["steps_median"]) for r in rows]
    scaling = fit_steps_scaling([r["batch_size"] for r in rows], steps)
    what = _what(metric, target)
    times = times_by_batch or {r["batch_size"]: [r["time_median"]] for r in rows}
    reached_all = {r["batch_size"]: r.get("reached", 1) == r.get("seeds", 1) for r in rows}
    ties = tie_analysis(times, reached_all)
    if ties["pick"] is None:
        best = max(rows, key=lambda r: _nan_low(r["final_median"]), default=None)
        tail = (f" The best final value, {best['final_median']:.4g}, was at batch size "
                f"{best['batch_size']}." if best and _finite(best["final_median"]) else "")
        return Recommendation(None, None, math.inf, [
            f"No batch size reached {what} within its budget in the median of {seeds} "
            f"seed(s).{tail} Lower the target (--target-accuracy) or raise the budget "
            "(--budget)."], scaling)

    by_b = {r["batch_size"]: r for r in rows}
    pick, fastest = by_b[ties["pick"]], by_b[ties["fastest"]]
    sentences = [_pick_sentence(pick, fastest, what, seeds), _contest_sentence(rows, ties, by_b)]
    if decomposition:
        sentences.append(decomposition_sentence(decomposition))
    sentences.append(scaling_sentence(scaling, [r["batch_size"] for r in rows], steps))
    if noise:
        sentences.append(noise_sentence(noise, scaling, pick["batch_size"], noise_trace))
    return Recommendation(int(pick["batch_size"]), float(pick["lr"]), pick["time_median"],
                          sentences, scaling, int(fastest["batch_size"]), ties["tied"],
                          ties["distinguishable"], RULE, ties["p_slower"])


def _pick_sentence(pick: dict, fastest: dict, what: str, seeds: int) -> str:
    m = pick.get("lr_multiplier")
    how = (f", {m:.3g}x the scaling rule's" if _finite(m) and abs(m - 1) > 1e-9 else "")
    text = (f"Batch size {pick['batch_size']} (learning rate {pick['lr']:.4g}{how}) reached "
            f"{what} in a median {_t(pick['time_median'])} of training time over {seeds} "
            f"seed(s) (range {_t(pick['time_low'])} to {_t(pick['time_high'])}), in "
            f"{pick['steps_median']:.0f} steps")
    if "reached" in pick:
        text += f"; {status_text(pick['reached'], pick.get('diverged', 0), pick['seeds'])}"
    if fastest is not pick:
        text += (f". Batch size {fastest['batch_size']} had the lowest median, "
                 f"{_t(fastest['time_median'])}")
    if pick["steps_median"] == 0:
        text += (". The target was met at the first evaluation, before any training step: "
                 "choose a higher --target-accuracy")
    return text + "."


def _contest_sentence(rows: list, ties: dict, by_b: dict) -> str:
    missed = [r for r in rows if not math.isfinite(r["time_median"])]
    miss = ""
    if missed:
        detail = ", ".join(
            f"{r['batch_size']} ({status_text(r['reached'], r.get('diverged', 0), r['seeds'])})"
            if "reached" in r else str(r["batch_size"]) for r in missed)
        miss = (f" {len(missed)} of {len(rows)} batch sizes did not reach the target in the "
                f"median: {detail}.")
        if len(missed) >= len(rows) - 1:
            miss += " Raise --budget to give them more time, or lower --target-accuracy."
    shaky = [r for r in rows if math.isfinite(r["time_median"]) and "reached" in r
             and r["reached"] < r["seeds"]]
    if shaky:
        detail = ", ".join(
            f"{r['batch_size']} ({status_text(r['reached'], r.get('diverged', 0), r['seeds'])})"
            for r in shaky)
        miss += (f" At their kept learning rates {len(shaky)} of {len(rows)} batch sizes had a "
                 f"seed that missed the target or diverged: {detail}.")
    edges = [r for r in rows if r.get("at_edge")]
    if edges:
        detail = ", ".join(f"{r['batch_size']} ({r['at_edge']})" for r in edges)
        miss += (f" For batch sizes {detail} the kept learning rate is the lowest or highest "
                 "one tried, so a better one may lie beyond: raise --search-points (or, with "
                 "--lr-grid, widen the grid).")
    fastest = by_b[ties["fastest"]]
    if len(ties["tied"]) > 1:
        others = [b for b in ties["tied"] if b != ties["fastest"]]
        names = ", ".join(str(b) for b in others)
        return (f"Within the measurement noise batch size {ties['fastest']} "
                f"({_t(fastest['time_median'])}) cannot be told apart from {names} (each "
                f"slower in fewer than 95% of bootstrap resamples of the seeds); the pick "
                f"among them is {RULE}.{miss}")
    ranked = sorted((r for r in rows if math.isfinite(r["time_median"])
                     and r["batch_size"] != ties["fastest"]), key=lambda r: r["time_median"])
    if not ranked:
        return f"No other batch size reached the target (of {len(rows)} tried).{miss}"
    second = ranked[0]
    ratio = (f"{second['time_median'] / fastest['time_median']:.2f}x as long"
             if fastest["time_median"] > 0 else "the fastest met the target at its first "
             "evaluation, before any step")
    p = ties["p_slower"].get(second["batch_size"], 1.0)
    test = (f"it was slower in {100 * p:.0f}% of bootstrap resamples of the seeds"
            if second.get("seeds", 1) > 1 and fastest.get("seeds", 1) > 1 else
            "with one seed per batch size, no test can tell whether the difference is more "
            "than timing noise (use --seeds 3)")
    return (f"The runner-up, batch size {second['batch_size']}, took "
            f"{_t(second['time_median'])} ({ratio}); {test}.{miss}")


def decomposition_sentence(rows: Sequence[dict]) -> str:
    """Time to target = steps x seconds per step (+ calls x seconds per call), between the
    smallest and largest batch sizes that reached the target, and how well the product of
    the probe's factors predicts the measured times. Steps that rose are said to rise; a
    probed step over ``PROBE_ARTIFACT``-fold cheaper at a larger batch size marks the probe
    unreliable, and then no agreement with the runs is claimed."""
    pts = [r for r in rows if _finite(r.get("steps")) and r["steps"] > 0
           and _finite(r.get("probe_step_seconds"))]
    if len(pts) < 2:
        return ("Time to target = steps x seconds per step could not be decomposed: fewer "
                "than two batch sizes reached the target with a probed step cost.")
    a, b = pts[0], pts[-1]
    fall = a["steps"] / b["steps"]
    cost = b["probe_step_seconds"] / a["probe_step_seconds"]
    costs = (f"one step cost {cost:.3g}x as much (throughput probe)" if cost >= 1 else
             f"the throughput probe found one step cheaper, at {cost:.3g}x the cost")
    text = (f"Time to target = steps x seconds per step: from batch size {a['batch_size']} to "
            f"{b['batch_size']} the steps {fell_or_rose(fall)} while {costs}")
    drop = _cheaper_step(pts)
    if drop:
        small, big, factor = drop
        text += (f"; a step {factor:.3g}x cheaper at batch size {big} than at {small} is an "
                 "artifact of the probe, not a cost of the batch size: treat the probe as "
                 "unreliable")
    calls = [r for r in pts if _finite(r.get("call_seconds")) and r.get("calls")]
    if calls:
        share = float(np.median([r["overhead_seconds"] / r["predicted_seconds"]
                                 for r in calls]))
        per_call = _t(float(np.median([r["call_seconds"] for r in calls])))
        text += (f"; each run also paid about {per_call} per compiled call, one call per "
                 f"evaluation ({_calls(calls)} to the target, a median "
                 f"{100 * share:.0f}% of the predicted time, which a run evaluated less "
                 "often would not pay)")
    ratios = [r["ratio"] for r in pts if _finite(r.get("ratio"))]
    if ratios:
        lo, hi = min(ratios), max(ratios)
        mid = float(np.median(ratios))
        verdict = (": a comparison that rests on that unreliable probe" if drop else
                   ": probe and runs agree" if 1 / AGREE <= mid <= AGREE else
                   f": probe and runs disagree: the runs took {mid:.2f}x their probed parts, "
                   "since a run's calls come between evaluations and host-side batch drawing, "
                   "which the probe's back-to-back calls skip" if mid > 1 else
                   f": probe and runs disagree: the runs took only {mid:.2f}x their probed "
                   "parts")
        text += (f". Steps x step cost + calls x call cost predicts the measured medians to a "
                 f"median ratio of {mid:.2f} (measured / predicted; {lo:.2f} to {hi:.2f} over "
                 f"batch sizes){verdict}")
    return text + "."


def _cheaper_step(pts: Sequence[dict]) -> tuple | None:
    """``(smaller batch, larger batch, factor)`` of the largest drop of the probed step cost
    from a smaller batch size to a larger one, when a step got more than
    ``PROBE_ARTIFACT``-fold cheaper (which more examples per step cannot do); else None."""
    worst, dearest = None, pts[0]
    for r in pts[1:]:
        factor = dearest["probe_step_seconds"] / r["probe_step_seconds"]
        if factor > PROBE_ARTIFACT and (worst is None or factor > worst[2]):
            worst = (dearest["batch_size"], r["batch_size"], factor)
        if r["probe_step_seconds"] > dearest["probe_step_seconds"]:
            dearest = r
    return worst


def _calls(rows: Sequence[dict]) -> str:
    lo, hi = min(r["calls"] for r in rows), max(r["calls"] for r in rows)
    return f"{lo} call{'s' if lo > 1 else ''}" if lo == hi else f"{lo} to {hi} calls"


def noise_sentence(noise: dict, scaling: dict, pick: int,
                   trace: Sequence[dict] | None = None) -> str:
    """The noise scales near the target, how B_simple grew, their agreement with B_crit
    (McCandlish et al. 2018), and what to conclude, in words and numbers."""
    b, low, high = noise.get("b_simple"), noise.get("low"), noise.get("high")
    if not (_finite(b) and b > 0):
        return ("The gradient noise scale could not be estimated at the target: the averaged "
                "two-batch estimate of |G|^2 or of tr(Sigma) was not positive (the mean "
                "gradient was indistinguishable from zero, or the two batch sizes too close: "
                "try --noise-batches further apart, e.g. 1,1024).")
    if _finite(low) and _finite(high):
        interval = f"68% interval {low:.3g} to {high:.3g}"
    elif _finite(low):
        interval = (f"68% interval from {low:.3g} up, with no upper end: the |G|^2 estimate "
                    "was not positive in over 16% of bootstrap resamples")
    else:
        interval = ("no interval: the |G|^2 estimate was not positive in most bootstrap "
                    "resamples")
    text = f"The gradient noise scale near the target is B_simple = {b:.3g} ({interval})"
    pts = [t["b_simple"] for t in (trace or []) if _finite(t.get("b_simple"))]
    if len(pts) >= 2:
        first, last = pts[0], pts[-1]
        if last > 1.2 * first or last < first / 1.2:
            how = "grew" if last > first else "fell"
            text += (f"; its smoothed trace over the run {how} from {first:.3g} to "
                     f"{last:.3g}")
        else:
            text += f"; its smoothed trace over the run stayed near {first:.3g}"
    bn = noise.get("b_noise")
    if _finite(bn) and bn > 0:
        text += f"; with curvature, B_noise = tr(H Sigma)/(G^T H G) = {bn:.3g}"
    elif noise.get("reason"):
        text += f"; B_noise was not formed: {noise['reason']}"
    bc = scaling.get("b_crit", math.nan)
    if scaling.get("good") and _finite(bc) and bc > 0:
        f = b / bc
        rel = ("within a factor of 2 of" if 0.5 <= f <= 2 else
               f"{f:.2g}x" if f > 2 else f"{1 / f:.2g}x smaller than")
        text += (f". B_simple is {rel} the critical batch size fitted from the steps "
                 f"({bc:.3g}); McCandlish et al. (2018) predict the two agree")
        if pick < bc / 2:
            text += (f". Conclusion: batch size {pick} is below B_crit, so larger batches "
                     "would still save steps, but on this hardware their steps cost more "
                     "than they save")
        elif pick <= 2 * bc:
            text += (f". Conclusion: batch size {pick} sits at the critical batch size, "
                     "where doubling the batch stops halving the steps")
        else:
            text += (f". Conclusion: batch size {pick} is beyond B_crit, where steps barely "
                     "fall, yet a step there costs little more than a smaller one, so the "
                     "time still falls")
        return text + "."
    side = "above" if pick > b else "at or below"
    return (f"{text}. No critical batch size was fitted from the steps, so the noise scale "
            f"is the only guide: the recommended batch size {pick} is {side} it, and "
            "McCandlish et al. (2018) predict that batches beyond it stop saving steps.")
