"""``sgdlab compare-methods``: random search, numerical and analytic gradient descent at
several batch sizes, each for the same training-time budget, on one problem."""

from __future__ import annotations

from .common import (Formatter, add_data_options, add_model_options, data_spec,
                     default_out, given_settings)
from .output import add_overwrite_option

EXAMPLES = """\
examples:
  sgdlab compare-methods                             # digits, softmax, 2 s per method
  sgdlab compare-methods --budget 5s --target 0.95 --out runs/methods
  sgdlab compare-methods --methods sgd-1,minibatch-32,full-batch --lr 0.05

Methods: random-global, random-local, numerical (finite-difference gradients, batch 32;
linear models only), full-batch, sgd-1, minibatch-32, minibatch-256. The run directory holds
comparison.csv, history_<method>.csv, trace_<method>.csv, metrics.json,
accuracy_vs_time.png (validation accuracy against training seconds) and loss_vs_steps.png
(per-step mini-batch loss: batch 1 zig-zags, the full batch descends smoothly).
"""


def register(sub) -> None:
    p = sub.add_parser("compare-methods",
                       help="random search vs numerical vs analytic gradients, same time budget",
                       description=__doc__.strip().replace("``", ""), epilog=EXAMPLES,
                       formatter_class=Formatter)
    add_data_options(p)
    add_model_options(p)
    g = p.add_argument_group("comparison")
    g.add_argument("--budget", default="2s",
                   help="training time per method, e.g. 2s, 1min (default 2s)")
    g.add_argument("--methods", help="comma-separated subset of the methods (default: all)")
    g.add_argument("--lr", type=float, default=0.1,
                   help="learning rate of every gradient method (default 0.1)")
    g.add_argument("--target", type=float, default=0.9,
                   help="validation accuracy (R^2) whose first crossing is timed (default 0.9)")
    g.add_argument("--trace-steps", type=int, default=150,
                   help="steps in the loss-against-steps plot (default 150)")
    g.add_argument("--sigma", type=float, help="local random search step (default 0.05)")
    g.add_argument("--seed", type=int, default=0, help="seed of split, init and order")
    g.add_argument("--out", help="run directory (default runs/compare-methods-<time>): a new "
                                 "or empty directory, or with --overwrite such a run")
    add_overwrite_option(g, "compare-methods")
    g.add_argument("--quiet", action="store_true", help="no table")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..api import as_dataset
    from ..data import split
    from ..engine import TrainConfig
    from ..engine.claim import claim_output
    from ..engine.schedule import parse_duration
    from ..lab.compare import compare_methods
    from ..optim.random_search import RandomSearchConfig
    from ..report.compare import write_comparison
    from .display import console, print_comparison

    data = as_dataset(data_spec(args), label_column=args.label_column, task=args.task)
    base = TrainConfig(**given_settings(args, "model"), **given_settings(args, "data"),
                       lr=args.lr, seed=args.seed)
    parts = split(data, validation=base.validation_fraction, seed=base.seed)
    methods = None if not args.methods else [m.strip() for m in args.methods.split(",")
                                             if m.strip()]
    search = RandomSearchConfig(sigma=args.sigma) if args.sigma else None

    def progress(method, result):
        if not args.quiet:
            console.print(f"  {method}: {result.steps:,} steps in {result.train_seconds:.2f}s")

    out = args.out or default_out("compare-methods")
    with claim_output(out, "compare-methods", overwrite=args.overwrite) as claim:
        comparison = compare_methods(parts.train, parts.validation,
                                     budget=parse_duration(args.budget), base=base,
                                     methods=methods, target=args.target,
                                     trace_steps=args.trace_steps, search=search,
                                     callback=progress)
        write_comparison(claim.path, comparison, data_name=data.name)
    if not args.quiet:
        print_comparison(comparison.rows, comparison.settings["metric"], args.target, out)
    return 0
