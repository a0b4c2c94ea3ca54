"""Recommendation and target crossing on hand-made numbers (no training)."""

import math

import pytest

from sgdlab.lab.measure import crossing, final_metric
from sgdlab.lab.recommend import recommend
from sgdlab.lab.scaling_fit import scaling_exponents


def _row(b, t, steps, final=0.95):
    return {"batch_size": b, "lr": 0.1, "time_median": t, "time_low": t * 0.9,
            "time_high": t * 1.2, "steps_median": steps, "final_median": final}


def test_recommends_the_lowest_median_time_whatever_the_order():
    rows = [_row(64, 0.03, 100), _row(8, 0.05, 400), _row(16, 0.02, 250), _row(256, math.inf,
                                                                             math.inf)]
    rec = recommend(rows, target=0.9, seeds=3)
    assert (rec.batch_size, rec.seconds) == (16, 0.02)
    assert "Batch size 16" in rec.sentences[0] and "20 ms" in rec.sentences[0]
    assert "runner-up, batch size 64" in rec.sentences[1] and "1.50x" in rec.sentences[1]
    assert "1 of 4 batch sizes did not reach" in rec.sentences[1]


def test_scaling_sentence_names_where_steps_flatten():
    rows = [_row(1, 1.0, 1000), _row(4, 0.5, 260), _row(16, 0.3, 80), _row(64, 0.4, 60)]
    rec = recommend(rows, target=0.9)
    assert "up to 16 and flatten beyond" in rec.sentences[2]
    ex = scaling_exponents([1, 4, 16, 64], [1000, 260, 80, 60])
    assert [round(e, 2) for _, _, e in ex] == [0.97, 0.85, 0.21]


def test_noise_sentence_compares_with_the_fitted_critical_batch():
    rows = [_row(b, 1.0 / b, 50 * (1 + 20 / b)) for b in (1, 2, 4, 8, 16, 32, 64, 128)]
    noise = {"b_simple": 25.0, "low": 20.0, "high": 31.0}
    rec = recommend(rows, target=0.9, noise=noise)
    assert rec.scaling["b_crit"] == pytest.approx(20)
    assert "within a factor of 2 of the critical batch size" in rec.sentences[3]


def test_nothing_reached_says_how_to_fix():
    rec = recommend([_row(8, math.inf, math.inf, 0.7), _row(32, math.inf, math.inf, 0.8)],
                    target=0.99, seeds=2)
    assert rec.batch_size is None
    assert "--target-accuracy" in rec.sentences[0] and "batch size 32" in rec.sentences[0]


def test_crossing_is_interpolated_between_evaluations():
    h = [{"step": 0, "epoch": 0.0, "examples": 0, "train_seconds": 0.0, "val_accuracy": 0.1},
         {"step": 10, "epoch": 1.0, "examples": 320, "train_seconds": 1.0, "val_accuracy": 0.5},
         {"step": 20, "epoch": 2.0, "examples": 640, "train_seconds": 3.0, "val_accuracy": 0.9}]
    c = crossing(h, 0.7)
    assert c["reached"] and c["step"] == pytest.approx(15)
    assert c["train_seconds"] == pytest.approx(2.0)
    assert c["examples"] == pytest.approx(480) and c["epoch"] == pytest.approx(1.5)
    assert crossing(h, 0.05)["step"] == 0
    miss = crossing(h, 0.95)
    assert not miss["reached"] and math.isinf(miss["train_seconds"])
    h.append({"step": 25, "epoch": 2.5, "examples": 800, "train_seconds": 3.5,
              "val_accuracy": float("nan")})
    assert final_metric(h) == 0.9


def test_a_target_met_before_any_step_and_a_missing_target_print_no_inf_or_nan():
    from sgdlab.lab.recommend import decomposition_sentence
    rows = [_row(8, 0.0, 0), _row(32, 0.01, 20)]
    rec = recommend(rows, target=0.5, seeds=1)
    text = " ".join(rec.sentences)
    assert "inf" not in text and "nan" not in text and "first evaluation" in text
    deco = [{"batch_size": 8, "steps": 0, "probe_step_seconds": 1e-5},
            {"batch_size": 32, "steps": 20, "probe_step_seconds": 2e-5}]
    assert "could not be decomposed" in decomposition_sentence(deco)
    none = recommend([_row(8, math.inf, math.inf, float("nan"))], target=float("nan"))
    assert "nan" not in " ".join(none.sentences) and "the target" in none.sentences[0]


def test_a_kept_learning_rate_at_the_edge_of_the_search_is_named():
    rows = [dict(_row(8, 0.05, 400), at_edge="highest"), _row(16, 0.02, 250)]
    rec = recommend(rows, target=0.9)
    assert "8 (highest)" in rec.sentences[1] and "--search-points" in rec.sentences[1]
