"""A self-contained HTML report of a sweep: one file that opens offline.

Images are embedded as base64 ``data:`` URIs, styles are inline, nothing is fetched. Every piece
of text that comes from the user or the data (data names, model names, settings, messages) goes
through :func:`html.escape`, so a file named ``<script>.csv`` is shown, never run.
"""

from __future__ import annotations

import base64
import html
import math

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;
max-width:1100px;color:#1d2733;background:#fff;line-height:1.45}
h1{font-size:1.6em;margin-bottom:0.2em}h2{font-size:1.2em;margin-top:1.6em;
border-bottom:1px solid #d8dee6;padding-bottom:0.2em}
.verdict{background:#eef6ee;border-left:6px solid #3c8d40;padding:0.8em 1.2em;margin:1em 0}
.verdict p{margin:0.35em 0}
table{border-collapse:collapse;font-size:0.88em;margin:0.6em 0}
th,td{border:1px solid #d8dee6;padding:0.25em 0.6em;text-align:right}
th{background:#f2f5f8}td.l,th.l{text-align:left}tr.best td{background:#fff6d6;font-weight:600}
img{max-width:100%;border:1px solid #e4e8ee;margin:0.5em 0}
.muted{color:#5b6775;font-size:0.9em}
"""


def esc(value) -> str:
    """Any value as escaped text (quotes included)."""
    return html.escape(str(value), quote=True)


def num(v, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float) and math.isinf(v):
        return "not reached"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return esc(v)


def seconds(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return num(v)
    return f"{v * 1000:.3g} ms" if v < 1 else f"{v:.3g} s"


def table(headers, rows, highlight=None) -> str:
    """``rows`` are lists of already-escaped cell strings; first column left-aligned."""
    head = "".join(f'<th class="{"l" if i == 0 else ""}">{esc(h)}</th>'
                   for i, h in enumerate(headers))
    body = []
    for i, row in enumerate(rows):
        cls = ' class="best"' if highlight is not None and i == highlight else ""
        cells = "".join(f'<td class="{"l" if j == 0 else ""}">{c}</td>'
                        for j, c in enumerate(row))
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def image(name: str, png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{esc(alt)}" title="{esc(name)}" src="data:image/png;base64,{data}">'


def render_sweep_html(result, images: dict) -> str:
    """The report as one string. ``images`` maps a plot file name to its PNG bytes."""
    rec = result.recommendation
    metric = "validation R^2" if result.metric == "val_r2" else "validation accuracy"
    title = f"sgdlab sweep: {result.data}, {result.base.get('model')}"
    auto = " (chosen automatically: 0.99 x the best median final value)" \
        if result.target_auto else ""
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
             f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{esc(title)}</h1>",
             f'<p class="muted">{esc(result.n_train)} training and {esc(result.n_validation)} '
             f"validation examples; target {esc(metric)} {num(result.target)}"
             f"{auto}"
             f"; {esc(result.sweep.get('seeds'))} seed(s) per setting; budget "
             f"{esc(result.sweep.get('budget'))} per run; learning rate "
             f"{num(result.sweep.get('lr'))} at batch {esc(result.sweep.get('base_batch'))}, "
             f"scaled by {esc(result.sweep.get('lr_scaling'))}.</p>"]
    verdict = "".join(f"<p>{esc(s)}</p>" for s in rec.get("sentences", []))
    head = (f"Recommended batch size: {esc(rec['batch_size'])}, learning rate "
            f"{num(rec['lr'])}" if rec.get("batch_size") else "No recommendation")
    parts.append(f'<div class="verdict"><h2 style="border:0;margin-top:0">{head}</h2>'
                 f"{verdict}</div>")

    parts.append("<h2>Per batch size</h2>")
    best_i = next((i for i, g in enumerate(result.per_batch)
                   if g["batch_size"] == rec.get("batch_size")), None)
    rows = [[esc(g["batch_size"]), num(g["lr"]), seconds(g["time_median"]),
             f"{seconds(g['time_low'])} – {seconds(g['time_high'])}", num(g["steps_median"]),
             num(g["epochs_median"]), num(g["examples_median"]), num(g["throughput"], 3),
             num(g["final_median"]), seconds(g["compile_seconds"]),
             f"{esc(g['reached'])}/{esc(g['seeds'])}", esc(g["diverged"])]
            for g in result.per_batch]
    parts.append(table(["batch size", "learning rate", "time to target (median)", "range",
                        "steps", "epochs", "examples", "examples/s", f"final {metric}",
                        "compile", "reached", "diverged"], rows, best_i))
    parts.append('<p class="muted">Times are training seconds only: evaluation and '
                 "compilation are excluded, and the crossing is interpolated between "
                 "evaluations.</p>")
    for name, alt in (("accuracy_time.png", f"{metric} against training seconds"),
                      ("accuracy_epochs.png", f"{metric} against epochs"),
                      ("steps_to_target.png", "steps to target against batch size"),
                      ("throughput.png", "throughput against batch size")):
        if name in images:
            heading = esc(alt[0].upper() + alt[1:])
            parts.append(f"<h2>{heading}</h2>{image(name, images[name], alt)}")

    if result.throughput:
        parts.append("<h2>Throughput probe</h2>")
        parts.append(table(["batch size", "seconds per step", "seconds per example",
                            "examples/s", "step cost vs smallest", "vectorisation gain"],
                           [[esc(p["batch_size"]), num(p["step_seconds"], 3),
                             num(p["example_seconds"], 3), num(p["examples_per_second"], 3),
                             num(p["step_cost_ratio"], 3), num(p["vectorisation_gain"], 3)]
                            for p in result.throughput]))
    if result.noise:
        n = result.noise
        parts.append("<h2>Gradient noise scale</h2>")
        parts.append(f"<p>B_simple = tr(&Sigma;)/|G|&sup2; = {num(n['b_simple'])} (68% "
                     f"interval {num(n['low'])} – {num(n['high'])}), from {esc(n['draws'])} "
                     f"pairs of batches of {esc(n['b_small'])} and {esc(n['b_big'])} examples "
                     f"during a run at batch size {esc(n.get('batch_size'))}; |G|&sup2; = "
                     f"{num(n['grad_sq'])}, tr(&Sigma;) = {num(n['trace'])}.</p>")

    parts.append("<h2>Every run</h2>")
    parts.append(table(["run", "status", "time to target", "steps to target", "final",
                        "training s", "compile s"],
                       [[esc(r["key"]), esc(r["status"]), seconds(r["time_to_target"]),
                         num(r["steps_to_target"]), num(r["final"]),
                         num(r["train_seconds"], 3), num(r["compile_seconds"], 3)]
                        for r in result.per_run]))
    env = result.environment or {}
    settings = {**{k: v for k, v in result.base.items() if k not in ("extra",)},
                **{f"sweep.{k}": v for k, v in result.sweep.items() if k != "extra"}}
    parts.append("<h2>Settings and machine</h2>")
    parts.append(table(["setting", "value"], [[esc(k), esc(v)] for k, v in settings.items()]
                       + [[esc(k), esc(v)] for k, v in env.items()]))
    parts.append("</body></html>")
    return "\n".join(parts)
