"""Terminal output of ``sgdlab sweep``: the summary table (outcomes, divergence, whole step
counts, the tie mark, the next command, never ``nan``/``inf``, never cut when piped) and the
progress bar, whose total the learning-rate search revises as it goes."""

import dataclasses
import math
import re

from rich.console import Console
from rich.progress import TimeRemainingColumn

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
    assert "3/3" in _row(text, "16") and "3/3" in _row(text, "256")
    assert re.search(r"B=256 .* 6\.4:div", text)     # the divergence shows in the list
    rec = r.recommendation
    for b in (4, 16, 64, 256):
        tied = b in rec.tied and b != rec.batch_size
        assert bool(re.match(rf"\s*{b} ≈", _row(text, str(b)))) == tied
    steps = r.batch(rec.batch_size).steps_median
    assert f" {math.ceil(steps)} " in _row(text, str(rec.batch_size))
    assert rec.headline in " ".join(text.split()) or rec.headline[:60] in text
    assert f"next: {COMMAND}" in text
    assert "cost: 12.5s wall" in text
    assert text.rstrip().endswith("report: runs/x/report.html")


def test_all_diverged_and_never_reached_are_words():
    r = _fake_result()
    rows = []
    for g in r.batches:
        if g.batch_size == 256:
            g = dataclasses.replace(g, reached=0, diverged=3, time_median=math.inf,
                                    time_low=math.inf, time_high=math.inf,
                                    steps_median=math.inf, final_median=math.nan)
        if g.batch_size == 4:
            g = dataclasses.replace(g, reached=0, diverged=0, time_median=math.inf,
                                    time_high=math.inf, steps_median=math.inf,
                                    cap_reason="budget")
        rows.append(g)
    r.batches = tuple(rows)
    text = _printed(r)
    assert "div 3/3" in _row(text, "256") and "diverged" in _row(text, "256")
    assert "0/3" in _row(text, "4") and "never" in _row(text, "4")
    assert not NAN_INF.search(text), NAN_INF.search(text)


def test_sparse_result_prints_without_nan():
    text = _printed(_sparse_result())
    assert not NAN_INF.search(text) and "Confirmation" not in text


def test_piped_output_keeps_sentences_whole(capsys):
    print_sweep_summary(_fake_result(), "r.html")
    out = capsys.readouterr().out
    assert "…" not in out and not NAN_INF.search(out)
    assert "next: sgdlab train" in out
    # piped, every sentence of the verdict is one line, however long
    for sentence in _fake_result().recommendation.sentences[1:]:
        assert f"- {sentence}" in out.splitlines()


def test_a_narrow_terminal_bar_has_no_eta():
    narrow = SweepProgress(out=Console(width=80, force_terminal=True))
    assert not any(isinstance(c, TimeRemainingColumn) for c in narrow.progress.columns)
    wide = SweepProgress(out=Console(width=140, force_terminal=True))
    assert any(isinstance(c, TimeRemainingColumn) for c in wide.progress.columns)


def test_outcome_is_short():
    row = _fake_result().batch(16)
    assert outcome(row) == "3/3"
    assert outcome(dataclasses.replace(row, reached=2, diverged=1)) == "2/3 1 div"
    assert outcome(dataclasses.replace(row, reached=0, diverged=3)) == "div 3/3"


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
    assert task.total == 22 and task.completed == 1
    # Probe and replay steps done, then a replan with none still to come: they stay counted.
    p({"event": "probe", "count": 2})
    p({"event": "replay"})
    p({"event": "replan", "runs": 20, "extra": 0})
    assert task.total == 23 and task.completed == 4


def test_every_learning_rate_tried_is_listed_with_the_kept_one_marked():
    from types import SimpleNamespace

    from sgdlab.cli.sweep_display import tried_lines

    def point(b, lr, steps, diverged=0, chosen=False):
        return SimpleNamespace(batch_size=b, lr=lr, seeds=3, diverged=diverged,
                               steps_median=steps, chosen=chosen)

    points = [point(8, 0.1, 400.0), point(8, 0.4, 120.0, chosen=True),
              point(8, 1.6, float("inf"), diverged=3), point(64, 0.2, float("inf"),
                                                            chosen=True)]
    lines = tried_lines(SimpleNamespace(points=points))
    assert lines[0].split() == ["B=8", "0.1:400", "[0.4:120]", "1.6:div"]
    assert lines[1].split() == ["B=64", "[0.2:miss]"]
    assert tried_lines(SimpleNamespace(points=points[3:])) == []  # the rule alone: no list
