"""The dashboard's state, pipeline and plot data, without a server or a browser.

The state is driven exactly as the widgets drive it (``set_scale``, ``set_block_shape``,
parameters, ``undo``), with ``auto_compute`` so every change is computed synchronously.
The model is the reference tutorial network (random weights) with fixed random images:
it has a host layer, two conv layers and a dense layer, and a conv layer large enough to
overflow a core when asked to.
"""

from __future__ import annotations

import asyncio
import io
import json
import pickle

import numpy as np
import pytest

import loihi_core
from app import pipeline, runner as runner_module
from app.data import DataError, FALLBACK_MODEL, bundle_for_graph, check_images, load_model_bytes, read_npz
from app.plots import heatmap_columns, profile_columns, profile_top, raster_columns, rates_columns
from app.runner import Runner
from app.state import StudioState, parse_block_shape


@pytest.fixture(scope="module")
def bundle():
    graph = loihi_core.load_model(FALLBACK_MODEL)
    config = loihi_core.TunedConfig().with_defaults(scale_firing_rates=100.0, synapse=0.005)
    images = np.random.default_rng(3).uniform(0, 1, (16, 28, 28, 1)).astype(np.float32)
    labels = np.arange(16) % 10
    return bundle_for_graph(graph, "tutorial_random.keras", images, labels, "random", config)


def make_state(bundle, **kw) -> StudioState:
    kw.setdefault("live_images", 4)
    kw.setdefault("calib_images", 8)
    return StudioState(bundle, auto_compute=True, **kw)


@pytest.fixture()
def state(bundle) -> StudioState:
    return make_state(bundle)


# ---------------------------------------------------------------------------------------
# editing → config → results
# ---------------------------------------------------------------------------------------

def test_initial_state_mirrors_the_bundle_config_and_computes_every_stage(state, bundle):
    assert list(state.layers) == ["to-spikes", "conv0", "conv1", "dense0"]
    assert state.to_config().to_json() == bundle.config.to_json() == state.config.to_json()
    assert [t.on_chip for t in state.layers.values()] == [False, True, True, True]
    assert state.layers["conv0"].shape == (13, 13, 32)
    assert state.network_stage.network.layers["conv0"].gain == 100.0
    assert state.chip_stage.ok and state.chip_stage.chip.n_cores == 11
    assert state.emulation.result.output.shape == (4, 30, 10)
    assert state.current and state.problems == []


def test_scale_change_updates_config_chip_and_emulator_result(state):
    before = state.emulation.result
    before_chip = state.chip_stage.chip
    before_profile = state.network_stage.profiles["conv0"]
    before_inputs = pipeline.layer_inputs(state.network_stage.network, state.bundle, state.job().calib)
    generation = state.generation

    assert state.set_scale("conv0", 400.0)

    assert state.generation == generation + 1
    assert state.config.layers["conv0"].scale_firing_rates == 400.0
    assert json.loads(state.export_json())["layers"] == {"conv0": {"scale_firing_rates": 400.0}}
    assert state.network_stage.network.layers["conv0"].gain == 400.0
    # the staircase saturates 4x earlier in input units; the inputs themselves are unchanged
    after_profile = state.network_stage.profiles["conv0"]
    assert after_profile.x_saturate == pytest.approx(before_profile.x_saturate / 4, rel=0.02)
    after_inputs = pipeline.layer_inputs(state.network_stage.network, state.bundle, state.job().calib)
    np.testing.assert_array_equal(after_inputs["conv0"], before_inputs["conv0"])
    # the mapping is rebuilt: same tiling and resource counts, new integer parameters
    chip = state.chip_stage.chip
    assert chip is not before_chip
    assert chip.summary() == before_chip.summary()
    old_vth = np.concatenate([b.compartments.vth for b in before_chip.blocks_of("conv0")])
    new_vth = np.concatenate([b.compartments.vth for b in chip.blocks_of("conv0")])
    assert np.all(new_vth < old_vth)  # 4x the input gain: a lower threshold in weight units
    # the emulated layer fires faster; layers before it are untouched
    old_rates, new_rates = before.rates(), state.emulation.result.rates()
    assert new_rates["conv0"] > 2 * old_rates["conv0"]
    assert new_rates["to-spikes"] == old_rates["to-spikes"]
    assert state.emulation.config.layers["conv0"].scale_firing_rates == 400.0


def test_block_shape_change_changes_the_mapping(state):
    assert state.chip_stage.chip.block_shapes["conv1"] == (6, 6, 22)
    assert state.set_block_shape("conv1", "6, 6, 16")
    chip = state.chip_stage.chip
    assert state.config.layers["conv1"].block_shape == (6, 6, 16)
    assert chip.block_shapes["conv1"] == (6, 6, 16) and state.chip_stage.ok
    assert len(chip.blocks_of("conv1")) == 4 and chip.n_cores == 12
    assert chip.summary()["layers"]["conv1"]["compartments"] == 576
    assert state.emulation.config.layers["conv1"].block_shape == (6, 6, 16)
    # clearing the entry returns to the automatic shape
    assert state.set_block_shape("conv1", "")
    assert "conv1" not in state.config.layers
    assert state.chip_stage.chip.block_shapes["conv1"] == (6, 6, 22)


@pytest.mark.parametrize("text, needle", [("0, 4", "expected 3 positive integers"),
                                          ("a, b, c", "expected 3 positive integers"),
                                          ("4, 4, 4, 4", "got 4")])
def test_invalid_block_shape_entry_is_refused_and_everything_stays(state, text, needle):
    config, emulation, chip, generation = state.config, state.emulation, state.chip_stage, state.generation
    assert not state.set_block_shape("conv0", text)
    problems = state.problems_for("layer", "conv0")
    assert len(problems) == 1 and needle in problems[0].message and problems[0].field == "block_shape"
    assert state.config is config and state.emulation is emulation and state.chip_stage is chip
    assert state.generation == generation and state.layers["conv0"].block_shape is None
    # a valid entry clears the message
    assert state.set_block_shape("conv0", "13, 7, 11")
    assert state.problems_for("layer", "conv0") == []


def test_over_limit_block_shape_shows_errors_and_keeps_the_last_emulation(state):
    emulation = state.emulation
    assert state.set_block_shape("conv0", "13, 13, 32")  # 5408 neurons on one core
    chip = state.chip_stage.chip
    assert chip.errors and not state.chip_stage.ok
    layer_msgs = [p.message for p in state.problems_for("layer", "conv0")]
    assert any("compartments 5408 exceed the per-core max 1024" in m for m in layer_msgs)
    assert state.problems_for("mapping")
    cells, _ = heatmap_columns(chip)
    over = [i for i, o in enumerate(cells["over"]) if o]
    assert over and all(cells["layer"][i] == "conv0" for i in over)
    assert max(cells["fraction"]) == pytest.approx(5408 / 1024)
    # the chip cannot run: the previous emulation stays on screen, marked as not current
    assert state.emulation is emulation and not state.current and state.blocked
    assert state.undo()
    assert state.chip_stage.ok and state.current and state.problems == [] and not state.blocked
    assert state.emulation is not emulation


def test_conversion_errors_are_placed_on_the_layer_and_keep_results(state):
    network, emulation = state.network_stage, state.emulation
    state.layers["conv1"].neuron = "LIF"  # an ideal neuron cannot go on chip
    msgs = [p.message for p in state.problems_for("layer", "conv1")]
    assert msgs and "cannot run on Loihi" in msgs[0]
    assert state.network_stage is network and state.emulation is emulation
    state.layers["conv1"].neuron = "LoihiLIF"
    assert state.problems == [] and state.current
    assert state.config.layers["conv1"].neuron.name == "LoihiLIF"
    # a host layer after a chip layer is refused by the mapper, next to the layer
    state.layers["conv1"].on_chip = False
    assert any("off chip but reads the on-chip layer" in p.message
               for p in state.problems_for("layer", "conv1"))


def test_global_settings_go_into_the_config(state):
    state.presentation_steps = 12
    assert state.config.presentation_steps == 12
    assert state.emulation.result.output.shape == (4, 12, 10)
    state.dt = 0.002
    assert state.config.dt == 0.002
    assert state.network_stage.profiles["conv0"].max_rate == 500.0


def test_undo_redo_and_reset(state, bundle):
    base = state.config.to_json()
    state.set_scale("conv0", 300)
    state.set_block_shape("conv1", "3, 3, 64")
    state.layers["dense0"].synapse = 0.01
    third = state.config.to_json()
    assert state.can_undo and not state.can_redo
    assert state.undo() and state.layers["dense0"].synapse == 0.005
    assert state.undo() and state.layers["conv1"].block_shape is None
    assert state.config.layers["conv0"].scale_firing_rates == 300
    assert state.can_redo
    assert state.redo() and state.redo() and state.config.to_json() == third
    assert not state.redo()
    state.reset()
    assert state.config.to_json() == base
    assert state.layers["conv0"].scale_firing_rates == 100.0
    assert state.chip_stage.chip.block_shapes["conv1"] == (6, 6, 22)
    assert state.undo() and state.config.to_json() == third  # reset is undoable
    state.set_scale("conv0", 50)  # a new edit clears the redo history
    assert not state.can_redo


def test_export_import_round_trip_reproduces_results_headless(state, bundle):
    state.set_scale("conv0", 250)
    state.set_block_shape("conv1", "6, 6, 16")
    state.layers["dense0"].neuron = "LoihiLIF"
    state.layers["to-spikes"].synapse = None
    text = state.export_json()

    # headless: the exported file alone gives the same mapping and emulator output
    config = loihi_core.load_config(text)
    network = loihi_core.convert(bundle.graph, config)
    chip = loihi_core.map_to_chip(network, raise_on_overflow=True)
    assert chip.summary() == state.chip_stage.chip.summary()
    result = loihi_core.Emulator(chip).run(bundle.images[:4])
    np.testing.assert_array_equal(result.output, state.emulation.result.output)

    # importing it into a fresh session reproduces the tuning and the results
    other = make_state(bundle)
    assert other.import_json(text.encode(), "tuned.json")
    assert other.export_json() == text
    assert other.layers["conv1"].block_shape == (6, 6, 16)
    assert other.layers["dense0"].neuron == "LoihiLIF"
    assert other.layers["to-spikes"].synapse is None
    np.testing.assert_array_equal(other.emulation.result.output, state.emulation.result.output)
    assert other.undo() and other.config.to_json() == bundle.config.to_json()


@pytest.mark.parametrize("text, needle", [
    ("{not json", "not valid JSON"),
    ('{"schema_version": 1, "layers": {"conv9": {"scale_firing_rates": 2}}}', "no layer 'conv9'"),
    ('{"schema_version": 1, "layers": {"conv0": {"blok_shape": [1, 1, 1]}}}', "unknown field"),
    ('{"schema_version": 1, "layers": {"conv0": {"block_shape": [2, 2]}}}', "expected 3 positive ints"),
])
def test_bad_import_is_refused_with_the_reason(state, text, needle):
    before, emulation = state.config, state.emulation
    assert not state.import_json(text, "bad.json")
    msgs = [p.message for p in state.problems_for("import")]
    assert msgs and all(m.startswith("bad.json: ") for m in msgs)
    assert any(needle in m for m in msgs), msgs
    assert state.config is before and state.emulation is emulation


def test_two_states_are_independent(bundle):
    a, b = make_state(bundle), make_state(bundle)
    assert a.layers["conv0"] is not b.layers["conv0"]
    a.set_scale("conv0", 500)
    a.set_block_shape("conv1", "3, 3, 64")
    assert b.layers["conv0"].scale_firing_rates == 100.0 and b.layers["conv1"].block_shape is None
    assert b.config.to_json() == bundle.config.to_json()
    assert b.chip_stage.chip.n_cores == 11 and a.chip_stage.chip.n_cores != 11
    assert not b.can_undo
    assert a.emulation.result.rates()["conv0"] != b.emulation.result.rates()["conv0"]


def test_stale_stages_are_dropped(state):
    job = state.job()
    stages = pipeline.compute_all(job)
    state.set_scale("conv0", 321)
    current = state.emulation
    assert not any(state.accept(s) for s in stages)
    assert state.emulation is current


def test_auto_block_shapes_pins_the_automatic_tiling(state):
    auto = dict(state.chip_stage.chip.block_shapes)
    assert state.set_block_shape("conv0", "4, 4, 32")
    assert state.auto_block_shapes()
    assert {k: v.block_shape for k, v in state.config.layers.items()} == auto
    assert state.chip_stage.chip.n_cores == 11


def test_auto_scale_moves_every_layer_to_the_target(bundle):
    state = make_state(bundle, target_rate=150.0)
    before = state.emulation.result.rates()
    result = state.calibrate_now()
    assert result is not None and result.converged
    after = state.emulation.result.rates()
    for name in state.layers:
        assert abs(after[name] - 150) < abs(before[name] - 150)
    on_target = [n for n in state.layers if abs(after[n] / 150 - 1) < 0.25]
    assert len(on_target) >= 3, after
    assert state.config.layers["conv0"].scale_firing_rates == pytest.approx(result.scales["conv0"], rel=1e-3)
    assert state.undo() and state.config.to_json() == bundle.config.to_json()


def test_auto_scale_refuses_a_target_above_the_ceiling(state):
    state.target_rate = 1000.0
    assert state.calibrate_now() is None
    assert "ceiling" in state.problems_for("calibration")[0].message


def test_run_evaluates_more_images_against_keras(state, bundle):
    state.n_images = 12
    ev = state.evaluate_now()
    assert ev.n_images == 12
    keras = pipeline.keras_outputs(bundle, np.arange(12)).argmax(axis=1)
    assert ev.keras_accuracy == pytest.approx(np.mean(keras == bundle.labels[:12]))
    assert 0 <= ev.agreement <= 1 and ev.synaptic_ops > 0


# ---------------------------------------------------------------------------------------
# data and files
# ---------------------------------------------------------------------------------------

def test_keras_reference_equals_the_rate_network():
    graph = loihi_core.load_model(loihi_core.__path__[0] + "/../tests/data/reference/dense_relu.keras")
    ref = np.load(FALLBACK_MODEL.parent / "dense_relu.npz")
    b = bundle_for_graph(graph, "dense_relu", ref["images"], None, "ref")
    out = pipeline.keras_outputs(b, np.arange(len(ref["images"])))
    np.testing.assert_allclose(out, ref["keras_output"], rtol=1e-5, atol=1e-5)


def test_data_upload_is_validated(state, bundle):
    ok = io.BytesIO()
    np.savez(ok, images=(np.random.default_rng(0).uniform(0, 255, (5, 28, 28))).astype(np.uint8),
             labels=np.arange(5))
    images, labels = read_npz(ok.getvalue(), "digits.npz")
    assert state.set_data(images, labels, "digits.npz")
    assert state.bundle.images.shape == (5, 28, 28, 1) and state.bundle.images.max() <= 1.0
    assert state.emulation.result.n_images == 4 and state.problems == []

    bad = io.BytesIO()
    np.savez(bad, images=np.zeros((3, 10, 10), np.float32))
    images, labels = read_npz(bad.getvalue(), "small.npz")
    current = state.bundle
    assert not state.set_data(images, None, "small.npz")
    assert "(n, 28, 28, 1)" in state.problems_for("data")[0].message
    assert state.bundle is current

    pickled = io.BytesIO()
    np.savez(pickled, images=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(DataError, match="(?i)pickle|object"):
        read_npz(pickled.getvalue(), "evil.npz")
    with pytest.raises(DataError):
        read_npz(b"not a zip at all", "junk.npz")
    with pytest.raises(DataError, match="labels"):
        check_images(np.zeros((2, 28, 28, 1), np.float32), np.array([1, 2, 3]), (28, 28, 1))


def test_model_upload_is_validated():
    with pytest.raises(DataError, match="not a .keras file"):
        load_model_bytes(b"whatever", "model.h5")
    with pytest.raises(DataError, match="uploaded.keras|not a zip|Keras 3") as err:
        load_model_bytes(b"PK-but-not-really", "mine.keras")
    assert "mine.keras" in str(err.value) and "/tmp" not in str(err.value)
    assert pickle.dumps  # the loader never unpickles: it goes through Keras' safe mode


def test_parse_block_shape():
    assert parse_block_shape(" (16, 8, 4) ", (26, 26, 8)) == (16, 8, 4)
    assert parse_block_shape("16x8x4", (26, 26, 8)) == (16, 8, 4)
    assert parse_block_shape("", (26, 26, 8)) is None
    assert parse_block_shape("auto", (100,)) is None
    assert parse_block_shape("50", (100,)) == (50,)
    with pytest.raises(ValueError, match="for a 100 layer"):
        parse_block_shape("5, 5", (100,))


# ---------------------------------------------------------------------------------------
# plot data
# ---------------------------------------------------------------------------------------

def test_raster_binning_keeps_every_spike():
    spikes = (np.random.default_rng(1).uniform(size=(30, 5408)) < 0.03).astype(np.uint8)
    image, per, lo, hi = pipeline.bin_raster(spikes, max_rows=160)
    assert image.shape == (-(-5408 // per), 30) and image.shape[0] <= 160
    assert image.sum() == spikes.sum() and (lo, hi) == (0, 5408)
    window, per2, lo2, hi2 = pipeline.bin_raster(spikes, max_rows=160, lo=100, hi=200)
    assert per2 == 1 and window.sum() == spikes[:, 100:200].sum()


def test_plot_columns_follow_the_results(state):
    net = state.network_stage
    profile = net.profiles["conv0"]
    top = profile_top(profile, 200)
    curve, hist = profile_columns(profile, top)
    assert max(hist["top"]) == pytest.approx(0.85 * top)
    assert sum(hist["fraction"]) == pytest.approx(100 * profile.fraction.sum())
    # the Loihi curve never exceeds one spike per step, the staircase is monotonic
    assert max(curve["chip"]) <= 1000 and np.all(np.diff(curve["chip"]) >= 0)

    result = state.emulation.result
    cols = raster_columns(result, 1, list(result.spikes))
    assert cols["layer"] == list(state.layers)
    for name, spikes in zip(cols["layer"], cols["spikes"]):
        assert spikes == int(result.spikes[name][1].sum())
    assert all(img.shape[0] <= 160 for img in cols["image"])

    rates = rates_columns(list(state.layers), {"conv0": 200.0, "conv1": 100.0}, {}, 200.0, {})
    assert rates["color"][1] == "#2ca02c" and rates["color"][2] != "#2ca02c"
    assert rates["off"][2] == "-50 %"


def test_runner_runs_latest_config_and_drops_stale_work(bundle, monkeypatch):
    """Five quick changes while a computation runs: the last one wins, none is queued."""
    state = StudioState(bundle, live_images=2, calib_images=4)

    async def scenario():
        loop = asyncio.get_running_loop()
        monkeypatch.setattr(runner_module, "_in_server", lambda: True)
        monkeypatch.setattr(runner_module.pn.state, "onload", lambda fn: loop.create_task(fn()))
        runner = Runner(state)
        runner.request()
        for scale in (110, 120, 130, 140, 150):
            state.set_scale("conv0", scale)
            await asyncio.sleep(0.02)
        while runner.computing:
            await asyncio.sleep(0.02)
        return runner

    runner = asyncio.run(scenario())
    assert state.emulation.config.layers["conv0"].scale_firing_rates == 150
    assert state.emulation.generation == state.generation and state.current
    assert runner.runs + runner.dropped <= 7 and runner.runs >= 1


# ---------------------------------------------------------------------------------------
# exports and the sweep tab
# ---------------------------------------------------------------------------------------

def test_export_formats(state):
    from app import exporting

    state.set_scale("conv0", 222)
    out = exporting.export_bytes("json", state.bundle.graph, state.config)
    assert loihi_core.load_config(out.data.decode()).to_json() == state.export_json()
    avail = exporting.available()
    if avail["lava"]:
        lava = exporting.export_bytes("lava", state.bundle.graph, state.config)
        assert lava.data[:4] == b"\x89HDF" and lava.notes
    if avail["nengo"]:
        import zipfile

        nengo = exporting.export_bytes("nengo", state.bundle.graph, state.config,
                                       state.bundle.images, state.bundle.labels)
        names = zipfile.ZipFile(io.BytesIO(nengo.data)).namelist()
        assert any(n.endswith(".py") for n in names) and any(n.endswith(".npz") for n in names)


def test_sweep_tab_shows_the_front_and_applies_a_row(state, bundle, tmp_path):
    sweep = pytest.importorskip("loihi_core.sweep")
    from app.sweep_view import SweepPanel, load_results_bytes

    df = sweep.run_sweep(bundle.graph, bundle.images[:6], bundle.labels[:6],
                         {"base_config": bundle.config.to_dict(),
                          "grid": {"layers.conv0.scale_firing_rates": [20, 100, 400],
                                   "layers.conv1.block_shape": [[6, 6, 22], [6, 6, 64]]}},
                         scheduler="local-threads")
    path = tmp_path / "results.csv"
    sweep.save_results(df, path)
    loaded = load_results_bytes(path.read_bytes(), "results.csv")
    assert (loaded["error"] != "").sum() == 3  # (6, 6, 64) overflows a core
    panel = SweepPanel(state=state)
    panel.load(loaded, "results.csv")
    front_rows = list(sweep.pareto_front(loaded).index)
    assert len(panel.points.data["row"]) == 3 and len(panel.front.data["spikes"]) == len(front_rows)
    assert list(panel.choice.options.values())[: len(front_rows)] == front_rows
    # the x axis can be the estimated energy: the front is then the energy front
    panel.x_axis.value = "energy per image (µJ, Loihi estimate)"
    energy_front = list(sweep.pareto_front(loaded, minimize="energy_per_image_J").index)
    assert len(panel.front.data["spikes"]) == len(energy_front)
    assert panel.front.data["spikes"][0] == pytest.approx(
        loaded.loc[energy_front[0], "energy_per_image_J"] * 1e6)
    assert "energy" in panel.figure.xaxis.axis_label
    row = front_rows[-1]
    assert panel.apply_row(row)
    assert state.config.to_json() == sweep.config_of(loaded.loc[row]).to_json()
    assert state.undo()
    bad = panel.apply_row(int(loaded.index[loaded["error"] != ""][0]))
    assert bad is True  # a row that does not fit still applies: the mapping error is shown
    assert state.problems_for("mapping")
    with pytest.raises(loihi_core.errors.LoihiStudioError, match="not a sweep results table"):
        load_results_bytes(b"a,b\n1,2\n", "junk.csv")


# ---------------------------------------------------------------------------------------
# what is on screen stays true (issue 15)
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [0, -5, float("nan"), 1e9])
def test_an_invalid_scale_is_refused_in_place_and_cleared_by_a_valid_one(state, value):
    before = state.config.to_json()
    assert not state.set_scale("conv0", value)
    (problem,) = state.problems_for("layer", "conv0")
    assert problem.field == "scale_firing_rates" and "must be a number from" in problem.message
    assert state.config.to_json() == before
    current = state.layers["conv0"].scale_firing_rates
    assert state.set_scale("conv0", current)  # re-entering the current value clears it
    assert state.problems == []


def test_messages_of_actions_go_when_the_config_changes(state):
    assert not state.import_json('{"schema_version": 1, "layers": {"conv9": {"scale_firing_rates": 2}}}',
                                 "x.json")
    state.set_action_problem("run", "conv0: cannot run")
    state.set_action_problem("model", "y.keras: not a model")
    assert state.problems_for("import") and state.problems_for("run")
    state.set_scale("conv0", 321)
    assert state.problems_for("import") == [] and state.problems_for("run") == []
    assert state.problems_for("model")  # not about the config: stays until the next model


def test_a_binary_file_as_config_says_it_is_not_text(state):
    assert not state.import_json(bytes(range(256)), "weights.json")
    (problem,) = state.problems_for("import")
    assert "not a text file" in problem.message and "codec" not in problem.message


def test_new_data_replaces_every_result_at_once(state, bundle):
    seen = []
    state.param.watch(lambda *events: seen.append({e.name: e.new for e in events}),
                      ["network_stage", "chip_stage", "emulation"])
    state.auto_compute = False
    assert state.set_data(bundle.images[:3], bundle.labels[:3], "three.npz")
    # one batch, all three cleared together: no view shows a result of the old images
    assert seen[0] == {"network_stage": None, "chip_stage": None, "emulation": None}
    state.compute_now()
    assert list(state.emulation.image_ids) == [0, 1, 2]


def test_block_shapes_larger_than_the_layer_are_clipped_to_it():
    from app.state import fit_block_shape

    assert fit_block_shape((13, 13, 64), (6, 6, 64)) == (6, 6, 64)
    assert fit_block_shape((4, 4, 8), (6, 6, 64)) == (4, 4, 8)
    assert fit_block_shape(None, (6, 6, 64)) is None


def test_data_loading_does_not_import_the_state():
    import subprocess
    import sys

    code = "import sys, app.data, app.pipeline; sys.exit('app.state' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


# ---------------------------------------------------------------------------------------
# only changed columns reach the browser
# ---------------------------------------------------------------------------------------

def _sent_columns(source, cols) -> list:
    """The ColumnDataChanged/ModelChanged events ``set_columns`` makes a document send."""
    from bokeh.document import Document
    from bokeh.document.events import ColumnDataChangedEvent, ModelChangedEvent

    from app.plots import set_columns

    doc = Document()
    doc.add_root(source)
    events = []
    doc.on_change(lambda event: events.append(event))
    set_columns(source, cols)
    doc.remove_root(source)
    out = []
    for e in events:
        if isinstance(e, ColumnDataChangedEvent):  # cols None: the whole data replaced
            out.append("data" if e.cols is None else sorted(e.cols))
        elif isinstance(e, ModelChangedEvent):
            out.append(e.attr)
    return out


def test_set_columns_sends_only_the_columns_that_changed():
    from bokeh.models import ColumnDataSource

    img = np.arange(6, dtype=np.float32).reshape(2, 3)
    source = ColumnDataSource({"image": [img], "layer": ["conv0"], "core": [("chip 0", "0")]})
    # same lengths, one array changed: only that column goes out
    assert _sent_columns(source, {"image": [img + 1], "layer": ["conv0"],
                                  "core": [("chip 0", "0")]}) == [["image"]]
    np.testing.assert_array_equal(source.data["image"][0], img + 1)
    assert source.data["layer"] == ["conv0"]
    # nothing changed: nothing is sent
    assert _sent_columns(source, {"image": [img + 1], "layer": ["conv0"],
                                  "core": [("chip 0", "0")]}) == []
    # a length change replaces the whole data (columns must stay equally long)
    assert _sent_columns(source, {"image": [img, img], "layer": ["a", "b"],
                                  "core": [("chip 0", "0"), ("chip 0", "1")]}) == ["data"]
    assert source.data["layer"] == ["a", "b"]
    # a dtype change of an array counts as a change
    assert _sent_columns(source, {"image": [img, img.astype(np.float64)], "layer": ["a", "b"],
                                  "core": [("chip 0", "0"), ("chip 0", "1")]}) == [["image"]]


def test_energy_card_breaks_the_estimate_down_per_layer_and_term():
    import re

    from app.data import load_example
    from app.views import KpiStrip, cost_breakdown

    st = StudioState(load_example(), auto_compute=True)
    cost = st.emulation.cost
    text = cost_breakdown(cost)
    per_layer = dict(re.findall(r"(\S+) ([\d.]+) µJ", text.splitlines()[0].split(": ", 1)[1]))
    assert set(per_layer) == set(cost.energy_per_layer_J)
    # the per-layer parts add up to the card's figure (each rounded to 0.1 µJ)
    assert sum(float(v) for v in per_layer.values()) == pytest.approx(
        cost.energy_per_image_J * 1e6, abs=0.05 * len(per_layer) + 1e-9)
    assert f"barrier {cost.time_breakdown_s['barrier'] * 1e9:.0f} ns" in text
    assert "x86" in text and f"{cost.energy_per_image_with_x86_J * 1e6:.1f} µJ" in text
    kpi = KpiStrip(state=st)
    assert "title='energy per layer:" in kpi.pane.object
