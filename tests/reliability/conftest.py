"""Counts the reliability tests report at the end of a run (fixtures, fuzz examples)."""

import pytest

pytest.reliability_counts = {}


def pytest_terminal_summary(terminalreporter):
    counts = getattr(pytest, "reliability_counts", {})
    if counts:
        terminalreporter.section("reliability counts")
        for what, n in counts.items():
            terminalreporter.write_line(f"{what}: {n}")
