"""Replays timed in rounds of random order (a fake replay; no training)."""

import math

from sgdlab.lab.timing import CONTENDERS, Replay, contenders, time_replays


def _replays():
    return [Replay(b, 0.1, s, 10) for b in (16, 64, 256) for s in range(3)]


def test_every_replay_runs_every_round_in_a_new_order():
    order = []
    cost = {16: 1.3, 64: 1.0, 256: 1.2}

    def replay(r):
        order.append((r.batch_size, r.seed))
        return cost[r.batch_size], 1

    times = time_replays(_replays(), replay, rounds=3, seed=7)
    rounds = [order[i:i + 9] for i in range(0, 27, 9)]
    assert all(sorted(r) == sorted((b, s) for b in (16, 64, 256) for s in range(3))
               for r in rounds)
    assert rounds[0] != rounds[1] != rounds[2]              # interleaved anew each round
    assert times.rounds == 3 and all(len(s) == 3 for s in times.seconds)
    assert times.by_batch()[64] == [(0, 1.0), (1, 1.0), (2, 1.0)]
    assert times.spread() == 0.0


def test_same_seed_same_order():
    def run(seed):
        order = []
        time_replays(_replays(), lambda r: (order.append(r) or 1.0, 1), rounds=2, seed=seed)
        return order
    assert run(3) == run(3) and run(3) != run(4)


def test_only_contenders_are_repeated():
    cost = {16: 1.0, 64: CONTENDERS * 1.2, 256: 1.1}
    times = time_replays(_replays(), lambda r: (cost[r.batch_size], 1), rounds=3)
    rounds_run = {r.batch_size: len(s) for r, s in zip(times.replays, times.seconds)}
    assert rounds_run == {16: 3, 64: 1, 256: 3}
    assert contenders(_replays(), [[cost[r.batch_size]] for r in _replays()]) == \
        [0, 1, 2, 6, 7, 8]


def test_a_replay_that_failed_is_infinitely_slow():
    times = time_replays([Replay(8, 0.1, 0, 5)], lambda r: (math.inf, 0), rounds=2)
    assert times.time(0) == math.inf and math.isnan(times.spread())
