"""The registry of Keras layer converters: one module per layer family registers here.

A converter is ``convert(ctx, node, inputs) -> Value``: it gets the
:class:`~loihi_core.converter.planner.Planner` (to create neuron layers, add notes and
warnings), the layer and the :class:`~loihi_core.converter.values.Value` of each of its
inputs, and returns the value of its output. An optional ``check(node) -> str | None``
refuses a configuration of the layer up front (before any conversion work), naming the
layer and what to do. Adding a layer kind means adding one function to its family module
(and its test).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..graph import LayerNode


@dataclass(frozen=True)
class LayerConverter:
    keras_class: str
    convert: Callable
    check: Callable[[LayerNode], str | None] | None = None


REGISTRY: dict[str, LayerConverter] = {}


def register(*keras_classes: str, check: Callable[[LayerNode], str | None] | None = None):
    """Decorator: ``fn`` converts the Keras layers of these classes."""

    def decorate(fn):
        for cls in keras_classes:
            if cls in REGISTRY:
                raise RuntimeError(f"Keras class {cls} registered twice")
            REGISTRY[cls] = LayerConverter(cls, fn, check)
        return fn

    return decorate


def supported_classes() -> list[str]:
    """The Keras classes the converter handles, sorted."""
    from . import layers  # noqa: F401  (imports every family module, which registers)

    return sorted(REGISTRY)
