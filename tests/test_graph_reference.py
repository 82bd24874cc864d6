"""Branching networks and an on-chip first layer, bit for bit against NengoLoihi 1.1.

``residual_dense``, ``residual_conv_relu_b`` and ``first_on_chip`` were built by NengoDL's
Converter and run in NengoLoihi's emulator (``tests/data/reference``, see
``../shared/reference/README.md``). We convert the same ``.keras`` files ourselves and
check the spikes of every layer at every step, the readout, and every block's
discretization. NengoLoihi's merged synapses come in no fixed order and store identity
shortcuts as dense matrices, so a block's synapses are compared as the multiset of their
non-zero weight rows (which compartments each axon/atom reaches, with which integer
weight); our accounting may be smaller than theirs, never larger.

``residual_conv``, ``conv1d`` and ``avgpool_gap`` are graphs NengoLoihi cannot build: they
convert, map and emulate here, rate mode equals Keras, and the Numba kernel equals the NumPy
baseline on them.
"""

from __future__ import annotations

import warnings
from collections import Counter

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from loihi_core.convert import convert, input_encoder_name  # noqa: E402
from loihi_core.emulator import Emulator  # noqa: E402
from loihi_core.emulator.reference import run_stream_numpy  # noqa: E402
from loihi_core.mapping import map_to_chip  # noqa: E402
from loihi_core.simulate import run_rates  # noqa: E402
from refcases import REFERENCE_DIR, case_config, load_case  # noqa: E402

GRAPH_CASES = ("residual_dense", "residual_conv_relu_b", "first_on_chip")
BEYOND_NENGO = ("residual_conv", "conv1d", "avgpool_gap")


def graph_config(case: str) -> dict:
    """The case's tuned config; ``first_on_chip`` puts every layer on the chip."""
    config = case_config(case)
    if load_case(case).settings.get("first_on_chip"):
        for name in load_case(case).info["layers"]:
            config["layers"].setdefault(name, {})["on_chip"] = True
    return config


@pytest.fixture(scope="module", params=GRAPH_CASES)
def graph_run(request):
    case = request.param
    ref = load_case(case)
    net = convert(ref.keras_path, graph_config(case))
    chip = map_to_chip(net)
    result = Emulator(chip).run(ref.arrays["images"], mode="sequential", record="all")
    return case, ref, net, chip, result


def test_spikes_of_every_layer_equal_nengo_loihi_at_every_step(graph_run):
    case, ref, net, chip, result = graph_run
    for layer in ref.info["layers"]:
        got = result.flat_spikes(layer)
        expected = ref.arrays[f"spikes/{layer}"]
        assert got.shape == expected.shape, (case, layer)
        assert int(expected.sum()) > 0, (case, layer)  # the reference fires: a real check
        np.testing.assert_array_equal(got, expected, err_msg=f"{case} {layer}")


def test_host_spikes_into_the_chip_equal_nengo_loihi(graph_run):
    case, ref, net, chip, result = graph_run
    host = [name for name in chip.host_layers]
    sent = input_encoder_name(net.input_name) if case == "first_on_chip" else host[-1]
    np.testing.assert_array_equal(result.flat_spikes(sent), ref.arrays["input_spikes/0"])


def test_readout_equals_nengo_loihi_to_round_off(graph_run):
    case, ref, net, chip, result = graph_run
    np.testing.assert_allclose(result.flat_output(), ref.arrays["output"], rtol=0, atol=1e-12)
    assert list(result.output[:, -1].argmax(axis=1)) == ref.info["predictions"]


def _rows_of_reference(rs: dict) -> Counter:
    rows = Counter()
    n_axons = rs["n_axons"]
    bases = rs["axon_compartment_bases"] or [0] * n_axons
    sets = rs["axon_to_weight_map"] or list(range(n_axons))
    for base, ws in zip(bases, sets):
        if base < 0:
            continue
        for w_row, i_row in zip(rs["weights"][ws], rs["indices"][ws]):
            row = frozenset((base + i, w) for i, w in zip(i_row, w_row) if w != 0)
            if row:
                rows[row] += 1
    return rows


def _rows_of_block(block) -> Counter:
    rows = Counter()
    for syn in block.synapses:
        for base, ws in zip(syn.axon_base, syn.axon_weight_set):
            if base < 0:
                continue
            for w_row, i_row in zip(syn.weights[ws], syn.indices[ws]):
                row = frozenset((int(base + i), int(w)) for i, w in zip(i_row, w_row) if w != 0)
                if row:
                    rows[row] += 1
    return rows


def test_every_block_is_discretized_like_nengo_loihi(graph_run):
    case, ref, net, chip, result = graph_run
    assert len(chip.blocks) == len(ref.blocks)
    for block, rb in zip(chip.blocks, ref.blocks):
        rc = rb["compartment"]
        for key in ("vth", "bias", "decay_u", "decay_v", "refract_delay"):
            np.testing.assert_array_equal(getattr(block.compartments, key), rc[key],
                                          err_msg=f"{case} {rb['label']} {key}")
        assert (block.compartments.vmin, block.compartments.vmax) == (rc["vmin"], rc["vmax"])
        assert len(block.synapses) == len(rb["synapses"]), rb["label"]
        assert sorted(s.weight_exp for s in block.synapses) == \
            sorted(s["weight_exp"] for s in rb["synapses"])
        assert _rows_of_block(block) == sum((_rows_of_reference(s) for s in rb["synapses"]),
                                            Counter()), (case, rb["label"])
        used = block.utilization()
        assert used["compartments"][0] == rb["utilization"]["compartments"][0]
        assert used["in_axons"][0] <= rb["utilization"]["in-axons"][0]
        assert used["synapse_bits"][0] <= rb["utilization"]["synapses"][0]


def test_identity_shortcuts_cost_less_synapse_memory_than_nengo_loihi():
    """An identity shortcut is a 1×1 depthwise conv here, a dense 800×800 matrix there."""
    ref = load_case("residual_conv_relu_b")
    chip = map_to_chip(convert(ref.keras_path, graph_config("residual_conv_relu_b")))
    ours = sum(b.synapse_bits for b in chip.blocks_of("res_relu"))
    theirs = sum(rb["utilization"]["synapses"][0] for rb in ref.blocks
                 if rb["label"].startswith("<Ensemble 'res_relu"))
    assert ours * 20 < theirs, (ours, theirs)


# ---------------------------------------------------------------------------------------
# graphs NengoLoihi 1.1 cannot build
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", BEYOND_NENGO)
def test_graphs_nengo_loihi_cannot_build_convert_map_and_emulate(case):
    path = REFERENCE_DIR / f"{case}.keras"
    model = keras.saving.load_model(path, safe_mode=True, compile=False)
    rng = np.random.default_rng(4)
    images = rng.uniform(0, 1, (4, *model.input_shape[1:])).astype(np.float32)
    ideal = convert(path, {"schema_version": 1, "neuron": "RectifiedLinear"})
    want = model.predict(images, verbose=0)
    np.testing.assert_allclose(run_rates(ideal, images, ideal=True), want, rtol=1e-5,
                               atol=1e-6 * max(1.0, np.abs(want).max()))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net = convert(path, {"schema_version": 1, "scale_firing_rates": 100, "synapse": 0.005,
                             "presentation_steps": 40})
    emu = Emulator(map_to_chip(net, auto_block_shapes=True))
    result = emu.run(images, mode="independent", record="all")
    for name in net.layers:
        assert result.spike_counts[name].sum() > 0, (case, name)
    c = emu.compiled
    for i in range(len(images)):
        given = np.concatenate([result.spikes[h][i] for h in c.host_layers], axis=1)
        shifted = np.zeros_like(given)
        shifted[1:] = given[:-1]
        spikes = run_stream_numpy(c, shifted)
        for name in c.layer_names:
            sl = c.layer_slice(name)
            expected = np.zeros((40, net.layers[name].n_neurons), np.uint8)
            expected[:, c.comp_neuron[sl]] = spikes[:, sl]
            np.testing.assert_array_equal(result.spikes[name][i], expected)


@pytest.mark.parametrize("fmt", ["lava-hdf5", "nengo-loihi"])
def test_chain_only_exports_refuse_a_merge_naming_the_layer(fmt, tmp_path):
    from loihi_core.export import export
    from loihi_core.export.common import ExportError

    ref = load_case("residual_dense")
    with pytest.raises(ExportError, match="h2_relu") as info:
        export(ref.keras_path, graph_config("residual_dense"), tmp_path / "out", fmt)
    assert info.value.layer == "h2_relu"
