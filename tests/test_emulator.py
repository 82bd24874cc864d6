"""The Numba emulator: bit-exact with NengoLoihi's emulator on every reference case."""

from __future__ import annotations

import numpy as np
import pytest

from loihi_core.emulator import Emulator
from loihi_core.emulator.reference import run_stream_numpy
from loihi_core.errors import ArgumentError
from loihi_core.mapping import map_to_chip
from refcases import CASES, load_case, reference_network


@pytest.fixture(scope="module", params=CASES)
def case_run(request):
    case = request.param
    ref = load_case(case)
    emu = Emulator(map_to_chip(reference_network(case)))
    result = emu.run(ref.arrays["images"], ref.steps_per_image, mode="sequential", record="all")
    return case, ref, emu, result


def test_spikes_of_every_layer_equal_the_reference_at_every_step(case_run):
    case, ref, emu, result = case_run
    for name in emu.network.layers:
        expected = ref.arrays[f"spikes/{name}"]
        got = result.flat_spikes(name)
        assert got.shape == expected.shape and got.dtype == np.uint8
        np.testing.assert_array_equal(got, expected, err_msg=f"{case}: layer {name}")
        assert expected.sum() > 0  # a silent layer would make the comparison vacuous


def test_output_equals_the_reference_to_round_off(case_run):
    case, ref, emu, result = case_run
    np.testing.assert_allclose(result.flat_output(), ref.arrays["output"], rtol=1e-12, atol=1e-12)
    assert list(result.predictions) == ref.info["predictions"]


def test_spike_counts_equal_the_reference(case_run):
    case, ref, emu, result = case_run
    for name, counts in ref.info["spike_counts"].items():
        assert int(result.spike_counts[name].sum()) == int(np.sum(counts)), name


def test_independent_mode_equals_sequential_runs_of_single_images():
    ref = load_case("tutorial_random")
    emu = Emulator(map_to_chip(reference_network("tutorial_random")))
    images = ref.arrays["images"]
    batch = emu.run(images, 30, mode="independent", record="all")
    for i in range(len(images)):
        one = emu.run(images[i:i + 1], 30, mode="sequential", record="all")
        np.testing.assert_array_equal(batch.output[i], one.output[0])
        assert batch.synaptic_ops[i] == one.synaptic_ops[0] > 0
        for name in emu.network.layers:
            np.testing.assert_array_equal(batch.spikes[name][i], one.spikes[name][0])
            np.testing.assert_array_equal(batch.spike_counts[name][i], one.spike_counts[name][0])
    # the second image of a sequential run starts from the first's state: it differs
    seq = emu.run(images, 30, mode="sequential", record="all")
    assert not np.array_equal(seq.spikes["conv0"][1], batch.spikes["conv0"][1])


@pytest.mark.parametrize("case", CASES)
def test_numba_kernel_equals_the_numpy_baseline(case):
    """Two independent implementations of the integer step agree on fresh inputs."""
    rng = np.random.default_rng(7)
    net = reference_network(case)
    emu = Emulator(map_to_chip(net))
    images = rng.uniform(0, 1, (2, *net.input_shape)).astype(np.float32)
    result = emu.run(images, 25, mode="independent", record="all")
    c = emu.compiled
    for i in range(len(images)):
        host = result.spikes[c.host_layer][i]
        shifted = np.zeros_like(host)
        shifted[1:] = host[:-1]
        spikes = run_stream_numpy(c, shifted)
        for name in c.layer_names:
            sl = c.layer_slice(name)
            expected = np.zeros((25, net.layers[name].n_neurons), np.uint8)
            expected[:, c.comp_neuron[sl]] = spikes[:, sl]
            np.testing.assert_array_equal(result.spikes[name][i], expected)


def test_recording_a_subset_and_rates():
    net = reference_network("tutorial_random")
    emu = Emulator(map_to_chip(net))
    images = load_case("tutorial_random").arrays["images"]
    full = emu.run(images, 30, record="all")
    ids = [3, 17, 400, 5407]
    part = emu.run(images, 30, record={"conv0": ids})
    assert set(part.spikes) == {"conv0"}
    np.testing.assert_array_equal(part.spikes["conv0"], full.spikes["conv0"][:, :, ids])
    np.testing.assert_array_equal(part.recorded_neurons["conv0"], ids)
    for name in net.layers:
        np.testing.assert_array_equal(full.spikes[name].sum(axis=1), full.spike_counts[name])
    counts = full.spike_counts["conv0"]
    active = counts > 0
    assert full.rates()["conv0"] == pytest.approx(counts[active].mean() / 0.03)
    assert full.rates(active_only=False)["conv0"] == pytest.approx(counts.mean() / 0.03)
    assert full.rates()["conv0"] > full.rates(active_only=False)["conv0"] > 0


def test_over_limit_chip_cannot_run():
    chip = map_to_chip(reference_network("tutorial_random"), {"conv1": (2, 6, 64)},
                       raise_on_overflow=False)
    with pytest.raises(ValueError, match="over-limit"):
        Emulator(chip)


def test_bad_arguments_are_named():
    emu = Emulator(map_to_chip(reference_network("dense_relu")))
    images = load_case("dense_relu").arrays["images"]
    with pytest.raises(ArgumentError, match="mode: expected one of 'independent', 'sequential'"):
        emu.run(images, 10, mode="parallel")
    with pytest.raises(ArgumentError, match="cannot record 'nope'"):
        emu.run(images, 10, record=["nope"])
    with pytest.raises(ArgumentError, match="presentation_steps: expected a positive integer, got 0"):
        emu.run(images, 0)


def test_block_and_expanded_layouts_give_the_same_spikes():
    """Short runs use the block layout, long ones rows expanded per source: same result."""
    net = reference_network("conv_relu")
    images = load_case("conv_relu").arrays["images"]
    short = Emulator(map_to_chip(net))
    assert short._layout(1) is short._block_layout
    long = Emulator(map_to_chip(net))
    long.SMALL_RUN = 0
    assert long._layout(1) is long.compiled is not long._block_layout
    a = short.run(images, 40, record="all")
    b = long.run(images, 40, record="all")
    for name in net.layers:
        np.testing.assert_array_equal(a.spikes[name], b.spikes[name])
    np.testing.assert_array_equal(a.output, b.output)
    assert list(a.synaptic_ops) == list(b.synaptic_ops)


@pytest.mark.parametrize("expanded", [False, True])
def test_chunks_give_the_same_result_as_one_batch(expanded):
    """Spike counts go through a buffer of one chunk: any chunk size, either layout (the
    block layout's compartments are not in neuron order), gives the same arrays."""
    net = reference_network("tutorial_random")
    emu = Emulator(map_to_chip(net))
    if expanded:
        emu.SMALL_RUN = 0
    ref = load_case("tutorial_random").arrays["images"]  # 2 images that drive every layer
    images = np.concatenate([ref, ref[::-1] * 0.8, ref[:1]])
    for mode in ("independent", "sequential"):
        whole = emu.run(images, 30, mode=mode, record="all")
        parts = emu.run(images, 30, mode=mode, record="all", chunk_size=2)
        np.testing.assert_array_equal(whole.output, parts.output)
        np.testing.assert_array_equal(whole.synaptic_ops, parts.synaptic_ops)
        for name in net.layers:
            counts = parts.spike_counts[name]
            assert counts.dtype == np.int64 and counts.flags.c_contiguous
            np.testing.assert_array_equal(whole.spike_counts[name], counts)
            np.testing.assert_array_equal(whole.spikes[name], parts.spikes[name])
            np.testing.assert_array_equal(counts, parts.spikes[name].sum(axis=1))
        assert whole.spike_counts["conv1"].sum() > 0


@pytest.mark.parametrize("neuron", ["loihi relu", "ideal spiking relu"])
def test_host_layer_integrated_in_the_kernel_equals_its_given_spike_train(neuron):
    """The kernel's own float step of the host relu layer (no Python loop over time) gives
    the spikes :func:`run_spiking` computes, which the general path feeds in."""
    import dataclasses

    from loihi_core.emulator.kernels import HOST_GIVEN, HOST_LOIHI_RELU, HOST_SPIKING_RELU
    from loihi_core.neurons import SpikingRectifiedLinear

    net = reference_network("tutorial_random")
    host = next(name for name, layer in net.layers.items() if not layer.on_chip)
    if neuron == "ideal spiking relu":
        layer = net.layers[host]
        net.layers[host] = dataclasses.replace(layer, neuron=SpikingRectifiedLinear())
    emu = Emulator(map_to_chip(net))
    assert emu._host_kind() == (HOST_LOIHI_RELU if neuron == "loihi relu" else HOST_SPIKING_RELU)
    given = Emulator(map_to_chip(net))
    given._host_kind = lambda: HOST_GIVEN
    ref = load_case("tutorial_random").arrays["images"]
    images = np.concatenate([ref, ref * 0.7])
    for mode in ("independent", "sequential"):
        a = emu.run(images, 30, mode=mode, record="all")
        b = given.run(images, 30, mode=mode, record="all")
        np.testing.assert_array_equal(a.output, b.output)
        np.testing.assert_array_equal(a.synaptic_ops, b.synaptic_ops)
        for name in net.layers:
            np.testing.assert_array_equal(a.spike_counts[name], b.spike_counts[name])
            np.testing.assert_array_equal(a.spikes[name], b.spikes[name])
        assert a.spike_counts[host].sum() > 0 and a.spike_counts["conv1"].sum() > 0


def test_weights_are_int16_when_they_fit():
    """Discretized weights (at most 127 · 2 · 64) always fit int16, which halves the bytes a
    spike's row streams; anything larger stays exact as int32."""
    from loihi_core.emulator.compiled import weight_array

    emu = Emulator(map_to_chip(reference_network("tutorial_random")))
    for layout in (emu._block_layout, emu.compiled):
        assert layout.row_w.dtype == np.int16 and np.abs(layout.row_w).max() == 16256
    assert weight_array(np.array([-32767, 5, 32767])).dtype == np.int16
    big = weight_array(np.array([-32768, 40000]))
    assert big.dtype == np.int32 and big.tolist() == [-32768, 40000]
    assert weight_array(np.zeros(0, np.int64)).dtype == np.int16
