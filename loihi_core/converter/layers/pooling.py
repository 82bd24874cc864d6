"""Pooling: average pooling of any size and stride (a depthwise convolution with weights
``1/(ph·pw)``; with 'same' padding an exact sparse map that divides each window by the
cells it really covers, as Keras does), global average pooling (one window over the whole
input), and max pooling, which synapses cannot compute: with ``max_to_avg_pool`` (the
default) it becomes average pooling with a warning and a note (``verify`` reports the cost).
"""

from __future__ import annotations

import numpy as np

from ..linear import Conv, Matrix, _sparse, lift3
from ..planner import Planner
from ..registry import register


def _tuple(value, rank):
    if isinstance(value, (list, tuple)):
        return tuple(int(v) for v in value)
    return (int(value),) * rank


def _check_pool(node) -> str | None:
    if node.config.get("padding", "valid") not in ("valid", "same"):
        return f"{node.keras_class} {node.name!r}: padding must be 'valid' or 'same'"
    return None


def _substitute_max(ctx: Planner, node) -> str:
    avg_cls = node.keras_class.replace("Max", "Average")
    if not ctx.max_to_avg_pool:
        raise ctx.fail(node, f"{node.keras_class} {node.name!r} cannot be computed by Loihi synapses "
                             f"(a max is not a weighted sum); set \"max_to_avg_pool\": true in the "
                             f"tuned config to substitute average pooling (verify reports the "
                             f"accuracy cost), or retrain with {avg_cls}")
    ctx.warn(f"{node.keras_class} {node.name!r} replaced by {avg_cls} (max pooling cannot be "
             f"computed by Loihi synapses); outputs will differ from Keras: check the cost with "
             f"loihi_core.verify")
    ctx.max_subs.append(node.name)
    return "max pooling → average pooling"


def _same_average(in3, out3, pool, strides) -> Matrix:
    """Exact 'same' average pooling: each output divides by the cells its window covers."""
    h, w, c = in3
    oh, ow, _ = out3
    pt = max((oh - 1) * strides[0] + pool[0] - h, 0) // 2
    pl = max((ow - 1) * strides[1] + pool[1] - w, 0) // 2
    oy, ox = np.meshgrid(np.arange(oh), np.arange(ow), indexing="ij")
    y0, x0 = oy * strides[0] - pt, ox * strides[1] - pl
    count = ((np.minimum(y0 + pool[0], h) - np.maximum(y0, 0))
             * (np.minimum(x0 + pool[1], w) - np.maximum(x0, 0)))
    rows, cols, vals = [], [], []
    ch = np.arange(c)
    for a in range(pool[0]):
        for b in range(pool[1]):
            iy, ix = y0 + a, x0 + b
            ok = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
            pin, pout = (iy * w + ix)[ok], (oy * ow + ox)[ok]
            rows.append((pin[:, None] * c + ch).ravel())
            cols.append((pout[:, None] * c + ch).ravel())
            vals.append(np.repeat(1.0 / count[ok], c))
    m = _sparse().csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(h * w * c, oh * ow * c))
    return Matrix(m)


@register("AveragePooling1D", "AveragePooling2D", "MaxPooling1D", "MaxPooling2D", check=_check_pool)
def pooling(ctx: Planner, node, inputs):
    (value,) = inputs
    rank = 1 if node.keras_class.endswith("1D") else 2
    if len(value.shape) != rank + 1:
        raise ctx.fail(node, f"{node.keras_class} {node.name!r} gets a {value.shape} input; it "
                             f"needs {rank + 1} axes (…, channels)")
    kind = "average pooling"
    if node.keras_class.startswith("Max"):
        kind = _substitute_max(ctx, node)
    pool = _tuple(node.config["pool_size"], rank)
    strides = _tuple(node.config.get("strides") or node.config["pool_size"], rank)
    if rank == 1:
        pool, strides = (1, pool[0]), (1, strides[0])
    out_shape = tuple(node.output_shape)
    in3, out3 = lift3(value.shape), lift3(out_shape)
    c = in3[2]
    if node.config.get("padding", "valid") == "same":
        op = _same_average(in3, out3, pool, strides)
    else:
        kernel = np.full((pool[0], pool[1], 1, c), 1.0 / (pool[0] * pool[1]))
        op = Conv(kernel, strides, (0, 0), c, in3, out3)
    ctx.role(node, f"{kind} {pool if rank == 2 else pool[1:]}, folded into the next connection")
    return value.through(op, node.name, out_shape)


@register("GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D",
          "GlobalMaxPooling2D")
def global_pooling(ctx: Planner, node, inputs):
    (value,) = inputs
    kind = "global average pooling"
    if "Max" in node.keras_class:
        kind = _substitute_max(ctx, node)
    in3 = lift3(value.shape)
    if in3 is None or len(value.shape) < 2:
        raise ctx.fail(node, f"{node.keras_class} {node.name!r} gets a {value.shape} input; it "
                             f"needs (…, channels)")
    h, w, c = in3
    kernel = np.full((h, w, 1, c), 1.0 / (h * w))
    op = Conv(kernel, (1, 1), (0, 0), c, in3, (1, 1, c))
    ctx.role(node, f"{kind}, folded into the next connection")
    return value.through(op, node.name, tuple(node.output_shape))
