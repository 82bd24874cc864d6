"""Index maps on the spatial axes: ``ZeroPadding1D/2D`` and ``Cropping1D/2D`` (a 1×1
identity convolution with positive or negative top/left padding: composed with the next
convolution it only shifts that convolution's window) and ``UpSampling1D/2D`` (nearest
neighbour: a sparse 0/1 map)."""

from __future__ import annotations

import numpy as np

from ..linear import Conv, gather, lift3
from ..planner import Planner
from ..registry import register


def _pairs(value, rank):
    """Keras padding/cropping config → ``((top, bottom), (left, right))`` (2-D) form."""
    if rank == 1:
        left, right = (value, value) if isinstance(value, int) else value
        return (0, 0), (int(left), int(right))
    if isinstance(value, int):
        return (value, value), (value, value)
    a, b = value
    a = (a, a) if isinstance(a, int) else a
    b = (b, b) if isinstance(b, int) else b
    return (int(a[0]), int(a[1])), (int(b[0]), int(b[1]))


def _shift(ctx: Planner, node, value, sign: int, what: str):
    rank = 1 if node.keras_class.endswith("1D") else 2
    key = "padding" if sign > 0 else "cropping"
    (top, _), (left, _) = _pairs(node.config[key], rank)
    out_shape = tuple(node.output_shape)
    in3, out3 = lift3(value.shape), lift3(out_shape)
    c = in3[2]
    op = Conv(np.ones((1, 1, 1, c)), (1, 1), (sign * top, sign * left), c, in3, out3)
    ctx.role(node, f"{what}, folded into the next connection")
    return value.through(op, node.name, out_shape)


@register("ZeroPadding1D", "ZeroPadding2D")
def zero_padding(ctx: Planner, node, inputs):
    return _shift(ctx, node, inputs[0], +1, "zero padding")


@register("Cropping1D", "Cropping2D")
def cropping(ctx: Planner, node, inputs):
    return _shift(ctx, node, inputs[0], -1, "cropping")


def _check_upsampling(node) -> str | None:
    if node.config.get("interpolation", "nearest") != "nearest":
        return (f"UpSampling2D {node.name!r} uses interpolation="
                f"{node.config.get('interpolation')!r}; only 'nearest' is supported")
    return None


@register("UpSampling1D", "UpSampling2D", check=_check_upsampling)
def upsampling(ctx: Planner, node, inputs):
    (value,) = inputs
    out_shape = tuple(node.output_shape)
    (h, w, c), (oh, ow, _) = lift3(value.shape), lift3(out_shape)
    sy, sx = oh // h, ow // w
    oy, ox, ch = np.meshgrid(np.arange(oh), np.arange(ow), np.arange(c), indexing="ij")
    source = (((oy // sy) * w + ox // sx) * c + ch).ravel()
    ctx.role(node, f"nearest upsampling ×{(sy, sx) if h > 1 else sx}, folded (sparse map)")
    return value.through(gather(value.shape, out_shape, source), node.name, out_shape)
