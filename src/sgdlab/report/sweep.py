"""Write a sweep's plots and its self-contained HTML report into its directory."""

from __future__ import annotations

from pathlib import Path

from ..engine.rundir import prepare_dir, write_text_atomic


def write_sweep_report(result, out) -> dict:
    """PNG charts and ``report.html`` under ``out``; returns ``{name: path}``."""
    from .html import render_sweep_html
    from .sweep_plots import PLOTS
    out = prepare_dir(out)
    images, paths = {}, {}
    for name, plot in PLOTS.items():
        plot(result, out / name)
        images[name] = (out / name).read_bytes()
        paths[name] = out / name
    write_text_atomic(out / "report.html", render_sweep_html(result, images))
    paths["report.html"] = Path(out) / "report.html"
    return paths
