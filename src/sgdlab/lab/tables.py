"""The sweep's tables as typed rows: every run, every learning-rate point, every batch size.

Pure functions from the searches' outcomes, the run records, the replay times and the probe
to frozen rows; nothing here trains or times anything. The rows cross to the report and the
command line as they are (attributes, never string keys), and ``to_dict`` gives the files.

* :class:`RunRow`: one evaluated run (``runs.csv``);
* :class:`PointRow`: one (batch size, learning rate) point over its seeds (``points.csv``);
* :class:`BatchRow`: one batch size at its kept learning rate, with its measured time to the
  target (median and range over seeds, from :mod:`.timing`) and the decomposition time =
  steps x seconds per step + calls x seconds per call (``summary.csv``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from .caps import StepCost
from .lr_search import at_edge
from .measure import crossing, final_metric, median, steps_to_target, whole_median
from .records import RunRecord
from .timing import ReplayTimes


def status_text(reached: int, diverged: int, seeds: int) -> str:
    """``"3 of 3 reached"``, ``"2 of 3 reached, 1 diverged"``, ``"all 3 diverged"``."""
    if seeds and diverged == seeds:
        return f"all {seeds} diverged"
    text = f"{reached} of {seeds} reached"
    return text + (f", {diverged} diverged" if diverged else "")


class Row:
    """``to_dict()`` for the files: every field, tuples as lists."""

    def to_dict(self) -> dict:
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
                for f in dataclasses.fields(self)}

    @classmethod
    def columns(cls) -> tuple:
        return tuple(f.name for f in dataclasses.fields(cls))


@dataclass(frozen=True)
class RunRow(Row):
    """One evaluated run: its outcome at the target and its own clocks. ``time_to_target``
    is the replay's median (NaN when the run was not replayed)."""

    key: str
    phase: str
    batch_size: int
    lr: float
    lr_multiplier: float
    seed: int
    status: str
    reached: bool
    steps_to_target: float
    epochs_to_target: float
    examples_to_target: float
    time_to_target: float
    final: float
    steps: int
    cap: int | None
    cap_reason: str
    train_seconds: float
    eval_seconds: float
    compile_seconds: float


@dataclass(frozen=True)
class PointRow(Row):
    """One learning rate of one batch size over its seeds; ``order`` is its position in the
    order the search tried them, ``predicted_seconds`` its median steps at the probe's cost of
    a step (NaN without a probe)."""

    batch_size: int
    lr: float
    lr_multiplier: float
    x: float | None
    order: int
    seeds: int
    reached: int
    diverged: int
    steps_median: float
    seed_steps: tuple
    final_median: float
    cap: int | None
    cap_reason: str
    chosen: bool
    predicted_seconds: float

    @property
    def status_text(self) -> str:
        return status_text(self.reached, self.diverged, self.seeds)


@dataclass(frozen=True)
class BatchRow(Row):
    """One batch size at the learning rate its search kept.

    Steps, epochs and examples to the target are medians over seeds (whole steps); the
    times come from the replays: ``seed_times`` per seed (``inf`` for a seed that missed),
    their median and range. ``step_seconds`` and ``call_seconds`` are the probe's; a replay
    makes ``calls`` compiled calls, so ``predicted_seconds = steps x step_seconds + calls x
    call_seconds``, beside the measured median. ``steps_best`` is the fewest median steps
    over every point tried (what Shallue et al. plot), ``search_end`` why the search stopped
    (``resolution``, ``behind``: too slow to win, ``points``, ``fixed``, ``range``).
    """

    batch_size: int
    lr: float
    lr_multiplier: float
    points: int
    seeds: int
    reached: int
    diverged: int
    steps_median: float
    steps_best: float
    steps_best_lr: float
    epochs_median: float
    examples_median: float
    final_median: float
    seed_times: tuple
    time_median: float
    time_low: float
    time_high: float
    calls: int | None
    step_seconds: float
    call_seconds: float
    predicted_seconds: float
    at_edge: str | None
    search_end: str
    cap: int | None
    cap_reason: str
    compile_seconds: float

    @property
    def status_text(self) -> str:
        return status_text(self.reached, self.diverged, self.seeds)

    @property
    def timed(self) -> bool:
        return math.isfinite(self.time_median)

    @property
    def every_seed_reached(self) -> bool:
        return self.seeds > 0 and self.reached == self.seeds

    @property
    def ratio(self) -> float:
        """Measured over predicted time (NaN where either is missing)."""
        if math.isfinite(self.time_median) and self.predicted_seconds > 0:
            return self.time_median / self.predicted_seconds
        return math.nan

    @property
    def overhead_share(self) -> float:
        """The share of the predicted time that is the calls' fixed cost (NaN: unknown)."""
        if self.calls and self.predicted_seconds > 0 and math.isfinite(self.call_seconds):
            return self.calls * self.call_seconds / self.predicted_seconds
        return math.nan


def run_rows(records: list[RunRecord], target: float, metric: str,
             times: dict | None = None) -> list[RunRow]:
    """One :class:`RunRow` per record; ``times`` maps ``(B, lr, seed)`` to a replay time."""
    rows = []
    for r in records:
        c = crossing(r.history, target, metric)
        s = r.summary
        rows.append(RunRow(
            key=r.key, phase=r.phase, batch_size=r.batch_size, lr=r.lr,
            lr_multiplier=r.lr_multiplier, seed=r.seed, status=r.status,
            reached=bool(c["reached"]), steps_to_target=steps_to_target(r.history, target,
                                                                        metric),
            epochs_to_target=c["epoch"], examples_to_target=c["examples"],
            time_to_target=(times or {}).get((r.batch_size, r.lr, r.seed), math.nan),
            final=final_metric(r.history, metric), steps=int(s.get("steps") or 0),
            cap=r.cap, cap_reason=r.cap_reason,
            train_seconds=_num(s.get("train_seconds")),
            eval_seconds=_num(s.get("eval_seconds")),
            compile_seconds=_num(s.get("compile_seconds"))))
    return rows


def point_rows(searches: dict, costs: dict, run_of: dict) -> list[PointRow]:
    """Every point of every search, by batch size then learning rate; ``run_of`` maps
    ``(B, x)`` to the :class:`RunRow` list of that point (for multipliers and caps)."""
    rows = []
    for b in sorted(searches):
        s = searches[b]
        best = s.kept() if s.tried else None
        for order, (x, o) in enumerate(s.tried.items()):
            runs = run_of.get((b, x), [])
            cost: StepCost | None = costs.get(b)
            rows.append(PointRow(
                batch_size=b, lr=o.lr, lr_multiplier=runs[0].lr_multiplier if runs else 1.0,
                x=x, order=order, seeds=o.seeds, reached=o.reached, diverged=o.diverged,
                steps_median=o.steps_median, seed_steps=tuple(o.steps),
                final_median=o.final_median, cap=o.cap,
                cap_reason=runs[0].cap_reason if runs else "", chosen=x == best,
                predicted_seconds=cost.seconds(o.steps_median) if cost else math.nan))
    return sorted(rows, key=lambda p: (p.batch_size, p.lr))


def batch_rows(points: list[PointRow], runs: list[RunRow], timed: ReplayTimes | None,
               costs: dict, searches: dict, extra_runs: list[RunRow] = ()) -> list[BatchRow]:
    """One :class:`BatchRow` per batch size from its chosen point, its runs (the search's
    and any ``extra_runs`` at that point) and the replay times."""
    seconds = {}
    calls = {}
    if timed is not None:
        for i, r in enumerate(timed.replays):
            seconds[(r.batch_size, r.seed)] = timed.time(i)
            calls[(r.batch_size, r.seed)] = timed.calls[i]
    rows = []
    for b in sorted({p.batch_size for p in points}):
        mine = [p for p in points if p.batch_size == b]
        chosen = next(p for p in mine if p.chosen)
        at = [r for r in [*runs, *extra_runs]
              if r.batch_size == b and r.lr == chosen.lr]
        steps = [r.steps_to_target for r in at]
        times = tuple(seconds.get((b, r.seed), math.inf) if r.reached else math.inf
                      for r in at)
        reached = [t for t in times if math.isfinite(t)]
        t_med = median(times) if times and any(math.isfinite(t) for t in times) else math.inf
        if not seconds:
            t_med = math.nan
        cost: StepCost | None = costs.get(b)
        med_steps = whole_median(steps)
        n_calls = [calls[(b, r.seed)] for r in at if (b, r.seed) in calls]
        call_count = int(median(n_calls)) if n_calls else None
        fewest = min(mine, key=lambda p: (p.steps_median, p.lr))
        rows.append(BatchRow(
            batch_size=b, lr=chosen.lr, lr_multiplier=chosen.lr_multiplier,
            points=len(mine), seeds=len(at), reached=sum(r.reached for r in at),
            diverged=sum(r.status == "diverged" for r in at), steps_median=med_steps,
            steps_best=fewest.steps_median, steps_best_lr=fewest.lr,
            epochs_median=median([r.epochs_to_target for r in at]),
            examples_median=median([r.examples_to_target for r in at]),
            final_median=median([r.final for r in at if math.isfinite(r.final)])
            if any(math.isfinite(r.final) for r in at) else math.nan,
            seed_times=times, time_median=t_med,
            time_low=min(reached) if reached else math.inf,
            time_high=max(times) if reached else math.inf,
            calls=call_count,
            step_seconds=cost.step_seconds if cost else math.nan,
            call_seconds=cost.call_seconds if cost else math.nan,
            predicted_seconds=cost.seconds(med_steps) if cost and call_count is None
            else (med_steps * cost.step_seconds + call_count * cost.call_seconds
                  if cost and math.isfinite(med_steps) else math.nan),
            at_edge=at_edge([p.lr for p in mine], chosen.lr),
            search_end=getattr(searches.get(b), "stopped", ""), cap=chosen.cap,
            cap_reason=chosen.cap_reason,
            compile_seconds=max((r.compile_seconds for r in at
                                 if math.isfinite(r.compile_seconds)), default=math.nan)))
    return rows


def _num(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def csv_text(rows: list, columns: tuple) -> str:
    """A CSV table of ``rows`` (typed rows); a missing or non-finite figure is an empty
    cell."""
    lines = [",".join(columns)]
    for row in rows:
        d = row.to_dict()
        cells = []
        for c in columns:
            v = d.get(c)
            if v is None or (isinstance(v, float) and not math.isfinite(v)):
                cells.append("")
            elif isinstance(v, float):
                cells.append(repr(v))
            elif isinstance(v, list):
                cells.append(" ".join("" if isinstance(e, float) and not math.isfinite(e)
                                      else repr(e) for e in v))
            else:
                cells.append(str(v))
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"
