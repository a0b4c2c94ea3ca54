"""The decision among batch sizes: the fastest median, the tie, and the stated pick rule
(the fewest steps among the batch sizes within 10 % of the fastest), on hand-made times."""

import math

import numpy as np
import pytest

from sgdlab.lab.ties import MIN_SEEDS, PICK_MARGIN, decide, p_slower


def test_clearly_separated_times_are_distinguishable():
    times = {16: [1.0, 1.01, 0.99], 64: [2.0, 2.1, 1.9], 256: [4.0, 4.2, 3.9]}
    d = decide(times, {16: 400, 64: 120, 256: 40}, {16: True, 64: True, 256: True})
    assert (d.fastest, d.pick, d.tied, d.near) == (16, 16, (16,), (16,))
    assert d.tested and d.distinguishable
    assert d.p_slower == {64: 1.0, 256: 1.0}


def test_the_pick_is_the_fewest_steps_within_the_margin_not_the_lowest_median():
    # 64 has the lowest median; 128 is 3 % slower and needs fewer steps: it is picked.
    times = {32: [1.5, 1.6, 1.7], 64: [1.0, 1.02, 1.04], 128: [1.03, 1.05, 1.06],
             256: [1.6, 1.7, 1.8]}
    steps = {32: 200, 64: 100, 128: 60, 256: 40}
    d = decide(times, steps, dict.fromkeys(times, True))
    assert d.fastest == 64 and d.pick == 128 and d.near == (64, 128)
    assert 64 in d.tied and 128 in d.tied and 256 not in d.tied


def test_the_pick_does_not_follow_noise_among_near_equal_times():
    """Times of 64 and 128 within 2 % of each other, re-measured with 1 % noise many times:
    the lowest median flips, the pick does not."""
    rng = np.random.default_rng(0)
    base = {32: 1.6, 64: 1.00, 128: 1.02, 256: 1.5}
    steps = {32: 200, 64: 100, 128: 60, 256: 40}
    fastest, picks = set(), set()
    for _ in range(50):
        times = {b: list(t * (1 + 0.01 * rng.standard_normal(3))) for b, t in base.items()}
        d = decide(times, steps, dict.fromkeys(base, True))
        fastest.add(d.fastest)
        picks.add(d.pick)
    assert fastest == {64, 128} and picks == {128}


def test_a_batch_size_whose_seed_missed_is_not_picked():
    times = {64: [1.0, 1.01, 1.02], 128: [1.0, 1.01, math.inf]}
    d = decide(times, {64: 100, 128: 50}, {64: True, 128: False})
    assert d.pick == 64 and 128 in d.near


def test_fewer_than_min_seeds_makes_no_significance_claim():
    times = {16: [1.0], 64: [1.04], 256: [3.0]}
    d = decide(times, {16: 400, 64: 120, 256: 40}, dict.fromkeys(times, True))
    assert not d.tested and not d.distinguishable and d.p_slower == {}
    assert d.tied == d.near == (16, 64) and d.pick == 64
    assert MIN_SEEDS == 3 and PICK_MARGIN == 0.10


def test_nothing_reached_gives_no_pick():
    d = decide({16: [math.inf] * 3, 64: [math.inf] * 3}, {16: math.inf, 64: math.inf},
               {16: False, 64: False})
    assert d.pick is None and d.fastest is None and d.tied == ()


def test_p_slower_keeps_missed_seeds_as_slower():
    assert p_slower([math.inf] * 3, [1.0, 2.0, 3.0]) == 1.0
    assert p_slower([math.inf] * 3, [math.inf] * 3) == 0.0
    assert 0.3 < p_slower([1.0, 2.0, 3.0], [1.1, 2.1, 2.9]) < 0.7
