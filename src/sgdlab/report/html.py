"""A self-contained HTML report of a sweep: one file that opens offline.

Images are embedded as base64 ``data:`` URIs, styles are inline, nothing is fetched. Every piece
of text that comes from the user or the data (data names, model names, settings, messages) goes
through :func:`html.escape`, so a file named ``<script>.csv`` is shown, never run. No number is
ever shown as ``nan`` or ``inf``: a missing value reads "—", an infinite time "never", an
infinite step count "not reached", and an unmeasured quantity "not measured" (with the reason
when the lab gives one). Step counts are whole numbers.
"""

from __future__ import annotations

import base64
import html
import math
import numbers

from ..lab.next_run import confirmation_sentence as lab_confirmation
from ..lab.recommend import status_text

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;
max-width:1100px;color:#1d2733;background:#fff;line-height:1.45}
h1{font-size:1.6em;margin-bottom:0.2em}h2{font-size:1.2em;margin-top:1.6em;
border-bottom:1px solid #d8dee6;padding-bottom:0.2em}
.verdict{background:#eef6ee;border-left:6px solid #3c8d40;padding:0.8em 1.2em;margin:1em 0}
.verdict p{margin:0.35em 0}.verdict .tie{font-weight:600}
pre{background:#1d2733;color:#f2f5f8;padding:0.6em 0.9em;overflow-x:auto;white-space:pre-wrap;
word-break:break-all}
.scroll{overflow-x:auto}
table{border-collapse:collapse;font-size:0.84em;margin:0.6em 0}
th,td{border:1px solid #d8dee6;padding:0.25em 0.5em;text-align:right}td{white-space:nowrap}
th{background:#f2f5f8}td.l,th.l{text-align:left}tr.best td{background:#fff6d6;font-weight:600}
tr.chosen td{background:#f4f8ec}tr.tied td{background:#fffbea}
img{max-width:100%;border:1px solid #e4e8ee;margin:0.5em 0}
.muted{color:#5b6775;font-size:0.9em}
"""


def esc(value) -> str:
    """Any value as escaped text (quotes included)."""
    return html.escape(str(value), quote=True)


def _real(v) -> float | None:
    """``v`` as a float when it is a (non-bool) real number, else None."""
    if isinstance(v, numbers.Real) and not isinstance(v, bool):
        return float(v)
    return None


def num(v, digits: int = 4) -> str:
    """A number as text: NaN/None "—", infinity "not reached", integers whole."""
    f = _real(v)
    if v is None or (f is not None and math.isnan(f)):
        return "—"
    if f is None:
        return esc(v)
    if math.isinf(f):
        return "not reached"
    if isinstance(v, numbers.Integral):
        return esc(int(v))
    return f"{f:.{digits}g}"


def rate(v) -> str:
    """A large count or rate to three significant figures with separators: ``35,600``."""
    f = _real(v)
    if f is None or not math.isfinite(f) or abs(f) < 1000:
        return num(v, 3)
    return f"{round(f, 2 - math.floor(math.log10(abs(f)))):,.0f}"


def seconds(v) -> str:
    """Seconds as ``7.31 ms`` / ``1.2 s``; infinity "never", NaN/None "—"."""
    f = _real(v)
    if f is None:
        return "—" if v is None else esc(v)
    if math.isnan(f):
        return "—"
    if math.isinf(f):
        return "never"
    return f"{f * 1000:.3g} ms" if f < 1 else f"{f:.3g} s"


def steps(v) -> str:
    """A step count as a whole number (medians of even seed counts are rounded up)."""
    f = _real(v)
    if f is None or math.isnan(f) or math.isinf(f):
        return num(v)
    return f"{math.ceil(f - 1e-9):d}"


def seconds_range(lo, hi) -> str:
    """``lo – hi``; "—" when even the fastest seed never reached the target."""
    f = _real(lo)
    if f is None or not math.isfinite(f):
        return "—"
    return f"{seconds(lo)} – {seconds(hi)}"


def plain(value):
    """``value`` with every non-finite float inside it replaced by None (for settings)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    f = _real(value)
    if f is not None and not math.isfinite(f):
        return None
    return value


def table(headers, rows, highlight=None, classes=None) -> str:
    """``rows`` are lists of already-escaped cell strings; first column left-aligned.

    Row ``highlight`` gets the class ``best``; ``classes`` optionally gives every row a class.
    """
    head = "".join(f'<th class="{"l" if i == 0 else ""}">{esc(h)}</th>'
                   for i, h in enumerate(headers))
    body = []
    for i, row in enumerate(rows):
        name = "best" if highlight is not None and i == highlight else \
            (classes[i] if classes else "")
        cls = f' class="{name}"' if name else ""
        cells = "".join(f'<td class="{"l" if j == 0 else ""}">{c}</td>'
                        for j, c in enumerate(row))
        body.append(f"<tr{cls}>{cells}</tr>")
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")


def image(name: str, png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{esc(alt)}" title="{esc(name)}" src="data:image/png;base64,{data}">'


def outcome_text(g: dict) -> str:
    """``"2 of 3 reached, 1 diverged"``: the row's ``status_text``, or made from its counts."""
    if g.get("status_text"):
        return str(g["status_text"])
    return status_text(g.get("reached", 0), g.get("diverged", 0), g.get("seeds", 0))


def tie_sentence(rec: dict) -> str:
    """The statement that the top batch sizes cannot be told apart, or ``""``."""
    tied = rec.get("tied") or []
    if len(tied) < 2:
        return ""
    names = ", ".join(str(b) for b in tied[:-1]) + f" and {tied[-1]}"
    rule = str(rec.get("rule") or "the smallest").rstrip(". ")
    fastest = rec.get("fastest")
    tail = (f" The lowest median time was at batch size {fastest}."
            if fastest is not None and fastest != rec.get("batch_size") else "")
    return (f"Batch sizes {names} are indistinguishable from the fastest within the "
            f"measurement noise; picked by: {rule}.{tail}")


def confirmation_sentence(conf: dict | None) -> str:
    """The lab's sentence on the confirmation runs, or that none were run."""
    return lab_confirmation(conf) if conf else "Confirmation: not run."


def _lr_mode_text(sweep: dict) -> str:
    mode = sweep.get("lr_mode")
    base = (f"learning rate {num(sweep.get('lr'))} at batch {esc(sweep.get('base_batch'))}, "
            f"scaled by {esc(sweep.get('lr_scaling'))}")
    if mode == "search":
        factor = num(sweep.get("search_factor"), 3)
        text = (f"{base}, then searched per batch size over a log-spaced bracket (factor "
                f"{factor} between points) around the scaled learning rate")
    elif mode == "grid":
        text = f"{base}, then a fixed grid of multipliers tried per batch size"
    else:
        text = f"{base} (the scaling rule alone, no search)"
    if sweep.get("stop_at_target"):
        text += "; runs stop at the target"
    return text


def _verdict(result, rec: dict) -> str:
    head = (f"Recommended batch size: {esc(rec['batch_size'])}, learning rate "
            f"{num(rec.get('lr'))}" if rec.get("batch_size") else "No recommendation")
    parts = [f'<div class="verdict"><h2 style="border:0;margin-top:0">{head}</h2>']
    parts += [f"<p>{esc(s)}</p>" for s in rec.get("sentences", [])]
    tie = tie_sentence(rec)
    if tie:  # unless the lab's sentences say it already
        if not any("indistinguishable from the fastest" in s
                   for s in rec.get("sentences", [])):
            parts.append(f'<p class="tie">{esc(tie)}</p>')
    elif rec.get("batch_size") and rec.get("distinguishable") is True:
        parts.append("<p>The recommended batch size is faster than every other one beyond "
                     "the measurement noise.</p>")
    if rec.get("batch_size") and not any(s.startswith("Confirmation")
                                         for s in rec.get("sentences", [])):
        parts.append(f"<p>{esc(confirmation_sentence(getattr(result, 'confirmation', None)))}"
                     "</p>")
    if rec.get("command"):
        parts.append(f"<p>Next: train with the recommendation</p><pre>{esc(rec['command'])}"
                     "</pre>")
    parts.append("</div>")
    return "".join(parts)


def _per_batch(result, rec: dict, metric: str) -> str:
    tied = set(rec.get("tied") or [])
    best_i = next((i for i, g in enumerate(result.per_batch)
                   if g["batch_size"] == rec.get("batch_size")), None)
    rows = [[esc(g["batch_size"]) + (" ≈" if g["batch_size"] in tied and i != best_i else ""),
             num(g["lr"]), num(g.get("points")), esc(outcome_text(g)),
             seconds(g["time_median"]), seconds_range(g.get("time_low"), g.get("time_high")),
             steps(g.get("steps_median")), num(g.get("epochs_median"), 3),
             rate(g.get("throughput")), num(g.get("final_median")),
             seconds(g.get("probe_step_seconds")), seconds(g.get("predicted_seconds"))]
            for i, g in enumerate(result.per_batch)]
    classes = ["tied" if g["batch_size"] in tied else "" for g in result.per_batch]
    return (table(["batch size", "learning rate", "lrs tried", "seeds", "median time",
                   "range", "steps", "epochs", "examples/s", f"final {metric}",
                   "s/step (probe)", "predicted"], rows, best_i, classes)
            + '<p class="muted">Times are training seconds to the target (median and range '
            "over seeds) only: evaluation and compilation are excluded, and the crossing is "
            "interpolated between evaluations. Steps and epochs are medians too. Each row is "
            "the batch size's chosen learning rate."
            + (" ≈ marks batch sizes tied with the recommendation within the measurement noise."
               if len(tied) > 1 else "")
            + " Predicted time = steps x seconds per step + compiled calls x seconds per call, "
            "both from the throughput probe.</p>")


def _lr_search(result, rec: dict) -> str:
    groups = sorted(getattr(result, "groups", None) or [],
                    key=lambda g: (g["batch_size"], g["lr"]))
    if not groups:
        return '<p class="muted">No learning-rate points recorded.</p>'
    best = [i for i, g in enumerate(groups)
            if g.get("chosen") and g["batch_size"] == rec.get("batch_size")]
    rows = [[esc(g["batch_size"]), num(g["lr"]), "×" + num(g.get("lr_multiplier"), 3),
             esc(g["order"] + 1) if isinstance(g.get("order"), int) else "—",
             esc(outcome_text(g)), seconds(g.get("time_median")),
             seconds_range(g.get("time_low"), g.get("time_high")),
             steps(g.get("steps_median")), num(g.get("final_median")),
             "✓ chosen" if g.get("chosen") else ""] for g in groups]
    classes = ["chosen" if g.get("chosen") else "" for g in groups]
    return table(["batch size", "learning rate", "× scaled lr", "order tried", "seeds",
                  "time to target (median)", "range", "steps (median)", "final (median)",
                  "kept"], rows, best[0] if best else None, classes)


def _decomposition(result, rec: dict) -> str:
    rows = getattr(result, "decomposition", None) or []
    if not rows:
        return ('<p class="muted">Not measured: the decomposition needs the throughput probe '
                "(run without --no-probe).</p>")
    best_i = next((i for i, r in enumerate(rows) if r["batch_size"] == rec.get("batch_size")),
                  None)
    cells = [[esc(r["batch_size"]), steps(r.get("steps")), seconds(r.get("probe_step_seconds")),
              esc(r.get("calls") if r.get("calls") is not None else "—"),
              seconds(r.get("call_seconds")), seconds(r.get("predicted_seconds")),
              seconds(r.get("measured_seconds")), num(r.get("ratio"), 3),
              seconds(r.get("run_step_seconds"))] for r in rows]
    return (table(["batch size", "steps to target (median)", "seconds per step (probe)",
                   "compiled calls", "seconds per call (probe)",
                   "predicted = steps x s/step + calls x s/call", "measured (median)",
                   "measured / predicted", "seconds per step (runs)"], cells, best_i)
            + '<p class="muted">Steps come from the runs, seconds per step and per call from '
            "the throughput probe (a call is cut at every evaluation, so frequent evaluation "
            "adds calls); a ratio near 1 means the factors explain the measured time.</p>")


def _noise(result) -> str:
    n = result.noise
    if not n:
        return "<p>Not measured (the noise scale was not run).</p>"
    reason = n.get("reason") or ""
    fin = lambda k: _real(n.get(k)) is not None and math.isfinite(n[k])  # noqa: E731
    if fin("b_simple"):
        run = (f" during a run at batch size {esc(n.get('batch_size'))}, learning rate "
               f"{num(n.get('lr'))}" if n.get("batch_size") else "")
        if n.get("reached_target") is not None:
            run += (" (which reached the target)" if n["reached_target"]
                    else " (which did not reach the target)")
        text = (f"B_simple = tr(&Sigma;)/|G|&sup2; = {num(n['b_simple'])} (68% interval "
                f"{num(n.get('low'))} – {num(n.get('high'))}), from {esc(n.get('draws'))} "
                f"pairs of batches of {esc(n.get('b_small'))} and {esc(n.get('b_big'))} "
                f"examples{run}; |G|&sup2; = {num(n.get('grad_sq'))}, tr(&Sigma;) = "
                f"{num(n.get('trace'))}.")
    else:
        text = "B_simple: not measured" + (f": {esc(reason)}" if reason else
                                           " (|G|&sup2; estimate not positive).")
    parts = [f"<p>{text}</p>"]
    if fin("b_noise"):
        parts.append(f"<p>B_noise = tr(H&Sigma;)/(G&#7488;HG) = {num(n['b_noise'])} (interval "
                     f"{num(n.get('b_noise_low'))} – {num(n.get('b_noise_high'))})"
                     + (f"; B_simple from the same measurement: {num(n['hessian_b_simple'])}"
                        if fin("hessian_b_simple") else "") + ".</p>")
    else:
        parts.append("<p>B_noise (Hessian-weighted): not measured"
                     + (f": {esc(reason)}" if reason else "") + ".</p>")
    return "".join(parts)


def _chart(images: dict, name: str, alt: str) -> str:
    if name in images:
        return image(name, images[name], alt)
    return f'<p class="muted">Chart not drawn ({esc(alt)}): not measured.</p>'


def render_sweep_html(result, images: dict) -> str:
    """The report as one string. ``images`` maps a plot file name to its PNG bytes (a chart
    missing from it is reported as not measured)."""
    rec = result.recommendation or {}
    metric = "validation R^2" if result.metric == "val_r2" else "validation accuracy"
    title = f"sgdlab sweep: {result.data}, {result.base.get('model')}"
    source = getattr(result, "target_source", "") or (
        "chosen automatically: 0.99 x the best median final value" if result.target_auto
        else "given")
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
             f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{esc(title)}</h1>",
             f'<p class="muted">{num(result.n_train)} training and {num(result.n_validation)} '
             f"validation examples; target {esc(metric)} {num(result.target)} "
             f"({esc(source)}); {esc(result.sweep.get('seeds'))} seed(s) per setting; budget "
             f"{esc(result.sweep.get('budget'))} per run; {_lr_mode_text(result.sweep)}.</p>"]
    parts.append(_verdict(result, rec))

    parts.append("<h2>Per batch size</h2>")
    parts.append(_per_batch(result, rec, metric))
    parts.append(f"<h2>{esc(metric.capitalize())} against training time</h2>")
    parts.append(_chart(images, "accuracy_time.png", f"{metric} against training seconds"))
    parts.append(f"<h2>{esc(metric.capitalize())} against epochs</h2>")
    parts.append(_chart(images, "accuracy_epochs.png", f"{metric} against epochs"))

    parts.append("<h2>Learning-rate search</h2>")
    parts.append('<p class="muted">Every (batch size, learning rate) point tried, each with '
                 "every seed; per batch size the kept learning rate is marked. Time and steps "
                 "are medians over seeds.</p>")
    parts.append(_lr_search(result, rec))
    parts.append(_chart(images, "lr_search.png", "time to target against learning rate"))

    parts.append("<h2>Steps to target against batch size</h2>")
    parts.append(_chart(images, "steps_to_target.png", "steps to target against batch size"))

    parts.append("<h2>Time to target = steps x seconds per step</h2>")
    parts.append(_decomposition(result, rec))
    if getattr(result, "decomposition", None):
        parts.append(_chart(images, "decomposition.png",
                            "time to target = steps x seconds per step"))

    parts.append("<h2>Throughput</h2>")
    parts.append(_chart(images, "throughput.png", "throughput against batch size"))
    if result.throughput:
        parts.append(table(["batch size", "seconds per step", "seconds per example",
                            "examples/s", "step cost vs smallest", "vectorisation gain"],
                           [[esc(p["batch_size"]), seconds(p.get("step_seconds")),
                             seconds(p.get("example_seconds")),
                             rate(p.get("examples_per_second")),
                             num(p.get("step_cost_ratio"), 3),
                             num(p.get("vectorisation_gain"), 3)]
                            for p in result.throughput]))

    parts.append("<h2>Gradient noise scale</h2>")
    parts.append(_noise(result))
    if result.noise:
        parts.append(_chart(images, "noise_trace.png", "noise scale B_simple against step"))

    parts.append("<h2>Every run of the search</h2>")
    parts.append(table(["run", "batch size", "learning rate", "seed", "status",
                        "time to target", "steps to target", "final", "training s",
                        "compile s"],
                       [[esc(r["key"]), esc(r.get("batch_size")), num(r.get("lr")),
                         esc(r.get("seed")), esc(r["status"]), seconds(r["time_to_target"]),
                         steps(r["steps_to_target"]), num(r.get("final")),
                         num(r.get("train_seconds"), 3), num(r.get("compile_seconds"), 3)]
                        for r in result.per_run]))
    env = result.environment or {}
    settings = {**{k: v for k, v in result.base.items() if k not in ("extra",)},
                **{f"sweep.{k}": v for k, v in result.sweep.items() if k != "extra"}}
    parts.append("<h2>Settings and machine</h2>")
    parts.append(table(["setting", "value"],
                       [[esc(k), "—" if plain(v) is None else esc(plain(v))]
                        for k, v in [*settings.items(), *env.items()]]))
    parts.append("</body></html>")
    return "\n".join(parts)
