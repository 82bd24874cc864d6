"""The Keras → spiking-network converter as a registry of layer families.

:mod:`.planner` walks the layer graph in topological order, :mod:`.values` and
:mod:`.linear` carry the exact linear paths between neuron layers, and each module of
:mod:`.layers` converts one family of Keras layers (registered in :mod:`.registry`).
:func:`loihi_core.convert.convert` applies the tuned settings to the plan.
"""

from .planner import (ConnectionPlan, ConversionPlan, NeuronLayerPlan, ReadoutPlan,
                      plan_conversion, unsupported_reason)
from .registry import REGISTRY, register, supported_classes

__all__ = ["ConnectionPlan", "ConversionPlan", "NeuronLayerPlan", "ReadoutPlan",
           "plan_conversion", "unsupported_reason", "REGISTRY", "register", "supported_classes"]
