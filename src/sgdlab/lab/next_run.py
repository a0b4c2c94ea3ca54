"""What to run next: the ``sgdlab train`` command of a recommendation, and its confirmation.

A sweep ends with an action, not only a table: the exact command that trains the recommended
batch size and learning rate with every other setting the sweep used, and one sentence on the
confirmation runs of that pair with seeds the search never saw.
"""

from __future__ import annotations

import math
import shlex

from ..engine.config import TrainConfig, settings
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


def train_command(config: TrainConfig, data_arg: str, extra: tuple = ()) -> str | None:
    """The ``sgdlab train`` command that trains ``config`` on ``data_arg``: a flag for every
    setting that differs from its default (each setting's flag and text form come from its
    declaration, :mod:`sgdlab.engine.config`), so the command parses back to ``config``.
    ``extra``: more arguments (``--label-column``, ``--task``). None when a setting is a
    Python object (a user's network object, an optax optimiser or schedule), which no command
    line can give.
    """
    default = TrainConfig()
    parts = ["sgdlab", "train", "--data", str(data_arg), *extra]
    for name, declared in settings().items():
        value = getattr(config, name)
        if name == "extra" or value == getattr(default, name):
            continue
        if declared.kind == "flag":  # --drop-last, --no-standardize
            parts.append(declared.flag(name))
            continue
        text = declared.to_text(value)
        if text is None:
            return None
        # "--target=-0.5": argparse reads "-5e-07" after a flag as another flag
        parts += [f"{declared.flag(name)}={text}"] if text.startswith("-") else \
            [declared.flag(name), text]
    return " ".join(shlex.quote(p) for p in parts)


def recommended_command(base: TrainConfig, batch_size: int | None, lr: float | None,
                        data_arg: str, extra: tuple = ()) -> str | None:
    """:func:`train_command` of ``base`` at the recommended batch size and learning rate, or
    None without a recommendation (``batch_size`` None)."""
    if batch_size is None:
        return None
    return train_command(base.replace(batch_size=batch_size, lr=lr), data_arg, extra)
