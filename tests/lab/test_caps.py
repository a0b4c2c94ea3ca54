"""Step caps of sweep runs: the budget in steps, the behind-cap and the cap within a batch size
(no training)."""

import math

import pytest

from sgdlab.errors import ConfigError
from sgdlab.lab.caps import (BEHIND, WITHIN, StepCost, budget_hint, budget_steps,
                             monotone_costs, parse_budget, run_cap)

COST = StepCost(batch_size=64, step_seconds=1e-3, call_seconds=1e-3, chunk_steps=100)


def test_step_cost_predicts_steps_and_calls():
    assert COST.seconds(250) == pytest.approx(0.25 + 3e-3)
    assert COST.seconds(math.inf) == math.inf
    assert COST.steps_within(0.101) == 100            # 1.01 ms a step with the call share
    assert COST.steps_within(0.0) == 1


def test_budgets_in_steps():
    assert budget_steps(parse_budget("5 epochs"), 30, None) == 150
    assert budget_steps(parse_budget("2000 steps"), 30, None) == 2000
    assert budget_steps(parse_budget("1s"), 30, COST) == 990
    assert budget_steps(parse_budget("1s"), 30, None) is None
    assert budget_steps(parse_budget(None), 30, COST) is None


def test_first_runs_are_capped_until_some_batch_size_reached():
    assert run_cap(budget=None, first=600, best_seconds=None, cost=COST, within=None) == \
        (600, "budget")
    assert run_cap(budget=500, first=600, best_seconds=None, cost=COST, within=None) == \
        (500, "budget")


def test_behind_cap_is_a_multiple_of_the_best_time_but_never_below_the_batch_sizes_best():
    steps, why = run_cap(budget=None, first=600, best_seconds=0.02, cost=COST, within=None)
    assert why == "behind" and steps == COST.steps_within(BEHIND * 0.02)
    # This batch size's best needs 80 steps: its next learning rates may take 80, at most
    # WITHIN x 80, even though the behind-cap alone would stop them at 59.
    steps, why = run_cap(budget=None, first=600, best_seconds=0.02, cost=COST, within=80)
    assert steps == 80 and why == "behind"
    steps, _ = run_cap(budget=None, first=600, best_seconds=1.0, cost=COST, within=80)
    assert steps == WITHIN * 80
    assert run_cap(budget=100, first=600, best_seconds=1.0, cost=COST, within=80) == \
        (100, "budget")


@pytest.mark.parametrize("text, match", [
    ("forever", "cannot read budget"), ("1.5 steps", "must be whole"),
    ("0s", "must be a finite time > 0"), ("0 epochs", "must be > 0"), ("-3 steps", "cannot read budget"),
])
def test_bad_budgets_say_what_is_wrong(text, match):
    with pytest.raises(ConfigError, match=match):
        parse_budget(text)


def test_budget_hint_offers_four_times_the_room():
    assert budget_hint(None) == "e.g. --budget '80 epochs'"
    assert budget_hint("5 epochs") == "e.g. --budget '20 epochs'"
    assert budget_hint("100 steps") == "e.g. --budget '400 steps'"
    assert budget_hint("2s") == "e.g. --budget 8s"


def test_a_step_over_more_examples_is_never_cheaper_for_the_caps():
    measured = {16: 1.0, 32: 2.0, 64: 8.0, 128: 2.0, 256: 16.0}   # 128 timed noise
    costs = monotone_costs({b: StepCost(b, t, 0.5, 8) for b, t in measured.items()})
    steps = [costs[b].step_seconds for b in sorted(costs)]
    assert steps == sorted(steps)
    assert costs[16].step_seconds == 1.0 and costs[256].step_seconds == pytest.approx(16.0)
    assert costs[64].step_seconds == pytest.approx(4.0) == costs[128].step_seconds  # pooled
    assert costs[128].call_seconds == 0.5 and costs[128].chunk_steps == 8
    assert monotone_costs({}) == {}
