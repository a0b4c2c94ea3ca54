"""Write a method comparison: table, per-method histories, settings and two PNG plots.

Files in the run directory:

=========================  ==================================================================
comparison.csv             one row per method: final metric, time to target, steps, examples
history_<method>.csv       each method's history (same columns as ``sgdlab train``)
trace_<method>.csv         per-step mini-batch loss of the first steps (gradient methods)
metrics.json               the table, the settings and the environment
accuracy_vs_time.png       validation metric against training seconds, every method
loss_vs_steps.png          per-step mini-batch loss against steps: batch 1 zig-zags, the full
                           batch descends smoothly
=========================  ==================================================================
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ..engine.rundir import environment, prepare_dir, write_json_atomic, write_text_atomic

FILES = ("comparison.csv", "metrics.json", "accuracy_vs_time.png", "loss_vs_steps.png")
COLUMNS = ("method", "label", "val_accuracy", "val_r2", "time_to_target", "steps", "examples",
           "train_seconds", "status")


def table_csv(rows: list[dict]) -> str:
    cols = [c for c in COLUMNS if any(c in r for r in rows)]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: repr(v) if isinstance(v, float) else v for k, v in r.items()})
    return buf.getvalue()


def write_comparison(out, comparison, data_name: str = "", plots: bool = True) -> Path:
    """Write every file of a comparison run directory atomically; return its path."""
    out = prepare_dir(out)
    write_text_atomic(out / "comparison.csv", table_csv(comparison.rows))
    for method, history in comparison.histories.items():
        write_text_atomic(out / f"history_{method}.csv", history.to_csv_text())
    for method, trace in comparison.traces.items():
        lines = ["step,train_loss"] + [f"{i + 1},{v!r}" for i, v in enumerate(trace.tolist())]
        write_text_atomic(out / f"trace_{method}.csv", "\n".join(lines) + "\n")
    write_json_atomic(out / "metrics.json", {
        "data": data_name, "settings": comparison.settings, "methods": comparison.rows,
        "environment": environment()})
    if plots:
        from .plots import plot_loss_traces, plot_metric_vs_time
        s = comparison.settings
        labels = {r["method"]: r["label"] for r in comparison.rows}
        plot_metric_vs_time(comparison.histories, labels, s["metric"],
                            out / "accuracy_vs_time.png",
                            title=f"{data_name or 'data'}: {s['model']}, "
                                  f"{s['budget_seconds']:g}s of training each",
                            target=s["target"])
        plot_loss_traces(comparison.traces, labels, out / "loss_vs_steps.png",
                         title=f"mini-batch loss per step, lr {s['lr']:g}")
    return out
