"""Learning rates taken from a finished sweep: each batch size at the rate its search kept.

``sgdlab train --lr-from-sweep runs/sweep1`` (``sgdlab.fit(lr_from_sweep=...)``) trains at
the learning rate the sweep in ``runs/sweep1`` tuned for the run's batch size, or gives every
phase of a ``--batch-schedule`` that names no ``@LR`` its own batch size's tuned rate
(:func:`schedule_with_rates`); a phase with ``@LR`` keeps it. The rates are written into the
configuration, so ``config.json`` records the numbers, not the sweep they came from.

A batch size counts as tuned when the sweep kept a learning rate for it and its median seed
reached the target. ``sweep.json`` is read as untrusted input: at most
:data:`MAX_SWEEP_JSON_BYTES`, not through a link, and every entry used checked for its type;
a file of another shape is one message naming it.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import math
import os
from pathlib import Path

from ..engine.batch_schedule import BatchSchedule
from ..errors import ConfigError

#: A sweep.json larger than this is refused (a sweep of hundreds of runs writes well under 1 MB).
MAX_SWEEP_JSON_BYTES = 64 << 20


def tuned_rates(source) -> dict:
    """``{batch size: tuned lr}`` of a sweep: its ``--out`` directory (or its ``sweep.json``),
    or a :class:`~.summary.SweepResult`."""
    if hasattr(source, "batches") and not isinstance(source, (str, os.PathLike)):
        rows = [{"batch_size": r.batch_size, "lr": r.lr, "steps_median": r.steps_median}
                for r in source.batches]
        return _rates(rows, "the sweep result")
    path = Path(source)
    if path.is_dir():
        path = path / "sweep.json"
    if not path.is_file():
        raise ConfigError(f"{source}: no sweep.json there; give the --out directory of a "
                          "finished sgdlab sweep")
    try:  # opened once without following a link; its size checked on what was opened
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        if e.errno == errno.ELOOP or path.is_symlink():
            raise ConfigError(f"{path} is a symbolic link; sgdlab reads a sweep's own "
                              "sweep.json only: give the sweep's directory") from None
        raise ConfigError(f"cannot read {path} ({e.strerror}); give the --out directory of a "
                          "finished sgdlab sweep") from None
    with os.fdopen(fd, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > MAX_SWEEP_JSON_BYTES:
            raise ConfigError(f"{path} has {size:,} bytes, more than a sweep writes "
                              f"({MAX_SWEEP_JSON_BYTES:,} at most): not a sweep's sweep.json")
        raw = f.read(MAX_SWEEP_JSON_BYTES + 1)
    try:
        if len(raw) > MAX_SWEEP_JSON_BYTES:  # grew after the check
            raise ValueError("the file grew while it was read")
        data = json.loads(raw.decode("utf-8"))
        rows = data["batches"]
        if not isinstance(rows, list):
            raise TypeError("batches is not a list")
    except (ValueError, KeyError, TypeError, RecursionError) as e:
        raise ConfigError(f"cannot read the tuned learning rates from {path} ({e}): not a "
                          "finished sweep's sweep.json; run sgdlab sweep --out DIR and give "
                          "DIR") from None
    return _rates(rows, str(path))


def _number(v) -> bool:
    """A JSON number that is a float (an integer too large for one is not)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    try:
        float(v)
    except OverflowError:
        return False
    return True


def _rates(rows: list, where: str) -> dict:
    rates = {}
    for row in rows:
        if not isinstance(row, dict):
            raise ConfigError(f"{where}: a batch row is {type(row).__name__}, not an object: "
                              "not a sweep's sweep.json")
        b, lr, steps = row.get("batch_size"), row.get("lr"), row.get("steps_median")
        if not (isinstance(b, int) and not isinstance(b, bool) and b >= 1 and _number(lr)):
            raise ConfigError(f"{where}: a batch row without a whole batch size and a learning "
                              f"rate ({row.get('batch_size')!r}, {row.get('lr')!r}): not a "
                              "sweep's sweep.json")
        if math.isfinite(lr) and lr > 0 and _number(steps) and math.isfinite(steps):
            rates[b] = float(lr)
    if not rates:
        raise ConfigError(f"{where}: no batch size of that sweep reached its target, so it "
                          "tuned no learning rate to take; give --lr (or @LR per phase)")
    return rates


def _missing(b: int, rates: dict, where: str, fix: str) -> ConfigError:
    tuned = ", ".join(str(x) for x in sorted(rates))
    return ConfigError(f"the sweep in {where} tuned no learning rate for batch size {b} "
                       f"(tuned: {tuned}); {fix}, or sweep that batch size")


def settings_from_sweep(source, where: str, *, batch_size, batch_schedule, option: str,
                        batch_names: str) -> dict:
    """What taking a run's learning rates from the sweep ``source`` sets:
    ``{"batch_schedule": text}`` with every phase that gives no ``@LR`` at its batch size's
    tuned rate, or else ``{"lr": the tuned rate of batch_size}``. ``where`` names the sweep
    in messages, ``option`` and ``batch_names`` the settings as the caller's user writes them
    (``"--lr-from-sweep"``, ``"--batch-size (or --batch-schedule)"``)."""
    rates = tuned_rates(source)
    if batch_schedule is not None:
        return {"batch_schedule": schedule_with_rates(batch_schedule, rates, where)}
    if batch_size is None:
        raise ConfigError(f"{option} takes the tuned learning rate of the run's batch size: "
                          f"give {batch_names}")
    return {"lr": rate_for(batch_size, rates, where)}


def rate_for(batch_size: int, rates: dict, where: str) -> float:
    """The tuned rate of ``batch_size`` (a :class:`ConfigError` naming the tuned ones if
    none)."""
    if batch_size not in rates:
        raise _missing(batch_size, rates, where, "give --lr")
    return rates[batch_size]


def schedule_with_rates(schedule, rates: dict, where: str) -> str:
    """``schedule`` (text or :class:`BatchSchedule`) with every phase that gives no ``@LR`` at
    its batch size's tuned rate, as text.

    >>> schedule_with_rates("16:0,64@0.5:2000,256:8000", {16: 0.1, 256: 0.8}, "runs/s")
    '16@0.1:0,64@0.5:2000,256@0.8:8000'
    """
    parsed = BatchSchedule.parse(schedule)
    phases = []
    for i, p in enumerate(parsed.phases, 1):
        if p.lr is None:
            if p.batch_size not in rates:
                raise _missing(p.batch_size, rates, where,
                               f"give phase {i} its own rate ({p.batch_size}@LR:"
                               f"{p.start_text})")
            p = dataclasses.replace(p, lr=rates[p.batch_size])
        phases.append(p)
    return BatchSchedule(tuple(phases)).text
