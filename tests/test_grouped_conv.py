"""Grouped and depthwise convolutions map to synapses that store only their groups' weights.

The reference for correctness is the same network with each grouped kernel written out as a
plain kernel (zeros between the groups), which the mapper handles as any conv: both must
give the same spikes bit for bit, for block shapes that keep or cut the groups, while the
grouped synapses need less memory.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loihi_core.emulator import Emulator
from loihi_core.mapping import map_to_chip
from loihi_core.network import Connection, NeuronLayer, Readout, SpikingNetwork, full_kernel
from loihi_core.neurons import LoihiSpikingRectifiedLinear


def grouped_network(c: int, f: int, groups: int, k: int, seed: int = 0) -> SpikingNetwork:
    rng = np.random.default_rng(seed)
    relu = LoihiSpikingRectifiedLinear()
    shapes = {"img": (7, 7, 2), "a": (7, 7, c), "b": (7, 7, f)}
    layers = {
        "a": NeuronLayer("a", shapes["a"], relu, 150.0, rng.uniform(0, 50, 49 * c), 1 / 150,
                         False, 0.005),
        "b": NeuronLayer("b", shapes["b"], relu, 120.0, np.zeros(49 * f), 1 / 120, True, 0.005),
    }
    conns = [
        Connection("img", "a", "conv", rng.normal(0, .5, (1, 1, 2, c)).astype(np.float32),
                   shapes["img"], shapes["a"]),
        Connection("a", "b", "conv",
                   rng.normal(0.2, .6, (k, k, c // groups, f)).astype(np.float32),
                   shapes["a"], shapes["b"], padding="same", synapse=0.005, groups=groups),
    ]
    readout = Readout("out", "b", rng.normal(0, 1, (49 * f, 3)).astype(np.float32), None, (3,))
    return SpikingNetwork("img", shapes["img"], layers, conns, readout, presentation_steps=25)


def plain_twin(net: SpikingNetwork) -> SpikingNetwork:
    conns = [dataclasses.replace(c, weights=full_kernel(c.weights, c.groups), groups=1)
             for c in net.connections]
    return dataclasses.replace(net, connections=conns)


@settings(max_examples=12, deadline=None)
@given(case=st.sampled_from([(4, 4, 4, 3), (4, 8, 4, 3), (6, 6, 3, 1), (8, 8, 2, 3)]),
       tile=st.tuples(st.integers(2, 7), st.integers(2, 7), st.integers(1, 8)))
def test_grouped_synapses_give_the_plain_kernels_spikes(case, tile):
    c, f, groups, k = case
    net = grouped_network(c, f, groups, k)
    shapes = {"b": (tile[0], tile[1], min(tile[2], f))}
    grouped = map_to_chip(net, shapes)
    plain = map_to_chip(plain_twin(net), shapes)
    images = np.random.default_rng(3).uniform(0, 1, (2, 7, 7, 2)).astype(np.float32)
    a = Emulator(grouped).run(images, record="all")
    b = Emulator(plain).run(images, record="all")
    assert int(b.spike_counts["b"].sum()) > 0
    np.testing.assert_array_equal(a.spikes["b"], b.spikes["b"])
    np.testing.assert_array_equal(a.output, b.output)
    assert sum(x.synapse_bits for x in grouped.blocks) <= sum(x.synapse_bits for x in plain.blocks)


def test_depthwise_synapses_store_one_weight_per_tap_and_channel():
    net = grouped_network(8, 8, 8, 3)
    chip = map_to_chip(net, {"b": (7, 7, 8)})
    (syn,) = chip.blocks[0].synapses
    assert all(w.shape[0] == 8 and w.shape[1] <= 9 for w in syn.weights)  # 8 atoms × taps
    plain = map_to_chip(plain_twin(net), {"b": (7, 7, 8)})
    assert chip.blocks[0].synapse_bits * 4 < plain.blocks[0].synapse_bits
