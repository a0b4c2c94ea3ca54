"""Terminal output: a live progress bar for training and a final summary table (rich)."""

from __future__ import annotations

import math

import time

from rich import box
from rich.console import Console
from rich.progress import (BarColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)
from rich.table import Table

from ..optim import describe_rate

console = Console(stderr=True)

#: Below this many columns a terminal gets the compact layouts (no vertical rules, a short
#: progress bar, no time-remaining column), so an 80-column terminal never wraps a line.
NARROW = 100
#: Piped progress (a log file, CI) prints a plain line at most this often, and at the end.
PIPED_PROGRESS_SECONDS = 10.0


def result_console(piped_width: int = 120) -> Console:
    """Standard output for results. In a terminal, its own width (tables fit themselves to
    it); piped, ``piped_width`` columns, so no number or path is cut in a log."""
    out = Console()
    return out if out.is_terminal else Console(width=max(out.width, piped_width))


def print_lines(lines, out: Console | None = None) -> None:
    """Sentences on standard output: wrapped between words in a terminal, whole when piped
    (a log keeps one line per sentence)."""
    out = out or result_console()
    for line in lines:
        out.print(line, highlight=False, markup=False, soft_wrap=not out.is_terminal)


def compact(x: float) -> str:
    """``x`` in at most four characters plus a suffix: ``950``, ``9,500``, ``138k``, ``2.4M``."""
    if x < 1e4:
        return f"{x:,.0f}"
    if x < 1e6:
        return f"{x / 1e3:.0f}k"
    return f"{x / 1e6:.1f}M" if x < 1e8 else f"{x / 1e6:.0f}M"


def fitted_table(out: Console, **kwargs) -> Table:
    """A :class:`rich.table.Table` whose borders suit ``out``: heavy outlines where there is
    room, only a rule under the header in a narrow terminal."""
    if out.width < NARROW:
        kwargs.setdefault("box", box.SIMPLE_HEAD)
    return Table(**kwargs)


class TrainProgress:
    """A callback for :func:`sgdlab.engine.train` that shows progress on standard error.

    In a terminal, a live rich bar (compact below :data:`NARROW` columns). Piped, a plain
    line at most every :data:`PIPED_PROGRESS_SECONDS` and one for the final state, so a log
    holds whole numbers instead of a bar cut to 80 columns.
    """

    def __init__(self, config, data, label: str = "train", out: Console | None = None):
        self.config, self.label = config, label
        self.out = out if out is not None else console
        self.stats = {"val": "-", "loss": "-", "rate": "-"}
        self.live = self.out.is_terminal
        narrow = self.out.width < NARROW
        columns = [TextColumn("[bold]{task.description}"),
                   BarColumn(bar_width=10 if narrow else 40),
                   TextColumn("{task.fields[info]}"), TimeElapsedColumn()]
        if not narrow:
            columns.append(TimeRemainingColumn())
        self.progress = Progress(*columns, console=self.out, transient=False,
                                 disable=not self.live)
        self.task = None
        self.where = None  # (bar position, epoch, step) after the latest chunk
        self.max_time = config.max_time
        self.clock0 = self.printed_at = time.perf_counter()
        self.last_line = None

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        if not self.live and self.where is not None:
            self._print_line(final=True)
        return self.progress.__exit__(*exc)

    def __call__(self, event: dict) -> None:
        kind = event["event"]
        if kind == "start":
            total = event["total_steps"]
            self.by_time = total is None
            self.task = self.progress.add_task(
                self.label, total=total if total else (self.max_time or None), info="compiling")
            self.spe = event["steps_per_epoch"]
        elif kind == "chunk" and self.task is not None:
            secs = event["train_seconds"]
            self.stats["loss"] = f"{event['loss']:.4g}"
            self.stats["rate"] = f"{compact(event['examples'] / secs)} ex/s" if secs > 0 \
                else "-"
            self.where = (secs if self.by_time else event["step"], event["epoch"], event["step"])
            self._show()
        elif kind == "row":
            row = event["row"]
            for key in ("val_accuracy", "val_r2"):
                if key in row and not math.isnan(row[key]):
                    self.stats["val"] = f"{row[key]:.4f}"
            # A row follows its chunk: redraw, so the last frame shows the final evaluation.
            if self.task is not None and self.where is not None:
                self._show()

    def info(self) -> str:
        _, epoch, step = self.where
        return (f"epoch {epoch:.2f} step {step} loss {self.stats['loss']} "
                f"val {self.stats['val']} {self.stats['rate']}")

    def _show(self) -> None:
        if not self.live:
            if time.perf_counter() - self.printed_at >= PIPED_PROGRESS_SECONDS:
                self._print_line()
            return
        self.progress.update(self.task, completed=self.where[0], info=self.info())

    def _print_line(self, final: bool = False) -> None:
        line = f"{self.label}: {self.info()}"
        if final and line == self.last_line:
            return
        self.printed_at = time.perf_counter()
        self.last_line = line
        elapsed = self.printed_at - self.clock0
        self.out.print(f"{line} ({elapsed:.1f} s)", highlight=False, markup=False,
                       soft_wrap=True)


def print_summary(result, out: str | None = None, console_out: Console | None = None) -> None:
    """A two-column table of the run's final figures, then its notes and the run directory
    (on ``console_out``, by default :func:`result_console`)."""
    s = result.summary()
    console_out = console_out or result_console()
    table = fitted_table(console_out, title=f"{result.model.name} / {result.loss.name}, "
                         f"batch {result.config.batch_size}, lr {describe_rate(result.config.lr)}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    searched = str(result.extra.get("method", "")).startswith("random-search")
    rows = [("status", s["status"]), ("attempts*" if searched else "steps", s["steps"]),
            ("epochs", f"{s['epochs']:.2f}"),
            ("examples seen", f"{s['examples']:,}"),
            ("train loss", s.get("train_loss")), ("validation loss", s.get("val_loss")),
            ("validation accuracy", s.get("val_accuracy")), ("validation R^2", s.get("val_r2")),
            ("test accuracy", s.get("test_accuracy")), ("test R^2", s.get("test_r2")),
            ("training seconds", s["train_seconds"]), ("evaluation seconds", s["eval_seconds"]),
            ("compile seconds", s["compile_seconds"]),
            ("examples / second", s["examples_per_second"])]
    for name, value in rows:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        table.add_row(name, value if isinstance(value, str) else f"{value:,.4g}")
    notes = []
    if searched:  # the footnote explains the starred row, so only where there is one
        notes.append("* objective evaluations on the training set (random search)")
    if result.target_scaler is not None:
        ts = result.target_scaler
        notes.append(f"losses in standardised target units (mean {ts.mean:.4g}, sd "
                     f"{ts.scale:.4g}); predictions in the original units")
    if out:
        notes.append(f"run directory: {out}")
    console_out.print(table)
    for line in notes:  # below the table, not in its caption: long lines would squeeze it
        console_out.print(line, highlight=False, markup=False, soft_wrap=True)


def print_gradcheck(report, title: str) -> None:
    """One row per parameter tensor of a :class:`~sgdlab.grad.GradCheckReport`."""
    out = result_console()
    table = fitted_table(out, title=title)
    # the tensor names keep their width (up to 48 columns; longer ones fold onto a second
    # line): squeezed, 'layers/0/W' and 'layers/1/W' both read 'layers/…'
    name_width = min(max((len(t.name) for t in report.tensors), default=6), 48)
    # "error": the relative error beyond the difference quotient's own round-off and
    # truncation, what the verdict reads (sgdlab.grad.check); gradcheck --help says so
    for col in ("tensor", "shape", "checked", "error", "worst at", "analytic",
                "numerical", "kinks", "verdict"):
        # headers may wrap in a narrow terminal; the figures never do
        table.add_column(col, justify="left" if col in ("tensor", "verdict") else "right",
                         no_wrap=col not in ("tensor", "worst at"),
                         min_width=name_width if col == "tensor" else None,
                         overflow="fold" if col == "tensor" else "ellipsis")
    styles = {"good": "green", "ok": "green", "near-kink": "yellow", "fail": "red",
              "wrong": "bold red"}
    for t in report.tensors:
        table.add_row(t.name, "x".join(map(str, t.shape)) or "()", str(t.checked),
                      f"{t.max_rel_error:.1e}", ",".join(map(str, t.worst_index)),
                      f"{t.analytic:.4g}", f"{t.numerical:.4g}", str(t.kinks),
                      f"[{styles[t.verdict]}]{t.verdict}[/]")
    table.caption = (f"h = {report.h:g}, tolerance {report.tolerance:g}: "
                     + ("PASSED" if report.passed else "FAILED"))
    out.print(table)


def print_comparison(rows: list[dict], metric: str, target: float, out: str | None) -> None:
    """The method-comparison table. A narrow terminal drops the training-seconds column
    (every method had the same budget, and the notes say its range) and wraps headers."""
    out_console = result_console(140)
    narrow = out_console.width < NARROW
    table = fitted_table(out_console, title=f"same training-time budget per method; target "
                         f"{metric} {target:g}")
    columns = ["method", metric.replace("_", " "), "time to target (s)", "steps*",
               "examples seen", "train seconds", "status"]
    if narrow:
        columns.remove("train seconds")
    for col in columns:
        table.add_column(col.replace(" ", "\n") if narrow else col,
                         justify="left" if col == "method" else "right",
                         no_wrap=col != "method", min_width=16 if col == "method" else None)
    for r in rows:
        ttt = r["time_to_target"]
        cells = [r["label"], f"{r[metric]:.4f}", "-" if math.isnan(ttt) else f"{ttt:.3f}",
                 f"{r['steps']:,}", f"{r['examples']:,}", f"{r['train_seconds']:.2f}",
                 r["status"]]
        if narrow:
            del cells[5]
        table.add_row(*cells)
    out_console.print(table)
    notes = ["* attempts (objective evaluations on the training set) for random search"]
    if narrow and rows:
        secs = [r["train_seconds"] for r in rows]
        notes.append(f"training seconds per method: {min(secs):.2f} to {max(secs):.2f}")
    if out:
        notes.append(f"run directory: {out}")
    for line in notes:  # below the table: a caption would squeeze it to the table's width
        out_console.print(line, highlight=False, markup=False, soft_wrap=True)
