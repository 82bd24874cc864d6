"""Core mapping: cut each on-chip layer into blocks (one per core), build their synapses
and axons, count the four per-core resources exactly, discretize, and allocate cores.

The rules follow NengoLoihi 1.1.0 (``shared/spec/loihi-semantics.md`` §4–§5), so that the
utilization numbers, and the integer blocks the emulator runs, equal the reference:

* a layer's ``block_shape`` is a tile of its output shape; tiles are taken in C order
  (last dimension fastest), edge tiles are smaller, compartments inside a tile are in
  row-major order of the tile. A layer that fits in one tile keeps its unsplit synapse;
* a dense connection is a *discrete* synapse: one axon per presynaptic neuron, one weight
  row per axon (no index bits);
* a conv connection is a *population* synapse: one axon per input pixel, the channel rides
  along as the atom, and axons with the same taps and index pattern share one weight set
  (never expanded to a dense matrix). Compartment bases must be < 256, so big blocks
  duplicate weight sets for every 256-multiple;
* after splitting, identical weight rows of a block (same float32 bytes and indices) are
  stored once, as NengoLoihi does.

:func:`map_to_chip` returns a :class:`~loihi_core.chip.ChipModel`; :func:`auto_block_shapes`
finds, for every layer, the tile that fits with the fewest cores.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import discretize as dz
from .chip import (CORES_PER_CHIP, MAX_CHIPS, MAX_SYNAPSE_BITS, RESOURCE_LIMITS, RESOURCES, Block, BlockSynapse,
                   ChipModel, Compartments)
from .errors import ConfigError, ConversionError, DiscretizationError, MappingError
from .memory import ByteLRU, budget_bytes
from .network import Connection, NeuronLayer, SpikingNetwork, full_kernel
from .neurons import LIFRate, RectifiedLinear

#: Hardware base field of population synapses: compartment bases must be below this.
MAX_BASE = 256


# ---------------------------------------------------------------------------------------
# tiles
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Tile:
    """A sub-box of a layer's output: ``origin[d] .. origin[d] + extent[d]``."""

    origin: tuple[int, ...]
    extent: tuple[int, ...]

    @property
    def size(self) -> int:
        return int(np.prod(self.extent))


def check_block_shape(layer_name: str, shape: tuple[int, ...], block_shape: Any) -> tuple[int, ...]:
    """Validate ``block_shape`` for a layer of ``shape``; returns it as a tuple.

    Raises :class:`ConfigError` naming ``layers.<name>.block_shape``.
    """
    path = f"layers.{layer_name}.block_shape"
    try:
        bs = tuple(block_shape)
    except TypeError:
        raise ConfigError([(path, f"expected a list of positive ints, got {block_shape!r}")]) from None
    if (len(bs) != len(shape) or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                         and v > 0 for v in bs)):
        raise ConfigError([(path, f"expected {len(shape)} positive ints for a {tuple(shape)} layer, "
                                  f"got {list(bs)}")])
    return tuple(int(v) for v in bs)


def tile_layer(shape: tuple[int, ...], block_shape: tuple[int, ...]) -> list[Tile]:
    """Cut ``shape`` into tiles of ``block_shape`` (C order; edge tiles are smaller)."""
    ranges = [range(0, n, s) for n, s in zip(shape, block_shape)]
    return [Tile(tuple(origin), tuple(min(s, n - o) for o, s, n in zip(origin, block_shape, shape)))
            for origin in itertools.product(*ranges)]


def tile_neuron_ids(shape: tuple[int, ...], tile: Tile) -> np.ndarray:
    """Layer-neuron ids of a tile's compartments, in row-major order of the tile."""
    full = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
    return full[tuple(slice(o, o + e) for o, e in zip(tile.origin, tile.extent))].ravel()


def n_tiles(shape: tuple[int, ...], block_shape: tuple[int, ...]) -> int:
    return int(np.prod([-(-n // s) for n, s in zip(shape, block_shape)]))


# ---------------------------------------------------------------------------------------
# connection geometry
# ---------------------------------------------------------------------------------------

class ConvGeometry:
    """Which outputs each input pixel of a conv reaches (per row and per column).

    For input row ``i``, the strided output rows it feeds are ``row_lo[i] .. row_hi[i]``
    (empty when ``lo > hi``), through kernel tap ``a = i + pad_r - y * stride_r``.
    """

    def __init__(self, conn: Connection):
        self.H, self.W, self.C = conn.pre_shape
        self.OH, self.OW, self.F = conn.post_shape
        self.kr, self.kc = conn.weights.shape[:2]
        self.sr, self.sc = conn.strides
        self.pad_r, self.pad_c = conn.padding_amounts()
        self.groups = int(getattr(conn, "groups", 1))
        self.row_lo, self.row_hi = self._ranges(self.H, self.OH, self.kr, self.sr, self.pad_r)
        self.col_lo, self.col_hi = self._ranges(self.W, self.OW, self.kc, self.sc, self.pad_c)

    @staticmethod
    def _ranges(n_in, n_out, k, s, pad):
        i = np.arange(n_in)
        lo = np.maximum(i + pad - k + 1, 0)
        hi = np.minimum(i + pad, (n_out - 1) * s)
        return -(-lo // s), np.floor_divide(hi, s)

    @property
    def n_pixels(self) -> int:
        return self.H * self.W

    def atoms(self, f0: int, f1: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The input channels (atoms) that reach output channels ``f0 .. f1 - 1``, and per
        atom the tile-relative output channels it reaches, padded to one width.

        Returns ``(atoms, cols, valid)``: ``cols[a]`` are ``f - f0`` for the outputs of
        atom ``a``'s group in the tile, ``valid`` marks the real ones (a padded entry
        repeats a real column with weight 0: a grouped conv whose tile cuts a group
        unevenly stays rectangular). Without groups every channel reaches every output.
        """
        if self.groups == 1:
            return (np.arange(self.C), np.broadcast_to(np.arange(f1 - f0), (self.C, f1 - f0)),
                    np.ones((self.C, f1 - f0), bool))
        cg, fg = self.C // self.groups, self.F // self.groups
        g0, g1 = f0 // fg, (f1 - 1) // fg
        atoms = np.arange(g0 * cg, (g1 + 1) * cg)
        group = atoms // cg
        lo = np.maximum(group * fg, f0) - f0
        hi = np.minimum((group + 1) * fg, f1) - f0
        width = int((hi - lo).max())
        j = np.arange(width)[None, :]
        valid = j < (hi - lo)[:, None]
        cols = np.where(valid, lo[:, None] + j, lo[:, None])
        return atoms, cols, valid


def _tile_ranges(tile: Tile, n_dims: int) -> tuple[tuple[int, int], ...]:
    return tuple((tile.origin[d], tile.origin[d] + tile.extent[d]) for d in range(n_dims))


@dataclass
class ConvAxons:
    """The pixel axons of one conv block (see :func:`conv_block_axons`).

    ``keys`` is ``(n_axons, 5)``: per axon the first kernel row/col tap ``a0``/``b0``, the
    numbers of output rows/cols reached ``nr``/``nc`` and the index offset ``q`` (a
    multiple of 256). Axons with equal keys have identical weights and indices. ``used``
    is False for pixels that reach no compartment (only in an unsplit layer).
    """

    pixels: np.ndarray
    keys: np.ndarray
    bases: np.ndarray
    used: np.ndarray

    @property
    def n_axons(self) -> int:
        return int(self.pixels.size)


def conv_block_axons(geom: ConvGeometry, tile: Tile, whole: bool = False) -> ConvAxons:
    """The pixel axons of one conv block, with each axon's weight-set key and base.

    Axons are in pixel order. Without ``whole`` only pixels that reach the block are
    axons; with ``whole`` (an unsplit layer) every pixel is one, unused ones with base
    ``-1`` (NengoLoihi counts them as input axons of an unsplit synapse).
    """
    (r0, r1), (c0, c1), (f0, f1) = _tile_ranges(tile, 3)
    ext_c, ext_f = c1 - c0, f1 - f0
    ylo = np.maximum(geom.row_lo, r0)
    yhi = np.minimum(geom.row_hi, r1 - 1)
    xlo = np.maximum(geom.col_lo, c0)
    xhi = np.minimum(geom.col_hi, c1 - 1)
    row_ok, col_ok = ylo <= yhi, xlo <= xhi
    rows = np.arange(geom.H) if whole else np.nonzero(row_ok)[0]
    cols = np.arange(geom.W) if whole else np.nonzero(col_ok)[0]
    ii, jj = np.meshgrid(rows, cols, indexing="ij")
    ii, jj = ii.ravel(), jj.ravel()
    used = row_ok[ii] & col_ok[jj]
    first = ((ylo[ii] - r0) * ext_c + (xlo[jj] - c0)) * ext_f
    bases = first % MAX_BASE
    keys = np.stack([ii + geom.pad_r - ylo[ii] * geom.sr, yhi[ii] - ylo[ii] + 1,
                     jj + geom.pad_c - xlo[jj] * geom.sc, xhi[jj] - xlo[jj] + 1,
                     first - bases], axis=1).astype(np.int64)
    bases = np.where(used, bases, -1)
    keys[~used] = -1
    return ConvAxons(pixels=ii * geom.W + jj, keys=keys, bases=bases.astype(np.int32), used=used)


def unique_keys(keys: np.ndarray, used: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct used keys in first-appearance order, and each axon's key number (-1 unused)."""
    inverse = np.full(len(keys), -1, np.int64)
    if not used.any():
        return keys[:0], inverse
    rows = keys[used]
    # the key columns are small non-negative ints: one mixed-radix int64 per row makes
    # np.unique a 1-D sort (np.unique(axis=0) sorts structured rows, ~10x slower)
    radix = rows.max(axis=0) + 1
    if rows.min() >= 0 and float(np.prod(radix.astype(np.float64))) < 2.0**62:
        weights = np.concatenate([np.cumprod(radix[::-1])[::-1][1:], [1]]).astype(np.int64)
        first, inverse[used] = first_appearance(rows @ weights)
    else:  # pragma: no cover - keys beyond any chip's sizes
        first, inverse[used] = first_appearance(rows, axis=0)
    return rows[first], inverse


def first_appearance(values: np.ndarray, axis: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Number the distinct entries of ``values`` in order of first appearance.

    Returns ``(first, number)``: the index of each distinct entry's first occurrence (in
    that order) and, per entry, the number of its distinct value. One sort instead of a
    Python loop over a dict (NengoLoihi numbers weight sets this way).
    """
    _, first, inv = np.unique(values, axis=axis, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return first[order], rank[inv.ravel()]


# ---------------------------------------------------------------------------------------
# float weights and compartments
# ---------------------------------------------------------------------------------------

def loihi_weights(conn: Connection, pre: NeuronLayer, post: NeuronLayer, dt: float) -> np.ndarray:
    """The connection's weights in chip units, float32 as NengoLoihi stores them.

    A spike of ``pre`` is worth ``amplitude_pre / dt`` and the post neurons multiply their
    input by ``gain_post``: ``W / dt * amplitude_pre * gain_post``.
    """
    if conn.kind == "sparse":
        m = conn.weights.tocsr().astype(np.float64)
        m.data = ((m.data * (1.0 / dt)) * pre.amplitude * post.gain).astype(np.float32)
        return m.astype(np.float32)
    w = np.asarray(conn.weights, np.float64)
    if conn.kind == "conv":
        # grouped kernels run as plain ones (zeros between the groups; exact)
        w = full_kernel(w, conn.groups) / dt
    else:
        w = w * (1.0 / dt)
    return ((w * pre.amplitude) * post.gain).astype(np.float32)


def float_compartments(layer: NeuronLayer, synapse_tau: float | None, dt: float,
                       ids: np.ndarray) -> dz.FloatCompartments:
    """Float compartment parameters of the neurons ``ids`` of an on-chip layer."""
    n = len(ids)
    neuron = layer.neuron
    decay_u = dz.decay_from_tau(synapse_tau, dt)
    if not decay_u > 0.5 / 4096:
        raise DiscretizationError(
            f"layer {layer.name!r}: synapse tau {synapse_tau} s is too long for Loihi's 12-bit "
            f"current decay (needs tau < {-dt / math.log1p(-0.5 / 4096):.3g} s); use a shorter "
            f"synapse")
    if isinstance(neuron, LIFRate):
        decay_v = np.float32(-np.expm1(-dt / neuron.tau_rc))
        if not decay_v > 0.5 / 4096:
            raise DiscretizationError(
                f"layer {layer.name!r}: tau_rc {neuron.tau_rc} s is too long for Loihi's 12-bit "
                f"voltage decay; use a shorter tau_rc")
        vth, scale_v = np.float32(1.0), True
        refract = int(round(neuron.tau_ref / dt)) + 1
        vmin = float(getattr(neuron, "min_voltage", 0.0))
    elif isinstance(neuron, RectifiedLinear):
        decay_v, vth, scale_v, refract, vmin = np.float32(0.0), np.float32(1.0 / dt), False, 1, 0.0
    else:  # pragma: no cover - every neuron type is one of the two families
        raise ConversionError(f"layer {layer.name!r}: neuron type {neuron.name} cannot run on "
                              f"Loihi", layer=layer.name)
    bias = np.asarray(layer.bias, np.float64)[ids].astype(np.float32)
    return dz.FloatCompartments(
        vth=np.full(n, vth, np.float32), bias=bias, decay_u=np.full(n, decay_u, np.float32),
        decay_v=np.full(n, decay_v, np.float32), refract_delay=np.full(n, refract, np.int64),
        scale_u=True, scale_v=scale_v, vmin=vmin, vmax=math.inf)


# ---------------------------------------------------------------------------------------
# synapses of one block
# ---------------------------------------------------------------------------------------

def _finish_synapse(syn: BlockSynapse, compressed: bool, max_index: int | None = None) -> BlockSynapse:
    """Set the synapse's index bits and memory bits (weight sets of equal shape share
    their indices in dense synapses, so ``max_index`` may be given)."""
    if max_index is None:
        max_index = max((int(i.max()) for i in syn.indices if i.size), default=0)
    syn.idx_bits = dz.idx_bits_field(max_index)
    bpw = dz.WEIGHT_BITS + (0 if compressed else dz.real_idx_bits(syn.idx_bits))
    sizes = np.fromiter((w.size for w in syn.weights_float), np.int64, len(syn.weights_float))
    syn.bits = int(dz.weight_set_bits(sizes, bpw).sum())
    return syn


def dense_block_synapse(pre: str, weights: np.ndarray, ids: np.ndarray, whole: bool) -> BlockSynapse:
    """Discrete synapse into the block ``ids``: one weight row per presynaptic neuron."""
    n_pre = weights.shape[0]
    if whole:
        sets = [weights[a][None, :] for a in range(n_pre)]
        indices = [np.arange(weights.shape[1], dtype=np.int32)[None, :]] * n_pre
        ws_map = np.arange(n_pre, dtype=np.int32)
    else:
        rows = np.ascontiguousarray(weights[:, ids])
        # identical rows (by their float32 bytes) share one set, numbered in order of
        # first appearance: one sort of the rows as opaque byte strings
        as_bytes = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1])))[:, 0]
        first, number = first_appearance(as_bytes)
        ws_map = number.astype(np.int32)
        sets = [rows[a][None, :] for a in first]
        indices = [np.arange(len(ids), dtype=np.int32)[None, :]] * len(sets)
    syn = BlockSynapse(pre=pre, kind="dense", pre_axon=np.arange(n_pre, dtype=np.int32),
                       pre_atom=np.zeros(n_pre, np.int32), axon_base=np.zeros(n_pre, np.int32),
                       axon_weight_set=ws_map, weights_float=sets, indices=indices, pop_type=0)
    return _finish_synapse(syn, compressed=True, max_index=max(len(ids) - 1, 0) if not whole
                           else weights.shape[1] - 1)


def distinct_weight_sets(weights: list[np.ndarray], indices: list[np.ndarray]
                         ) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """Weight sets identical in content (weights and indices, by their bytes) stored once,
    numbered in order of first appearance, as NengoLoihi does; returns the distinct sets,
    their indices and the number of each input set."""
    by_bytes: dict[tuple, int] = {}
    sets, set_indices = [], []
    number = np.empty(len(weights), np.int32)
    for k, (w, idx) in enumerate(zip(weights, indices)):
        key = (w.tobytes(), idx.tobytes())
        if key not in by_bytes:
            by_bytes[key] = len(sets)
            sets.append(w)
            set_indices.append(idx)
        number[k] = by_bytes[key]
    return sets, set_indices, number


def sparse_block_synapse(pre: str, weights, ids: np.ndarray) -> BlockSynapse:
    """Discrete synapse of a sparse connection: one axon per presynaptic neuron that
    reaches the block, whose weight row lists only its non-zeros (with their indices)."""
    sub = weights[:, ids].tocsr()
    sub.sort_indices()
    n_pre = sub.shape[0]
    counts = np.diff(sub.indptr)
    reaching = np.nonzero(counts > 0)[0]
    pre_axon = np.full(n_pre, -1, np.int32)
    pre_axon[reaching] = np.arange(reaching.size, dtype=np.int32)
    rows_w = [np.asarray(sub.data[sub.indptr[r]:sub.indptr[r + 1]], np.float32)[None, :]
              for r in reaching]
    rows_i = [np.asarray(sub.indices[sub.indptr[r]:sub.indptr[r + 1]], np.int32)[None, :]
              for r in reaching]
    sets, indices, ws_map = distinct_weight_sets(rows_w, rows_i)
    syn = BlockSynapse(pre=pre, kind="sparse", pre_axon=pre_axon,
                       pre_atom=np.zeros(n_pre, np.int32),
                       axon_base=np.zeros(reaching.size, np.int32), axon_weight_set=ws_map,
                       weights_float=sets, indices=indices, pop_type=0)
    return _finish_synapse(syn, compressed=False, max_index=max(len(ids) - 1, 0))


def conv_weight_sets(kernel: np.ndarray, geom: ConvGeometry, tile: Tile, keys: np.ndarray
                     ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Weights ``(C, nr*nc*F_tile)`` and indices of the weight set of every row of ``keys``.

    Columns run over (output row, output col, channel) of the tile; ``kernel`` is the
    Loihi-scaled float32 kernel ``(kr, kc, C, F)``. Keys with the same numbers of output
    rows/cols give sets of one shape, so each such group is gathered from the kernel
    with one fancy index.
    """
    n_keys = len(keys)
    weights: list[np.ndarray | None] = [None] * n_keys
    indices: list[np.ndarray | None] = [None] * n_keys
    if not n_keys:
        return [], []
    (_, _), (c0, c1), (f0, f1) = _tile_ranges(tile, 3)
    ext_c, ext_f = c1 - c0, f1 - f0
    atoms, cols, valid = geom.atoms(f0, f1)
    grouped = geom.groups != 1
    # (kr, kc, atoms, width): each atom's own output channels of the tile
    sub_kernel = kernel[:, :, atoms[:, None], f0 + cols] if grouped else kernel[:, :, :, f0:f1]
    if grouped:
        sub_kernel = np.where(valid, sub_kernel, 0).astype(kernel.dtype)
    n_atoms, width = cols.shape
    shapes = keys[:, 1] * (keys[:, 3].max() + 1) + keys[:, 3]
    for shape_id in np.unique(shapes):
        members = np.nonzero(shapes == shape_id)[0]
        a0, nr, b0, nc, q = (keys[members, i] for i in range(5))
        nr, nc = int(nr[0]), int(nc[0])
        taps_r = a0[:, None] - geom.sr * np.arange(nr)  # (m, nr)
        taps_c = b0[:, None] - geom.sc * np.arange(nc)  # (m, nc)
        sub = sub_kernel[taps_r[:, :, None], taps_c[:, None, :]]  # (m, nr, nc, atoms, width)
        group_w = np.ascontiguousarray(sub.transpose(0, 3, 1, 2, 4).reshape(len(members), n_atoms, -1))
        base = (np.arange(nr)[:, None, None] * ext_c + np.arange(nc)[None, :, None]) * ext_f
        if grouped:  # per-atom index patterns
            pattern = (base[None] + cols[:, None, None, :]).reshape(n_atoms, -1)
            group_i = np.ascontiguousarray(
                (q[:, None, None] + pattern[None]).astype(np.int32))
        else:
            pattern = (base + np.arange(ext_f)[None, None, :]).ravel()
            idx = (q[:, None] + pattern[None, :]).astype(np.int32)
            group_i = np.ascontiguousarray(np.broadcast_to(idx[:, None, :], group_w.shape))
        for j, k in enumerate(members):
            weights[k] = group_w[j]
            indices[k] = group_i[j]
    return weights, indices  # type: ignore[return-value]


def conv_block_synapse(pre: str, kernel: np.ndarray, geom: ConvGeometry, tile: Tile,
                       whole: bool) -> BlockSynapse:
    """Population synapse into one conv block (see :func:`conv_block_axons`)."""
    axons = conv_block_axons(geom, tile, whole)
    keys, key_of_axon = unique_keys(axons.keys, axons.used)
    key_w, key_i = conv_weight_sets(kernel, geom, tile, keys)
    if whole:  # unsplit layers share sets by tap pattern
        sets, indices = key_w, key_i
        set_of_key = np.arange(len(keys), dtype=np.int32)
    else:  # split blocks by exact content
        sets, indices, set_of_key = distinct_weight_sets(key_w, key_i)
    ws_map = np.where(key_of_axon >= 0, set_of_key[np.maximum(key_of_axon, 0)], -1).astype(np.int32)
    n_pre = geom.n_pixels * geom.C
    pixel_axon = np.full(geom.n_pixels, -1, np.int32)
    pixel_axon[axons.pixels] = np.arange(axons.n_axons, dtype=np.int32)
    neuron = np.arange(n_pre)
    pre_axon = pixel_axon[neuron // geom.C]
    channel = neuron % geom.C
    (_, _), (_, _), (f0, f1) = _tile_ranges(tile, 3)
    atoms = geom.atoms(f0, f1)[0]
    if geom.groups != 1:  # channels of other groups do not reach this block
        pre_axon = np.where((channel >= atoms[0]) & (channel <= atoms[-1]), pre_axon, -1)
    syn = BlockSynapse(pre=pre, kind="conv", pre_axon=pre_axon.astype(np.int32),
                       pre_atom=(channel - atoms[0]).astype(np.int32), axon_base=axons.bases,
                       axon_weight_set=ws_map, weights_float=sets, indices=indices, pop_type=32)
    return _finish_synapse(syn, compressed=False)


# ---------------------------------------------------------------------------------------
# the network's chip layers
# ---------------------------------------------------------------------------------------

def chip_layers(network: SpikingNetwork) -> tuple[list[NeuronLayer], list[NeuronLayer]]:
    """``(host_layers, chip_layers)``, each in the network's topological order.

    Host (off-chip) layers turn the input into spikes: they may read only the input and
    other host layers. Raises :class:`ConversionError` for placements the chip cannot run:
    a host layer fed by an on-chip one, a layer whose neurons cannot run on Loihi, or no
    layer on chip.
    """
    layers = list(network.layers.values())
    host = [layer for layer in layers if not layer.on_chip]
    chip = [layer for layer in layers if layer.on_chip]
    if not chip:
        if len(host) == 1 and not any(c.pre != network.input_name
                                       for c in network.connections_into(host[0].name)):
            raise ConversionError(
                f"no neuron layer is on chip: the network's only neuron layer {host[0].name!r} "
                f"turns the input into spikes on the host; put it on the chip with "
                f"layers.{host[0].name}.on_chip = true (the host then encodes the input as "
                f"NengoLoihi does)", layer=host[0].name)
        raise ConversionError(
            "no neuron layer is on chip; set \"on_chip\": true on the layers after the first")
    on_chip = {layer.name for layer in chip}
    for layer in host:
        for conn in network.connections_into(layer.name):
            if conn.pre in on_chip:
                raise ConversionError(
                    f"layer {layer.name!r} is off chip but reads the on-chip layer {conn.pre!r}; "
                    f"only the layers that turn the input into spikes can run on the host: set "
                    f"layers.{layer.name}.on_chip to true", layer=layer.name)
    for layer in chip:
        if not layer.neuron.on_chip_capable:
            raise ConversionError(
                f"layer {layer.name!r} uses {layer.neuron.name} neurons, which cannot run on "
                f"Loihi; use LoihiSpikingRectifiedLinear or LoihiLIF", layer=layer.name)
        if not network.connections_into(layer.name):
            raise ConversionError(f"layer {layer.name!r} has no incoming connection",
                                  layer=layer.name)
    return host, chip


def compartment_synapse(network: SpikingNetwork, layer: NeuronLayer) -> float | None:
    """The synapse tau of a layer's compartments: Loihi filters the input current of a
    compartment, not of a connection, so connections with different taus into one layer
    share the largest (NengoLoihi does the same; ``verify`` shows the difference)."""
    taus = {c.synapse for c in network.connections_into(layer.name)}
    real = [t for t in taus if t is not None]
    return max(real) if real else None


def lift_tile(tile: Tile) -> Tile:
    """A tile of a 1-D ``(n,)`` or 2-D ``(L, C)`` layer as a tile of its ``(1, [1,] …)``
    image view, for conv synapses."""
    pad = 3 - len(tile.origin)
    return Tile((0,) * pad + tuple(tile.origin), (1,) * pad + tuple(tile.extent))


@dataclass
class _LayerMapping:
    layer: NeuronLayer
    conns: list[Connection]
    block_shape: tuple[int, ...]
    tiles: list[Tile]
    kernels: list[Any]
    geoms: list[ConvGeometry | None]
    synapse: float | None
    cache_key: tuple


def _as_network(network: Any) -> SpikingNetwork:
    from .arguments import as_network

    return as_network(network)


def check_layers_can_fit(network: SpikingNetwork, chip: list[NeuronLayer]) -> None:
    """Refuse, before any weights are materialised, a layer no block shape can fit.

    A dense connection gives every block one input axon per presynaptic neuron, whatever
    the block shape, so a fan-in over :data:`~loihi_core.chip.RESOURCE_LIMITS`
    ``in_axons`` never fits; nor does a layer with more neurons than the board's
    compartments. Without this check, mapping a 20 000 × 20 000 Dense layer built ~12 GB
    of per-block weight copies before the over-limit block was found.
    """
    axon_limit = RESOURCE_LIMITS["in_axons"]
    board = RESOURCE_LIMITS["compartments"] * CORES_PER_CHIP * MAX_CHIPS
    for layer in chip:
        if layer.n_neurons > board:
            raise MappingError(
                f"layer {layer.name!r} has {layer.n_neurons:,} neurons, more than the "
                f"{board:,} compartments of a full {MAX_CHIPS}-chip board; reduce the layer",
                layer=layer.name, resource="compartments", used=layer.n_neurons, limit=board)
        for conn in network.connections_into(layer.name):
            if conn.kind != "dense":
                continue
            fan_in = int(np.asarray(conn.weights.shape)[0])
            if fan_in > axon_limit:
                raise MappingError(
                    f"layer {layer.name!r}: its dense input from {conn.pre!r} has {fan_in:,} "
                    f"neurons, and every block of a dense layer needs one input axon per "
                    f"input neuron (max {axon_limit} per core), so no block shape fits; "
                    f"reduce {conn.pre!r} to at most {axon_limit} neurons or keep "
                    f"{layer.name!r} off chip", layer=layer.name, resource="in_axons",
                    used=fan_in, limit=axon_limit)


def _resolve_block_shapes(network: SpikingNetwork, chip: list[NeuronLayer],
                          block_shapes: Mapping[str, Any] | None, auto: bool) -> dict[str, tuple]:
    requested = {}
    for layer in chip:
        bs = (block_shapes or {}).get(layer.name, layer.block_shape)
        if bs is not None and not auto:
            requested[layer.name] = check_block_shape(layer.name, layer.shape, bs)
    missing = [layer.name for layer in chip if layer.name not in requested]
    if missing:
        found = auto_block_shapes(network, fixed=requested)
        for name in missing:
            requested[name] = found[name]
    return requested


def map_to_chip(network: SpikingNetwork, block_shapes: Mapping[str, Any] | None = None, *,
                auto_block_shapes: bool = False, n_chips: int | None = None,
                raise_on_overflow: bool = True, discretize: bool = True) -> ChipModel:
    """Map the on-chip layers of ``network`` onto Loihi cores.

    Parameters
    ----------
    network
        The converted network (:func:`loihi_core.convert.convert`).
    block_shapes
        Per-layer block shapes overriding the network's (``layer.block_shape``); layers
        with none get the automatic shape (the whole layer when it fits on one core).
    auto_block_shapes
        Ignore every given block shape and choose all of them automatically.
    n_chips
        Board size (1..32 chips); ``None`` uses as many chips as needed (up to 32).
    raise_on_overflow
        Raise :class:`MappingError` for the first block over a per-core limit (default);
        with ``False`` the over-limit blocks are listed in ``ChipModel.errors`` instead
        (what the app's heatmap shows).
    discretize
        Also compute the integer parameters (needed by the emulator and exports).

    Raises
    ------
    MappingError
        Naming the layer, the resource, used vs max, and a block shape that fits. A layer
        that no block shape can fit (dense fan-in over a core's input axons, more neurons
        than the board has compartments) is refused before its weights are built.
    """
    network = _as_network(network)  # also takes a LayerGraph, keras.Model or path
    host, chip = chip_layers(network)
    check_layers_can_fit(network, chip)
    shapes = _resolve_block_shapes(network, chip, block_shapes, auto_block_shapes)
    dt = float(network.dt)
    plans = []
    for layer in chip:
        conns = network.connections_into(layer.name)
        kernels = [loihi_weights(c, network.layers[c.pre], layer, dt) for c in conns]
        geoms = [ConvGeometry(c) if c.kind == "conv" else None for c in conns]
        bs = shapes[layer.name]
        tau = compartment_synapse(network, layer)
        plans.append(_LayerMapping(layer, conns, bs, tile_layer(layer.shape, bs), kernels, geoms,
                                   tau, _LayerCache.key(layer, conns, kernels, bs, dt, tau)))

    blocks: list[Block] = []
    for plan in plans:
        blocks.extend(_layer_blocks(plan, dt))

    _count_out_axons(blocks)
    model = ChipModel(network=network, blocks=blocks, block_shapes=shapes,
                      host_layers=[h.name for h in host])
    _validate(model, raise_on_overflow)
    _allocate(model, n_chips, raise_on_overflow)
    if discretize:
        for plan in plans:
            layer_blocks = model.blocks_of(plan.layer.name)
            if any(b.compartments is None for b in layer_blocks):
                for block in layer_blocks:
                    _discretize_block(block)
                _LAYER_CACHE.put(plan.cache_key, layer_blocks)
    return model


class _LayerCache:
    """The discretized blocks of recently mapped layers, by everything they depend on.

    Mapping is a pure function of a layer's incoming weights (in chip units), its
    compartment parameters and its block shape. The app re-maps after every widget
    change, and most changes leave most layers as they were (a scale change touches the
    layer and the one after it), so those layers' synapses and integer parameters are
    reused instead of rebuilt. Keys hash the exact float32 bytes, so a reused block is
    identical to a rebuilt one; entries are read-only (new :class:`Block` objects share
    them). Bounded by bytes (a :class:`~loihi_core.memory.ByteLRU` named
    ``"mapping.layers"``, default :data:`MAX_CACHED_BYTES`, set with
    ``LOIHI_STUDIO_CACHE_MB``), least recently used layers dropped first, so a server that
    maps hundreds of different models keeps a fixed amount of them.
    """

    def __init__(self, max_bytes: int | None = None):
        self._lru = ByteLRU("mapping.layers", max_bytes)

    @staticmethod
    def key(layer: NeuronLayer, conns: list[Connection], kernels: list, block_shape: tuple,
            dt: float, synapse: float | None) -> tuple:
        """Everything a layer's blocks depend on (the arrays by a hash of their bytes)."""
        digest = hashlib.blake2b(digest_size=16)
        geometry = []
        for conn, kernel in zip(conns, kernels):
            if hasattr(kernel, "indptr"):  # sparse
                for part in (kernel.indptr, kernel.indices, kernel.data):
                    digest.update(np.ascontiguousarray(part).tobytes())
            else:
                digest.update(np.ascontiguousarray(kernel).tobytes())
            geometry.append((conn.pre, conn.kind, tuple(conn.pre_shape), tuple(conn.post_shape),
                             tuple(getattr(conn, "strides", ()) or ()), conn.padding_amounts(),
                             conn.groups, tuple(kernel.shape)))
        digest.update(np.ascontiguousarray(layer.bias, np.float64).tobytes())
        return (layer.name, tuple(layer.shape), block_shape, tuple(geometry),
                repr(layer.neuron.to_config()), synapse, float(dt), digest.hexdigest())

    def get(self, key: tuple) -> list[tuple] | None:
        return self._lru.get(key)

    def put(self, key: tuple, blocks: list[Block]) -> None:
        parts = [(b.synapses, b.float_compartments, b.compartments) for b in blocks]
        self._lru.put(key, parts)

    def clear(self) -> None:
        self._lru.clear()

    @property
    def nbytes(self) -> int:
        """Bytes the cached blocks hold (estimated by :func:`~loihi_core.memory.deep_nbytes`)."""
        return self._lru.nbytes


#: Default budget of the layer cache (bytes); ``LOIHI_STUDIO_CACHE_MB`` overrides it.
MAX_CACHED_BYTES = budget_bytes("mapping.layers")
_LAYER_CACHE = _LayerCache()


def clear_layer_cache() -> None:
    """Forget the layers mapped so far (benchmarks of mapping from scratch use it)."""
    _LAYER_CACHE.clear()


def _layer_blocks(plan: _LayerMapping, dt: float) -> list[Block]:
    """The blocks of one layer: from the cache when an identical layer was mapped before
    (already discretized), else built (and discretized by the caller). A block has one
    synapse per incoming connection."""
    cached = _LAYER_CACHE.get(plan.cache_key)
    whole = len(plan.tiles) == 1
    out = []
    for k, tile in enumerate(plan.tiles):
        ids = tile_neuron_ids(plan.layer.shape, tile)
        if cached is not None:
            synapses, float_comp, comp = cached[k]
            synapses = list(synapses)
        else:
            synapses = [block_synapse(conn, kernel, geom, tile, ids, whole)
                        for conn, kernel, geom in zip(plan.conns, plan.kernels, plan.geoms)]
            float_comp = float_compartments(plan.layer, plan.synapse, dt, ids)
            comp = None
        out.append(Block(layer=plan.layer.name, index=k, origin=tile.origin, extent=tile.extent,
                         neuron_ids=ids, synapses=synapses, compartments=comp,
                         float_compartments=float_comp))
    return out


def block_synapse(conn: Connection, kernel, geom: ConvGeometry | None, tile: Tile,
                  ids: np.ndarray, whole: bool) -> BlockSynapse:
    """The synapse of one block for one incoming connection (by the connection's kind)."""
    if geom is not None:
        return conv_block_synapse(conn.pre, kernel, geom, lift_tile(tile), whole)
    if conn.kind == "sparse":
        return sparse_block_synapse(conn.pre, kernel, ids)
    return dense_block_synapse(conn.pre, kernel, ids, whole)


def _count_out_axons(blocks: list[Block]) -> None:
    """Output axon slots of every block: distinct target axons per target synapse
    (pop32 population synapses cost two slots per axon)."""
    by_layer: dict[str, list[Block]] = {}
    for b in blocks:
        by_layer.setdefault(b.layer, []).append(b)
    for b in blocks:
        b.out_axons = 0
    for target in blocks:
        for syn in target.synapses:
            seen = np.zeros(syn.n_axons + 1, bool)
            for src in by_layer.get(syn.pre, []):
                # distinct axons of the source block: a mark per axon (no sort); -1 → last
                seen[:] = False
                seen[syn.pre_axon[src.neuron_ids]] = True
                n = int(seen[:-1].sum())
                src.out_axons += n * (2 if syn.pop_type == 32 else 1)


def _discretize_block(block: Block) -> None:
    label = f"layer {block.layer!r} block {block.index}"
    all_sets = [w for s in block.synapses for w in s.weights_float]
    disc = dz.discretize_compartments(block.float_compartments, all_sets, label)
    for syn in block.synapses:
        syn.weights, syn.weight_exp = dz.discretize_weight_sets(syn.weights_float, disc)
    block.compartments = Compartments(
        vth=disc.vth, bias=disc.bias, decay_u=disc.decay_u, decay_v=disc.decay_v,
        refract_delay=disc.refract_delay, vmin=disc.vmin, vmax=disc.vmax,
        info={"w_max": disc.w_max, "w_exp": disc.w_exp, "v_scale": disc.v_scale,
              "b_scale": disc.b_scale, "w_scale": disc.w_scale})


# ---------------------------------------------------------------------------------------
# limits, allocation
# ---------------------------------------------------------------------------------------

_RESOURCE_WORDS = {"compartments": "compartments", "in_axons": "input axons",
                   "out_axons": "output axons", "synapse_bits": "synapse bits"}


def _validate(model: ChipModel, raise_on_overflow: bool) -> None:
    model.errors = []
    reported = set()
    for block in model.blocks:
        if any(syn.idx_bits < 0 for syn in block.synapses) and (block.layer, "index") not in reported:
            reported.add((block.layer, "index"))
            span = _index_span(block)
            msg = (f"layer {block.layer!r} block {block.index}: synapse indices need more than 12 "
                   f"bits (the block's synapses address {span} compartments, max "
                   f"{1 << dz.INDEX_BITS_MAP[-1]}); use a smaller block_shape")
            model.errors.append(msg)
            if raise_on_overflow:
                raise MappingError(msg, layer=block.layer, resource="synapse_bits",
                                   used=span, limit=1 << dz.INDEX_BITS_MAP[-1],
                                   suggestion=_suggestion(model.network, block.layer,
                                                          model.block_shapes))
        for resource in block.overflows():
            used, limit = block.utilization()[resource]
            key = (block.layer, resource)
            if key in reported:
                continue
            reported.add(key)
            suggestion = _suggestion(model.network, block.layer, model.block_shapes)
            hint = (f"; try block_shape {list(suggestion)} (or use automatic block shapes)"
                    if suggestion else "; no block shape of this layer fits: reduce the layer")
            msg = (f"layer {block.layer!r} block {block.index} of block_shape "
                   f"{list(model.block_shapes[block.layer])}: {_RESOURCE_WORDS[resource]} "
                   f"{used} exceed the per-core max {limit}{hint}")
            model.errors.append(msg)
            if raise_on_overflow:
                raise MappingError(msg, layer=block.layer, resource=resource, used=used,
                                   limit=limit, suggestion=suggestion)


def _index_span(block: Block) -> int:
    """Compartments the block's synapse indices address (largest index + 1)."""
    return max((int(i.max()) + 1 for s in block.synapses for i in s.indices if i.size),
               default=0)


def _suggestion(network: SpikingNetwork, layer: str, shapes: Mapping[str, tuple]) -> tuple | None:
    fixed = {k: v for k, v in shapes.items() if k != layer}
    try:
        return auto_block_shapes(network, fixed=fixed, only=[layer])[layer]
    except MappingError:
        return None


def _allocate(model: ChipModel, n_chips: int | None, raise_on_overflow: bool) -> None:
    """One block per core, cores filled chip by chip (128 cores a chip)."""
    limit = MAX_CHIPS if n_chips is None else int(n_chips)
    if not 1 <= limit <= MAX_CHIPS:
        raise ConfigError([("n_chips", f"expected a board size of 1 to {MAX_CHIPS} chips, got {n_chips}")])
    for i, block in enumerate(model.blocks):
        block.chip, block.core = divmod(i, CORES_PER_CHIP)
    needed = -(-len(model.blocks) // CORES_PER_CHIP)
    model.n_chips_available = limit
    if needed > limit:
        msg = (f"the network needs {len(model.blocks)} cores = {needed} chips, but the board has "
               f"{limit} chip{'s' if limit > 1 else ''} ({limit * CORES_PER_CHIP} cores): use "
               f"larger block shapes or a bigger board (n_chips)")
        model.errors.append(msg)
        if raise_on_overflow:
            raise MappingError(msg, resource="cores", used=len(model.blocks),
                               limit=limit * CORES_PER_CHIP)


# ---------------------------------------------------------------------------------------
# automatic block shapes
# ---------------------------------------------------------------------------------------

def _candidate_sizes(n: int) -> list[int]:
    """Tile sizes along an axis of ``n`` that give distinct tilings (largest first)."""
    return sorted({-(-n // k) for k in range(1, n + 1)}, reverse=True)


class _ConnCounter:
    """Exact-or-conservative input resources of one incoming connection for a tile.

    In-axons are exact; synapse bits of a conv count weight sets by tap pattern, an upper
    bound of the exact count (content-identical sets are merged on the chip).
    """

    def __init__(self, conn: Connection, layer: NeuronLayer):
        self.layer = layer
        self.conn = conn
        self.geom = ConvGeometry(conn) if conn.kind == "conv" else None
        self.n_pre = int(np.prod(conn.pre_shape))
        self.sparse = conn.weights.tocsr() if conn.kind == "sparse" else None

    def in_usage(self, tile: Tile, whole: bool) -> tuple[int, int]:
        """``(in_axons, synapse_bits)`` of one block."""
        if self.sparse is not None:
            sub = self.sparse[:, tile_neuron_ids(self.layer.shape, tile)]
            counts = np.diff(sub.tocsr().indptr)
            counts = counts[counts > 0]
            bpw = dz.WEIGHT_BITS + dz.real_idx_bits(dz.idx_bits_field(max(tile.size - 1, 0)))
            return int(counts.size), int(dz.weight_set_bits(counts, bpw).sum())
        if self.geom is None:
            return self.n_pre, self.n_pre * dz.weight_set_bits(tile.size, dz.WEIGHT_BITS)
        g = self.geom
        tile = lift_tile(tile)
        axons = conv_block_axons(g, tile, whole)
        keys, _ = unique_keys(axons.keys, axons.used)
        ext_c, ext_f = tile.extent[1], tile.extent[2]
        if len(keys) == 0:
            return axons.n_axons, 0
        a0, nr, b0, nc, q = keys.T
        atoms, cols, _ = g.atoms(tile.origin[2], tile.origin[2] + ext_f)
        sizes = atoms.size * nr * nc * cols.shape[1]
        max_index = int((q + ((nr - 1) * ext_c + nc - 1) * ext_f + ext_f - 1).max())
        field = dz.idx_bits_field(max_index)
        bits = int(dz.weight_set_bits(sizes, dz.WEIGHT_BITS + dz.real_idx_bits(field)).sum())
        if field < 0:
            bits = RESOURCE_LIMITS["synapse_bits"] + 1  # indices beyond 12 bits: never fits
        return axons.n_axons, bits


class _LayerCounter:
    """Input resources of a layer's blocks: the sum over its incoming connections."""

    def __init__(self, network: SpikingNetwork, layer: NeuronLayer):
        self.layer = layer
        self.parts = [_ConnCounter(c, layer) for c in network.connections_into(layer.name)]
        self.geom = self.parts[0].geom if len(self.parts) == 1 else None
        self.spatial = all(p.geom is not None for p in self.parts)

    def in_usage(self, tile: Tile, whole: bool) -> tuple[int, int]:
        axons = bits = 0
        for part in self.parts:
            a, b = part.in_usage(tile, whole)
            axons, bits = axons + a, bits + b
        return axons, bits


class _OutAxonCounter:
    """Output slots a block of this layer needs toward the next layer's blocks.

    Dense next layer: one slot per neuron per next block. Conv next layer: two slots per
    pixel of the block that reaches a next block (its channels ride along as atoms).
    Results are cached per spatial box; the next blocks are grouped by spatial box.
    """

    def __init__(self, next_counter: _LayerCounter | None, next_tiles: list[Tile] | None,
                 shape: tuple[int, ...]):
        self.next = next_counter
        self.shape = tuple(shape)
        self.cache: dict[tuple, int] = {}
        if next_counter is None or next_counter.geom is None:
            return
        self.whole = len(next_tiles) == 1
        boxes: dict[tuple, int] = {}
        for nt in next_tiles:
            box = _tile_ranges(lift_tile(nt), 2)
            boxes[box] = boxes.get(box, 0) + 1
        arr = np.array([[y0, y1, x0, x1] for (y0, y1), (x0, x1) in boxes], np.int64)
        self.y0, self.y1, self.x0, self.x1 = arr.T
        self.mult = np.array(list(boxes.values()), np.int64)
        self.image = tuple(next_counter.conn.pre_shape) == self.shape

    def _reach(self, rows: np.ndarray, cols: np.ndarray) -> int:
        g = self.next.geom
        if self.whole:
            return 2 * rows.size * cols.size
        ok_r = (np.maximum(g.row_lo[rows][None, :], self.y0[:, None])
                <= np.minimum(g.row_hi[rows][None, :], self.y1[:, None] - 1)).sum(axis=1)
        ok_c = (np.maximum(g.col_lo[cols][None, :], self.x0[:, None])
                <= np.minimum(g.col_hi[cols][None, :], self.x1[:, None] - 1)).sum(axis=1)
        return 2 * int((self.mult * ok_r * ok_c).sum())

    def __call__(self, tile: Tile, n_next_tiles: int) -> int:
        if self.next is None:
            return 0
        if self.next.geom is None:
            return n_next_tiles * tile.size
        key = tile.origin[:2] + tile.extent[:2] if self.image else (tile.origin, tile.extent)
        if key not in self.cache:
            if self.image:
                (r0, r1), (c0, c1) = _tile_ranges(tile, 2)
                self.cache[key] = self._reach(np.arange(r0, r1), np.arange(c0, c1))
            else:  # a flat layer the next conv views as an image: count its pixels
                g = self.next.geom
                pix = np.unique(tile_neuron_ids(self.shape, tile) // g.C)
                self.cache[key] = sum(self._reach(np.array([p // g.W]), np.array([p % g.W]))
                                      for p in pix)
        return self.cache[key]


def _evaluate(counter: _LayerCounter, shape: tuple, block_shape: tuple,
              consumers: list[tuple]) -> tuple[bool, float]:
    """Whether every block of the tiling fits, and its peak utilization fraction.

    ``consumers`` lists ``(connection counter, tiles)`` of every on-chip connection out of
    the layer (their output axons add up)."""
    if int(np.prod(block_shape)) > RESOURCE_LIMITS["compartments"]:
        return False, math.inf
    tiles = tile_layer(shape, block_shape)
    whole = len(tiles) == 1
    counters = [(_OutAxonCounter(nc, nt, shape), len(nt)) for nc, nt in consumers]
    peak = 0.0
    cache: dict[tuple, tuple[int, int]] = {}
    dense_only = all(p.geom is None and p.sparse is None for p in counter.parts)
    for tile in tiles:
        if dense_only:
            key = (tile.size,)
        elif counter.spatial:
            key = (tile.origin[:-1], tile.extent)
        else:
            key = (tile.origin, tile.extent)
        if key not in cache:
            cache[key] = counter.in_usage(tile, whole)
        in_axons, bits = cache[key]
        used = {"compartments": tile.size, "in_axons": in_axons,
                "out_axons": sum(out(tile, n) for out, n in counters), "synapse_bits": bits}
        frac = max(used[r] / RESOURCE_LIMITS[r] for r in RESOURCES)
        if frac > 1:
            return False, frac
        peak = max(peak, frac)
    return True, peak


def auto_block_shapes(network: SpikingNetwork, fixed: Mapping[str, tuple] | None = None,
                      only: list[str] | None = None) -> dict[str, tuple[int, ...]]:
    """The block shape of each on-chip layer that fits every limit with the fewest cores.

    Layers are solved from the last to the first (a block's output axons depend on the
    next layer's tiling). Ties in core count go to the tiling with the lowest peak
    utilization (the most headroom).

    Parameters
    ----------
    fixed
        Block shapes to keep as they are (used for the next layer's tiling).
    only
        Solve only these layers (the others use ``fixed`` or their own block shape,
        else the automatic one).

    Raises
    ------
    MappingError
        When no tiling of a layer fits (e.g. a single neuron's synapses exceed a core).
    """
    network = _as_network(network)  # also a LayerGraph, keras.Model or path
    _, chip = chip_layers(network)
    fixed = dict(fixed or {})
    result: dict[str, tuple[int, ...]] = {}
    counters: dict[str, _LayerCounter] = {}
    on_chip = {layer.name for layer in chip}
    for layer in reversed(chip):  # consumers come later in topological order
        counter = counters[layer.name] = _LayerCounter(network, layer)
        consumers = []
        for conn in network.connections_from(layer.name):
            if conn.post in on_chip and conn.post in result:
                post = network.layers[conn.post]
                part = next(p for p in counters[conn.post].parts if p.conn is conn)
                consumers.append((part, tile_layer(post.shape, result[conn.post])))
        wanted = only is None or layer.name in only
        if not wanted and layer.name in fixed:
            shape = tuple(fixed[layer.name])
        elif not wanted and layer.block_shape is not None:
            shape = tuple(layer.block_shape)
        else:
            shape = _best_tiling(counter, layer, consumers)
        result[layer.name] = shape
    return {layer.name: result[layer.name] for layer in chip if layer.name in result}


def _best_tiling(counter: _LayerCounter, layer: NeuronLayer, consumers: list[tuple]) -> tuple:
    shape = tuple(layer.shape)
    cands = [c for c in itertools.product(*(_candidate_sizes(n) for n in shape))
             if int(np.prod(c)) <= RESOURCE_LIMITS["compartments"]]
    cands.sort(key=lambda c: n_tiles(shape, c))
    best, best_cores, best_peak = None, None, math.inf
    for cand in cands:
        cores = n_tiles(shape, cand)
        if best_cores is not None and cores > best_cores:
            break
        ok, peak = _evaluate(counter, shape, cand, consumers)
        if ok and peak < best_peak:
            best, best_cores, best_peak = cand, cores, peak
    if best is None:
        one = Tile((0,) * len(shape), (1,) * len(shape))
        in_axons, bits = counter.in_usage(one, whole=False)
        if in_axons > RESOURCE_LIMITS["in_axons"]:
            why = (f"its fan-in of {in_axons} {'neurons' if counter.geom is None else 'pixels'} "
                   f"exceeds the {RESOURCE_LIMITS['in_axons']} input axons of a core")
            resource, used = "in_axons", in_axons
        elif bits > RESOURCE_LIMITS["synapse_bits"]:
            why = f"one neuron's synapses need {bits} bits, more than a core's {MAX_SYNAPSE_BITS}"
            resource, used = "synapse_bits", bits
        else:
            why = "every tiling overflows the output axons toward the next layer"
            resource, used = "out_axons", None
        raise MappingError(
            f"layer {layer.name!r} {shape}: no block shape fits on a Loihi core: {why}; put a "
            f"smaller layer (or pooling) before it", layer=layer.name, resource=resource,
            used=used, limit=RESOURCE_LIMITS[resource])
    return tuple(int(v) for v in best)
