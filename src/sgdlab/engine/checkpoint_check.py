"""What a checkpoint must hold before a resume trusts it: the loop state's kinds and ranges,
and arrays that are numbers, finite, with a step counter that agrees with the manifest.

A checkpoint is a file a person can edit (its checksums are plain sha256 sums, which anyone
can recompute), so a resume reads it as untrusted input. :func:`check_snapshot` refuses, with
one message naming the file and the entry, everything the loop would otherwise trip over
later (a ``TypeError`` deep in the loop, a ``KeyError``, a run that continues from step -5, or
NaN parameters reported as a divergence of the learning rate). Shapes and dtypes of the
parameters and optimiser state are compared with the model when the run is rebuilt
(:func:`~sgdlab.engine.checkpoint.arrays_to_tree`).

The loop state in the manifest's body::

    step           int >= 0, the same as the array "step" and the file name
    position       {"epoch": int, "step_in_epoch": int}, each in 0 .. step + 1, and "row"
                   (the slot of the epoch's order the next step starts at): an int >= 0
                   (one the epoch does not hold starts the next epoch; older checkpoints
                   have none)
    examples       int >= 0
    train_seconds, eval_seconds, wall_seconds    finite numbers >= 0
    since_row      [finite number, int >= 0]     (train-loss sum, steps since the last row)
    last_eval      {"step": int in 0 .. step, "time": finite number >= 0}
    status         one of :data:`~sgdlab.engine.result.STATUSES` or "running"
    history        a list of rows {column name: number, text or null}
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..errors import RunDirError
from .result import STATUSES

#: The largest ``row`` a position may name (far above any epoch's slots; it is a place in an
#: epoch's order, never a size).
MAX_ROW = 2 ** 62

#: Statuses a checkpoint may record: a finished run's, or ``"running"``.
CHECKPOINT_STATUSES = ("running", *STATUSES)


def check_snapshot(arrays: dict, body: dict, step: int, where: str) -> None:
    """A :class:`RunDirError` naming ``where`` (the checkpoint's files) and the first entry of
    ``body`` (the manifest's loop state) or ``arrays`` that a resume cannot use; ``step`` is
    the step the file name says."""
    def bad(what: str) -> RunDirError:
        return RunDirError(f"{where}: {what}; the checkpoint was changed or damaged after it was "
                           "written (sgdlab writes only whole, finite states)")

    s = body.get("step")
    if not _whole(s) or s != step:
        raise bad(f"'step' is {s!r}, the file name says {step}")
    _check_loop_state(body, s, bad)
    _check_arrays(arrays, s, bad)


def _whole(v, low: int = 0, high: float = math.inf) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


def _real(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) \
        and v >= 0


def _check_loop_state(body: dict, step: int, bad) -> None:
    pos = body.get("position")
    if not (isinstance(pos, dict) and set(pos) - {"row"} == {"epoch", "step_in_epoch"}
            and _whole(pos["epoch"], 0, step + 1) and _whole(pos["step_in_epoch"], 0, step + 1)
            and _whole(pos.get("row", 0), 0, MAX_ROW)):
        raise bad(f"'position' is {_short(pos)}, not {{'epoch': E, 'step_in_epoch': S, "
                  f"'row': R}} with E and S whole numbers from 0 to {step + 1}, R from 0 to "
                  f"{MAX_ROW}")
    if not _whole(body.get("examples")):
        raise bad(f"'examples' is {_short(body.get('examples'))}, not a whole number >= 0")
    for key in ("train_seconds", "eval_seconds", "wall_seconds"):
        if not _real(body.get(key)):
            raise bad(f"{key!r} is {_short(body.get(key))}, not a finite number >= 0")
    since = body.get("since_row")
    if not (isinstance(since, list) and len(since) == 2 and isinstance(since[0], numbers.Real)
            and not isinstance(since[0], bool) and math.isfinite(since[0])
            and _whole(since[1], 0, step)):
        raise bad(f"'since_row' is {_short(since)}, not [a finite loss sum, a step count]")
    last = body.get("last_eval")
    if not (isinstance(last, dict) and set(last) == {"step", "time"}
            and _whole(last["step"], 0, step) and _real(last["time"])):
        raise bad(f"'last_eval' is {_short(last)}, not {{'step': 0 .. {step}, 'time': seconds}}")
    if body.get("status") not in CHECKPOINT_STATUSES:
        raise bad(f"'status' is {_short(body.get('status'))}, not one of "
                  f"{', '.join(CHECKPOINT_STATUSES)}")
    history = body.get("history")
    if not isinstance(history, list):
        raise bad(f"'history' is {_short(history)}, not a list of rows")
    for i, row in enumerate(history):
        if not (isinstance(row, dict) and all(
                isinstance(k, str) and (v is None or isinstance(v, (numbers.Real, str)))
                for k, v in row.items())):
            raise bad(f"history row {i} is {_short(row)}, not {{column: number}}")


def _check_arrays(arrays: dict, step: int, bad) -> None:
    counter = arrays.get("step")
    if counter is None or counter.shape != () or counter.dtype.kind not in "iu" \
            or int(counter) != step:
        shown = "missing" if counter is None else f"{counter.dtype} {counter.shape} " \
                                                  f"{counter.tolist() if counter.size < 4 else ''}"
        raise bad(f"the array 'step' is {shown.strip()}, not the whole number {step} the "
                  "manifest says")
    for name, a in arrays.items():
        if a.dtype.kind not in "biuf":
            raise bad(f"the array {name!r} holds {a.dtype} values, not numbers")
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise bad(f"the array {name!r} holds NaN or infinite values")


def _short(v) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."
