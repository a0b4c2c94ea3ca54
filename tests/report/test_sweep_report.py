"""The sweep report: every PNG chart and one self-contained HTML file that a real headless
browser renders (Debian's chromium; .ci/run installs it), with every user string escaped, no
``nan``/``inf`` text, whole step counts, the tie statement and the next command."""

import dataclasses
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


def _group(b, lr, m, runs, order) -> dict:
    times = [r["time_to_target"] for r in runs]
    med = lambda k: float(np.median([r[k] for r in runs]))  # noqa: E731
    finals = [r["final"] for r in runs if math.isfinite(r["final"])]
    return {"batch_size": b, "lr": lr, "lr_multiplier": m, "seeds": len(runs),
            "reached": sum(r["reached"] for r in runs),
            "diverged": sum(r["status"] == "diverged" for r in runs),
            "time_median": float(np.median(times)), "time_low": min(times),
            "time_high": max(times), "steps_median": med("steps_to_target"),
            "epochs_median": med("epochs_to_target"),
            "examples_median": med("examples_to_target"), "throughput": b / _step_seconds(b),
            "final_median": float(np.median(finals)) if finals else math.nan,
            "compile_seconds": 0.5, "chosen": False, "order": order}


def _status_text(g: dict) -> str:
    if g["diverged"] == g["seeds"]:
        return f"all {g['seeds']} diverged"
    return f"{g['reached']} of {g['seeds']} reached" + \
        (f", {g['diverged']} diverged" if g["diverged"] else "")


def _fake_result(**changes) -> SweepResult:
    """A sweep with the shapes the lab produces (no training needed): per batch size a search
    over multipliers of the scaled lr, three seeds each; one point where every seed diverged,
    one that never reached the target, and a chosen point with a diverged seed."""
    records, per_run, groups = [], [], []
    for b in SIZES:
        lr0 = 0.1 * (b / 16) ** 0.5
        mults = (1.0, 4.0, 0.25) + ((16.0,) if b == 256 else ())
        for order, m in enumerate(mults):
            lr, runs = lr0 * m, []
            for seed in range(SEEDS):
                diverged = m >= 16 or (b == 256 and m == 4.0 and seed == 2)
                history = _history(b, _steps_to(b, m), seed, diverged)
                status = "diverged" if diverged else (
                    "target_reached" if history[-1]["val_accuracy"] >= TARGET else "completed")
                key = f"b{b}-lr{lr:.3g}-s{seed}"
                records.append({"key": key, "batch_size": b, "lr": lr, "seed": seed,
                                "status": status, "phase": "search", "history": history})
                step = _crossing(history)
                reached = math.isfinite(step)
                last = history[-1]
                runs.append({"key": key, "batch_size": b, "lr": lr, "lr_multiplier": m,
                             "seed": seed, "status": status, "reached": reached,
                             "time_to_target": step * _step_seconds(b),
                             "steps_to_target": step, "epochs_to_target": step * b / 1000,
                             "examples_to_target": step * b,
                             "final": last["val_accuracy"], "steps": last["step"],
                             "train_seconds": last["train_seconds"], "eval_seconds": 0.01,
                             "compile_seconds": 0.5,
                             "examples_per_second": b / _step_seconds(b)})
            per_run += runs
            groups.append(_group(b, lr, m, runs, order))
    per_batch, decomposition = [], []
    for b in SIZES:
        mine = [g for g in groups if g["batch_size"] == b]
        best = min(mine, key=lambda g: (g["steps_median"], g["lr"]))
        if b == 256:  # the chosen point has a diverged seed
            best = next(g for g in mine if g["lr_multiplier"] == 4.0)
        best["chosen"] = True
        probe = _step_seconds(b) * 0.9
        predicted = best["steps_median"] * probe
        per_batch.append({**best, "steps_best": best["steps_median"], "steps_best_lr":
                          best["lr"], "status_text": _status_text(best), "points": len(mine),
                          "probe_step_seconds": probe, "predicted_seconds": predicted,
                          "run_step_seconds": _step_seconds(b)})
        decomposition.append({"batch_size": b, "steps": best["steps_median"],
                              "probe_step_seconds": probe, "predicted_seconds": predicted,
                              "measured_seconds": best["time_median"],
                              "run_step_seconds": _step_seconds(b),
                              "ratio": best["time_median"] / predicted})
    rec16 = next(g for g in per_batch if g["batch_size"] == 16)
    noise = {"b_simple": 20.0, "low": 15.0, "high": 27.0, "grad_sq": 0.1, "trace": 2.0,
             "draws": 64, "b_small": 4, "b_big": 64, "batch_size": 16, "lr": rec16["lr"],
             "reached_target": True, "b_noise": 31.0, "b_noise_low": 22.0,
             "b_noise_high": 45.0, "hessian_b_simple": 19.0, "reason": ""}
    trace = [{"step": 10 * (i + 1), "b_simple": 5.0 + 1.5 * i if i != 3 else -2.0}
             for i in range(12)]
    confirmation = {"batch_size": 16, "lr": rec16["lr"], "seeds": [3, 4, 5], "reached": 3,
                    "diverged": 0, "time_median": rec16["time_median"] * 1.05,
                    "time_low": rec16["time_median"], "time_high": rec16["time_median"] * 1.2,
                    "steps_median": rec16["steps_median"], "runs": 3}
    recommendation = {
        "batch_size": 16, "lr": rec16["lr"], "seconds": rec16["time_median"],
        "sentences": [f"Batch size 16 (learning rate {rec16['lr']:.4g}) reached validation "
                      "accuracy 0.9 fastest.", "Steps to target flatten beyond 16."],
        "scaling": {"s_min": 40.0, "b_crit": 16.0, "points": 4, "rel_rms": 0.02, "good": True},
        "tied": [16, 64], "distinguishable": False,
        "rule": "the smaller batch size (fewer examples per step, less memory)",
        "command": COMMAND, "fastest": 16}
    throughput = [{"batch_size": b, "step_seconds": _step_seconds(b) * 0.9,
                   "example_seconds": _step_seconds(b) * 0.9 / b,
                   "examples_per_second": b / (_step_seconds(b) * 0.9),
                   "step_cost_ratio": _step_seconds(b) / _step_seconds(4),
                   "vectorisation_gain": b / 4 * _step_seconds(4) / _step_seconds(b)}
                  for b in SIZES]
    values = dict(
        sweep={"seeds": SEEDS, "budget": EVIL, "lr": 0.1, "base_batch": 16,
               "lr_scaling": "sqrt", "lr_mode": "search", "search_factor": 4.0,
               "stop_at_target": True},
        base={"model": "softmax", "optimizer": EVIL}, data=EVIL, n_train=1000,
        n_validation=250, metric="val_accuracy", target=TARGET, target_auto=False,
        target_source="given (--target-accuracy)", records=records, per_run=per_run,
        groups=groups, per_batch=per_batch, throughput=throughput, noise=noise,
        noise_trace=trace, decomposition=decomposition, confirmation=confirmation,
        recommendation=recommendation, environment={"cpu": "test"}, seconds=12.5)
    values.update(changes)
    # Fields the SweepResult of this checkout does not have yet are set as attributes.
    known = {f.name for f in dataclasses.fields(SweepResult)}
    result = SweepResult(**{k: v for k, v in values.items() if k in known})
    for k, v in values.items():
        if k not in known:
            setattr(result, k, v)
    return result


def _sparse_result() -> SweepResult:
    """No probe, no noise, no confirmation, nothing reached at one size, no tie."""
    r = _fake_result()
    rec = {**r.recommendation, "tied": [16], "distinguishable": True}
    for g in r.per_batch:
        g.update(probe_step_seconds=None, predicted_seconds=None, run_step_seconds=None)
    return _fake_result(throughput=None, noise=None, noise_trace=[], decomposition=[],
                        confirmation=None, recommendation=rec, per_batch=r.per_batch,
                        groups=r.groups, target=math.nan, target_auto=True)


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
    assert "Batch sizes 16 and 64 are indistinguishable from the fastest within the " \
           "measurement noise; picked by: the smaller batch size" in text
    assert "<pre>sgdlab train --data &#x27;&lt;script&gt;" in text  # the next command, escaped
    assert "--batch-size 16 --lr 0.1 --target-accuracy 0.9</pre>" in text
    assert "2 of 3 reached, 1 diverged" in text and "all 3 diverged" in text
    assert "0 of 3 reached" in text and "3 of 3 reached" in text
    assert "Confirmation with fresh seeds (3, 4, 5)" in text
    assert "✓ chosen" in text and "Learning-rate search" in text
    assert "Time to target = steps x seconds per step" in text
    assert "B_noise = " in text and "B_simple = " in text
    # Steps are whole numbers: the recommended size's median steps, never with a fraction.
    steps16 = [g for g in _fake_result().per_batch if g["batch_size"] == 16][0]["steps_median"]
    assert f">{math.ceil(steps16)}<" in text
    assert not NAN_INF.search(text), NAN_INF.search(text)


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
    missing = ("decomposition.png", "noise_trace.png")
    for name in missing:  # still a valid PNG (saying "not measured"), reported as not drawn
        assert PLOTS[name](r, tmp_path / name) is False
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    images = {n: report[n].read_bytes() for n in CHARTS if n not in missing}
    text = render_sweep_html(r, images)
    assert len(re.findall(r"<img ", text)) == len(CHARTS) - 2
    plain = _text_only(text)
    assert "Not measured" in plain and "indistinguishable from the fastest" not in plain
    assert "Confirmation: not run." in plain
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
