"""``run_sweep(..., SweepConfig(batch_warmup=True))`` end to end on the digits: the curve, the
schedule and its verdict in the sweep's result, its JSON and its sentences; branches that
reuse the sweep's compiled programs; and where the warmup cannot run, one message each."""

import json
import math

import pytest

from sgdlab.engine import TrainConfig, cache
from sgdlab.errors import ConfigError
from sgdlab.lab.sweep import SweepConfig, run_sweep
from sgdlab.lab.sweep_config import CHECKPOINT_EIGHTHS
from sgdlab.lab.sweep_warmup import agreement_sentence, check_warmup
from sgdlab.lab.warmup_records import VERDICTS, WarmupResult

SIZES = (8, 16, 32, 64)


@pytest.fixture(scope="module")
def warmup_sweep(digits_ds, tmp_path_factory):
    out = tmp_path_factory.mktemp("warmup")
    cache.clear()
    sweep = SweepConfig(batch_sizes=SIZES, seeds=3, target=0.95, probe=False, noise=False,
                        timing_rounds=1, confirm=False, batch_warmup=True)
    return run_sweep(digits_ds, sweep, TrainConfig(model="softmax"), out=out), out


def test_the_warmup_is_measured_after_the_sweep_and_stored(warmup_sweep):
    result, out = warmup_sweep
    w = result.warmup
    assert w is not None and w.curve.measured and w.verdict in VERDICTS
    assert w.curve.reference_batch == min(b.batch_size for b in result.batches
                                          if math.isfinite(b.steps_median))
    assert len(w.curve.points) == len(CHECKPOINT_EIGHTHS)
    assert [s.batch_size for s in w.curve.ladder] == [b for b in SIZES
                                                      if b >= w.curve.reference_batch]
    assert all(s.tuned for s in w.curve.ladder)
    # every branch is a swept batch size at its tuned lr: no training program compiled
    assert w.compilations["branches"] == 0
    assert w.sweep_seconds > 0 and w.wall_seconds > 0
    stored = json.loads((out / "sweep.json").read_text())["warmup"]
    assert WarmupResult.from_dict(stored).to_dict() == WarmupResult.from_dict(
        json.loads(json.dumps(w.to_dict()))).to_dict()
    assert set(w.sentences) <= set(result.recommendation.sentences)
    assert w.agreement.startswith("The critical batch size measured by branching")


def test_a_resumed_sweep_reuses_the_stored_curve(warmup_sweep, digits_ds):
    result, out = warmup_sweep
    assert (out / "warmup_curve.json").is_file()
    again = run_sweep(digits_ds, SweepConfig(**{k: v for k, v in result.sweep.items()
                                                if k != "lr_mode"}),
                      TrainConfig(model="softmax"), out=out)
    assert again.warmup.curve == result.warmup.curve
    assert again.warmup.compilations["branches"] == 0


def test_the_next_command_runs_what_was_recommended(warmup_sweep):
    result, _ = warmup_sweep
    w = result.warmup
    if w.verdict == "faster":
        assert result.command == w.command and "--batch-schedule" in w.command
    else:
        assert w.command is None and "--batch-schedule" not in (result.command or "")
    # Whether the curve rises enough for a schedule depends on the learning rates the
    # searches kept, whose step caps follow the measured step times (no probe here): both
    # outcomes are checked (the comparison itself: test_warmup_schedule).
    if w.schedule is None:
        assert w.verdict == "not run" and w.sentences[0].startswith("No batch-size warmup")
        return
    # batch sizes only grow, from B0 on, each phase at its batch size's tuned rate (the
    # first phase need not be B0: the critical batch size at the start may be larger)
    from sgdlab.engine.batch_schedule import BatchSchedule
    tuned = {b.batch_size: b.lr for b in result.batches}
    phases = BatchSchedule.parse(w.schedule.schedule).phases
    sizes = [p.batch_size for p in phases]
    assert sizes == sorted(set(sizes)) and sizes[0] >= w.curve.reference_batch
    assert [p.lr for p in phases] == [tuned[b] for b in sizes]
    assert phases[0].start == 0 and \
        {p.start for p in phases[1:]} <= {q.examples for q in w.curve.points}
    assert len(w.schedule.seeds) == len(w.fixed.seeds) == 6  # the sweep's + fresh
    assert w.fixed.batch_size == result.recommendation.batch_size
    # the first phase runs the sweep's program of its batch size; each later one compiles one
    phases = w.schedule.schedule.count(",") + 1
    assert w.compilations["schedule"] == phases - 1


def test_the_cost_line_reports_both_wall_times(warmup_sweep):
    from sgdlab.cli.sweep_display import cost_line
    line = cost_line(warmup_sweep[0])
    assert "the batch-size warmup took" in line and "beside the fixed-batch sweep's" in line


def test_the_report_charts_the_curve(warmup_sweep, tmp_path):
    from sgdlab.report.sweep import write_sweep_report
    paths = write_sweep_report(warmup_sweep[0], tmp_path)
    html = paths["report.html"].read_text()
    assert paths["batch_warmup.png"].stat().st_size > 1000
    assert "Batch size over training" in html and "critical batch size (median)" in html


@pytest.mark.parametrize("sizes, base, executor, match", [
    ((32,), TrainConfig(), None, "branches from a small batch size into larger ones"),
    ((16, 64), TrainConfig(schedule="cosine"), None, "constant learning rate per phase"),
    ((16, 64), TrainConfig(), object(), "not on --workers"),
])
def test_where_the_warmup_cannot_run_it_says_so(sizes, base, executor, match):
    with pytest.raises(ConfigError, match=match):
        check_warmup(sizes, base, executor)


def test_a_sweep_of_one_batch_size_refuses_the_warmup_before_any_run(digits_ds):
    with pytest.raises(ConfigError, match="the sweep has one batch size"):
        run_sweep(digits_ds, SweepConfig(batch_sizes=(32,), batch_warmup=True))


def test_no_curve_means_no_agreement_sentence():
    from sgdlab.lab.warmup_records import WarmupCurve
    assert agreement_sentence(WarmupCurve(8, 0.1, 5.0, (0,), 0, 0.05, reason="x"), None,
                              None) == ""


def test_the_recommended_command_trains_long_enough_to_reach_every_phase():
    from sgdlab.engine.batch_schedule import BatchSchedule
    from sgdlab.lab.sweep_warmup import command_config
    schedule = BatchSchedule.parse("16@0.1:0,64@0.4:5000")
    assert command_config(TrainConfig(epochs=10), schedule, 1000).epochs == 10
    late = command_config(TrainConfig(epochs=2), schedule, 1000)
    assert late.epochs == 10 and late.batch_schedule == schedule.text
