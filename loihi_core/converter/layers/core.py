"""Layers that move no numbers: the input, dropout-like layers (identity at inference),
``Flatten``/``Reshape`` (C-order views) and ``Permute`` (an index map)."""

from __future__ import annotations

import numpy as np

from ..linear import selection
from ..planner import Planner
from ..registry import register


@register("InputLayer")
def input_layer(ctx: Planner, node, inputs):  # pragma: no cover - handled by the planner
    raise ctx.fail(node, "an input layer cannot be converted twice")


@register("Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianDropout", "GaussianNoise",
          "AlphaDropout", "Identity", "ActivityRegularization")
def identity(ctx: Planner, node, inputs):
    ctx.role(node, "identity at inference (ignored)")
    return inputs[0]


@register("Flatten", "Reshape")
def view(ctx: Planner, node, inputs):
    ctx.role(node, "view (C-order reshape, no computation)")
    return inputs[0].viewed(node.name, tuple(node.output_shape))


@register("Permute")
def permute(ctx: Planner, node, inputs):
    (value,) = inputs
    dims = [int(d) - 1 for d in node.config["dims"]]
    index = np.arange(value.size).reshape(value.shape).transpose(dims)
    # output element j copies input element index.ravel()[j]: its inverse places input i
    place = np.empty(value.size, np.int64)
    place[index.ravel()] = np.arange(value.size)
    ctx.role(node, f"permutation {tuple(d + 1 for d in dims)} (an index map), folded")
    return value.through(selection(value.shape, node.output_shape, place), node.name,
                         tuple(node.output_shape))
