"""Merges: ``Add``, ``Subtract``, ``Average`` (weighted sums: the branches' paths are kept
as separate terms, so the next neuron layer gets one connection per branch, as in
NengoLoihi) and ``Concatenate`` (each branch is placed in its slots: on the channel axis
by a 1×1 selection convolution, which the next convolution absorbs, else a 0/1 map)."""

from __future__ import annotations

import numpy as np

from ..linear import Conv, lift3, selection
from ..planner import Planner
from ..registry import register
from ..values import Value


def _same_shapes(ctx, node, inputs):
    shapes = {tuple(v.shape) for v in inputs}
    if len(shapes) != 1:
        raise ctx.fail(node, f"{node.keras_class} {node.name!r} merges tensors of shapes "
                             f"{sorted(shapes)}; only equal shapes are supported (no broadcasting)")


def _sum(values: list[Value], node, shape) -> Value:
    terms, bias = [], None
    for v in values:
        terms.extend(v.terms)
        if v.bias is not None:
            bias = v.bias.copy() if bias is None else bias + v.bias
    layers = tuple(dict.fromkeys(k for v in values for k in v.layers)) + (node.name,)
    return Value(tuple(shape), terms, bias, all(v.nonneg for v in values), False, layers)


@register("Add")
def add(ctx: Planner, node, inputs):
    _same_shapes(ctx, node, inputs)
    ctx.role(node, f"sum of {len(inputs)} branches (one connection each into the next neurons)")
    return _sum(inputs, node, node.output_shape)


@register("Subtract")
def subtract(ctx: Planner, node, inputs):
    _same_shapes(ctx, node, inputs)
    ctx.role(node, "difference of 2 branches (the second with negated weights)")
    out = _sum([inputs[0], inputs[1].scaled(-1.0)], node, node.output_shape)
    out.nonneg = False
    return out


@register("Average")
def average(ctx: Planner, node, inputs):
    _same_shapes(ctx, node, inputs)
    ctx.role(node, f"average of {len(inputs)} branches (weights scaled by 1/{len(inputs)})")
    return _sum([v.scaled(1.0 / len(inputs)) for v in inputs], node, node.output_shape)


@register("Concatenate")
def concatenate(ctx: Planner, node, inputs):
    out_shape = tuple(node.output_shape)
    rank = len(out_shape)
    axis = int(node.config.get("axis", -1))
    axis = axis + rank if axis < 0 else axis - 1  # Keras counts the batch axis
    if not 0 <= axis < rank:
        raise ctx.fail(node, f"Concatenate {node.name!r}: axis {node.config.get('axis')} is not an "
                             f"axis of its {out_shape} output")
    full = np.arange(int(np.prod(out_shape))).reshape(out_shape)
    placed, offset = [], 0
    for v in inputs:
        size = v.shape[axis]
        if axis == rank - 1 and lift3(out_shape) is not None:
            c, f = v.shape[-1], out_shape[-1]
            kernel = np.zeros((1, 1, c, f))
            kernel[0, 0, np.arange(c), offset + np.arange(c)] = 1.0
            op = Conv(kernel, (1, 1), (0, 0), 1, lift3(v.shape), lift3(out_shape))
        else:
            index = [slice(None)] * rank
            index[axis] = slice(offset, offset + size)
            op = selection(v.shape, out_shape, full[tuple(index)].ravel())
        placed.append(v.through(op, node.name, out_shape))
        offset += size
    ctx.role(node, f"concatenation of {len(inputs)} branches on axis {axis + 1} (each placed in "
                   f"its slots)")
    return _sum(placed, node, out_shape)
