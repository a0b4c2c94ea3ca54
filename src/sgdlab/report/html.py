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
import inspect
import math
import numbers

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


def shown_settings(base: dict) -> dict:
    """The run settings worth showing: a model option only when the model's factory takes it
    (no ``channels`` for a softmax model), an optimiser option only for the optimiser that
    takes it (``momentum`` for momentum and nesterov)."""
    from ..engine.config import key_fields
    from ..optim import OPTIMIZERS
    from ..optim.optimizers import optimizer_options
    from ..tasks import TASK_MODELS
    drop = set()
    model = base.get("model")
    if model in TASK_MODELS:
        takes = set(inspect.signature(TASK_MODELS[model][0]).parameters)
        drop |= {k for k in key_fields("model") if k not in ("model", "loss", *takes)}
    opt = base.get("optimizer")
    if opt in OPTIMIZERS:
        every = {o for name in OPTIMIZERS for o in optimizer_options(name)}
        drop |= every - set(optimizer_options(opt))
    return {k: v for k, v in base.items() if k not in drop and k != "extra"}


def _lr_mode_text(sweep: dict) -> str:
    mode = sweep.get("lr_mode")
    base = (f"learning rate {num(sweep.get('lr'))} at batch {esc(sweep.get('base_batch'))}, "
            f"scaled by {esc(sweep.get('lr_scaling'))}")
    if mode == "search":
        text = (f"{base}, then searched per batch size: a bracket with factor "
                f"{num(sweep.get('search_factor'), 3)} between points around the scaled "
                f"learning rate, refined down to a factor {num(sweep.get('lr_resolution'), 3)}"
                "; within a batch size the learning rates are ranked by median steps to the "
                "target (the same compiled program, so fewer steps is faster)")
    elif mode == "grid":
        text = f"{base}, then a fixed grid of multipliers tried per batch size"
    else:
        text = f"{base} (the scaling rule alone, no search)"
    if sweep.get("stop_at_target"):
        text += "; runs stop at the target"
    return text


def _budget_text(sweep: dict) -> str:
    if sweep.get("budget"):
        return f"budget {esc(sweep['budget'])} per run"
    return ("no per-run budget beyond the early stops (a batch size's runs before any reached "
            "the target: 20 epochs)")


def _verdict(result, rec) -> str:
    head = (f"Recommended batch size: {esc(rec.batch_size)}, learning rate {num(rec.lr)}"
            if rec.batch_size is not None else "No recommendation")
    parts = [f'<div class="verdict"><h2 style="border:0;margin-top:0">{head}</h2>']
    for i, sentence in enumerate(rec.sentences):
        parts.append(f'<p class="tie">{esc(sentence)}</p>' if i == 0 else
                     f"<p>{esc(sentence)}</p>")
    if result.command:
        parts.append(f"<p>Next: train with the recommendation</p><pre>{esc(result.command)}"
                     "</pre>")
    parts.append("</div>")
    return "".join(parts)


def _per_batch(result, rec, metric: str) -> str:
    tied = set(rec.tied)
    best_i = next((i for i, g in enumerate(result.batches)
                   if g.batch_size == rec.batch_size), None)
    rows = [[esc(g.batch_size) + (" ≈" if g.batch_size in tied and i != best_i else ""),
             num(g.lr), num(g.points), esc(g.status_text),
             seconds(g.time_median) if g.timed or not math.isfinite(g.steps_median)
             else "—", seconds_range(g.time_low, g.time_high) if g.timed else "—",
             steps(g.steps_median), num(g.epochs_median, 3), num(g.final_median),
             seconds(g.step_seconds), esc(g.calls if g.calls is not None else "—"),
             seconds(g.predicted_seconds), esc(_stop_text(g))]
            for i, g in enumerate(result.batches)]
    classes = ["tied" if g.batch_size in tied else "" for g in result.batches]
    return (table(["batch size", "learning rate", "lrs tried", "seeds", "median time",
                   "range", "steps", "epochs", f"final {metric}", "s/step (probe)",
                   "calls", "predicted", "search"], rows, best_i, classes)
            + '<p class="muted">Times are training seconds to the target, median and range '
            "over seeds: each seed's run was replayed for exactly its steps to the target "
            "with no evaluation in between, every batch size in the same rounds of random "
            "order (the median of the rounds is the seed's time). Evaluation and compilation "
            "are excluded. Steps and epochs are medians too. Each row is the batch size's "
            "kept learning rate."
            + (" ≈ marks batch sizes tied with the recommendation." if len(tied) > 1 else "")
            + " Predicted time = steps x seconds per step + calls x seconds per call, both "
            "from the throughput probe. 'search' says why a batch size's search ended "
            "(resolution reached; stopped because it was more than 3x slower than the best; "
            "out of points).</p>")


def _stop_text(g) -> str:
    return {"resolution": "refined", "behind": "behind (>3x slower)", "points": "out of points",
            "fixed": "fixed grid", "range": "lr range", "": "—"}.get(g.search_end,
                                                                     g.search_end)


def _lr_search(result, rec) -> str:
    points = sorted(result.points, key=lambda p: (p.batch_size, p.lr))
    if not points:
        return '<p class="muted">No learning-rate points recorded.</p>'
    best = [i for i, p in enumerate(points) if p.chosen and p.batch_size == rec.batch_size]
    rows = [[esc(p.batch_size), num(p.lr), "×" + num(p.lr_multiplier, 3), esc(p.order + 1),
             esc(p.status_text), steps(p.steps_median),
             esc(" ".join(steps(k) if math.isfinite(k) else "miss" for k in p.seed_steps)),
             seconds(p.predicted_seconds), num(p.final_median),
             esc(f"{p.cap} ({p.cap_reason})" if p.cap is not None and p.cap_reason
                 else p.cap if p.cap is not None else "—"),
             "✓ kept" if p.chosen else ""] for p in points]
    classes = ["chosen" if p.chosen else "" for p in points]
    return table(["batch size", "learning rate", "× scaled lr", "order tried", "seeds",
                  "steps (median)", "steps per seed", "predicted time", "final (median)",
                  "step cap", "kept"], rows, best[0] if best else None, classes)


def _decomposition(result, rec) -> str:
    if not result.probe:
        return ('<p class="muted">Not measured: the decomposition needs the throughput probe '
                "(run without --no-probe).</p>")
    rows = result.batches
    best_i = next((i for i, r in enumerate(rows) if r.batch_size == rec.batch_size), None)
    cells = [[esc(r.batch_size), steps(r.steps_median), seconds(r.step_seconds),
              esc(r.calls if r.calls is not None else "—"), seconds(r.call_seconds),
              seconds(r.predicted_seconds), seconds(r.time_median) if r.timed else "—",
              num(r.ratio, 3), num(r.overhead_share, 2)] for r in rows]
    return (table(["batch size", "steps to target (median)", "seconds per step (probe)",
                   "compiled calls (replay)", "seconds per call (probe)",
                   "predicted = steps x s/step + calls x s/call", "measured (replays)",
                   "measured / predicted", "share of the calls' fixed cost"], cells, best_i)
            + '<p class="muted">Steps come from the evaluated runs, seconds per step and per '
            "call from the throughput probe, the measured time from the replays (which make "
            "as few calls as the program allows); a ratio near 1 means the two factors "
            "explain the measured time. A large share of the calls' fixed cost means the "
            "comparison is dominated by that overhead.</p>")


def _noise(result) -> str:
    n = result.noise
    if n is None:
        return "<p>Not measured (the noise scale was not run).</p>"
    fin = lambda v: _real(v) is not None and math.isfinite(v)  # noqa: E731
    run = (f" during a run at batch size {esc(n.batch_size)}, learning rate {num(n.lr)}"
           + (" (which reached the target)" if n.reached_target
              else " (which did not reach the target)"))
    if fin(n.b_simple):
        text = (f"B_simple = tr(&Sigma;)/|G|&sup2; = {num(n.b_simple)} (two-batch estimate, "
                f"68% interval {num(n.low)} – {num(n.high)}), from {esc(n.draws)} pairs of "
                f"batches of {esc(n.b_small)} and {esc(n.b_big)} examples pooled over the "
                f"second half of the run{run}; |G|&sup2; = {num(n.grad_sq)}, tr(&Sigma;) = "
                f"{num(n.trace_sigma)}.")
    else:
        text = "B_simple: not measured" + (f": {esc(n.reason)}" if n.reason else
                                           " (|G|&sup2; estimate not positive).")
    parts = [f"<p>{text}</p>"]
    if fin(n.b_noise):
        parts.append(f"<p>B_noise = tr(H&Sigma;)/(G&#7488;HG) = {num(n.b_noise)} (interval "
                     f"{num(n.b_noise_low)} – {num(n.b_noise_high)}) at the end of the run"
                     + (f"; the same measurement, from per-example gradients at that one "
                        f"point, gives tr(&Sigma;)/|G|&sup2; = {num(n.b_simple_at_target)} "
                        "(a second estimator of B_simple, not pooled over the run)"
                        if fin(n.b_simple_at_target) else "") + ".</p>")
    else:
        parts.append("<p>B_noise (Hessian-weighted): not measured"
                     + (f": {esc(n.reason)}" if n.reason else "") + ".</p>")
    return "".join(parts)


def _warmup(w) -> str:
    """The warmup's sentences, its critical batch sizes per checkpoint and both contenders."""
    parts = [f"<p>{esc(s)}</p>" for s in (w.agreement, *w.sentences) if s]
    c = w.curve
    if c.measured:
        parts.append(table(
            ["share of the way", "examples seen", "validation loss there",
             "critical batch size (median)", "range over seeds"],
            [[num(p.fraction, 3), esc(f"{p.examples:,}"), num(p.start_loss),
              esc(f"{p.b_crit:g}"), esc(f"{p.low:g} – {p.high:g}")] for p in c.points]))
    rows = [[esc(x.label), esc(x.schedule or "—"), esc(", ".join(map(str, x.seeds))),
             steps(median_of(x.steps)), steps(median_of(x.examples)),
             seconds(median_of(x.times))] for x in (w.schedule, w.fixed) if x is not None]
    if rows:
        parts.append(table(["contender", "schedule", "seeds", "steps to target",
                            "examples to target", "time to target (replayed)"], rows))
    parts.append(f'<p class="muted">The warmup took {seconds(w.wall_seconds)} wall beside the '
                 f"fixed-batch sweep's {seconds(w.sweep_seconds)}; training programs compiled: "
                 f"{esc(w.compilations.get('branches', 0))} for the branches, "
                 f"{esc(w.compilations.get('schedule', 0))} for the schedule's runs.</p>")
    return "".join(parts)


def median_of(values) -> float:
    v = sorted(float(x) for x in values)
    if not v:
        return math.nan
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2


def _cost(result) -> str:
    c = result.cost
    if c is None:
        return ""
    rows = [[esc(name), seconds(sec)] for name, sec in c.phases.items()]
    rows += [["total (wall)", seconds(c.wall_seconds)]]
    clocks = [["training (evaluated runs)", seconds(c.train_seconds)],
              ["training (timed replays)", seconds(c.replay_seconds)],
              ["evaluation", seconds(c.eval_seconds)],
              ["compilation", seconds(c.compile_seconds)],
              ["everything else (set-up, probe, noise run, tables)",
               seconds(max(0.0, c.wall_seconds - c.train_seconds - c.replay_seconds
                           - c.eval_seconds - c.compile_seconds))]]
    return (f'<p class="muted">{esc(c.runs)} evaluated runs ({esc(c.reused)} reused from an '
            f"earlier call), {esc(c.replays)} timed replays, "
            f"{esc(', '.join(f'{n} {k}' for k, n in c.compilations.items() if n))} programs "
            "compiled. The plots and this page are not included.</p>"
            + table(["phase", "wall time"], rows) + table(["clock", "seconds"], clocks))


def _chart(images: dict, name: str, alt: str) -> str:
    if name in images:
        return image(name, images[name], alt)
    return f'<p class="muted">Chart not drawn ({esc(alt)}): not measured.</p>'


def render_sweep_html(result, images: dict) -> str:
    """The report as one string. ``images`` maps a plot file name to its PNG bytes (a chart
    missing from it is reported as not measured)."""
    rec = result.recommendation
    metric = "validation R^2" if result.metric == "val_r2" else "validation accuracy"
    title = f"sgdlab sweep: {result.data}, {result.base.get('model')}"
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
             f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{esc(title)}</h1>",
             f'<p class="muted">{num(result.n_train)} training and {num(result.n_validation)} '
             f"validation examples; target {esc(metric)} {num(result.target)} "
             f"({esc(result.target_source)}); {esc(result.sweep.get('seeds'))} seed(s) per "
             f"setting; {_budget_text(result.sweep)}; {_lr_mode_text(result.sweep)}.</p>"]
    parts.append(_verdict(result, rec))

    parts.append("<h2>Per batch size</h2>")
    parts.append(_per_batch(result, rec, metric))
    parts.append(f"<h2>{esc(metric.capitalize())} against training time</h2>")
    parts.append(_chart(images, "accuracy_time.png", f"{metric} against training seconds"))
    parts.append(f"<h2>{esc(metric.capitalize())} against epochs</h2>")
    parts.append(_chart(images, "accuracy_epochs.png", f"{metric} against epochs"))

    parts.append("<h2>Learning-rate search</h2>")
    parts.append('<p class="muted">Every (batch size, learning rate) point tried, each with '
                 "every seed. Within a batch size the points are ranked by median steps to "
                 "the target: every learning rate runs the same compiled program, so fewer "
                 "steps is faster, and the predicted time (steps x the probe's cost of a "
                 "step) orders them the same way. A point's runs stop at a step cap: twice "
                 "the steps of the batch size's best learning rate so far, or 3x the best "
                 "batch size's predicted time ('behind'), or the budget.</p>")
    parts.append(_lr_search(result, rec))
    parts.append(_chart(images, "lr_search.png", "time to target against learning rate"))

    parts.append("<h2>Steps to target against batch size</h2>")
    parts.append(_chart(images, "steps_to_target.png", "steps to target against batch size"))

    parts.append("<h2>Time to target = steps x seconds per step</h2>")
    parts.append(_decomposition(result, rec))
    if result.probe:
        parts.append(_chart(images, "decomposition.png",
                            "time to target = steps x seconds per step"))

    parts.append("<h2>Throughput</h2>")
    parts.append(_chart(images, "throughput.png", "throughput against batch size"))
    if result.probe:
        parts.append(table(["batch size", "seconds per step", "seconds per example",
                            "examples/s", "step cost vs smallest", "vectorisation gain"],
                           [[esc(p.batch_size), seconds(p.step_seconds),
                             seconds(p.example_seconds), rate(p.examples_per_second),
                             num(p.step_cost_ratio, 3), num(p.vectorisation_gain, 3)]
                            for p in result.probe]))

    parts.append("<h2>Gradient noise scale</h2>")
    parts.append(_noise(result))
    if result.noise is not None:
        parts.append(_chart(images, "noise_trace.png", "noise scale B_simple against step"))

    if result.warmup is not None:
        parts.append("<h2>Batch size over training (batch-size warmup)</h2>")
        parts.append(_warmup(result.warmup))
        parts.append(_chart(images, "batch_warmup.png",
                            "critical batch size against examples seen"))

    parts.append("<h2>What the sweep cost</h2>")
    parts.append(_cost(result))

    parts.append("<h2>Every run</h2>")
    parts.append(table(["run", "phase", "batch size", "learning rate", "seed", "status",
                        "steps to target", "time to target (replayed)", "final", "step cap",
                        "training s", "compile s"],
                       [[esc(r.key), esc(r.phase), esc(r.batch_size), num(r.lr), esc(r.seed),
                         esc(r.status), steps(r.steps_to_target), seconds(r.time_to_target),
                         num(r.final), esc(r.cap if r.cap is not None else "—"),
                         num(r.train_seconds, 3), num(r.compile_seconds, 3)]
                        for r in result.runs]))
    env = result.environment or {}
    settings = {**shown_settings(result.base),
                **{f"sweep.{k}": v for k, v in result.sweep.items() if k != "extra"}}
    parts.append("<h2>Settings and machine</h2>")
    parts.append(table(["setting", "value"],
                       [[esc(k), "—" if plain(v) is None else esc(plain(v))]
                        for k, v in [*settings.items(), *env.items()]]))
    parts.append("</body></html>")
    return "\n".join(parts)
