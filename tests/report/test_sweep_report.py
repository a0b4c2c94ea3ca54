"""The sweep report: four PNG charts and one self-contained HTML file that a real headless
browser renders (Debian's chromium; .ci/run installs it), with every user string escaped."""

import math
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from sgdlab.lab.recommend import recommend
from sgdlab.lab.summary import SweepResult

EVIL = '<script>alert("x")</script>&'


def _fake_result() -> SweepResult:
    """A small sweep result with the shapes the lab produces (no training needed)."""
    sizes, records, per_run, per_batch = [4, 16, 64], [], [], []
    for b in sizes:
        steps_to = 40 * (1 + 16 / b)
        for seed in range(2):
            steps = np.arange(0, 400, 20)
            acc = 0.95 * (1 - np.exp(-steps / (steps_to / 3)))
            secs = steps * 1e-4 * (1 + b / 32)
            history = [{"step": int(s), "epoch": s * b / 1000, "examples": int(s * b),
                        "train_seconds": float(t), "val_accuracy": float(a)}
                       for s, t, a in zip(steps, secs, acc)]
            records.append({"key": f"b{b}-s{seed}", "batch_size": b, "lr": 0.1, "seed": seed,
                            "status": "completed", "history": history})
            per_run.append({"key": f"b{b}-s{seed}", "status": "completed",
                            "time_to_target": steps_to * 1e-4 * (1 + b / 32),
                            "steps_to_target": steps_to, "final": 0.95,
                            "train_seconds": 0.04, "compile_seconds": 0.5})
        t = steps_to * 1e-4 * (1 + b / 32)
        per_batch.append({"batch_size": b, "lr": 0.1, "seeds": 2, "reached": 2, "diverged": 0,
                          "time_median": t, "time_low": t * 0.9, "time_high": t * 1.1,
                          "steps_median": steps_to, "steps_best": steps_to,
                          "epochs_median": 1.0, "examples_median": steps_to * b,
                          "throughput": 1e5 * b ** 0.5, "final_median": 0.95,
                          "compile_seconds": 0.5})
    noise = {"b_simple": 20.0, "low": 15.0, "high": 27.0, "grad_sq": 0.1, "trace": 2.0,
             "draws": 64, "b_small": 4, "b_big": 64, "batch_size": 16}
    rec = recommend(per_batch, target=0.9, noise=noise, seeds=2).to_dict()
    throughput = [{"batch_size": b, "step_seconds": 1e-5 * b ** 0.5,
                   "example_seconds": 1e-5 / b ** 0.5, "examples_per_second": 1e5 * b ** 0.5,
                   "step_cost_ratio": (b / 4) ** 0.5, "vectorisation_gain": (b / 4) ** 0.5}
                  for b in sizes]
    return SweepResult(sweep={"seeds": 2, "budget": EVIL, "lr": 0.1, "base_batch": 32,
                              "lr_scaling": "sqrt"},
                       base={"model": "softmax", "optimizer": EVIL}, data=EVIL, n_train=1000,
                       n_validation=250, metric="val_accuracy", target=0.9, target_auto=False,
                       records=records, per_run=per_run, per_batch=per_batch,
                       throughput=throughput, noise=noise, recommendation=rec,
                       environment={"cpu": "test"})


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from sgdlab.report.sweep import write_sweep_report
    out = tmp_path_factory.mktemp("report")
    return write_sweep_report(_fake_result(), out)


def test_writes_four_charts_and_an_offline_html(report):
    for name in ("accuracy_time.png", "accuracy_epochs.png", "steps_to_target.png",
                 "throughput.png"):
        assert report[name].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = report["report.html"].read_text()
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', text)) == 4
    assert not re.search(r'(src|href)="(https?:)?//', text)  # nothing fetched from outside
    assert "Recommended batch size: 16" in text


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


def test_fake_result_matches_lab_recommendation():
    r = _fake_result()
    assert r.recommendation["batch_size"] == 16
    assert math.isfinite(r.recommendation["scaling"]["b_crit"])
