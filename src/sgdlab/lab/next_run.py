"""What to run next: the ``sgdlab train`` command of a recommendation, and its confirmation.

A sweep ends with an action, not only a table: the exact command that trains the recommended
batch size and learning rate with every other setting the sweep used, and one sentence on the
confirmation runs of that pair with seeds the search never saw.
"""

from __future__ import annotations

import math
import shlex

from ..engine.config import TrainConfig
from .recommend import status_text


def confirmation_sentence(c: dict) -> str:
    """One sentence on the confirmation runs of the recommended (B, lr) with fresh seeds:
    ``c`` holds ``batch_size``, ``lr``, ``seeds``, ``reached``, ``diverged``, ``time_median``
    and ``steps_median`` (:func:`sgdlab.lab.summary.confirmation_row`)."""
    seeds = c.get("seeds") or []
    outcome = c.get("status_text") or status_text(c.get("reached", 0), c.get("diverged", 0),
                                                  len(seeds))
    head = (f"Confirmation with fresh seeds ({', '.join(str(s) for s in seeds)}): batch size "
            f"{c['batch_size']} at learning rate {c['lr']:.4g}: {outcome}")
    t, steps = c.get("time_median", math.inf), c.get("steps_median", math.inf)
    if not (math.isfinite(t) and math.isfinite(steps)):
        return (f"{head}; the median run did not reach the target, so treat the "
                "recommendation with caution.")
    when = f"{t * 1000:.3g} ms" if t < 1 else f"{t:.3g} s"
    return f"{head}, median time to target {when}, in {steps:.0f} steps."


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
