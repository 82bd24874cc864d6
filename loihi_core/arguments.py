"""Checking the public API's arguments: the project's errors instead of deep ``TypeError``s.

The API's functions take the object a user is most likely to hold and convert it as
needed: a function that works on a :class:`~loihi_core.network.SpikingNetwork` also takes
a ``.keras`` path, a ``keras.Model`` or a :class:`~loihi_core.graph.LayerGraph` (converted
with the default config, or the one given), and :class:`~loihi_core.emulator.Emulator`
also takes a network (mapped with its block shapes). Anything else gets an
:class:`~loihi_core.errors.ArgumentError` that names the argument and says what to pass.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import ArgumentError

_NETWORK_KINDS = ("a SpikingNetwork (loihi_core.convert(graph, config)), a LayerGraph "
                  "(loihi_core.load_model(path)), a keras.Model or a path to a .keras file")


def _is_model_source(obj: Any) -> bool:
    from .graph import LayerGraph

    if isinstance(obj, (LayerGraph, str, os.PathLike)):
        return True
    return hasattr(obj, "layers") and hasattr(obj, "inputs")  # a keras.Model


def as_network(obj: Any, argument: str = "network", config: Any = None):
    """A :class:`~loihi_core.network.SpikingNetwork` from what the caller holds.

    A network passes through; a chip model gives its network; a model source (path,
    ``keras.Model``, ``LayerGraph``) is converted with ``config``.
    """
    from .chip import ChipModel
    from .network import SpikingNetwork

    if isinstance(obj, SpikingNetwork):
        return obj
    if isinstance(obj, ChipModel):
        return obj.network
    if _is_model_source(obj):
        from .convert import convert

        return convert(obj, config)
    raise ArgumentError(f"{argument}: expected {_NETWORK_KINDS}, got {type(obj).__name__}",
                        argument)


def as_chip(obj: Any, argument: str = "chip"):
    """A mapped :class:`~loihi_core.chip.ChipModel` from a chip, a network or a model."""
    from .chip import ChipModel
    from .network import SpikingNetwork

    if isinstance(obj, ChipModel):
        if any(b.compartments is None for b in obj.blocks):
            raise ArgumentError(f"{argument}: the chip model was mapped with discretize=False; "
                                f"the emulator needs map_to_chip(network) (discretize=True)",
                                argument)
        return obj
    if isinstance(obj, SpikingNetwork) or _is_model_source(obj):
        from .mapping import map_to_chip

        return map_to_chip(as_network(obj, argument))
    raise ArgumentError(f"{argument}: expected a ChipModel (loihi_core.map_to_chip(network)) "
                        f"or {_NETWORK_KINDS}, got {type(obj).__name__}", argument)


def positive_int(value: Any, argument: str, maximum: int | None = None) -> int:
    """``value`` as an int >= 1 (and <= ``maximum``), or :class:`ArgumentError`."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        if isinstance(value, (float, np.floating)) and math.isfinite(value) and value == int(value):
            value = int(value)
        else:
            raise ArgumentError(f"{argument}: expected a positive integer, got {value!r}", argument)
    value = int(value)
    if value < 1:
        raise ArgumentError(f"{argument}: expected a positive integer, got {value}", argument)
    if maximum is not None and value > maximum:
        raise ArgumentError(f"{argument}: {value} is too many (at most {maximum:,})", argument)
    return value


def positive_number(value: Any, argument: str, *, below: float | None = None,
                    unit: str = "") -> float:
    """``value`` as a finite float > 0 (and < ``below``), or :class:`ArgumentError`."""
    if (isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating))
            or not math.isfinite(value) or value <= 0):
        raise ArgumentError(f"{argument}: expected a positive number{unit}, got {value!r}", argument)
    if below is not None and value >= below:
        raise ArgumentError(f"{argument}: {value:g}{unit} must be below {below:g}{unit}", argument)
    return float(value)


def choice(value: Any, argument: str, options: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in options:
        raise ArgumentError(f"{argument}: expected one of {', '.join(map(repr, options))}, got "
                            f"{value!r}", argument)
    return value


def presentation_steps(value: Any, argument: str = "presentation_steps") -> int | None:
    """``None`` (the network's) or a step count within the config's bound."""
    from .config import MAX_PRESENTATION_STEPS

    return None if value is None else positive_int(value, argument, MAX_PRESENTATION_STEPS)


def check_record(network: Any, record: Any) -> None:
    """Check ``Emulator.run``'s ``record`` argument against the network's layers."""
    if record is None or record is False or record is True or record == "all":
        return
    names = list(network.layers)
    if isinstance(record, str):
        record = [record]
    if not isinstance(record, Mapping):
        try:
            record = {name: None for name in record}
        except TypeError:
            raise ArgumentError(f"record: expected None, 'all', a list of layer names or "
                                f"{{layer: neuron ids}}, got {type(record).__name__}",
                                "record") from None
    for name, ids in record.items():
        if not isinstance(name, str) or name not in network.layers:
            raise ArgumentError(f"record: cannot record {name!r}: the network's neuron layers "
                                f"are {', '.join(names)}", "record")
        if ids is None:
            continue
        n = network.layers[name].n_neurons
        try:
            arr = np.asarray(ids)
        except (TypeError, ValueError):
            arr = np.asarray([None])
        if arr.dtype.kind not in "iu" or arr.ndim > 1:
            raise ArgumentError(f"record[{name!r}]: expected integer neuron ids in 0..{n - 1}, "
                                f"got {ids!r}", "record")
        if arr.size and (arr.min() < 0 or arr.max() >= n):
            raise ArgumentError(f"record[{name!r}]: neuron ids must be in 0..{n - 1}", "record")


def check_run(network: Any, images: Any, presentation_steps_: Any, mode: Any, record: Any,
              chunk_size: Any) -> tuple[np.ndarray, int | None]:
    """All of ``Emulator.run``'s arguments: ``(images, presentation_steps)`` checked."""
    from .emulator import MODES
    from .inputs import network_images

    choice(mode, "mode", MODES)
    steps = presentation_steps(presentation_steps_)
    positive_int(chunk_size, "chunk_size")
    check_record(network, record)
    return network_images(network, images), steps
