"""Convolutions: ``Conv1D``/``Conv2D`` (any ``groups``, dilation, 'valid'/'same'/'causal'
padding), ``DepthwiseConv1D/2D``, ``SeparableConv1D/2D`` (depthwise ∘ pointwise, composed
exactly into one kernel) and ``Conv2DTranspose`` (an exact dense matrix).

1-D layers run as 2-D convolutions of height 1: data ``(L, C)`` is ``(1, L, C)``.
A dilated kernel is the kernel with ``d − 1`` zeros between taps (exact).
"""

from __future__ import annotations

import numpy as np

from ..linear import Conv, Matrix, lift3
from ..planner import Planner
from ..registry import register

#: Largest dense matrix built for a Conv2DTranspose (entries).
MAX_DENSE_ENTRIES = 1 << 24


def _tuple(value, rank: int) -> tuple[int, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(int(v) for v in value)
    return (int(value),) * rank


def _check_conv(node) -> str | None:
    cfg = node.config
    rank = 1 if node.keras_class.endswith("1D") else 2
    if cfg.get("padding") not in ("valid", "same", "causal"):
        return f"layer {node.name!r} ({node.keras_class}) has padding={cfg.get('padding')!r}; use 'valid' or 'same'"
    if cfg.get("padding") == "causal" and rank != 1:
        return f"layer {node.name!r}: 'causal' padding exists for 1-D convolutions only"
    strides = _tuple(cfg.get("strides", 1), rank)
    dilation = _tuple(cfg.get("dilation_rate", 1), rank)
    if any(s > 1 for s in strides) and any(d > 1 for d in dilation):
        return (f"layer {node.name!r} ({node.keras_class}) has both strides {strides} and "
                f"dilation_rate {dilation}; Keras itself refuses this combination")
    return None


def _dilate(kernel: np.ndarray, dilation: tuple[int, int]) -> np.ndarray:
    dr, dc = dilation
    if dr == dc == 1:
        return kernel
    kh, kw = kernel.shape[:2]
    out = np.zeros(((kh - 1) * dr + 1, (kw - 1) * dc + 1, *kernel.shape[2:]))
    out[::dr, ::dc] = kernel
    return out


def _pad(n_in: int, n_out: int, k: int, s: int, padding: str) -> int:
    if padding == "same":
        return max((n_out - 1) * s + k - n_in, 0) // 2
    if padding == "causal":
        return k - 1
    return 0


def conv_op(node, kernel: np.ndarray, groups: int, in_shape, out_shape, strides=None,
            dilation=None) -> Conv:
    """The :class:`Conv` of a Keras conv layer with ``kernel`` ``(kh, kw, C/groups, F)``
    (1-D kernels ``(k, C/groups, F)`` get a unit height)."""
    cfg = node.config
    rank = 1 if kernel.ndim == 3 else 2
    strides = _tuple(cfg.get("strides", 1) if strides is None else strides, rank)
    dilation = _tuple(cfg.get("dilation_rate", 1) if dilation is None else dilation, rank)
    if rank == 1:
        kernel = kernel.reshape(1, *kernel.shape)
        strides, dilation = (1, strides[0]), (1, dilation[0])
    kernel = _dilate(kernel.astype(np.float64), dilation)
    in3, out3 = lift3(in_shape), lift3(out_shape)
    padding = cfg.get("padding", "valid")
    pad = (_pad(in3[0], out3[0], kernel.shape[0], strides[0], padding if rank == 2 else "valid"),
           _pad(in3[1], out3[1], kernel.shape[1], strides[1], padding))
    return Conv(kernel, strides, pad, groups, in3, out3)


def _bias(node, out_shape) -> np.ndarray | None:
    if "bias" not in node.weights:
        return None
    bias = node.weights["bias"].astype(np.float64)
    return np.tile(bias, int(np.prod(out_shape[:-1])))


@register("Conv1D", "Conv2D", check=_check_conv)
def conv(ctx: Planner, node, inputs):
    (value,) = inputs
    groups = int(node.config.get("groups", 1))
    out_shape = tuple(node.output_shape)
    op = conv_op(node, node.weights["kernel"], groups, value.shape, out_shape)
    ctx.role(node, "weights" + (f" (grouped, groups={groups})" if groups > 1 else ""))
    return ctx.activation(node, value.through(op, node.name, out_shape, _bias(node, out_shape)))


@register("DepthwiseConv1D", "DepthwiseConv2D", check=_check_conv)
def depthwise(ctx: Planner, node, inputs):
    (value,) = inputs
    kernel = node.weights["kernel"]  # (kh, kw, C, mult) or (k, C, mult)
    c, mult = kernel.shape[-2:]
    grouped = kernel.reshape(*kernel.shape[:-2], 1, c * mult)  # out channel c·mult + m
    out_shape = tuple(node.output_shape)
    op = conv_op(node, grouped, c, value.shape, out_shape)
    ctx.role(node, f"depthwise weights ({c} groups, sparse synapses)")
    return ctx.activation(node, value.through(op, node.name, out_shape, _bias(node, out_shape)))


@register("SeparableConv1D", "SeparableConv2D", check=_check_conv)
def separable(ctx: Planner, node, inputs):
    (value,) = inputs
    dw = node.weights["depthwise_kernel"]
    pw = node.weights["pointwise_kernel"].astype(np.float64)
    c, mult = dw.shape[-2:]
    out_shape = tuple(node.output_shape)
    mid_shape = (*out_shape[:-1], c * mult)
    depth = conv_op(node, dw.reshape(*dw.shape[:-2], 1, c * mult), c, value.shape, mid_shape)
    point = Conv(pw.reshape(1, 1, *pw.shape[-2:]), (1, 1), (0, 0), 1, lift3(mid_shape),
                 lift3(out_shape))
    op = depth.then(point)
    ctx.role(node, "weights (depthwise ∘ pointwise, composed into one kernel)")
    return ctx.activation(node, value.through(op, node.name, out_shape, _bias(node, out_shape)))


def _check_transpose(node) -> str | None:
    cfg = node.config
    if cfg.get("output_padding") is not None:
        return f"Conv2DTranspose {node.name!r}: output_padding is not supported; leave it None"
    if _tuple(cfg.get("dilation_rate", 1), 2) != (1, 1):
        return f"Conv2DTranspose {node.name!r}: dilation is not supported"
    return None


@register("Conv2DTranspose", check=_check_transpose)
def conv_transpose(ctx: Planner, node, inputs):
    (value,) = inputs
    if len(value.shape) != 3:
        raise ctx.fail(node, f"Conv2DTranspose {node.name!r} gets a {value.shape} input; it "
                             f"needs (rows, cols, channels)")
    out_shape = tuple(node.output_shape)
    n_in, n_out = value.size, int(np.prod(out_shape))
    if n_in * n_out > MAX_DENSE_ENTRIES:
        raise ctx.fail(node, f"Conv2DTranspose {node.name!r} becomes a dense {n_in}×{n_out} "
                             f"connection, too large to build ({n_in * n_out} weights > "
                             f"{MAX_DENSE_ENTRIES}); use UpSampling2D + Conv2D instead")
    strides = _tuple(node.config["strides"], 2)
    mat = conv_transpose_matrix(node.weights["kernel"], tuple(value.shape), out_shape, strides,
                                node.config["padding"])
    ctx.notes.append(f"Conv2DTranspose {node.name!r} became an exact dense {n_in}×{n_out} map")
    ctx.role(node, "weights (exact dense map)")
    return ctx.activation(node, value.through(Matrix(mat), node.name, out_shape,
                                              _bias(node, out_shape)))


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
