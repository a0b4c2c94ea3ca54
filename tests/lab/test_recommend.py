"""The verdict: every sentence checked against the crafted table it describes (no training)."""

import math
import re

import pytest

from sgdlab.lab.confirm import confirmation_sentence
from sgdlab.lab.measure import crossing, final_metric
from sgdlab.lab.recommend import decomposition_sentence, recommend, sizes_text
from sgdlab.lab.scaling_fit import (fell_or_rose, fit_steps_scaling, power_of_b,
                                    scaling_exponents, scaling_sentence)
from sgdlab.lab.summary import Confirmation, NoiseResult
from sweep_rows import batch_row


def _ms(text):
    return [float(x) for x in re.findall(r"([0-9.]+) ms", text)]


def test_a_clear_winner_leads_with_its_lead_over_the_runner_up():
    rows = [batch_row(64, 0.03, 100), batch_row(8, 0.05, 400), batch_row(16, 0.02, 250),
            batch_row(256, math.inf, math.inf, reached=0, cap=90, cap_reason="behind")]
    rec = recommend(rows, target=0.9, seeds=3)
    assert (rec.batch_size, rec.seconds) == (16, 0.02)
    head = rec.headline
    assert head.startswith("Take batch size 16 at learning rate 0.1, 20 ms:")
    assert "runner-up, batch size 64, took 30 ms (1.50x as long)" in head
    assert "slower in 100% of bootstrap resamples" in head
    # the pick sentence reads the table's own numbers
    assert "median 20 ms" in rec.sentences[1] and "range 18 ms to 22 ms" in rec.sentences[1]
    assert "in 250 steps; 3 of 3 reached" in rec.sentences[1]


def test_a_tie_comes_first_with_the_tables_range_and_the_rule():
    rows = [batch_row(32, 0.0125, 200), batch_row(64, 0.0100, 100),
            batch_row(128, 0.0103, 60), batch_row(256, 0.0104, 40),
            batch_row(512, 0.03, 30)]
    rec = recommend(rows, target=0.94, seeds=3)
    head = rec.headline
    tied = [r for r in rows if r.batch_size in rec.tied]
    assert head.startswith(f"Batch sizes {sizes_text(rec.tied, [r.batch_size for r in rows])}"
                           " all reach validation accuracy 0.94 within the noise")
    lo, hi = _ms(head)[:2]
    assert lo == pytest.approx(min(r.time_median for r in tied) * 1000, rel=1e-2)
    assert hi == pytest.approx(max(r.time_median for r in tied) * 1000, rel=1e-2)
    # within 10 % of the fastest (64): 128 and 256; the fewest steps of them is 256
    assert rec.batch_size == 256 and rec.decision.near == (64, 128, 256)
    assert "take batch size 256" in head and "the fewest steps (40)" in head
    assert "Batch size 64 had the lowest median, 10 ms, 1.04x faster" in rec.sentences[1]


def test_a_tie_measured_with_extra_seeds_says_how_many_each_had():
    """After the confirmation's extra seeds the tied rows have 6 seeds, the others 3: the
    headline gives the range, not the sweep's own count."""
    rows = [batch_row(32, 0.02, 200), batch_row(64, 0.0100, 100, seeds=6),
            batch_row(128, 0.0102, 60, seeds=6)]
    rec = recommend(rows, target=0.94, seeds=3)
    assert rec.tied == (64, 128)
    assert "medians over 6 seeds" in rec.headline
    rows[0] = batch_row(32, 0.0101, 200)
    rec = recommend(rows, target=0.94, seeds=3)
    assert 32 in rec.tied and "medians over 3 to 6 seeds" in rec.headline


def test_with_fewer_than_three_seeds_no_significance_is_claimed():
    rows = [batch_row(8, 0.02, 200, seeds=1), batch_row(16, 0.0205, 120, seeds=1),
            batch_row(64, 0.05, 50, seeds=1)]
    rec = recommend(rows, target=0.9, seeds=1)
    assert "within 10% of each other" in rec.headline
    assert "no test can tell a difference from timing noise; use --seeds 3" in rec.headline
    assert "bootstrap" not in " ".join(rec.sentences)
    alone = recommend([batch_row(8, 0.02, 200, seeds=1), batch_row(64, 0.05, 50, seeds=1)],
                      target=0.9, seeds=1)
    assert "runner-up, batch size 64" in alone.headline and "bootstrap" not in alone.headline


def test_misses_say_why_and_name_the_budget_that_would_finish_them():
    rows = [batch_row(16, 0.02, 250),
            batch_row(1, math.inf, math.inf, reached=0, cap=400, cap_reason="behind",
                      search_end="behind"),
            batch_row(1024, math.inf, math.inf, reached=0, cap=12, cap_reason="budget")]
    text = " ".join(recommend(rows, target=0.9, seeds=3, budget="5 epochs").sentences)
    assert "Batch size 1 was stopped at 3x the best time so far without reaching the " \
           "target: it is more than 3x slower than the pick" in text
    assert "Batch size 1024 used up the per-run budget of 5 epochs (12 steps at 1024) " \
           "before the median seed reached the target, so whether it is slower is not " \
           "known: e.g. --budget '20 epochs' would let it finish" in text
    auto = " ".join(recommend(rows, target=0.9, seeds=3).sentences)
    assert "the cap of a batch size's first runs" in auto and "--budget '80 epochs'" in auto


def test_nothing_reached_says_so_and_what_to_change():
    rows = [batch_row(8, math.inf, math.inf, reached=0, final=0.8, cap=50,
                      cap_reason="budget"),
            batch_row(64, math.inf, math.inf, reached=0, final=0.85, cap=50,
                      cap_reason="budget")]
    rec = recommend(rows, target=0.99, seeds=3, budget="50 steps")
    assert rec.batch_size is None and math.isinf(rec.seconds)
    assert rec.headline.startswith("No batch size reached validation accuracy 0.99")
    assert "best final value, 0.85, was at batch size 64" in rec.headline
    assert "--budget; e.g. --budget '200 steps'" in rec.headline


def test_overhead_dominated_times_are_said_to_be():
    rows = [batch_row(8, 4e-4, 40, calls=1, call_seconds=2e-4),
            batch_row(64, 3e-4, 12, calls=1, call_seconds=2e-4)]
    text = decomposition_sentence(rows, pick=64)
    assert "only 1.5x the fixed cost of one compiled call (0.2 ms)" in text
    assert "dominated by that overhead" in text and "(1 here)" in text
    cheap = decomposition_sentence([batch_row(8, 0.4, 400, call_seconds=1e-4),
                                    batch_row(64, 0.3, 100, call_seconds=1e-4)], pick=64)
    assert "dominated" not in cheap


def test_decomposition_says_the_steps_rose_and_when_probe_and_replays_agree():
    rows = [batch_row(8, 0.233, 233, call_seconds=0.0), batch_row(64, 0.484, 242,
                                                                  call_seconds=0.0)]
    text = decomposition_sentence(rows)
    assert "the steps rose 1.04x while one step cost 2x as much" in text
    assert "fell 0." not in text and text.endswith("probe and replays agree.")


def test_a_much_cheaper_step_at_a_larger_batch_is_called_a_probe_artifact():
    rows = [batch_row(8, 0.4, 400, step_seconds=1e-3), batch_row(64, 0.1, 100,
                                                                 step_seconds=6.47e-6)]
    text = decomposition_sentence(rows)
    assert "155x cheaper at batch size 64 than at 8" in text
    assert "treat the probe as unreliable" in text and "agree" not in text


def test_fell_or_rose_and_the_exponent_carry_one_sign():
    assert fell_or_rose(4.0) == "fell 4x"
    assert fell_or_rose(233 / 242) == "rose 1.04x"
    assert fell_or_rose(1.0) == "stayed the same"
    assert power_of_b(-0.5) == "B^-0.5" and power_of_b(0.027) == "B^0.027"
    assert power_of_b(-0.0) == "B^0"


def _scaling(batch_sizes, steps):
    return scaling_sentence(fit_steps_scaling(batch_sizes, steps), batch_sizes, steps)


def test_steps_that_rose_from_the_smallest_batch_are_said_to_rise():
    two = _scaling([8, 16], [15, 16])
    assert "did not fall with the batch size" in two and "they rose 1.07x for 2x" in two
    three = _scaling([1, 2, 4], [233, 242, 250])
    assert "they rose 1.04x" in three and "(at best they went as B^0.047)" in three


def test_stop_falling_only_when_no_larger_batch_took_fewer_steps():
    text = _scaling([1, 4, 16, 64], [1000, 260, 80, 85])
    assert "up to 16 and stop falling beyond: from 16 to 64 they rose 1.06x for 4x" in text
    # steps rose at 256 but fell again at 512 and 1024: not "stop falling"
    again = _scaling([32, 64, 128, 256, 512, 1024], [400, 200, 100, 110, 60, 50])
    assert "stop falling" not in again and "flatten beyond" in again
    assert "they fell again further out, to 50 at 1024" in again
    later = _scaling([1, 4, 16, 64], [1000, 260, 80, 60])
    assert "up to 16 and flatten beyond: from 16 to 64 they fell only 1.33x" in later
    assert [round(e, 2) for _, _, e in scaling_exponents([1, 4, 16, 64],
                                                         [1000, 260, 80, 60])] == \
        [0.97, 0.85, 0.21]


def test_noise_sentence_compares_with_the_fitted_critical_batch():
    rows = [batch_row(b, 1.0 / b, 50 * (1 + 20 / b)) for b in (1, 2, 4, 8, 16, 32, 64, 128)]
    noise = NoiseResult(batch_size=32, lr=0.1, reached_target=True, b_simple=25.0, low=20.0,
                        high=31.0, grad_sq=1.0, trace_sigma=25.0, draws=8, b_small=1,
                        b_big=128, trace=((0.0, 10.0), (50.0, 30.0)))
    rec = recommend(rows, target=0.9, noise=noise)
    assert rec.scaling.b_crit == pytest.approx(20)
    text = rec.sentences[-1]
    assert "B_simple = 25 (two-batch estimate, 68% interval 20 to 31)" in text
    assert "grew from 10 to 30" in text
    assert "within a factor of 2 of the critical batch size" in text


def test_confirmation_sentences():
    inside = Confirmation(64, 0.5, (1000, 1001, 1002), 3, 0, (0.011, 0.012, 0.013),
                          (40, 42, 44), 0.012, 42, 0.010, 0.014, False)
    text = confirmation_sentence(inside)
    assert "3 of 3 reached, median time to target 12 ms in 42 steps, within the range of " \
           "the sweep's own seeds timed beside them (10 ms to 14 ms)" in text
    outside = Confirmation(64, 0.5, (1000, 1001, 1002), 3, 0, (0.02, 0.021, 0.022),
                           (80, 82, 84), 0.021, 82, 0.010, 0.014, True, (2000, 2001, 2002),
                           (32, 64, 128), 128)
    text = confirmation_sentence(outside)
    assert "outside the range" in text and "ran 3 more seeds for each tied batch size " \
           "(32, 64, 128) and decided again with 6 seeds each: the pick is now batch size " \
           "128" in text


def test_crossing_is_interpolated_between_evaluations():
    h = [{"step": 0, "epoch": 0, "examples": 0, "train_seconds": 0.0, "val_accuracy": 0.5},
         {"step": 10, "epoch": 1, "examples": 100, "train_seconds": 1.0, "val_accuracy": 0.8},
         {"step": 20, "epoch": 2, "examples": 200, "train_seconds": 2.0, "val_accuracy": 0.9}]
    c = crossing(h, 0.85)
    assert c["reached"] and c["step"] == pytest.approx(15)
    assert c["train_seconds"] == pytest.approx(1.5)
    assert not crossing(h, 0.95)["reached"] and final_metric(h) == 0.9
