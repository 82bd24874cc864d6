"""Flatten a :class:`~loihi_core.chip.ChipModel` into the arrays the emulator kernels run on.

Every on-chip compartment gets a global index (blocks concatenated in build order, as
NengoLoihi's emulator does). A spike source — a compartment, or a neuron of the off-chip
input layer — has a list of *fan-out entries*; an entry names the first compartment its
weight row lands on (``block offset + axon base``) and the row of weights/indices to add.
This is NengoLoihi's axon → synapse → weight-set indirection resolved once, ahead of time,
so the inner loop is a plain sparse scatter-add.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..chip import ChipModel
from ..network import SpikingNetwork


@dataclass
class CompiledChip:
    """Integer arrays of a mapped network (see the module docstring).

    Attributes
    ----------
    decay_u, decay_v, vth, bias, refract, vmin, vmax
        Per-compartment registers (int64).
    comp_fan_ptr, host_fan_ptr
        CSR pointers of the fan-out entries of each compartment / host input neuron.
    fan_dest, fan_row
        Per entry: the compartment where its row's indices start, and the row.
    row_ptr, row_idx, row_w
        Weight rows: indices (relative to ``fan_dest``) and integer weights (int16 when
        they fit, :func:`weight_array`).
    seg_ptr, seg_off, seg_len
        The same rows as runs of consecutive indices (what the kernels loop over: a dense
        row is one run, a conv row one run per output pixel): run ``s`` adds
        ``row_w[seg_w0[s] : seg_w0[s] + seg_len[s]]`` at ``fan_dest + seg_off[s]`` onwards.
    layer_names, layer_offsets
        On-chip layers and their compartment ranges ``layer_offsets[i]:layer_offsets[i+1]``
        (compartments of a layer are contiguous; ``comp_neuron`` maps them to neuron ids).
    comp_neuron
        Layer-neuron id of every compartment.
    probe_row, probe_weights
        Readout: compartment → row of ``probe_weights`` (``-1`` = not read), and the
        ``(n_rows, n_groups · n_out)`` chip → host weights ``W · amplitude / dt``: one block
        of ``n_out`` columns per distinct synapse tau of the layers read (the host filters
        each block with its own tau, then adds them).
    probe_taus
        The synapse tau of each column block of ``probe_weights``.
    host_layers, host_offsets
        The off-chip layers whose spikes drive the chip, and where each one's neurons start
        among the ``n_host`` host inputs.
    """

    decay_u: np.ndarray
    decay_v: np.ndarray
    vth: np.ndarray
    bias: np.ndarray
    refract: np.ndarray
    vmin: np.ndarray
    vmax: np.ndarray
    comp_fan_ptr: np.ndarray
    host_fan_ptr: np.ndarray
    fan_dest: np.ndarray
    fan_row: np.ndarray
    row_ptr: np.ndarray
    row_idx: np.ndarray
    row_w: np.ndarray
    seg_ptr: np.ndarray
    seg_off: np.ndarray
    seg_w0: np.ndarray
    seg_len: np.ndarray
    layer_names: list[str]
    layer_offsets: np.ndarray
    comp_neuron: np.ndarray
    probe_row: np.ndarray
    probe_weights: np.ndarray
    host_layers: list[str]
    host_offsets: np.ndarray
    n_host: int
    probe_taus: list = None  # type: ignore[assignment]

    @property
    def host_layer(self) -> str:
        """The first host layer that drives the chip."""
        return self.host_layers[0]

    @property
    def n_compartments(self) -> int:
        return int(self.vth.size)

    @property
    def n_out(self) -> int:
        """Columns of the probe (``n_groups · n_outputs``)."""
        return int(self.probe_weights.shape[1])

    def layer_slice(self, name: str) -> slice:
        i = self.layer_names.index(name)
        return slice(int(self.layer_offsets[i]), int(self.layer_offsets[i + 1]))


def _csr(n_sources: int, src: np.ndarray, dest: np.ndarray, row: np.ndarray):
    order = np.argsort(src, kind="stable")
    counts = np.bincount(src, minlength=n_sources)
    ptr = np.zeros(n_sources + 1, np.int64)
    np.cumsum(counts, out=ptr[1:])
    return ptr, dest[order], row[order]


def _segments(row_ptr: np.ndarray, row_idx: np.ndarray):
    """Split every row into runs of consecutive indices."""
    n = row_idx.size
    brk = np.ones(n, bool)
    if n:
        brk[1:] = row_idx[1:] != row_idx[:-1] + 1
        brk[row_ptr[:-1][row_ptr[:-1] < n]] = True
    starts = np.nonzero(brk)[0]
    lengths = np.diff(np.append(starts, n))
    seg_ptr = np.searchsorted(starts, row_ptr).astype(np.int64)
    return seg_ptr, row_idx[starts].astype(np.int32), starts.astype(np.int64), lengths.astype(np.int32)


#: Largest number of (source, target) synapses for which :func:`compile_chip` expands the
#: shared weight sets into one row per source (an int16 weight and an index per synapse).
EXPAND_BUDGET = 48_000_000


def compile_chip(chip: ChipModel, expand: bool | None = None) -> CompiledChip:
    """Resolve the chip's routing into flat arrays (see :class:`CompiledChip`).

    With ``expand`` (default: when the network has at most :data:`EXPAND_BUDGET`
    synapses) every source gets one row over all its targets, in layer order (neuron-id
    order), instead of one row per block it reaches. A spike then adds a few long runs
    (all channels of an output pixel, across the blocks that split them) that the CPU
    vectorises, instead of many short ones; the integer weights are the blocks' own.
    """
    compiled = _compile_blocks(chip)
    if expand is None:
        expand = _n_synapses(compiled) <= EXPAND_BUDGET
    return _expanded(compiled) if expand else compiled


def _n_synapses(c: CompiledChip) -> int:
    return int((c.row_ptr[c.fan_row + 1] - c.row_ptr[c.fan_row]).sum())


def _expanded(c: CompiledChip) -> CompiledChip:
    """The same chip with one row per source and compartments in layer (neuron-id) order."""
    n, n_host = c.n_compartments, c.n_host
    layer_of = np.repeat(np.arange(len(c.layer_names)), np.diff(c.layer_offsets))
    perm = c.layer_offsets[layer_of] + c.comp_neuron  # block order -> layer order
    lengths = c.row_ptr[c.fan_row + 1] - c.row_ptr[c.fan_row]
    starts = np.repeat(c.row_ptr[c.fan_row] - np.cumsum(lengths) + lengths, lengths)
    k = starts + np.arange(int(lengths.sum()))
    pos = perm[np.repeat(c.fan_dest, lengths) + c.row_idx[k]]
    w = c.row_w[k]
    src_of_entry = np.concatenate([
        perm[np.repeat(np.arange(n), np.diff(c.comp_fan_ptr))],
        n + np.repeat(np.arange(n_host), np.diff(c.host_fan_ptr))])
    src = np.repeat(src_of_entry, lengths)
    # by source, then by target: one stable sort of a combined key (faster than lexsort)
    order = np.argsort(src * max(n, 1) + pos, kind="stable")
    counts = np.bincount(src, minlength=n + n_host)
    row_ptr = np.zeros(n + n_host + 1, np.int64)
    np.cumsum(counts, out=row_ptr[1:])
    row_idx = pos[order]
    seg_ptr, seg_off, seg_w0, seg_len = _segments(row_ptr, row_idx)

    def permuted(a):
        out = np.empty_like(a)
        out[perm] = a
        return out

    return CompiledChip(
        decay_u=permuted(c.decay_u), decay_v=permuted(c.decay_v), vth=permuted(c.vth),
        bias=permuted(c.bias), refract=permuted(c.refract), vmin=permuted(c.vmin),
        vmax=permuted(c.vmax), comp_fan_ptr=np.arange(n + 1, dtype=np.int64),
        host_fan_ptr=n + np.arange(n_host + 1, dtype=np.int64),
        fan_dest=np.zeros(n + n_host, np.int64), fan_row=np.arange(n + n_host, dtype=np.int64),
        row_ptr=row_ptr, row_idx=row_idx, row_w=w[order], seg_ptr=seg_ptr, seg_off=seg_off,
        seg_w0=seg_w0, seg_len=seg_len, layer_names=c.layer_names, layer_offsets=c.layer_offsets,
        comp_neuron=permuted(c.comp_neuron), probe_row=permuted(c.probe_row),
        probe_weights=c.probe_weights, host_layers=c.host_layers, host_offsets=c.host_offsets,
        n_host=n_host, probe_taus=c.probe_taus)


def _compile_blocks(chip: ChipModel) -> CompiledChip:
    """Flat arrays in block order, one weight row per (weight set, atom)."""
    network: SpikingNetwork = chip.network
    if any(b.compartments is None for b in chip.blocks):
        raise ValueError("the chip model is not discretized; map it with discretize=True")
    if chip.errors:
        raise ValueError("the chip model has over-limit blocks and cannot run: "
                         + "; ".join(chip.errors))
    blocks = chip.blocks
    sizes = np.array([b.n_compartments for b in blocks], np.int64)
    block_off = np.concatenate([[0], np.cumsum(sizes)])
    n = int(block_off[-1])

    def cat(get):
        return np.concatenate([np.broadcast_to(np.asarray(get(b), np.int64), b.n_compartments)
                               for b in blocks]) if blocks else np.zeros(0, np.int64)

    # compartments of each layer, and of each layer neuron
    layer_names = chip.chip_layers
    comp_of_neuron: dict[str, np.ndarray] = {}
    layer_offsets = [0]
    for name in layer_names:
        layer = network.layers[name]
        idx = np.full(layer.n_neurons, -1, np.int64)
        for k, b in enumerate(blocks):
            if b.layer == name:
                idx[b.neuron_ids] = block_off[k] + np.arange(b.n_compartments)
        comp_of_neuron[name] = idx
        layer_offsets.append(int(max(block_off[k + 1] for k, b in enumerate(blocks) if b.layer == name)))
    host_set = set(chip.host_layers)
    feeding = {syn.pre for b in blocks for syn in b.synapses if syn.pre in host_set}
    host_layers = [h for h in chip.host_layers if h in feeding]
    sizes_host = [network.layers[h].n_neurons for h in host_layers]
    host_offsets = np.concatenate([[0], np.cumsum(sizes_host)]).astype(np.int64)
    host_offset = dict(zip(host_layers, host_offsets[:-1].tolist()))
    n_host = int(host_offsets[-1])

    # weight rows and fan-out entries
    row_ptr_parts, idx_parts, w_parts = [], [], []
    n_rows = 0
    host_src, host_dest, host_row = [], [], []
    comp_src, comp_dest, comp_row = [], [], []
    for k, b in enumerate(blocks):
        for syn in b.synapses:
            atoms, width, set_idx, set_w = syn.weight_rows()
            set_row0 = np.concatenate([[0], np.cumsum(atoms)])
            row_ptr_parts.append(np.repeat(width, atoms))  # one row per (weight set, atom)
            if syn.weights:
                idx_parts.append(set_idx)
                w_parts.append(set_w)
            set_row0 += n_rows
            n_rows = int(set_row0[-1])
            pre_neurons = np.nonzero(syn.pre_axon >= 0)[0]
            axons = syn.pre_axon[pre_neurons]
            bases = syn.axon_base[axons]
            used = bases >= 0
            pre_neurons, axons, bases = pre_neurons[used], axons[used], bases[used]
            dest = block_off[k] + bases
            row = set_row0[syn.axon_weight_set[axons]] + syn.pre_atom[pre_neurons]
            if syn.pre in host_offset:
                host_src.append(pre_neurons + host_offset[syn.pre])
                host_dest.append(dest)
                host_row.append(row)
            else:
                comp_src.append(comp_of_neuron[syn.pre][pre_neurons])
                comp_dest.append(dest)
                comp_row.append(row)
    row_ptr = np.zeros(n_rows + 1, np.int64)
    if row_ptr_parts:
        np.cumsum(np.concatenate(row_ptr_parts), out=row_ptr[1:])
    row_idx = np.concatenate(idx_parts) if idx_parts else np.zeros(0, np.int64)
    row_w = weight_array(np.concatenate(w_parts) if w_parts else np.zeros(0, np.int64))
    seg_ptr, seg_off, seg_w0, seg_len = _segments(row_ptr, row_idx)

    def gather(parts):
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)

    comp_fan_ptr, c_dest, c_row = _csr(n, gather(comp_src), gather(comp_dest), gather(comp_row))
    host_fan_ptr, h_dest, h_row = _csr(n_host, gather(host_src), gather(host_dest), gather(host_row))
    fan_dest = np.concatenate([c_dest, h_dest])
    fan_row = np.concatenate([c_row, h_row])
    host_fan_ptr = host_fan_ptr + len(c_dest)

    # readout: on-chip layers' spikes through W · amplitude / dt, one column block per tau
    readout = network.readout
    n_out = int(np.prod(readout.shape))
    taus: list = []
    rows: dict[str, np.ndarray] = {}
    for pre, weights in readout.terms:
        layer = network.layers[pre]
        if not layer.on_chip:
            raise ValueError(f"the readout reads {pre!r}, which is not on chip")
        if layer.synapse not in taus:
            taus.append(layer.synapse)
        g = taus.index(layer.synapse)
        w = (np.eye(layer.n_neurons) if weights is None else np.asarray(weights, np.float64))
        full = np.zeros((layer.n_neurons, n_out * (g + 1)))
        full[:, g * n_out:(g + 1) * n_out] = w * (layer.amplitude / network.dt)
        rows[pre] = _add_padded(rows.get(pre, np.zeros((layer.n_neurons, 0))), full)
    width = n_out * len(taus)
    probe_row = np.full(n, -1, np.int64)
    parts, row0 = [], 0
    for pre, w in rows.items():
        padded = np.zeros((w.shape[0], width))
        padded[:, :w.shape[1]] = w
        parts.append(padded)
        probe_row[comp_of_neuron[pre]] = row0 + np.arange(w.shape[0])
        row0 += w.shape[0]
    probe_weights = np.concatenate(parts) if parts else np.zeros((0, width))
    comp_neuron = np.zeros(n, np.int64)
    for name in layer_names:
        c = comp_of_neuron[name]
        comp_neuron[c] = np.arange(c.size)

    return CompiledChip(
        decay_u=cat(lambda b: b.compartments.decay_u), decay_v=cat(lambda b: b.compartments.decay_v),
        vth=cat(lambda b: b.compartments.vth), bias=cat(lambda b: b.compartments.bias),
        refract=cat(lambda b: b.compartments.refract_delay), vmin=cat(lambda b: b.compartments.vmin),
        vmax=cat(lambda b: b.compartments.vmax), comp_fan_ptr=comp_fan_ptr,
        host_fan_ptr=host_fan_ptr, fan_dest=fan_dest, fan_row=fan_row, row_ptr=row_ptr,
        row_idx=row_idx, row_w=row_w, seg_ptr=seg_ptr, seg_off=seg_off, seg_w0=seg_w0,
        seg_len=seg_len, layer_names=layer_names,
        layer_offsets=np.asarray(layer_offsets, np.int64), comp_neuron=comp_neuron,
        probe_row=probe_row, probe_weights=np.ascontiguousarray(probe_weights),
        host_layers=host_layers, host_offsets=host_offsets, n_host=n_host, probe_taus=taus)


def weight_array(w: np.ndarray) -> np.ndarray:
    """The integer weights as int16 when they fit, else int32.

    Discretized weights are ``Wgt · 2**(6 + weight_exp)`` with an 8-bit ``Wgt`` and
    ``weight_exp <= 0`` (:func:`~loihi_core.discretize.discretize_weight_sets`), so at most
    16 256 in magnitude: int16 always holds them, and halves the bytes a spike's weight
    row streams through the cache (the synaptic adds are most of the emulator's time).
    The int32 fallback keeps hand-made chips exact (the kernels compile for either).
    """
    w = np.asarray(w)
    if w.size == 0 or np.abs(w).max() <= np.iinfo(np.int16).max:
        return w.astype(np.int16)
    return w.astype(np.int32)


def _add_padded(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a + b`` after zero-padding the narrower one's columns on the right."""
    width = max(a.shape[1], b.shape[1])
    out = np.zeros((a.shape[0], width))
    out[:, :a.shape[1]] += a
    out[:, :b.shape[1]] += b
    return out
