"""Values of every training setting, derived from its declaration (kind, range, choices), so a
test over all settings covers a setting added later without being edited."""

import math

from hypothesis import strategies as st

from sgdlab.engine.config import TrainConfig, settings
from sgdlab.engine.config_types import MAX_DIMENSION

#: Evaluation schedules a generated config may take.
SCHEDULES = ("1 epoch", "500 steps", "2s", "end", "3 steps, 1 epoch", "0.5 epoch")


def _bounds(declared, far: float):
    low = declared.low if declared.low is not None else -far
    high = declared.high if declared.high is not None else far
    return low, high


def values(name: str):
    """A hypothesis strategy of the values ``name`` takes that have a command-line form."""
    declared = settings()[name]
    kind = declared.kind
    if declared.choices is not None:
        base = st.sampled_from(declared.names())
    elif kind in ("real", "rate"):
        low, high = _bounds(declared, 1e6)
        base = st.floats(low, high, exclude_min=declared.low_open,
                         exclude_max=declared.high_open, allow_nan=False,
                         allow_infinity=False)
        if kind == "rate" or declared.low_open:
            base = base.filter(lambda x: x != 0)  # open at 0: -0.0 == 0 too
    elif kind == "whole number":
        low, high = _bounds(declared, 10 ** 9)
        base = st.integers(int(low), int(high))
    elif kind == "flag":
        base = st.booleans()
    elif kind == "widths":
        base = st.lists(st.integers(1, 4096), min_size=1, max_size=4).map(tuple)
    elif kind == "duration":
        base = st.floats(1e-3, 1e7, allow_nan=False)
    elif kind == "eval schedule":
        base = st.sampled_from(SCHEDULES)
    elif kind == "table":
        return st.just({})
    elif kind == "batch schedule":
        base = batch_schedules()
    else:
        raise AssertionError(f"no values for the kind {kind!r} of setting {name!r}: add them")
    return st.one_of(st.none(), base) if declared.optional else base


@st.composite
def batch_schedules(draw):
    """A batch schedule's text: 1-4 phases, starts increasing in examples or in epochs, some
    with their own learning rate."""
    n = draw(st.integers(1, 4))
    epochs = draw(st.booleans())
    if epochs:
        starts = [0.0] + sorted(draw(st.lists(st.floats(0.01, 1e4), min_size=n - 1,
                                              max_size=n - 1, unique=True)))
        starts = [f"{x!r}e" for x in starts]
    else:
        starts = [0] + sorted(draw(st.lists(st.integers(1, 10 ** 9), min_size=n - 1,
                                            max_size=n - 1, unique=True)))
    parts = []
    for start in starts:
        b = draw(st.integers(1, 4096))
        lr = draw(st.none() | st.floats(1e-6, 10.0))
        parts.append(f"{b}{'' if lr is None else f'@{lr!r}'}:{start}")
    return ",".join(parts)


def other_value(name: str):
    """A valid value of ``name`` other than its default (for tests that change one setting)."""
    declared, default = settings()[name], getattr(TrainConfig(), name)
    kind = declared.kind
    if declared.choices is not None:
        return next(n for n in reversed(declared.names()) if n != default)
    if kind == "flag":
        return not default
    if kind == "widths":
        return (7,)
    if kind == "eval schedule":
        return "3 steps"
    if kind == "batch schedule":
        return "32:0,64:1e"  # first phase at the default batch size
    if kind == "table":
        return {"note": 1}
    if kind == "duration":
        return 9.0
    low, high = _bounds(declared, math.inf)
    if kind == "whole number":
        start = max(int(low) if low > -math.inf else 1, 1)
        top = min(high, MAX_DIMENSION) if high < math.inf else MAX_DIMENSION
        return next(v for v in range(start, int(top) + 1) if v != default)
    # a real: between the bounds (or near the default), not the default
    candidates = [x for x in (0.5, 0.3, 3.0, 0.01) if low <= x <= high
                  and not (declared.low_open and x == low) and x != default]
    return candidates[0]
