"""Conversion (``loihi_core.convert``): every supported layer against ``model.predict``,
every unsupported layer against its error, the reference cases against NengoDL's numbers.

Models are small, built with fixed random weights and saved to real ``.keras`` files.
Imports TensorFlow/Keras (about 6 s, once per test process).
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import warnings

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from loihi_core import neurons as nt  # noqa: E402
from loihi_core.config import TunedConfig  # noqa: E402
from loihi_core.convert import convert, default_on_chip, neuron_layer_shapes  # noqa: E402
from loihi_core.errors import ConfigError, ConversionError  # noqa: E402
from loihi_core.simulate import run_rates  # noqa: E402
from loihi_core.verify import keras_activations  # noqa: E402
from refcases import CASES, case_config, load_case, reference_network  # noqa: E402

L = keras.layers
IDEAL = {"schema_version": 1, "neuron": "RectifiedLinear", "scale_firing_rates": 7.3}


def chain(input_shape, *layers):
    x = keras.Input(input_shape, name="img")
    h = x
    for layer in layers:
        h = layer(h)
    return keras.Model(x, h)


def randomize(model, seed=0):
    """Fixed random weights; BatchNormalization gets non-trivial statistics."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        new = []
        for var in layer.weights:
            shape = tuple(var.shape)
            if var.name == "moving_variance":
                new.append(rng.uniform(0.3, 2.0, shape))
            elif var.name == "gamma":
                new.append(rng.uniform(0.5, 1.5, shape))
            else:
                new.append(rng.normal(0, 0.4, shape))
        if new:
            layer.set_weights([w.astype("float32") for w in new])
    return model


def images_for(model, n=6, seed=1):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, (n, *model.input_shape[1:])).astype("float32")


def assert_round_off_equal(got, want):
    want = np.asarray(want, np.float64)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * max(1.0, np.abs(want).max()))


# ---------------------------------------------------------------------------------------
# supported layers: rate mode == model.predict (through a real .keras file)
# ---------------------------------------------------------------------------------------

SUPPORTED = {
    "dense bias / no bias": lambda: chain(
        (7,), L.Dense(6, activation="relu"), L.Dense(5, activation="relu", use_bias=False),
        L.Dense(3)),
    "conv valid strides": lambda: chain(
        (9, 9, 2), L.Conv2D(4, 3, strides=2, activation="relu"),
        L.Conv2D(3, (2, 3), strides=(1, 2), activation="relu", use_bias=False), L.Flatten(),
        L.Dense(3)),
    "conv same strides (odd sizes)": lambda: chain(
        (9, 7, 2), L.Conv2D(4, 3, strides=2, padding="same", activation="relu"),
        L.Conv2D(3, (2, 4), strides=(1, 3), padding="same", activation="relu"), L.Flatten(),
        L.Dense(3)),
    "batch norm after conv and dense": lambda: chain(
        (8, 8, 2), L.Conv2D(4, 3, use_bias=False), L.BatchNormalization(epsilon=0.01), L.ReLU(),
        L.Flatten(), L.Dense(6), L.BatchNormalization(), L.Activation("relu"), L.Dense(2)),
    "batch norm without center/scale": lambda: chain(
        (6,), L.Dense(5), L.BatchNormalization(center=False, scale=False, epsilon=0.1),
        L.ReLU(), L.Dense(2)),
    "avg pool then conv": lambda: chain(
        (9, 9, 2), L.Conv2D(4, 3, activation="relu"), L.AveragePooling2D(2),
        L.Conv2D(3, 2, activation="relu"), L.Flatten(), L.Dense(3)),
    "avg pool 3 then strided conv": lambda: chain(
        (12, 12, 2), L.Conv2D(4, 1, activation="relu"), L.AveragePooling2D(3),
        L.Conv2D(3, 3, strides=2, activation="relu"), L.Flatten(), L.Dense(3)),
    "avg pool then same conv (even padding)": lambda: chain(
        (8, 8, 2), L.Conv2D(4, 1, activation="relu"), L.AveragePooling2D(2),
        L.Conv2D(3, 3, padding="same", activation="relu"), L.Flatten(), L.Dense(3)),
    "avg pool with remainder then flatten dense": lambda: chain(
        (9, 9, 2), L.Conv2D(4, 3, activation="relu"), L.AveragePooling2D((2, 3)), L.Flatten(),
        L.Dense(5, activation="relu"), L.Dense(3)),
    "two pools in a row": lambda: chain(
        (13, 13, 2), L.Conv2D(4, 3, activation="relu"), L.AveragePooling2D(2),
        L.AveragePooling2D((1, 2)), L.Flatten(), L.Dense(5, activation="relu"), L.Dense(3)),
    "pool before readout": lambda: chain(
        (8, 8, 2), L.Conv2D(4, 3, activation="relu"), L.AveragePooling2D(2), L.Flatten(),
        L.Dense(3)),
    "model ends in pooling": lambda: chain(
        (8, 8, 2), L.Conv2D(4, 3, activation="relu"), L.AveragePooling2D(2), L.Flatten()),
    "global average pooling": lambda: chain(
        (8, 8, 2), L.Conv2D(4, 3, activation="relu"), L.GlobalAveragePooling2D(), L.Dense(3)),
    "global average pooling keepdims": lambda: chain(
        (8, 8, 2), L.Conv2D(4, 3, activation="relu"), L.GlobalAveragePooling2D(keepdims=True),
        L.Conv2D(5, 1, activation="relu"), L.Flatten(), L.Dense(3)),
    "dense on an image (1x1 conv)": lambda: chain(
        (6, 6, 2), L.Conv2D(4, 3, activation="relu"), L.Dense(5, activation="relu"),
        L.Flatten(), L.Dense(3)),
    "reshape, dropout, softmax": lambda: chain(
        (12,), L.Dense(32, activation="relu"), L.Reshape((4, 4, 2)),
        L.Conv2D(3, 2, activation="relu"), L.Flatten(), L.Dropout(0.5),
        L.Dense(3, activation="softmax")),
    "softmax activation layer": lambda: chain(
        (6,), L.Dense(5, activation="relu"), L.Dense(3), L.Activation("softmax")),
    "Softmax layer": lambda: chain(
        (6,), L.Dense(5, activation="relu"), L.Dense(3), L.Softmax()),
    "model ends in a neuron layer": lambda: chain(
        (6,), L.Dense(5, activation="relu"), L.Dense(4, activation="relu")),
    "relu after pooling is dropped": lambda: chain(
        (8, 8, 2), L.Conv2D(4, 3, activation="relu"), L.AveragePooling2D(2), L.ReLU(),
        L.Flatten(), L.Dense(3)),
    "conv transpose valid": lambda: chain(
        (5, 5, 2), L.Conv2D(3, 1, activation="relu"),
        L.Conv2DTranspose(4, 3, strides=2, activation="relu"), L.Flatten(), L.Dense(3)),
    "conv transpose same + batch norm": lambda: chain(
        (5, 4, 2), L.Conv2D(3, 1, activation="relu"),
        L.Conv2DTranspose(4, (4, 3), strides=(2, 3), padding="same"), L.BatchNormalization(),
        L.ReLU(), L.Flatten(), L.Dense(3)),
    "every relu spelling": lambda: chain(
        (6,), L.Dense(5, activation=tf.nn.relu), L.Dense(4, activation=keras.activations.relu),
        L.Dense(4, activation=keras.ops.relu), L.Dense(4, activation=L.ReLU()), L.Dense(4),
        L.ReLU(), L.Dense(4), L.Activation("relu"), L.Dense(4), L.Activation(tf.nn.relu),
        L.Dense(3)),
}


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    """Each SUPPORTED model, randomised and saved once: name → (model, path)."""
    root = tmp_path_factory.mktemp("models")
    out = {}
    for i, (name, build) in enumerate(SUPPORTED.items()):
        model = randomize(build(), seed=i)
        path = root / f"m{i}.keras"
        model.save(path)
        out[name] = (model, path)
    return out


@pytest.mark.parametrize("name", list(SUPPORTED))
def test_rate_mode_equals_model_predict(name, saved_models):
    model, path = saved_models[name]
    x = images_for(model)
    network = convert(path, IDEAL)
    assert_round_off_equal(run_rates(network, x), model.predict(x, verbose=0))


@pytest.mark.parametrize("name", list(SUPPORTED))
def test_every_neuron_layer_equals_its_keras_layer_output(name, saved_models):
    model, path = saved_models[name]
    x = images_for(model)
    network = convert(path, IDEAL)
    _, layers = run_rates(network, x, return_layers=True)
    keras_out = keras_activations(model, list(network.layers), x)
    for layer_name in network.layers:
        assert_round_off_equal(layers[layer_name], keras_out[layer_name])


def test_in_memory_model_converts_like_its_file(saved_models):
    model, path = saved_models["batch norm after conv and dense"]
    a, b = convert(model, IDEAL), convert(path, IDEAL)
    assert list(a.layers) == list(b.layers) and len(a.layers) == 2
    for ca, cb in zip(a.connections, b.connections):
        np.testing.assert_array_equal(ca.weights, cb.weights)
    assert b.model_sha256 is not None and a.model_sha256 is None


def test_sequential_model_converts(tmp_path):
    model = randomize(keras.Sequential([
        keras.Input((8, 8, 1)), L.Conv2D(2, 3, activation="relu"), L.AveragePooling2D(2),
        L.Flatten(), L.Dense(4, activation="relu"), L.Dense(3)]))
    model.save(tmp_path / "seq.keras")
    x = images_for(model)
    for source in (model, tmp_path / "seq.keras"):
        assert_round_off_equal(run_rates(convert(source, IDEAL), x), model.predict(x, verbose=0))


def test_structure_of_a_folded_network():
    """Pooling folds into the next connection as an expanded kernel; conv → BN → ReLU is
    one neuron layer named after the ReLU; the readout reads the last neuron layer."""
    model = randomize(chain(
        (12, 12, 2), L.Conv2D(4, 1, activation="relu", name="c1"),
        L.AveragePooling2D(3, name="pool"), L.Conv2D(3, 3, strides=2, name="c2"),
        L.BatchNormalization(name="bn"), L.ReLU(name="r2"), L.Flatten(name="flat"),
        L.Dense(2, name="out")))
    net = convert(model, IDEAL)
    assert list(net.layers) == ["c1", "r2"]
    first, second = net.connections
    assert (first.pre, first.post, first.synapse) == ("img", "c1", None)
    assert (second.pre, second.post, second.kind) == ("c1", "r2", "conv")
    assert second.weights.shape == (9, 9, 4, 3) and second.weights.dtype == np.float32
    assert (second.strides, second.pre_shape, second.post_shape) == ((6, 6), (12, 12, 4), (1, 1, 3))
    assert net.layers["r2"].keras_layers == ("pool", "c2", "bn", "r2")
    assert net.layer_roles["bn"].startswith("batch normalization, folded")
    assert net.layer_roles["c2"] == "weights"
    assert (net.readout.name, net.readout.pre, net.readout.weights.shape) == ("out", "r2", (3, 2))
    assert net.readout.keras_layers == ("flat", "out")


def test_max_pooling_is_replaced_by_average_pooling_with_a_warning(tmp_path):
    def build(pool):
        return chain((8, 8, 2), L.Conv2D(4, 3, activation="relu"), pool, L.Flatten(),
                     L.Dense(3))

    maxed = randomize(build(L.MaxPooling2D(2, name="mp")), seed=5)
    averaged = build(L.AveragePooling2D(2, name="ap"))
    averaged.set_weights(maxed.get_weights())
    maxed.save(tmp_path / "max.keras")
    with pytest.warns(UserWarning, match="MaxPooling2D 'mp' replaced by AveragePooling2D"):
        net = convert(tmp_path / "max.keras", IDEAL)
    assert net.max_pool_substituted == ["mp"]
    assert any("'mp' replaced" in note for note in net.notes)
    x = images_for(maxed)
    assert_round_off_equal(run_rates(net, x), averaged.predict(x, verbose=0))
    assert not np.allclose(run_rates(net, x), maxed.predict(x, verbose=0), atol=1e-3)
    with pytest.raises(ConversionError, match="MaxPooling2D 'mp' cannot be computed .*"
                                              "max_to_avg_pool"):
        convert(tmp_path / "max.keras", {**IDEAL, "max_to_avg_pool": False})


# ---------------------------------------------------------------------------------------
# unsupported layers and combinations: a named ConversionError
# ---------------------------------------------------------------------------------------

def _skip_model():
    x = keras.Input((6,), name="img")
    h = L.Dense(6, activation="relu", name="d1")(x)
    h2 = L.Dense(6, activation="relu", name="d2")(h)
    return keras.Model(x, L.Dense(2, name="out")(L.Add(name="skip")([h, h2])))


def _concat_model():
    x = keras.Input((6,), name="img")
    a = L.Dense(3, activation="relu", name="a")(x)
    b = L.Dense(3, activation="relu", name="b")(x)
    return keras.Model(x, L.Concatenate(name="cat")([a, b]))


def _two_outputs():
    x = keras.Input((6,), name="img")
    h = L.Dense(4, activation="relu", name="h")(x)
    return keras.Model(x, [L.Dense(2, name="o1")(h), L.Dense(2, name="o2")(h)])


def _merge_model(merge):
    x = keras.Input((6,), name="img")
    a = L.Dense(4, activation="relu", name="a")(x)
    b = L.Dense(4, activation="relu", name="b")(x)
    return keras.Model(x, L.Dense(2, name="out")(merge([a, b])))


def _attention_model():
    x = keras.Input((4, 6), name="img")
    h = L.Dense(6, activation="relu", name="h")(x)
    return keras.Model(x, L.Flatten()(L.MultiHeadAttention(1, 2, name="att")(h, h)))


def _input_skip_model():
    x = keras.Input((6,), name="img")
    h = L.Dense(6, activation="relu", name="h")(x)
    return keras.Model(x, L.Add(name="add")([h, x]))


UNSUPPORTED = {
    "two outputs": (_two_outputs,
        r"2 outputs"),
    "lstm": (lambda: chain((5, 3), L.LSTM(4, name="rnn"), L.Dense(2)),
        r"LSTM 'rnn' is a recurrent layer"),
    "sigmoid": (lambda: chain((6,), L.Dense(4, activation="sigmoid", name="d"), L.Dense(2)),
        r"layer 'd' \(Dense\): activation 'sigmoid'"),
    "no relu at all": (lambda: chain((6,), L.Dense(4), L.Activation("linear"), ),
        r"no relu"),
    "softmax in the middle": (lambda: chain((6,), L.Dense(4, activation="softmax", name="s"),
                                            L.Dense(3, activation="relu"), L.Dense(2)),
        r"follows a softmax"),
    "unknown input size": (lambda: chain((None, None, 1), L.Conv2D(2, 3, activation="relu"),
                                         L.GlobalAveragePooling2D(), L.Dense(2)),
        r"input 'img' has shape \(None, None, 1\) with unknown sizes"),
    "channels_first": (lambda: chain((1, 6, 6), L.Conv2D(2, 3, activation="relu", name="c",
                                                         data_format="channels_first"),
                                     L.Flatten(), L.Dense(2)),
        r"'c' \(Conv2D\) uses data_format='channels_first'"),
    "multiply": (lambda: _merge_model(L.Multiply(name="mul")),
                 r"Multiply 'mul' is a nonlinear merge"),
    "maximum": (lambda: _merge_model(L.Maximum(name="mx")), r"Maximum 'mx' is a nonlinear merge"),
    "gru": (lambda: chain((5, 3), L.GRU(4, name="rnn"), L.Dense(2)), r"GRU 'rnn' is a recurrent"),
    "attention": (lambda: _attention_model(), r"attention"),
    "conv3d": (lambda: chain((4, 4, 4, 1), L.Conv3D(2, 3, activation="relu", name="c3"),
                             L.Flatten(), L.Dense(2)), r"Conv3D 'c3' is not supported: only 1-D and 2-D"),
    "softmax before a relu layer": (lambda: chain((6,), L.Dense(4, activation="softmax", name="s"),
                                                  L.ReLU(name="r"), L.Dense(2)),
                                    r"follows a softmax"),
    "output reads the input": (lambda: _input_skip_model(), r"reads the model input directly"),
    "bilinear upsampling": (lambda: chain((4, 4, 1), L.Conv2D(2, 1, activation="relu"),
                                          L.UpSampling2D(interpolation="bilinear", name="up"),
                                          L.Flatten(), L.Dense(2)),
                            r"'up' uses interpolation='bilinear'; only 'nearest'"),
}

#: Architectures the chain-only converter of 0.1 refused; all are exact now (rate mode with
#: ideal neurons equals model.predict).
NOW_SUPPORTED = {
    "add (skip connection)": _skip_model,
    "concatenate": _concat_model,
    "depthwise conv": lambda: chain((6, 6, 2), L.DepthwiseConv2D(3, name="dw"), L.ReLU(),
                                     L.Flatten(), L.Dense(2)),
    "leaky relu layer": lambda: chain((6,), L.Dense(4), L.LeakyReLU(name="lr"), L.Dense(2)),
    "leaky relu activation": lambda: chain((6,), L.Dense(4, activation="leaky_relu", name="d"),
                                            L.Dense(2)),
    "relu6 layer": lambda: chain((6,), L.Dense(4), L.ReLU(max_value=6.0, name="r6"), L.Dense(2)),
    "relu with slope": lambda: chain((6,), L.Dense(4), L.ReLU(negative_slope=0.2, name="r"),
                                      L.Dense(2)),
    "same pooling": lambda: chain((8, 8, 2), L.Conv2D(2, 3, activation="relu"),
                                   L.AveragePooling2D(2, padding="same", name="p"), L.Flatten(),
                                   L.Dense(2)),
    "overlapping pooling": lambda: chain((8, 8, 2), L.Conv2D(2, 3, activation="relu"),
                                          L.AveragePooling2D(3, strides=2, name="p"),
                                          L.Flatten(), L.Dense(2)),
    "pool then same conv, odd padding": 
        lambda: chain((8, 8, 2), L.Conv2D(4, 1, activation="relu"), L.AveragePooling2D(2),
                      L.Conv2D(3, 2, padding="same", activation="relu", name="c"), L.Flatten(),
                      L.Dense(3)),
    "pool then same conv, cropped rows": 
        lambda: chain((9, 9, 2), L.Conv2D(4, 1, activation="relu"), L.AveragePooling2D(2),
                      L.Conv2D(3, 3, padding="same", activation="relu", name="c"), L.Flatten(),
                      L.Dense(3)),
    "two weighted layers in a row": 
        lambda: chain((6,), L.Dense(4, activation="relu"), L.Dense(4, name="lin"),
                      L.Dense(3, activation="relu", name="next"), L.Dense(2)),
    "two dense in the readout": 
        lambda: chain((6,), L.Dense(4, activation="relu"), L.Dense(4, name="lin"),
                      L.Dense(2, name="out")),
    "batch norm after relu": 
        lambda: chain((6,), L.Dense(4, activation="relu"), L.BatchNormalization(name="bn"),
                      L.Dense(2)),
    "relu on the input": lambda: chain((6,), L.ReLU(name="r"), L.Dense(4, activation="relu"),
                                        L.Dense(2)),
    "conv readout": lambda: chain((6, 6, 1), L.Conv2D(2, 3, activation="relu"),
                                   L.Conv2D(2, 3, name="c")),
    "flatten between conv and relu": 
        lambda: chain((6, 6, 1), L.Conv2D(2, 3), L.Flatten(name="f"), L.ReLU(name="r"),
                      L.Dense(2)),
    "pool between conv and relu": 
        lambda: chain((6, 6, 1), L.Conv2D(2, 3), L.AveragePooling2D(2, name="p"), L.ReLU(),
                      L.Flatten(), L.Dense(2)),
    "dilated conv": lambda: chain((8, 8, 1), L.Conv2D(2, 3, dilation_rate=2, name="c",
                                                       activation="relu"), L.Flatten(),
                                   L.Dense(2)),
    "zero padding": lambda: chain((6, 6, 1), L.ZeroPadding2D(1, name="zp"),
                                   L.Conv2D(2, 3, activation="relu"), L.Flatten(), L.Dense(2)),
    "upsampling": lambda: chain((4, 4, 1), L.Conv2D(2, 1, activation="relu"),
                                 L.UpSampling2D(name="up"), L.Flatten(), L.Dense(2)),
}


@pytest.mark.parametrize("name", list(UNSUPPORTED))
def test_unsupported_layers_raise_a_named_conversion_error(name, tmp_path):
    build, pattern = UNSUPPORTED[name]
    model = build()
    with pytest.raises(ConversionError, match=pattern):
        convert(model, IDEAL)


def test_conversion_error_carries_the_layer_name():
    build, _ = UNSUPPORTED["multiply"]
    with pytest.raises(ConversionError) as info:
        convert(build())
    assert info.value.layer == "mul"


@pytest.mark.parametrize("name", list(NOW_SUPPORTED))
def test_formerly_refused_architectures_are_exact_in_rate_mode(name):
    model = randomize(NOW_SUPPORTED[name](), seed=3)
    x = images_for(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # relu6 layers warn about the chip's saturation
        net = convert(model, IDEAL)
    assert_round_off_equal(run_rates(net, x, ideal=True).reshape(len(x), -1),
                           model.predict(x, verbose=0).reshape(len(x), -1))


# ---------------------------------------------------------------------------------------
# settings from the tuned config
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_reference_cases_convert_to_nengo_dl_gains_amplitudes_and_weights(case):
    ref = load_case(case)
    net = convert(ref.keras_path, case_config(case))
    assert list(net.layers) == list(ref.info["layers"])
    for name, want in ref.info["layers"].items():
        layer = net.layers[name]
        assert (layer.n_neurons, layer.gain, layer.amplitude, layer.on_chip) == (
            want["n_neurons"], want["gain"], want["amplitude"], want["on_chip"])
    for conn in net.connections:
        np.testing.assert_array_equal(conn.weights, ref.arrays[f"weights/{conn.post}/kernel"])
    # and everything else as the Keras-free reference builder describes it
    expected = reference_network(case)
    for name, want in expected.layers.items():
        got = net.layers[name]
        for f in ("shape", "neuron", "gain", "amplitude", "on_chip", "synapse", "block_shape"):
            assert getattr(got, f) == getattr(want, f), (name, f)
        np.testing.assert_array_equal(got.bias, want.bias)
        assert got.bias.dtype == np.float64
    for got, want in zip(net.connections, expected.connections):
        for f in ("pre", "post", "kind", "pre_shape", "post_shape", "strides", "padding", "synapse"):
            assert getattr(got, f) == getattr(want, f), (got.post, f)
    r, e = net.readout, expected.readout
    assert (r.name, r.pre, r.shape, r.activation) == (e.name, e.pre, e.shape, e.activation)
    np.testing.assert_array_equal(r.weights, e.weights)
    np.testing.assert_array_equal(r.bias, e.bias)
    assert (net.dt, net.presentation_steps) == (expected.dt, expected.presentation_steps)
    clone = pickle.loads(pickle.dumps(net))
    assert list(clone.layers) == list(net.layers)


@pytest.mark.parametrize("case", CASES)
def test_reference_rate_mode_with_ideal_neurons_equals_stored_keras_output(case):
    ref = load_case(case)
    net = convert(ref.keras_path, {**case_config(case), "neuron": "RectifiedLinear"})
    assert_round_off_equal(run_rates(net, ref.arrays["images"]), ref.arrays["keras_output"])


def test_per_layer_settings_are_applied():
    ref = load_case("dense_relu")
    config = TunedConfig.from_dict({
        "schema_version": 1, "scale_firing_rates": 10, "synapse": 0.01,
        "layers": {"to_spikes": {"synapse": None},
                   "hidden": {"scale_firing_rates": 250, "on_chip": False,
                              "neuron": {"type": "LoihiLIF", "tau_rc": 0.05, "tau_ref": 0.001}},
                   "hidden2": {"block_shape": [10]}}})
    net = convert(ref.keras_path, config)
    to_spikes, hidden, hidden2 = net.layers.values()
    assert (to_spikes.gain, to_spikes.synapse, to_spikes.on_chip) == (10, None, False)
    assert (hidden.gain, hidden.amplitude, hidden.on_chip) == (250, 1 / 250, False)
    assert hidden.neuron == nt.LoihiLIF(tau_rc=0.05, tau_ref=0.001)
    np.testing.assert_array_equal(hidden.bias, ref.arrays["weights/hidden/bias"].astype(np.float64) * 250)
    assert (hidden2.block_shape, hidden2.on_chip, hidden2.synapse) == ((10,), True, 0.01)
    assert [c.synapse for c in net.connections] == [None, None, 0.01]


def test_default_on_chip_split():
    ref = load_case("conv_relu")
    assert default_on_chip(ref.keras_path) == {"to_spikes": False, "conv0": True, "conv1": True,
                                               "dense0": True}
    assert default_on_chip(ref.keras_path, neuron=nt.RectifiedLinear()) == dict.fromkeys(
        ["to_spikes", "conv0", "conv1", "dense0"], False)
    assert neuron_layer_shapes(ref.keras_path)["conv0"] == (4, 4, 8)


def test_config_errors_name_the_layer():
    path = load_case("conv_relu").keras_path
    with pytest.raises(ConfigError, match="layers.conv9: the model has no layer 'conv9'"):
        convert(path, {"schema_version": 1, "layers": {"conv9": {"scale_firing_rates": 2}}})
    with pytest.raises(ConfigError, match="layers.conv0.block_shape: expected 3 positive ints"):
        convert(path, {"schema_version": 1, "layers": {"conv0": {"block_shape": [4, 4]}}})
    with pytest.raises(ConfigError, match="'flatten' has no nonlinearity"):
        convert(path, {"schema_version": 1, "layers": {"flatten": {"scale_firing_rates": 2}}})
    with pytest.raises(ConfigError, match="layers.out.synapse: 'out' has no neurons"):
        convert(path, {"schema_version": 1, "layers": {"out": {"synapse": 0.01}}})
    with pytest.raises(ConversionError, match="'conv0' is set on chip but its neuron type "
                                              "RectifiedLinear cannot run on Loihi"):
        convert(path, {"schema_version": 1, "neuron": "RectifiedLinear",
                       "layers": {"conv0": {"on_chip": True}}})


def test_settings_under_a_folded_layer_name_are_redirected():
    model = chain((6,), L.Dense(4, name="dense_a"), L.ReLU(name="relu_a"), L.Dense(2))
    with pytest.raises(ConfigError, match="'dense_a' is folded into neuron layer 'relu_a'; "
                                          "put its settings under 'relu_a'"):
        convert(model, {"schema_version": 1, "layers": {"dense_a": {"scale_firing_rates": 3}}})
    net = convert(model, {"schema_version": 1, "layers": {"relu_a": {"scale_firing_rates": 3}}})
    assert net.layers["relu_a"].gain == 3 and net.layers["relu_a"].keras_layers == (
        "dense_a", "relu_a")


def test_ideal_network_is_independent_of_scale():
    """scale_firing_rates multiplies gain and divides amplitude: rate mode is unchanged."""
    ref = load_case("conv_relu")
    x = ref.arrays["images"]
    outs = [run_rates(convert(ref.keras_path, {**IDEAL, "scale_firing_rates": s}), x)
            for s in (0.5, 1, 300)]
    for out in outs[1:]:
        np.testing.assert_allclose(out, outs[0], rtol=1e-9, atol=1e-12)


def test_converting_does_not_warn_for_plain_models():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net = convert(load_case("tutorial_random").keras_path, IDEAL)
    assert net.max_pool_substituted == [] and dataclasses.is_dataclass(net)


def test_large_on_chip_first_layer_gets_sparse_on_off_maps_with_the_same_values(monkeypatch):
    """Past DENSE_MAX_ENTRIES the input encoder's [I, -I] maps are sparse (a 128x128x3 image
    would need 19 GB dense); the encoder and first-layer connections hold the same values
    and the emulator gives the same spikes as with the dense maps."""
    import sys

    from loihi_core.emulator import Emulator
    from loihi_core.mapping import map_to_chip

    model = randomize(chain((6, 6, 2), L.Conv2D(4, 3, activation="relu", name="conv0"),
                            L.Flatten(), L.Dense(3, name="out")))
    cfg = {"schema_version": 1, "presentation_steps": 12, "scale_firing_rates": 50,
           "layers": {"conv0": {"on_chip": True}}}
    dense = convert(model, cfg)
    monkeypatch.setattr(sys.modules["loihi_core.convert"], "DENSE_MAX_ENTRIES", 0)
    sparse = convert(model, cfg)
    kinds = [(c.pre, c.post, c.kind) for c in sparse.connections]
    assert kinds[0] == ("img", "img_encoder", "sparse") and kinds[1][:2] == ("img_encoder", "conv0")
    assert dense.connections[0].kind == "dense"  # small maps stay as they were
    for a, b in zip(dense.connections, sparse.connections):
        wa = a.weights.toarray() if hasattr(a.weights, "toarray") else a.weights
        wb = b.weights.toarray() if hasattr(b.weights, "toarray") else b.weights
        np.testing.assert_array_equal(wa, wb)
    x = images_for(model, n=3)
    runs = [Emulator(map_to_chip(net)).run(x, 12, mode="sequential") for net in (dense, sparse)]
    for name, counts in runs[0].spike_counts.items():
        np.testing.assert_array_equal(counts, runs[1].spike_counts[name])
    np.testing.assert_array_equal(runs[0].output, runs[1].output)
    assert runs[0].spike_counts["conv0"].sum() > 0
