"""Write a sweep's plots and its self-contained HTML report into its directory."""

from __future__ import annotations

from pathlib import Path

from ..engine.rundir import prepare_dir, write_error, write_text_atomic


def write_sweep_report(result, out) -> dict:
    """Every PNG chart of :data:`~.sweep_plots.PLOTS` and ``report.html`` under ``out``;
    returns ``{name: path}``.

    A chart whose data is missing is still written (a PNG saying "not measured"), but the
    HTML embeds only the charts that were drawn and says "not measured" in place of the others.
    """
    from .html import render_sweep_html
    from .sweep_plots import PLOTS
    out = prepare_dir(out)
    images, paths = {}, {}
    from .chart_style import not_measured
    for name, plot in PLOTS.items():
        try:
            drawn = plot(result, out / name)
        except (ValueError, OverflowError) as e:
            # Degenerate data (nothing positive for a log axis, ...) must not cost the user
            # the table, the verdict and the other charts: this one says what went wrong.
            drawn = not_measured(out / name, name, f"nothing that can be drawn ({e})")
        if drawn is not False:
            try:
                images[name] = (out / name).read_bytes()
            except OSError as e:
                raise write_error(e, out / name, "read back") from None
        paths[name] = out / name
    write_text_atomic(out / "report.html", render_sweep_html(result, images))
    paths["report.html"] = Path(out) / "report.html"
    return paths
