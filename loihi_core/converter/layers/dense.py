"""``Dense``: a matrix on a flat input, a 1×1 convolution on the channel axis otherwise."""

from __future__ import annotations

import numpy as np

from ..linear import Conv, Matrix, lift3
from ..planner import Planner
from ..registry import register


@register("Dense")
def dense(ctx: Planner, node, inputs):
    (value,) = inputs
    kernel = node.weights["kernel"]  # float32 as Keras keeps it; compositions go to float64
    bias = node.weights["bias"].astype(np.float64) if "bias" in node.weights else None
    out_shape = tuple(node.output_shape)
    if len(value.shape) == 1:
        op = Matrix(kernel)
        flat_bias = bias
    else:  # Keras applies a Dense to the last axis of every position: a 1×1 conv
        in3, out3 = lift3(value.shape), lift3(out_shape)
        op = Conv(kernel.astype(np.float64).reshape(1, 1, *kernel.shape), (1, 1), (0, 0), 1,
                  in3, out3)
        flat_bias = None if bias is None else np.tile(bias, int(np.prod(out_shape[:-1])))
    ctx.role(node, "weights")
    out = value.through(op, node.name, out_shape, flat_bias)
    return ctx.activation(node, out)
