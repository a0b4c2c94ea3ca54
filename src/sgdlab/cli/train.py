"""``sgdlab train``: fit one model, show progress, write a run directory."""

from __future__ import annotations

import math
import os
import sys
import warnings
from pathlib import Path

from ..errors import ConfigError, SgdlabError
from .common import (Formatter, add_data_options, add_model_options, add_optim_options,
                     add_settings, add_stop_options, config_from_args, data_spec, default_out,
                     read_config_file, settings_from_args)
from .output import add_overwrite_option
from .trust import add_trust_option

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
  sgdlab train --data shards/ --buffer-mb 64    # stream a shard set ('sgdlab data convert');
                                                # checkpoints and --resume work as in memory
  sgdlab train --processes 2 --batch-size 64    # 2 local processes, global batch 64
  sgdlab train --coordinator 10.0.0.1:7777 --num-processes 4 --process-id 0 ...  # on each
                                                # machine, with its own --process-id
  sgdlab train --noise-scale                    # also measure the gradient noise scale
  sgdlab train --batch-schedule "16:0,64:2000,256:8000" --epochs 10
                                                # batch 16, then 64 from 2,000 examples
                                                # seen, 256 from 8,000 (one program each)
  sgdlab train --batch-schedule "16:0,64:2e,256:8e" --lr-scaling sqrt
                                                # from 2 and 8 epochs, lr x sqrt(B/16)
  sgdlab train --batch-schedule "16@0.05:0,64@0.2:2000"   # each phase's own learning rate

The run directory holds config.json, history.csv (appended row by row), metrics.json,
params.npz, checkpoints/ and PNG curves against epochs and against training seconds
(evaluation and compilation excluded). SIGTERM or Ctrl-C saves a checkpoint at the next chunk
boundary and exits (130/143); --resume continues it. A run over several processes checkpoints
the same way (process 0 writes; a signal to the --processes launcher reaches every process)
and --resume relaunches as many processes as it had; another number is refused unless --force. Exit codes: 0 done, 1 diverged, 2 bad
input or settings.
"""


def register(sub) -> None:
    p = sub.add_parser("train", help="fit one model and write a run directory",
                       description=__doc__.strip().replace("``", ""), epilog=EXAMPLES,
                       formatter_class=Formatter)
    add_data_options(p, shards=True)
    add_model_options(p)
    add_optim_options(p)
    add_settings(p.add_argument_group(
        "batch-size schedule", "the batch size over the run, in phases; each phase's "
        "learning rate is its @LR, else --lr scaled by --lr-scaling (none: --lr). A phase "
        "starts at the first step boundary at which its examples (or epochs) are reached; "
        "the history records every row's batch_size and lr"), "batch schedule")
    add_stop_options(p)
    g = p.add_argument_group("output")
    g.add_argument("--out", help="run directory (default runs/train-<time>)")
    g.add_argument("--name", help="run name: the run directory is runs/NAME (no path "
                                  "separators or '..')")
    add_overwrite_option(g, "train", "; --resume continues it instead")
    g.add_argument("--config", help="TOML file of settings (flags override it)")
    g.add_argument("--quiet", action="store_true", help="no progress bar or table")
    g.add_argument("--tensorboard", metavar="LOGDIR",
                   help="also write the history as TensorBoard event files under LOGDIR/RUN "
                        "(RUN: the run directory's name; needs pip install 'sgdlab[tensorboard]')")
    g = p.add_argument_group("starting point and validation data")
    g.add_argument("--init", metavar="RUN_DIR",
                   help="start from that run's trained model (fine-tuning): its network, "
                        "preprocessing and classes, fresh optimiser state")
    g.add_argument("--validation-data", help="validation set: a data file or a shard directory")
    g.add_argument("--lr-from-sweep", metavar="SWEEP_DIR",
                   help="train at the learning rate the sweep in SWEEP_DIR (its --out) tuned "
                        "for --batch-size, or give every --batch-schedule phase without @LR "
                        "its batch size's tuned rate, e.g. --batch-schedule 16:0,64:2000 "
                        "--lr-from-sweep runs/sweep1")
    g = p.add_argument_group("checkpoints and failures")
    g.add_argument("--resume", metavar="RUN_DIR",
                   help="continue RUN_DIR from its newest valid checkpoint, bit-exactly; "
                        "settings not given come from the run")
    add_trust_option(g)
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
    g = p.add_argument_group("several devices, processes and machines")
    g.add_argument("--processes", type=int,
                   help="launch this many local processes (127.0.0.1), data-parallel; the batch "
                        "size is the global batch, split equally among them")
    g.add_argument("--coordinator", help="HOST:PORT of process 0, to join a multi-machine run")
    g.add_argument("--num-processes", type=int, help="processes in the run (with --coordinator)")
    g.add_argument("--process-id", type=int, help="this process's rank 0..N-1 (with "
                                                  "--coordinator); only 0 writes the run dir")
    g.add_argument("--devices", choices=["all"],
                   help="'all': data-parallel over every local device (GPUs, or CPU devices "
                        "made with XLA_FLAGS=--xla_force_host_platform_device_count=N)")
    g = p.add_argument_group("measurement")
    g.add_argument("--noise-scale", action="store_true",
                   help="also measure the gradient noise scale B_simple at every evaluation "
                        "(written to metrics.json as noise_scale)")
    p.set_defaults(func=run)


def run(args) -> int:
    for flag, value, least in (("--processes", args.processes, 1),
                               ("--num-processes", args.num_processes, 1),
                               ("--process-id", args.process_id, 0)):
        if value is not None and value < least:
            raise ConfigError(f"{flag} must be a whole number >= {least}, got {value}")
    if args.processes is not None and args.coordinator:
        raise ConfigError("--processes launches local processes; --coordinator joins a run "
                          "started elsewhere: use one or the other")
    if args.devices and any(v is not None for v in (
            args.resume, args.checkpoint_every, args.keep_checkpoints, args.on_divergence,
            args.max_retries)):
        from ..run_directory import SINGLE_PROCESS_CHECKPOINTS  # before any process starts
        raise ConfigError(SINGLE_PROCESS_CHECKPOINTS)
    processes = args.processes
    if args.resume and not args.coordinator:
        from ..run_directory import RunDirectory
        recorded = RunDirectory.recorded_processes(args.resume)
        if processes is None:
            processes = recorded  # relaunch as many as the run had
        elif recorded is not None and processes != recorded and not args.force:
            # refused once here rather than by every launched process
            raise ConfigError(
                f"cannot resume {args.resume!r}: processes changed (was {recorded}, now "
                f"{processes}); the sums of each step would be taken in another order, so the "
                "run would not continue bit-exactly. Resume without --processes (it relaunches "
                f"{recorded}), or pass --force: the global batch order is unchanged and each "
                "process takes its new share of every batch")
    world = processes or args.num_processes or 1
    if (world > 1 or args.coordinator) and args.on_divergence == "halve-lr":
        from ..run_directory import HALVE_LR_ONE_PROCESS
        raise ConfigError(HALVE_LR_ONE_PROCESS)
    if args.batch_size is not None and args.batch_size % world:
        raise ConfigError(f"batch size {args.batch_size} must be a multiple of the number of "
                          f"processes ({world}): each process takes an equal share")
    if args.batch_schedule is not None:  # refused once here rather than by every process
        from ..engine.batch_schedule import BatchSchedule
        for b in BatchSchedule.parse(args.batch_schedule).batch_sizes:
            if b % world:
                raise ConfigError(f"batch size {b} of the batch schedule must be a multiple "
                                  f"of the number of processes ({world}): each process "
                                  "takes an equal share")
    if processes is not None and processes > 1:
        from ..distributed import launch_local
        argv = _without(args.argv, "--processes")
        if not args.out and not args.resume:  # every worker must agree on the run directory
            argv += ["--out", default_out("train")]
        return launch_local(argv, processes)
    placement = None
    if args.coordinator:
        if args.num_processes is None or args.process_id is None:
            raise ConfigError("--coordinator needs --num-processes and --process-id")
        from ..distributed import initialize
        placement = initialize(args.coordinator, args.num_processes, args.process_id)
        print(f"sgdlab train: process {args.process_id} of {args.num_processes} joined "
              f"{args.coordinator}", file=sys.stderr, flush=True)
    elif args.devices == "all":
        from ..engine.batched import MeshPlacement
        import jax
        placement = MeshPlacement(jax.local_devices())
    if placement is None:
        return _train(args, None)
    from ..distributed import LOST_PEER, PeerLostError, exit_now, finish, run_guarded
    try:
        code = run_guarded(_train, args, placement)
    except PeerLostError as e:
        exit_now(LOST_PEER, f"sgdlab train: error: {e}")
    except SgdlabError as e:
        if args.coordinator:  # leave now: the runtime's shutdown would wait for the others
            exit_now(2, f"sgdlab train: error: {e}")
        raise
    except Exception:
        if args.coordinator:
            import traceback
            exit_now(1, traceback.format_exc())
        raise
    if args.coordinator:
        finish()
    return code


#: The command line's run options a config file may set too (flags override it).
RUN_KEYS = ("out", "name", "checkpoint_every", "keep_checkpoints", "on_divergence",
            "max_retries", "validation_data", "init", "tensorboard", "lr_from_sweep")


def _train(args, placement) -> int:
    from ..api import as_dataset, as_shards, fit  # JAX: imported when a run starts
    from .display import TrainProgress, print_summary
    from ..engine.checkpoint import CheckpointWarning
    from ..engine.lock import run_dir_for_name
    from ..errors import DivergedWarning

    file_settings = read_config_file(args.config, extra_keys=RUN_KEYS)
    for key in RUN_KEYS:  # flags override the file
        if getattr(args, key, None) is None and key in file_settings:
            setattr(args, key, file_settings.pop(key))
        file_settings.pop(key, None)
    if args.lr_from_sweep:
        take_sweep_rates(args, file_settings)
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
        kwargs = {"resume": args.resume, "force": args.force, "overwrite": args.overwrite}
    else:
        # only the given settings: fit fills in the defaults that depend on the data
        kwargs = {"out": out, "overwrite": args.overwrite,
                  **settings_from_args(args, file_settings)}
        data = data or data_spec(args, file_settings)  # built-in data that fits the model
    shards = as_shards(data) if data else None
    if shards is not None or placement is not None:  # streamed or data-parallel training
        settings = {k: v for k, v in settings.items() if v is not None}
        kwargs["placement"] = placement
        data = shards or data
    if args.init:
        kwargs["init"] = args.init
    if args.trust_code:  # for --resume and --init: import the network they name
        kwargs["trust_code"] = True
    if args.validation_data:
        kwargs["validation"] = as_shards(args.validation_data) or as_dataset(
            args.validation_data, label_column=args.label_column, task=args.task)
    quiet = args.quiet or (placement is not None and not placement.is_writer)
    progress = None if quiet else TrainProgress(config, data)
    callback, meter = progress, None
    if args.noise_scale:
        if args.resume or shards is not None or placement is not None:
            raise ConfigError("--noise-scale measures in-memory training on one process; it "
                              "does not combine with --resume, shard data or several processes")
        from ..lab.noise import meter_for_fit
        data = as_dataset(data, label_column=settings["label_column"], task=settings["task"])
        meter = meter_for_fit(data, config)
        callback = _both(progress, meter)
    if args.tensorboard:
        from ..report.tensorboard import TensorBoardWriter
        # errors (the extra missing, an unwritable directory) show here, before training
        callback = _both(callback, TensorBoardWriter(args.tensorboard, Path(out).name))
    with warnings.catch_warnings():
        warnings.simplefilter("always", CheckpointWarning)
        # The summary prints the divergence message itself; the Python warning would repeat it.
        warnings.simplefilter("ignore", DivergedWarning)
        warnings.showwarning = _show_warning
        with (progress or _null()):
            result = fit(data, callback=callback, **kwargs, **settings)
    if not quiet:
        print_summary(result, out)
    if meter is not None and meter.steps:
        print(f"gradient noise scale: {meter.estimate().describe()}")
    if result.status == "diverged":
        print(f"sgdlab train: {result.message}", file=sys.stderr)
        return 1
    if result.status == "interrupted":
        print(f"sgdlab train: {result.message.replace('RUN_DIR', out)}", file=sys.stderr)
        return 128 + int(result.extra.get("signal", 2))  # the shell's convention
    return 0


def take_sweep_rates(args, file_settings: dict) -> None:
    """``--lr-from-sweep``: :func:`~sgdlab.lab.sweep_rates.settings_from_sweep`, written into
    the given settings."""
    from ..lab.sweep_rates import settings_from_sweep
    if args.lr is not None or "lr" in file_settings:
        raise ConfigError("--lr and --lr-from-sweep both set the learning rate: drop one (a "
                          "batch schedule's phases may still give their own @LR)")
    given = getattr(args, "setting_values", {})
    for key, value in settings_from_sweep(
            args.lr_from_sweep, args.lr_from_sweep,
            batch_size=args.batch_size if args.batch_size is not None
            else file_settings.get("batch_size"),
            batch_schedule=args.batch_schedule or file_settings.get("batch_schedule"),
            option="--lr-from-sweep", batch_names="--batch-size (or --batch-schedule)").items():
        setattr(args, key, value)
        given[key] = value


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"sgdlab train: warning: {message}", file=sys.stderr)


def _without(argv: list[str], flag: str) -> list[str]:
    """``argv`` with ``flag VALUE`` / ``flag=VALUE`` removed."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == flag:
            skip = True
        elif not a.startswith(flag + "="):
            out.append(a)
    return out


def _both(*callbacks):
    """One callback calling several (None entries skipped); it asks to stop when any does."""
    live = [c for c in callbacks if c is not None]

    def call(event):
        stop = False
        for c in live:
            stop = bool(c(event)) or stop
        return stop or None
    return call


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _fmt(v) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4g}"
