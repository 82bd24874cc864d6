"""The tutorial flow: the bundled example meets its targets, and the command runs end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from loihi_core import Emulator, calibrate, convert, load_config, load_model, map_to_chip
from loihi_core.cli import main
from loihi_core.data import load_images_npz, load_mnist
from loihi_core.simulate import run_rates

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "examples"


@pytest.fixture(scope="module")
def example():
    graph = load_model(ASSETS / "mnist_tutorial.keras")
    images, labels = load_images_npz(ASSETS / "mnist_test.npz", require_labels=True)
    return graph, load_config(ASSETS / "mnist_tutorial.config.json"), images, labels


def test_bundled_example_emulates_within_one_point_of_the_ann_at_the_target_rate(example):
    graph, config, images, labels = example
    net = convert(graph, config)
    keras_acc = float(np.mean(run_rates(net, images, ideal=True).argmax(axis=1) == labels))
    chip = map_to_chip(net)
    assert chip.n_cores == 14  # the tutorial's block shapes
    result = Emulator(chip).run(images[:600], config.presentation_steps)
    assert result.accuracy(labels[:600]) >= keras_acc - 0.01
    rates = result.rates()
    for name in ("conv0", "conv1", "dense0"):  # every on-chip layer within ±5 % of 200 Hz
        assert abs(rates[name] / 200 - 1) <= 0.05, (name, rates[name])


def test_calibration_hits_the_band_where_the_one_shot_estimate_misses(example):
    graph, config, _, _ = example
    x_cal = load_mnist(seed=0).x_train[-400:][:32]
    base = config
    for name in ("to-spikes", "conv0", "conv1", "dense0"):
        base = base.with_layer(name, scale_firing_rates=100.0)
    result = calibrate(graph, x_cal, base, 150.0, presentation_steps=50, start="relu")
    first = result.history[0]["rates"]  # the tutorial's one-shot ReLU estimate
    assert any(abs(first[n] / 150 - 1) > 0.05 for n in ("conv0", "conv1", "dense0"))
    assert result.converged
    for name in ("conv0", "conv1", "dense0"):
        assert abs(result.rates[name] / 150 - 1) <= 0.05
    assert result.config.for_layer("conv0").block_shape == (16, 16, 4)


def test_calibration_from_the_rate_model_needs_fewer_emulator_runs(example):
    """Default start: every layer from the chip-true rate model, then all layers per run."""
    graph, config, _, _ = example
    x_cal = load_mnist(seed=0).x_train[-400:][:32]
    base = config
    for name in ("to-spikes", "conv0", "conv1", "dense0"):
        base = base.with_layer(name, scale_firing_rates=100.0)
    runs = {}
    for start in ("relu", "rate"):
        result = calibrate(graph, x_cal, base, 150.0, presentation_steps=50, start=start,
                           evaluate_result=False)
        assert result.converged, start
        for name in ("conv0", "conv1", "dense0"):
            assert abs(result.rates[name] / 150 - 1) <= 0.05, (start, name)
        runs[start] = len(result.history)  # one emulator run per history entry
    assert runs["rate"] < runs["relu"], runs


@pytest.mark.slow
def test_tutorial_command_end_to_end(tmp_path, capsys):
    out = tmp_path / "example"
    code = main(["tutorial", "--out", str(out), "--relu-epochs", "1", "--loihi-epochs", "1",
                 "--n-test", "100", "--n-spiking", "40", "--n-calibration", "16", "--steps", "40",
                 "--json", str(tmp_path / "t.json")])
    printed = capsys.readouterr().out
    assert code == 0, printed
    doc = json.loads((tmp_path / "t.json").read_text())
    labels = [r["label"] for r in doc["rows"]]
    assert labels[:3] == ["ReLU network", "SpikingReLU ×100", "Loihi neurons ×100"]
    assert len(labels) == 6 and doc["rows"][-1]["n_images"] == 100
    assert 0.5 < doc["keras_accuracy"] <= 1 and 0.3 < doc["emulator_accuracy"] <= 1
    assert "| held-out set" in printed
    config = load_config(out / "mnist_tutorial.config.json")
    assert config.presentation_steps == 40
    assert set(doc["scales"]) == {"to-spikes", "conv0", "conv1", "dense0"}
    assert config.for_layer("conv1").scale_firing_rates == pytest.approx(doc["scales"]["conv1"])
    assert convert(out / "mnist_tutorial.keras", config).layers["conv0"].on_chip


def test_bundled_residual_example_emulates_within_one_point_of_keras(example):
    """The second example exercises the graph path: an identity shortcut and a merge."""
    _, _, images, labels = example
    graph = load_model(ASSETS / "mnist_residual.keras")
    config = load_config(ASSETS / "mnist_residual.config.json")
    net = convert(graph, config)
    assert [c.pre for c in net.connections_into("res")] == ["conv0", "conv_a"]
    keras_acc = float(np.mean(run_rates(net, images, ideal=True).argmax(axis=1) == labels))
    chip = map_to_chip(net)
    result = Emulator(chip).run(images, config.presentation_steps)
    assert result.accuracy(labels) >= keras_acc - 0.01, (result.accuracy(labels), keras_acc)
    rates = result.rates()
    for name in ("conv0", "conv_a", "res", "dense0"):
        assert abs(rates[name] / 200 - 1) <= 0.06, (name, rates[name])


def test_sweeps_run_on_the_residual_graph(example):
    """A sweep over the residual example's merge layer: one row per configuration, the
    accuracies come from the emulator (the scale of 'res' changes them)."""
    from loihi_core.sweep import run_sweep

    _, _, images, labels = example
    graph = load_model(ASSETS / "mnist_residual.keras")
    config = load_config(ASSETS / "mnist_residual.config.json")
    table = run_sweep(graph, images[:64], labels[:64],
                      {"schema_version": 1, "grid": {"layers.res.scale_firing_rates": [2, 266]}},
                      base_config=config)
    assert len(table) == 2
    low, high = table.sort_values("layers.res.scale_firing_rates")["accuracy"]
    assert high >= 0.9 and low < high
