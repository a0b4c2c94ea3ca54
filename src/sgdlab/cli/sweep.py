"""``sgdlab sweep``: the batch-size lab. Which batch size reaches the target fastest here?"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

from ..errors import ConfigError
from ..lab.compile_cache import CACHE_SUBDIR
from .common import (Formatter, add_data_options, add_model_options, add_optim_options,
                     config_from_args, data_spec, default_out, read_config_file)
from .output import add_overwrite_option, claiming_out

EXAMPLES = """\
examples:
  sgdlab sweep                                  # the demo problem (an MLP), report
  sgdlab sweep --data digits                    # the handwritten digits (every size ties)
  sgdlab sweep --data my.parquet --label-column y --model mlp --hidden 128 \\
               --batch-sizes 1,4,16,64,256,1024 --lr 0.05 --seeds 3 \\
               --target-accuracy 0.95 --out runs/sweep1
  sgdlab sweep --batch-sizes 32,64,128,256 --lr-grid 0.5,1,2   # fixed lrs instead of a search
  sgdlab sweep --no-lr-search --lr-scaling linear  # the scaling rule alone, no search
  sgdlab sweep --full-budget --budget "20 epochs" # every run trains its whole budget
  sgdlab sweep --batch-warmup                   # then the critical batch size over training
                                                # and a batch-size warmup built from it
  sgdlab sweep --out runs/sweep1                # re-run: finished runs are reused, not redone
  sgdlab sweep --workers ray --out runs/sweep1  # runs on the Ray cluster at RAY_ADDRESS
  sgdlab sweep --workers ray://head:10001 --cpus-per-run 8   # a remote cluster, 8 CPUs a run

For every batch size B the learning rate is searched: the scaling rule gives the centre
lr0(B) = lr x rule(B / base batch); lr0(B), then lr0(B) / f and f lr0(B) are tried (f =
--search-factor, 4), the bracket is widened until the best lies inside it (divergence closes a
side) and refined by halving the spacing down to --lr-resolution (2^(1/4)); every point runs
every seed and stops at the target, and is ranked by its median steps to the target. Runs stop
early, in steps, when they can no longer win: at 2x the steps of their batch size's best
learning rate, or at 3x the best batch size's predicted time. Without --target-accuracy a pilot
at the base batch chooses it (0.99 x its best final value). Time to target is then measured by
replaying each seed's run for exactly its steps, with no evaluation in between, every batch size
in the same rounds of random order; evaluation and compilation are excluded. The output
directory holds runs/*.json (one per run), sweep.json, summary.csv, points.csv (every learning
rate tried), runs.csv, the charts and report.html (self-contained, opens offline).
"""

def _ints(text: str, what: str) -> tuple:
    try:
        values = tuple(int(p) for p in text.replace(" ", "").split(",") if p)
    except ValueError:
        raise ConfigError(f"{what} must be comma-separated whole numbers, got {text!r}; "
                          "e.g. 1,4,16,64") from None
    if not values:
        raise ConfigError(f"{what} is empty; e.g. 1,4,16,64")
    return values


def _floats(text: str, what: str) -> tuple:
    try:
        return tuple(float(p) for p in text.replace(" ", "").split(",") if p)
    except ValueError:
        raise ConfigError(f"{what} must be comma-separated numbers, got {text!r}; "
                          "e.g. 0.5,1,2") from None


def register(sub) -> None:
    p = sub.add_parser("sweep", help="find the batch size that reaches a target fastest",
                       description=__doc__.strip().replace("``", ""), epilog=EXAMPLES,
                       formatter_class=Formatter)
    from ..lab.caps import FIRST_EPOCHS
    from ..lab.sweep_config import BIG_NOISE_BATCH, EVALS_PER_RUN, SweepConfig as S
    add_data_options(p, default=f"with no --model either, the demo problem ({demo_flags()}); "
                                "else digits")
    add_model_options(p)
    add_optim_options(p, batch=False)
    from ..optim import LR_SCALINGS
    g = p.add_argument_group("sweep")
    g.add_argument("--batch-sizes", help="comma-separated (default: powers of two from 1 to "
                                         "min(1024, training examples))")
    g.add_argument("--base-batch", type=int, help="batch size at which --lr is tuned "
                                                  f"(default {S.base_batch})")
    g.add_argument("--lr-scaling", help=f"learning rate vs batch size: "
                                        f"{', '.join(LR_SCALINGS)} (default {S.lr_scaling})")
    g.add_argument("--lr-grid", help="fixed multipliers of the scaled lr tried per batch "
                                     "size instead of the search, the best kept, e.g. 0.5,1,2")
    g.add_argument("--no-lr-search", action="store_true",
                   help="no learning-rate search: each batch size at the scaling rule's lr")
    g.add_argument("--search-factor", type=float,
                   help="ratio of neighbouring learning rates in the search (default "
                        f"{S.search_factor:g})")
    g.add_argument("--lr-resolution", type=float,
                   help="ratio of neighbouring learning rates at the search's finest "
                        f"refinement (default {S.lr_resolution:.3g})")
    g.add_argument("--search-points", type=int,
                   help=f"most learning rates tried per batch size (default {S.search_points})")
    g.add_argument("--seeds", type=int, help=f"repeats per setting (default {S.seeds})")
    g.add_argument("--target-accuracy", "--target", dest="sweep_target", type=float,
                   help="validation accuracy (R^2) to reach (default: chosen by a pilot, 0.99 "
                        "x its best final value floored to 0.01; with --full-budget, 0.99 x "
                        "the best median final value of the runs)")
    g.add_argument("--budget", help="cap per run: '5 epochs', '2000 steps' or training time "
                                    "'30s' (turned into steps with the probe); default: none "
                                    f"beyond the early stops, {FIRST_EPOCHS} epochs for a batch "
                                    "size's runs before any batch size reached the target")
    g.add_argument("--eval-every", dest="sweep_eval_every",
                   help="evaluation schedule for every run (default: about "
                        f"{EVALS_PER_RUN} times up to the steps the batch size is expected to "
                        "need, at least every step)")
    g.add_argument("--timing-rounds", type=int,
                   help="rounds of replays that time each seed's run, in random order "
                        f"(default {S.timing_rounds})")
    g.add_argument("--stop-at-target", action="store_true",
                   help="end each run at the target (the default)")
    g.add_argument("--full-budget", action="store_true",
                   help="train every run for its whole budget instead of stopping at the "
                        "target")
    g.add_argument("--no-confirm", action="store_true",
                   help="skip the confirmation of the recommendation with fresh seeds (and the "
                        "extra seeds of a tie the confirmation contradicts)")
    g.add_argument("--no-probe", action="store_true", help="skip the throughput probe")
    g.add_argument("--no-noise", action="store_true", help="skip the gradient noise scale")
    from ..lab.sweep_config import BUDGET_EIGHTHS, TOLERANCE
    g.add_argument("--batch-warmup", action="store_true",
                   help="after the sweep, measure the critical batch size over training: "
                        "the smallest batch size B0 that reached the target is checkpointed "
                        "at 0, 1/8, 1/4, 1/2 and 3/4 of its way, and from each checkpoint "
                        f"B0, 2 B0, 4 B0, ... train {BUDGET_EIGHTHS}/8 of its examples at "
                        "their tuned lrs; the largest whose validation loss and metric end "
                        f"within {100 * TOLERANCE:.0f}%% of B0's is critical there. A warmup "
                        "schedule following it (tuned lr per phase) is then timed against "
                        "the recommended batch size with the sweep's and fresh seeds, and "
                        "recommended (next: --batch-schedule ...) only when faster beyond the "
                        "noise")
    g.add_argument("--noise-batches", help="small,big batch sizes for the noise scale "
                                           "(default: the smallest swept, the largest swept up "
                                           f"to {BIG_NOISE_BATCH})")
    w = p.add_argument_group("workers")
    w.add_argument("--workers", help="where the runs are made: in this process (default), "
                                     "'ray' (the Ray cluster at RAY_ADDRESS, else a local Ray "
                                     "instance) or 'ray://HOST:PORT'; one worker per GPU, or "
                                     "per CPU node; needs pip install -e '.[ray]'")
    w.add_argument("--cpus-per-run", type=int,
                   help="with --workers: CPUs each run reserves on a node without GPUs "
                        "(default: all of the node's, so no two timed runs share it)")
    o = p.add_argument_group("output")
    o.add_argument("--out", help="sweep directory (default runs/sweep-<time>); re-using one "
                                 "resumes it")
    add_overwrite_option(o, "sweep", "; without it a sweep into its own --out continues it")
    o.add_argument("--config", help="TOML file: a [sweep] table and the settings of every run "
                                    "(top level or [train]); flags override it")
    cache = "/".join(CACHE_SUBDIR)
    o.add_argument("--compile-cache", help="directory for compiled programs, reused by seeds, "
                                           f"re-runs and later sweeps (default ~/.cache/{cache}, "
                                           f"or $XDG_CACHE_HOME/{cache}; 'off'); they run as "
                                           "you, so it must be yours and writable by no one "
                                           "else")
    o.add_argument("--tensorboard", metavar="LOGDIR",
                   help="also write every run's history as TensorBoard event files, one run "
                        "per member ('B=64 lr=2.26 seed=0'; needs pip install "
                        "'sgdlab[tensorboard]')")
    o.add_argument("--quiet", action="store_true",
                   help="no progress bar, table or verdict: only the next command and the "
                        "report's path")
    p.set_defaults(func=claiming_out("sweep", run, resume=True))


def sweep_config_from_args(args, file_settings: dict):
    """The :class:`~sgdlab.lab.sweep.SweepConfig` of the flags over the file's ``[sweep]``
    table (``file_settings["sweep"]``, as :func:`read_config_file` read it)."""
    from ..lab.sweep import SweepConfig
    s = file_settings.get("sweep") or {}
    if not isinstance(s, dict):
        raise ConfigError(f"{args.config}: [sweep] must be a table of sweep settings, got "
                          f"{type(s).__name__}")
    s = {k.replace("-", "_"): v for k, v in s.items()}
    if args.batch_sizes:
        s["batch_sizes"] = _ints(args.batch_sizes, "--batch-sizes")
    if args.noise_batches:
        s["noise_batches"] = _ints(args.noise_batches, "--noise-batches")
    if args.lr_grid:
        s["lr_grid"] = _floats(args.lr_grid, "--lr-grid")
    for flag, key in (("lr", "lr"), ("base_batch", "base_batch"), ("lr_scaling", "lr_scaling"),
                      ("seeds", "seeds"), ("sweep_target", "target"), ("budget", "budget"),
                      ("sweep_eval_every", "eval_every"), ("search_factor", "search_factor"),
                      ("search_points", "search_points"), ("lr_resolution", "lr_resolution"),
                      ("timing_rounds", "timing_rounds")):
        v = getattr(args, flag, None)
        if v is not None:
            s[key] = v
    if args.stop_at_target and args.full_budget:
        raise ConfigError("--stop-at-target and --full-budget contradict each other; "
                          "choose one")
    if args.stop_at_target:
        s["stop_at_target"] = True
    if args.full_budget:
        s["stop_at_target"] = False
    if args.no_lr_search:
        if args.lr_grid:
            raise ConfigError("--lr-grid and --no-lr-search contradict each other; --lr-grid "
                              "alone already replaces the search")
        s["lr_search"] = False
    if args.no_confirm:
        s["confirm"] = False
    if args.no_probe:
        s["probe"] = False
    if args.no_noise:
        s["noise"] = False
    if args.batch_warmup:
        s["batch_warmup"] = True
    for key in ("batch_sizes", "noise_batches", "lr_grid"):
        if key in s and isinstance(s[key], list):
            s[key] = tuple(s[key])
    try:
        return SweepConfig(**s)
    except TypeError as e:
        raise ConfigError(f"bad sweep setting: {e}") from None


def run(args) -> int:
    from ..lab.ray_executor import ClusterError
    executor = None
    if args.batch_warmup and args.workers:  # said before Ray is looked for
        from ..lab.sweep_warmup import refuse_workers
        refuse_workers()
    try:
        executor = workers_from_args(args)  # before the data: a missing Ray is said at once
        return _run(args, executor)
    except ClusterError as e:  # the environment, not the input: exit code 1
        print(f"sgdlab sweep: error: {e}", file=sys.stderr)
        return 1
    finally:
        if executor is not None:
            executor.close()


def workers_from_args(args):
    """The executor of ``--workers`` (:class:`~sgdlab.lab.ray_executor.RayExecutor`), or
    None: the runs are made in this process."""
    if not args.workers:
        if args.cpus_per_run is not None:
            raise ConfigError("--cpus-per-run applies to --workers ray only; add --workers "
                              "ray or leave it out")
        return None
    from ..lab.ray_executor import RayExecutor, parse_workers
    return RayExecutor(parse_workers(args.workers) or None, cpus_per_run=args.cpus_per_run)


def is_demo(args, file_settings: dict) -> bool:
    """Neither the command line nor the settings file names data, a model or a loss: the sweep
    runs its demo problem (:data:`~sgdlab.lab.sweep_config.DEMO`)."""
    return not any(getattr(args, k, None) or file_settings.get(k)
                   for k in ("data", "model", "loss"))


def demo_flags() -> str:
    """The flags that name the demo problem: ``--data ... --model ... --hidden ...``."""
    from ..lab.sweep_config import DEMO
    return (f"--data {DEMO['data']} --model {DEMO['model']} --hidden "
            f"{','.join(map(str, DEMO['hidden']))}")


def announce_demo() -> None:
    print(f"sgdlab sweep: no --data or --model given; the demo problem: {demo_flags()} "
          "(augmented digits, where the batch size matters; --data digits for the plain "
          "digits)", file=sys.stderr)


def _run(args, executor) -> int:
    from ..api import as_dataset
    from ..lab.compile_cache import compile_cache_in, user_cache_dir
    from ..lab.sweep import run_sweep
    from ..report.sweep import write_sweep_report
    from .sweep_display import SweepProgress, print_sweep_summary

    from ..lab.sweep_config import DEMO
    file_settings = read_config_file(args.config, extra_keys=("sweep",))
    demo = is_demo(args, file_settings)
    if demo:
        file_settings = {**DEMO, **file_settings}
    sweep = sweep_config_from_args(args, file_settings)
    base = config_from_args(args, {k: v for k, v in file_settings.items() if k != "sweep"})
    if demo:  # after the settings are checked: a refused flag is the only message
        announce_demo()
    data_arg = data_spec(args, file_settings)
    label_column = args.label_column or file_settings.get("label_column")
    task = args.task or file_settings.get("task")
    data = as_dataset(data_arg, label_column=label_column, task=task)
    out = Path(args.out or default_out("sweep"))
    if args.tensorboard:  # the extra is missing: say so before the sweep, not after it
        from ..report.tensorboard import check_available
        check_available()
    data_command = ("--data", str(data_arg),
                    *(("--label-column", str(label_column)) if label_column else ()),
                    *(("--task", str(task)) if task else ()))
    progress = None if args.quiet else SweepProgress()
    with contextlib.ExitStack() as scope:
        if (args.compile_cache or "") != "off":
            scope.enter_context(compile_cache_in(args.compile_cache or user_cache_dir()))
        if progress:
            scope.enter_context(progress)
        result = run_sweep(data, sweep, base, out=out, callback=progress,
                           data_command=data_command, executor=executor)
        if progress:
            progress.phase("plots and report")
        t0 = time.perf_counter()
        paths = write_sweep_report(result, out)
        report_seconds = time.perf_counter() - t0
        report = Path(args.final_out) / paths["report.html"].name
        if args.tensorboard:
            from ..report.tensorboard import write_sweep
            write_sweep(result, args.tensorboard)
    if not args.quiet:
        print_sweep_summary(result, report, report_seconds=report_seconds)
        if result.cost.reused:
            print(f"{result.cost.reused} of {result.cost.runs} runs were finished already and "
                  f"reused from {Path(args.final_out) / 'runs'}")
    else:
        if result.command:
            print(f"next: {result.command}")
        print(f"report: {report}")
    if result.recommendation.batch_size is None:
        print("sgdlab sweep: " + " ".join(result.recommendation.sentences), file=sys.stderr)
        return 1
    return 0

