"""The fuzzers' runner: a check run on generated values, its count kept for the test summary."""

import pytest
from hypothesis import HealthCheck, given, settings

from sgdlab.errors import SgdlabError


def fuzz(name: str, strategy, n: int, refusal=SgdlabError):
    """Run the decorated ``check(value)`` on ``n`` generated values; record the count (printed
    in the test summary under "reliability counts"). ``refusal``: the exception(s) a check
    may end in (a documented refusal); any other fails the test."""
    def decorate(check):
        def test():
            seen = [0]

            @settings(max_examples=n, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            @given(strategy)
            def run(value):
                seen[0] += 1
                try:
                    check(value)
                except refusal:
                    pass  # a documented refusal

            run()
            counts = pytest.reliability_counts
            counts[f"fuzz examples: {name}"] = seen[0]
            counts.pop("fuzz examples: total", None)  # re-added last, so printed last
            counts["fuzz examples: total"] = sum(
                v for k, v in counts.items() if k.startswith("fuzz examples: ") and
                not k.endswith("total"))
        test.__name__ = check.__name__
        return test
    return decorate


def accepted(name: str) -> None:
    """Count one generated input a fuzzer's reader accepted (the rest were refused)."""
    key = f"fuzz accepted: {name}"
    pytest.reliability_counts[key] = pytest.reliability_counts.get(key, 0) + 1
