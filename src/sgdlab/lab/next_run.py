"""What to run next: the ``sgdlab train`` command of a recommendation.

A sweep ends with an action, not only a table: the exact command that trains the recommended
batch size and learning rate with every other setting the sweep used.
"""

from __future__ import annotations

import shlex

from ..engine.config import TrainConfig, settings


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
