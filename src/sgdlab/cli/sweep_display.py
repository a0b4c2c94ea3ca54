"""Terminal output of ``sgdlab sweep``: one progress bar over the whole sweep, a summary table.

The number of runs is not known in advance (the learning-rate search decides how many points
each batch size needs): ``replan`` events reset the bar's total, and the time remaining is
shown only on a wide terminal, once a total is planned. No number is printed as ``nan`` or
``inf``: a time that was never reached reads "never", all-diverged "diverged".
"""

from __future__ import annotations

import math
import time

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.table import Table

from . import display
from .display import NARROW, console, print_lines, result_console


class SweepProgress:
    """A ``run_sweep`` callback: runs and replays done of all planned (plus probe and noise
    steps).

    In a terminal a live bar; piped, a plain line at most every
    :data:`~sgdlab.cli.display.PIPED_PROGRESS_SECONDS` and one for the final state, as
    ``sgdlab train`` prints them.
    """

    def __init__(self, out: Console | None = None):
        self.out = out if out is not None else console
        self.live = self.out.is_terminal
        columns = [TextColumn("[bold]sweep"), BarColumn(bar_width=None if self.live and
                                                        self.out.width >= NARROW else 12),
                   MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                   TimeElapsedColumn()]
        if self.out.width >= NARROW:
            columns += [TextColumn("ETA"), TimeRemainingColumn()]
        self.progress = Progress(*columns, console=self.out, transient=False,
                                 disable=not self.live)
        self.task = None
        self.extra_done = 0
        self.clock0 = self.printed_at = time.perf_counter()
        self.last_line = None

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        self._print_line(final=True)
        return self.progress.__exit__(*exc)

    def phase(self, name: str) -> None:
        if self.task is not None:
            self.progress.update(self.task, info=name)
            self._print_line()

    def _print_line(self, final: bool = False) -> None:
        """Piped only: ``sweep: done/total what (elapsed)``, every so often and at the end."""
        if self.live or self.task is None:
            return
        now = time.perf_counter()
        if not final and now - self.printed_at < display.PIPED_PROGRESS_SECONDS:
            return
        task = next(t for t in self.progress.tasks if t.id == self.task)
        line = f"sweep: {task.completed:.0f}/{task.total:.0f} {task.fields.get('info', '')}"
        if final and line == self.last_line:
            return
        self.printed_at, self.last_line = now, line
        self.out.print(f"{line} ({now - self.clock0:.1f} s)", highlight=False, markup=False,
                       soft_wrap=True)

    def _total(self, event: dict) -> None:
        """``plan`` and ``replan``: ``runs`` expected runs (done ones included) plus ``extra``
        probe, replay and noise steps still to come (those already done are counted here)."""
        total = event.get("runs", 0) + event.get("extra", 0) + self.extra_done
        if self.task is None:
            self.task = self.progress.add_task("sweep", total=total, info="starting")
        else:
            done = next(t for t in self.progress.tasks if t.id == self.task).completed
            self.progress.update(self.task, total=max(total, done))

    def __call__(self, event: dict) -> None:
        kind = event["event"]
        if kind in ("plan", "replan"):
            self._total(event)
        elif self.task is None:
            return
        elif kind == "run_start":
            phase = f" ({event['phase']})" if event.get("phase") else ""
            self.progress.update(self.task, info=f"B={event['batch_size']} lr "
                                 f"{event['lr']:.3g} seed {event['seed']}{phase}")
        elif kind == "run_end":
            self.progress.advance(self.task)
        elif kind == "phase":
            self.phase(event["name"])
        elif kind in ("probe", "replay"):
            count = event.get("count", 1)
            self.extra_done += count
            self.progress.advance(self.task, count)
        self._print_line()


def _finite(v) -> bool:
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def _s(v, unit: bool = True) -> str:
    """Seconds as ``7.31ms`` / ``1.2s``; ``unit=False`` drops the unit (for ranges)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float) and math.isinf(v):
        return "never"
    text = f"{v * 1000:.3g}ms" if v < 1 else f"{v:.3g}s"
    return text if unit else text.rstrip("ms")


def _range(lo, hi) -> str:
    if not _finite(lo):
        return "-"
    same_unit = _finite(hi) and (lo < 1) == (hi < 1)
    return f"{_s(lo, not same_unit)}-{_s(hi)}"


def _n(v, digits: int = 3) -> str:
    """Compact numbers: ``1846``, ``0.0177``, ``1.4M``."""
    if not _finite(v):
        return "-"
    v = float(v)
    if abs(v) >= 1e6:
        return f"{v / 1e6:.1f}M"
    if abs(v) >= 1e4:
        return f"{v / 1e3:.0f}k"
    if abs(v) >= 100:
        return f"{v:.0f}"
    return f"{v:.{digits}g}"


def _steps(v) -> str:
    """A step count as a whole number (``never`` when not reached)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float) and math.isinf(v):
        return "never"
    return str(math.ceil(float(v) - 1e-9))


def outcome(row) -> str:
    """Seeds' outcome, short: ``3/3``, ``2/3 1 div``, ``div 3/3``."""
    n, r, d = row.seeds, row.reached, row.diverged
    if n and d >= n:
        return f"div {d}/{n}"
    return f"{r}/{n}" + (f" {d} div" if d else "")


def _time(row) -> str:
    if row.seeds and row.diverged >= row.seeds:
        return "diverged"
    if not math.isfinite(row.steps_median):
        return "stopped" if row.cap_reason == "behind" else "never"
    return _s(row.time_median)


def summary_console() -> Console:
    """Standard output; when it is not a terminal, wide enough that no number is cut."""
    return result_console(160)


def tried_lines(result) -> list[str]:
    """One line per batch size listing every learning rate its search (or grid) tried, in
    increasing order, as ``lr:steps`` with the kept one in brackets; empty when each batch
    size tried a single learning rate (the scaling rule alone)."""
    by_b: dict = {}
    for p in result.points:
        by_b.setdefault(p.batch_size, []).append(p)
    if all(len(points) < 2 for points in by_b.values()):
        return []
    width = max(len(str(b)) for b in by_b)
    lines = []
    for b in sorted(by_b):
        cells = []
        for p in sorted(by_b[b], key=lambda p: p.lr):
            if p.seeds and p.diverged >= p.seeds:
                what = "div"
            else:
                what = _steps(p.steps_median) if _finite(p.steps_median) else "miss"
            cell = f"{_n(p.lr, 3)}:{what}"
            cells.append(f"[{cell}]" if p.chosen else cell)
        lines.append(f"  B={b:<{width}}  " + "  ".join(cells))
    return lines


def cost_line(result, report_seconds: float | None = None) -> str:
    """Where the sweep's wall time went, in one line."""
    c = result.cost
    if c is None:
        return ""
    phases = ", ".join(f"{name} {_s(sec)}" for name, sec in c.phases.items() if sec >= 0.005)
    report = f"; plots and report {_s(report_seconds)}" if report_seconds else ""
    w = result.warmup
    warmup = "" if w is None else (
        f"; the batch-size warmup took {_s(w.wall_seconds)} wall beside the fixed-batch "
        f"sweep's {_s(w.sweep_seconds)}, compiling {w.compilations.get('branches', 0)} "
        f"training programs for its branches and {w.compilations.get('schedule', 0)} for its "
        "schedule's runs")
    return (f"cost: {_s(c.wall_seconds)} wall for {c.runs} runs ({c.reused} reused) and "
            f"{c.replays} timed replays: training {_s(c.train_seconds)}, replays "
            f"{_s(c.replay_seconds)}, evaluation {_s(c.eval_seconds)}, compilation "
            f"{_s(c.compile_seconds)} ({phases}){report}{warmup}")


def print_sweep_summary(result, report_path=None, console: Console | None = None,
                        report_seconds: float | None = None) -> None:
    """Per-batch-size table, the verdict (headline first), the learning rates tried, the
    next command, the cost and where the report is. ``console`` defaults to
    :func:`summary_console`."""
    rec = result.recommendation
    tied = set(rec.tied)
    metric = "R^2" if result.metric == "val_r2" else "accuracy"
    target = f"{result.target:g}" if _finite(result.target) else "(none)"
    out = console or summary_console()
    # A narrow terminal keeps what the verdict rests on; the report has every column.
    narrow = out.width < NARROW
    caption = (f"median{'' if narrow else ' and range'} over the seeds at each batch size's "
               "kept lr; time = training seconds of the replayed steps"
               + ("" if narrow else
                  "; tried = learning rates searched; s/step from the throughput probe; "
                  "predicted = steps x s/step + calls x s/call; 'stopped' = more than 3x "
                  "slower than the best, so not run to the end"))
    if len(tied) > 1:
        caption += "; ≈ = tied with the pick"
    table = Table(title=escape(f"sweep on {result.data}: training time to validation {metric} "
                               f"{target}"), caption=caption)
    table.box, table.pad_edge = box.SIMPLE_HEAD, False
    columns = ("batch", "lr", "outcome", "time", "steps", "final") if narrow else (
        "batch", "lr", "tried", "outcome", "time", "range", "steps", "s/step", "predicted",
        "final")
    for col in columns:
        table.add_column(col, justify="right", no_wrap=True)
    for g in result.batches:
        b = g.batch_size
        best = b == rec.batch_size
        cells = {"batch": f"{b} ≈" if b in tied and not best else str(b),
                 "lr": _n(g.lr, 3), "tried": str(g.points), "outcome": outcome(g),
                 "time": _time(g),
                 "range": _range(g.time_low, g.time_high) if g.timed else "-",
                 "steps": _steps(g.steps_median), "s/step": _s(g.step_seconds),
                 "predicted": _s(g.predicted_seconds), "final": _n(g.final_median, 3)}
        table.add_row(*(cells[c] for c in columns), style="bold yellow" if best else None)
    out.print(table)
    sentences = list(rec.sentences)
    if sentences:
        out.print(sentences[0], style="bold", highlight=False, markup=False,
                  soft_wrap=not out.is_terminal)
    print_lines([f"- {s}" for s in sentences[1:]], out)
    tried = tried_lines(result)
    if tried:
        out.print("learning rates tried per batch size (lr:median steps to target, ranked by "
                  "steps within a batch size; [kept]; 'div' every seed diverged, 'miss' the "
                  "median seed missed or was stopped):", highlight=False, markup=False,
                  soft_wrap=not out.is_terminal)
        print_lines(tried, out)
    line = cost_line(result, report_seconds)
    if line:
        print_lines([line], out)
    if result.command:
        print_lines([f"next: {result.command}"], out)
    if report_path:
        print_lines([f"report: {report_path}"], out)
