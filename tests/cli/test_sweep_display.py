"""Terminal output of ``sgdlab sweep``: the summary table (outcomes, divergence, whole step
counts, the tie mark, the next command, never ``nan``/``inf``, never cut when piped) and the
progress bar, whose total the learning-rate search revises as it goes."""

import math
import re

from rich.console import Console

from report.test_sweep_report import COMMAND, _fake_result, _sparse_result
from sgdlab.cli.sweep_display import SweepProgress, outcome, print_sweep_summary

NAN_INF = re.compile(r"\b(nan|inf|infinity)\b", re.IGNORECASE)


def _printed(result, width: int = 200) -> str:
    out = Console(record=True, width=width, color_system=None)
    print_sweep_summary(result, "runs/x/report.html", console=out)
    return out.export_text()


def _row(text: str, batch: str) -> str:
    return next(line for line in text.splitlines() if re.match(rf"\s*{batch}\b", line))


def test_summary_table_outcomes_steps_tie_and_command():
    r = _fake_result()
    text = _printed(r)
    assert not NAN_INF.search(text), NAN_INF.search(text)
    assert "2/3 1 div" in _row(text, "256")          # the divergence shows in the table
    assert "3/3" in _row(text, "16")
    assert re.match(r"\s*64 ≈", _row(text, "64"))    # tied with the recommendation
    assert "≈" not in _row(text, "16") and "≈" not in _row(text, "4")
    steps16 = next(g for g in r.per_batch if g["batch_size"] == 16)["steps_median"]
    assert f" {math.ceil(steps16)} " in _row(text, "16")
    assert "indistinguishable from the fastest within the measurement noise" in text
    assert f"next: {COMMAND}" in text
    assert text.rstrip().endswith("report: runs/x/report.html")


def test_all_diverged_and_never_reached_are_words():
    r = _fake_result()
    for g in r.per_batch:
        if g["batch_size"] == 256:
            g.update(reached=0, diverged=3, time_median=math.inf, time_low=math.inf,
                     time_high=math.inf, steps_median=math.inf, final_median=math.nan)
        if g["batch_size"] == 4:
            g.update(reached=0, diverged=0, time_median=math.inf, time_high=math.inf,
                     steps_median=math.inf)
    text = _printed(r)
    assert "div 3/3" in _row(text, "256") and "diverged" in _row(text, "256")
    assert "0/3" in _row(text, "4") and "never" in _row(text, "4")
    assert not NAN_INF.search(text), NAN_INF.search(text)


def test_sparse_result_prints_without_nan():
    text = _printed(_sparse_result())
    assert not NAN_INF.search(text) and "indistinguishable" not in text


def test_piped_output_is_wide_enough_not_to_cut_numbers(capsys):
    print_sweep_summary(_fake_result(), "r.html")
    out = capsys.readouterr().out
    assert "…" not in out and not NAN_INF.search(out)
    assert "next: sgdlab train" in out


def test_outcome_is_short():
    assert outcome({"seeds": 3, "reached": 3, "diverged": 0}) == "3/3"
    assert outcome({"seeds": 3, "reached": 2, "diverged": 1}) == "2/3 1 div"
    assert outcome({"seeds": 3, "reached": 0, "diverged": 3}) == "div 3/3"


def test_progress_total_follows_replan():
    p = SweepProgress()
    p({"event": "plan", "runs": 12, "extra": 2})
    task = p.progress.tasks[0]
    assert task.total == 14
    p({"event": "run_start", "index": 0, "total": 12, "key": "k", "batch_size": 64,
       "lr": 0.35, "seed": 2, "phase": "search"})
    assert task.fields["info"] == "B=64 lr 0.35 seed 2 (search)"
    p({"event": "run_end", "index": 0, "total": 12, "key": "k", "reused": True,
       "status": "completed", "batch_size": 64, "phase": "search"})
    p({"event": "replan", "runs": 20, "extra": 2})
    assert task.total == 22 and task.completed == 1 and p.reused == 1
    # Probe and noise steps done, then a replan with none still to come: they stay counted.
    p({"event": "probe", "count": 2})
    p({"event": "replan", "runs": 20, "extra": 0})
    assert task.total == 22 and task.completed == 3


def test_every_learning_rate_tried_is_listed_with_the_kept_one_marked():
    from types import SimpleNamespace

    from sgdlab.cli.sweep_display import tried_lines
    groups = [{"batch_size": 8, "lr": 0.1, "seeds": 3, "diverged": 0, "steps_median": 400.0,
               "chosen": False},
              {"batch_size": 8, "lr": 0.4, "seeds": 3, "diverged": 0, "steps_median": 120.0,
               "chosen": True},
              {"batch_size": 8, "lr": 1.6, "seeds": 3, "diverged": 3,
               "steps_median": float("inf"), "chosen": False},
              {"batch_size": 64, "lr": 0.2, "seeds": 3, "diverged": 0,
               "steps_median": float("inf"), "chosen": True}]
    lines = tried_lines(SimpleNamespace(groups=groups))
    assert lines[0].split() == ["B=8", "0.1:400", "[0.4:120]", "1.6:div"]
    assert lines[1].split() == ["B=64", "[0.2:miss]"]
    assert tried_lines(SimpleNamespace(groups=groups[3:])) == []  # the rule alone: no list
