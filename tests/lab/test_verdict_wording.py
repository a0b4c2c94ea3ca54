"""The sweep's verdict sentences read correctly whichever way the numbers go (no training)."""

from sgdlab.lab.recommend import decomposition_sentence, recommend
from sgdlab.lab.scaling_fit import (fell_or_rose, fit_steps_scaling, power_of_b,
                                    scaling_sentence)


def _row(b, t, steps, seeds=1):
    return {"batch_size": b, "lr": 0.1, "time_median": t, "time_low": t * 0.9,
            "time_high": t * 1.2, "steps_median": steps, "final_median": 0.95,
            "reached": seeds, "seeds": seeds}


def _scaling(batch_sizes, steps):
    return scaling_sentence(fit_steps_scaling(batch_sizes, steps), batch_sizes, steps)


def _deco(b, steps, probe, ratio=1.0):
    return {"batch_size": b, "steps": steps, "probe_step_seconds": probe, "ratio": ratio}


def test_runner_up_with_one_seed_reads_as_its_own_clause():
    text = recommend([_row(8, 0.02, 200), _row(16, 0.03, 120)], target=0.9).sentences[1]
    assert ("took 30 ms (1.50x as long); with one seed per batch size, no test can tell "
            "whether the difference is more than timing noise (use --seeds 3).") in text
    assert "it with" not in text


def test_runner_up_with_seeds_names_the_bootstrap():
    rows = [_row(8, 0.02, 200, seeds=3), _row(16, 0.03, 120, seeds=3)]
    times = {8: [0.019, 0.02, 0.021], 16: [0.029, 0.03, 0.031]}
    text = recommend(rows, target=0.9, seeds=3, times_by_batch=times).sentences[1]
    assert "(1.50x as long); it was slower in 100% of bootstrap resamples" in text


def test_fell_or_rose_and_the_exponent_carry_one_sign():
    assert fell_or_rose(4.0) == "fell 4x"
    assert fell_or_rose(233 / 242) == "rose 1.04x"
    assert fell_or_rose(1.0) == "stayed the same"
    assert power_of_b(-0.5) == "B^-0.5"
    assert power_of_b(0.027) == "B^0.027"
    assert power_of_b(-0.0) == "B^0"


def test_steps_that_rose_from_the_smallest_batch_are_said_to_rise():
    two = _scaling([8, 16], [15, 16])
    assert "did not fall with the batch size" in two and "they rose 1.07x for 2x" in two
    three = _scaling([1, 2, 4], [233, 242, 250])
    assert "they rose 1.04x" in three and "(at best they went as B^0.047)" in three
    for text in (two, three):
        assert "--" not in text and "fell 0." not in text and "fell only 0." not in text


def test_steps_that_fell_keep_the_falling_wording():
    text = _scaling([1, 2, 4], [100, 80, 75])
    assert "fell less than in proportion" in text and "they fell 1.25x for 2x" in text
    assert "at best as B^-0.32 between neighbouring batch sizes" in text
    later = _scaling([1, 4, 16, 64], [1000, 260, 80, 60])
    assert "up to 16 and flatten beyond: from 16 to 64 they fell only 1.33x" in later


def test_steps_that_rose_beyond_a_falling_stretch_are_said_to_rise():
    text = _scaling([1, 4, 16, 64], [1000, 260, 80, 85])
    assert "up to 16 and stop falling beyond: from 16 to 64 they rose 1.06x for 4x" in text
    assert "fell only 0." not in text and "flatten" not in text


def test_decomposition_says_the_steps_rose():
    text = decomposition_sentence([_deco(8, 233, 1e-3), _deco(64, 242, 2e-3)])
    assert "the steps rose 1.04x while one step cost 2x as much" in text
    assert "fell 0." not in text and text.endswith("probe and runs agree.")


def test_a_much_cheaper_step_at_a_larger_batch_is_called_a_probe_artifact():
    text = decomposition_sentence([_deco(8, 400, 1e-3), _deco(64, 100, 6.47e-6)])
    assert "the steps fell 4x while the throughput probe found one step cheaper, at " \
           "0.00647x the cost" in text
    assert "155x cheaper at batch size 64 than at 8" in text
    assert "treat the probe as unreliable" in text
    assert "agree" not in text and "x as much" not in text


def test_an_artifact_between_inner_batch_sizes_also_withholds_agreement():
    pts = [_deco(8, 400, 1e-3), _deco(16, 200, 1e-2), _deco(64, 100, 2e-3)]
    text = decomposition_sentence(pts)
    assert "5x cheaper at batch size 64 than at 16" in text and "agree" not in text


def test_a_slightly_cheaper_step_is_reported_without_calling_it_an_artifact():
    text = decomposition_sentence([_deco(8, 400, 1e-3), _deco(64, 100, 0.8e-3)])
    assert "found one step cheaper, at 0.8x the cost" in text
    assert "unreliable" not in text and text.endswith("probe and runs agree.")
