"""Bootstrap over seeds: a winner whose seeds are all faster is distinguishable; overlapping
seeds are a tie, resolved by the stated rule (the lowest median among tied batch sizes whose
every seed reached the target)."""

import math

from sgdlab.lab.ties import p_slower, tie_analysis


def test_separated_seeds_are_distinguishable():
    assert p_slower([2.0, 2.1, 2.2], [1.0, 1.1, 1.2]) == 1.0
    assert p_slower([1.0, 1.1, 1.2], [2.0, 2.1, 2.2]) == 0.0


def test_overlapping_seeds_are_tied_and_the_rule_picks_the_largest_reliable():
    times = {8: [1.0, 1.3, 1.1], 32: [1.05, 1.2, 1.15], 128: [0.9, 1.4, 1.25],
             512: [3.0, 3.1, 3.2]}
    reached = {8: True, 32: True, 128: False, 512: True}
    t = tie_analysis(times, reached)
    assert t["fastest"] == 8                   # lowest median (1.1)
    assert t["tied"] == [8, 32, 128]           # 512 is slower in every resample
    assert t["p_slower"][512] == 1.0 and not t["distinguishable"]
    assert t["pick"] == 8                      # the lowest median among those that always reached
    reached[8] = False
    assert tie_analysis(times, reached)["pick"] == 32   # 8 and 128 each had a seed miss


def test_missed_targets_are_never_fastest_nor_tied():
    t = tie_analysis({4: [math.inf, math.inf, 1.0], 16: [2.0, 2.0, 2.0]},
                     {4: False, 16: True})
    assert t["fastest"] == 16 and t["tied"] == [16] and t["pick"] == 16
    assert tie_analysis({4: [math.inf]}, {4: False})["pick"] is None


def test_an_even_number_of_seeds_with_half_missed_is_a_miss():
    # The median of [1.0, inf] is inf: a batch size where half the seeds missed did not reach.
    t = tie_analysis({8: [1.0, math.inf], 16: [2.0, 2.1]}, {8: False, 16: True})
    assert t["fastest"] == 16 and t["pick"] == 16 and 8 not in t["tied"]
