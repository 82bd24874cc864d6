"""Lava-dl NetX HDF5 export of the on-chip part of a network (``--format lava-hdf5``).

NetX (``lava.lib.dl.netx.hdf5.Network``) builds a Lava network from an HDF5 file with one
group per layer (``shared/spec/loihi-semantics.md`` §7). This module writes the layers
that Loihi Studio puts **on chip**, with the integers of our discretization, so that the
file says exactly what our emulator runs wherever the two neuron models coincide.

Layout written
--------------
``/layer/0`` is an ``input`` layer (``type``, ``shape``, no ``neuron`` group: netx then only
records the input shape and feeds the first weighted layer directly). Then, per on-chip
neuron layer in order, a ``conv`` or ``dense`` layer, with a ``flatten`` layer before a
dense layer that follows a conv layer. No ``pool`` layer is ever written (netx cannot
read one): pooling is already folded into the weights by the converter.

* ``type``: a ``(1,)`` array of dtype ``S10`` (what slayer writes); ``shape``: int64 in
  slayer order, ``(C, H, W)`` for images, ``(N,)`` for dense layers.
* ``conv``: ``inChannels``, ``outChannels``, ``kernelSize``, ``stride``, ``padding``,
  ``dilation`` (each ``(H, W)``), ``groups`` (1), ``weight`` int16 ``(out, in, kH, kW)``:
  the Keras kernel ``(kH, kW, in, out)`` transposed, not flipped (both cross-correlate);
  ``bias`` int32 per output channel.
* ``dense``: ``inFeatures``, ``outFeatures``, ``weight`` int16 ``(out, in)``, ``bias``
  int32 per neuron. After a flatten, the columns are permuted from Keras' flatten order
  ``(h·W + w)·C + c`` to netx's ``c·H·W + h·W + w``.
* ``neuron``: ``type`` ``CUBA``, ``iDecay = decay_u + 1``, ``vDecay = decay_v``,
  ``vThMant = vth / 64``, ``refDelay`` (our refractory delay; netx ignores it),
  ``gradedSpike`` false. No ``messageBits`` (netx would receive a group, not a number).
* ``weight = w_int >> 6``: the chip's 8-bit weight ``Wgt`` (even, in [-254, 254]); netx
  adds ``weight << 6`` per spike, i.e. it assumes weight exponent 0.
* ``bias = bias_int / 64``: netx fixes the bias exponent to 6.

Decisions
---------
**One parameter set per layer (unsplit discretization).** Our discretization is per block
(per core), as NengoLoihi's: blocks of one layer can get different thresholds and weight
scales. A netx layer has one threshold and one integer weight tensor, and Lava's compiler
does its own partitioning. So each layer is discretized as one block,
``map_to_chip(network, block_shapes={layer: layer.shape}, raise_on_overflow=False)`` —
exactly what NengoLoihi does with ``BlockShape`` equal to the layer shape. Such a mapping
is only a way to compute the integers: a whole conv layer rarely fits one core, so it
cannot be run on the chip or emulated as it is. What the emulator runs bit for bit like the
file is a mapping whose block shapes **keep all channels of a conv layer in each block**
(spatial tiles ``(rows, cols, C)``) and **dense layers whole**: a block's scales depend on
the largest weight of its synapses and on its thresholds and biases, and such blocks see the
whole kernel (every output channel, every tap) and every channel's bias, so every block gets
the unsplit layer's integers (``tests/test_export.py`` runs one and compares every spike).
Tuned block shapes that split channels, or a dense layer, can give blocks their own scales
(typically a slightly finer weight resolution in blocks whose largest weight is smaller). A
dense layer too big for one core (the bundled example's ``dense0``: 100 neurons need 2.06 M
synapse bits, a core has 1 M) has to be split on the chip, so there the file's single scale
and the chip's per-block scales differ; the export's notes name such layers.

**The host layer stays on the host.** The first neuron layer(s) turn images into spikes
off chip (a float neuron step, and a conv from a Node cannot go on chip), and netx's
``input`` layer can only apply an affine map, not a conv. So the exported network's input
is the **spike train of the last host layer**: ``shape`` is that layer's output shape as
the first on-chip layer sees it. Give Lava a binary array per step: ``(W, H, C)`` (Lava's
x, y, channel order, i.e. our ``(H, W, C)`` spikes transposed ``(1, 0, 2)``) when the first
on-chip layer is a conv, or the spikes flattened in Keras (channels-last) order when it is
dense. Loihi Studio's emulator gives those spikes one step later to the chip.

**Timing: one step per layer, as in our emulator.** Lava's Dense and Conv process models
send at step t what they accumulated at step t − 1, so a layer's spikes reach the next
layer one step later, the host layer's included — our emulator's (and NengoLoihi's)
latency. Verified by the emulator round trip: ``tests/test_export.py`` runs the file with
Lava's CUBA step (``tests/lava_reader.py``) and compares every spike of every layer with the
emulator, and Lava-dl 0.6 NetX running our ``.net`` of the bundled example in Lava's CPU
simulation gave the reader's spikes bit for bit.

**Dense layers whose weights are all <= 0.** NetX does not pass its dense weights to Lava
as written: its optimiser (``netx.utils.optimize_weight_bits``) shifts the matrix left so
that it fills 8 bits (to -256 when no weight is positive and the most negative one is a
power of two) and sets a weight exponent that shifts the sum back; Lava's bit-accurate
``Dense`` model then classifies the matrix again, as *inhibitory* when no weight is
positive, whose 8-bit magnitudes stop at 255: -256 is clipped to -255, then truncated to
the precision NetX computed, so each spike through those weights adds less (-2^k + 2^j
instead of -2^k, j the trailing zero bits the weights share, minus 1 if some are 0). Every
other matrix (any positive weight, or a most negative weight that is not a power of two)
goes through exactly. :func:`netx_dense_weights` follows that path on the written integers
and the export reports the difference (refuses it with ``exact=True``): the file cannot
avoid it, since the effect follows from the integers themselves (any file holding them gets
it, and other integers would be other weights). With our discretizer, for a layer with one
input connection, it happens only to all-non-positive dense layers whose weights were
requantized from a negative weight exponent (at exponent 0 the most negative weight is
-254), which ``exact=True`` already refuses. An all-zero dense matrix is refused: NetX's optimiser
divides by its largest weight and cannot load it.

**Approximations are explicit.** A bias that is not a multiple of 64, or weights with an
exponent ≠ 0 (the discretizer lowers the exponent when threshold or bias would overflow
their registers), cannot be written exactly: they are requantized (round half to even;
weights to even integers) with a warning that says how much, or refused with
``exact=True``.

What netx CUBA cannot express (so the export is not bit-exact when these matter)
--------------------------------------------------------------------------------
See :data:`NETX_DIFFERENCES`. Where none of them is triggered (relu or ``tau_ref = 0``
LIF neurons, non-negative voltages, no overflow, exact biases and weight exponent 0) the
Lava CUBA step and our emulator's step are the same integer computation.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..chip import Block, BlockSynapse, ChipModel
from ..network import Connection, NeuronLayer, SpikingNetwork
from .common import ExportError, ExportResult, atomic_write, check_output_file
from .netx_dense import netx_dense_weights


class ExportWarning(UserWarning):
    """An export had to approximate (requantized biases or weights, no refractory period)."""


#: Neuron-model differences between NengoLoihi's Loihi (our emulator) and netx's Lava CUBA.
NETX_DIFFERENCES: tuple[str, ...] = (
    "refractory period: Lava's CUBA neuron has none (refDelay is written but ignored), so "
    "LIF layers with tau_ref > 0 fire faster in Lava; relu layers have none on Loihi either",
    "vmin clamp: NengoLoihi clamps the voltage of relu and LIF neurons at 0 (vmin = 0); "
    "Lava's voltage can go negative, so a neuron that received net inhibition needs more "
    "input to fire again",
    "weight exponent: netx assumes weight exponent 0 (weight << 6 per spike); layers our "
    "discretizer gave a negative exponent are requantized to 8-bit weights at exponent 0",
    "bias exponent: netx fixes it to 6, so biases that are not multiples of 64 are rounded",
    "input wrap: Loihi wraps the summed synaptic input of a step to 21 bits + sign before "
    "adding it to the current; Lava only wraps the current (24 bits)",
    "voltage: NengoLoihi clips V to [vmin, vmax] (vmax = 2^23 - 1) and wraps current + bias "
    "to 24 bits; Lava clips V to +-(2^23 - 1)",
    "host layer: the first (off-chip) layer is not in the file; the network's input is that "
    "layer's spike train",
    "per-block scales: the file is discretized per layer (unsplit); the tuned mapping may "
    "discretize each core's block with its own scale (block shapes that keep all channels of "
    "a conv layer in each block, and dense layers whole, give the file's integers)",
    "all-non-positive dense weights: when every weight of a dense layer is <= 0 and the most "
    "negative is a power of two, NetX's weight optimiser and Lava's bit-accurate dense model "
    "disagree and Lava adds less per spike through those weights (reported, refused with "
    "exact=True; see netx_dense_weights)",
)

_NETX_WEIGHT_MIN, _NETX_WEIGHT_MAX = -256, 254
#: Lava documents a 13-bit signed bias mantissa; ours reaches 4095·2^7 / 64 = 8190.
_LAVA_BIAS_MANT_MAX = 4095


@dataclass
class NetxLayer:
    """One layer of the netx file (plain data; :func:`write_netx` stores it).

    Attributes
    ----------
    kind
        ``"input"``, ``"conv"``, ``"flatten"`` or ``"dense"``.
    shape
        Output shape in slayer order: ``(C, H, W)`` or ``(N,)``.
    name
        The neuron layer's Keras name (empty for ``input``/``flatten``).
    weight, bias
        Integer arrays as written (``None`` for ``input``/``flatten``).
    neuron
        The CUBA parameters (``iDecay``, ``vDecay``, ``vThMant``, ``refDelay``).
    params
        The other datasets: conv ``inChannels``, ``outChannels``, ``kernelSize``,
        ``stride``, ``padding``, ``dilation`` (``(H, W)`` pairs), ``groups``; dense
        ``inFeatures``, ``outFeatures``.
    """

    kind: str
    shape: tuple[int, ...]
    name: str = ""
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    neuron: dict[str, int] | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict:
        out: dict[str, Any] = {"type": self.kind, "shape": list(self.shape)}
        if self.name:
            out["layer"] = self.name
        if self.neuron:
            out.update({k: int(v) for k, v in self.neuron.items()})
        if self.params:
            out.update({k: (list(v) if isinstance(v, tuple) else v) for k, v in self.params.items()})
        return out


# ---------------------------------------------------------------------------------------
# integer weights of an unsplit block, in Keras orientation
# ---------------------------------------------------------------------------------------

def conv_kernel_ints(block: Block, syn: BlockSynapse, conn: Connection) -> np.ndarray:
    """The chip integers of a conv connection as a Keras kernel ``(kH, kW, C_in, C_out)``.

    Read back from the block's population synapse: axon ``a`` (an input pixel ``(i, j)``)
    adds row ``c`` (the channel) of its weight set at compartments ``base + indices``;
    a compartment is output ``(y, x, f)``, and the tap it used is
    ``(i + pad_r - y·sr, j + pad_c - x·sc)``. Taps that never touch a real input pixel
    (only the zero padding) stay 0.
    """
    kh, kw, c_in, c_out = conn.weights.shape
    h, w, _ = conn.pre_shape
    oh, ow, _ = conn.post_shape
    sr, sc = conn.strides
    pr, pc = conn.padding_amounts()
    out = np.zeros((kh, kw, c_in, c_out), np.int64)
    seen = np.zeros(out.shape, bool)
    pixel_axon = np.asarray(syn.pre_axon)[::c_in]  # neuron p·C + c rides axon of pixel p
    for p in np.flatnonzero(pixel_axon >= 0):
        a = int(pixel_axon[p])
        base, ws = int(syn.axon_base[a]), int(syn.axon_weight_set[a])
        if base < 0 or ws < 0:
            continue
        wgt, idx = syn.weights[ws], syn.indices[ws]  # (C_in, k)
        neuron = block.neuron_ids[base + idx]
        y, rem = np.divmod(neuron, ow * c_out)
        x, f = np.divmod(rem, c_out)
        i, j = divmod(int(p), w)
        tr, tc = i + pr - y * sr, j + pc - x * sc
        ch = np.broadcast_to(np.arange(c_in)[:, None], idx.shape)
        if tr.min() < 0 or tr.max() >= kh or tc.min() < 0 or tc.max() >= kw:
            raise ExportError(f"internal error: conv synapse of {block.layer!r} reaches outside "
                              f"its kernel", layer=block.layer)
        key = (tr, tc, ch, f)
        clash = seen[key] & (out[key] != wgt)
        if clash.any():
            raise ExportError(f"internal error: conv synapse of {block.layer!r} has two "
                              f"different weights for one kernel tap", layer=block.layer)
        out[key] = wgt
        seen[key] = True
    return out


def dense_matrix_ints(block: Block, syn: BlockSynapse, n_pre: int) -> np.ndarray:
    """The chip integers of a dense connection as a Keras matrix ``(n_pre, n_post)``."""
    out = np.zeros((n_pre, block.n_compartments), np.int64)
    for n in range(n_pre):
        a = int(syn.pre_axon[n])
        if a < 0:
            continue
        base, ws = int(syn.axon_base[a]), int(syn.axon_weight_set[a])
        if base < 0 or ws < 0:
            continue
        atom = int(syn.pre_atom[n])
        out[n, block.neuron_ids[base + syn.indices[ws][atom]]] = syn.weights[ws][atom]
    return out


# ---------------------------------------------------------------------------------------
# the layers
# ---------------------------------------------------------------------------------------

def unsplit_chip(network: SpikingNetwork, chip: ChipModel | None = None) -> ChipModel:
    """Map and discretize every on-chip layer as one block (see the module docstring).

    A given ``chip`` is reused when it is such a mapping of ``network`` (one discretized
    block per on-chip layer); any other mapping (the tuned block shapes) is ignored.
    """
    from ..mapping import chip_layers, map_to_chip

    _, layers = chip_layers(network)
    if chip is not None and chip.network is network and all(
            len(blocks) == 1 and blocks[0].compartments is not None
            for blocks in (chip.blocks_of(layer.name) for layer in layers)):
        return chip
    return map_to_chip(network, block_shapes={layer.name: tuple(layer.shape) for layer in layers},
                       raise_on_overflow=False)


def keeps_layer_integers(layer: NeuronLayer) -> bool:
    """Whether ``layer``'s block shape gives every block the unsplit layer's integers.

    True for no block shape, the whole layer, and conv tiles that keep all channels
    ``(rows, cols, C)`` (see the module docstring); False for a split dense layer or a
    conv block shape with fewer channels.
    """
    shape, block = tuple(layer.shape), layer.block_shape
    if block is None or tuple(block) == shape:
        return True
    return len(shape) == 3 and len(block) == 3 and int(block[-1]) == int(shape[-1])


def _uniform(values: np.ndarray, what: str, layer: str) -> int:
    values = np.asarray(values)
    if values.size == 0 or not np.all(values == values.flat[0]):
        raise ExportError(f"layer {layer!r}: {what} differs between neurons; a netx layer has "
                          f"one {what}", layer=layer)
    return int(values.flat[0])


def _requantize(values: np.ndarray, divisor: int, step: int) -> np.ndarray:
    """``values / divisor`` rounded half to even onto multiples of ``step``."""
    return (np.round(np.asarray(values, np.float64) / (divisor * step)) * step).astype(np.int64)


class _Quantizer:
    """Turns chip integers into netx integers, recording (or refusing) every approximation."""

    def __init__(self, exact: bool):
        self.exact = exact
        self.notes: list[str] = []
        self.warnings: list[str] = []

    def weights(self, w_int: np.ndarray, wexp: int, layer: NeuronLayer, vth: int) -> np.ndarray:
        if np.all(w_int % 128 == 0):  # w_int = Wgt·2^6 with Wgt even: exponent 0
            out = w_int // 64
        else:
            out = _requantize(w_int, 64, 2)
            changed = int(np.count_nonzero(out * 64 != w_int))
            err = float(np.abs(out * 64 - w_int).max())
            msg = (f"layer {layer.name!r}: the discretizer gave its weights exponent {wexp} (its "
                   f"threshold or biases would overflow at exponent 0), but netx uses exponent "
                   f"0 with even 8-bit weights: {changed} of {w_int.size} weights were rounded "
                   f"to even values "
                   f"(largest change {err:g} = {err / vth:.2e} of the threshold per spike)")
            self._lossy(msg, layer.name)
        out = np.clip(out, _NETX_WEIGHT_MIN, _NETX_WEIGHT_MAX)
        return out

    def biases(self, bias_int: np.ndarray, layer: NeuronLayer, vth: int) -> np.ndarray:
        if np.all(bias_int % 64 == 0):
            return bias_int // 64
        out = _requantize(bias_int, 64, 1)
        changed = int(np.count_nonzero(out * 64 != bias_int))
        err = float(np.abs(out * 64 - bias_int).max())
        msg = (f"layer {layer.name!r}: netx fixes the bias exponent to 6, so {changed} of "
               f"{bias_int.size} biases were rounded to multiples of 64 (largest change "
               f"{err:g} = {err / vth:.2e} of the threshold per step)")
        self._lossy(msg, layer.name)
        return out

    def dense_for_netx(self, matrix: np.ndarray, layer: NeuronLayer, vth: int) -> None:
        """Report (or refuse) a dense matrix that NetX + Lava do not reproduce exactly."""
        lava = netx_dense_weights(matrix)
        if lava is None:
            raise ExportError(f"layer {layer.name!r}: all its weights are 0 in chip integers, and "
                              f"NetX cannot load an all-zero dense weight matrix (its weight "
                              f"optimiser divides by the largest weight); raise the layer's "
                              f"weights or keep it off the exported chip part", layer=layer.name)
        got, shift = lava
        want = np.asarray(matrix, np.int64) << shift
        if np.array_equal(got, want):
            return
        bad = got != want
        old, new = int(matrix[bad].flat[0]), got[bad].flat[0] / (1 << shift)
        err = float(np.abs(got - want).max()) / (1 << shift) * 64
        msg = (f"layer {layer.name!r}: all its weights are <= 0 and the most negative, "
               f"{int(matrix.min())}, is a power of two: NetX scales such a matrix to -256, "
               f"which Lava's bit-accurate dense model, taking it as inhibitory (8-bit "
               f"magnitudes up to 255), clips to -255 and truncates, so in Lava each spike "
               f"through {int(bad.sum())} of its {matrix.size} weights adds {new:g} instead of "
               f"{old} (x64; largest change {err:g} = {err / vth:.2e} of the threshold per spike)")
        self._lossy(msg, layer.name)

    def _lossy(self, msg: str, layer: str) -> None:
        if self.exact:
            raise ExportError(f"{msg}; exact export refused (drop exact/--exact to accept the "
                              f"rounding)", layer=layer)
        self.notes.append(msg)
        self.warnings.append(msg)


def _symmetric_padding(conn: Connection, layer: str) -> tuple[int, int]:
    """The conv's (H, W) padding, when netx's symmetric padding gives the same outputs."""
    kh, kw = conn.weights.shape[:2]
    pads = conn.padding_amounts()
    for d, (n_in, n_out, k, s, p) in enumerate(zip(conn.pre_shape[:2], conn.post_shape[:2],
                                                   (kh, kw), conn.strides, pads)):
        lava_out = (n_in + 2 * p - k) // s + 1
        if lava_out != n_out:
            total = max((n_out - 1) * s + k - n_in, 0)
            axis = ("rows", "columns")[d]
            raise ExportError(
                f"layer {layer!r}: its 'same' padding is asymmetric along the {axis} ({p} "
                f"before, {total - p} after: kernel {k}, stride {s}, input {n_in}), but netx "
                f"pads both sides equally; use padding='valid', an odd kernel with stride 1, "
                f"or an input size that makes the padding even", layer=layer)
    return pads


def netx_layers(network: SpikingNetwork, *, exact: bool = False, chip: ChipModel | None = None
                ) -> tuple[list[NetxLayer], list[str], list[str]]:
    """The netx layers of ``network``'s on-chip part.

    Parameters
    ----------
    network
        The converted network.
    exact
        Refuse (:class:`ExportError`) instead of requantizing biases or weights.
    chip
        An unsplit mapping of ``network`` (:func:`unsplit_chip`) if already at hand; a
        mapping with other block shapes is ignored (the layers are remapped unsplit).

    Returns
    -------
    layers, notes, warnings
        The layers (input first), remarks for the user, and the subset of remarks that
        are approximations (the caller turns them into :class:`ExportWarning`).

    Raises
    ------
    ExportError
        For an on-chip layer netx cannot express (a conv fed by a dense layer, a reshape
        between on-chip layers, asymmetric padding) or a refused approximation.
    """
    from ..mapping import chip_layers

    host, on_chip = chip_layers(network)
    _check_netx_chain(network, host, on_chip)
    chip = unsplit_chip(network, chip)
    quant = _Quantizer(exact)
    notes: list[str] = []

    first_conn = network.connections_into(on_chip[0].name)[0]
    in_shape = tuple(int(s) for s in first_conn.pre_shape)
    if first_conn.kind == "conv":
        h, w, c = in_shape
        layers = [NetxLayer("input", (c, h, w))]
        order = "a (W, H, C) array per step: our (H, W, C) spikes transposed (1, 0, 2)"
    else:
        n = int(np.prod(in_shape))
        layers = [NetxLayer("input", (n,))]
        order = "a flat array per step, in Keras channels-last order"
    host_name = host[-1].name
    notes.append(f"input: the spike train of the host layer {host_name!r} {tuple(host[-1].shape)} "
                 f"(0/1 per neuron and step), given to the Lava network as {order}")

    prev: NeuronLayer | None = None  # the previous on-chip layer (None: the input)
    for layer in on_chip:
        conn = network.connections_into(layer.name)[0]
        blocks = chip.blocks_of(layer.name)
        if len(blocks) != 1:  # pragma: no cover - unsplit_chip gives one block per layer
            raise ExportError(f"internal error: layer {layer.name!r} was mapped to {len(blocks)} "
                              f"blocks, expected 1", layer=layer.name)
        block = blocks[0]
        comp = block.compartments
        syn = block.synapses[0]
        vth = _uniform(comp.vth, "threshold", layer.name)
        neuron = {"iDecay": _uniform(comp.decay_u, "current decay", layer.name) + 1,
                  "vDecay": _uniform(comp.decay_v, "voltage decay", layer.name),
                  "vThMant": vth // 64,
                  "refDelay": _uniform(comp.refract_delay, "refractory delay", layer.name)}
        if neuron["refDelay"] > 1:
            msg = (f"layer {layer.name!r}: its refractory period of {neuron['refDelay'] - 1} "
                   f"step(s) (LIF tau_ref) is not modelled by Lava's CUBA neuron, so it will "
                   f"fire faster in Lava; retrain with tau_ref=0 for an exact match")
            notes.append(msg)
            quant.warnings.append(msg)
        bias_int = np.zeros(layer.n_neurons, np.int64)
        bias_int[block.neuron_ids] = comp.bias
        bias = quant.biases(bias_int, layer, vth)
        if np.abs(bias).max(initial=0) > _LAVA_BIAS_MANT_MAX:
            notes.append(f"layer {layer.name!r}: biases up to {int(np.abs(bias).max())} exceed "
                         f"the 13-bit bias mantissa (|bias| <= {_LAVA_BIAS_MANT_MAX}) that Lava's "
                         f"LIF documents; Lava's Python model accepts them, hardware may not")

        if conn.kind == "conv":
            if prev is not None and (len(prev.shape) != 3 or tuple(conn.pre_shape) != tuple(prev.shape)):
                why = ("the output of dense layer" if len(prev.shape) != 3
                       else "a reshaped view of layer")
                raise ExportError(
                    f"layer {layer.name!r}: a conv that reads {why} {prev.name!r} "
                    f"{tuple(prev.shape)} as an image {tuple(conn.pre_shape)} cannot be "
                    f"expressed in netx (no reshape layer); keep such layers off the exported "
                    f"chip part or remove the Reshape", layer=layer.name)
            pads = _symmetric_padding(conn, layer.name)
            kernel = quant.weights(conv_kernel_ints(block, syn, conn), syn.weight_exp, layer, vth)
            oh, ow, c_out = conn.post_shape
            per_pixel = bias.reshape(oh, ow, c_out)
            if not np.all(per_pixel == per_pixel[:1, :1, :]):
                raise ExportError(f"layer {layer.name!r}: its biases differ between pixels of "
                                  f"one channel; netx conv biases are per channel", layer=layer.name)
            kh, kw, c_in, _ = conn.weights.shape
            layers.append(NetxLayer(
                "conv", (c_out, oh, ow), layer.name,
                weight=kernel.transpose(3, 2, 0, 1).astype(np.int16),
                bias=per_pixel[0, 0].astype(np.int32), neuron=neuron,
                params={"inChannels": int(c_in), "outChannels": int(c_out),
                      "kernelSize": (int(kh), int(kw)),
                      "stride": tuple(int(s) for s in conn.strides),
                      "padding": tuple(int(p) for p in pads), "dilation": (1, 1), "groups": 1}))
        else:
            n_pre = int(conn.weights.shape[0])
            matrix = quant.weights(dense_matrix_ints(block, syn, n_pre), syn.weight_exp, layer, vth)
            if prev is not None and len(prev.shape) == 3:
                # netx flattens the previous (x, y, c) output as c·H·W + h·W + w
                hp, wp, cp = prev.shape
                layers.append(NetxLayer("flatten", (hp * wp * cp,)))
                matrix = matrix.reshape(hp, wp, cp, -1).transpose(2, 0, 1, 3).reshape(n_pre, -1)
            elif prev is not None and n_pre != prev.n_neurons:  # pragma: no cover - converter invariant
                raise ExportError(f"layer {layer.name!r}: reads {n_pre} inputs from "
                                  f"{prev.name!r} of {prev.n_neurons} neurons", layer=layer.name)
            quant.dense_for_netx(matrix, layer, vth)
            layers.append(NetxLayer(
                "dense", (layer.n_neurons,), layer.name, weight=matrix.T.astype(np.int16),
                bias=bias.astype(np.int32), neuron=neuron,
                params={"inFeatures": n_pre, "outFeatures": layer.n_neurons}))
        prev = layer

    split = [layer.name for layer in on_chip if not keeps_layer_integers(layer)]
    too_big = [layer.name for layer in on_chip if len(layer.shape) == 1 and any(
        e.startswith(f"layer {layer.name!r}") for e in chip.errors)]
    notes.append("every on-chip layer was discretized as one block (one threshold and weight "
                 "scale per layer, as netx needs); the emulator reproduces this file with block "
                 "shapes that keep all channels of each conv layer in every block and dense "
                 "layers whole (the layer shapes themselves rarely fit a core)"
                 + (f"; the tuned block shapes of {', '.join(repr(s) for s in split)} split "
                    f"channels or a dense layer and may give per-core scales instead"
                    if split else "")
                 + (f"; dense layer(s) {', '.join(repr(s) for s in too_big)} do not fit one "
                    f"core whole, so on the chip each of their blocks gets its own scale"
                    if too_big else ""))
    notes.extend(quant.notes)
    return layers, notes, quant.warnings


# ---------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------

def _string(group, key: str, value: str) -> None:
    group.create_dataset(key, (1,), "S10", [value.encode("ascii")])


def write_netx(layers: list[NetxLayer], path: Path, attrs: dict[str, Any] | None = None) -> None:
    """Write ``layers`` to a netx HDF5 file at ``path`` (h5py, imported here)."""
    import h5py

    with h5py.File(path, "w") as f:
        for key, value in (attrs or {}).items():
            f.attrs[key] = value
        root = f.create_group("layer")
        for i, layer in enumerate(layers):
            g = root.create_group(str(i))
            if layer.name:
                g.attrs["keras_name"] = layer.name
            _string(g, "type", layer.kind)
            g.create_dataset("shape", data=np.asarray(layer.shape, np.int64))
            if layer.kind in ("input", "flatten"):
                continue
            for key, value in layer.params.items():
                g.create_dataset(key, data=np.asarray(value, np.int64))
            g.create_dataset("weight", data=layer.weight)
            g.create_dataset("bias", data=layer.bias)
            n = g.create_group("neuron")
            _string(n, "type", "CUBA")
            for key, value in layer.neuron.items():
                n.create_dataset(key, data=np.int64(value))
            n.create_dataset("gradedSpike", data=np.bool_(False))


def export_lava_hdf5(network: SpikingNetwork, path, *, exact: bool = False,
                     chip: ChipModel | None = None) -> ExportResult:
    """Write the on-chip part of ``network`` as a Lava-dl NetX HDF5 network.

    Parameters
    ----------
    network
        A converted network (:func:`loihi_core.convert`); its first layer(s) are off chip.
    path
        The ``.net``/``.h5`` file to write (its folder must exist; replaced if present).
    exact
        Refuse to requantize biases (not multiples of 64) or weights (exponent ≠ 0)
        instead of rounding them with an :class:`ExportWarning`.
    chip
        An unsplit mapping to reuse (:func:`unsplit_chip`); computed when ``None`` or when
        it is a mapping with other block shapes (e.g. the tuned one).

    Returns
    -------
    ExportResult
        With per-layer summaries and notes (how to feed the input, what was rounded).

    Raises
    ------
    ExportError
        A layer netx cannot express, a refused approximation, or an unwritable path.
    """
    path = check_output_file(path)
    layers, notes, lossy = netx_layers(network, exact=exact, chip=chip)
    for msg in lossy:
        warnings.warn(msg, ExportWarning, stacklevel=2)
    from ..mapping import chip_layers

    host, _ = chip_layers(network)
    attrs = {"generator": f"Loihi Studio {__version__}", "input_layer": host[-1].name,
             "dt": float(network.dt), "presentation_steps": int(network.presentation_steps),
             "model_sha256": network.model_sha256 or ""}
    atomic_write(path, lambda tmp: write_netx(layers, tmp, attrs))
    return ExportResult("lava-hdf5", [path], notes, [layer.summary() for layer in layers])


def _check_netx_chain(network, host, on_chip) -> None:
    """NetX describes a chain of layers (no merge): refuse a graph, naming the merge."""
    previous = host[-1].name if host else network.input_name
    if len(host) != 1 or host[0].is_input_encoder:
        raise ExportError(
            f"the Lava-dl NetX format takes one host layer's spikes as its input; this network "
            f"has {len(host)} ({', '.join(h.name for h in host)})"
            + (" (the on-chip first layer's input encoder)" if host and host[0].is_input_encoder
               else ""), layer=host[0].name if host else None)
    for layer in on_chip:
        conns = network.connections_into(layer.name)
        if len(conns) != 1:
            raise ExportError(
                f"layer {layer.name!r} merges {len(conns)} connections (from "
                f"{', '.join(c.pre for c in conns)}): Lava-dl NetX describes a chain of layers "
                f"and has no merge; export the tuned config as JSON, or run the network in "
                f"loihi-studio's emulator", layer=layer.name)
        conn = conns[0]
        if conn.pre != previous:
            raise ExportError(
                f"layer {layer.name!r} reads {conn.pre!r}, not the layer before it "
                f"({previous!r}): Lava-dl NetX describes a chain of layers", layer=layer.name)
        if conn.kind == "sparse" or conn.groups != 1:
            raise ExportError(
                f"layer {layer.name!r}: a {conn.kind} connection with groups={conn.groups} has "
                f"no NetX layer type (Dense or Conv)", layer=layer.name)
        previous = layer.name
    if network.readout.more_terms:
        raise ExportError(f"the readout {network.readout.name!r} reads several layers: NetX "
                          f"describes a chain", layer=network.readout.name)

