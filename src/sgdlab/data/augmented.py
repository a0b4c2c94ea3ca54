"""The bundled handwritten digits grown into a larger, MNIST-shaped problem.

scikit-learn's 1,797 digits are 8 x 8 images; real workloads are larger, and on the digits
themselves every batch size reaches a target within milliseconds. :func:`augmented_digits`
draws ``n`` examples from them (with replacement), each

1. resized bilinearly from 8 x 8 to ``side`` x ``side`` grey levels in ``[0, 1]``;
2. shifted by a whole number of pixels in ``[-shift, shift]`` along each axis (zeros enter);
3. plus Gaussian pixel noise of deviation ``noise``.

So a network must learn shapes that move and are noisy, over several epochs, as on MNIST: with
the defaults (5,000 x 28 x 28, shift 2, noise 0.25) an MLP with 128 hidden units reaches about
0.9 validation accuracy after 2 to 10 epochs, depending on the batch size and learning rate.
Seeded: the same arguments give the same bits on every machine, with no download.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .checks import check_int, check_real, check_rows_fit
from .dataset import Dataset

#: Pixels of the originals (8 x 8).
SOURCE_SIDE = 8


def resize_bilinear(images: np.ndarray, side: int) -> np.ndarray:
    """``(n, h, w)`` images resized to ``(n, side, side)`` by bilinear interpolation between
    pixel centres (edges held)."""
    n, h, w = images.shape

    def axis(size_in: int):
        pos = (np.arange(side) + 0.5) * size_in / side - 0.5
        lo = np.clip(np.floor(pos).astype(int), 0, size_in - 1)
        hi = np.clip(lo + 1, 0, size_in - 1)
        return lo, hi, np.clip(pos - lo, 0.0, 1.0)

    y0, y1, fy = axis(h)
    x0, x1, fx = axis(w)
    rows = images[:, y0] * (1 - fy)[None, :, None] + images[:, y1] * fy[None, :, None]
    return rows[:, :, x0] * (1 - fx) + rows[:, :, x1] * fx


def augmented_digits(n: int = 5000, side: int = 28, shift: int = 2, noise: float = 0.25,
                     images: int = 0, seed: int = 0) -> Dataset:
    """``n`` augmented digits (module docstring): ``X: (n, side * side)`` float32 rows, or with
    ``images=1`` ``(n, side, side, 1)`` images; ``y: (n,)`` int32 digits ``0..9``.

    ``meta`` names the originals drawn (``source_rows``) and the shifts.
    """
    from .builtin import digits

    n = check_int("n", n, 10)
    side = check_int("side", side, SOURCE_SIDE)
    shift = check_int("shift", shift, 0)
    if shift >= side:
        raise ConfigError(f"shift must be smaller than the side ({side}), got {shift}")
    noise = check_real("noise", noise, 0.0)
    images = check_int("images", images, 0)
    seed = check_int("seed", seed, 0)
    check_rows_fit(n, side * side, "digits-augmented")
    source = digits()
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, source.n, n)
    grey = source.X.reshape(-1, SOURCE_SIDE, SOURCE_SIDE)[rows] / np.float32(16)
    big = resize_bilinear(grey, side).astype(np.float32)
    dy, dx = rng.integers(-shift, shift + 1, (2, n))
    out = np.zeros((n, side, side), np.float32)
    for sy in range(-shift, shift + 1):          # one slice copy per shift, not per image
        for sx in range(-shift, shift + 1):
            m = (dy == sy) & (dx == sx)
            if not m.any():
                continue
            src = big[m][:, max(0, -sy):side - max(0, sy), max(0, -sx):side - max(0, sx)]
            out[m, max(0, sy):side - max(0, -sy), max(0, sx):side - max(0, -sx)] = src
    out += np.float32(noise) * rng.standard_normal(out.shape, dtype=np.float32)
    X = out[..., None] if images else out.reshape(n, side * side)
    meta = {"generator": "digits-augmented",
            "params": {"n": n, "side": side, "shift": shift, "noise": noise,
                       "images": images, "seed": seed},
            "source_rows": rows, "shifts": np.stack([dy, dx], axis=1)}
    return Dataset(X, source.y[rows].astype(np.int32), "classification", tuple(range(10)),
                   (), "digits-augmented", meta)
