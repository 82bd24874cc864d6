"""Nonlinearities: relu (any spelling), clipped relu (``ReLU(max_value)``, ``relu6``),
leaky relu, softmax (output only), and the ``Activation``/``ReLU``/``LeakyReLU``/``Softmax``
layers that apply them.

* **relu** closes a neuron layer. A relu of one neuron layer's output (possibly pooled),
  which can only be non-negative, is the identity and is dropped; after a merge it makes
  neurons, as NengoDL's converter does (NengoLoihi's references rely on it).
* **ReLU(max_value=m)**: a Loihi relu saturates at one spike per step, i.e. at
  ``1 / (dt · scale_firing_rates)``: the clip is exact in rate mode when
  ``scale_firing_rates = 1 / (m · dt)``. The ideal rate model clips at ``m`` (so rate mode
  equals Keras); ``convert`` warns when the layer's scale makes the chip's saturation
  differ from ``m``, and ``verify`` reports the cost.
* **LeakyReLU(α)**: rates are non-negative, so ``x ↦ relu(x) − α·relu(−x)`` is built as an
  on/off pair of neuron layers, ``name`` and ``name_neg`` (exact in rate mode). This is the
  default because it is exact; its cost is a second population of the same size.
"""

from __future__ import annotations

from ..planner import Planner, parse_call
from ..registry import register
from ..values import Term, Value


def nonlinearity(ctx: Planner, node, value: Value, act: str) -> Value:
    if act == "relu":
        if value.nonneg and len(value.terms) == 1:
            ctx.role(node, "identity (its input is already non-negative)")
            ctx.notes.append(f"{node.keras_class} {node.name!r} is the identity here (its input "
                             f"is non-negative) and was dropped")
            return value
        return ctx.neurons(node, value)
    if act == "relu6" or act.startswith("ReLU("):
        m = 6.0 if act == "relu6" else parse_call(act).get("max_value")
        slope = 0.0 if act == "relu6" else parse_call(act).get("negative_slope", 0.0)
        if slope:
            return _leaky(ctx, node, value, slope, max_value=m)
        if m is None:
            return ctx.neurons(node, value)
        out = ctx.neurons(node, value, max_value=m,
                          role=f"neuron layer {tuple(value.shape)}, clipped at {m:g}")
        ctx.notes.append(
            f"{node.name!r} clips at {m:g}: exact on Loihi when its scale_firing_rates is "
            f"1/({m:g}·dt) (the relu saturates at one spike per step); otherwise an "
            f"approximation that verify reports")
        return out
    if act == "leaky_relu" or act.startswith("LeakyReLU("):
        slope = 0.2 if act == "leaky_relu" else parse_call(act).get("negative_slope", 0.3)
        return _leaky(ctx, node, value, slope)
    raise ctx.fail(node, f"layer {node.name!r} ({node.keras_class}): activation {act!r} has no "
                         f"spiking equivalent")


def _leaky(ctx: Planner, node, value: Value, slope: float, max_value: float | None = None) -> Value:
    """``relu(x) − slope·relu(−x)`` as an on/off pair of neuron layers."""
    if max_value is not None:
        raise ctx.fail(node, f"layer {node.name!r}: a leaky relu with max_value is not supported; "
                             f"use one of the two")
    neg_name = f"{node.name}_neg"
    on = ctx.neurons(node, value, role=f"neuron layer {tuple(value.shape)} (positive half of a "
                                       f"leaky relu; {neg_name!r} is the negative half)",
                     kind="leaky_positive")
    off = ctx.neurons(node, value.scaled(-1.0), name=neg_name, role=None, kind="leaky_negative")
    ctx.role(node, f"leaky relu (α={slope:g}) as the neuron pair {node.name!r} + {neg_name!r}")
    ctx.notes.append(f"LeakyReLU {node.name!r} (α={slope:g}) became two neuron layers: "
                     f"{node.name!r} = relu(x) and {neg_name!r} = relu(−x), combined as "
                     f"{node.name} − {slope:g}·{neg_name} (exact in rate mode)")
    terms = on.terms + [Term(t.source, t.op.scaled(-slope), t.path) for t in off.terms]
    return Value(on.shape, terms, None, nonneg=False)


@register("Activation", "ReLU", "LeakyReLU", "Softmax")
def activation_layer(ctx: Planner, node, inputs):
    (value,) = inputs
    value = value.viewed(node.name, node.output_shape) if node.activation != "linear" else value
    if node.activation == "linear":
        ctx.role(node, "identity (linear activation)")
        return value
    return ctx.activation(node, value)
