"""``BatchNormalization`` (inference form) as a per-channel affine map, folded exactly into
the neighbouring connections: ``x·inv + (beta − mean·inv)``, ``inv = gamma/sqrt(var + eps)``.
Before a neuron layer it scales that layer's incoming weights; after one (relu → BN → conv)
it scales the next layer's input weights."""

from __future__ import annotations

import numpy as np

from ..linear import Conv, lift3
from ..planner import Planner
from ..registry import register


def _check(node) -> str | None:
    axis = node.config.get("axis", -1)
    axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
    rank = len(node.output_shape)
    if axis not in (-1, rank) or node.config.get("renorm"):
        return (f"layer {node.name!r} (BatchNormalization) normalises axis "
                f"{node.config.get('axis')}; only the last (channels) axis can be folded into "
                f"synapse weights")
    return None


@register("BatchNormalization", check=_check)
def batch_norm(ctx: Planner, node, inputs):
    (value,) = inputs
    w = node.weights
    mean = w["moving_mean"].astype(np.float64)
    var = w["moving_variance"].astype(np.float64)
    c = mean.shape[0]
    gamma = w["gamma"].astype(np.float64) if "gamma" in w else np.ones(c)
    beta = w["beta"].astype(np.float64) if "beta" in w else np.zeros(c)
    inv = gamma / np.sqrt(var + float(node.config.get("epsilon", 1e-3)))
    in3 = lift3(value.shape)
    op = Conv(inv.reshape(1, 1, 1, c), (1, 1), (0, 0), c, in3, in3)
    shift = np.tile(beta - mean * inv, value.size // c)
    ctx.role(node, "batch normalization, folded into the neighbouring weights")
    return value.through(op, node.name, tuple(node.output_shape), shift)
