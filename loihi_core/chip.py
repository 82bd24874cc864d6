"""The mapped, discretized chip: what :func:`loihi_core.mapping.map_to_chip` produces.

One :class:`Block` is the part of a neuron layer that goes on one Loihi core (a tile of the
layer's ``block_shape``). Its compartments carry integer parameters (``discretize.py``), its
:class:`BlockSynapse` objects carry integer weights and the axon routing that tells which
presynaptic neuron spikes reach which compartments. The emulator, the exports and the app's
core heatmap all read this structure; nothing here depends on Keras or nengo.

Conventions follow nengo-loihi 1.1.0 (see ``shared/spec/loihi-semantics.md``):

* compartment ``k`` of a block is neuron ``neuron_ids[k]`` of its layer (row-major over the
  block's sub-box of the layer shape);
* a presynaptic neuron ``n`` reaches a synapse through axon ``pre_axon[n]`` (``-1``: it does
  not reach this block) carrying atom ``pre_atom[n]`` (the channel, for conv synapses);
* axon ``a`` adds row ``atom`` of weight set ``axon_weight_set[a]`` at compartments
  ``axon_base[a] + indices[weight_set][atom, :]`` of the block.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Per-core limits of Loihi 1 (nengo-loihi ``block.py``).
MAX_COMPARTMENTS = 1024
MAX_IN_AXONS = 4096
MAX_OUT_AXONS = 4096
MAX_SYNAPSE_BITS = 1_048_576
CORES_PER_CHIP = 128
MAX_CHIPS = 32

#: Resource names as they appear in utilization dicts, the CLI JSON and the app heatmap.
RESOURCES = ("compartments", "in_axons", "out_axons", "synapse_bits")
RESOURCE_LIMITS = {
    "compartments": MAX_COMPARTMENTS,
    "in_axons": MAX_IN_AXONS,
    "out_axons": MAX_OUT_AXONS,
    "synapse_bits": MAX_SYNAPSE_BITS,
}


@dataclass
class Compartments:
    """Discretized compartment parameters of one block (all integer, chip units).

    Arrays have one entry per compartment; ``vmin``/``vmax`` are shared by the block.
    ``info`` keeps the float scales chosen by discretization (``w_max``, ``w_exp``,
    ``v_scale``, ``b_scale``, ``w_scale``) for display and exports.
    """

    vth: np.ndarray
    bias: np.ndarray
    decay_u: np.ndarray
    decay_v: np.ndarray
    refract_delay: np.ndarray
    vmin: int
    vmax: int
    info: dict = field(default_factory=dict)


@dataclass
class BlockSynapse:
    """Input synapse of a block from one presynaptic population.

    Attributes
    ----------
    pre
        Name of the presynaptic neuron layer (on or off chip).
    kind
        ``"dense"`` (one axon per presynaptic neuron, compressed, no index bits) or
        ``"conv"`` (population synapse: one axon per input pixel, channel = atom, weight
        sets shared between axons).
    pre_axon, pre_atom
        ``int32`` arrays of length ``n_pre`` (routing of presynaptic neurons; ``-1`` = none).
    axon_base
        ``int32`` per axon: compartment base offset (``-1`` = axon unused).
    axon_weight_set
        ``int32`` per axon: index into ``weights``/``indices``.
    weights_float
        Per weight set, float32 ``(n_atoms, k)``: the weights before quantization.
    weights
        Per weight set, ``int32 (n_atoms, k)``: what the emulator adds to the input
        accumulator per spike (``Wgt * 2**(6 + weight_exp)``). Filled by discretization.
    indices
        Per weight set, ``int32 (n_atoms, k)``: block-local compartment offsets (add the base).
    weight_exp, idx_bits, bits
        Synapse format: weight exponent, real index bits, synapse memory bits.
    pop_type
        ``0`` for discrete (dense), ``32`` for population (conv) synapses.
    """

    pre: str
    kind: str
    pre_axon: np.ndarray
    pre_atom: np.ndarray
    axon_base: np.ndarray
    axon_weight_set: np.ndarray
    weights_float: list[np.ndarray]
    indices: list[np.ndarray]
    weights: list[np.ndarray] = field(default_factory=list)
    weight_exp: int = 0
    idx_bits: int = 0
    bits: int = 0
    pop_type: int = 0
    _rows: tuple | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def n_axons(self) -> int:
        return int(len(self.axon_base))

    def weight_rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The integer weight sets as flat rows: ``(atoms, width, indices, weights)``.

        ``atoms[s]``/``width[s]`` are the shape of set ``s``; ``indices`` and ``weights``
        (int64) concatenate the sets row by row. Computed once: a discretized synapse is
        never modified (the mapper shares unchanged layers' synapses between mappings),
        so the emulator's compile step reuses it.
        """
        if self._rows is None:
            if len(self.weights) != len(self.indices):
                raise ValueError("the synapse is not discretized")
            n = len(self.weights)
            atoms = np.fromiter((w.shape[0] for w in self.weights), np.int64, n)
            width = np.fromiter((w.shape[1] for w in self.weights), np.int64, n)
            idx = (np.concatenate([i.ravel() for i in self.indices]).astype(np.int64)
                   if n else np.zeros(0, np.int64))
            w = (np.concatenate([w.ravel() for w in self.weights]).astype(np.int64)
                 if n else np.zeros(0, np.int64))
            self._rows = (atoms, width, idx, w)
        return self._rows


@dataclass
class Block:
    """The part of one layer that goes on one core.

    Attributes
    ----------
    layer
        Name of the neuron layer.
    index
        Index of this block within its layer (block-origin order, last dimension fastest).
    origin, extent
        The sub-box of the layer shape: ``layer_shape[d]`` from ``origin[d]`` to
        ``origin[d] + extent[d]``.
    neuron_ids
        ``int64`` layer-neuron index of each compartment, in compartment order.
    compartments
        Discretized parameters (``None`` before discretization).
    synapses
        Input synapses of the block.
    out_axons
        Output axon slots used by the block (routing to all target synapses).
    core, chip
        Allocation (``-1`` until allocated).
    """

    layer: str
    index: int
    origin: tuple[int, ...]
    extent: tuple[int, ...]
    neuron_ids: np.ndarray
    compartments: Compartments | None = None
    synapses: list[BlockSynapse] = field(default_factory=list)
    out_axons: int = 0
    core: int = -1
    chip: int = -1
    float_compartments: Any = None

    @property
    def n_compartments(self) -> int:
        return int(len(self.neuron_ids))

    @property
    def in_axons(self) -> int:
        return int(sum(s.n_axons for s in self.synapses))

    @property
    def synapse_bits(self) -> int:
        return int(sum(s.bits for s in self.synapses))

    def utilization(self) -> dict[str, tuple[int, int]]:
        """``{resource: (used, max)}`` for the four per-core resources."""
        used = {
            "compartments": self.n_compartments,
            "in_axons": self.in_axons,
            "out_axons": self.out_axons,
            "synapse_bits": self.synapse_bits,
        }
        return {k: (used[k], RESOURCE_LIMITS[k]) for k in RESOURCES}

    def overflows(self) -> list[str]:
        """Names of the resources this block uses beyond the per-core limit."""
        return [k for k, (used, limit) in self.utilization().items() if used > limit]

    def to_dict(self) -> dict:
        """The block's row of ``loihi-studio map --json`` (and of the app's heatmap)."""
        return {"layer": self.layer, "index": self.index, "origin": list(self.origin),
                "extent": list(self.extent), "compartments": self.n_compartments,
                "in_axons": self.in_axons, "out_axons": self.out_axons,
                "synapse_bits": self.synapse_bits, "core": self.core, "chip": self.chip,
                "over_limit": self.overflows()}


@dataclass
class ChipModel:
    """All blocks of a network, in build order (layer order, then block index).

    Attributes
    ----------
    network
        The :class:`~loihi_core.network.SpikingNetwork` this was mapped from.
    blocks
        Every on-chip block, in the order the emulator concatenates compartments.
    errors
        Human-readable over-limit messages (also raised as ``MappingError`` unless the
        caller asked for a report).
    """

    network: object
    blocks: list[Block]
    errors: list[str] = field(default_factory=list)
    block_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    host_layers: list[str] = field(default_factory=list)
    n_chips_available: int = MAX_CHIPS

    @property
    def n_cores(self) -> int:
        return len(self.blocks)

    @property
    def n_chips(self) -> int:
        return (max((b.chip for b in self.blocks), default=-1) + 1) if self.blocks else 0

    def blocks_of(self, layer: str) -> list[Block]:
        return [b for b in self.blocks if b.layer == layer]

    @property
    def chip_layers(self) -> list[str]:
        """Names of the on-chip layers, in network order."""
        return list(dict.fromkeys(b.layer for b in self.blocks))

    def utilization_matrix(self) -> "np.ndarray":
        """``(n_cores, 4)`` fraction of each resource used per core (the heatmap data)."""
        return np.array([[b.utilization()[r][0] / RESOURCE_LIMITS[r] for r in RESOURCES]
                         for b in self.blocks], dtype=np.float64).reshape(-1, len(RESOURCES))

    def summary(self) -> dict:
        """Totals per layer and per resource (JSON-able)."""
        layers = {}
        for name in self.chip_layers:
            bl = self.blocks_of(name)
            layers[name] = {
                "block_shape": list(self.block_shapes.get(name, ())), "n_blocks": len(bl),
                **{r: max(b.utilization()[r][0] for b in bl) for r in RESOURCES}}
        return {"n_cores": self.n_cores, "n_chips": self.n_chips, "layers": layers,
                "peak_utilization": {r: float(self.utilization_matrix()[:, i].max(initial=0.0))
                                     for i, r in enumerate(RESOURCES)}}

    def to_dict(self) -> dict:
        """The document ``loihi-studio map --json`` prints."""
        return {"blocks": [b.to_dict() for b in self.blocks], "n_cores": self.n_cores,
                "n_chips": self.n_chips, "block_shapes": {k: list(v) for k, v in self.block_shapes.items()},
                "host_layers": list(self.host_layers), "limits": dict(RESOURCE_LIMITS),
                "errors": list(self.errors)}
