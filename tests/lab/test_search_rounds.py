"""The searches of every batch size in rounds, on a made-up world (a fake run book: no
training): the first batch size alone first, caps fixed before a round runs, slow batch sizes
stopped, the optimum of every contender found, the same records whatever order a round's runs
take."""

import math

import pytest

from sgdlab.engine.config import TrainConfig
from sgdlab.engine.history import History
from sgdlab.lab.caps import BEHIND, StepCost
from sgdlab.lab.lr_search import RESOLUTION, LrSearch
from sgdlab.lab.records import RunRecord
from sgdlab.lab.search_rounds import SearchRounds

SIZES = (4, 32, 256)
#: the made-up world: per batch size, the best lr and the steps to target there
BEST_LR = {4: 0.02, 32: 0.15, 256: 0.9}
BEST_STEPS = {4: 2000, 32: 300, 256: 80}
EDGE = 3.0      # every seed diverges above this lr
COST = {4: StepCost(4, 1e-5, 0.0, 64), 32: StepCost(32, 2e-5, 0.0, 64),
        256: StepCost(256, 7e-5, 0.0, 64)}


def true_steps(b, lr, seed):
    return round(BEST_STEPS[b] * (1 + math.log2(lr / BEST_LR[b]) ** 2) * (1 + 0.02 * seed))


class FakeBook:
    """``run_all`` as the sweep's :class:`~sgdlab.lab.runbook.RunBook` answers it, from
    :func:`true_steps`; ``reverse`` runs each round's requests backwards."""

    def __init__(self, reverse=False):
        self.reverse, self.records, self.rounds = reverse, [], []

    def run_all(self, requests):
        self.rounds.append(list(requests))
        order = list(reversed(requests)) if self.reverse else list(requests)
        done = {id(r): self.run(r) for r in order}
        return [done[id(r)] for r in requests]

    def run(self, req):
        cfg = req.config
        b, lr, seed, cap = cfg.batch_size, cfg.lr, cfg.seed, cfg.max_steps
        rows = [{"step": 0, "epoch": 0.0, "examples": 0, "train_seconds": 0.0,
                 "val_accuracy": 0.1}]
        if lr > EDGE:
            status, steps = "diverged", 3
            rows.append({"step": 3, "epoch": 0.0, "examples": 3 * b, "train_seconds": 0.0,
                         "val_accuracy": math.nan})
        else:
            need = true_steps(b, lr, seed)
            steps = min(need, cap)
            status = "target_reached" if need <= cap else "completed"
            rows.append({"step": steps, "epoch": 0.0, "examples": steps * b,
                         "train_seconds": steps * COST[b].step_seconds,
                         "val_accuracy": 0.95 if need <= cap else 0.5})
        rec = RunRecord(req.key, b, lr, seed, req.phase, "data", cfg.to_dict(), status,
                        {"steps": steps, "train_seconds": steps * COST[b].step_seconds},
                        History(rows), req.lr_multiplier, req.x, req.cap_reason)
        self.records.append(rec)
        return rec


def rounds_of(book, costs=COST):
    def config_for(b, lr, seed, cap, expected):
        return TrainConfig(batch_size=b, lr=lr, seed=seed, max_steps=cap, target=0.9)

    r = SearchRounds(book, SIZES, seeds=[0, 1, 2], target=0.9, config_for=config_for,
                     make_search=lambda b: LrSearch(0.1 * math.sqrt(b / 32)), costs=costs,
                     budget={}, steps_per_epoch={b: 1000 // b for b in SIZES}, first_batch=32,
                     lr_multiplier=lambda b, lr: lr)
    return r, r.run()


def test_the_first_batch_size_runs_alone_first_then_every_one():
    book = FakeBook()
    rounds_of(book)
    first = book.rounds[0]
    assert [(r.config.batch_size, r.config.seed) for r in first] == [(32, 0)]
    assert first[0].cap_reason == "budget"                # nothing had reached yet
    second = book.rounds[1]
    assert {r.config.batch_size for r in second} == set(SIZES)
    # the centre's first seed reached: its other seeds now, the other sizes' first seeds
    assert sorted(r.config.seed for r in second if r.config.batch_size == 32) == [1, 2]
    assert {r.config.seed for r in second if r.config.batch_size != 32} == {0}


def test_a_point_whose_first_seed_fails_costs_one_run():
    book = FakeBook()
    r, searches = rounds_of(book)
    runs: dict = {}
    for rec in book.records:
        runs.setdefault((rec.batch_size, rec.lr), []).append(rec)
    for (b, lr), recs in runs.items():
        first = recs[0]
        failed = first.status == "diverged" or first.status != "target_reached"
        assert len(recs) == (1 if failed else 3), (b, lr, [x.status for x in recs])
        o = next(o for o in searches[b].tried.values() if o.lr == lr)
        assert o.seeds == len(recs)
    assert any(len(v) == 1 for v in runs.values()) and any(len(v) == 3 for v in runs.values())


def test_contenders_find_their_optimum_to_the_resolution():
    book = FakeBook()
    r, searches = rounds_of(book)
    for b in (32, 256):
        kept = searches[b].lr(searches[b].best())
        assert abs(math.log(kept / BEST_LR[b])) <= math.log(RESOLUTION) / 2 + 1e-9, b


def test_a_batch_size_far_behind_is_stopped_and_its_runs_capped():
    book = FakeBook()
    r, searches = rounds_of(book)
    # batch 4: 2000 steps at 1e-5 s = 20 ms against 80 x 7e-5 = 5.6 ms at batch 256
    assert searches[4].stopped == "behind"
    assert len(searches[4].tried) < len(searches[256].tried)
    best = r.best_seconds()
    assert best == pytest.approx(COST[256].seconds(BEST_STEPS[256]), rel=0.05)
    late = [rec for rec in book.records if rec.batch_size == 4 and rec.cap_reason == "behind"]
    assert late and all(rec.cap <= max(COST[4].steps_within(BEHIND * 0.02), 2 * 2000)
                        for rec in late)


def test_a_rounds_order_does_not_change_the_records():
    a, b = FakeBook(), FakeBook(reverse=True)
    rounds_of(a)
    rounds_of(b)
    key = lambda rec: (rec.key, rec.cap, rec.status, len(rec.history))  # noqa: E731
    assert sorted(map(key, a.records)) == sorted(map(key, b.records))
    assert [len(x) for x in a.rounds] == [len(x) for x in b.rounds]


def test_without_a_probe_each_batch_size_costs_its_own_runs():
    book = FakeBook()
    r, searches = rounds_of(book, costs={})
    assert set(r.costs) == set(SIZES)
    assert r.costs[32].step_seconds == pytest.approx(COST[32].step_seconds)
    assert searches[256].lr(searches[256].best()) == pytest.approx(BEST_LR[256], rel=0.2)


def test_steps_known_before_the_rounds_set_how_often_the_first_runs_evaluate():
    """The pilot's steps to the target (at the first batch size) give every run an expected
    number of steps, scaled to the same examples, until a point of a search reaches the
    target; without them the first runs have none. The runs and records are the same."""
    def run(known):
        book, seen = FakeBook(), []

        def config_for(b, lr, seed, cap, expected):
            seen.append((len(book.rounds), b, expected))
            return TrainConfig(batch_size=b, lr=lr, seed=seed, max_steps=cap, target=0.9)

        rounds = SearchRounds(book, SIZES, seeds=[0, 1, 2], target=0.9, config_for=config_for,
                              make_search=lambda b: LrSearch(0.1 * math.sqrt(b / 32)),
                              costs=COST, budget={}, first_batch=32,
                              steps_per_epoch={b: 1000 // b for b in SIZES},
                              lr_multiplier=lambda b, lr: lr, known_steps=known)
        rounds.run()
        return seen, [(r.batch_size, r.lr, r.seed, r.status) for r in book.records]

    without, records = run(None)
    with_pilot, same_records = run({32: 320})
    assert same_records == records
    assert [e for _, _, e in without[:1]] == [None]
    first_round = [(b, e) for rnd, b, e in with_pilot if rnd == 0]
    assert first_round == [(32, 320)]
    second = {b: e for rnd, b, e in with_pilot if rnd == 1}  # (32 runs its other seeds)
    assert second == {4: 320 * 32 / 4, 256: 320 * 32 / 256}
    # once a point of a search reached the target, its own steps take over
    later = [(b, e) for rnd, b, e in with_pilot if rnd >= 3 and b == 32]
    assert later and all(e != 320 for _, e in later)
