"""The warmup schedule built from a measured curve, its comparison with the best fixed batch
size (the verdict's rules and sentences against crafted records), and the records' JSON."""

import json
import math

import pytest

from sgdlab.data import split
from sgdlab.engine import TrainConfig
from sgdlab.lab.confirm import CONFIRM_SEED_OFFSET
from sgdlab.lab.runbook import RunBook
from sgdlab.lab.sweep import Replayer, run_config
from sgdlab.lab.sweep_config import SweepConfig
from sgdlab.lab.warmup_records import (Contender, CriticalPoint, LadderStep, WarmupCurve,
                                       WarmupResult)
from sgdlab.lab.warmup_schedule import (compare_with_fixed, doubling_schedule,
                                        steps_for_examples, verdict_of, verdict_sentences,
                                        warmup_schedule)


def _curve(crits, examples=(0, 800, 1600, 3200, 4800)):
    points = tuple(CriticalPoint(i / 8, x // 8, x, 1.0, 0.5, (b,), b, b, b)
                   for i, (b, x) in enumerate(zip(crits, examples)))
    ladder = tuple(LadderStep(b, 0.1, True) for b in (8, 16, 32, 64, 128))
    return WarmupCurve(8, 0.1, 800.0, (0,), 1600, 0.5, ladder, points)


def test_the_schedule_follows_the_curve_rounded_down_and_never_shrinking():
    tuned = {8: 0.1, 16: 0.2, 32: 0.3, 64: 0.4, 128: math.nan}
    s = warmup_schedule(_curve((3, 20, 16, 70, 200)), tuned)
    # 3 -> B0 (never below it); 20 -> 16; 16 (no growth) merges; 70 -> 64; 200 -> 64 (128
    # has no tuned learning rate)
    assert s.text == "8@0.1:0,16@0.2:800,64@0.4:3200"
    assert warmup_schedule(_curve((64, 16, 8, 8, 8)), tuned).text == "64@0.4:0"
    assert warmup_schedule(WarmupCurve(8, 0.1, 5.0, (0,), 0, 0.5, reason="short"), tuned) \
        is None


def test_the_doubling_schedule_doubles_b0_at_every_checkpoint():
    tuned = {8: 0.1, 16: 0.2, 32: 0.3}
    assert doubling_schedule(_curve((8,) * 5), tuned).text == "8@0.1:0,16@0.2:800,32@0.3:1600"


def test_steps_for_examples_walks_the_phases():
    s = warmup_schedule(_curve((8, 16, 16, 64, 64)), {8: 0.1, 16: 0.2, 64: 0.4})
    assert steps_for_examples(s, 800) == 100
    assert steps_for_examples(s, 1000) == 100 + 13          # 200 examples at 16
    assert steps_for_examples(s, 4000) == 100 + 150 + 13     # 2400 at 16, 800 at 64


@pytest.mark.parametrize("schedule, fixed, verdict", [
    ((1.0, 1.1, 1.05, 1.0, 1.02, 1.03), (2.0, 2.1, 2.05, 2.0, 2.2, 2.1), "faster"),
    ((2.0, 2.1, 2.05, 2.0, 2.2, 2.1), (1.0, 1.1, 1.05, 1.0, 1.02, 1.03), "slower"),
    ((1.0, 1.5, 0.8, 1.2, 0.9, 1.4), (1.1, 1.3, 0.9, 1.0, 1.4, 1.2), "tied"),
    ((1.0, 1.01, 1.0, 0.99, 1.0, 1.02), (1.02, 1.03, 1.04, 1.02, 1.03, 1.02), "tied"),  # < 10%
    ((1.0, 1.1), (2.0, 2.1), "tied"),                       # too few seeds for a test
    ((math.inf,) * 3, (1.0, 1.1, 1.2), "slower"),
])
def test_the_verdict_follows_the_sweeps_tie_rules(schedule, fixed, verdict):
    assert verdict_of(schedule, fixed) == verdict


def _contender(label, times, schedule=""):
    n = len(times)
    return Contender(label, schedule, 16, 0.2, tuple(range(n)), (300.0,) * n,
                     (9000.0,) * n, tuple(times))


def test_the_verdict_sentences_say_what_was_measured_and_by_how_much():
    sched = _contender("warmup schedule", (1.0,) * 6, "16@0.2:0,64@0.4:2000")
    fixed = _contender("batch size 64", (2.0,) * 6)
    first, fresh = verdict_sentences("faster", sched, fixed)
    assert first.startswith("Recommended instead: the batch-size warmup 16@0.2:0,64@0.4:2000")
    assert "50% less time" in first and "beyond the noise" in first
    assert "steps to the target 300 against 300" in first and "examples 9,000" in first
    assert fresh.startswith("With the fresh seeds alone: 1 s against 2 s")
    lost = verdict_sentences("slower", fixed, sched)[0]
    assert lost.startswith("Not recommended") and "100% more time" in lost and "lost" in lost
    missed = verdict_sentences("slower", _contender("warmup schedule", (math.inf,) * 6,
                                                    "16@0.2:0,64@0.4:2000"), fixed)[0]
    assert "warmup 16@0.2:0,64@0.4:2000 missed the target (median of 6 seeds" in missed
    assert "in never" not in missed and "no comparable time" in missed
    tie = verdict_sentences("tied", sched, fixed)[0]
    assert "within the noise of each other (a tie)" in tie
    assert verdict_sentences("not run", None, None, "nothing rose") == (
        "No batch-size warmup was measured: nothing rose.",)


def test_a_schedule_is_compared_with_the_fixed_batch_size_on_the_same_seeds(digits_ds):
    parts = split(digits_ds, validation=0.2, test=0.0, seed=0)
    book = RunBook(parts.train, parts.validation, fingerprint="digits")
    sweep, base = SweepConfig(), TrainConfig(model="softmax")
    n, target = parts.train.n, 0.9

    def config_for(b, lr, seed, steps, tgt=None, expected=None):
        return run_config(sweep, base, n, b, lr, seed, tgt, steps, expected)

    schedule = warmup_schedule(_curve((16, 64, 64, 64, 64), (0, 320, 640, 1280, 1920)),
                               {16: 0.2, 64: 0.8})
    assert schedule.text == "16@0.2:0,64@0.8:320"

    def schedule_config(seed, steps, evaluated):
        cfg = config_for(16, 0.2, seed, steps or 400, target if evaluated else None, 60)
        cfg = cfg.replace(batch_schedule=schedule.text, chunk_steps=None)
        return cfg if evaluated else cfg.replace(eval_every="end")

    def fixed_config(seed, steps, evaluated):
        cfg = config_for(64, 0.8, seed, steps or 400, target if evaluated else None, 40)
        return cfg if evaluated else cfg.replace(eval_every="end")

    sched, fixed = compare_with_fixed(
        book, schedule=schedule, fixed_batch=64, fixed_lr=0.8, seeds=[0], target=target,
        metric="val_accuracy", schedule_config=schedule_config, fixed_config=fixed_config,
        replay=Replayer(book, config_for), rounds=1, order_seed=0)
    assert sched.seeds == fixed.seeds == (0, CONFIRM_SEED_OFFSET)
    assert sched.schedule == schedule.text and fixed.schedule == ""
    for c in (sched, fixed):
        assert all(math.isfinite(k) and k > 0 for k in c.steps), c
        assert all(math.isfinite(t) and t > 0 for t in c.times), c  # every replay retraced
    # the schedule's 20 steps at 16 come before its phase at 64: its examples to the target
    # count both (16 per step, then 64 per step)
    for k, x in zip(sched.steps, sched.examples):
        assert x <= 320 + (k - 20) * 64 and x > 320
    for k, x in zip(fixed.steps, fixed.examples):
        assert x <= k * 64


def test_the_warmup_result_reads_back_from_its_json():
    curve = _curve((8, 16, 16, 64, 64))
    result = WarmupResult(curve, _contender("warmup schedule", (1.0, math.inf), "8@0.1:0"),
                          _contender("batch size 64", (2.0, 2.5)), "tied", ("a", "b"),
                          "agree", 3.0, 30.0, {"branches": 0, "schedule": 2}, None)
    back = WarmupResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert back == result
    bad = result.to_dict()
    bad["verdict"] = "maybe"
    with pytest.raises(ValueError, match="unknown verdict"):
        WarmupResult.from_dict(bad)


@pytest.mark.parametrize("field, value", [("budget_examples", math.inf),
                                          ("budget_examples", 2.5),
                                          ("reference_batch", "8")])
def test_a_stored_curve_with_a_count_of_another_shape_is_computed_again(tmp_path, field,
                                                                        value):
    from sgdlab.lab.records import stored_result
    curve = _curve((8, 16, 16, 64, 64))
    bad = curve.to_dict()
    bad[field] = value
    with pytest.raises(ValueError, match="expected a whole number"):
        WarmupCurve.from_dict(bad)
    # a damaged warmup_curve.json of a resumed sweep is measured again, not a traceback
    (tmp_path / "warmup_curve.json").write_text(json.dumps({"key": {"k": 1}, "value": bad}))
    again = stored_result(tmp_path, "warmup_curve.json", {"k": 1}, curve.to_dict,
                          WarmupCurve.from_dict)
    assert again == curve


def test_a_replay_that_stops_before_the_last_phases_drops_them():
    """A seed may reach the target before the schedule's later phases start; its replay for
    exactly those steps keeps the phases that start: 1,000 examples at 16 a step is step 63;
    5,000 is step 189 (69 steps of 32 to the end of the first epoch of 3,200 rows, the last
    one partial, then 57)."""
    from sgdlab.engine import TrainConfig
    from sgdlab.lab.warmup_schedule import without_unstarted_phases
    cfg = TrainConfig(batch_size=16, batch_schedule="16@0.1:0,32@0.2:1000,64@0.3:5000",
                      lr=0.1)
    assert [without_unstarted_phases(cfg, steps, 3200).batch_schedule
            for steps in (63, 64, 189, 190)] == [
        "16@0.1:0", "16@0.1:0,32@0.2:1000", "16@0.1:0,32@0.2:1000",
        "16@0.1:0,32@0.2:1000,64@0.3:5000"]
