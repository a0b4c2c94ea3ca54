"""Terminal output of ``sgdlab sweep``: one progress bar over the whole sweep, a summary table.

The number of runs is not known in advance (the learning-rate search decides how many points
each batch size needs): ``replan`` events reset the bar's total. No number is printed as
``nan`` or ``inf``: a time that was never reached reads "never", all-diverged "diverged".
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

from ..report.html import tie_sentence  # plain text (no plotting imported)
from . import display
from .display import NARROW, console, result_console


class SweepProgress:
    """A ``run_sweep`` callback: runs done of all runs (plus probe and noise steps), ETA.

    In a terminal a live bar; piped, a plain line at most every
    :data:`~sgdlab.cli.display.PIPED_PROGRESS_SECONDS` and one for the final state, as
    ``sgdlab train`` prints them.
    """

    def __init__(self):
        self.live = console.is_terminal
        self.progress = Progress(
            TextColumn("[bold]sweep"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("ETA"),
            TimeRemainingColumn(), console=console, transient=False, disable=not self.live)
        self.task = None
        self.reused = 0
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
        console.print(f"{line} ({now - self.clock0:.1f} s)", highlight=False, markup=False,
                      soft_wrap=True)

    def _total(self, event: dict) -> None:
        """``plan`` and ``replan``: ``runs`` expected runs (done ones included) plus ``extra``
        probe and noise steps still to come (those already done are counted here)."""
        total = event.get("runs", 0) + event.get("extra", 0) + self.extra_done
        if self.task is None:
            self.task = self.progress.add_task("sweep", total=total, info="starting")
        else:
            self.progress.update(self.task, total=total)

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
            self.reused += int(event.get("reused", 0))
            self.progress.advance(self.task)
        elif kind == "phase":
            self.phase(event["name"])
        elif kind == "probe":
            self.extra_done += event.get("count", 1)
            self.progress.advance(self.task, event.get("count", 1))
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


def _all_diverged(g: dict) -> bool:
    return bool(g.get("seeds")) and g.get("diverged", 0) >= g["seeds"]


def outcome(g: dict) -> str:
    """Seeds' outcome, short: ``3/3``, ``2/3 1 div``, ``div 3/3``."""
    n, r, d = g.get("seeds"), g.get("reached"), g.get("diverged", 0)
    if n is None or r is None:
        return str(g.get("status_text", "-"))
    if _all_diverged(g):
        return f"div {d}/{n}"
    return f"{r}/{n}" + (f" {d} div" if d else "")


def _time(g: dict) -> str:
    if _all_diverged(g):
        return "diverged"
    return _s(g.get("time_median"))


def summary_console() -> Console:
    """Standard output; when it is not a terminal, wide enough that no number is cut."""
    return result_console(160)


def tried_lines(result) -> list[str]:
    """One line per batch size listing every learning rate its search (or grid) tried, in
    increasing order, as ``lr:steps`` with the kept one in brackets; empty when each batch
    size tried a single learning rate (the scaling rule alone)."""
    by_b: dict = {}
    for g in getattr(result, "groups", None) or []:
        by_b.setdefault(g["batch_size"], []).append(g)
    if all(len(points) < 2 for points in by_b.values()):
        return []
    width = max(len(str(b)) for b in by_b)
    lines = []
    for b in sorted(by_b):
        cells = []
        for g in sorted(by_b[b], key=lambda g: g["lr"]):
            if g.get("diverged") and g["diverged"] >= g.get("seeds", 1):
                what = "div"
            else:
                what = _steps(g.get("steps_median")) if _finite(g.get("steps_median")) \
                    else "miss"
            cell = f"{_n(g['lr'], 3)}:{what}"
            cells.append(f"[{cell}]" if g.get("chosen") else cell)
        lines.append(f"  B={b:<{width}}  " + "  ".join(cells))
    return lines


def print_sweep_summary(result, report_path=None, console: Console | None = None) -> None:
    """Per-batch-size table, the recommendation and its evidence, the next command, and where
    the report is. ``console`` defaults to :func:`summary_console`."""
    rec = result.recommendation or {}
    tied = set(rec.get("tied") or [])
    metric = "R^2" if result.metric == "val_r2" else "accuracy"
    target = f"{result.target:g}" if _finite(result.target) else "(none)"
    out = console or summary_console()
    # A narrow terminal keeps what the verdict rests on; the report has every column.
    narrow = out.width < NARROW
    caption = (f"median{'' if narrow else ' and range'} over {result.sweep.get('seeds')} "
               "seed(s) at each batch size's chosen lr; time in training seconds"
               + ("" if narrow else
                  "; tried = learning rates searched; s/step from the throughput probe; "
                  "predicted = steps x s/step + calls x s/call (one compiled call per "
                  "evaluation)"))
    if len(tied) > 1:
        caption += "; ≈ = within the measurement noise of the recommendation"
    table = Table(title=escape(f"sweep on {result.data}: training time to validation {metric} "
                               f"{target}"), caption=caption)
    table.box, table.pad_edge = box.SIMPLE_HEAD, False
    columns = ("batch", "lr", "outcome", "time", "steps", "final") if narrow else (
        "batch", "lr", "tried", "outcome", "time", "range", "steps", "s/step", "predicted",
        "final")
    for col in columns:
        table.add_column(col, justify="right", no_wrap=True)
    for g in result.per_batch:
        b = g["batch_size"]
        best = b == rec.get("batch_size")
        cells = {"batch": f"{b} ≈" if b in tied and not best else str(b),
                 "lr": _n(g.get("lr"), 3),
                 "tried": "-" if g.get("points") is None else str(g["points"]),
                 "outcome": outcome(g), "time": _time(g),
                 "range": _range(g.get("time_low"), g.get("time_high")) if _finite(
                     g.get("time_median")) else "-",
                 "steps": _steps(g.get("steps_median")), "s/step": _s(g.get("probe_step_seconds")),
                 "predicted": _s(g.get("predicted_seconds")),
                 "final": _n(g.get("final_median"), 3)}
        table.add_row(*(cells[c] for c in columns), style="bold yellow" if best else None)
    out.print(table)
    tried = tried_lines(result)
    if tried:
        out.print("learning rates tried per batch size (lr: median steps to target; [kept]; "
                  "'div' every seed diverged, 'miss' the median seed missed):",
                  highlight=False, markup=False)
        for line in tried:
            out.print(line, highlight=False, markup=False, soft_wrap=True)
    sentences = list(rec.get("sentences", []))
    tie = tie_sentence(rec)
    if tie and not any("measurement noise" in s.lower() for s in sentences):
        sentences.append(tie)
    for sentence in sentences:
        out.print(f"- {sentence}", highlight=False, markup=False)
    if rec.get("command"):
        out.print(f"next: {rec['command']}", highlight=False, markup=False, soft_wrap=True)
    if report_path:
        out.print(f"report: {report_path}", highlight=False, markup=False, soft_wrap=True)
