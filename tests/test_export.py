"""Deployment exports (issue 6): Lava-dl NetX HDF5, the NengoDL/NengoLoihi script, JSON.

The NetX files are judged by ``tests/lava_reader.py``, an independent h5py reader that
checks the layout netx needs and runs Lava's bit-accurate CUBA step. Lava itself, NengoDL
and NengoLoihi are not installed (NengoLoihi 1.1 does not run on NumPy 2): the script is
checked by compiling it, reading its constants, and running its Keras half here.
The Keras-based tests share one module-scoped TensorFlow import (about 6 s).
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import warnings

import h5py
import numpy as np
import pytest

from loihi_core import cli
from loihi_core.config import TunedConfig
from loihi_core.emulator import Emulator
from loihi_core.errors import LoihiStudioError
from loihi_core.export import (FORMATS, NETX_DIFFERENCES, ExportError, ExportWarning, export,
                               export_json, export_lava_hdf5)
from loihi_core.export.lava import _Quantizer, netx_dense_weights, unsplit_chip
from loihi_core.graph import file_sha256
from loihi_core.mapping import map_to_chip
from loihi_core.network import Connection, NeuronLayer, Readout, SpikingNetwork
from loihi_core.neurons import LoihiLIF, LoihiSpikingRectifiedLinear
from lava_reader import LayoutError, read_netx, run_cuba
from refcases import CASES, case_config, load_case, reference_network


def _quiet_export(network, path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExportWarning)
        return export_lava_hdf5(network, path, **kwargs)


# ---------------------------------------------------------------------------------------
# the file's integers are the discretized blocks of an unsplit mapping
# ---------------------------------------------------------------------------------------

def _netx_index(shape: tuple[int, ...], ids: np.ndarray) -> np.ndarray:
    """Position in netx's (C, H, W) flattening of channels-last neuron ids of ``shape``."""
    if len(shape) == 1:
        return ids
    h, w, c = shape
    y, rem = np.divmod(ids, w * c)
    x, ch = np.divmod(rem, c)
    return (ch * h + y) * w + x


@pytest.mark.parametrize("case", CASES)
def test_file_integers_equal_the_unsplit_blocks(case, tmp_path):
    """Walk every axon of every unsplit block and find each weight it adds in the file.

    The walk follows the chip's routing (pre neuron → axon, atom → weight row → target
    compartments), so it checks the exporter's kernel/matrix reconstruction, the Keras →
    (out, in, kH, kW) transpose and the C·H·W column order independently of the exporter.
    """
    net = reference_network(case)
    _quiet_export(net, tmp_path / "net.net")
    layers = read_netx(tmp_path / "net.net")
    chip = unsplit_chip(net)
    chip_names = [layer.name for layer in net.on_chip_layers]
    neuron_layers = [layer for layer in layers if layer.kind in ("conv", "dense")]
    assert [layer.kind for layer in layers][0] == "input"
    assert len(neuron_layers) == len(chip_names)
    for name, nx in zip(chip_names, neuron_layers):
        (block,) = chip.blocks_of(name)
        comp, syn = block.compartments, block.synapses[0]
        conn = net.connections_into(name)[0]
        post = net.layers[name]
        assert nx.neuron["vThMant"] * 64 == comp.vth[0] and np.all(comp.vth == comp.vth[0])
        assert nx.neuron["iDecay"] - 1 == comp.decay_u[0] and nx.neuron["vDecay"] == comp.decay_v[0]
        assert nx.neuron["refDelay"] == comp.refract_delay[0]
        # biases: exact where the chip's bias is a multiple of 64, else rounded to one
        bias_int = np.zeros(post.n_neurons, np.int64)
        bias_int[block.neuron_ids] = comp.bias
        # conv biases are per channel: channels-last neuron (y·W + x)·C + c gets bias[c]
        file_bias = np.tile(nx.bias, post.n_neurons // nx.bias.size)
        exact = bias_int % 64 == 0
        np.testing.assert_array_equal(file_bias[exact] * 64, bias_int[exact])
        assert np.all(np.abs(file_bias * 64 - bias_int) <= 32)
        # weights, by walking the routing
        pre_shape = tuple(conn.pre_shape)
        prev = net.layers[conn.pre]
        n_checked = 0
        for n in range(int(np.prod(pre_shape))):
            a = syn.pre_axon[n]
            if a < 0 or syn.axon_base[a] < 0:
                continue
            ws, atom = syn.axon_weight_set[a], syn.pre_atom[n]
            w_int = syn.weights[ws][atom]
            ids = block.neuron_ids[syn.axon_base[a] + syn.indices[ws][atom]]
            if conn.kind == "dense":
                col = _netx_index(tuple(prev.shape), np.array([n]))[0] if prev.on_chip else n
                got = nx.weight[ids, col]
            else:
                oh, ow, f = conn.post_shape
                y, rem = np.divmod(ids, ow * f)
                x, ff = np.divmod(rem, f)
                i, j = divmod(n // pre_shape[2], pre_shape[1])
                pr, pc = nx.padding
                got = nx.weight[ff, atom, i + pr - y * nx.stride[0], j + pc - x * nx.stride[1]]
            np.testing.assert_array_equal(got * 64, w_int, err_msg=f"{case} {name} pre {n}")
            n_checked += w_int.size
        assert n_checked > 0


@pytest.mark.parametrize("case", ["conv_relu", "tutorial_random"])
def test_file_weights_are_the_keras_kernels_in_netx_orientation(case, tmp_path):
    """Against the *float* Keras weights: file ≈ (255 / max|W|) · W within the 8-bit rounding
    (±1), with conv kernels as (out, in, kH, kW) and dense columns in C·H·W order."""
    net = reference_network(case)
    ref = load_case(case)
    _quiet_export(net, tmp_path / "net.net")
    layers = [layer for layer in read_netx(tmp_path / "net.net") if layer.kind != "flatten"][1:]
    for layer, nx in zip(net.on_chip_layers, layers):
        kernel = ref.arrays[f"weights/{layer.name}/kernel"].astype(np.float64)
        if nx.kind == "conv":
            expected = kernel.transpose(3, 2, 0, 1)
        else:
            pre = net.layers[net.connections_into(layer.name)[0].pre]
            expected = kernel.T
            if len(pre.shape) == 3:
                h, w, c = pre.shape
                expected = kernel.reshape(h, w, c, -1).transpose(3, 2, 0, 1).reshape(kernel.shape[1], -1)
        scaled = expected * (255.0 / np.abs(kernel).max())
        assert nx.weight.shape == scaled.shape
        assert np.abs(nx.weight - scaled).max() <= 1.0 + 1e-4, layer.name


def test_layout_matches_the_netx_format(tmp_path):
    path = tmp_path / "conv.net"
    result = _quiet_export(reference_network("conv_relu"), path)
    layers = read_netx(path)
    assert [(x.kind, x.shape) for x in layers] == [
        ("input", (3, 10, 10)), ("conv", (8, 4, 4)), ("conv", (8, 4, 4)), ("flatten", (128,)),
        ("dense", (16,))]
    assert layers[2].padding == (1, 1) and layers[1].stride == (2, 2)  # conv1 is 'same' 3x3
    with h5py.File(path) as f:
        assert f["layer/1/type"].dtype == np.dtype("S10") and f["layer/1/type"].shape == (1,)
        assert f["layer/1/type"][0] == b"conv" and f["layer/4/neuron/type"][0] == b"CUBA"
        assert f["layer/1/weight"].dtype == np.int16 and f["layer/1/bias"].dtype == np.int32
        assert f["layer/1/weight"].shape == (8, 3, 3, 3) and f["layer/1/bias"].shape == (8,)
        assert f["layer/4/weight"].shape == (16, 128) and f["layer/4/bias"].shape == (16,)
        assert f["layer/1/neuron/iDecay"][()] == 390  # synapse 0.01 → decay_u 389, + 1
        assert "neuron" not in f["layer/0"] and f.attrs["input_layer"] == "to_spikes"
        assert f["layer/1"].attrs["keras_name"] == "conv0"
        names: list[str] = []
        f.visit(names.append)
    assert not any("pool" in n or "messageBits" in n for n in names)
    assert [d["type"] for d in result.layers] == ["input", "conv", "conv", "flatten", "dense"]
    assert any("(W, H, C)" in note for note in result.notes)


def _same_files(a, b) -> None:
    for x, y in zip(read_netx(a), read_netx(b), strict=True):
        assert (x.kind, x.shape, x.neuron, x.stride, x.padding) == (y.kind, y.shape, y.neuron,
                                                                    y.stride, y.padding)
        for u, v in ((x.weight, y.weight), (x.bias, y.bias)):
            if u is not None or v is not None:
                np.testing.assert_array_equal(u, v)


def test_a_tuned_split_mapping_is_not_used_for_the_file(tmp_path):
    """netx needs one parameter set per layer: a chip mapped with the tuned block shapes
    (conv0 in 4 blocks, conv1 in 2) is set aside and the layers are remapped unsplit."""
    net = reference_network("conv_relu")
    tuned = map_to_chip(net)
    assert len(tuned.blocks_of("conv0")) == 4 and len(tuned.blocks_of("conv1")) == 2
    result = _quiet_export(net, tmp_path / "tuned.net", chip=tuned)
    _quiet_export(net, tmp_path / "plain.net")
    _same_files(tmp_path / "tuned.net", tmp_path / "plain.net")
    # conv0's tuned tiles (2, 2, 8) keep all 8 channels: the same integers as the file;
    # conv1's (4, 4, 4) split its channels
    note = next(n for n in result.notes if "discretized as one block" in n)
    assert "block shapes of 'conv1' split channels" in note and "'conv0'" not in note


def test_reader_rejects_what_netx_cannot_read(tmp_path):
    """The reader is not vacuous: each defect of a good file is caught."""
    good = tmp_path / "good.net"
    _quiet_export(reference_network("conv_relu"), good)

    def broken(edit, match):
        path = tmp_path / "bad.net"
        shutil.copy(good, path)
        with h5py.File(path, "r+") as f:
            edit(f)
        with pytest.raises(LayoutError, match=match):
            read_netx(path)

    def odd_weight(f):
        w = f["layer/1/weight"][()]
        w[0, 0, 0, 0] = 3
        f["layer/1/weight"][...] = w

    def as_pool(f):
        del f["layer/1/type"]
        f["layer/1"].create_dataset("type", (1,), "S10", [b"pool"])

    def float_weight(f):
        w = f["layer/4/weight"][()].astype(np.float32)
        del f["layer/4/weight"]
        f["layer/4"].create_dataset("weight", data=w)

    def drop_flatten(f):
        f.move("layer/4", "layer/3x")
        del f["layer/3"]
        f.move("layer/3x", "layer/3")

    def wrong_shape(f):
        f["layer/2/shape"][...] = np.array([8, 5, 5])

    broken(lambda f: f["layer/1/neuron"].create_dataset("messageBits", data=0), "messageBits")
    broken(odd_weight, "even")
    broken(as_pool, "pool")
    broken(float_weight, "integer")
    broken(lambda f: f["layer/4/neuron"].__delitem__("vThMant"), "vThMant")
    broken(drop_flatten, "flatten")
    broken(wrong_shape, "does not follow")


# ---------------------------------------------------------------------------------------
# round trip: the file, run by Lava's CUBA step, equals our emulator spike for spike
# ---------------------------------------------------------------------------------------

def _layer(name, shape, neuron, gain, on_chip, synapse, bias=None):
    n = int(np.prod(shape))
    return NeuronLayer(name=name, shape=shape, neuron=neuron, gain=float(gain),
                       bias=np.zeros(n) if bias is None else bias,
                       amplitude=neuron.amplitude / gain, on_chip=on_chip, synapse=synapse)


RELU_GAINS = {"conv0": 80, "conv1": 20, "dense0": 5, "dense1": 1}
#: LIF saturates unless J stays near its threshold 1: the gain ratio between layers sets J
LIF_GAINS = {"conv0": 3, "conv1": 3 / 400, "dense0": 3 / 400 / 800, "dense1": 3 / 400 / 800 / 150}


def roundtrip_network(neuron, synapse, signed: bool, seed: int = 0, gains=None) -> SpikingNetwork:
    """Input (8, 8, 1) → host 1×1 conv (8, 8, 2) → conv 3×3 'same' (8, 8, 4) → conv 3×3/2
    (3, 3, 6) → flatten → dense 12 → dense 6 → readout 3.

    Weights are uniform in [0, 1) (``signed``: [-0.6, 1)); ``gains`` are the on-chip
    scales. Biases are small non-negative multiples of 64 in chip units, so that netx holds
    them exactly: a second pass sets them from each layer's bias scale."""
    rng = np.random.default_rng(seed)
    lo = -0.6 if signed else 0.0
    gains = RELU_GAINS if gains is None else gains

    def w(*shape):
        return rng.uniform(lo, 1.0, shape).astype(np.float32)

    host = LoihiSpikingRectifiedLinear()
    layers = {
        "to_spikes": _layer("to_spikes", (8, 8, 2), host, 300, False, synapse),
        "conv0": _layer("conv0", (8, 8, 4), neuron, gains["conv0"], True, synapse),
        "conv1": _layer("conv1", (3, 3, 6), neuron, gains["conv1"], True, synapse),
        "dense0": _layer("dense0", (12,), neuron, gains["dense0"], True, synapse),
        "dense1": _layer("dense1", (6,), neuron, gains["dense1"], True, synapse),
    }
    conns = [
        Connection("img", "to_spikes", "conv", rng.uniform(0.3, 1.0, (1, 1, 1, 2)).astype(np.float32),
                   (8, 8, 1), (8, 8, 2)),
        Connection("to_spikes", "conv0", "conv", w(3, 3, 2, 4), (8, 8, 2), (8, 8, 4),
                   padding="same", synapse=synapse),
        Connection("conv0", "conv1", "conv", w(3, 3, 4, 6), (8, 8, 4), (3, 3, 6), strides=(2, 2),
                   synapse=synapse),
        Connection("conv1", "dense0", "dense", w(54, 12), (54,), (12,), synapse=synapse),
        Connection("dense0", "dense1", "dense", w(12, 6), (12,), (6,), synapse=synapse),
    ]
    readout = Readout("out", "dense1", rng.normal(0, 1, (6, 3)).astype(np.float32), None, (3,))
    net = SpikingNetwork("img", (8, 8, 1), layers, conns, readout, presentation_steps=40)
    chip = unsplit_chip(net)
    for name in ("conv0", "conv1", "dense0", "dense1"):
        layer = layers[name]
        b_scale = chip.blocks_of(name)[0].compartments.info["b_scale"]
        per = rng.integers(0, 4, layer.shape[-1]) * 64 / b_scale  # per channel (conv) / neuron
        layer.bias = np.broadcast_to(per, layer.shape).reshape(-1).astype(np.float64)
    return net


def _emulate_and_run_file(net, path, images, vmin=None):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExportWarning)  # nothing may be rounded here
        export_lava_hdf5(net, path)
    layers = read_netx(path)
    emu = Emulator(unsplit_chip(net))
    result = emu.run(images, mode="independent", record="all")
    runs = []
    for i in range(len(images)):
        host = np.minimum(result.spikes["to_spikes"][i], 1).reshape(-1, 8, 8, 2)
        runs.append(run_cuba(layers, host.transpose(0, 3, 1, 2), vmin=vmin))
    return result, runs


def _compare(net, result, runs) -> tuple[int, int]:
    """``(spikes compared, mismatches)`` over every on-chip layer, image and step."""
    total = mismatches = 0
    for k, layer in enumerate(net.on_chip_layers):
        for i, run in enumerate(runs):
            got = run.spikes[k]
            if got.ndim == 4:  # (T, C, H, W) → channels-last like the emulator
                got = got.transpose(0, 2, 3, 1)
            got = got.reshape(got.shape[0], -1)
            want = result.spikes[layer.name][i]
            total += int(want.sum())
            mismatches += int(np.count_nonzero(got != want))
    return total, mismatches


@pytest.mark.parametrize("kind", ["relu", "lif"])
def test_roundtrip_spikes_equal_the_emulator(kind, tmp_path):
    """What is compared: every spike of every on-chip layer (conv 'same', conv stride 2,
    flatten → dense, dense), at every step of 2 images × 40 steps (independent mode), between
    our emulator on the unsplit mapping and ``run_cuba`` on the exported file, fed the
    emulator's own host-layer spikes.

    Why they must coincide exactly: with non-negative weights and biases the voltage never
    goes below 0, so NengoLoihi's vmin = 0 clamp never acts; relu neurons and LIF neurons
    with tau_ref = 0 have no refractory period (refract_delay 1); the current decay is
    ``trunc(u·(4095 − decay_u)/4096)`` in both (iDecay = decay_u + 1), the voltage decay
    ``trunc(v·(4096 − decay_v)/4096)``, bias ``bias·64``, threshold ``vThMant·64`` with a
    strict ``>`` and reset to 0; no value reaches the 21-bit input wrap (asserted); and both
    deliver a layer's spikes of step t − 1 at step t (the host layer's too). "relu" uses
    LoihiSpikingRectifiedLinear with synapse None (iDecay 4095: u ≈ this step's input);
    "lif" uses LoihiLIF(tau_rc=0.02, tau_ref=0) with a 5 ms synapse (iDecay 742, vDecay 200).
    """
    if kind == "relu":
        neuron, synapse = LoihiSpikingRectifiedLinear(), None
    else:
        neuron, synapse = LoihiLIF(tau_rc=0.02, tau_ref=0.0), 0.005
    net = roundtrip_network(neuron, synapse, signed=False, seed=3,
                            gains=RELU_GAINS if kind == "relu" else LIF_GAINS)
    images = np.random.default_rng(4).uniform(0, 1, (2, 8, 8, 1)).astype(np.float32)
    result, runs = _emulate_and_run_file(net, tmp_path / "rt.net", images)
    layers = read_netx(tmp_path / "rt.net")
    assert layers[1].neuron["iDecay"] == (4095 if kind == "relu" else 742)
    assert layers[1].neuron["vDecay"] == (0 if kind == "relu" else 200)
    total, mismatches = _compare(net, result, runs)
    assert mismatches == 0
    for layer in net.on_chip_layers:  # every layer fires, not every step, not in lockstep
        counts = result.spike_counts[layer.name]
        trains = result.spikes[layer.name][0].T  # (neurons, steps)
        assert 0 < counts.sum() < 0.6 * counts.size * 40, layer.name
        assert len(np.unique(trains, axis=0)) > 3, layer.name
    assert total > 1000
    for run in runs:
        assert run.max_abs_input < 2**21 and run.max_abs_current < 2**23 and run.min_voltage >= 0


def test_with_mixed_sign_weights_only_the_vmin_clamp_differs(tmp_path):
    """With negative weights voltages go below 0: Lava's CUBA (no clamp) then diverges from
    the emulator, and adding NengoLoihi's vmin = 0 clamp to it restores every spike."""
    net = roundtrip_network(LoihiSpikingRectifiedLinear(), None, signed=True, seed=5)
    images = np.random.default_rng(6).uniform(0, 1, (2, 8, 8, 1)).astype(np.float32)
    result, clamped = _emulate_and_run_file(net, tmp_path / "mixed.net", images, vmin=0)
    total, mismatches = _compare(net, result, clamped)
    assert total > 500 and mismatches == 0
    layers = read_netx(tmp_path / "mixed.net")
    host = [np.minimum(result.spikes["to_spikes"][i], 1).reshape(-1, 8, 8, 2).transpose(0, 3, 1, 2)
            for i in range(len(images))]
    lava = [run_cuba(layers, h) for h in host]
    assert min(run.min_voltage for run in lava) < 0
    assert _compare(net, result, lava)[1] > 0


def test_blocks_that_keep_all_channels_reproduce_the_file(tmp_path):
    """The file is discretized per layer. The layer shapes as block shapes cannot be run
    (a whole tutorial conv layer does not fit a core: the emulator refuses it), but tiles
    that keep every channel of a conv layer, with dense layers whole, give every block the
    unsplit layer's scales, so the emulator on that runnable mapping gives exactly the
    file's spikes (compared with ``run_cuba`` on the file, every spike of every layer)."""
    net = roundtrip_network(LoihiSpikingRectifiedLinear(), None, signed=False, seed=3)
    tiles = {"conv0": (4, 4, 4), "conv1": (2, 3, 6)}  # 4 and 2 blocks, all channels each
    tiled = map_to_chip(net, block_shapes=tiles, raise_on_overflow=False)
    assert not tiled.errors
    assert len(tiled.blocks_of("conv0")) == 4 and len(tiled.blocks_of("conv1")) == 2
    images = np.random.default_rng(4).uniform(0, 1, (2, 8, 8, 1)).astype(np.float32)
    result, runs = _emulate_and_run_file(net, tmp_path / "rt.net", images)
    on_tiles = Emulator(tiled).run(images, mode="independent", record="all")
    for name in ("conv0", "conv1", "dense0", "dense1"):
        np.testing.assert_array_equal(on_tiles.spikes[name], result.spikes[name], err_msg=name)
    total, mismatches = _compare(net, on_tiles, runs)
    assert total > 1000 and mismatches == 0

    tutorial = reference_network("tutorial_random")
    unsplit = unsplit_chip(tutorial)
    assert any("conv0" in e and "exceed the per-core max 1024" in e for e in unsplit.errors)
    with pytest.raises(ValueError, match="over-limit blocks and cannot run"):
        Emulator(unsplit)
    channels = map_to_chip(tutorial, block_shapes={"conv0": (4, 8, 32), "conv1": (2, 2, 64),
                                                   "dense0": (50,)}, raise_on_overflow=False)
    assert not channels.errors
    for name in ("conv0", "conv1", "dense0"):
        (whole,) = unsplit.blocks_of(name)
        for block in channels.blocks_of(name):
            c, u = block.compartments, whole.compartments
            same = (c.info["v_scale"] == u.info["v_scale"] and c.info["w_exp"] == u.info["w_exp"]
                    and np.all(c.vth == u.vth[0]))
            # conv tiles with all channels: every block as the file; dense0 must be split
            # (100 neurons need 2.06 M synapse bits): its blocks get their own scales
            assert same == (name != "dense0") or block is channels.blocks_of(name)[-1], name
        if name != "dense0":
            np.testing.assert_array_equal(
                np.concatenate([b.compartments.bias for b in channels.blocks_of(name)])[
                    np.argsort(np.concatenate([b.neuron_ids for b in channels.blocks_of(name)]))],
                whole.compartments.bias[np.argsort(whole.neuron_ids)])
    result = _quiet_export(tutorial, tmp_path / "tut.net")
    note = next(n for n in result.notes if "discretized as one block" in n)
    assert "dense layer(s) 'dense0' do not fit one core whole" in note


@pytest.mark.parametrize("weights, per_spike", [
    # all < 0, most negative -2^7: NetX shifts by 1 to -256, Lava clips to -255, truncates
    # 2 bits (the weights share 1 zero bit, plus the shift): -252 >> 1 = -126
    ([[-128, -64, -2]], [[-126, -64, -2]]),
    ([[-64, -64, -32]], [[-32, -32, -32]]),  # shared bits 5: -64 + 2^5
    ([[-2, -2]], [[0, 0]]),                  # the whole 8 bits truncated: the weights vanish
    ([[0, -128]], [[0, -64]]),               # a 0 makes NetX take it as mixed: -128 + 2^(7-1)
    ([[-254, -2]], [[-254, -2]]),            # most negative not a power of two: exact
    ([[-128, 64]], [[-128, 64]]),            # any positive weight: mixed in both, exact
    ([[2, 128]], [[2, 128]]),                # excitatory, exact
    ([[-254, 254, 0]], [[-254, 254, 0]]),
])
def test_netx_dense_weights_follow_netx_and_lava(weights, per_spike):
    """``netx_dense_weights`` reproduces, on integers, NetX's optimiser and Lava's
    bit-accurate dense model; what Lava adds per spike is ``weights >> shift``, exact
    multiples here (every weight keeps at least ``shift`` zero bits)."""
    got, shift = netx_dense_weights(np.array(weights))
    assert np.all(got % (1 << shift) == 0)
    np.testing.assert_array_equal(got >> shift, per_spike)
    assert netx_dense_weights(np.zeros((3, 2), np.int64)) is None  # NetX cannot load it


def test_all_non_positive_dense_layer_is_reported_or_refused(tmp_path):
    """All weights of 'a' <= 0 at weight exponent -1: requantized to even 8-bit weights
    whose most negative is -128 (some round to 0), which NetX shifts to -256 and Lava clips
    to -255, i.e. -127 per spike: reported with the numbers, refused with exact=True; an
    all-zero dense layer cannot be loaded by NetX."""
    net = _dense_network((1000, 1))
    conn = net.connections_into("a")[0]
    conn.weights = -conn.weights
    with pytest.warns(ExportWarning) as caught:
        result = export_lava_hdf5(net, tmp_path / "neg.net")
    texts = [str(w.message) for w in caught]
    netx = [t for t in texts if "NetX scales such a matrix to -256" in t]
    assert len(netx) == 1 and "layer 'a'" in netx[0]
    assert "most negative, -128, is a power of two" in netx[0] and "adds -127 instead of -128" in netx[0]
    assert netx[0] in result.notes
    written = read_netx(tmp_path / "neg.net")[1].weight
    got, shift = netx_dense_weights(written)
    assert written.min() == -128 and written.max() == 0 and np.any(got >> shift != written)
    with pytest.raises(ExportError, match="exact export refused"):
        export_lava_hdf5(net, tmp_path / "neg2.net", exact=True)
    with pytest.raises(ExportError, match="NetX scales such a matrix") as info:
        _Quantizer(exact=True).dense_for_netx(np.array([[-128, -2]]), net.layers["a"], 64 * 100)
    assert info.value.layer == "a"
    conn.weights = np.zeros_like(conn.weights)
    with pytest.raises(ExportError, match="NetX cannot load an all-zero dense weight matrix"):
        _quiet_export(net, tmp_path / "zero.net")
    assert not (tmp_path / "zero.net").exists()


# ---------------------------------------------------------------------------------------
# approximations and errors
# ---------------------------------------------------------------------------------------

def test_biases_that_are_not_multiples_of_64_are_rounded_with_a_warning(tmp_path):
    net = reference_network("dense_relu")
    with pytest.warns(ExportWarning, match="bias exponent to 6"):
        result = export_lava_hdf5(net, tmp_path / "d.net")
    (block,) = unsplit_chip(net).blocks_of("hidden")
    nx = read_netx(tmp_path / "d.net")[1]
    expected = np.zeros(32, np.int64)
    expected[block.neuron_ids] = np.round(block.compartments.bias / 64)
    np.testing.assert_array_equal(nx.bias, expected)
    assert any("rounded to multiples of 64" in n for n in result.notes)
    with pytest.raises(ExportError, match="exact export refused"):
        export_lava_hdf5(net, tmp_path / "exact.net", exact=True)
    assert not (tmp_path / "exact.net").exists()


@pytest.mark.filterwarnings("ignore:.*bias exponent")
def test_lif_refractory_period_is_reported(tmp_path):
    with pytest.warns(ExportWarning, match="refractory period of 2 step"):
        export_lava_hdf5(reference_network("dense_lif"), tmp_path / "lif.net")
    assert read_netx(tmp_path / "lif.net")[1].neuron["refDelay"] == 3


def _dense_network(gains, n=(20, 16, 8), seed=0, conv_after=None) -> SpikingNetwork:
    rng = np.random.default_rng(seed)
    neuron = LoihiSpikingRectifiedLinear()
    layers = {"h": _layer("h", (n[0],), neuron, gains[0], False, None),
              "a": _layer("a", (n[1],), neuron, gains[1], True, None)}
    conns = [Connection("x", "h", "dense", rng.uniform(0, 1, (6, n[0])).astype(np.float32), (6,), (n[0],)),
             Connection("h", "a", "dense", rng.uniform(0, 1, (n[0], n[1])).astype(np.float32),
                        (n[0],), (n[1],))]
    last = "a"
    if conv_after is not None:  # a conv reading the dense layer "a" as an image
        shape_in, shape_out = conv_after
        layers["c"] = _layer("c", shape_out, neuron, 10, True, None)
        conns.append(Connection("a", "c", "conv", rng.uniform(0, 1, (3, 3, shape_in[2], shape_out[2]))
                                .astype(np.float32), shape_in, shape_out))
        last = "c"
    readout = Readout("out", last, None, None, layers[last].shape)
    return SpikingNetwork("x", (6,), layers, conns, readout)


def test_weight_exponent_below_zero_is_requantized_to_exponent_zero(tmp_path):
    """Host gain 1000 and chip gain 1 make chip weights ~1, so the threshold 1000·v_scale
    overflows at exponent 0 and the discretizer picks -1: the chip adds ``m·64`` per spike
    (``m`` the 7-bit mantissa, odd or even), and netx's even 8-bit weights at exponent 0
    can only hold ``m`` rounded to even."""
    net = _dense_network((1000, 1))
    (block,) = unsplit_chip(net).blocks_of("a")
    syn = block.synapses[0]
    assert block.compartments.info["w_exp"] == -1 and syn.weight_exp == -1
    with pytest.warns(ExportWarning, match="exponent -1"):
        export_lava_hdf5(net, tmp_path / "w.net")
    nx = read_netx(tmp_path / "w.net")[1]
    w_int = np.stack([syn.weights[ws][0] for ws in syn.axon_weight_set])  # (pre, post)
    np.testing.assert_array_equal(nx.weight.T, 2 * np.round(w_int / 128))
    assert np.all(w_int % 64 == 0) and np.any(w_int % 128 != 0)  # odd mantissas: rounded
    with pytest.raises(ExportError, match="exponent -1"):
        export_lava_hdf5(net, tmp_path / "w2.net", exact=True)


def test_layers_netx_cannot_express_are_refused(tmp_path):
    net = _dense_network((20, 20), n=(20, 36, 8), conv_after=((6, 6, 1), (4, 4, 2)))
    with pytest.raises(ExportError, match="layer 'c'.*cannot be expressed in netx") as info:
        _quiet_export(net, tmp_path / "x.net")
    assert info.value.layer == "c" and isinstance(info.value, LoihiStudioError)
    # 'same' padding with stride 2 on an even input pads 0 before and 1 after
    net = roundtrip_network(LoihiSpikingRectifiedLinear(), None, signed=False)
    conv1 = net.connections_into("conv1")[0]
    conv1.padding, conv1.post_shape = "same", (4, 4, 6)
    net.layers["conv1"].shape = (4, 4, 6)
    net.layers["conv1"].bias = np.zeros(96)
    dense0 = net.connections_into("dense0")[0]
    dense0.weights, dense0.pre_shape = np.ones((96, 12), np.float32), (96,)
    with pytest.raises(ExportError, match="asymmetric along the rows"):
        _quiet_export(net, tmp_path / "y.net")
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_bad_formats_and_paths_are_clear_errors(tmp_path):
    net = reference_network("dense_relu")
    with pytest.raises(ExportError, match="unknown export format 'onnx'; expected one of "
                                          "lava-hdf5, nengo-loihi, json"):
        export(None, None, tmp_path / "x", "onnx")
    with pytest.raises(ExportError, match="does not exist; create it first"):
        _quiet_export(net, tmp_path / "missing" / "net.net")
    with pytest.raises(ExportError, match="is a directory"):
        _quiet_export(net, tmp_path)
    assert FORMATS == ("lava-hdf5", "nengo-loihi", "json")
    assert any("vmin" in d for d in NETX_DIFFERENCES) and any("refractory" in d for d in NETX_DIFFERENCES)


def test_json_is_the_configs_own_bytes(tmp_path):
    cfg = TunedConfig().with_defaults(scale_firing_rates=80, synapse=0.005).with_layer(
        "conv0", block_shape=[4, 4, 8])
    export_json(cfg, tmp_path / "c.json")
    assert (tmp_path / "c.json").read_bytes() == cfg.to_json().encode("utf-8")
    export_json(cfg.to_dict(), tmp_path / "d.json")
    assert (tmp_path / "d.json").read_bytes() == cfg.to_json().encode("utf-8")


# ---------------------------------------------------------------------------------------
# from .keras files: the CLI and the NengoLoihi script (TensorFlow, imported once)
# ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return pytest.importorskip("keras")




def test_cli_exports_the_reference_keras_model(keras, tmp_path, capsys):
    ref = load_case("conv_relu")
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(case_config("conv_relu")))
    out = tmp_path / "conv.net"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExportWarning)
        rc = cli.main(["export", str(ref.keras_path), "--config", str(cfg), "--format",
                       "lava-hdf5", "--out", str(out)])
    text = capsys.readouterr()
    assert rc == 0 and str(out) in text.out and "rounded to multiples of 64" in text.err
    _quiet_export(reference_network("conv_relu"), tmp_path / "direct.net")
    _same_files(out, tmp_path / "direct.net")  # the .keras path gives the reference's file
    with h5py.File(out) as f:
        assert f.attrs["model_sha256"] == file_sha256(ref.keras_path)
    # json: the config's canonical bytes
    rc = cli.main(["export", str(ref.keras_path), "--config", str(cfg), "--format", "json",
                   "--out", str(tmp_path / "tuned.json")])
    assert rc == 0
    assert (tmp_path / "tuned.json").read_bytes() == TunedConfig.from_dict(
        case_config("conv_relu")).to_json().encode("utf-8")


def test_cli_errors_exit_2_with_a_message(keras, tmp_path, capsys):
    ref = load_case("dense_relu")
    rc = cli.main(["export", str(ref.keras_path), "--format", "lava-hdf5", "--out",
                   str(tmp_path / "nope" / "x.net")])
    assert rc == 2
    assert "loihi-studio export: error:" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        cli.main(["export", str(ref.keras_path), "--format", "onnx", "--out", "x"])
    assert info.value.code == 2
    rc = cli.main(["export", str(ref.keras_path), "--format", "json", "--out",
                   str(tmp_path / "c.json"), "--config", json.dumps(
                       {"schema_version": 1, "layers": {"nosuch": {"on_chip": True}}})])
    assert rc == 2 and "nosuch" in capsys.readouterr().err
    assert not (tmp_path / "c.json").exists()


@pytest.fixture(scope="module")
def tiny_model(keras, tmp_path_factory):
    """A model with everything the converter folds: Conv2D + BatchNormalization + ReLU,
    AveragePooling2D before a conv, Flatten + Dense, a LIF layer, and its tuned config."""
    L = keras.layers
    x = inp = keras.Input((12, 12, 1), name="img")
    x = L.Conv2D(3, 1, activation="relu", name="to_spikes")(x)
    x = L.Conv2D(6, 3, name="conv0")(x)
    x = L.BatchNormalization(name="bn0")(x)
    x = L.ReLU(name="relu0")(x)
    x = L.AveragePooling2D(2, name="pool0")(x)
    x = L.Conv2D(8, 3, activation="relu", name="conv1")(x)
    x = L.Flatten(name="flat")(x)
    x = L.Dense(10, activation="relu", name="dense0")(x)
    x = L.Dense(4, name="out")(x)
    model = keras.Model(inp, x, name="tiny")
    rng = np.random.default_rng(0)
    for layer in model.layers:
        new = []
        for var in layer.weights:
            shape = tuple(var.shape)
            if "variance" in var.name:
                new.append(rng.uniform(0.5, 2.0, shape))
            elif var.name == "gamma":
                new.append(rng.uniform(0.5, 1.5, shape))
            else:
                new.append(rng.normal(0, 0.4, shape))
        if new:
            layer.set_weights([v.astype("float32") for v in new])
    path = tmp_path_factory.mktemp("tiny") / "tiny.keras"
    model.save(path)
    config = {"schema_version": 1, "presentation_steps": 25, "scale_firing_rates": 50,
              "synapse": 0.005,
              "layers": {"to_spikes": {"scale_firing_rates": 20, "on_chip": False},
                         "relu0": {"scale_firing_rates": 60, "block_shape": [5, 10, 6]},
                         "conv1": {"synapse": None},
                         "dense0": {"scale_firing_rates": 40, "block_shape": [5],
                                    "neuron": {"type": "LoihiLIF", "tau_ref": 0.001}}}}
    return model, path, config


def _script_constants(text: str) -> dict:
    consts = {}
    for node in ast.parse(text).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                consts[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return consts


def test_nengo_loihi_script_and_weights(tiny_model, tmp_path):
    model, path, config = tiny_model
    images = np.random.default_rng(1).uniform(0, 1, (5, 12, 12, 1)).astype(np.float32)
    result = export(path, config, tmp_path / "deploy", "nengo-loihi", images=images,
                    labels=np.arange(5) % 4)
    script, weights_path = result.paths
    assert script.name == "tiny_nengo_loihi.py" and weights_path == script.with_suffix(".npz")
    text = script.read_text()
    compile(text, str(script), "exec")
    c = _script_constants(text)
    # every layer's scale, placement, neuron, synapse and block shape from the config
    assert c["NEURON_LAYERS"] == ["to_spikes", "relu0", "conv1", "dense0"]
    assert c["SCALE_FIRING_RATES"] == {"to_spikes": 20.0, "relu0": 60.0, "conv1": 50.0, "dense0": 40.0}
    assert c["ON_CHIP"] == {"to_spikes": False, "relu0": True, "conv1": True, "dense0": True}
    assert c["SYNAPSE"] == {"to_spikes": 0.005, "relu0": 0.005, "conv1": None, "dense0": 0.005}
    assert c["DEFAULT_SYNAPSE"] == 0.005 and c["DT"] == 0.001 and c["PRESENTATION_STEPS"] == 25
    assert c["BLOCK_SHAPES"]["relu0"] == (5, 10, 6) and c["BLOCK_SHAPES"]["dense0"] == (5,)
    assert set(c["BLOCK_SHAPES"]) == {"relu0", "conv1", "dense0"}  # conv1: automatic
    assert c["BLOCK_SHAPES_FROM_CONFIG"] == ["relu0", "dense0"]
    assert c["LAYER_SHAPES"] == {"to_spikes": (12, 12, 3), "relu0": (10, 10, 6),
                                 "conv1": (3, 3, 8), "dense0": (10,)}
    assert c["DEFAULT_NEURON"] == {"type": "LoihiSpikingRectifiedLinear", "amplitude": 1.0}
    assert c["NEURONS"]["dense0"] == {"type": "LoihiLIF", "amplitude": 1.0, "tau_rc": 0.02,
                                      "tau_ref": 0.001, "min_voltage": 0.0}
    assert c["READOUT"] == "out" and c["INPUT_SHAPE"] == (12, 12, 1)
    for needle in ("nengo_dl.Converter(", "swap_activations={tf.nn.relu:", "scale_firing_rates=",
                   "net.config[ens].on_chip", "nengo_loihi.BlockShape(", "nengo_loihi.add_params",
                   "PresentInput(", "nengo_loihi.Simulator(", '"--target"', '"--n-images"', '"--data"'):
        assert needle in text, needle

    # the weights: Keras weights after folding (BN into relu0, pooling into conv1)
    with np.load(weights_path) as f:
        w = {k: f[k] for k in f.files}
    assert set(w) == {"to_spikes/kernel", "to_spikes/bias", "relu0/kernel", "relu0/bias",
                      "conv1/kernel", "conv1/bias", "dense0/kernel", "dense0/bias", "out/kernel",
                      "out/bias", "data/images", "data/labels"}
    get = {layer.name: layer.get_weights() for layer in model.layers}
    np.testing.assert_array_equal(w["to_spikes/kernel"], get["to_spikes"][0])
    np.testing.assert_array_equal(w["to_spikes/bias"], get["to_spikes"][1])
    gamma, beta, mean, var = get["bn0"]
    inv = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + 1e-3)
    np.testing.assert_allclose(w["relu0/kernel"], get["conv0"][0] * inv, rtol=1e-6)
    np.testing.assert_allclose(w["relu0/bias"], (get["conv0"][1] - mean) * inv + beta, rtol=1e-6)
    pooled = np.repeat(np.repeat(get["conv1"][0], 2, axis=0), 2, axis=1) / 4  # 6x6, stride 2
    np.testing.assert_array_equal(w["conv1/kernel"], pooled.astype(np.float32))
    np.testing.assert_array_equal(w["conv1/bias"], get["conv1"][1])
    for name in ("dense0", "out"):
        np.testing.assert_array_equal(w[f"{name}/kernel"], get[name][0])
        np.testing.assert_array_equal(w[f"{name}/bias"], get[name][1])
    np.testing.assert_array_equal(w["data/images"], images)

    # the script's Keras half runs here and reproduces the original model
    spec = importlib.util.spec_from_file_location("exported_script", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rebuilt = module.build_keras_model(module.load_weights(), neuron_biases=True)
    np.testing.assert_allclose(rebuilt.predict(images, verbose=0), model.predict(images, verbose=0),
                               rtol=1e-4, atol=1e-4)
    stripped = module.build_keras_model(module.load_weights(), neuron_biases=False)
    assert [len(stripped.get_layer(n).get_weights()) for n in c["NEURON_LAYERS"]] == [1, 1, 1, 1]
    np.testing.assert_array_equal(module.neuron_bias(w, "relu0"),
                                  np.tile(w["relu0/bias"], 100))
    loaded = module.load_data(None, module.load_weights(), 3)
    assert loaded[0].shape == (3, 144) and list(loaded[1]) == [0, 1, 2]


def test_lava_export_of_a_folded_keras_model(tiny_model, tmp_path):
    """Pooling folded into conv1 becomes a 6×6 stride-2 netx conv; the LIF layer keeps its
    decays; the CLI prints where the spikes come from."""
    _, path, config = tiny_model
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(config))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExportWarning)
        rc = cli.main(["export", str(path), "--config", str(cfg), "--format", "lava-hdf5",
                       "--out", str(tmp_path / "tiny.net")])
    assert rc == 0
    layers = read_netx(tmp_path / "tiny.net")
    assert [(x.kind, x.shape) for x in layers] == [
        ("input", (3, 12, 12)), ("conv", (6, 10, 10)), ("conv", (8, 3, 3)), ("flatten", (72,)),
        ("dense", (10,))]
    assert layers[2].weight.shape == (8, 6, 6, 6) and layers[2].stride == (2, 2)
    assert layers[4].neuron["vDecay"] == 200 and layers[4].neuron["refDelay"] == 2


def test_nengo_loihi_output_paths(tiny_model, tmp_path):
    _, path, config = tiny_model
    result = export(path, config, tmp_path / "run.py", "nengo-loihi")
    assert [p.name for p in result.paths] == ["run.py", "run.npz"]
    assert "run.npz" in (tmp_path / "run.py").read_text()
    with pytest.raises(ExportError, match="parent does not exist"):
        export(path, config, tmp_path / "a" / "b", "nengo-loihi")
    (tmp_path / "file").write_text("")
    with pytest.raises(ExportError, match="not a folder"):
        export(path, config, tmp_path / "file", "nengo-loihi")
