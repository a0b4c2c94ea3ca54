"""The convolution and pooling of the built-in cnn, in the form this backend runs fastest.

``conv2d_same(h, W)`` and ``max_pool_2x2(h)`` take images channels last, ``h: (B, H, Wd, C)``,
and kernels output-channel first, ``W: (O, k, k, C)``: one filter ``W[o]`` per leading index,
so the landscape's per-filter normalisation of directions works per leading index, as for
the output-major dense ``W``.

Why not always ``lax.conv_general_dilated``: XLA's CPU convolutions are slow when few channels
go in. On a 2-core CPU (AVX-512) at batch 128, the cnn's first convolution (28x28, 1 -> 6
channels, 5x5) took 5.2 ms forward, about 5 GFLOP/s against 170 GFLOP/s for a matrix product
of similar size, and the second (14x14, 6 -> 16) 3.0 ms forward and 3.2 ms for the gradient
with respect to its input. Written as one matrix product with a banded weight matrix
(:func:`banded_conv2d`) they took 0.8, 1.7 and 1.9 ms, although the banded product does about
twice the multiply-adds. With 8 or more input channels the convolution won (32x32, 8 -> 16,
3x3: 8.7 ms for forward and backward against 12.5 ms banded; 14x14, 16 -> 32, 5x5: 11.2
against 13.4 ms), so the banded form is taken on the CPU for at most
:data:`BANDED_MAX_CHANNELS` input channels, and the convolution elsewhere (GPUs run it with
cuDNN).
"""

from __future__ import annotations

import operator

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ._types import Array

__all__ = ["BANDED_MAX_CHANNELS", "banded_conv2d", "conv2d_same", "max_pool_2x2"]

#: On a CPU, convolutions with at most this many input channels are banded matrix products.
BANDED_MAX_CHANNELS = 7

#: How ``lax.conv_general_dilated`` reads the operands: images NHWC, kernels OHWI.
CONV_DIMENSIONS = ("NHWC", "OHWI", "NHWC")


def conv2d_same(h: Array, W: Array) -> Array:
    """Cross-correlation, stride 1, SAME zero padding: ``h (B, H, Wd, C)``, ``W (O, k, k, C)``
    -> ``(B, H, Wd, O)``::

        out[b, y, x, o] = sum_{i, j, c} hp[b, y + i, x + j, c] W[o, i, j, c]

    where ``hp`` is ``h`` padded with ``(k - 1) // 2`` zeros before each side and the rest
    after. The form (banded product or XLA convolution) follows the backend and the number of
    input channels; both compute the same sums, to rounding."""
    if h.shape[-1] <= BANDED_MAX_CHANNELS and jax.default_backend() == "cpu":
        return banded_conv2d(h, W)
    return lax.conv_general_dilated(h, W, window_strides=(1, 1), padding="SAME",
                                    dimension_numbers=CONV_DIMENSIONS)


def band_tile(k: int, width: int) -> int:
    """Output columns per tile: ``k + 2`` (the banded product then does ``(2k + 1) / k``
    times the convolution's multiply-adds, 2.2x for ``k = 5``), at most the image width; 1 for
    a 1x1 kernel, a plain matrix product. Measured for the cnn's 5x5 kernels on a 2-core CPU:
    tiles of 7 beat tiles of 28, 14, 4 and 2 taking forward and both gradients together."""
    return 1 if k == 1 else min(width, k + 2)


def banded_conv2d(h: Array, W: Array, tile: int | None = None) -> Array:
    """:func:`conv2d_same` as one matrix product.

    The output columns are cut into tiles of ``t`` (``tile``, default :func:`band_tile`). The
    outputs of tile ``q`` in row ``y`` read the window ``w[i, p, c] = hp[b, y + i, q t + p, c]``
    of ``k`` rows by ``s = t + k - 1`` columns, and::

        out[b, y, q t + x, o] = sum_{i, p, c} w[i, p, c] T[i, p, c, x, o]
        T[i, p, c, x, o]      = W[o, i, p - x, c]  if 0 <= p - x < k, else 0

    so all outputs are ``windows (B H n_tiles, k s C) @ T (k s C, t O)``. ``T`` is built from
    ``W`` by an einsum with a constant 0/1 band, so gradients reach ``W`` through it. A last
    partial tile computes a few columns past the image and drops them.

    Memory: the windows hold ``k s / t`` values per input value (11 for ``k = 5``), kept for
    the backward pass; XLA's convolution keeps none. That is why only layers with few input
    channels take this form, where the inputs are small.
    """
    B, H, Wd, C = h.shape
    O, k, _, _ = W.shape
    t = band_tile(k, Wd) if tile is None else operator.index(tile)
    if t < 1:
        raise ValueError(f"tile must be a positive number of output columns, got {tile!r}")
    n_tiles = -(-Wd // t)
    span = t + k - 1
    before = (k - 1) // 2
    hp = jnp.pad(h, ((0, 0), (before, k - 1 - before),
                     (before, n_tiles * t - Wd + k - 1 - before), (0, 0)))
    windows = _windows(hp, H, k, t, n_tiles)                 # (B, H, n_tiles, k, span, C)
    band = np.zeros((k, span, t), np.float32)
    for j in range(k):
        band[j, np.arange(t) + j, np.arange(t)] = 1
    T = jnp.einsum("oijc,jpx->ipcxo", W, jnp.asarray(band, W.dtype))
    out = windows.reshape(-1, k * span * C) @ T.reshape(k * span * C, t * O)
    return out.reshape(B, H, n_tiles * t, O)[:, :, :Wd]


#: Up to this many tiles per row, :func:`_windows` cuts one slice per (tile, kernel row).
#: Above, one strided slice per window column: fewer operations in the program (k + s instead
#: of k x n_tiles, so a 512-pixel-wide image compiles in a fraction of the 5 s it took), but
#: each SGD step of the cnn on 28x28 images (4 tiles) ran 7 % slower that way on a 2-core CPU.
SLICED_MAX_TILES = 8


def _windows(hp: Array, H: int, k: int, t: int, n_tiles: int) -> Array:
    """``w[b, y, q, i, p, c] = hp[b, y + i, q t + p, c]`` from the padded ``hp``:
    ``(B, H, n_tiles, k, t + k - 1, C)``."""
    span = t + k - 1
    if n_tiles <= SLICED_MAX_TILES:
        return jnp.stack([jnp.stack([hp[:, i:i + H, q * t:q * t + span] for i in range(k)],
                                    axis=2) for q in range(n_tiles)], axis=2)
    columns = jnp.stack([hp[:, :, p:p + (n_tiles - 1) * t + 1:t] for p in range(span)], axis=3)
    return jnp.stack([columns[:, i:i + H] for i in range(k)], axis=3)


def max_pool_2x2(h: Array) -> Array:
    """2x2 max pooling, stride 2: ``h (B, H, Wd, C)`` -> ``(B, ceil(H/2), ceil(Wd/2), C)``. An
    odd side is padded with ``-inf`` at its end (SAME), so its last window holds one row or
    column and a 1-pixel side stays 1.

    Two pairwise maxima (:func:`pair_max`): of rows ``2y`` and ``2y + 1`` (rows of ``Wd C``
    contiguous values), then of columns ``2x`` and ``2x + 1``. Each sends the gradient to the
    side that won, so at a tie it goes to the top row, then to the left column: a subgradient. JAX's
    own gradient of a max over a ``(B, H/2, 2, W/2, 2, C)`` reshape shares ties (a mask, a
    count, a division over the whole input) and took 3.0 ms forward and backward on the cnn's
    (128, 28, 28, 6) activations on a 2-core CPU; ``lax.reduce_window`` 3.4 ms; this 0.45 ms.
    """
    B, H, Wd, C = h.shape
    if H % 2 or Wd % 2:
        h = jnp.pad(h, ((0, 0), (0, H % 2), (0, Wd % 2), (0, 0)), constant_values=-jnp.inf)
        H, Wd = H + H % 2, Wd + Wd % 2
    rows = h.reshape(B, H // 2, 2, Wd * C)
    m = pair_max(rows[:, :, 0], rows[:, :, 1]).reshape(B, H // 2, Wd // 2, 2 * C)
    return pair_max(m[..., :C], m[..., C:])


@jax.custom_jvp
def pair_max(a: Array, b: Array) -> Array:
    """``max(a, b)`` elementwise, with derivative that of ``a`` where ``a >= b`` and of ``b``
    elsewhere. A JVP rule, not a VJP one, so forward mode and second derivatives (the
    Hessian-vector products of the noise scale) work too; ``jnp.maximum``'s own rule, which
    shares ties, took twice as long forward and backward."""
    return jnp.maximum(a, b)


@pair_max.defjvp
def _pair_max_jvp(primals, tangents):
    a, b = primals
    da, db = tangents
    return jnp.maximum(a, b), jnp.where(a >= b, da, db)
