"""Exact rewrites of linear Keras layers into connection weights (pure NumPy, float64).

Used by :mod:`loihi_core.convert`. Each function states the identity it relies on; the
property tests in ``tests/test_simulate.py`` check them against naive loop versions of the
TensorFlow semantics, and ``tests/test_convert.py`` against ``model.predict``.

What is exact and what is not:

* average pooling (non-overlapping, ``'valid'``) folded into the next Conv2D or
  Flatten + Dense: **exact** (cropped border rows/columns get zero weight); into a
  ``'same'``-padded conv only when the padding maps onto whole pooling windows
  (:func:`check_same_pool_fold`), otherwise the converter refuses;
* BatchNormalization folded into the preceding Conv2D/Dense: **exact** (inference form);
* Conv2DTranspose as a dense matrix: **exact**;
* max pooling has no weighted-sum form: the converter substitutes average pooling, an
  **approximation** whose cost ``loihi_core.verify`` reports.
"""

from __future__ import annotations

import numpy as np

from .graph import LayerNode

# ---------------------------------------------------------------------------------------

def fold_batch_norm(kernel: np.ndarray, bias: np.ndarray | None, bn: LayerNode
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Fold an inference-mode BatchNormalization into the preceding layer's weights.

    Keras computes ``y = x·inv + (beta - mean·inv)`` with ``inv = gamma / sqrt(var + eps)``
    per channel (the last axis), so ``W' = W·inv`` and ``b' = (b - mean)·inv + beta``.
    ``kernel``'s last axis runs over the outputs; when it is a dense matrix onto a
    ``(rows, cols, channels)`` output (a Conv2DTranspose), ``inv`` repeats every
    ``channels`` columns. ``bias`` (per channel) may be ``None`` (no bias).
    """
    w = bn.weights
    mean = w["moving_mean"].astype(np.float64)
    var = w["moving_variance"].astype(np.float64)
    channels = mean.shape[0]
    gamma = w["gamma"].astype(np.float64) if "gamma" in w else np.ones(channels)
    beta = w["beta"].astype(np.float64) if "beta" in w else np.zeros(channels)
    eps = float(bn.config.get("epsilon", 1e-3))
    inv = gamma / np.sqrt(var + eps)
    reps = kernel.shape[-1] // channels
    b = np.zeros(channels) if bias is None else bias.astype(np.float64)
    return kernel.astype(np.float64) * np.tile(inv, reps), (b - mean) * inv + beta


def expand_conv_for_pool(kernel: np.ndarray, strides: tuple[int, int], pool: tuple[int, int]
                         ) -> tuple[np.ndarray, tuple[int, int]]:
    """A conv after non-overlapping average pooling, as one conv on the unpooled input.

    Pooling (ph, pw) followed by a (kh, kw) conv of stride (sh, sw) equals a
    (kh·ph, kw·pw) conv of stride (sh·ph, sw·pw) whose tap ``(a·ph + i, b·pw + j)`` is
    ``K[a, b] / (ph·pw)``. Exact for 'valid' padding (see :func:`check_same_pool_fold`).
    """
    ph, pw = pool
    big = np.repeat(np.repeat(kernel.astype(np.float64), ph, axis=0), pw, axis=1) / (ph * pw)
    return big, (strides[0] * ph, strides[1] * pw)


def expand_dense_rows_for_pool(weights: np.ndarray, base_shape: tuple[int, int, int],
                               pool: tuple[int, int]) -> np.ndarray:
    """Dense weights that read a pooled-and-flattened input, rewritten for the unpooled one.

    ``weights`` has one row per element of the pooled ``(H//ph, W//pw, C)`` tensor (C order);
    the result has one row per element of ``base_shape = (H, W, C)``: each pooled row is
    repeated over its window divided by ``ph·pw``; rows/cols cropped by the pooling are 0.
    """
    h, w, c = base_shape
    ph, pw = pool
    hp, wp = h // ph, w // pw
    n_out = weights.shape[1]
    pooled = weights.astype(np.float64).reshape(hp, wp, c, n_out) / (ph * pw)
    full = np.zeros((h, w, c, n_out))
    full[:hp * ph, :wp * pw] = np.repeat(np.repeat(pooled, ph, axis=0), pw, axis=1)
    return full.reshape(h * w * c, n_out)


def same_padding_total(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """Output size and total padding of a 'same' conv along one axis, as TensorFlow picks."""
    out = -(-size // stride)
    return out, max((out - 1) * stride + kernel - size, 0)


def check_same_pool_fold(pooled: tuple[int, int], base: tuple[int, int], kernel: tuple[int, int],
                         strides: tuple[int, int], pool: tuple[int, int]) -> str | None:
    """Why a 'same' conv cannot absorb the preceding pooling exactly (``None`` if it can).

    The expanded conv pads by ``p·T // 2`` on top where the original pads ``p·(T // 2)``
    pooled rows; these agree only when the total padding T is even (or p = 1), and only
    if the pooling crops nothing (else 'same' would read real rows where zeros were).
    """
    for axis, name in ((0, "rows"), (1, "columns")):
        p = pool[axis]
        if p == 1:
            continue
        if pooled[axis] * p != base[axis]:
            return (f"the pooling drops {base[axis] - pooled[axis] * p} of {base[axis]} {name}, "
                    f"which a 'same'-padded conv cannot skip")
        _, total = same_padding_total(pooled[axis], kernel[axis], strides[axis])
        if total % 2:
            return (f"the conv pads {total} pooled {name} in total (odd), which does not map "
                    f"onto whole pooling windows")
    return None


def conv_transpose_matrix(kernel: np.ndarray, in_shape: tuple[int, int, int],
                          out_shape: tuple[int, int, int], strides: tuple[int, int],
                          padding: str) -> np.ndarray:
    """Dense ``(n_in, n_out)`` matrix of a Keras ``Conv2DTranspose`` (kernel ``(kh, kw, F, C)``).

    A transposed conv is the adjoint of the conv from its output to its input: input pixel
    ``(i, j)`` scatters ``K[a, b, f, c]·x[i, j, c]`` onto output pixel
    ``(i·s + a - pad_top, j·s + b - pad_left)``, with TensorFlow's 'same' padding of that
    forward conv.
    """
    kh, kw, f_out, c_in = kernel.shape
    h, w, _ = in_shape
    oh, ow, _ = out_shape
    sr, sc = strides
    if padding == "same":
        pad_t = max((h - 1) * sr + kh - oh, 0) // 2
        pad_l = max((w - 1) * sc + kw - ow, 0) // 2
    else:
        pad_t = pad_l = 0
    mat = np.zeros((h, w, c_in, oh, ow, f_out))
    ii, jj = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    k64 = kernel.astype(np.float64)
    for a in range(kh):
        for b in range(kw):
            oi, oj = ii * sr + a - pad_t, jj * sc + b - pad_l
            ok = (oi >= 0) & (oi < oh) & (oj >= 0) & (oj < ow)
            src_i, src_j, dst_i, dst_j = ii[ok], jj[ok], oi[ok], oj[ok]
            # mat[i, j, :, oi, oj, :] += K[a, b].T  (c_in, f_out)
            mat[src_i, src_j, :, dst_i, dst_j, :] += k64[a, b].T
    return mat.reshape(h * w * c_in, oh * ow * f_out)
