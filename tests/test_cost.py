"""The cost model on hand-computed cases, the placement's hop counts, and exactness vs the emulator.

Hand cases build a :class:`ChipModel` from blocks directly so every synaptic operation,
spike message and hop can be counted on paper; the figures are [D18] Table 2's (see
``loihi_core/cost.py``).
"""

from __future__ import annotations

import numpy as np
import pytest

from loihi_core import cost
from loihi_core.chip import Block, BlockSynapse, ChipModel

PJ, NS = 1e-12, 1e-9


def _dense(pre: str, widths: list[int], axon_of_pre: list[int]) -> BlockSynapse:
    """A synapse whose axon ``a`` adds a row of ``widths[a]`` weights at the block's start."""
    idx = [np.arange(w, dtype=np.int32)[None, :] for w in widths]
    return BlockSynapse(pre=pre, kind="dense", pre_axon=np.array(axon_of_pre, np.int32),
                        pre_atom=np.zeros(len(axon_of_pre), np.int32),
                        axon_base=np.zeros(len(widths), np.int32),
                        axon_weight_set=np.arange(len(widths), dtype=np.int32),
                        weights_float=[np.ones(i.shape, np.float32) for i in idx], indices=idx,
                        weights=[np.ones(i.shape, np.int32) for i in idx])


def _block(layer: str, n: int, synapses: list[BlockSynapse], core: int, chip: int = 0) -> Block:
    return Block(layer=layer, index=0, origin=(0,), extent=(n,), neuron_ids=np.arange(n),
                 synapses=synapses, core=core, chip=chip)


def one_core() -> ChipModel:
    """Host layer ``in`` (3 neurons) → layer ``a`` (2 compartments) on core 0.

    Host neuron 0 reaches 2 compartments, neuron 1 reaches 2, neuron 2 reaches 1.
    """
    a = _block("a", 2, [_dense("in", [2, 2, 1], [0, 1, 2])], core=0)
    return ChipModel(network=None, blocks=[a], host_layers=["in"])


def test_one_core_energy_and_time_by_hand():
    counts = {"in": np.array([[2, 1, 4]]), "a": np.array([[3, 0]])}
    rep = cost.estimate_from_counts(one_core(), counts, steps=10)
    # synaptic ops 2*2 + 1*2 + 4*1 = 10; 7 host spike messages, no hops (host enters at tile 0)
    assert rep.synops_per_core.tolist() == [10.0]
    assert rep.spike_messages == 7 and rep.tile_hops == 0
    # 2 compartments x 10 steps: 3 active (the spikes), 17 inactive
    assert rep.updates_active_per_core.tolist() == [3.0]
    assert rep.updates_inactive_per_core.tolist() == [17.0]
    expected = (10 * 23.6 + 3 * 81 + 17 * 52 + 7 * 1.7) * PJ
    assert rep.energy_per_image_J == pytest.approx(expected, rel=1e-12)
    # step: mean core work + within-tile latency + 1-tile barrier
    core = (10 * 3.5 + 3 * 8.4 + 17 * 5.3) / 10 * NS
    assert rep.time_per_step_s == pytest.approx(core + 2.1 * NS + 113 * NS, rel=1e-12)
    assert rep.inferences_per_s == pytest.approx(1 / (10 * rep.time_per_step_s), rel=1e-12)
    assert rep.n_tiles == 1 and rep.static_power_W == cost.P_IDLE_B19


def test_idle_and_active_compartments_differ_by_the_table_figures():
    chip = one_core()
    quiet = cost.estimate_from_counts(chip, {"in": np.zeros((1, 3)), "a": np.zeros((1, 2))}, 10)
    busy = cost.estimate_from_counts(chip, {"in": np.zeros((1, 3)), "a": np.array([[4, 6]])}, 10)
    # an idle chip still updates every compartment every step, at the inactive price
    assert quiet.energy_per_image_J == pytest.approx(20 * 52 * PJ, rel=1e-12)
    assert quiet.energy_breakdown_J["synaptic_ops"] == 0
    # 10 of the 20 updates become active: + 10 x (81 - 52) pJ and 10 x (8.4 - 5.3) ns / 10 steps
    assert busy.energy_per_image_J - quiet.energy_per_image_J == pytest.approx(10 * 29 * PJ, rel=1e-9)
    assert busy.time_breakdown_s["slowest_core"] - quiet.time_breakdown_s["slowest_core"] == \
        pytest.approx(3.1 * NS, rel=1e-9)


def test_two_cores_across_one_hop_by_hand():
    a = _block("a", 2, [_dense("in", [2, 2, 1], [0, 1, 2])], core=0)
    b = _block("b", 1, [_dense("a", [1, 1], [0, 1])], core=4)  # core 4 = the next tile east
    chip = ChipModel(network=None, blocks=[a, b], host_layers=["in"])
    pl = cost.place(chip)
    assert (pl.x.tolist(), pl.y.tolist()) == ([0, 1], [0, 0])
    counts = {"in": np.zeros((1, 3)), "a": np.array([[3, 0]]), "b": np.array([[1]])}
    rep = cost.estimate_from_counts(chip, counts, steps=5)
    assert rep.synops_per_core.tolist() == [0.0, 3.0]
    assert rep.spike_messages == 3 and rep.tile_hops == 3  # 3 spikes, 1 east-west hop each
    expected = (3 * 23.6 + 3 * 1.7 + 3 * 3.0          # a's spikes into b, one E-W hop
                + 3 * 81 + 7 * 52                       # a: 2 x 5 updates, 3 active
                + 1 * 81 + 4 * 52) * PJ                 # b: 1 x 5 updates, 1 active
    assert rep.energy_per_image_J == pytest.approx(expected, rel=1e-12)
    # the slowest message: within tile + one E-W hop; 2 tiles in use for the barrier
    assert rep.time_breakdown_s["spike_latency"] == pytest.approx((2.1 + 4.1) * NS)
    assert rep.time_breakdown_s["barrier"] == pytest.approx((113 + (465 - 113) / 31) * NS)
    core_a = (3 * 8.4 + 7 * 5.3) / 5 * NS
    assert rep.time_breakdown_s["slowest_core"] == pytest.approx(core_a)
    # per-layer energy adds up to the total
    assert sum(rep.energy_per_layer_J.values()) == pytest.approx(rep.energy_per_image_J, rel=1e-12)


def test_x86_share_is_blouws_70_mW_per_chip_over_the_time_of_an_inference():
    """[B19] counts the embedded x86 cores' ~70 mW as dynamic power: the comparable energy
    is the mesh's plus 70 mW x steps x time per step (per chip in use)."""
    rep = cost.estimate_from_counts(one_core(), {"in": np.array([[2, 1, 4]]),
                                                 "a": np.array([[3, 0]])}, steps=10)
    step = ((10 * 3.5 + 3 * 8.4 + 17 * 5.3) / 10 + 2.1 + 113) * NS
    assert rep.x86_power_W == 0.070
    assert rep.time_per_inference_s == pytest.approx(10 * step, rel=1e-12)
    mesh = (10 * 23.6 + 3 * 81 + 17 * 52 + 7 * 1.7) * PJ
    assert rep.energy_per_image_J == pytest.approx(mesh, rel=1e-12)
    assert rep.energy_per_image_with_x86_J == pytest.approx(mesh + 0.070 * 10 * step, rel=1e-12)
    doc = rep.to_dict()
    assert doc["x86_power_W"] == 0.070
    assert doc["energy_per_image_with_x86_J"] == rep.energy_per_image_with_x86_J
    # two chips: twice the x86 cores
    a = _block("a", 2, [_dense("in", [2, 2, 1], [0, 1, 2])], core=0)
    b = _block("b", 1, [_dense("a", [1, 1], [0, 1])], core=0, chip=1)
    two = ChipModel(network=None, blocks=[a, b], host_layers=["in"])
    rep2 = cost.estimate_from_counts(two, {"in": np.zeros((1, 3)), "a": np.zeros((1, 2)),
                                           "b": np.zeros((1, 1))}, steps=4)
    assert rep2.n_chips == 2 and rep2.x86_power_W == pytest.approx(0.140)
    assert rep2.energy_per_image_with_x86_J - rep2.energy_per_image_J == pytest.approx(
        0.140 * 4 * rep2.time_per_step_s, rel=1e-12)


def test_serpentine_placement_coordinates():
    blocks = [_block("a", 1, [], core=c, chip=k)
              for k, c in [(0, 0), (0, 3), (0, 4), (0, 31), (0, 32), (0, 124), (1, 0), (4, 0)]]
    pl = cost.place(ChipModel(network=None, blocks=blocks))
    # 4 cores a tile; tile rows of 8 walked east then west; chips in rows of 4 chips
    assert list(zip(pl.x.tolist(), pl.y.tolist())) == [
        (0, 0), (0, 0), (1, 0), (7, 0), (7, 1), (0, 3), (8, 0), (24, 4)]
    ew, ns = pl.hops(0, 7)
    assert (int(ew), int(ns)) == (24, 4)
    with pytest.raises(ValueError, match="placement"):
        cost.place(ChipModel(network=None, blocks=blocks), "random")


def test_barrier_time_spans_the_table_row():
    assert cost.barrier_time(1, 1) == pytest.approx(113 * NS)
    assert cost.barrier_time(32, 1) == pytest.approx(465 * NS)
    assert cost.barrier_time(3, 2) == pytest.approx(465 * NS)


@pytest.fixture(scope="module")
def tutorial_run():
    from refcases import reference_network

    from loihi_core.emulator import Emulator
    from loihi_core.mapping import map_to_chip

    chip = map_to_chip(reference_network("tutorial_random"))
    images = np.random.default_rng(3).random((4, 28, 28, 1)).astype(np.float32)
    return chip, Emulator(chip).run(images, 20, record="all")


def test_per_core_synaptic_ops_add_up_to_the_emulators_exactly(tutorial_run):
    chip, result = tutorial_run
    # spikes of the last step reach no core within the presentation: leave them out and
    # the per-core counts must equal the emulator's own count, image by image
    for i in range(result.n_images):
        delivered = {k: v[i:i + 1, :-1].sum(axis=1) for k, v in result.spikes.items()}
        rep = cost.estimate_from_counts(chip, delivered, result.steps)
        assert rep.synops_per_core.sum() == result.synaptic_ops[i]
    rep = cost.estimate(chip, result)
    assert rep.synops_per_core.shape == (chip.n_cores,)
    assert rep.energy_per_image_J == pytest.approx(sum(rep.energy_breakdown_J.values()))


def test_connected_blocks_close_cost_fewer_hops(tutorial_run):
    chip, result = tutorial_run
    near = cost.estimate(chip, result, "serpentine")
    far = cost.estimate(chip, result, "interleaved")
    assert near.spike_messages == far.spike_messages
    assert near.tile_hops < far.tile_hops / 2
    assert near.energy_breakdown_J["tile_hops"] < far.energy_breakdown_J["tile_hops"]


def test_missing_counts_name_the_layer():
    with pytest.raises(ValueError, match="'in'"):
        cost.estimate_from_counts(one_core(), {"a": np.zeros((1, 2))}, 10)


def test_cli_simulate_writes_the_cost_and_map_json_the_placement(tmp_path, capsys):
    import json

    from loihi_core.cli import main
    from refcases import case_config, load_case

    ref = load_case("tutorial_random")
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(case_config("tutorial_random")))
    data = tmp_path / "x.npz"
    np.savez(data, images=ref.arrays["images"])
    assert main(["map", str(ref.keras_path), "--config", str(cfg), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    # 14 cores filled in order, 4 a tile: tiles 0..3 along the first row of the mesh
    assert doc["placement"]["tiles"] == [[c // 4, 0] for c in range(14)]
    out = tmp_path / "out.npz"
    assert main(["simulate", str(ref.keras_path), "--config", str(cfg), "--inputs", str(data),
                 "--sequential", "--out", str(out)]) == 0
    assert "uJ per image" in capsys.readouterr().out
    with np.load(out) as z:
        terms = [k for k in z.files if k.startswith("cost/energy/")]
        assert len(terms) == 5
        assert float(z["cost/energy_per_image_J"]) == pytest.approx(sum(float(z[k]) for k in terms))
        assert z["cost/synops_per_core"].shape == (14,)
        assert float(z["cost/inferences_per_s"]) == pytest.approx(
            1 / (float(z["cost/time_per_step_s"]) * 30))
        assert float(z["cost/energy_per_image_with_x86_J"]) == pytest.approx(
            float(z["cost/energy_per_image_J"]) + 0.070 * 30 * float(z["cost/time_per_step_s"]))


def test_app_emulation_stage_carries_the_cost_of_its_live_images():
    import loihi_core
    from app.data import FALLBACK_MODEL, bundle_for_graph
    from app.state import StudioState

    graph = loihi_core.load_model(FALLBACK_MODEL)
    config = loihi_core.TunedConfig().with_defaults(scale_firing_rates=100.0, synapse=0.005)
    images = np.random.default_rng(3).uniform(0, 1, (8, 28, 28, 1)).astype(np.float32)
    bundle = bundle_for_graph(graph, "tutorial_random.keras", images, np.arange(8) % 10,
                              "random", config)
    state = StudioState(bundle, auto_compute=True, live_images=4, calib_images=8)
    emu = state.emulation
    expected = cost.estimate(state.chip_stage.chip, emu.result)
    assert emu.cost.energy_per_image_J == expected.energy_per_image_J > 0
    assert emu.cost.inferences_per_s == expected.inferences_per_s


def test_sweeps_write_the_cost_estimate_per_configuration():
    """Sweep rows carry energy per image and time per step: the estimate of the same
    emulator run (more spikes at a higher scale cost more energy)."""
    from pathlib import Path

    from loihi_core import load_config, load_model
    from loihi_core.data import load_images_npz
    from loihi_core.sweep import run_sweep

    assets = Path(__file__).resolve().parent.parent / "assets" / "examples"
    images, labels = load_images_npz(assets / "mnist_test.npz", require_labels=True)
    table = run_sweep(load_model(assets / "mnist_tutorial.keras"), images[:32], labels[:32],
                      {"schema_version": 1, "grid": {"layers.conv0.scale_firing_rates": [200, 750]}},
                      base_config=load_config(assets / "mnist_tutorial.config.json"))
    low, high = table.sort_values("layers.conv0.scale_firing_rates").itertuples()
    assert 0 < low.energy_per_image_J < high.energy_per_image_J < 1e-3
    assert 0 < low.time_per_step_s < 1e-3 and 0 < high.time_per_step_s < 1e-3


def test_the_app_shows_the_cost_of_every_core():
    """The cores panel's cost row: one energy and one time cell per core, the costliest
    core at 1 (what stands out), values from the emulation's cost estimate."""
    from app.data import load_example
    from app.dashboard import build_dashboard

    dash = build_dashboard(load_example())
    cost = dash.state.emulation.cost
    data = dash.cores.cost_plot.source.data
    n = dash.state.chip_stage.chip.n_cores
    assert len(data["core"]) == 2 * n == 2 * cost.n_cores
    energy = [f for f, w in zip(data["fraction"], data["what"]) if w == "energy"]
    assert max(energy) == 1.0 and min(energy) > 0
    assert "slowest" in dash.cores.cost_plot.figure.title.text
