"""Write a landscape run to its directory: numbers (JSON, CSV), PNG plots and an HTML page.

Files written (each atomically):

=====================  ===============================================================
landscape.json         every number: restarts, interpolation, slices, convexity, saddles
restarts.csv           seed, validation accuracy and loss, mean distance to the others
interpolation.csv      t, training objective and accuracy, validation loss and accuracy
slice_random.csv       a, b, objective, accuracy on the random slice
slice_paths.csv        a, b, objective, accuracy on the PCA plane of the paths
paths.csv              path, step, a, b (PCA coordinates), true objective
params_seed<S>.npz     the parameters of each restart (named arrays, no pickle)
*.png                  restarts, interpolation, slice_random, slice_paths, saddle_<name>
landscape.html         one self-contained page: images inline (base64), text escaped
=====================  ===============================================================

:func:`landscape_section` returns the HTML body alone, so a larger report can embed it.
"""

from __future__ import annotations

import base64
import csv
import html
import io
from pathlib import Path

import numpy as np

from ..engine.rundir import (environment, prepare_dir, save_params, write_json_atomic,
                             write_text_atomic)

__all__ = ["write_landscape", "landscape_section", "landscape_page"]

#: a barrier smaller than this share of the end losses is float rounding, not a ridge.
FLAT_BARRIER = 1e-4


def _csv_text(header, rows) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in rows:
        w.writerow([repr(float(v)) if isinstance(v, (float, np.floating)) else v for v in r])
    return buf.getvalue()


def _slice_csv(sl) -> str:
    A, B = np.meshgrid(sl.alphas, sl.betas)
    return _csv_text(["a", "b", "loss", "accuracy"],
                     zip(A.ravel(), B.ravel(), sl.loss.ravel(), sl.accuracy.ravel()))


def _numbers(res) -> dict:
    out = {"info": res.info, "seconds": res.seconds, "restarts": res.restarts.to_dict(),
           "interpolation": res.interpolation.to_dict(),
           "saddles": [d.to_dict() for d in res.saddles], "environment": environment()}
    if res.convexity is not None:
        out["convexity"] = res.convexity.to_dict()
    for name in ("random_slice", "path_slice"):
        sl = getattr(res, name)
        if sl is not None:
            out[name] = sl.to_dict()
    return out


def write_landscape(out, res, plots: bool = True) -> Path:
    """Write every file listed in the module docstring for a :class:`LandscapeResult`."""
    out = prepare_dir(out)
    write_json_atomic(out / "landscape.json", _numbers(res))
    rep = res.restarts
    k = len(rep.seeds)
    mean_to_others = rep.distances.sum(1) / max(k - 1, 1)
    write_text_atomic(out / "restarts.csv", _csv_text(
        ["seed", "val_accuracy", "val_loss", "mean_distance_to_others"],
        zip(rep.seeds, rep.val_accuracy, rep.val_loss, mean_to_others)))
    for seed, r in zip(rep.seeds, rep.results):
        save_params(out / f"params_seed{seed}.npz", r.params)
    it = res.interpolation
    nan = np.full_like(it.t, np.nan)
    write_text_atomic(out / "interpolation.csv", _csv_text(
        ["t", "train_loss", "train_accuracy", "val_loss", "val_accuracy"],
        zip(it.t, it.train_loss, it.train_accuracy,
            nan if it.val_loss is None else it.val_loss,
            nan if it.val_accuracy is None else it.val_accuracy)))
    images: dict = {}
    if res.random_slice is not None:
        write_text_atomic(out / "slice_random.csv", _slice_csv(res.random_slice))
    if res.path_slice is not None:
        write_text_atomic(out / "slice_paths.csv", _slice_csv(res.path_slice))
        rows = []
        for label, p in res.path_slice.paths.items():
            rows += [(label, int(s), c[0], c[1], v)
                     for s, c, v in zip(p["step"], p["coords"], p["loss"])]
        write_text_atomic(out / "paths.csv", _csv_text(["path", "step", "a", "b", "loss"], rows))
    if plots:
        images = _write_plots(out, res)
    write_text_atomic(out / "landscape.html", landscape_page(res, images))
    return out


def _write_plots(out: Path, res) -> dict:
    """PNG files; returns ``{caption: path}`` in page order."""
    from . import landscape_plots as lp  # lazy: matplotlib only when plotting
    title = f"{res.info['model']} / {res.info['loss']} on {res.info['data']}"
    images = {}
    lp.plot_restarts(res.restarts, out / "restarts.png", f"{title}: {res.restarts.kind}")
    images["restarts"] = out / "restarts.png"
    lp.plot_interpolation(res.interpolation, out / "interpolation.png", title)
    images["interpolation"] = out / "interpolation.png"
    if res.random_slice is not None:
        lp.plot_random_slice(res.random_slice, out / "slice_random.png", title)
        images["slice_random"] = out / "slice_random.png"
    if res.path_slice is not None:
        lp.plot_path_slice(res.path_slice, out / "slice_paths.png", title)
        images["slice_paths"] = out / "slice_paths.png"
    for demo in res.saddles:
        path = out / f"saddle_{demo.name}.png"
        lp.plot_saddle(demo, path)
        images[f"saddle_{demo.name}"] = path
    return images


# --------------------------------------------------------------------------------------------
# HTML

_CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:right}th{background:#f3f3f3}img{max-width:100%}.verdict{font-weight:bold}
code{background:#f3f3f3;padding:0 3px}"""


def _e(x) -> str:
    return html.escape(str(x), quote=True)


def _img(path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _table(header, rows) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _g(v, fmt=".4g") -> str:
    return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else format(v, fmt)


def barrier_sentence(it) -> str:
    if it.barrier_relative < FLAT_BARRIER:
        return (f"no barrier: along the line the objective never rises above the chord "
                f"between the two solutions (largest excess {it.barrier:.3g}, "
                f"{100 * it.barrier_relative:.2g}% of the end loss: rounding)")
    return (f"a barrier of {it.barrier:.4g} ({100 * it.barrier_relative:.3g}% of the end loss) "
            "separates the two solutions: they lie in different basins")


def landscape_section(res, images: dict | None = None) -> str:
    """The landscape part of a report as an HTML fragment (``<section>``)."""
    images = images or {}
    info, rep, it = res.info, res.restarts, res.interpolation
    parts = ["<section id='landscape'><h2>Loss landscape and restarts</h2>",
             _table(["data", "model", "loss", "parameters", "training / validation rows",
                     "restart seeds"],
                    [[info["data"], info["model"], info["loss"], f"{info['n_params']:,}",
                      f"{info['n_train']} / {info['n_validation']}",
                      ", ".join(map(str, info["seeds"]))]]),
             "<h3>Restarts</h3>", f"<p class='verdict'>{_e(rep.summary)}</p>",
             _table(["seed", "validation accuracy", "validation loss", "mean distance"],
                    [[s, _g(a), _g(v), _g(d)] for s, a, v, d in
                     zip(rep.seeds, rep.val_accuracy, rep.val_loss,
                         rep.distances.sum(1) / max(len(rep.seeds) - 1, 1))])]
    if "restarts" in images:
        parts.append(_img(images["restarts"], "restart distances and accuracies"))
    parts += ["<h3>Interpolation between two solutions</h3>",
              f"<p>{_e(barrier_sentence(it))}.</p>"]
    if "interpolation" in images:
        parts.append(_img(images["interpolation"], "interpolation"))
    if res.random_slice is not None:
        sl = res.random_slice
        parts += ["<h3>2-D slice around a solution</h3>",
                  f"<p>{len(sl.alphas)} x {len(sl.betas)} points along two "
                  f"{_e(sl.normalize)}-normalised random directions (Li et al. 2018), "
                  f"evaluated in {sl.seconds:.2f} s (plus {sl.compile_seconds:.2f} s "
                  f"compiling); objective from {sl.loss.min():.4g} to "
                  f"{sl.loss.max():.4g}. Arrows point down the gradient, across the "
                  "contours.</p>"]
        if "slice_random" in images:
            parts.append(_img(images["slice_random"], "random slice"))
    if res.path_slice is not None:
        sl = res.path_slice
        parts += ["<h3>Stochastic, mini-batch and full-batch paths</h3>",
                  f"<p>{info['path_steps']} steps of each from the same initialisation, "
                  f"projected on the top two principal directions of the "
                  f"paths, which hold {100 * sum(sl.explained):.0f}% of their spread. The "
                  "contour is the objective on that plane; the path's true objective is "
                  "drawn on the surface. Batches smaller than the configured one step with "
                  "lr * sqrt(b / B), so that all paths carry the same update noise.</p>",
                  _table(["path", "learning rate", "steps", "final objective",
                          "length / displacement"],
                         [[k, _g(p.get("lr")), int(p["step"][-1]), _g(float(p["loss"][-1])),
                           _g(p["tortuosity"], ".3g")]
                          for k, p in sl.paths.items()])]
        if "slice_paths" in images:
            parts.append(_img(images["slice_paths"], "paths"))
    if res.convexity is not None:
        c = res.convexity
        parts += ["<h3>Convexity probe</h3>", f"<p class='verdict'>{_e(c.summary)}</p>"]
        if c.violations:
            parts.append(_table(["segment", "t", "J(t)", "chord", "excess", "relative"],
                                [[v["segment"], v["t"], _g(v["value"]), _g(v["chord"]),
                                  _g(v["gap"], ".3g"), f"{100 * v['relative_gap']:.2f}%"]
                                 for v in c.violations[:10]]))
    if res.saddles:
        parts += ["<h3>Saddle points</h3>",
                  "<p>The gradient vanishes at saddle points too; descent slows to a plateau "
                  "near one before it escapes.</p>",
                  _table(["surface", "critical point", "Hessian eigenvalues", "kind"],
                         [[f"{d.name}: {d.formula}",
                           f"({d.critical_point[0]:.3g}, {d.critical_point[1]:.3g})",
                           ", ".join(f"{v:+.3g}" for v in d.eigenvalues), d.kind]
                          for d in res.saddles])]
        for d in res.saddles:
            if f"saddle_{d.name}" in images:
                parts.append(_img(images[f"saddle_{d.name}"], f"saddle {d.name}"))
    secs = ", ".join(f"{k.replace('_', ' ')} {v:.1f} s" for k, v in res.seconds.items())
    parts += [f"<p><small>time: {_e(secs)}</small></p>", "</section>"]
    return "\n".join(parts)


def landscape_page(res, images: dict | None = None) -> str:
    """A complete self-contained HTML page holding :func:`landscape_section`."""
    title = f"sgdlab landscape: {res.info['model']} on {res.info['data']}"
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title>"
            f"<style>{_CSS}</style></head><body><h1>{_e(title)}</h1>\n"
            f"{landscape_section(res, images)}\n</body></html>\n")
