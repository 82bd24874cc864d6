"""Per-layer verification report and the ``loihi-studio inspect`` command.

Imports TensorFlow/Keras (about 6 s, once per test process).
"""

from __future__ import annotations

import json
import math
import os
import warnings

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
keras = pytest.importorskip("keras")

from loihi_core.cli import main  # noqa: E402
from loihi_core.convert import convert  # noqa: E402
from loihi_core.simulate import run_rates, run_spiking  # noqa: E402
from loihi_core.verify import verify  # noqa: E402
from refcases import load_case  # noqa: E402

L = keras.layers


@pytest.fixture(scope="module")
def conv_case():
    ref = load_case("conv_relu")
    config = {"schema_version": 1, "scale_firing_rates": 100, "synapse": 0.005,
              "presentation_steps": 60}
    model = keras.saving.load_model(ref.keras_path, safe_mode=True, compile=False)
    return ref, model, convert(ref.keras_path, config)


def test_verify_reports_every_neuron_layer_against_keras(conv_case):
    ref, model, net = conv_case
    images = ref.arrays["images"]
    report = verify(model, net, images, reference="keras")
    assert report.reference == "keras"
    assert [c.name for c in report.layers] == list(net.layers)
    assert report.n_images == 3 and report.steps == 60
    rate_out, rate_layers = run_rates(net, images, return_layers=True)
    ideal_out = run_rates(net, images, ideal=True)
    spikes = run_spiking(net, images, 60)
    keras_out = model.predict(images, verbose=0).astype(np.float64)
    for check in report.layers:
        layer = net.layers[check.name]
        assert check.shape == layer.shape and check.on_chip == layer.on_chip
        # conversion is exact: ideal neurons reproduce every Keras activation
        assert check.ideal_max_abs_error <= 1e-5 * max(1.0, check.keras_max)
        # Loihi's rate staircase is below relu by at most one plateau step
        assert 0 < check.rate_max_abs_error <= check.keras_max
        assert check.rate_mean_abs_error <= check.rate_max_abs_error
        assert -1 <= check.spike_correlation <= 1 or math.isnan(check.spike_correlation)
        hz = spikes.rates[check.name]
        assert check.spike_mean_rate_hz == pytest.approx(hz.mean())
        assert check.spike_max_rate_hz == pytest.approx(hz.max())
    assert report.output.rate_max_abs_error == pytest.approx(np.abs(rate_out - keras_out).max())
    assert report.output.ideal_max_abs_error == pytest.approx(np.abs(ideal_out - keras_out).max())
    assert report.rate_agreement == np.mean(rate_out.argmax(1) == keras_out.argmax(1))
    assert report.spike_agreement == np.mean(spikes.predictions == keras_out.argmax(1))
    assert report.pooling is None and report.keras_accuracy is None


def test_verify_takes_keras_activations_from_the_exact_ideal_rate_mode(conv_case):
    """An exact conversion needs no Keras run: the report's figures equal the Keras ones
    up to float32 round-off; LIF neurons (another rate curve) fall back to Keras."""
    ref, model, net = conv_case
    images, labels = ref.arrays["images"], np.array([0, 1, 2])
    keras_report = verify(model, net, images, steps=20, labels=labels, reference="keras")
    auto = verify(ref.keras_path, net, images, steps=20, labels=labels)
    assert auto.reference == "ideal rate mode"
    assert "Keras not run" in auto.to_table()
    for a, k in zip([*auto.layers, auto.output], [*keras_report.layers, keras_report.output]):
        assert a.name == k.name and math.isnan(a.ideal_max_abs_error)
        assert k.ideal_max_abs_error <= 1e-5 * max(1.0, k.keras_max)
        tol = 1e-5 * max(1.0, k.keras_max)
        assert a.rate_max_abs_error == pytest.approx(k.rate_max_abs_error, abs=tol)
        assert a.rate_mean_abs_error == pytest.approx(k.rate_mean_abs_error, abs=tol)
        assert a.keras_max == pytest.approx(k.keras_max, abs=tol)
        assert a.spike_correlation == pytest.approx(k.spike_correlation, abs=1e-5, nan_ok=True)
        assert a.spike_mean_rate_hz == pytest.approx(k.spike_mean_rate_hz, rel=0, nan_ok=True)
    assert (auto.rate_agreement, auto.spike_agreement, auto.keras_accuracy) == (
        keras_report.rate_agreement, keras_report.spike_agreement, keras_report.keras_accuracy)
    assert auto.to_dict()["output"]["ideal_max_abs_error"] is None
    lif = convert(ref.keras_path, {"schema_version": 1, "neuron": "LoihiLIF",
                                   "scale_firing_rates": 100, "synapse": 0.005})
    assert verify(ref.keras_path, lif, images, steps=5).reference == "keras"
    with pytest.raises(ValueError, match="has no layers"):
        verify(load_case("dense_relu").keras_path, net, images, steps=5)


def test_verify_report_table_and_dict(conv_case):
    ref, model, net = conv_case
    labels = np.array([0, 1, 2])
    report = verify(ref.keras_path, net, ref.arrays["images"], steps=20, labels=labels)
    table = report.to_table()
    for name in net.layers:
        assert name in table
    assert "Verification on 3 images, 20 steps each" in table
    assert "accuracy: Keras" in table
    doc = json.loads(json.dumps(report.to_dict()))  # JSON-able
    assert [c["name"] for c in doc["layers"]] == list(net.layers)
    assert doc["keras_accuracy"] == pytest.approx(
        np.mean(ref.arrays["keras_output"].argmax(1) == labels))


def test_verify_shows_the_cost_of_max_to_average_pooling(tmp_path):
    rng = np.random.default_rng(7)
    model = keras.Sequential([keras.Input((8, 8, 1)), L.Conv2D(4, 3, activation="relu"),
                              L.MaxPooling2D(2, name="mp"), L.Flatten(), L.Dense(3)])
    model.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in model.get_weights()])
    model.save(tmp_path / "mp.keras")
    images = rng.uniform(0, 1, (40, 8, 8, 1)).astype("float32")
    labels = model.predict(images, verbose=0).argmax(1)
    labels[:5] = (labels[:5] + 1) % 3  # Keras is then 87.5 % accurate
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = convert(tmp_path / "mp.keras", {"schema_version": 1, "scale_firing_rates": 50})
    report = verify(model, net, images, steps=10, labels=labels)
    cost = report.pooling
    assert cost.substituted == ["mp"]
    ideal_pred = run_rates(net, images, ideal=True).argmax(1)
    keras_pred = model.predict(images, verbose=0).argmax(1)
    assert cost.agreement == np.mean(ideal_pred == keras_pred)
    assert cost.keras_accuracy == pytest.approx(35 / 40)
    assert cost.converted_accuracy == np.mean(ideal_pred == labels)
    # the substitution shows up as a rate-mode error that ideal neurons do not remove
    assert report.output.ideal_max_abs_error > 1e-3
    assert "max → average pooling (mp)" in report.to_table()


# ---------------------------------------------------------------------------------------
# loihi-studio inspect
# ---------------------------------------------------------------------------------------

def test_inspect_prints_layers_neurons_and_split(capsys):
    path = load_case("tutorial_random").keras_path
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "to-spikes" in out and "neuron layer (13, 13, 32)" in out
    assert "readout (host)" in out
    assert "total 10164 neurons: 7812 on chip, 2352 off chip" in out
    assert "off chip (host)" in out


def test_inspect_json_with_config(tmp_path, capsys):
    path = load_case("conv_relu").keras_path
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"schema_version": 1, "scale_firing_rates": 40,
                               "layers": {"conv0": {"on_chip": False, "block_shape": [2, 2, 8]}}}))
    assert main(["inspect", str(path), "--config", str(cfg), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    layers = {n["name"]: n for n in doc["neuron_layers"]}
    assert layers["conv0"]["on_chip"] is False and layers["conv0"]["block_shape"] == [2, 2, 8]
    assert layers["conv1"]["scale_firing_rates"] == 40 and layers["conv1"]["n_neurons"] == 128
    assert [entry["convertible"] for entry in doc["layers"]] == [True] * 7
    assert doc["error"] is None and doc["model"]["sha256"]


def test_inspect_unsupported_model_exits_2_with_the_reason(tmp_path, capsys):
    x = keras.Input((6,), name="img")
    h = L.Dense(6, activation="relu", name="d1")(x)
    out = L.Dense(2, name="out")(L.Multiply(name="skip")([h, L.Dense(6, name="d2")(h)]))
    keras.Model(x, out).save(tmp_path / "skip.keras")
    assert main(["inspect", str(tmp_path / "skip.keras")]) == 2
    captured = capsys.readouterr()
    assert "Multiply 'skip' is a nonlinear merge" in captured.err
    assert "skip" in captured.out and "NO" in captured.out


def test_inspect_missing_file_exits_2(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "none.keras")]) == 2
    assert "none.keras' does not exist" in capsys.readouterr().err
