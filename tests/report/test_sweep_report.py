"""The sweep report: every PNG chart and one self-contained HTML file that a real headless
browser renders (Debian's chromium; .ci/run installs it), with every user string escaped, no
``nan``/``inf`` text, whole step counts, the tie statement and the next command."""

import html
import math
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from sgdlab.lab.summary import SweepResult

EVIL = '<script>alert("x")</script>&'
SIZES = (4, 16, 64, 256)
SEEDS = 3
TARGET = 0.9
CHARTS = ("accuracy_time.png", "accuracy_epochs.png", "lr_search.png", "steps_to_target.png",
          "decomposition.png", "throughput.png", "noise_trace.png")
COMMAND = (f"sgdlab train --data '{EVIL}' --model softmax --batch-size 16 --lr 0.1 "
           "--target-accuracy 0.9")


def _step_seconds(b: int) -> float:
    return 1e-4 * (1 + b / 32)


def _steps_to(b: int, m: float) -> float:
    """Steps to the target at multiplier ``m`` of the scaled lr (best at 1), or inf."""
    if m >= 16 or (b == 4 and m <= 0.25):
        return math.inf
    return 40 * (1 + 16 / b) * (1 + 0.3 * math.log(m) ** 2)


def _history(b: int, steps_to: float, seed: int, diverged: bool) -> list:
    """Accuracy rising to 0.95 (0.85 when it never reaches the target); stops at the target."""
    scale = (steps_to if math.isfinite(steps_to) else 200) / 3 * (1 + 0.05 * seed)
    top = 0.95 if math.isfinite(steps_to) else 0.85
    rows = []
    for s in range(0, 400, 8):
        acc = math.nan if diverged and s > 16 else top * (1 - math.exp(-s / scale))
        rows.append({"step": s, "epoch": s * b / 1000, "examples": s * b,
                     "train_seconds": s * _step_seconds(b), "val_accuracy": acc})
        if acc >= TARGET or (diverged and s > 16):
            break
    return rows


def _crossing(history: list) -> float:
    hit = next((r["step"] for r in history if r["val_accuracy"] >= TARGET), None)
    return math.inf if hit is None else float(hit)


def _fake_result(*, probe=True, noise=True, confirm=True, target=TARGET) -> SweepResult:
    """A sweep with the shapes the lab produces, built by the lab's own table functions from
    made-up runs (no training): per batch size a search over multipliers of the scaled lr,
    three seeds each; one point where every seed diverged, one that never reached the target,
    and a chosen point with a diverged seed."""
    from sgdlab.engine.history import History
    from sgdlab.lab.caps import StepCost
    from sgdlab.lab.confirm import confirmation_sentence
    from sgdlab.lab.lr_search import LrSearch
    from sgdlab.lab.recommend import recommend
    from sgdlab.lab.records import RunRecord
    from sgdlab.lab.search_rounds import outcome_of
    from sgdlab.lab.summary import Confirmation, NoiseResult, ProbeRow, SweepCost
    from sgdlab.lab.tables import batch_rows, point_rows, run_rows
    from sgdlab.lab.timing import Replay, ReplayTimes

    records, searches = [], {}
    costs = {b: StepCost(b, _step_seconds(b) * 0.9, 1e-5, 64) for b in SIZES} if probe else {}
    for b in SIZES:
        lr0 = 0.1 * (b / 16) ** 0.5
        search = searches[b] = LrSearch(lr0)
        mults = (1.0, 4.0, 0.25) + ((16.0,) if b == 256 else ())
        for m in mults:
            x = math.log(m) / math.log(4.0)
            lr, runs = lr0 * m, []
            for seed in range(SEEDS):
                diverged = m >= 16 or (b == 256 and m == 4.0 and seed == 2)
                history = _history(b, _steps_to(b, m), seed, diverged)
                status = "diverged" if diverged else (
                    "target_reached" if history[-1]["val_accuracy"] >= TARGET else "completed")
                last = history[-1]
                rec = RunRecord(f"b{b:04d}-lr{lr:.4g}-s{seed}", b, lr, seed, "search", "data",
                                {"max_steps": 400}, status,
                                {"steps": last["step"], "train_seconds": last["train_seconds"],
                                 "eval_seconds": 0.01, "compile_seconds": 0.5},
                                History(history), m, x, "behind")
                runs.append(rec)
            records += runs
            search.tell(x, outcome_of(runs, TARGET, 400))
    run_of: dict = {}
    pre = run_rows(records, TARGET, "val_accuracy")
    for rec, row in zip(records, pre):
        run_of.setdefault((rec.batch_size, rec.x), []).append(row)
    points = point_rows(searches, costs, run_of)
    replays = [Replay(p.batch_size, p.lr, r.seed, int(r.steps_to_target)) for p in points
               if p.chosen for r in run_of[(p.batch_size, p.x)] if r.reached]
    timed = ReplayTimes(tuple(replays), tuple((r.steps * _step_seconds(r.batch_size),)
                                              for r in replays),
                        tuple(1 for _ in replays), 1)
    times = {(r.batch_size, r.lr, r.seed): timed.time(i) for i, r in enumerate(replays)}
    runs = run_rows(records, TARGET, "val_accuracy", times)
    batches = batch_rows(points, pre, timed, costs, searches)
    noise_result = NoiseResult(
        batch_size=16, lr=0.1, reached_target=True, b_simple=20.0, low=15.0, high=27.0,
        grad_sq=0.1, trace_sigma=2.0, draws=64, b_small=4, b_big=64, b_noise=31.0,
        b_noise_low=22.0, b_noise_high=45.0, b_simple_at_target=19.0,
        trace=tuple((10.0 * (i + 1), 5.0 + 1.5 * i if i != 3 else -2.0) for i in range(12))
    ) if noise else None
    rec = recommend(batches, target=target, noise=noise_result, seeds=SEEDS)
    confirmation = None
    if confirm and rec.batch_size is not None:
        row = next(r for r in batches if r.batch_size == rec.batch_size)
        confirmation = Confirmation(row.batch_size, row.lr, (1000, 1001, 1002), 3, 0,
                                    tuple(t * 1.05 for t in row.seed_times),
                                    (40.0, 41.0, 42.0), row.time_median * 1.05, 41.0,
                                    row.time_low, row.time_high, False)
        rec = rec.with_sentence(confirmation_sentence(confirmation))
    probe_rows = tuple(ProbeRow(b, 64, _step_seconds(b) * 0.9, 1e-5,
                                b / (_step_seconds(b) * 0.9),
                                _step_seconds(b) / _step_seconds(4),
                                b / 4 * _step_seconds(4) / _step_seconds(b), 0.5)
                       for b in SIZES) if probe else ()
    cost = SweepCost(12.5, {"probe": 2.0, "search": 8.0, "timing": 1.0}, 3.0, 2.0, 1.5, 0.5,
                     len(records), 0, len(replays), {"chunk": 4, "evaluate": 1})
    return SweepResult(
        sweep={"seeds": SEEDS, "budget": EVIL, "lr": 0.1, "base_batch": 16,
               "lr_scaling": "sqrt", "lr_mode": "search", "search_factor": 4.0,
               "lr_resolution": 1.19, "stop_at_target": True, "target": TARGET},
        base={"model": "softmax", "optimizer": "sgd", "loss": EVIL, "channels": [6, 16],
              "momentum": 0.9,
              "lr": 0.1},
        data=EVIL, n_train=1000, n_validation=250, metric="val_accuracy", target=target,
        target_source="given (--target-accuracy)", records=tuple(records), runs=tuple(runs),
        points=tuple(points), batches=tuple(batches), probe=probe_rows, noise=noise_result,
        recommendation=rec, confirmation=confirmation, timing_spread=0.02, timing_rounds=1,
        cost=cost, environment={"cpu": "test"}, command=COMMAND)


def _sparse_result() -> SweepResult:
    """No probe, no noise, no confirmation."""
    return _fake_result(probe=False, noise=False, confirm=False)


def _text_only(html: str) -> str:
    """The HTML without its embedded images (base64 may spell anything)."""
    return re.sub(r'src="data:image/png;base64,[^"]*"', "", html)


NAN_INF = re.compile(r"\b(nan|inf|infinity)\b", re.IGNORECASE)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from sgdlab.report.sweep import write_sweep_report
    out = tmp_path_factory.mktemp("report")
    return write_sweep_report(_fake_result(), out)


def test_writes_every_chart_and_an_offline_html(report):
    for name in CHARTS:
        assert report[name].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    text = report["report.html"].read_text()
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', text)) == len(CHARTS)
    assert not re.search(r'(src|href)="(https?:)?//', text)  # nothing fetched from outside
    assert "Recommended batch size: 16" in text


def test_html_says_tie_command_outcomes_and_whole_steps(report):
    text = _text_only(report["report.html"].read_text())
    rec = _fake_result().recommendation
    assert f'<p class="tie">{html.escape(rec.headline, quote=True)}</p>' in text
    assert "<pre>sgdlab train --data &#x27;&lt;script&gt;" in text  # the next command, escaped
    assert "--batch-size 16 --lr 0.1 --target-accuracy 0.9</pre>" in text
    assert "2 of 3 reached, 1 diverged" in text and "all 3 diverged" in text
    assert "0 of 3 reached" in text and "3 of 3 reached" in text
    assert "Confirmation with fresh seeds (1000, 1001, 1002)" in text
    assert "✓ kept" in text and "Learning-rate search" in text
    assert "ranked by median steps" in text
    assert "Time to target = steps x seconds per step" in text
    assert "B_noise = " in text and "B_simple = " in text
    assert "a second estimator of B_simple, not pooled over the run" in text
    assert "What the sweep cost" in text and "training (timed replays)" in text
    # Steps are whole numbers: the recommended size's median steps, never with a fraction.
    steps = _fake_result().batch(rec.batch_size).steps_median
    assert f">{math.ceil(steps)}<" in text
    assert not NAN_INF.search(text), NAN_INF.search(text)


def test_settings_show_only_what_the_model_and_optimiser_take(report):
    text = _text_only(report["report.html"].read_text())
    settings = re.search(r"<h2>Settings and machine</h2>.*?</table>", text, re.S).group(0)
    assert ">model<" in settings and ">lr<" in settings
    assert ">channels<" not in settings          # a softmax model takes no channels
    assert ">momentum<" not in settings          # the optimiser is not a momentum method


def test_step_columns_hold_integers(report):
    text = _text_only(report["report.html"].read_text())
    head = re.search(r"<h2>Per batch size</h2>.*?</table>", text, re.S).group(0)
    cols = re.findall(r"<th[^>]*>([^<]*)</th>", head)
    steps_col = cols.index("steps")
    for row in re.findall(r"<tr[^>]*>(<td.*?)</tr>", head):
        cell = re.findall(r"<td[^>]*>(.*?)</td>", row)[steps_col]
        assert re.fullmatch(r"\d+|not reached", cell), cell


def test_missing_measurements_say_not_measured(report, tmp_path):
    from sgdlab.report.html import render_sweep_html
    from sgdlab.report.sweep_plots import PLOTS
    r = _sparse_result()
    missing = ("decomposition.png", "throughput.png", "noise_trace.png")
    for name in missing:  # still a valid PNG (saying "not measured"), reported as not drawn
        assert PLOTS[name](r, tmp_path / name) is False
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    images = {n: report[n].read_bytes() for n in CHARTS if n not in missing}
    text = render_sweep_html(r, images)
    assert len(re.findall(r"<img ", text)) == len(CHARTS) - 3
    plain = _text_only(text)
    assert "Not measured" in plain and "Confirmation with fresh seeds" not in plain
    assert not NAN_INF.search(plain), NAN_INF.search(plain)


def test_user_strings_are_escaped(report):
    text = report["report.html"].read_text()
    assert "<script>" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in text


@pytest.mark.browser
def test_report_renders_in_headless_chromium(report, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "chromium is needed (Debian: apt-get install -y chromium; .ci/run does it)"
    shot = tmp_path / "shot.png"
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
           f"--screenshot={shot}", "--window-size=1200,1600",
           report["report.html"].resolve().as_uri()]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert shot.is_file(), p.stderr[-2000:]
    from matplotlib.image import imread  # noqa: PLC0415 (plotting only in this test)
    pixels = imread(str(shot))[..., :3]
    assert pixels.shape[:2] == (1600, 1200)
    assert float(pixels.std()) > 0.05          # not a blank page
    # The embedded charts drew: many distinct colours, not just text on white.
    colours = np.unique((pixels[::4, ::4] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 200


def test_importing_the_library_does_not_import_plotting():
    code = ("import sys, sgdlab, sgdlab.lab; "
            "assert 'matplotlib' not in sys.modules and 'sgdlab.cli' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_median_curve_needs_half_the_seeds():
    from sgdlab.report.sweep_plots import median_curve
    a = [{"t": t, "m": t / 10} for t in (0, 1, 2, 4, 8)]
    b = [{"t": t, "m": t / 5} for t in (0, 1, 2)]      # stopped early
    c = [{"t": t, "m": t / 20} for t in (0, 1)]         # stopped earlier
    grid, med = median_curve([a, b, c], "t", "m", points=50)
    assert grid[0] == 1 and grid[-1] == 8
    assert np.isfinite(med[grid <= 2]).all()            # 2 or 3 of 3 seeds have data
    assert np.isnan(med[grid > 2.01]).all()             # 1 of 3: no median
    np.testing.assert_allclose(med[0], 0.1)             # median of 0.1, 0.2, 0.05
    # A run that stopped at the target holds its last value: the median does not drop.
    grid, med = median_curve([a, b, c], "t", "m", points=50, hold=[False, True, True])
    assert np.isfinite(med).all()
    np.testing.assert_allclose(med[-1], 0.4)             # median of 0.8, 0.4, 0.05
