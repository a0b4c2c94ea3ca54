"""The recommendation, and why, in plain sentences, each one true of the table it describes.

The choice is the data's: per batch size the learning rate its search kept, and between batch
sizes the measured (replayed) time to the target, with the tie test and the stated rule of
:mod:`.ties`. The sentences, in order:

1. **the headline**: the tie first when there is one ("batch sizes 64 to 256 reach ... within
   the noise of each other; take 128 ..."), else the pick and how far ahead it is;
2. the pick itself: its time, spread, steps and seeds, and how its learning rate compares
   with the rule's; the fastest median when the rule picked another batch size;
3. what did not reach the target and why: too slow to win (stopped at
   :data:`~.caps.BEHIND` times the best time), out of budget (naming the ``--budget`` that
   would let it finish), diverged; kept learning rates at the edge of those tried;
4. time = steps x seconds per step (+ calls x seconds per call), and whether a compiled
   call's fixed cost dominates (:func:`decomposition_sentence`);
5. where steps to target stop scaling (:mod:`.scaling_fit`);
6. the gradient noise scales against the critical batch size.

The confirmation's sentence (:mod:`.next_run`) is added by the sweep once it has run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .caps import BEHIND, budget_hint
from .scaling_fit import StepsFit, fell_or_rose, fit_steps_scaling, scaling_sentence
from .tables import BatchRow
from .ties import PICK_MARGIN, RULE, Decision, decide

#: Probe and runs agree on the cost of a step when their ratio is within this factor.
AGREE = 1.25
#: A probed step more than this many times cheaper at a larger batch size is a probe artifact.
PROBE_ARTIFACT = 2.0
#: The calls' fixed cost dominates a time to target when it is at least this share of it.
OVERHEAD_DOMINATES = 0.3


@dataclass(frozen=True)
class Recommendation:
    """The pick (None when nothing reached the target), its time and steps, the sentences
    (the headline first), the :class:`~.ties.Decision` behind it and the steps fit."""

    batch_size: int | None
    lr: float | None
    seconds: float
    steps: float
    sentences: tuple
    decision: Decision = field(default_factory=Decision)
    scaling: StepsFit = field(default_factory=StepsFit)
    rule: str = RULE

    @property
    def headline(self) -> str:
        return self.sentences[0] if self.sentences else ""

    @property
    def tied(self) -> tuple:
        return self.decision.tied

    @property
    def fastest(self) -> int | None:
        return self.decision.fastest

    def with_sentence(self, sentence: str) -> "Recommendation":
        return Recommendation(self.batch_size, self.lr, self.seconds, self.steps,
                              (*self.sentences, sentence), self.decision, self.scaling,
                              self.rule)


def seconds_text(seconds: float) -> str:
    """``7.31 ms`` / ``1.2 s``; ``never`` for an infinite time."""
    if not math.isfinite(seconds):
        return "never"
    return f"{seconds * 1000:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"


def _what(metric: str, target: float) -> str:
    name = "validation R^2" if metric == "val_r2" else "validation accuracy"
    return f"{name} {target:g}" if _finite(target) else f"the target {name}"


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def sizes_text(sizes: Sequence[int], swept: Sequence[int]) -> str:
    """``"16 to 1024"`` when ``sizes`` are consecutive in ``swept``, else ``"16, 64 and
    256"``."""
    sizes = sorted(sizes)
    swept = sorted(swept)
    if len(sizes) > 2 and all(b in swept for b in sizes):
        i = swept.index(sizes[0])
        if swept[i:i + len(sizes)] == sizes:
            return f"{sizes[0]} to {sizes[-1]}"
    if len(sizes) == 1:
        return str(sizes[0])
    return ", ".join(str(b) for b in sizes[:-1]) + f" and {sizes[-1]}"


def batch_sizes_named(sizes: Sequence[int], swept: Sequence[int]) -> str:
    """``"batch size 8"`` or ``"batch sizes 8 to 64"`` (:func:`sizes_text`)."""
    return (f"batch size {sizes[0]}" if len(sizes) == 1 else
            f"batch sizes {sizes_text(sizes, swept)}")


def recommend(batches: Sequence[BatchRow], *, target: float, metric: str = "val_accuracy",
              noise=None, seeds: int = 1, budget: str | None = None,
              decision: Decision | None = None) -> Recommendation:
    """The :class:`Recommendation` from per-batch-size rows (``noise``: a
    :class:`~.summary.NoiseResult` or None; ``budget``: the ``--budget`` text, None for the
    automatic caps; ``decision`` defaults to :func:`~.ties.decide` on the rows)."""
    rows = sorted(batches, key=lambda r: r.batch_size)
    sizes = [r.batch_size for r in rows]
    steps = [r.steps_best for r in rows]
    scaling = fit_steps_scaling(sizes, steps)
    what = _what(metric, target)
    decision = decision or decide({r.batch_size: r.seed_times for r in rows},
                                  {r.batch_size: r.steps_median for r in rows},
                                  {r.batch_size: r.every_seed_reached for r in rows})
    if decision.pick is None:
        best = max((r for r in rows if _finite(r.final_median)),
                   key=lambda r: r.final_median, default=None)
        tail = (f" The best final value, {best.final_median:.4g}, was at batch size "
                f"{best.batch_size}." if best else "")
        text = (f"No batch size reached {what} in the median of {seeds} seed(s).{tail} "
                "Lower the target (--target-accuracy)")
        capped = [r for r in rows if r.cap_reason == "budget"]
        text += (f" or raise the budget (--budget; {budget_hint(budget)})." if capped else ".")
        return Recommendation(None, None, math.inf, math.inf,
                              (text, *_misses(rows, decision, budget)), decision, scaling)
    by_b = {r.batch_size: r for r in rows}
    pick = by_b[decision.pick]
    sentences = [headline(rows, decision, what, seeds), pick_sentence(pick, by_b, decision,
                                                                        seeds)]
    sentences += _misses(rows, decision, budget)
    if any(_finite(r.step_seconds) for r in rows):
        sentences.append(decomposition_sentence(rows, pick.batch_size))
    sentences.append(scaling_sentence(scaling, sizes, steps))
    if noise is not None:
        sentences.append(noise_sentence(noise, scaling, pick.batch_size))
    return Recommendation(pick.batch_size, pick.lr, pick.time_median, pick.steps_median,
                          tuple(sentences), decision, scaling)


def headline(rows: list, decision: Decision, what: str, seeds: int) -> str:
    """The first sentence: the tie and the pick, or the pick and its lead."""
    by_b = {r.batch_size: r for r in rows}
    pick, fastest = by_b[decision.pick], by_b[decision.fastest]
    take = (f"batch size {pick.batch_size} at learning rate {pick.lr:.4g}, "
            f"{seconds_text(pick.time_median)}")
    untested = ("" if decision.tested else
                f" (with {seeds} seed(s) per batch size no test can tell a difference from "
                "timing noise; use --seeds 3)")
    if len(decision.tied) > 1:
        times = [by_b[b].time_median for b in decision.tied]
        why = (f"the fewest steps ({pick.steps_median:.0f}) among those within "
               f"{100 * PICK_MARGIN:.0f}% of the fastest median"
               if len(decision.near) > 1 else "the fastest median")
        spread = ("within the noise of each other" if decision.tested else
                  f"within {100 * PICK_MARGIN:.0f}% of each other")
        every = "both" if len(decision.tied) == 2 else "all"
        return (f"Batch sizes {sizes_text(decision.tied, list(by_b))} {every} reach {what} "
                f"{spread} ({seconds_text(min(times))} to {seconds_text(max(times))}, "
                f"medians over {seeds_text([by_b[b] for b in decision.tied], seeds)})"
                f"{untested}; take {take}: {why}.")
    runner = min((r for r in rows if r.batch_size != fastest.batch_size
                  and math.isfinite(r.time_median)),
                 key=lambda r: r.time_median, default=None)
    if runner is None:
        return (f"Only batch size {pick.batch_size} reached {what} (learning rate "
                f"{pick.lr:.4g}, a median {seconds_text(pick.time_median)} over {seeds} "
                "seeds).")
    ratio = runner.time_median / pick.time_median if pick.time_median > 0 else math.inf
    p = decision.p_slower.get(runner.batch_size)
    test = (f"; it was slower in {100 * p:.0f}% of bootstrap resamples of the seeds"
            if p is not None else untested)
    return (f"Take {take}: it reaches {what} faster than every other batch size beyond the "
            f"noise; the runner-up, batch size {runner.batch_size}, took "
            f"{seconds_text(runner.time_median)} ({ratio:.2f}x as long){test}.")


def seeds_text(rows: Sequence[BatchRow], default: int) -> str:
    """``"3 seeds"``, or ``"3 to 6 seeds"`` when some rows had more (the confirmation's extra
    seeds for a tie it contradicted)."""
    counts = sorted({r.seeds for r in rows if r.seeds}) or [default]
    low, high = counts[0], counts[-1]
    return f"{low} seeds" if low == high else f"{low} to {high} seeds"


def pick_sentence(pick: BatchRow, by_b: dict, decision: Decision, seeds: int) -> str:
    m = pick.lr_multiplier
    how = f", {m:.3g}x the scaling rule's" if _finite(m) and abs(m - 1) > 1e-9 else ""
    text = (f"Batch size {pick.batch_size} (learning rate {pick.lr:.4g}{how}) reached the "
            f"target in a median {seconds_text(pick.time_median)} of training time over "
            f"{pick.seeds} seed(s) (range {seconds_text(pick.time_low)} to "
            f"{seconds_text(pick.time_high)}), in {pick.steps_median:.0f} steps; "
            f"{pick.status_text}")
    if decision.fastest != pick.batch_size:
        fast = by_b[decision.fastest]
        text += (f". Batch size {fast.batch_size} had the lowest median, "
                 f"{seconds_text(fast.time_median)}, "
                 f"{pick.time_median / fast.time_median:.3g}x faster, in "
                 f"{fast.steps_median:.0f} steps")
    if pick.steps_median == 0:
        text += (". The target was met at the first evaluation, before any training step: "
                 "choose a higher --target-accuracy")
    return text + "."


def _misses(rows: list, decision: Decision, budget: str | None) -> list:
    """Sentences on the batch sizes that did not reach the target, and why (and edges)."""
    out = []
    missed = [r for r in rows if not math.isfinite(r.steps_median)]
    diverged = [r.batch_size for r in missed if r.seeds and r.diverged * 2 >= r.seeds]
    behind = [r.batch_size for r in missed if r.batch_size not in diverged
              and (r.cap_reason == "behind" or r.search_end == "behind")]
    capped = [r for r in missed if r.cap_reason == "budget"
              and r.batch_size not in diverged + behind]
    swept = [r.batch_size for r in rows]
    if behind:
        one = len(behind) == 1
        out.append(f"{batch_sizes_named(behind, swept).capitalize()} "
                   f"{'was' if one else 'were'} stopped at {BEHIND:g}x the best time so far "
                   f"without reaching the target: {'it is' if one else 'each is'} more than "
                   f"{BEHIND:g}x slower than the pick, so the search spent no more on "
                   f"{'it' if one else 'them'}.")
    if capped:
        names = batch_sizes_named([r.batch_size for r in capped], swept)
        limit = (f"the per-run budget of {budget}" if budget else
                 "the cap of a batch size's first runs (made before any batch size reached "
                 "the target)")
        them = "it" if len(capped) == 1 else "them"
        out.append(f"{names.capitalize()} used up {limit} ({capped[-1].cap} steps at "
                   f"{capped[-1].batch_size}) before the median seed reached the target, so "
                   f"whether {'it is' if len(capped) == 1 else 'they are'} slower is not "
                   f"known: {budget_hint(budget)} would let {them} finish.")
    if diverged:
        out.append(f"At {batch_sizes_named(diverged, swept)} most seeds of the best learning "
                   "rate tried diverged.")
    shaky = [r for r in rows if math.isfinite(r.steps_median) and r.reached < r.seeds
             and r.batch_size in decision.tied]
    if shaky:
        detail = ", ".join(f"{r.batch_size} ({r.status_text})" for r in shaky)
        out.append(f"Among the tied batch sizes some seeds missed the target at the kept "
                   f"learning rate: {detail}; the pick is made among those whose every seed "
                   "reached it.")
    edges = [r for r in rows if r.at_edge and math.isfinite(r.steps_median)
             and r.batch_size in decision.tied]
    if edges:
        detail = ", ".join(f"{r.batch_size} ({r.at_edge})" for r in edges)
        out.append(f"For batch size{'s' if len(edges) > 1 else ''} {detail} the kept learning "
                   "rate is the lowest or highest one tried, so a better one may lie beyond: "
                   "raise --search-points.")
    return out


def decomposition_sentence(rows: Sequence[BatchRow], pick: int | None = None) -> str:
    """Time to target = steps x seconds per step (+ calls x seconds per call) between the
    smallest and largest batch sizes that reached the target, how well the probe's factors
    predict the replayed times, and whether a call's fixed cost dominates the pick's time.
    Steps that rose are said to rise; a probed step over ``PROBE_ARTIFACT``-fold cheaper at a
    larger batch size marks the probe unreliable."""
    pts = [r for r in rows if _finite(r.steps_median) and r.steps_median > 0
           and _finite(r.step_seconds)]
    if len(pts) < 2:
        return ("Time to target = steps x seconds per step could not be decomposed: fewer "
                "than two batch sizes reached the target with a probed step cost.")
    a, b = pts[0], pts[-1]
    fall = a.steps_median / b.steps_median
    cost = b.step_seconds / a.step_seconds
    costs = (f"one step cost {cost:.3g}x as much (throughput probe)" if cost >= 1 else
             f"the throughput probe found one step cheaper, at {cost:.3g}x the cost")
    text = (f"Time to target = steps x seconds per step: from batch size {a.batch_size} to "
            f"{b.batch_size} the steps {fell_or_rose(fall)} while {costs}")
    drop = _cheaper_step(pts)
    if drop:
        small, big, factor = drop
        text += (f"; a step {factor:.3g}x cheaper at batch size {big} than at {small} is an "
                 "artifact of the probe, not a cost of the batch size: treat the probe as "
                 "unreliable")
    ratios = [r.ratio for r in pts if _finite(r.ratio)]
    if ratios:
        lo, hi, mid = min(ratios), max(ratios), float(np.median(ratios))
        verdict = (": a comparison that rests on that unreliable probe" if drop else
                   ": probe and replays agree" if 1 / AGREE <= mid <= AGREE else
                   f": the replays took {mid:.2f}x their probed parts")
        text += (f". Steps x step cost + calls x call cost predicts the replayed times to a "
                 f"median ratio of {mid:.2f} (measured / predicted; {lo:.2f} to {hi:.2f} over "
                 f"batch sizes){verdict}")
    chosen = next((r for r in pts if r.batch_size == pick), None)
    if chosen is not None and _finite(chosen.overhead_share) \
            and chosen.overhead_share >= OVERHEAD_DOMINATES:
        text += (f". At batch size {chosen.batch_size} the time to target "
                 f"({seconds_text(chosen.time_median)}) is only "
                 f"{chosen.time_median / chosen.call_seconds:.3g}x the fixed cost of one "
                 f"compiled call ({seconds_text(chosen.call_seconds)}): on this problem the "
                 "comparison is dominated by that overhead, so every time was measured by "
                 f"replaying the run's steps in as few calls as its program allows "
                 f"({chosen.calls} here), without the evaluations that found the crossing")
    return text + "."


def _cheaper_step(pts: Sequence[BatchRow]) -> tuple | None:
    """``(smaller batch, larger batch, factor)`` of the largest drop of the probed step cost
    from a smaller batch size to a larger one, when a step got more than
    ``PROBE_ARTIFACT``-fold cheaper (which more examples per step cannot do); else None."""
    worst, dearest = None, pts[0]
    for r in pts[1:]:
        factor = dearest.step_seconds / r.step_seconds
        if factor > PROBE_ARTIFACT and (worst is None or factor > worst[2]):
            worst = (dearest.batch_size, r.batch_size, factor)
        if r.step_seconds > dearest.step_seconds:
            dearest = r
    return worst


def noise_sentence(noise, scaling: StepsFit, pick: int) -> str:
    """The noise scales near the target, how B_simple grew, their agreement with B_crit
    (McCandlish et al. 2018), and what to conclude, in words and numbers."""
    b, low, high = noise.b_simple, noise.low, noise.high
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
    text = (f"The gradient noise scale near the target is B_simple = {b:.3g} (two-batch "
            f"estimate, {interval})")
    pts = [v for _, v in noise.trace if _finite(v)]
    if len(pts) >= 2:
        first, last = pts[0], pts[-1]
        if last > 1.2 * first or last < first / 1.2:
            how = "grew" if last > first else "fell"
            text += (f"; its smoothed trace over the run {how} from {first:.3g} to "
                     f"{last:.3g}")
        else:
            text += f"; its smoothed trace over the run stayed near {first:.3g}"
    if _finite(noise.b_noise) and noise.b_noise > 0:
        text += f"; with curvature, B_noise = tr(H Sigma)/(G^T H G) = {noise.b_noise:.3g}"
    elif noise.reason:
        text += f"; B_noise was not formed: {noise.reason}"
    bc = scaling.b_crit
    if scaling.good and _finite(bc) and bc > 0:
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
