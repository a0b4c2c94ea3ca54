"""``sgdlab landscape``: restarts, loss-surface slices, convexity probe and saddle demos."""

from __future__ import annotations

import time

from .common import (Formatter, add_data_options, add_model_options, add_optim_options,
                     add_stop_options, config_from_args, data_spec, default_out,
                     read_config_file)
from .output import add_overwrite_option

EXAMPLES = """\
examples:
  sgdlab landscape                              # softmax on the bundled digits, 5 restarts
  sgdlab landscape --model mlp --hidden 64 --seeds 5 --grid 51 --out runs/land-mlp
  sgdlab landscape --model softmax --l2 0.01 --batch-size 1438 --lr 1 --epochs 1000 \\
                   --eval-every end --out runs/land-convex   # full-batch GD: restarts coincide
  sgdlab landscape --model mlp --saddle none --no-slices    # restarts and convexity only
  sgdlab landscape --saddle monkey --grid 31 --path-steps 100

What it does: trains the configuration once per seed (same split, different initialisation
and batch order), reports the pairwise relative distance |w_a - w_b| / (|w_a| + |w_b|) and the
spread of validation accuracy with a verdict (convex-like / non-convex), interpolates between
two solutions (barrier height), draws a filter-normalised 2-D slice (contour + surface) and
the paths of batch size 1, B and N on their PCA plane, probes the chord inequality, and runs
the saddle demos (x^2 - y^2, x^3 - 3xy^2). The run directory holds landscape.json, CSV files,
PNG plots, params_seed<S>.npz and a self-contained landscape.html.
"""


def register(sub) -> None:
    p = sub.add_parser("landscape", help="restarts, loss-surface slices, convexity, saddles",
                       description="Restarts, loss-surface slices, convexity probe and saddle "
                                   "demos for one training configuration.", epilog=EXAMPLES,
                       formatter_class=Formatter)
    add_data_options(p)
    add_model_options(p)
    add_optim_options(p)
    add_stop_options(p)
    g = p.add_argument_group("landscape")
    g.add_argument("--seeds", type=int, default=5,
                   help="number of restarts K: seeds S..S+K-1 with S = --seed (default 5)")
    g.add_argument("--grid", type=int, default=51, help="points per side of each 2-D slice "
                                                        "(default 51)")
    g.add_argument("--span", type=float, default=1.0,
                   help="half-width of the random slice in filter-normalised units (default 1)")
    g.add_argument("--directions", default="filter", choices=["filter", "layer", "none"],
                   help="normalisation of the random directions (default filter)")
    g.add_argument("--path-steps", type=int, default=200,
                   help="steps of the batch 1 / B / N paths (default 200)")
    g.add_argument("--segments", type=int, default=100,
                   help="random segments of the convexity probe (default 100)")
    g.add_argument("--saddle", default="all", help="saddle demo: saddle, monkey, all (default) "
                                                   "or none")
    g.add_argument("--no-slices", dest="slices", action="store_false",
                   help="skip the 2-D slices and paths")
    g = p.add_argument_group("output")
    g.add_argument("--out", help="run directory (default runs/landscape-<time>): a new or "
                                 "empty directory, or with --overwrite a landscape run")
    add_overwrite_option(g, "landscape")
    g.add_argument("--config", help="TOML file of settings (flags override it)")
    g.add_argument("--quiet", action="store_true", help="no progress messages or summary")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..api import as_dataset  # lazy: keeps 'sgdlab --help' fast
    from ..engine.claim import claim_output
    from ..errors import ConfigError
    from ..report.landscape import barrier_sentence
    from .display import print_lines

    if args.seeds < 2:
        raise ConfigError(f"--seeds must be at least 2 to compare restarts, got {args.seeds}")
    file_settings = read_config_file(args.config)
    config = config_from_args(args, file_settings)
    data = as_dataset(data_spec(args, file_settings),
                      label_column=args.label_column or file_settings.get("label_column"),
                      task=args.task or file_settings.get("task"))
    out = args.out or default_out("landscape")
    with claim_output(out, "landscape", overwrite=args.overwrite) as claim:
        res = _landscape(args, config, data, claim.path, out)
    if not args.quiet:
        lines = [res.restarts.summary, "interpolation: " + barrier_sentence(res.interpolation)]
        if res.random_slice is not None:
            sl = res.random_slice
            lines.append(f"slice: {len(sl.alphas)}x{len(sl.betas)} points evaluated in "
                         f"{sl.seconds:.2f} s (compiling {sl.compile_seconds:.2f} s)")
        if res.convexity is not None:
            lines.append("convexity: " + res.convexity.summary)
        lines += [d.summary for d in res.saddles]
        lines.append(f"run directory: {out} (landscape.html)")
        print_lines(lines)
    return 0


def _landscape(args, config, data, where, out):
    """Compute the landscape and write it into ``where``: ``--out`` as claimed by the caller
    (beside it while an overwrite is built)."""
    from ..lab import run_landscape
    from ..report.landscape import write_landscape
    from .display import console

    t0 = time.perf_counter()
    say = None if args.quiet else (lambda msg: console.print(
        f"[dim]landscape {time.perf_counter() - t0:6.1f}s[/dim] {msg}", highlight=False))
    seeds = range(config.seed, config.seed + args.seeds)
    res = run_landscape(data, config, seeds=seeds, split_seed=config.seed, grid=args.grid,
                        span=args.span, normalize=args.directions, path_steps=args.path_steps,
                        convexity_segments=args.segments, saddles=[args.saddle],
                        slices=args.slices, progress=say)
    if say:
        say(f"writing {out}")
    write_landscape(where, res)
    return res
