"""``sgdlab gradcheck``: compare analytic and numerical gradients of a model's objective."""

from __future__ import annotations

from .common import (Formatter, add_data_options, add_model_options, data_spec,
                     given_settings)

#: Without --coords every coordinate of a network this small is checked; a larger one gets
#: DEFAULT_COORDS random coordinates per tensor (each costs four evaluations of the objective).
ALL_COORDS_UP_TO = 5_000
DEFAULT_COORDS = 100

EXAMPLES = """\
examples:
  sgdlab gradcheck                                   # softmax regression on 16 digits
  sgdlab gradcheck --model mlp --hidden 32 --activation tanh --l2 0.01
  sgdlab gradcheck --model svm --data blobs --gradient closed-form
  sgdlab gradcheck --model mlp --coords 50 --burn-in 100   # 50 coordinates per tensor,
                                                           # after 100 SGD steps

Error per parameter tensor, in float64 with centred differences n: the part of |a - n| that
the difference quotient's own round-off and truncation cannot explain, over max(|a|, |n|)
(0: they agree to float64 precision; the plain |a - n| / max(|a|, |n|) is raw_rel_error in
gradcheck.json). Below 1e-7 good, below --tolerance (1e-6) passes, 1e-2 or more is wrong.
Coordinates with a kink (hinge, ReLU, max) within +-h are counted and not held against the
gradient. Exit code 0 when every tensor passes, 1 when one fails, 2 for bad input.
"""


def register(sub) -> None:
    p = sub.add_parser("gradcheck", help="check analytic gradients against numerical ones",
                       description=__doc__.strip().replace("``", ""), epilog=EXAMPLES,
                       formatter_class=Formatter)
    add_data_options(p)
    add_model_options(p)
    g = p.add_argument_group("check")
    g.add_argument("--examples", type=int, default=16,
                   help="training examples in the checked objective (default 16)")
    g.add_argument("--coords", type=int,
                   help="check this many random coordinates per tensor (default: all of a "
                        f"network with up to {ALL_COORDS_UP_TO:,} parameters, else "
                        f"{DEFAULT_COORDS} per tensor)")
    g.add_argument("--h", type=float, default=1e-5, help="finite-difference step (default 1e-5)")
    g.add_argument("--tolerance", type=float, default=1e-6,
                   help="largest relative error that passes (default 1e-6)")
    g.add_argument("--gradient", default="autodiff",
                   help="gradient under test: autodiff (default) or closed-form")
    g.add_argument("--burn-in", type=int, default=0,
                   help="SGD steps before checking, so the point is not the initialisation")
    g.add_argument("--lr", type=float, default=0.1, help="learning rate of the burn-in")
    g.add_argument("--seed", type=int, default=0, help="seed of examples, init and coordinates")
    g.add_argument("--out", help="write the report as JSON into this directory")
    p.set_defaults(func=run)


def run(args) -> int:
    import numpy as np

    from ..api import as_dataset
    from ..data.split import Standardizer
    from ..engine import TrainConfig, train
    from ..engine.rundir import prepare_dir, write_json_atomic
    from ..errors import ConfigError
    from ..grad import check_model_gradient, value_and_grad_for
    from ..losses import encode_targets
    from ..engine.setup import model_input, resolve_model
    from ..models import n_params
    from .display import print_gradcheck

    if args.examples < 1:
        raise ConfigError(f"--examples must be >= 1, got {args.examples}")
    data = as_dataset(data_spec(args), label_column=args.label_column, task=args.task)
    config = TrainConfig(**given_settings(args, "model"), seed=args.seed,
                         **given_settings(args, "data"))
    model, loss = resolve_model(config, n_classes=data.n_classes)
    vg = value_and_grad_for(args.gradient, model, loss, config.l2)  # checks the name

    rng = np.random.default_rng(args.seed)
    rows = rng.choice(data.n, min(args.examples, data.n), replace=False)
    X = data.X
    if config.standardize:
        X = Standardizer().fit(data.X).transform(data.X)
    n_out = loss.n_outputs(max(data.n_classes, 1))
    if args.burn_in > 0:
        params = train(data, None, config.replace(max_steps=args.burn_in, epochs=None,
                                                  lr=args.lr, eval_every="end")).params
    else:
        import jax
        params = model.init(jax.random.PRNGKey(config.seed), model_input(data.X.shape[1:]),
                            n_out)
    T = encode_targets(loss, data.y[rows], data.n_classes)
    coords = args.coords
    if coords is None and n_params(params) > ALL_COORDS_UP_TO:
        # four evaluations per coordinate: a cnn's 12,000 parameters took over 3 minutes
        coords = DEFAULT_COORDS
    report = check_model_gradient(
        model, loss, params, X[rows], np.asarray(T), l2=config.l2,
        value_and_grad=None if args.gradient == "autodiff" else vg, h=args.h,
        n_coords=coords, seed=args.seed, tolerance=args.tolerance)
    sampled = f", {coords} random coordinates per tensor" if coords else ""
    print_gradcheck(report, f"{model.name} / {loss.name}, {args.gradient} vs centred "
                            f"differences, {len(rows)} examples{sampled}")
    if args.out:
        out = prepare_dir(args.out)
        write_json_atomic(out / "gradcheck.json", {
            "passed": report.passed, "h": report.h, "tolerance": report.tolerance,
            "objective": report.value, "gradient": args.gradient, "model": model.name,
            "loss": loss.name, "examples": len(rows), "tensors": report.rows()})
    return 0 if report.passed else 1
