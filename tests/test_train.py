"""Loihi-aware training (``loihi_core.train``) and the ``loihi-studio train`` command.

The activation is checked against the NumPy neuron models of ``loihi_core.neurons``
(forward: the reference rate; gradient: the smooth rate's), the trained models against
the converter and the simulator, on small models and real MNIST digits. Imports
TensorFlow/Keras (about 6 s, once per test process).
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from loihi_core import neurons as nt  # noqa: E402
from loihi_core.cli import main  # noqa: E402
from loihi_core.config import TunedConfig, load_config  # noqa: E402
from loihi_core.convert import convert  # noqa: E402
from loihi_core.data import load_images_npz, load_mnist  # noqa: E402
from loihi_core.errors import ConfigError, ConversionError, DataError  # noqa: E402
from loihi_core.example import build_tutorial_model, write_example_config  # noqa: E402
from loihi_core.simulate import run_rates, run_spiking  # noqa: E402
from loihi_core.train import (evaluate_spiking, finetune_spiking, loihi_activation,  # noqa: E402
                              rate_model, spiking_model, train)

L = keras.layers
DT = 0.001


@pytest.fixture(scope="module")
def mnist():
    s = load_mnist(n_test=1000, seed=0)
    return s.x_train[:1500], s.y_train[:1500], s.x_test[:500], s.y_test[:500]


def small_model(seed: int = 0, softmax: bool = True):
    """Every relu spelling the converter knows: in-layer, ReLU(), Activation("relu")."""
    keras.utils.set_random_seed(seed)
    x = keras.Input((28, 28, 1), name="img")
    h = L.Conv2D(8, 5, strides=3, activation="relu", name="conv")(x)
    h = L.Flatten(name="flat")(h)
    h = L.ReLU(name="relu1")(L.Dense(48, name="d1")(h))
    h = L.Activation("relu", name="relu2")(L.Dense(24, name="d2")(h))
    out = L.Dense(10, activation="softmax" if softmax else None, name="out")(h)
    return keras.Model(x, out, name="small")


def tiny_dense(seed: int = 0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((28, 28, 1)), L.AveragePooling2D(2, name="pool"),
                             L.Flatten(name="flat"), L.Dense(32, activation="relu", name="hid"),
                             L.Dense(10, name="out")], name="tiny")


@pytest.fixture(scope="module")
def tiny_trained(mnist):
    """``tiny_dense`` trained through Loihi rates at scale 50 (about 85 % accurate)."""
    return train(tiny_dense(), mnist[0][:800], mnist[1][:800], epochs=3, learning_rate=3e-3,
                 scale_firing_rates=50.0).model


def cfg(scale, **extra):
    return TunedConfig.from_dict({"schema_version": 1, "scale_firing_rates": scale, **extra})


def accuracy(pred, labels):
    return float(np.mean(np.asarray(pred).argmax(axis=1) == labels))


def value_and_grad(layer, x):
    xv = tf.Variable(x)
    with tf.GradientTape() as tape:
        y = layer(xv)
    return y.numpy(), tape.gradient(y, xv).numpy()


# ---------------------------------------------------------------------------------------
# the activation
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("scale", [1.0, 100.0, 730.0])
def test_loihi_relu_forward_is_the_reference_rate_and_gradient_the_smooth_one(scale):
    # currents from below zero to past the one-spike-per-step ceiling, plus exact plateaus
    J = np.concatenate([np.linspace(-50, 2500, 4001), 1000.0 / np.arange(1, 60), [0.0, 1e-9]])
    x = (J / scale).astype(np.float32)
    J64 = scale * x.astype(np.float64)
    y, g = value_and_grad(loihi_activation("loihi", scale, DT), x)
    assert y.dtype == np.float32
    want = nt.LoihiSpikingRectifiedLinear().rates_from_current(J64, DT) / scale
    np.testing.assert_allclose(y, want, rtol=2e-7, atol=1e-30)
    # the staircase lies between J/(1 + J·dt) and min(J, 1/dt) (values ≈ relu(x))
    pos = J64 > 0
    assert np.all(y[pos] <= np.minimum(x[pos], 1 / (DT * scale)) * (1 + 1e-6))
    assert np.all(y[pos] >= x[pos] / (1 + J64[pos] * DT) * (1 - 1e-6))
    # gradient: d/dx [smooth(scale·x)/scale] = A / (1 + dt·J/2)², zero below threshold
    want_g = np.where(J64 > 0, 1.0 / (1 + 0.5 * DT * J64) ** 2, 0.0)
    np.testing.assert_allclose(g, want_g, rtol=1e-5, atol=1e-12)


def test_loihi_relu_gradient_matches_a_finite_difference_of_neurons_smooth_rates():
    neuron = nt.LoihiSpikingRectifiedLinear(amplitude=0.5)
    x = np.linspace(0.05, 20, 300).astype(np.float32)
    scale, h = 50.0, 1e-3
    _, g = value_and_grad(loihi_activation(neuron, scale, DT), x)
    J = scale * x.astype(np.float64)
    fd = (neuron.smooth_rates(J + h, DT) - neuron.smooth_rates(J - h, DT)) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=1e-5)


def test_loihi_lif_forward_and_gradient():
    neuron = nt.LoihiLIF(tau_rc=0.02, tau_ref=0.002)
    scale = 10.0
    J = np.concatenate([np.linspace(-2, 60, 3001), [1.0, 1.01, 1.1, 1.5, 2, 5, 10, 20, 40, 100]])
    x = (J / scale).astype(np.float32)
    J64 = scale * x.astype(np.float64)
    y, g = value_and_grad(loihi_activation("loihi-lif", scale, DT), x)
    np.testing.assert_allclose(y, neuron.rates_from_current(J64, DT) / scale, rtol=2e-7, atol=1e-30)
    # the spec's worked values (rates() at gain 1): 20, 62.5, 200, 333.33 Hz
    idx = [np.flatnonzero(np.isclose(J, v))[-1] for v in (1.1, 2, 10, 40)]
    np.testing.assert_allclose(y[idx] * scale, [20, 62.5, 200, 1000 / 3], rtol=1e-5)
    # gradient = d smooth_rates/dJ (the LIF curve with tau_ref + dt/2); skip the kink at J = 1
    h = 1e-5
    fd = (neuron.smooth_rates(J64 + h, DT) - neuron.smooth_rates(J64 - h, DT)) / (2 * h)
    ok = np.abs(J64 - 1) > 0.05
    np.testing.assert_allclose(g[ok], fd[ok], rtol=2e-4, atol=1e-3)
    assert np.all(g[J64 <= 1] == 0) and np.all(np.isfinite(g))


def test_ideal_relu_neuron_is_plain_relu_whatever_the_scale():
    x = np.linspace(-3, 3, 61).astype(np.float32)
    y, g = value_and_grad(loihi_activation("relu", 37.0, DT), x)
    np.testing.assert_allclose(y, np.maximum(x, 0), rtol=1e-6)
    np.testing.assert_array_equal(g, (x > 0).astype(np.float32))


def test_rate_regularization_adds_the_band_penalty():
    layer = loihi_activation("loihi", 100.0, DT, rate_regularization=(20.0, 200.0, 3.0))
    # neuron 0: 0 Hz (below the band), neuron 1: in the band, neuron 2: mean 500 Hz (above)
    x = np.array([[-1.0, 1.0, 4.0], [-1.0, 1.0, 6.0]], np.float32)
    layer(x)
    (loss,) = [float(v) for v in layer.losses]
    J = 100 * x.astype(np.float64)
    hz = nt.LoihiSpikingRectifiedLinear().smooth_rates(J, DT).mean(axis=0)
    dist = (np.maximum(20 - hz, 0) + np.maximum(hz - 200, 0)) / 200
    assert loss == pytest.approx(3.0 * np.mean(dist ** 2), rel=1e-5)
    assert loss > 0


@pytest.mark.parametrize("bad, message", [
    (dict(neuron="sigmoid"), "unknown neuron type 'sigmoid'"),
    (dict(scale_firing_rates=0.0), "scale_firing_rates: must be a positive number"),
    (dict(rate_regularization=(100, 10)), "0 <= low < high"),
    (dict(rate_regularization="fast"), r"expected \(low_hz, high_hz\)"),
])
def test_activation_settings_are_validated(bad, message):
    with pytest.raises(ConfigError, match=message):
        loihi_activation(**bad)


# ---------------------------------------------------------------------------------------
# rate training
# ---------------------------------------------------------------------------------------

def test_rate_model_is_the_converted_networks_rate_mode(mnist):
    model = small_model(softmax=False)
    x = mnist[2][:64]
    keras_loihi = rate_model(model, scale_firing_rates=20.0).predict(x, verbose=0)
    net = convert(model, cfg(20.0))
    sim = run_rates(net, x)
    # float32 (Keras) vs float64 (simulator) currents can land on different sides of a
    # plateau edge for a few neurons; nearly every output agrees to round-off
    close = np.all(np.abs(keras_loihi - sim) <= 1e-4 + 1e-4 * np.abs(sim), axis=1)
    assert close.mean() >= 0.95
    assert np.mean(keras_loihi.argmax(1) == sim.argmax(1)) >= 0.98
    # and it differs from the ideal model: the quantization is really there
    assert np.abs(keras_loihi - model.predict(x, verbose=0)).max() > 1e-3


def test_training_through_loihi_rates_learns_and_returns_a_plain_model(mnist, tmp_path):
    x_train, y_train, x_test, y_test = mnist
    model = small_model()
    before = [w.copy() for w in model.get_weights()]
    untrained = accuracy(run_rates(convert(model, cfg(100.0)), x_test), y_test)
    trained, history = train(model, x_train, y_train, neuron="loihi", scale_firing_rates=100.0,
                             epochs=4, batch_size=32, learning_rate=3e-3, validation_split=0.2)
    # the input model is untouched; the result has the same architecture
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert [layer.get_config() for layer in trained.layers] == \
           [layer.get_config() for layer in model.layers]
    assert not trained.compiled
    assert set(history) >= {"loss", "accuracy", "val_loss", "val_accuracy", "seconds"}
    assert len(history["loss"]) == 4 and history["loss"][-1] < history["loss"][0]
    assert history["val_accuracy"][-1] >= 0.8
    # it learned, and the converted network (Loihi rates, scale 100) keeps the accuracy
    loihi_acc = accuracy(run_rates(convert(trained, cfg(100.0)), x_test), y_test)
    assert untrained < 0.3
    assert accuracy(trained.predict(x_test, verbose=0), y_test) >= 0.85
    assert loihi_acc >= 0.85
    # saved, it loads in safe mode without custom objects, converts and predicts the same
    path = tmp_path / "tuned.keras"
    trained.save(path)
    with zipfile.ZipFile(path) as zf:
        assert "Loihi" not in zf.read("config.json").decode()
    loaded = keras.saving.load_model(path, safe_mode=True, compile=False)
    np.testing.assert_allclose(loaded.predict(x_test[:20], verbose=0),
                               trained.predict(x_test[:20], verbose=0), rtol=1e-6, atol=1e-7)
    net = convert(path, cfg(100.0))
    assert list(net.layers) == ["conv", "relu1", "relu2"]
    assert accuracy(run_rates(net, x_test), y_test) == loihi_acc


@pytest.mark.slow
def test_same_seed_same_weights_and_per_layer_settings(mnist):
    x, y = mnist[0][:200], mnist[1][:200]
    scales = {"hid": 40.0}
    a, _ = train(tiny_dense(), x, y, scale_firing_rates=scales, epochs=1, seed=5)
    b, _ = train(tiny_dense(), x, y, scale_firing_rates=scales, epochs=1, seed=5)
    c, _ = train(tiny_dense(), x, y, scale_firing_rates=scales, epochs=1, seed=6)
    assert all(np.array_equal(u, v) for u, v in zip(a.get_weights(), b.get_weights()))
    assert not all(np.array_equal(u, v) for u, v in zip(a.get_weights(), c.get_weights()))
    assert isinstance(a, keras.Sequential) and [la.name for la in a.layers] == \
        ["pool", "flat", "hid", "out"]
    lif, history = train(tiny_dense(), x, y, neuron={"hid": "loihi-lif"},
                         scale_firing_rates={"hid": 5.0}, epochs=1, validation_split=0.0)
    assert np.isfinite(history["loss"][0]) and "val_loss" not in history


@pytest.mark.slow
def test_rate_regularization_pulls_rates_into_the_band(mnist):
    x, y = mnist[0][:400], mnist[1][:400]
    model = tiny_dense(seed=2)

    def mean_rate(m):
        net = convert(m, cfg(300.0))
        _, acts = run_rates(net, x[:200], return_layers=True)
        return float((acts["hid"] / net.layers["hid"].amplitude).mean())

    settings = dict(scale_firing_rates=300.0, epochs=1, learning_rate=3e-3)
    plain = mean_rate(train(model, x, y, **settings).model)
    down = mean_rate(train(model, x, y, rate_regularization=(0.0, 10.0, 10.0), **settings).model)
    up = mean_rate(train(model, x, y, rate_regularization=(100.0, 300.0, 10.0), **settings).model)
    assert 10 < plain < 100
    assert down < 0.7 * plain
    assert up > 1.5 * plain


def test_training_refuses_unconvertible_models_bad_settings_and_bad_data(mnist):
    x, y = mnist[0][:50], mnist[1][:50]
    keras.utils.set_random_seed(0)
    inp = keras.Input((28, 28, 1))
    sigmoid = keras.Model(inp, L.Dense(10)(L.Dense(8, activation="sigmoid", name="sig")(
        L.Flatten()(inp))))
    with pytest.raises(ConversionError, match="sig"):
        train(sigmoid, x, y, epochs=1)
    model = tiny_dense()
    with pytest.raises(ConfigError, match="no value for neuron layer 'hid'"):
        train(model, x, y, scale_firing_rates={"other": 3.0}, epochs=1)
    with pytest.raises(ConfigError, match="epochs: must be an integer >= 1"):
        train(model, x, y, epochs=0)
    with pytest.raises(DataError, match="label 12 is out of range: the model has 10 outputs"):
        train(model, x, np.full(50, 12), epochs=1)
    with pytest.raises(DataError, match=r"the model takes \(n, 28, 28, 1\)"):
        train(model, np.zeros((50, 14, 14, 1), np.float32), y, epochs=1)
    with pytest.raises(DataError, match="labels are required"):
        train(model, x, None, epochs=1)


# ---------------------------------------------------------------------------------------
# spiking fine-tuning
# ---------------------------------------------------------------------------------------

def test_unrolled_spiking_model_is_run_spiking(mnist, tiny_trained):
    model = tiny_trained
    config = cfg(400.0, synapse=0.005)
    x = mnist[2][:40]
    sim = run_spiking(convert(model, config), x, presentation_steps=15)
    last = spiking_model(model, config, steps=15, loss_steps=1).predict(x, verbose=0)
    mean4 = spiking_model(model, config, steps=15, loss_steps=4).predict(x, verbose=0)
    assert np.ptp(sim.output, axis=1).max() > 0.3  # spikes did reach the readout
    scale = np.abs(sim.output).max()
    np.testing.assert_allclose(last, sim.output[:, -1], atol=1e-5 * scale)
    np.testing.assert_allclose(mean4, sim.output[:, -4:].mean(axis=1), atol=1e-5 * scale)
    assert np.mean(last.argmax(1) == mnist[3][:40]) > 0.5


def test_spiking_finetune_reduces_the_loss_and_returns_a_loadable_model(mnist, tiny_trained,
                                                                       tmp_path):
    x_train, y_train, x_test, y_test = mnist
    model = tiny_trained
    config = cfg(50.0, synapse=0.005)
    settings = dict(config=config, steps=15, loss_steps=5)
    x, y = x_train[800:1200], y_train[800:1200]
    before = evaluate_spiking(model, x, y, **settings)
    tuned, history = finetune_spiking(model, x, y, epochs=2, learning_rate=1e-3, **settings)
    after = evaluate_spiking(tuned, x, y, **settings)
    assert after["loss"] < before["loss"] - 0.05
    assert len(history["loss"]) == 2
    path = tmp_path / "spiking.keras"
    tuned.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True, compile=False)
    assert [la.get_config() for la in loaded.layers] == [la.get_config() for la in model.layers]
    convert(path, config)


def test_spiking_finetune_needs_loihi_relu_neurons(mnist):
    with pytest.raises(ConversionError, match="LoihiSpikingRectifiedLinear neurons only"):
        spiking_model(tiny_dense(), cfg(10.0, neuron="LoihiLIF"))
    with pytest.raises(ConfigError, match="loss_steps: must be <= steps"):
        spiking_model(tiny_dense(), steps=3, loss_steps=4)


# ---------------------------------------------------------------------------------------
# the CLI
# ---------------------------------------------------------------------------------------

@pytest.fixture
def cli_files(tmp_path, mnist):
    model_path = tmp_path / "tiny.keras"
    tiny_dense().save(model_path)
    data = tmp_path / "data.npz"
    x, y = mnist[0][:800], mnist[1][:800]
    np.savez_compressed(data, images=np.round(x * 255).astype(np.uint8), labels=y)
    return tmp_path, model_path, data


def test_cli_train_end_to_end(cli_files, capsys):
    tmp_path, model_path, data = cli_files
    config = tmp_path / "cfg.json"
    cfg(1.0, synapse=0.005).with_layer("hid", scale_firing_rates=60.0).save(config)
    out = tmp_path / "tuned.keras"
    rc = main(["train", str(model_path), "--data", str(data), "--config", str(config),
               "--epochs", "3", "--learning-rate", "0.003", "--validation-split", "0.125",
               "--rate-target", "10", "400", "--spiking-finetune", "6", "--out", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "hid (LoihiSpikingRectifiedLinear, scale 60)" in printed
    assert "Loihi rate-mode accuracy on 100 validation images" in printed
    assert f"wrote {out}" in printed
    loaded = keras.saving.load_model(out, safe_mode=True, compile=False)
    x = np.load(data)["images"][-100:].astype(np.float32) / 255
    acc = accuracy(run_rates(convert(out, config), x), np.load(data)["labels"][-100:])
    assert acc >= 0.6
    assert [la.name for la in loaded.layers] == ["pool", "flat", "hid", "out"]


@pytest.mark.parametrize("change, message", [
    (lambda t, d: ["--data", str(t / "missing.npz")], "data file .*missing.npz.* does not exist"),
    (lambda t, d: ["--out", str(t / "out.h5")], "--out: .* must end in '.keras'"),
    (lambda t, d: ["--epochs", "0"], "nothing to train"),
    (lambda t, d: ["--neuron", "sigmoid"], "--neuron: unknown neuron type 'sigmoid'"),
])
def test_cli_train_errors(cli_files, capsys, change, message):
    tmp_path, model_path, data = cli_files
    args = {"--data": str(data), "--out": str(tmp_path / "out.keras"), "--epochs": "1"}
    extra = change(tmp_path, data)
    args.update(dict(zip(extra[::2], extra[1::2])))
    rc = main(["train", str(model_path), *[v for kv in args.items() for v in kv]])
    assert rc == 2
    assert pytest.importorskip("re").search(message, capsys.readouterr().err)
    assert not (tmp_path / "out.keras").exists()


def test_cli_train_refuses_unlabelled_or_malformed_data(cli_files, capsys):
    tmp_path, model_path, _ = cli_files
    np.savez(tmp_path / "nolabels.npz", images=np.zeros((4, 28, 28, 1), np.float32))
    np.savez(tmp_path / "wrong.npz", images=np.zeros((4, 10), np.float32), labels=[0, 1, 2, 3])
    out = str(tmp_path / "out.keras")
    assert main(["train", str(model_path), "--data", str(tmp_path / "nolabels.npz"),
                 "--out", out]) == 2
    assert "has no 'labels' array" in capsys.readouterr().err
    assert main(["train", str(model_path), "--data", str(tmp_path / "wrong.npz"),
                 "--out", out]) == 2
    assert "the model takes (n, 28, 28, 1)" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------
# the bundled example
# ---------------------------------------------------------------------------------------

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "examples"


def test_example_config_is_the_tutorials_and_takes_per_layer_scales(tmp_path):
    path = tmp_path / "cfg.json"
    written = write_example_config(path, scales={"conv0": 250.0, "dense0": 80})
    config = load_config(path)
    assert config == written
    assert (config.dt, config.presentation_steps, config.synapse) == (0.001, 100, 0.005)
    assert isinstance(config.neuron, nt.LoihiSpikingRectifiedLinear)
    assert config.scale_firing_rates == 100
    settings = {name: config.for_layer(name) for name in
                ("to-spikes", "conv0", "conv1", "dense0")}
    assert [s.scale_firing_rates for s in settings.values()] == [100, 250, 100, 80]
    assert settings["to-spikes"].on_chip is False
    assert [s.block_shape for s in settings.values()] == [None, (16, 16, 4), (8, 8, 16), (50,)]
    net = convert(build_tutorial_model(), config)
    assert {name: layer.shape for name, layer in net.layers.items()} == {
        "to-spikes": (28, 28, 3), "conv0": (13, 13, 32), "conv1": (6, 6, 64), "dense0": (100,)}
    assert [layer.on_chip for layer in net.layers.values()] == [False, True, True, True]
    with pytest.raises(ConfigError, match="the example has no neuron layer 'dense1'"):
        write_example_config(path, scales={"dense1": 3.0})
    with pytest.raises(ConfigError, match="scale_firing_rates"):
        write_example_config(path, scales={"conv0": -1.0})


@pytest.mark.skipif(not (ASSETS / "mnist_tutorial.keras").exists(),
                    reason="example assets not built (make assets)")
def test_bundled_example_assets():
    images, labels = load_images_npz(ASSETS / "mnist_test.npz", require_labels=True,
                                     input_shape=(28, 28, 1))
    assert images.shape == (1000, 28, 28, 1) and np.array_equal(np.bincount(labels), [100] * 10)
    assert (ASSETS / "mnist_test.npz").stat().st_size < 1 << 20
    assert sum(p.stat().st_size for p in ASSETS.iterdir()) < 2 << 20
    config = load_config(ASSETS / "mnist_tutorial.config.json")
    model = keras.saving.load_model(ASSETS / "mnist_tutorial.keras", safe_mode=True, compile=False)
    assert [la.name for la in model.layers] == [
        "input", "to-spikes", "conv0", "conv1", "flatten", "dense0", "dense1"]
    assert accuracy(model.predict(images[:300], verbose=0), labels[:300]) >= 0.93
    net = convert(ASSETS / "mnist_tutorial.keras", config)
    assert accuracy(run_rates(net, images[:300]), labels[:300]) >= 0.93


def _residual_model():
    keras.utils.set_random_seed(5)
    x = keras.Input((28, 28, 1))
    h = keras.layers.Conv2D(4, 3, strides=2, activation="relu", name="c0")(x)
    y = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="ca")(h)
    y = keras.layers.Conv2D(4, 3, padding="same", name="cb")(y)
    h = keras.layers.LeakyReLU(0.1, name="res")(keras.layers.Add(name="add")([h, y]))
    h = keras.layers.Flatten()(keras.layers.AveragePooling2D(2)(h))
    return keras.Model(x, keras.layers.Dense(10, name="out")(h), name="residual")


def test_rate_and_spiking_twins_run_the_graph(mnist):
    """Graphs train like chains: the rate twin is the converted network's rate mode (with a
    merge and both halves of a leaky relu) and the unrolled twin is its float spiking run."""
    model = _residual_model()
    x = mnist[2][:32]
    net = convert(model, cfg(30.0))
    assert list(net.layers) == ["c0", "ca", "res", "res_neg"]
    keras_loihi = rate_model(model, scale_firing_rates=30.0).predict(x, verbose=0)
    sim = run_rates(net, x)
    close = np.all(np.abs(keras_loihi - sim) <= 1e-4 + 1e-4 * np.abs(sim), axis=1)
    assert close.mean() >= 0.9
    config = cfg(300.0, synapse=0.005)
    spiking = run_spiking(convert(model, config), x, presentation_steps=20)
    last = spiking_model(model, config, steps=20, loss_steps=1).predict(x, verbose=0)
    assert np.ptp(spiking.output, axis=1).max() > 0.05
    np.testing.assert_allclose(last, spiking.output[:, -1],
                               atol=1e-5 * np.abs(spiking.output).max())


def test_training_a_graph_learns(mnist):
    x_train, y_train, x_test, y_test = mnist
    model = _residual_model()
    tuned, history = train(model, x_train[:1200], y_train[:1200], scale_firing_rates=60.0,
                           epochs=3, learning_rate=3e-3, validation_split=0.0)
    assert history["loss"][-1] < 0.8 * history["loss"][0]
    before = np.mean(run_rates(convert(model, cfg(60.0)), x_test[:300]).argmax(1) == y_test[:300])
    acc = np.mean(run_rates(convert(tuned, cfg(60.0)), x_test[:300]).argmax(1) == y_test[:300])
    assert acc > max(0.3, before + 0.15), (before, acc)  # chance is 0.1
