"""``sgdlab predict``: a trained run's predictions for a data file, one row per input row."""

from __future__ import annotations

import os

from .common import Formatter
from .trust import add_trust_option

EXAMPLES = """\
examples:
  sgdlab train --data iris.csv --out runs/iris
  sgdlab predict runs/iris --data new.csv --out predictions.csv
  sgdlab predict runs/iris --data new.csv --proba         # class probabilities, to stdout
  sgdlab predict runs/iris --data labelled.csv            # also prints the accuracy
  sgdlab predict runs/cnn --data images.npy               # (N, 8, 8, 1) or flat (N, 64)
  sgdlab predict runs/big --data shards/ --out p.csv      # a shard set ('sgdlab data convert')

Columns are matched to the model's features by name, in any order. The one column that is not
a feature (or --label-column) is the label: it is never used to predict, and the accuracy
(R^2 for regression) is printed on standard error. Predictions are in the original label
values (or units). A model of images (or other examples of more axes) takes an .npy array
(N, *example_shape), which holds no labels, a flat .npy table (N, d) (label-free) or
(N, d + 1) (the label last), or an .npz archive with X (and optionally y).

The data is read and predicted a block at a time, so memory is bounded by --buffer-mb (plus
the reader's chunk and the program), whatever the file's size. --out is written under a
temporary name and renamed when every row is predicted: it is complete or absent. An existing
--out is refused unless --overwrite; the input and anything inside a run directory or a shard
set (such as RUN_DIR/model.json) are always refused. Exit code 0, or 2 with one message for
bad input.
"""

#: What makes a folder sgdlab's (any one group of files), besides a run's marker
#: (:data:`sgdlab.engine.claim.MARKER`): a trained model, a run's settings and history, a
#: sweep's or a landscape's results, a shard set. Predictions are never written inside one
#: (they could replace its files).
OWN_FILES = (("model.json", "params.npz"), ("config.json", "history.csv"),
             ("sweep.json",), ("landscape.json",), ("manifest.json", "stats.npy"))


def register(sub) -> None:
    p = sub.add_parser("predict", help="predict with a trained run's model",
                       description=__doc__.strip().replace("``", ""), epilog=EXAMPLES,
                       formatter_class=Formatter)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by "
                                                      "'sgdlab train' (holds model.json)")
    p.add_argument("--data", required=True,
                   help="a data file with the model's features: any format train reads "
                        "(CSV, TSV, Parquet, NumPy, LibSVM, IDX), or a shard directory")
    p.add_argument("--label-column", help="the label column, if the file has one the model's "
                                          "feature names do not single out")
    p.add_argument("--out", help="write the predictions as CSV here (default: standard output)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing --out file (never the input, nor a file inside a "
                        "run directory)")
    p.add_argument("--proba", action="store_true",
                   help="class probabilities, one column per class (softmax, logistic)")
    add_trust_option(p)
    p.add_argument("--buffer-mb", type=float,
                   help="MiB of rows held at a time while predicting, which bound memory "
                        "whatever the data size (default 64, as for streamed training)")
    p.set_defaults(func=run)


def run(args) -> int:
    import math
    import sys

    from ..data.features import open_features
    from ..engine import TrainConfig, load
    from ..engine.blockwise import RunningScore, block_rows
    from ..errors import ConfigError
    from ..files import AtomicWriter

    buffer_mb = args.buffer_mb if args.buffer_mb is not None else \
        TrainConfig.__dataclass_fields__["buffer_mb"].default
    if not (math.isfinite(buffer_mb) and buffer_mb > 0):
        raise ConfigError(f"--buffer-mb must be a number of MiB > 0, got {args.buffer_mb!r}")
    if args.out:
        check_out(args.out, args.data, args.run_dir, args.overwrite)
    model = load(args.run_dir, trust_code=args.trust_code)
    if args.proba and model.loss.name not in ("softmax", "logistic"):
        raise ConfigError(f"--proba needs a model with probabilities (softmax or logistic "
                          f"loss); {args.run_dir} uses {model.loss.name!r}: drop --proba")
    blocks = open_features(args.data, model.feature_names, model.n_features,
                           args.label_column, task=model.task, example_shape=model.input_shape,
                           block_rows=block_rows(model, buffer_mb * 2 ** 20))
    if model.diverged_message:
        print(f"sgdlab predict: warning: predicting with a model whose "
              f"{model.diverged_message[0].lower()}{model.diverged_message[1:]}",
              file=sys.stderr)
    score = RunningScore(model.task, model.classes) if blocks.label is not None else None
    n = 0
    with (AtomicWriter(args.out, replace=args.overwrite) if args.out else _Stdout()) as out:
        for block in blocks:
            pred = model.predict(block.X) if score is not None or not args.proba else None
            values = model.predict_proba(block.X) if args.proba else pred
            out.write(predictions_csv(model, values, args.proba, header=n == 0).encode())
            if score is not None:
                score.add(pred, block.y)
            n += len(block.X)
        out.commit()
    if args.out:
        print(f"sgdlab predict: {n:,} predictions written to {args.out}", file=sys.stderr)
    if score is not None:
        metric = "accuracy" if model.task == "classification" else "R^2"
        print(f"sgdlab predict: {metric} {score.value:.4f} on {n:,} rows (labels from "
              f"{blocks.label!r}, not used to predict)", file=sys.stderr)
    return 0


class _Stdout:
    """Standard output with :class:`~sgdlab.files.AtomicWriter`'s interface."""

    def __enter__(self):
        import sys
        self.stream = sys.stdout
        return self

    def write(self, data: bytes) -> None:
        self.stream.write(data.decode())

    def commit(self) -> None:
        self.stream.flush()

    def __exit__(self, *exc) -> bool:
        return False


def check_out(out: str, data: str, run_dir: str, overwrite: bool) -> None:
    """Refuse an ``--out`` that would replace what the user owns: an existing file without
    ``overwrite``, and always a symbolic link, a directory, the input itself (or a path inside
    an input shard set), and any path inside a run directory or a shard set."""
    from ..engine.claim import MARKER
    from ..errors import ConfigError
    from ..files import refuse_symlink
    refuse_symlink(out)  # never written through, whatever it points to
    target = os.path.realpath(out)
    if os.path.isdir(target):
        raise ConfigError(f"--out {out} is a directory; give a file name for the predictions, "
                          "e.g. --out predictions.csv")
    source = os.path.realpath(data)
    if target == source or (os.path.isdir(source) and target.startswith(source + os.sep)):
        raise ConfigError(f"--out {out} is the input data ({data}); predictions never replace "
                          "their input: write them elsewhere")
    for folder in _parents(target):
        if folder == os.path.realpath(run_dir) or any(
                all(os.path.lexists(os.path.join(folder, name)) for name in group)
                for group in ((MARKER,), *OWN_FILES)):
            raise ConfigError(f"--out {out} is inside {folder}, a run directory or shard set; "
                              "predictions are never written into one (they could replace its "
                              "files): write them elsewhere")
    if os.path.lexists(out) and not overwrite:
        raise ConfigError(f"--out {out} exists; pass --overwrite to replace it, or write the "
                          "predictions elsewhere")


def _parents(path: str):
    folder = os.path.dirname(path)
    while True:
        yield folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return
        folder = parent


def predictions_csv(model, values, proba: bool, header: bool = True) -> str:
    """One CSV row per example: ``prediction`` (``values`` the predictions), or ``p_<class>``
    per class (``values`` the probabilities, ``(N, C)``); the header row first when
    ``header``."""
    import csv
    import io
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if proba:
        if header:
            classes = model.classes or tuple(range(values.shape[1]))
            w.writerow([f"p_{c}" for c in classes])
        w.writerows([f"{v:.6g}" for v in row] for row in values)
    else:
        if header:
            w.writerow(["prediction"])
        w.writerows([p] for p in values.tolist())
    return buf.getvalue()
