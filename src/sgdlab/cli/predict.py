"""``sgdlab predict``: a trained run's predictions for a data file, one row per input row."""

from __future__ import annotations

from .common import Formatter
from .trust import add_trust_option

EXAMPLES = """\
examples:
  sgdlab train --data iris.csv --out runs/iris
  sgdlab predict runs/iris --data new.csv --out predictions.csv
  sgdlab predict runs/iris --data new.csv --proba         # class probabilities, to stdout
  sgdlab predict runs/iris --data labelled.csv            # also prints the accuracy
  sgdlab predict runs/cnn --data images.npy               # (N, 8, 8, 1) or flat (N, 64)

Columns are matched to the model's features by name, in any order. The one column that is not
a feature (or --label-column) is the label: it is never used to predict, and the accuracy
(R^2 for regression) is printed on standard error. Predictions are in the original label
values (or units). A model of images (or other examples of more axes) takes an .npy array
(N, *example_shape), which holds no labels, a flat .npy table (N, d) (label-free) or
(N, d + 1) (the label last), or an .npz archive with X (and optionally y). Exit code 0, or
2 with one message for bad input.
"""


def register(sub) -> None:
    p = sub.add_parser("predict", help="predict with a trained run's model",
                       description=__doc__.strip().replace("``", ""), epilog=EXAMPLES,
                       formatter_class=Formatter)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by "
                                                      "'sgdlab train' (holds model.json)")
    p.add_argument("--data", required=True,
                   help="a data file with the model's features: any format train reads "
                        "(CSV, TSV, Parquet, NumPy, LibSVM)")
    p.add_argument("--label-column", help="the label column, if the file has one the model's "
                                          "feature names do not single out")
    p.add_argument("--out", help="write the predictions as CSV here (default: standard output)")
    p.add_argument("--proba", action="store_true",
                   help="class probabilities, one column per class (softmax, logistic)")
    add_trust_option(p)
    p.set_defaults(func=run)


def run(args) -> int:
    import sys

    from ..data.features import read_features
    from ..engine import load
    from ..engine.rundir import write_text_atomic
    from ..errors import ConfigError

    model = load(args.run_dir, trust_code=args.trust_code)
    if args.proba and model.loss.name not in ("softmax", "logistic"):
        raise ConfigError(f"--proba needs a model with probabilities (softmax or logistic "
                          f"loss); {args.run_dir} uses {model.loss.name!r}: drop --proba")
    data = read_features(args.data, model.feature_names, model.n_features, args.label_column,
                         task=model.task, example_shape=model.input_shape)
    text = predictions_csv(model, data.X, args.proba)
    if args.out:
        write_text_atomic(args.out, text)
        print(f"sgdlab predict: {len(data.X):,} predictions written to {args.out}",
              file=sys.stderr)
    else:
        sys.stdout.write(text)
    if data.y is not None:
        metric = "accuracy" if model.task == "classification" else "R^2"
        print(f"sgdlab predict: {metric} {model.score(data.X, data.y):.4f} on "
              f"{len(data.X):,} rows (labels from {data.label!r}, not used to predict)",
              file=sys.stderr)
    return 0


def predictions_csv(model, X, proba: bool) -> str:
    """One CSV row per row of ``X``: ``prediction``, or ``p_<class>`` per class."""
    import csv
    import io
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if proba:
        classes = model.classes or tuple(range(model.predict_proba(X[:1]).shape[1]))
        w.writerow([f"p_{c}" for c in classes])
        w.writerows([f"{p:.6g}" for p in row] for row in model.predict_proba(X))
    else:
        w.writerow(["prediction"])
        w.writerows([p] for p in model.predict(X).tolist())
    return buf.getvalue()
