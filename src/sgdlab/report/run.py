"""Write a finished run to its directory: config, history, metrics, parameters, plots."""

from __future__ import annotations

from pathlib import Path

from ..engine.result import FitResult
from ..engine.model_file import save_model
from ..engine.predictor import plain_labels
from ..engine.rundir import environment, prepare_dir, write_json_atomic, write_text_atomic

FILES = ("config.json", "history.csv", "metrics.json", "params.npz", "model.json",
         "curves_epoch.png", "curves_time.png")


def write_run(out, result: FitResult, data_name: str = "", plots: bool = True) -> Path:
    """Write every file of a run directory atomically; return its path."""
    out = prepare_dir(out)
    cfg = result.config.to_dict()
    cfg["data"] = data_name
    write_json_atomic(out / "config.json", cfg)
    write_text_atomic(out / "history.csv", result.history.to_csv_text())
    metrics = result.summary()
    metrics.update(model=result.model.name, loss=result.loss.name, task=result.task,
                   classes=plain_labels(result.classes), data=data_name,
                   environment=environment())
    if result.standardizer is not None:
        metrics["standardizer"] = result.standardizer.to_dict()
    if result.target_scaler is not None:
        metrics["target_scaler"] = result.target_scaler.to_dict()
    write_json_atomic(out / "metrics.json", metrics)
    save_model(out, result)  # params.npz + model.json: what sgdlab.load reads
    if plots and len(result.history) > 1:
        from .plots import plot_curves
        title = f"{result.model.name} / {result.loss.name}, batch {result.config.batch_size}"
        plot_curves(result.history, "epoch", out / "curves_epoch.png", title)
        plot_curves(result.history, "train_seconds", out / "curves_time.png", title)
    return out
