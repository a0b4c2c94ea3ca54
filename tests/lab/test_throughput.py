"""The throughput probe: it times the very program training runs, and its arithmetic is right.

No assertion here reads a real clock's value: the accounting is checked with a fake clock that
a wrapped kernel advances by a known cost per call and per active step, and the rest is
structure (rows, chunk length, number of calls, compiled programs).
"""

import math
import time

import numpy as np
import pytest

from sgdlab.engine import TrainConfig, cache, train
from sgdlab.lab.throughput import TIMED_STEPS, probe_throughput

SIZES = (16, 64, 256)
REPEATS = 2
MIN_EXAMPLES = 4096


def _configs():
    return [TrainConfig(model="softmax", batch_size=b, lr=0.1, epochs=1, seed=0)
            for b in SIZES]


class FakeClock:
    """``perf_counter`` that moves only when the wrapped program runs or is built."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


#: fake costs: building a program, one call's fixed part, one step of batch size B
COMPILE, CALL = 7.0, 0.25


def step_cost(b: int) -> float:
    return 1e-3 + 2e-5 * b


@pytest.fixture
def fake_costs(monkeypatch):
    """The program store's training kernels, wrapped: each call advances the fake clock by
    ``CALL + n_active * step_cost(B)``; each build by ``COMPILE``. Records every call's
    ``(B, n_active)``."""
    clock, calls = FakeClock(), []
    original = cache.get_or_build

    def get_or_build(kind, key, build):
        if kind != "chunk":
            return original(kind, key, build)

        def timed_build():
            clock.now += COMPILE
            return build()

        program = original(kind, key, timed_build)

        def run(state, X, T, idx, w, n_active, lr):
            out = program(state, X, T, idx, w, n_active, lr)
            b = idx.shape[-1]
            calls.append((b, int(n_active)))
            clock.now += CALL + int(n_active) * step_cost(b)
            return out

        return run

    monkeypatch.setattr(cache, "get_or_build", get_or_build)
    monkeypatch.setattr(time, "perf_counter", clock)
    return calls


def test_rows_follow_the_probes_own_accounting(digits_ds, fake_costs):
    cache.clear()
    # one build at a time: the fake clock adds every build's cost to whoever reads it
    rows = probe_throughput(digits_ds, list(reversed(_configs())), repeats=REPEATS,
                            min_call_examples=MIN_EXAMPLES, compile_workers=1)
    assert [r["batch_size"] for r in rows] == list(SIZES)  # sorted, one row per size
    for r in rows:
        b, k = r["batch_size"], r["chunk_steps"]
        assert r["step_seconds"] == pytest.approx(step_cost(b), rel=1e-9)
        assert r["call_seconds"] == pytest.approx(CALL, rel=1e-9)
        assert r["compile_seconds"] == pytest.approx(COMPILE)
        assert r["example_seconds"] == pytest.approx(step_cost(b) / b, rel=1e-9)
        assert r["examples_per_second"] == pytest.approx(b / step_cost(b), rel=1e-9)
        assert r["step_cost_ratio"] == pytest.approx(step_cost(b) / step_cost(SIZES[0]))
        assert r["vectorisation_gain"] == pytest.approx(
            (b / SIZES[0]) * step_cost(SIZES[0]) / step_cost(b))
        assert r["diverged"] is False
        # one timing covers enough calls for MIN_EXAMPLES examples, and no more calls
        assert r["calls"] == max(1, math.ceil(MIN_EXAMPLES / (k * b)))
        # calls of the full chunk: a warm-up round plus REPEATS timed rounds; calls of zero
        # active steps (the fixed cost): REPEATS rounds
        mine = [n for bb, n in fake_costs if bb == b]
        assert mine.count(k) == (REPEATS + 1) * r["calls"]
        assert mine.count(0) == REPEATS * r["calls"]
        assert len(mine) == (2 * REPEATS + 1) * r["calls"]
    assert rows[0]["step_cost_ratio"] == 1.0 and rows[0]["vectorisation_gain"] == 1.0


def test_step_cost_is_all_of_a_call_when_the_fixed_part_looks_larger(digits_ds, monkeypatch):
    """Timing noise can make the idle call look dearer than a working one: then the whole
    call is counted as step cost (never a negative step time)."""
    clock = FakeClock()
    original = cache.get_or_build

    def get_or_build(kind, key, build):
        program = original(kind, key, build)
        if kind != "chunk":
            return program

        def run(state, X, T, idx, w, n_active, lr):
            clock.now += 0.5 if int(n_active) == 0 else 0.4  # idle looks dearer
            return program(state, X, T, idx, w, n_active, lr)
        return run

    monkeypatch.setattr(cache, "get_or_build", get_or_build)
    monkeypatch.setattr(time, "perf_counter", clock)
    row, = probe_throughput(digits_ds, _configs()[1:2], repeats=1)
    assert row["call_seconds"] == pytest.approx(0.5)
    assert row["step_seconds"] == pytest.approx(0.4 / row["chunk_steps"])


def test_the_probe_times_the_program_training_runs(digits_ds):
    """Its chunk length is training's, and it compiles nothing that training built (and
    training nothing the probe built): one program per batch size in all."""
    cache.clear()
    configs = _configs()
    chunk = {}
    for cfg in configs[:2]:  # training first for two sizes ...
        r = train(digits_ds, None, cfg)
        chunk[cfg.batch_size] = r.extra["chunk_steps"]
    assert cache.stats()["built"]["chunk"] == 2
    rows = probe_throughput(digits_ds, configs, repeats=1)
    assert cache.stats()["built"]["chunk"] == 3  # ... the probe compiled the third only
    r = train(digits_ds, None, configs[2])  # ... and training reuses it
    chunk[configs[2].batch_size] = r.extra["chunk_steps"]
    assert cache.stats()["built"]["chunk"] == 3
    assert {row["batch_size"]: row["chunk_steps"] for row in rows} == chunk
    for row in rows:
        for key in ("step_seconds", "call_seconds", "example_seconds", "examples_per_second"):
            assert math.isfinite(row[key]) and row[key] > 0, (key, row)
        assert row["compile_seconds"] >= 0 and row["diverged"] is False
    assert np.isclose(rows[0]["step_cost_ratio"], 1.0)


def test_concurrent_compilation_builds_the_programs_serial_compilation_builds(digits_ds):
    """Compiled several at a time, the probe builds one program per batch size, exactly as
    when it compiles them one after another: the same number, the same chunk lengths, the
    programs training then uses (it compiles nothing more) and the same bits."""
    configs = _configs()
    programs = {}
    for workers in (1, len(configs)):
        cache.clear()
        rows = probe_throughput(digits_ds, configs, repeats=1, compile_workers=workers)
        assert cache.stats()["built"]["chunk"] == len(configs)
        programs[workers] = ([r["chunk_steps"] for r in rows],)
        results = [train(digits_ds, None, cfg) for cfg in configs]
        assert cache.stats()["built"]["chunk"] == len(configs)  # training reused them all
        programs[workers] += ([np.asarray(r.params["W"]) for r in results],)
    (steps1, w1), (steps2, w2) = programs.values()
    assert steps1 == steps2
    assert all(np.array_equal(a, b) for a, b in zip(w1, w2))



def test_a_long_chunk_is_timed_over_at_most_timed_steps(digits_ds, fake_costs):
    """Batch size 1's chunk holds more steps than a timing needs: its calls run
    TIMED_STEPS active steps of the same program, and the step cost comes out the same."""
    cache.clear()
    cfg = TrainConfig(model="softmax", batch_size=1, lr=0.1, epochs=1, seed=0)
    row, = probe_throughput(digits_ds, [cfg], repeats=REPEATS, compile_workers=1)
    assert row["chunk_steps"] > TIMED_STEPS
    assert row["step_seconds"] == pytest.approx(step_cost(1), rel=1e-9)
    assert row["call_seconds"] == pytest.approx(CALL, rel=1e-9)
    active = [n for b, n in fake_costs if n]
    assert set(active) == {TIMED_STEPS}
    assert len(active) == (REPEATS + 1) * row["calls"]
