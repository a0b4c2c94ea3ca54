import pytest

from sgdlab.engine.schedule import EvalSchedule, parse_duration
from sgdlab.errors import ConfigError


@pytest.mark.parametrize("text,expected", [
    ("500 steps", EvalSchedule(500, None, None)),
    ("500", EvalSchedule(500, None, None)),
    ("2s", EvalSchedule(None, 2.0, None)),
    ("5 min", EvalSchedule(None, 300.0, None)),
    ("1 epoch", EvalSchedule(None, None, 1.0)),
    ("0.5 epochs, 100 steps, 30s, end", EvalSchedule(100, 30.0, 0.5)),
    ("end", EvalSchedule(None, None, None)),
])
def test_parse(text, expected):
    assert EvalSchedule.parse(text) == expected


@pytest.mark.parametrize("bad,match", [("5 parsecs", "unknown unit"), ("-3 steps", "cannot read"),
                                       ("1.5 steps", "whole"), ("0s", "> 0"),
                                       ("every so often", "cannot read")])
def test_parse_errors(bad, match):
    with pytest.raises(ConfigError, match=match):
        EvalSchedule.parse(bad)


def test_durations():
    assert parse_duration("60s") == 60.0
    assert parse_duration("2 min") == 120.0
    assert parse_duration(1.5) == 1.5
    with pytest.raises(ConfigError, match="cannot read duration"):
        parse_duration("soon")
