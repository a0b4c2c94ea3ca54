"""``sgdlab train``: fit one model, show progress, write a run directory."""

from __future__ import annotations

import math
import os
import sys
import warnings

from ..errors import ConfigError
from .common import (Formatter, add_data_options, add_model_options, add_optim_options,
                     add_stop_options, config_from_args, default_out, read_config_file,
                     settings_from_args)
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
  sgdlab train --name mlp-b64 --model mlp --checkpoint-every "200 steps"   # runs/mlp-b64
  sgdlab train --resume runs/mlp-b64            # continue exactly where it stopped
  sgdlab train --lr 5 --on-divergence halve-lr  # on NaN/inf: back to the last checkpoint, lr/2

The run directory holds config.json, history.csv (appended row by row), metrics.json,
params.npz, checkpoints/ and PNG curves against epochs and against training seconds
(evaluation and compilation excluded). SIGTERM or Ctrl-C saves a checkpoint at the next chunk
boundary and exits (130/143); --resume continues it. Exit codes: 0 done, 1 diverged, 2 bad
input or settings.
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
    g.add_argument("--name", help="run name: the run directory is runs/NAME (no path "
                                  "separators or '..')")
    g.add_argument("--config", help="TOML file of settings (flags override it)")
    g.add_argument("--quiet", action="store_true", help="no progress bar or table")
    g = p.add_argument_group("checkpoints and failures")
    g.add_argument("--resume", metavar="RUN_DIR",
                   help="continue RUN_DIR from its newest valid checkpoint, bit-exactly; "
                        "settings not given come from the run")
    g.add_argument("--force", action="store_true",
                   help="with --resume: continue even though settings or data changed "
                        "(recorded in metrics.json)")
    g.add_argument("--checkpoint-every",
                   help="checkpoint schedule: '200 steps', '30s', '1 epoch' (default), or "
                        "'end'; always at step 0 and at the end")
    g.add_argument("--keep-checkpoints", type=int, help="newest checkpoints kept (default 3)")
    g.add_argument("--on-divergence", choices=["stop", "halve-lr"],
                   help="on a NaN/inf loss: stop (default), or restart from the last "
                        "checkpoint with half the learning rate")
    g.add_argument("--max-retries", type=int,
                   help="learning-rate halvings allowed with halve-lr (default 3)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..api import fit  # lazy: keeps 'sgdlab --help' fast
    from ..engine.checkpoint import CheckpointWarning
    from ..engine.lock import run_dir_for_name

    file_settings = read_config_file(args.config)
    config = config_from_args(args, file_settings)  # validates every given setting
    if args.resume and args.out and os.path.realpath(args.out) != os.path.realpath(args.resume):
        raise ConfigError("--resume RUN_DIR continues that directory; --out names another "
                          "one: give only --resume")
    if args.name is not None and (args.out or args.resume):
        raise ConfigError("--name picks the run directory runs/NAME; do not combine it with "
                          "--out or --resume")
    out = args.resume or args.out or (str(run_dir_for_name(args.name)) if args.name
                                      else default_out("train"))
    if args.force and not args.resume:
        raise ConfigError("--force only applies with --resume RUN_DIR")
    data = args.data or file_settings.get("data")
    settings = {"label_column": args.label_column or file_settings.get("label_column"),
                "task": args.task or file_settings.get("task"),
                "checkpoint_every": args.checkpoint_every,
                "keep_checkpoints": args.keep_checkpoints,
                "on_divergence": args.on_divergence, "max_retries": args.max_retries}
    if args.resume:  # only what was given: the rest comes from the checkpoint
        settings.update(settings_from_args(args, file_settings))
        kwargs = {"resume": args.resume, "force": args.force}
    else:
        kwargs = {"config": config, "out": out}
        data = data or "digits"
    progress = None if args.quiet else TrainProgress(config, data)
    with warnings.catch_warnings():
        warnings.simplefilter("always", CheckpointWarning)
        warnings.showwarning = _show_warning
        with (progress or _null()):
            result = fit(data, callback=progress, **kwargs, **settings)
    if not args.quiet:
        print_summary(result, out)
    if result.status == "diverged":
        print(f"sgdlab train: {result.message}", file=sys.stderr)
        return 1
    if result.status == "interrupted":
        print(f"sgdlab train: {result.message.replace('RUN_DIR', out)}", file=sys.stderr)
        return 128 + int(result.extra.get("signal", 2))  # the shell's convention
    return 0


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"sgdlab train: warning: {message}", file=sys.stderr)


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _fmt(v) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4g}"
