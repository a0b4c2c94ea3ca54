"""What to run next: the ``sgdlab train`` command of a recommendation.

A sweep ends with an action, not only a table: the exact command that trains the recommended
batch size and learning rate with every other setting the sweep used.
"""

from __future__ import annotations

import shlex

from ..engine.config import TrainConfig


#: Command-line flags of the settings a next ``sgdlab train`` must repeat (field: flag).
TRAIN_FLAGS = {"model": "--model", "loss": "--loss", "hidden": "--hidden",
               "activation": "--activation", "channels": "--channels",
               "kernel": "--kernel", "l2": "--l2", "optimizer": "--optimizer",
               "momentum": "--momentum", "schedule": "--schedule", "sampling": "--sampling",
               "gradient": "--gradient", "validation_fraction": "--validation-fraction",
               "test_fraction": "--test-fraction", "seed": "--seed"}


def train_command(base: TrainConfig, rec: dict, data_arg: str,
                  extra: tuple = ()) -> str | None:
    """The ``sgdlab train`` command that trains the recommendation with the sweep's other
    settings (those that differ from the defaults), or None without a recommendation."""
    if rec.get("batch_size") is None:
        return None
    default = TrainConfig()
    parts = ["sgdlab", "train", "--data", str(data_arg), *extra]
    for name, flag in TRAIN_FLAGS.items():
        v = getattr(base, name)
        if v != getattr(default, name) and isinstance(v, (str, int, float, tuple)):
            if name == "momentum" and base.optimizer not in ("momentum", "nesterov"):
                continue
            parts += [flag, ",".join(str(h) for h in v) if isinstance(v, tuple) else str(v)]
    if not base.standardize:
        parts.append("--no-standardize")
    if base.drop_last:
        parts.append("--drop-last")
    parts += ["--batch-size", str(rec["batch_size"]), "--lr", f"{rec['lr']:.4g}"]
    return " ".join(shlex.quote(p) for p in parts)
