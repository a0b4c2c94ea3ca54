"""The per-batch-size learning-rate search on hand-made outcome curves (no training): it
brackets the best point, widens toward it, stops at divergence, refines once, stays bounded."""

import math

import pytest

from sgdlab.lab.lr_search import Outcome, best_point, rank, search_lr


def valley(best_lr: float, edge: float | None = None, seeds: int = 3):
    """Steps to target ``100 * (1 + log2(lr / best_lr)^2)``; every seed diverges above
    ``edge``. Records the learning rates asked for, in order."""
    asked = []

    def evaluate(lr):
        asked.append(lr)
        if edge is not None and lr > edge:
            return Outcome(lr, seeds, 0, seeds, math.inf, math.nan)
        steps = 100 * (1 + math.log2(lr / best_lr) ** 2)
        return Outcome(lr, seeds, seeds, 0, round(steps), 0.95)

    return evaluate, asked


def test_the_first_bracket_is_centred_on_the_rule():
    evaluate, asked = valley(best_lr=0.1)
    tried = search_lr(evaluate, 0.1, factor=4)
    assert asked[:3] == pytest.approx([0.1, 0.4, 0.025])
    assert best_point(tried) == 0             # the rule was already best: nothing widened
    assert len(tried) == 4                    # ... and one refinement


def test_widens_toward_a_far_optimum_until_it_is_interior():
    evaluate, asked = valley(best_lr=0.1 * 4 ** 3)
    tried = search_lr(evaluate, 0.1, factor=4, max_points=8)
    j = best_point(tried)
    assert j == 3 and 4 in tried               # the best has a neighbour on both sides
    assert 0.1 * 4 ** 3 in [tried[k].lr for k in tried]


def test_divergence_closes_the_upper_side_and_refinement_goes_toward_the_edge():
    # Steps fall with the lr up to the stability edge at 1.0, where every seed diverges.
    evaluate, asked = valley(best_lr=10.0, edge=1.0)
    tried = search_lr(evaluate, 0.1, factor=4)
    assert max(tried) == 2 and tried[2].diverged == 3     # 1.6 diverged: not widened beyond
    assert best_point(tried) == 1.5                        # 0.8: refined toward the edge
    assert all(lr <= 1.6 + 1e-12 for lr in asked)


def test_all_diverged_searches_downward():
    evaluate, asked = valley(best_lr=0.001, edge=0.002)
    tried = search_lr(evaluate, 1.0, factor=4, max_points=8)
    assert min(asked) < 0.002 and best_point(tried) < 0
    assert tried[best_point(tried)].diverged == 0


def test_bounded_by_the_number_of_points():
    evaluate, asked = valley(best_lr=1e6)
    tried = search_lr(evaluate, 1e-3, factor=2, max_points=5)
    assert len(tried) == len(asked) == 5


def test_rank_prefers_reliable_then_few_steps_then_best_final():
    every = Outcome(0.1, 3, 3, 0, 200, 0.95)
    faster_but_one_diverged = Outcome(0.4, 3, 2, 1, 50, 0.95)
    missed = Outcome(0.01, 3, 0, 0, math.inf, 0.90)
    missed_worse = Outcome(0.001, 3, 0, 0, math.inf, 0.50)
    all_diverged = Outcome(10.0, 3, 0, 3, math.inf, math.nan)
    order = sorted([all_diverged, missed_worse, faster_but_one_diverged, missed, every],
                   key=rank)
    assert order == [every, faster_but_one_diverged, missed, missed_worse, all_diverged]


def test_refinement_goes_up_toward_a_higher_neighbour_that_missed_without_diverging():
    # Above 1.0 the runs oscillate: no NaN, but the target is never reached.
    def evaluate(lr):
        if lr > 1.0:
            return Outcome(lr, 3, 0, 0, math.inf, 0.5)
        return Outcome(lr, 3, 3, 0, round(100 / lr), 0.95)
    tried = search_lr(evaluate, 0.25, factor=4)
    assert tried[2].steps_median == math.inf and tried[2].diverged == 0   # 4.0 missed
    assert 1.5 in tried and tried[1.5].lr == pytest.approx(2.0)  # refined between 1.0 and 4.0
    assert tried[best_point(tried)].lr == pytest.approx(1.0)
