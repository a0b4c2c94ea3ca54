"""Seeded synthetic datasets whose ground truth is known.

Every generator draws from ``numpy.random.default_rng(seed)`` only, so the same arguments give
bit-identical data on every machine, and returns a :class:`Dataset` with ``X: (n, d)`` float32
(:func:`images`: ``(n, height, width, channels)``) and a ``meta`` dict describing the truth
(generator name, parameters and e.g. ``w_true``).

:data:`GENERATORS` maps the names used in data specs (``"blobs:n=2000,d=20"``) to generators;
:func:`parse_spec` reads such a spec.
"""

from __future__ import annotations

import inspect

import numpy as np

from ..errors import ConfigError, DataError, choices_message
from .augmented import augmented_digits
from .checks import check_int, check_real
from .dataset import Dataset


def _meta(generator: str, **params) -> dict:
    return {"generator": generator, "params": params}


def blobs(n: int = 1000, d: int = 2, seed: int = 0, margin: float = 1.0) -> Dataset:
    """Two linearly separable classes in ``d`` dimensions, ``n`` points.

    A random unit normal ``w_true`` and offset ``b_true`` define a hyperplane; standard-normal
    points (around a random centre) are labelled 1 where ``x @ w_true + b_true > 0`` (else 0)
    and then pushed ``margin`` further from it along ``w_true``. So every point lies at distance
    ``>= margin`` from the hyperplane (up to float32 rounding): the classes are separable with a
    gap of ``2 * margin``. ``b_true`` splits the points at the median, so the classes are
    balanced (sizes differ by at most one).

    ``meta``: ``w_true (d,)``, ``b_true`` (float), ``margin``.
    """
    n, d = check_int("n", n, 2), check_int("d", d, 1)
    seed = check_int("seed", seed, 0)
    margin = check_real("margin", margin, 0.0, strict=True)
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(d)
    w /= np.linalg.norm(w)
    centre = rng.standard_normal(d)
    X = centre + rng.standard_normal((n, d))
    dist = X @ w
    # Median split: half the points on each side, and no point exactly on the plane unless
    # two middle projections coincide (which has probability zero).
    b = -float(np.median(dist))
    dist = dist + b
    sign = np.where(dist > 0, 1.0, -1.0)
    # Moving each point by +-margin along the unit normal adds exactly margin to its distance.
    X += (sign * margin)[:, None] * w
    y = (sign > 0).astype(np.int32)
    return Dataset(
        X.astype(np.float32), y, "classification", (0, 1), (), "blobs",
        {**_meta("blobs", n=n, d=d, seed=seed, margin=margin), "w_true": w, "b_true": b,
         "margin": margin},
    )


def gaussian_classes(n: int = 2000, d: int = 10, n_classes: int = 3, sep: float = 2.0,
                     seed: int = 0) -> Dataset:
    """``n_classes`` isotropic unit-variance Gaussian clouds in ``d`` dimensions.

    Each class mean is a random direction scaled to length ``sep`` (so two means are about
    ``sep * sqrt(2)`` apart and the classes overlap for small ``sep``). Classes are balanced
    (sizes differ by at most one) and rows are in random order.

    ``meta``: ``means (n_classes, d)``, ``sep``.
    """
    n, d = check_int("n", n, 2), check_int("d", d, 1)
    n_classes = check_int("n_classes", n_classes, 2)
    seed = check_int("seed", seed, 0)
    sep = check_real("sep", sep, 0.0)
    if n < n_classes:
        raise ConfigError(f"n ({n}) must be >= n_classes ({n_classes}) so every class has a point")
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((n_classes, d))
    means *= sep / np.linalg.norm(means, axis=1, keepdims=True)
    y = rng.permutation(np.arange(n) % n_classes).astype(np.int32)
    X = means[y] + rng.standard_normal((n, d))
    return Dataset(
        X.astype(np.float32), y, "classification", tuple(range(n_classes)), (), "gaussian",
        {**_meta("gaussian", n=n, d=d, n_classes=n_classes, sep=sep, seed=seed),
         "means": means, "sep": sep},
    )


def linear_regression(n: int = 1000, d: int = 5, noise: float = 0.1, seed: int = 0) -> Dataset:
    """Regression data ``y = X @ w_true + b_true + noise * eps``.

    ``X: (n, d)``, ``w_true: (d,)``, ``b_true`` and ``eps: (n,)`` are all standard normal, so the
    least-squares fit recovers ``w_true``/``b_true`` up to about ``noise / sqrt(n)``.

    ``meta``: ``w_true (d,)``, ``b_true`` (float), ``noise``.
    """
    n, d = check_int("n", n, 2), check_int("d", d, 1)
    seed = check_int("seed", seed, 0)
    noise = check_real("noise", noise, 0.0)
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(d)
    b = float(rng.standard_normal())
    X = rng.standard_normal((n, d))
    y = X @ w + b + noise * rng.standard_normal(n)
    return Dataset(
        X.astype(np.float32), y.astype(np.float32), "regression", (), (), "linreg",
        {**_meta("linreg", n=n, d=d, noise=noise, seed=seed), "w_true": w, "b_true": b,
         "noise": noise},
    )


def xor(n: int = 1000, noise: float = 0.1, seed: int = 0) -> Dataset:
    """Two classes in 2-D arranged as XOR: not linearly separable.

    Each point is a corner ``(+-1, +-1)`` chosen uniformly plus ``noise`` times standard-normal
    jitter; the label is 1 where the corner's coordinates have the same sign (quadrants I and
    III), else 0. A linear model cannot beat about 75% accuracy; a small MLP reaches ~100%
    for small noise.

    ``meta``: ``corners (4, 2)``, ``noise``.
    """
    n = check_int("n", n, 2)
    seed = check_int("seed", seed, 0)
    noise = check_real("noise", noise, 0.0)
    rng = np.random.default_rng(seed)
    corners = np.array([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]])
    which = rng.integers(0, 4, size=n)
    X = corners[which] + noise * rng.standard_normal((n, 2))
    y = (which < 2).astype(np.int32)
    return Dataset(
        X.astype(np.float32), y, "classification", (0, 1), (), "xor",
        {**_meta("xor", n=n, noise=noise, seed=seed), "corners": corners, "noise": noise},
    )


def mnist_like(n: int = 60000, d: int = 784, n_classes: int = 10, seed: int = 0,
               sep: float = 5.0) -> Dataset:
    """Large dense float32 data shaped like MNIST, for throughput benchmarks.

    Rows are ``mean[y] + eps`` with unit-variance float32 noise; the class means are random
    with per-coordinate scale ``sep / sqrt(2 d)``, so any two means are about ``sep`` apart
    whatever ``d`` is. With the default ``sep=5`` a linear classifier can reach roughly 90-95%
    accuracy: learnable, but not in one step. Everything is generated directly in float32 and
    vectorised (well under 2 s for 60000 x 784).

    ``meta``: ``means (n_classes, d)`` float32, ``sep``.
    """
    n, d = check_int("n", n, 2), check_int("d", d, 1)
    n_classes = check_int("n_classes", n_classes, 2)
    seed = check_int("seed", seed, 0)
    sep = check_real("sep", sep, 0.0)
    rng = np.random.default_rng(seed)
    means = (rng.standard_normal((n_classes, d), dtype=np.float32)
             * np.float32(sep / np.sqrt(2.0 * d)))
    y = rng.integers(0, n_classes, size=n).astype(np.int32)
    X = rng.standard_normal((n, d), dtype=np.float32)
    X += means[y]  # in place: no float64 or second (n, d) buffer besides the gathered means
    return Dataset(
        X, y, "classification", tuple(range(n_classes)), (), "mnist-like",
        {**_meta("mnist-like", n=n, d=d, n_classes=n_classes, seed=seed, sep=sep),
         "means": means, "sep": sep},
    )


def images(n: int = 1000, height: int = 8, width: int = 8, channels: int = 1,
           n_classes: int = 10, sep: float = 5.0, seed: int = 0) -> Dataset:
    """Images ``X: (n, height, width, channels)`` float32 (channels last) in ``n_classes``
    classes, for tests and benchmarks of models that take images.

    Each class ``k`` has a pattern ``P_k (height, width, channels)``: standard-normal values
    averaged over each pixel's 3 x 3 neighbourhood (wrapping at the edges), so neighbouring
    pixels are alike as in real images, then scaled to a root mean square of
    ``sep / sqrt(2 d)`` (``d = height * width * channels``), so two patterns are about ``sep``
    apart whatever the size. An example of class ``y`` is ``P_y`` plus unit-variance Gaussian
    noise on every value: learnable (with ``sep = 5`` a linear model separates the classes
    well; a smaller ``sep`` makes it harder), never trivially. Classes are balanced (sizes
    differ by at most one), rows in random order.

    ``meta``: ``patterns (n_classes, height, width, channels)`` float32, ``sep``.
    """
    n = check_int("n", n, 2)
    height, width = check_int("height", height, 1), check_int("width", width, 1)
    channels = check_int("channels", channels, 1)
    n_classes = check_int("n_classes", n_classes, 2)
    seed = check_int("seed", seed, 0)
    sep = check_real("sep", sep, 0.0)
    if n < n_classes:
        raise ConfigError(f"n ({n}) must be >= n_classes ({n_classes}) so every class has an "
                          "image")
    rng = np.random.default_rng(seed)
    d = height * width * channels
    raw = rng.standard_normal((n_classes, height, width, channels))
    smooth = sum(np.roll(raw, (dy, dx), axis=(1, 2)) for dy in (-1, 0, 1) for dx in (-1, 0, 1))
    rms = np.sqrt((smooth ** 2).mean(axis=(1, 2, 3), keepdims=True))
    patterns = (smooth * (sep / np.sqrt(2.0 * d) / np.maximum(rms, 1e-12))).astype(np.float32)
    y = rng.permutation(np.arange(n) % n_classes).astype(np.int32)
    X = rng.standard_normal((n, height, width, channels), dtype=np.float32)
    X += patterns[y]
    return Dataset(
        X, y, "classification", tuple(range(n_classes)), (), "images",
        {**_meta("images", n=n, height=height, width=width, channels=channels,
                 n_classes=n_classes, sep=sep, seed=seed), "patterns": patterns, "sep": sep},
    )


#: Generator name (as used in data specs) -> function.
GENERATORS = {
    "blobs": blobs,
    "gaussian": gaussian_classes,
    "linreg": linear_regression,
    "xor": xor,
    "mnist-like": mnist_like,
    "images": images,
    "digits-augmented": augmented_digits,
}


def _parse_number(text: str):
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return None


def parse_spec(spec: str) -> tuple[str, dict]:
    """Split ``"name:key=val,key=val"`` into ``(name, {key: int | float})``.

    Values parse as ``int`` when they can, else ``float``. Raises :class:`DataError` for an
    unknown generator name and :class:`ConfigError` for malformed items, non-numeric values or
    keys the generator does not take (listing the valid ones).
    """
    name, _, rest = spec.partition(":")
    name = name.strip()
    if name not in GENERATORS:
        raise DataError(choices_message("generator", name, GENERATORS))
    valid = list(inspect.signature(GENERATORS[name]).parameters)
    params: dict = {}
    for item in filter(None, (s.strip() for s in rest.split(","))):
        key, eq, text = item.partition("=")
        key, text = key.strip(), text.strip()
        if not eq or not key:
            raise ConfigError(f"{spec!r}: expected key=value, got {item!r}")
        if key not in valid:
            raise ConfigError(
                f"{name}: unknown parameter {key!r}; valid parameters: {', '.join(valid)}"
            )
        if key in params:
            raise ConfigError(f"{name}: parameter {key!r} given twice")
        value = _parse_number(text)
        if value is None:
            raise ConfigError(f"{name}: {key}={text!r} is not a number")
        params[key] = value
    return name, params
