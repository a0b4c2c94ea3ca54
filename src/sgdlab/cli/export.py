"""``sgdlab export``: a trained run as a portable forward function (jax.export)."""

from __future__ import annotations

from .common import Formatter
from .trust import add_trust_option

EXAMPLES = """\
examples:
  sgdlab export runs/iris exported/iris
  python exported/iris/predict.py features.npy     # numpy + jax only, no sgdlab
  python exported/iris/predict.py --help           # the shape its examples must have

OUT gets forward.jaxexport (StableHLO: standardisation, network and decision rule, any
number of rows), export.json (feature order, example shape, classes, task) and a standalone
predict.py, which reads .npy, .npz (array X) and .csv/.tsv/.txt tables of numbers (a flat
row is reshaped to the model's example shape). OUT must not exist; it appears complete or
not at all.
"""


def register(sub) -> None:
    p = sub.add_parser("export", help="write a run's model as a portable jax.export function",
                       description=__doc__.strip().replace("``", ""), epilog=EXAMPLES,
                       formatter_class=Formatter)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by "
                                                      "'sgdlab train' (holds model.json)")
    p.add_argument("out", metavar="OUT", help="new directory for the export")
    add_trust_option(p)
    p.set_defaults(func=run)


def run(args) -> int:
    import sys

    import numpy as np

    from ..engine import load
    from ..engine.export import check_export, export_model
    from ..errors import RunDirError

    model = load(args.run_dir, trust_code=args.trust_code)
    out = export_model(model, args.out)
    # self-check: the exported function gives the run's scores on a few random rows
    X = np.random.default_rng(0).standard_normal((8, *model.input_shape)).astype(np.float32)
    if model.standardizer is not None:
        X = X * model.standardizer.scale + model.standardizer.mean
    gap = check_export(model, out, X)
    if not gap <= 1e-4 * max(1.0, float(np.max(np.abs(model.decision_function(X))))):
        raise RunDirError(f"{out}: the exported function's scores differ from the model's by "
                          f"{gap:.3g}; please report this (the export is kept for inspection)")
    print(f"exported {args.run_dir} to {out} (forward.jaxexport, export.json, predict.py)")
    shape = "(n, " + ", ".join(str(s) for s in model.input_shape) + ")"
    print(f"  python {out / 'predict.py'} FEATURES   # .npy, .npz, .csv, .tsv or .txt: "
          f"examples {shape}", file=sys.stderr)
    return 0
