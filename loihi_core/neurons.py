"""Neuron models: the Loihi neurons and their ideal counterparts.

STUB: the public names and signatures below are fixed (other modules use them); the
bodies are being written. See ``shared/spec/loihi-semantics.md`` §1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np


@dataclass(frozen=True)
class NeuronType:
    """Base class. Subclasses are frozen dataclasses (hashable, comparable)."""

    amplitude: float = 1.0

    #: name used in the tuned config (``"LoihiSpikingRectifiedLinear"`` ...)
    name: ClassVar[str] = "NeuronType"
    #: whether the neuron emits spikes (False for rate neurons)
    spiking: ClassVar[bool] = False
    #: whether the neuron can run on the chip
    on_chip_capable: ClassVar[bool] = False

    def rates(self, x, gain, bias, dt: float = 0.001) -> np.ndarray:
        raise NotImplementedError

    def chip_rates(self, x, gain, bias, dt: float = 0.001) -> np.ndarray:
        raise NotImplementedError


@dataclass(frozen=True)
class RectifiedLinear(NeuronType):
    name: ClassVar[str] = "RectifiedLinear"


@dataclass(frozen=True)
class SpikingRectifiedLinear(NeuronType):
    name: ClassVar[str] = "SpikingRectifiedLinear"
    spiking: ClassVar[bool] = True


@dataclass(frozen=True)
class LIFRate(NeuronType):
    tau_rc: float = 0.02
    tau_ref: float = 0.002
    name: ClassVar[str] = "LIFRate"


@dataclass(frozen=True)
class LIF(LIFRate):
    min_voltage: float = 0.0
    name: ClassVar[str] = "LIF"
    spiking: ClassVar[bool] = True


@dataclass(frozen=True)
class LoihiSpikingRectifiedLinear(SpikingRectifiedLinear):
    name: ClassVar[str] = "LoihiSpikingRectifiedLinear"
    on_chip_capable: ClassVar[bool] = True


@dataclass(frozen=True)
class LoihiLIF(LIF):
    name: ClassVar[str] = "LoihiLIF"
    on_chip_capable: ClassVar[bool] = True


NEURON_TYPES = {cls.name: cls for cls in (RectifiedLinear, SpikingRectifiedLinear, LIFRate, LIF,
                                          LoihiSpikingRectifiedLinear, LoihiLIF)}
