"""Discretization and core mapping: golden equality with NengoLoihi's blocks, limits,
automatic block shapes, and properties that must hold for any block shape."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loihi_core import discretize as dz
from loihi_core.chip import MAX_SYNAPSE_BITS, RESOURCES
from loihi_core.errors import ConfigError, MappingError
from loihi_core.mapping import (auto_block_shapes, map_to_chip, tile_layer, tile_neuron_ids)
from loihi_core.network import Connection, NeuronLayer, Readout, SpikingNetwork
from loihi_core.neurons import LoihiLIF, LoihiSpikingRectifiedLinear
from refcases import CASES, load_case, reference_network

REF_RESOURCE = {"compartments": "compartments", "in_axons": "in-axons",
                "out_axons": "out-axons", "synapse_bits": "synapses"}


@pytest.fixture(scope="module", params=CASES)
def mapped_case(request):
    case = request.param
    return case, load_case(case), map_to_chip(reference_network(case))


def test_block_utilization_equals_reference(mapped_case):
    case, ref, chip = mapped_case
    assert len(chip.blocks) == len(ref.blocks)
    for block, rb in zip(chip.blocks, ref.blocks):
        for resource in RESOURCES:
            assert list(block.utilization()[resource]) == rb["utilization"][REF_RESOURCE[resource]], \
                (case, rb["label"], resource)


def test_discretized_compartments_equal_reference(mapped_case):
    case, ref, chip = mapped_case
    for block, rb in zip(chip.blocks, ref.blocks):
        rc = rb["compartment"]
        for key in ("vth", "bias", "decay_u", "decay_v", "refract_delay"):
            np.testing.assert_array_equal(getattr(block.compartments, key), rc[key],
                                          err_msg=f"{case} {rb['label']} {key}")
        assert (block.compartments.vmin, block.compartments.vmax) == (rc["vmin"], rc["vmax"])


def test_integer_weights_indices_and_axons_equal_reference(mapped_case):
    case, ref, chip = mapped_case
    for block, rb in zip(chip.blocks, ref.blocks):
        assert len(block.synapses) == len(rb["synapses"]) == 1
        syn, rs = block.synapses[0], rb["synapses"][0]
        assert (syn.n_axons, syn.bits, syn.idx_bits, syn.weight_exp, syn.pop_type) == \
            (rs["n_axons"], rs["bits"], rs["idx_bits"], rs["weight_exp"], rs["pop_type"])
        assert len(syn.weights) == len(rs["weights"])
        for w, rw, i, ri in zip(syn.weights, rs["weights"], syn.indices, rs["indices"]):
            np.testing.assert_array_equal(w, rw)
            np.testing.assert_array_equal(i, ri)
        if rs["axon_compartment_bases"] is not None:
            np.testing.assert_array_equal(syn.axon_base, rs["axon_compartment_bases"])
            np.testing.assert_array_equal(syn.axon_weight_set, rs["axon_to_weight_map"])


def test_tutorial_numbers():
    """The tutorial with its block shapes: 8 + 4 + 2 = 14 cores (spec §4.6)."""
    chip = map_to_chip(reference_network("tutorial_random"))
    rows = [(b.layer, b.n_compartments, b.synapse_bits) for b in chip.blocks]
    assert rows == [("conv0", 676, 12800)] * 8 + [("conv1", 576, 457216)] * 4 + \
                   [("dense0", 50, 1032192)] * 2
    assert [b.out_axons for b in chip.blocks_of("conv0")] == [1352] * 8
    assert [b.out_axons for b in chip.blocks_of("conv1")] == [1152] * 4
    assert [b.in_axons for b in chip.blocks_of("conv0")] == [729] * 8
    assert (chip.n_cores, chip.n_chips) == (14, 1)
    assert chip.blocks_of("conv0")[1].compartments.vth[0] != chip.blocks_of("conv0")[0].compartments.vth[0]


def test_unsplit_conv1_needs_five_million_bits_and_is_refused_with_a_fitting_suggestion():
    net = reference_network("tutorial_random")
    report = map_to_chip(net, {"conv1": (6, 6, 64)}, raise_on_overflow=False)
    (block,) = report.blocks_of("conv1")
    assert block.synapse_bits == 5289984 and block.synapses[0].idx_bits == 7  # 12 index bits
    assert len(report.blocks_of("conv1")[0].synapses[0].weights) == 68
    assert [e.split(":")[1].split()[0] for e in report.errors] == ["compartments", "output", "synapse"]
    with pytest.raises(MappingError) as info:
        map_to_chip(net, {"conv1": (2, 6, 64)})
    err = info.value
    assert (err.layer, err.resource, err.limit) == ("conv1", "synapse_bits", MAX_SYNAPSE_BITS)
    assert err.used > MAX_SYNAPSE_BITS and str(err.used) in str(err) and "1048576" in str(err)
    fixed = map_to_chip(net, {"conv1": err.suggestion})
    assert not fixed.errors
    # compartments alone would give 3 blocks of 768, each 1,751,040 bits (the tutorial's trap)
    report = map_to_chip(net, {"conv1": (2, 6, 64)}, raise_on_overflow=False)
    assert [b.synapse_bits for b in report.blocks_of("conv1")] == [1751040] * 3
    assert len(report.errors) == 1 and "synapse bits 1751040" in report.errors[0]


def test_automatic_block_shapes_fit_and_beat_the_tutorial():
    net = reference_network("tutorial_random")
    shapes = auto_block_shapes(net)
    chip = map_to_chip(net, shapes)
    assert not chip.errors
    assert chip.n_cores <= 14
    for block in chip.blocks:
        assert not block.overflows()


def test_block_shape_errors_name_the_field():
    net = reference_network("tutorial_random")
    with pytest.raises(ConfigError, match=r"layers\.conv0\.block_shape: expected 3 positive ints "
                                          r"for a \(13, 13, 32\) layer, got \[16, 4\]"):
        map_to_chip(net, {"conv0": (16, 4)})
    with pytest.raises(MappingError, match="compartments 1352 exceed the per-core max 1024"):
        map_to_chip(net, {"conv0": (13, 13, 8)})


def test_board_size_limits_allocation():
    net = reference_network("tutorial_random")
    chip = map_to_chip(net, {"conv0": (1, 1, 32), "conv1": (1, 1, 64)}, n_chips=2,
                       raise_on_overflow=False)
    assert chip.n_cores == 169 + 36 + 2
    assert chip.n_chips == 2
    assert [b.chip for b in chip.blocks[127:129]] == [0, 1]
    with pytest.raises(MappingError, match="needs 207 cores = 2 chips, but the board has 1 chip"):
        map_to_chip(net, {"conv0": (1, 1, 32), "conv1": (1, 1, 64)}, n_chips=1)


# ---------------------------------------------------------------------------------------
# discretization units
# ---------------------------------------------------------------------------------------

def test_decay_registers_and_integral_correction():
    assert dz.decay_u_int(dz.decay_from_tau(0.005, 0.001)) == 741
    assert dz.decay_u_int(dz.decay_from_tau(None, 0.001)) == 4094
    assert dz.decay_v_int(dz.decay_from_tau(0.02, 0.001)) == 200
    assert 1 / dz.decay_magnitude(741, offset=1) == pytest.approx(0.181155237, rel=1e-8)
    assert 1 / dz.decay_magnitude(4094, offset=1) == pytest.approx(0.999756291, rel=1e-8)
    assert 1 / dz.decay_magnitude(200) == pytest.approx(0.048830938, rel=1e-8)


def test_bias_and_threshold_encodings():
    # spec §2.12: a bias-only ReLU block
    J = np.array([0.5, 1.7, 5, 10, 250, 300, 333.4, 1000, 2000], np.float32)
    b_scale = dz.BIAS_MAX / 2000
    assert list(dz.bias_to_int(np.round(J * b_scale))) == [131, 446, 1310, 2621, 65520, 78624,
                                                           87392, 262080, 524160]
    assert dz.vth_to_int(np.array([1000 * b_scale]))[0] == 262080


@settings(max_examples=150, deadline=None)
@given(st.lists(st.floats(-100, 100, allow_nan=False, width=32), min_size=1, max_size=40),
       st.floats(0.01, 1000), st.sampled_from([None, 0.001, 0.005, 0.05]))
def test_discretized_registers_are_always_representable(weights, bias_scale, tau):
    w = np.asarray(weights, np.float32)[None, :]
    comp = dz.FloatCompartments(
        vth=np.full(3, 1000, np.float32), bias=np.float32(bias_scale) * np.array([1, -0.5, 0], np.float32),
        decay_u=np.full(3, dz.decay_from_tau(tau, 0.001), np.float32),
        decay_v=np.zeros(3, np.float32), refract_delay=np.ones(3, np.int64), scale_u=True,
        scale_v=False)
    try:
        disc = dz.discretize_compartments(comp, [w])
    except dz.DiscretizationError:
        return
    assert np.all(disc.vth % 64 == 0) and np.all((disc.vth > 0) & (disc.vth <= dz.VTH_MAX))
    assert np.all(np.abs(disc.bias) <= dz.BIAS_MAX)
    (wi,), wexp = dz.discretize_weight_sets([w], disc)
    unit = 2 ** (6 + wexp)
    assert np.all(wi % unit == 0)
    chip_w = wi // unit
    # even 8-bit values; the lossy shift of very weak synapses can reach -256 (the chip
    # accepts [-256, 255])
    assert np.all(chip_w % 2 == 0) and np.all((chip_w >= -256) & (chip_w <= 254))
    assert -7 <= wexp <= 0
    if np.abs(w).max() > 1e-8:
        # the largest weight uses (nearly) the full 8-bit range at the block's scale
        assert np.abs(chip_w).max() >= 126


# ---------------------------------------------------------------------------------------
# properties of any block shape
# ---------------------------------------------------------------------------------------

def _conv_net(h, w, c, f1, f2, k, s, padding, dense):
    neuron = LoihiSpikingRectifiedLinear()
    rng = np.random.default_rng(h * 100 + w * 10 + c)
    shape0 = (h, w, c)
    oh = -(-h // s) if padding == "same" else (h - k) // s + 1
    ow = -(-w // s) if padding == "same" else (w - k) // s + 1
    shape1 = (oh, ow, f1)
    layers = {
        "in0": NeuronLayer("in0", shape0, neuron, 10.0, np.zeros(h * w * c), 0.1, False, 0.005),
        "c1": NeuronLayer("c1", shape1, neuron, 20.0, np.zeros(int(np.prod(shape1))), 0.05, True, 0.005),
        "d2": NeuronLayer("d2", (dense,), neuron, 30.0, rng.normal(0, 1, dense), 1 / 30, True, 0.005),
    }
    conns = [
        Connection("x", "in0", "dense", rng.normal(0, 1, (4, h * w * c)).astype(np.float32), (4,), shape0),
        Connection("in0", "c1", "conv", rng.normal(0, 1, (k, k, c, f1)).astype(np.float32), shape0,
                   shape1, (s, s), padding, synapse=0.005),
        Connection("c1", "d2", "dense", rng.normal(0, 1, (int(np.prod(shape1)), dense)).astype(np.float32),
                   (int(np.prod(shape1)),), (dense,), synapse=0.005),
    ]
    readout = Readout("out", "d2", np.ones((dense, 2), np.float32), None, (2,))
    return SpikingNetwork("x", (4,), layers, conns, readout)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(h=st.integers(3, 12), w=st.integers(3, 12), c=st.integers(1, 3), f1=st.integers(1, 40),
       k=st.integers(1, 3), s=st.integers(1, 2), padding=st.sampled_from(["valid", "same"]),
       dense=st.integers(1, 300), data=st.data())
def test_any_block_shape_maps_validly_or_raises(h, w, c, f1, k, s, padding, dense, data):
    net = _conv_net(h, w, c, f1, 0, k, s, padding, dense)
    shape1 = net.layers["c1"].shape
    bs = {"c1": tuple(data.draw(st.integers(1, n + 2)) for n in shape1),
          "d2": (data.draw(st.integers(1, dense + 5)),)}
    try:
        chip = map_to_chip(net, bs)
    except MappingError as err:
        assert err.layer in ("c1", "d2") and err.resource in RESOURCES and err.used > err.limit
        if err.suggestion is not None:
            fixed = dict(bs, **{err.layer: err.suggestion})
            try:
                map_to_chip(net, fixed)
            except MappingError as err2:  # the other layer may still overflow
                assert err2.layer != err.layer
        return
    for name in ("c1", "d2"):
        blocks = chip.blocks_of(name)
        ids = np.concatenate([b.neuron_ids for b in blocks])
        assert np.array_equal(np.sort(ids), np.arange(net.layers[name].n_neurons))
        assert len(blocks) == len(tile_layer(net.layers[name].shape, bs[name]))
    for block in chip.blocks:
        assert not block.overflows()
        for resource, (used, limit) in block.utilization().items():
            assert 0 <= used <= limit


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(h=st.integers(4, 14), c=st.integers(1, 3), f1=st.integers(4, 64), k=st.integers(1, 3),
       s=st.integers(1, 2), dense=st.integers(10, 400))
def test_automatic_block_shapes_never_overflow(h, c, f1, k, s, dense):
    net = _conv_net(h, h, c, f1, 0, k, s, "valid", dense)
    fan_in = net.layers["c1"].n_neurons
    if fan_in > 4096:  # a dense layer reading more than 4096 neurons cannot fit any core
        with pytest.raises(MappingError, match=f"'d2'.*fan-in of {fan_in} neurons"):
            auto_block_shapes(net)
        return
    chip = map_to_chip(net, auto_block_shapes=True)
    assert not chip.errors
    for block in chip.blocks:
        assert not block.overflows()


def test_tiles_are_row_major_sub_boxes():
    tiles = tile_layer((5, 4, 3), (2, 4, 2))
    assert [t.origin for t in tiles] == [(0, 0, 0), (0, 0, 2), (2, 0, 0), (2, 0, 2), (4, 0, 0), (4, 0, 2)]
    assert tiles[-1].extent == (1, 4, 1)
    ids = tile_neuron_ids((5, 4, 3), tiles[1])
    assert list(ids[:3]) == [2, 5, 8]


def test_lif_layer_discretization_matches_reference_registers():
    chip = map_to_chip(reference_network("dense_lif"))
    comp = chip.blocks[0].compartments
    assert set(comp.decay_v) == {200} and set(comp.refract_delay) == {3}
    assert isinstance(reference_network("dense_lif").layers["hidden"].neuron, LoihiLIF)


# ---------------------------------------------------------------------------------------
# the fast paths equal the plain definitions
# ---------------------------------------------------------------------------------------

def _one_weight_set(kernel, geom, tile, key):
    """The weight set of one key, by definition: for output rows ``y`` and cols ``x`` it
    reaches, kernel taps ``a0 - sr*y`` / ``b0 - sc*x``, columns in (row, col, channel) order
    of the tile, indices offset by ``q``."""
    a0, nr, b0, nc, q = (int(v) for v in key)
    f0, ext_c, ext_f = tile.origin[2], tile.extent[1], tile.extent[2]
    weights = np.empty((geom.C, nr * nc * ext_f), np.float32)
    indices = np.empty((geom.C, nr * nc * ext_f), np.int32)
    col = 0
    for y in range(nr):
        for x in range(nc):
            for f in range(ext_f):
                weights[:, col] = kernel[a0 - geom.sr * y, b0 - geom.sc * x, :, f0 + f]
                indices[:, col] = q + (y * ext_c + x) * ext_f + f
                col += 1
    return weights, indices


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(h=st.integers(3, 12), c=st.integers(1, 3), f1=st.integers(1, 24), k=st.integers(1, 3),
       s=st.integers(1, 2), padding=st.sampled_from(["valid", "same"]), data=st.data())
def test_batched_conv_weight_sets_equal_one_key_at_a_time(h, c, f1, k, s, padding, data):
    from loihi_core.mapping import ConvGeometry, conv_block_axons, conv_weight_sets, unique_keys

    net = _conv_net(h, h, c, f1, 0, k, s, padding, 5)
    conn = net.connections_into("c1")[0]
    geom = ConvGeometry(conn)
    shape1 = net.layers["c1"].shape
    bs = tuple(data.draw(st.integers(1, n)) for n in shape1)
    kernel = np.asarray(conn.weights, np.float32) * np.float32(37.5)
    tiles = tile_layer(shape1, bs)
    for tile in tiles:
        axons = conv_block_axons(geom, tile, whole=len(tiles) == 1)
        keys, key_of_axon = unique_keys(axons.keys, axons.used)
        # keys: distinct, in first-appearance order, and every used axon points at its own
        assert len({tuple(r) for r in keys}) == len(keys)
        assert np.array_equal(keys[key_of_axon[axons.used]], axons.keys[axons.used])
        firsts = [int(np.argmax(key_of_axon == j)) for j in range(len(keys))]
        assert firsts == sorted(firsts)
        weights, indices = conv_weight_sets(kernel, geom, tile, keys)
        for key, w, i in zip(keys, weights, indices):
            w1, i1 = _one_weight_set(kernel, geom, tile, key)
            assert w.dtype == w1.dtype and i.dtype == i1.dtype
            np.testing.assert_array_equal(w, w1)
            np.testing.assert_array_equal(i, i1)


def test_layer_cache_reuses_identical_layers_only():
    from loihi_core import mapping

    net = reference_network("tutorial_random")
    mapping._LAYER_CACHE.clear()
    fresh = map_to_chip(net)
    again = map_to_chip(net)
    # identical layers: the same (read-only) synapse objects, new Block objects
    assert all(a.synapses[0] is b.synapses[0] and a is not b for a, b in zip(fresh.blocks, again.blocks))
    # a layer whose scale changed is rebuilt, the ones after the next are reused; every
    # block equals a mapping built with an empty cache
    first_chip = next(n for n, layer in net.layers.items() if layer.on_chip)
    net.layers[first_chip].gain *= 1.5
    net.layers[first_chip].bias = net.layers[first_chip].bias * 1.5
    changed = map_to_chip(net)
    mapping._LAYER_CACHE.clear()
    rebuilt = map_to_chip(net)
    reused = {b.layer for a, b in zip(fresh.blocks, changed.blocks) if a.synapses[0] is b.synapses[0]}
    assert first_chip not in reused and reused  # later layers keep their blocks
    for a, b in zip(changed.blocks, rebuilt.blocks):
        assert a.utilization() == b.utilization()
        for key in ("vth", "bias", "decay_u", "decay_v", "refract_delay"):
            np.testing.assert_array_equal(getattr(a.compartments, key), getattr(b.compartments, key))
        sa, sb = a.synapses[0], b.synapses[0]
        assert (sa.weight_exp, sa.bits, sa.idx_bits) == (sb.weight_exp, sb.bits, sb.idx_bits)
        np.testing.assert_array_equal(sa.axon_weight_set, sb.axon_weight_set)
        for wa, wb in zip(sa.weights, sb.weights):
            np.testing.assert_array_equal(wa, wb)


@settings(max_examples=40, deadline=None)
@given(n_pre=st.integers(1, 60), n_post=st.integers(1, 30), data=st.data())
def test_split_dense_synapse_shares_identical_rows_in_first_appearance_order(n_pre, n_post, data):
    from loihi_core.mapping import dense_block_synapse

    rng = np.random.default_rng(n_pre * 31 + n_post)
    # few distinct values, so that many rows repeat (zero rows, -0.0 vs 0.0 included)
    palette = np.array([0.0, -0.0, 1.5, -2.25], np.float32)
    weights = palette[rng.integers(0, 4, (n_pre, n_post))]
    ids = np.sort(rng.choice(n_post, data.draw(st.integers(1, n_post)), replace=False))
    syn = dense_block_synapse("pre", weights, ids, whole=False)
    # the plain definition: walk the rows, number each new byte pattern
    seen, expected_map, expected_sets = {}, [], []
    for a in range(n_pre):
        row = np.ascontiguousarray(weights[a, ids])
        key = row.tobytes()
        if key not in seen:
            seen[key] = len(expected_sets)
            expected_sets.append(row)
        expected_map.append(seen[key])
    assert syn.axon_weight_set.tolist() == expected_map
    assert len(syn.weights_float) == len(expected_sets)
    for got, want in zip(syn.weights_float, expected_sets):
        assert got.tobytes() == want.tobytes() and got.shape == (1, len(ids))
