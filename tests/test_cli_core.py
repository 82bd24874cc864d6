"""The core CLI commands end to end on real .keras files and tuned configs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from loihi_core.cli import main
from loihi_core.config import load_config
from refcases import case_config, load_case


@pytest.fixture()
def tutorial_files(tmp_path):
    ref = load_case("tutorial_random")
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(case_config("tutorial_random")))
    data = tmp_path / "x.npz"
    np.savez(data, images=ref.arrays["images"], labels=np.array([8, 9]))
    return ref, cfg, data


def test_map_json_reports_every_block(tutorial_files, capsys):
    ref, cfg, _ = tutorial_files
    assert main(["map", str(ref.keras_path), "--config", str(cfg), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["n_cores"], doc["n_chips"], doc["errors"]) == (14, 1, [])
    rows = [(b["layer"], b["compartments"], b["in_axons"], b["out_axons"], b["synapse_bits"])
            for b in doc["blocks"]]
    assert rows == [("conv0", 676, 729, 1352, 12800)] * 8 + [("conv1", 576, 169, 1152, 457216)] * 4 \
        + [("dense0", 50, 2304, 0, 1032192)] * 2
    assert [b["core"] for b in doc["blocks"]] == list(range(14))


def test_map_auto_block_shapes_and_overflow(tutorial_files, tmp_path, capsys):
    ref, cfg, _ = tutorial_files
    assert main(["map", str(ref.keras_path), "--config", str(cfg), "--auto-block-shapes", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["n_cores"] <= 14 and not doc["errors"]
    bad = json.loads(cfg.read_text())
    bad["layers"]["conv1"]["block_shape"] = [2, 6, 64]
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    assert main(["map", str(ref.keras_path), "--config", str(tmp_path / "bad.json")]) == 2
    out = capsys.readouterr().out
    assert "error: layer 'conv1'" in out and "synapse bits 1751040 exceed the per-core max 1048576" in out
    assert "try block_shape [" in out


def test_simulate_reproduces_the_reference_from_the_keras_file(tutorial_files, tmp_path, capsys):
    ref, cfg, data = tutorial_files
    out = tmp_path / "out.npz"
    assert main(["simulate", str(ref.keras_path), "--config", str(cfg), "--inputs", str(data),
                 "--sequential", "--record-spikes", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "accuracy: " in printed and "to-spikes" in printed
    with np.load(out) as z:
        for name in ("to-spikes", "conv0", "conv1", "dense0"):
            np.testing.assert_array_equal(z[f"spikes/{name}"], ref.arrays[f"spikes/{name}"])
            counts = z[f"spike_counts/{name}"]
            active = counts > 0
            assert float(z[f"rates/{name}"]) == pytest.approx(counts[active].mean() / 0.03)
            assert float(z[f"rates_all/{name}"]) == pytest.approx(counts.mean() / 0.03)
        np.testing.assert_allclose(z["output"], ref.arrays["output"], rtol=1e-12, atol=1e-12)
        assert list(z["predictions"]) == ref.info["predictions"]


def test_simulate_stores_the_cost_models_figures_of_its_run(tutorial_files, tmp_path):
    """``simulate`` prices the run from mean counts: the same floats, bit for bit, as
    ``cost.estimate`` of the full per-image counts; rates equal ``EmulatorResult.rates``."""
    from loihi_core import Emulator, convert, map_to_chip
    from loihi_core.cost import estimate

    ref, cfg, data = tutorial_files
    out = tmp_path / "out.npz"
    assert main(["simulate", str(ref.keras_path), "--config", str(cfg), "--inputs", str(data),
                 "--out", str(out)]) == 0
    chip = map_to_chip(convert(ref.keras_path, str(cfg)))
    result = Emulator(chip).run(ref.arrays["images"])
    report = estimate(chip, result)
    with np.load(out) as z:
        for key in ("energy_per_image_J", "time_per_step_s", "inferences_per_s", "static_power_W"):
            assert float(z[f"cost/{key}"]) == getattr(report, key), key
        for term, joules in report.energy_breakdown_J.items():
            assert float(z[f"cost/energy/{term}"]) == joules, term
        np.testing.assert_array_equal(z["cost/synops_per_core"], report.synops_per_core)
        for name, rate in result.rates().items():
            assert float(z[f"rates/{name}"]) == rate
            np.testing.assert_array_equal(z[f"spike_counts/{name}"], result.spike_counts[name])
    assert report.energy_per_image_J > 0


def test_calibrate_writes_a_config_on_target(tutorial_files, tmp_path, capsys):
    ref, cfg, _ = tutorial_files
    rng = np.random.default_rng(1)
    data = tmp_path / "cal.npz"
    np.savez(data, images=rng.uniform(0, 1, (12, 28, 28, 1)).astype(np.float32))
    out = tmp_path / "tuned.json"
    args = ["calibrate", str(ref.keras_path), "--config", str(cfg), "--data", str(data),
            "--target-rate", "150", "--out", str(out)]
    # random weights on random images: the emulator agrees with Keras on only 9 of 12
    # images, so the config is not written without --force
    assert main(args) == 2
    captured = capsys.readouterr()
    assert "agrees with Keras on 75.0%" in captured.out and not out.exists()
    assert "not writing" in captured.err and "--force" in captured.err
    code = main(args + ["--force"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    tuned = load_config(out)
    scales = {name: tuned.for_layer(name).scale_firing_rates
              for name in ("to-spikes", "conv0", "conv1", "dense0")}
    assert len(set(scales.values())) == 4  # calibrated per layer
    assert tuned.for_layer("conv0").block_shape == (16, 16, 4)  # the rest of the config is kept
    assert "converged" in printed


def test_missing_inputs_are_named(tutorial_files, tmp_path, capsys):
    ref, cfg, _ = tutorial_files
    code = main(["simulate", str(ref.keras_path), "--inputs", str(tmp_path / "nope.npz"),
                 "--out", str(tmp_path / "o.npz")])
    assert code == 2
    assert "nope.npz" in capsys.readouterr().err
