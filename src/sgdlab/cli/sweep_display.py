"""Terminal output of ``sgdlab sweep``: one progress bar over the whole sweep, a summary table."""

from __future__ import annotations

import math

from rich import box
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.table import Table

from .display import console


class SweepProgress:
    """A ``run_sweep`` callback: runs done of all runs (plus probe and noise steps), ETA."""

    def __init__(self):
        self.progress = Progress(
            TextColumn("[bold]sweep"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("ETA"),
            TimeRemainingColumn(), console=console, transient=False)
        self.task = None
        self.reused = 0

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def phase(self, name: str) -> None:
        if self.task is not None:
            self.progress.update(self.task, info=name)

    def __call__(self, event: dict) -> None:
        kind = event["event"]
        if kind == "plan":
            self.task = self.progress.add_task("sweep", total=event["runs"] + event["extra"],
                                               info="starting")
        elif self.task is None:
            return
        elif kind == "run_start":
            self.progress.update(self.task, info=f"run {event['index'] + 1}/{event['total']}: "
                                 f"B={event['batch_size']} lr={event['lr']:.3g} "
                                 f"seed {event['seed']}")
        elif kind == "run_end":
            self.reused += event["reused"]
            self.progress.advance(self.task)
        elif kind == "phase":
            self.phase(event["name"])
        elif kind == "probe":
            self.progress.advance(self.task, event.get("count", 1))


def _s(v, unit: bool = True) -> str:
    """Seconds as ``7.31ms`` / ``1.2s``; ``unit=False`` drops the unit (for ranges)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float) and math.isinf(v):
        return "never"
    text = f"{v * 1000:.3g}ms" if v < 1 else f"{v:.3g}s"
    return text if unit else text.rstrip("ms")


def _range(lo, hi) -> str:
    same_unit = (lo < 1) == (hi < 1) and math.isfinite(hi)
    return f"{_s(lo, not same_unit)}-{_s(hi)}"


def _n(v, digits: int = 3) -> str:
    """Compact numbers: ``1846``, ``0.0177``, ``1.4M``."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    if abs(v) >= 1e6:
        return f"{v / 1e6:.1f}M"
    if abs(v) >= 1e4:
        return f"{v / 1e3:.0f}k"
    if abs(v) >= 100:
        return f"{v:.0f}"
    return f"{v:.{digits}g}"


def print_sweep_summary(result, report_path=None) -> None:
    """Per-batch-size table, the recommendation and its evidence, and where the report is."""
    rec = result.recommendation
    metric = "R^2" if result.metric == "val_r2" else "accuracy"
    table = Table(title=f"sweep on {result.data}: training time to validation {metric} "
                        f"{result.target:g}", caption=f"median and range over "
                        f"{result.sweep['seeds']} seed(s); time in training seconds; "
                        "jit = compile time")
    table.box, table.pad_edge = box.SIMPLE_HEAD, False
    for col in ("batch", "lr", "time", "range", "steps", "epochs", "ex/s", "final",
                "jit"):
        table.add_column(col, justify="right", no_wrap=True)
    for g in result.per_batch:
        style = "bold yellow" if g["batch_size"] == rec.get("batch_size") else None
        table.add_row(str(g["batch_size"]), _n(g["lr"], 3), _s(g["time_median"]),
                      _range(g["time_low"], g["time_high"]), _n(g["steps_median"], 3),
                      _n(g["epochs_median"], 3), _n(g["throughput"], 2),
                      _n(g["final_median"], 3), _s(g["compile_seconds"]), style=style)
    out = Console()
    out.print(table)
    for sentence in rec.get("sentences", []):
        out.print(f"- {sentence}", highlight=False, markup=False)
    if report_path:
        out.print(f"report: {report_path}", highlight=False, markup=False)
