"""``sgdlab train``: fit one model, show progress, write a run directory."""

from __future__ import annotations

import math
import sys

from .common import (Formatter, add_data_options, add_model_options, add_optim_options,
                     add_stop_options, config_from_args, default_out, read_config_file)
from .display import TrainProgress, print_summary

EXAMPLES = """\
examples:
  sgdlab train                                  # softmax regression on the bundled digits
  sgdlab train --data digits --model softmax --batch-size 32 --epochs 30 --lr 0.1 \\
               --seed 0 --out runs/d1
  sgdlab train --data my.csv --label-column species --model mlp --hidden 256,128 \\
               --batch-size 64 --eval-every 2s --target-accuracy 0.97 --max-time 60s
  sgdlab train --batch-size 1 --epochs 2        # stochastic gradient descent
  sgdlab train --config settings.toml --lr 0.05 # flags override the file
  sgdlab train --noise-scale                    # also measure the gradient noise scale

The run directory holds config.json, history.csv, metrics.json, params.npz and PNG curves
against epochs and against training seconds (evaluation and compilation excluded).
"""


def register(sub) -> None:
    p = sub.add_parser("train", help="fit one model and write a run directory",
                       description=__doc__.strip().strip("`"), epilog=EXAMPLES,
                       formatter_class=Formatter)
    add_data_options(p)
    add_model_options(p)
    add_optim_options(p)
    add_stop_options(p)
    g = p.add_argument_group("output")
    g.add_argument("--out", help="run directory (default runs/train-<time>)")
    g.add_argument("--config", help="TOML file of settings (flags override it)")
    g.add_argument("--quiet", action="store_true", help="no progress bar or table")
    g.add_argument("--noise-scale", action="store_true",
                   help="also measure the gradient noise scale B_simple at every evaluation "
                        "(written to metrics.json as noise_scale)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..api import as_dataset, fit  # lazy: keeps 'sgdlab --help' fast

    file_settings = read_config_file(args.config)
    config = config_from_args(args, file_settings)
    data = as_dataset(args.data or file_settings.get("data", "digits"),
                      label_column=args.label_column or file_settings.get("label_column"),
                      task=args.task or file_settings.get("task"))
    out = args.out or default_out("train")
    progress = None if args.quiet else TrainProgress(config, data)
    callback, meter = progress, None
    if args.noise_scale:
        from ..lab.noise import meter_for_fit
        meter = meter_for_fit(data, config)
        callback = _both(progress, meter)
    with (progress or _null()):
        result = fit(data, config=config, out=out, callback=callback)
    if not args.quiet:
        print_summary(result, out)
    if meter is not None and meter.steps:
        print(f"gradient noise scale: {meter.estimate().describe()}")
    if result.status == "diverged":
        print(f"sgdlab train: {result.message}", file=sys.stderr)
        return 1
    return 0


def _both(first, second):
    """One callback calling two (the first may be None)."""
    def call(event):
        if first is not None:
            first(event)
        second(event)
    return call


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _fmt(v) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4g}"
