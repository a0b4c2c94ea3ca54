"""Terminal output: a live progress bar for training and a final summary table (rich)."""

from __future__ import annotations

import math

from rich.console import Console
from rich.progress import (BarColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)
from rich.table import Table

console = Console(stderr=True)


class TrainProgress:
    """A callback for :func:`sgdlab.engine.train` that drives a rich progress bar."""

    def __init__(self, config, data, label: str = "train"):
        self.config, self.label = config, label
        self.stats = {"val": "-", "loss": "-", "rate": "-"}
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
            console=console, transient=False)
        self.task = None
        self.where = None  # (bar position, epoch, step) after the latest chunk
        self.max_time = config.max_time

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
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
            self.stats["rate"] = f"{event['examples'] / secs:,.0f} ex/s" if secs > 0 else "-"
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

    def _show(self) -> None:
        done, epoch, step = self.where
        info = (f"epoch {epoch:.2f} step {step} loss {self.stats['loss']} "
                f"val {self.stats['val']} {self.stats['rate']}")
        self.progress.update(self.task, completed=done, info=info)


def print_summary(result, out: str | None = None) -> None:
    """A two-column table of the run's final figures."""
    s = result.summary()
    table = Table(title=f"{result.model.name} / {result.loss.name}, batch "
                        f"{result.config.batch_size}, lr {result.config.lr:g}")
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
    if searched:  # the footnote explains the starred row, so only where there is one
        table.caption = "* objective evaluations on the training set (random search)"
    console_out = Console(width=max(Console().width, 120))
    console_out.print(table)
    if out:  # below the table, not in its caption: a long path would squeeze the columns
        console_out.print(f"run directory: {out}", highlight=False, markup=False,
                          soft_wrap=True)


def print_gradcheck(report, title: str) -> None:
    """One row per parameter tensor of a :class:`~sgdlab.grad.GradCheckReport`."""
    table = Table(title=title)
    for col in ("tensor", "shape", "checked", "rel. error", "worst at", "analytic",
                "numerical", "kinks", "verdict"):
        table.add_column(col, justify="left" if col in ("tensor", "verdict") else "right",
                         no_wrap=True)
    styles = {"good": "green", "ok": "green", "near-kink": "yellow", "fail": "red",
              "wrong": "bold red"}
    for t in report.tensors:
        table.add_row(t.name, "x".join(map(str, t.shape)) or "()", str(t.checked),
                      f"{t.max_rel_error:.1e}", ",".join(map(str, t.worst_index)),
                      f"{t.analytic:.4g}", f"{t.numerical:.4g}", str(t.kinks),
                      f"[{styles[t.verdict]}]{t.verdict}[/]")
    table.caption = (f"h = {report.h:g}, tolerance {report.tolerance:g}: "
                     + ("PASSED" if report.passed else "FAILED"))
    Console(width=max(Console().width, 100)).print(table)


def print_comparison(rows: list[dict], metric: str, target: float, out: str | None) -> None:
    """The method-comparison table."""
    table = Table(title=f"same training-time budget per method; target {metric} {target:g}")
    for col in ("method", metric.replace("_", " "), "time to target (s)", "steps*",
                "examples seen", "train seconds", "status"):
        table.add_column(col, justify="left" if col in ("method", "status") else "right",
                         no_wrap=True)
    for r in rows:
        ttt = r["time_to_target"]
        table.add_row(r["label"], f"{r[metric]:.4f}", "-" if math.isnan(ttt) else f"{ttt:.3f}",
                      f"{r['steps']:,}", f"{r['examples']:,}", f"{r['train_seconds']:.2f}",
                      r["status"])
    table.caption = "* attempts (objective evaluations on the training set) for random search"
    if out:
        table.caption += f"; run directory: {out}"
    Console(width=max(Console().width, 120)).print(table)
