"""Keras model import (``loihi_core.graph``): files, graph walking, activation spellings.

Imports TensorFlow/Keras (about 6 s, once per test process).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import zipfile

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from loihi_core.errors import ConversionError, ModelLoadError  # noqa: E402
from loihi_core.graph import LayerGraph, activation_name, load_model  # noqa: E402
from refcases import CASES, REFERENCE_DIR, load_case  # noqa: E402

L = keras.layers


def _chain(input_shape, *layers, name=None):
    x = keras.Input(input_shape, name="img")
    h = x
    for layer in layers:
        h = layer(h)
    return keras.Model(x, h, name=name)


# ---------------------------------------------------------------------------------------
# reference files
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES)
def test_reference_file_reads_into_plain_graph(case):
    path = REFERENCE_DIR / f"{case}.keras"
    graph = load_model(path)
    ref = load_case(case)
    spec = ref.settings["layers"]
    assert graph.names == [name for _, name, _ in spec]
    assert graph.input_names == ("input",) and graph.output_names == (spec[-1][1],)
    assert graph.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert graph.source == str(path) and graph.keras_version == "3.15.1"
    kinds = {"input": "input", "dense": "dense", "conv": "conv2d", "flatten": "flatten"}
    for node, (kind, name, params) in zip(graph, spec):
        assert node.kind == kinds[kind]
        assert node.activation == ("relu" if params.get("activation") == "relu" else "linear")
        if kind in ("dense", "conv"):
            np.testing.assert_array_equal(node.weights["kernel"], ref.arrays[f"weights/{name}/kernel"])
            if params.get("use_bias"):
                np.testing.assert_array_equal(node.weights["bias"], ref.arrays[f"weights/{name}/bias"])
            else:
                assert "bias" not in node.weights
    for prev, node in zip(graph.nodes, graph.nodes[1:]):
        assert node.inputs == (prev.name,)
        assert node.input_shape == prev.output_shape
    # plain data: survives pickling without Keras objects
    clone = pickle.loads(pickle.dumps(graph))
    assert isinstance(clone, LayerGraph) and clone.names == graph.names
    np.testing.assert_array_equal(clone[graph.names[1]].weights["kernel"],
                                  graph[graph.names[1]].weights["kernel"])
    assert b"keras.src" not in pickle.dumps(graph)


def test_graph_lookup_errors_name_the_layers():
    graph = load_model(REFERENCE_DIR / "dense_relu.keras")
    with pytest.raises(KeyError, match="its layers are: input, to_spikes"):
        graph["nope"]
    assert graph.consumers("hidden") == ["hidden2"]
    assert graph.layer_shapes()["hidden"] == (32,)


# ---------------------------------------------------------------------------------------
# Keras 3 internals the walker relies on (pinned: a Keras upgrade must fail here first)
# ---------------------------------------------------------------------------------------

def test_keras_private_graph_attributes_still_exist(tmp_path):
    seq = keras.Sequential([keras.Input((4,)), L.Dense(3, name="d1"), L.Dense(2, name="d2")])
    assert not hasattr(seq, "operations")  # why we go through _functional
    functional = seq._functional
    assert [op.name for op in functional.operations][1:] == ["d1", "d2"]
    depths = functional._nodes_by_depth
    node = depths[0][0]
    assert node.operation.name == "d2" and [p.operation.name for p in node.parent_nodes] == ["d1"]
    seq.save(tmp_path / "s.keras")
    reloaded = keras.saving.load_model(tmp_path / "s.keras", safe_mode=True, compile=False)
    assert len(reloaded.get_layer("d1")._inbound_nodes) > 1  # why we use _nodes_by_depth
    graph = load_model(tmp_path / "s.keras")
    assert [n.name for n in graph][1:] == ["d1", "d2"]
    assert graph["d2"].inputs == ("d1",) and graph["d1"].inputs == (graph.input_names[0],)


def test_sequential_and_functional_give_the_same_graph(tmp_path):
    rng = np.random.default_rng(0)
    layers = lambda: [L.Conv2D(2, 3, activation="relu", name="c"), L.Flatten(name="f"),  # noqa: E731
                      L.Dense(3, name="d")]
    seq = keras.Sequential([keras.Input((6, 6, 1)), *layers()])
    fun = _chain((6, 6, 1), *layers())
    for m in (seq, fun):
        m.set_weights([rng.normal(size=w.shape).astype("float32") for w in seq.get_weights()]
                      if m is seq else seq.get_weights())
    seq.save(tmp_path / "seq.keras")
    for source in (seq, fun, tmp_path / "seq.keras"):
        graph = load_model(source)
        assert [(n.name, n.kind, n.output_shape) for n in graph][1:] == [
            ("c", "conv2d", (4, 4, 2)), ("f", "flatten", (32,)), ("d", "dense", (3,))]
        np.testing.assert_array_equal(graph["c"].weights["kernel"], seq.get_layer("c").kernel.numpy())
        assert graph["c"].inputs == graph.input_names
    assert load_model(seq).sha256 is None and load_model(seq).source is None


def test_unbuilt_sequential_and_subclassed_models_are_refused():
    with pytest.raises(ModelLoadError, match="not built"):
        load_model(keras.Sequential([L.Dense(3)]))

    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.d = L.Dense(2)

        def call(self, x):
            return self.d(x)

    sub = Sub()
    sub(np.zeros((1, 3), "float32"))
    with pytest.raises(ModelLoadError, match="subclassed"):
        load_model(sub)
    with pytest.raises(ModelLoadError, match="expected a keras.Model"):
        load_model(42)


def test_shared_layer_is_refused_with_its_name():
    shared = L.Dense(4, name="shared")
    x = keras.Input((4,))
    model = keras.Model(x, shared(shared(x)))
    with pytest.raises(ModelLoadError, match="'shared'.*called 2 times"):
        load_model(model)


def test_branching_model_loads_and_records_all_inputs():
    x = keras.Input((4,), name="x")
    a = L.Dense(3, name="a")(x)
    b = L.Dense(3, name="b")(x)
    model = keras.Model(x, L.Add(name="add")([a, b]))
    graph = load_model(model)
    assert graph["add"].kind == "merge" and set(graph["add"].inputs) == {"a", "b"}
    assert graph["add"].input_shapes == ((3,), (3,))
    assert sorted(graph.consumers("x")) == ["a", "b"]


# ---------------------------------------------------------------------------------------
# activation spellings
# ---------------------------------------------------------------------------------------

RELU_SPELLINGS = {
    "string": "relu",
    "keras.activations.relu": keras.activations.relu,
    "keras.ops.relu": keras.ops.relu,
    "tf.nn.relu": tf.nn.relu,
    "tf.keras.activations.relu": tf.keras.activations.relu,
    "ReLU() object": L.ReLU(),
}


@pytest.mark.parametrize("spelling", list(RELU_SPELLINGS))
def test_every_relu_spelling_is_recognised_in_memory_and_from_file(spelling, tmp_path):
    value = RELU_SPELLINGS[spelling]
    if spelling == "ReLU() object":
        value = L.ReLU()  # a fresh layer object per model
    model = _chain((5,), L.Dense(4, activation=value, name="d"), L.Dense(2, name="out"))
    assert load_model(model)["d"].activation == "relu"
    model.save(tmp_path / "m.keras")
    assert load_model(tmp_path / "m.keras")["d"].activation == "relu"


def test_how_keras_3_serialises_each_spelling(tmp_path):
    """Functions are saved by *name* (tf.nn.relu → "relu"); a ReLU object as a dict."""
    model = _chain((5,), *[L.Dense(2, activation=v, name=f"d{i}")
                           for i, v in enumerate(RELU_SPELLINGS.values())],
                   L.Dense(2, activation=None, name="lin"))
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as zf:
        layers = json.loads(zf.read("config.json"))["config"]["layers"]
    saved = {entry["config"]["name"]: entry["config"].get("activation") for entry in layers}
    assert [saved[f"d{i}"] for i in range(5)] == ["relu"] * 5
    assert saved["d5"]["class_name"] == "ReLU" and saved["lin"] == "linear"


@pytest.mark.parametrize("layer, expected", [
    (lambda: L.ReLU(), "relu"),
    (lambda: L.Activation("relu"), "relu"),
    (lambda: L.Activation(tf.nn.relu), "relu"),
    (lambda: L.Activation(keras.activations.relu), "relu"),
    (lambda: L.Activation("linear"), "linear"),
    (lambda: L.Activation("softmax"), "softmax"),
    (lambda: L.ReLU(max_value=6.0), "ReLU(max_value=6.0)"),
    (lambda: L.ReLU(negative_slope=0.1), "ReLU(negative_slope=0.1)"),
    (lambda: L.ReLU(threshold=0.5), "ReLU(threshold=0.5)"),
    (lambda: L.Activation("sigmoid"), "sigmoid"),
    (lambda: L.Activation("relu6"), "relu6"),
    (lambda: L.Activation("leaky_relu"), "leaky_relu"),
    (lambda: L.LeakyReLU(), "LeakyReLU(negative_slope=0.3)"),
])
def test_activation_layers_are_normalised_after_a_file_round_trip(layer, expected, tmp_path):
    model = _chain((5,), L.Dense(4, name="d"), layer())
    model.save(tmp_path / "m.keras")
    for source in (model, tmp_path / "m.keras"):
        node = load_model(source).nodes[-1]
        assert node.activation == expected


def test_none_and_linear_are_linear_and_unknown_functions_are_never_relu():
    assert activation_name(None) == "linear"
    assert activation_name("linear") == "linear"
    assert activation_name(keras.activations.softmax) == "softmax"
    assert activation_name("tanh") == "tanh"

    def relu(x):  # a custom function that merely *is called* relu
        return keras.ops.maximum(x, 0.0)

    assert activation_name(relu).startswith("custom function")
    assert activation_name(lambda x: x).startswith("custom function")
    model = _chain((5,), L.Dense(4, activation=relu, name="d"), L.Dense(2))
    assert load_model(model)["d"].activation.startswith("custom function")
    from loihi_core.convert import plan_conversion

    with pytest.raises(ConversionError, match=r"'d' \(Dense\): activation 'custom function"):
        plan_conversion(load_model(model))


# ---------------------------------------------------------------------------------------
# file errors
# ---------------------------------------------------------------------------------------

def test_missing_and_non_keras_files_raise_model_load_error_naming_the_file(tmp_path):
    with pytest.raises(ModelLoadError, match="nope.keras' does not exist"):
        load_model(tmp_path / "nope.keras")
    (tmp_path / "text.keras").write_text("hello")
    with pytest.raises(ModelLoadError, match="text.keras' is not a Keras 3 '.keras' file"):
        load_model(tmp_path / "text.keras")
    with pytest.raises(ModelLoadError, match="is a directory"):
        load_model(tmp_path)
    (tmp_path / "model.pb").write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="does not end in '.keras'"):
        load_model(tmp_path / "model.pb")
    with zipfile.ZipFile(tmp_path / "other.keras", "w") as zf:
        zf.writestr("hello.txt", "hi")
    with pytest.raises(ModelLoadError, match="other.keras' is not a Keras 3 .*config.json"):
        load_model(tmp_path / "other.keras")


def test_legacy_h5_is_refused_with_how_to_resave(tmp_path):
    model = _chain((3,), L.Dense(2, activation="relu"), L.Dense(1))
    model.save(tmp_path / "old.h5")
    with pytest.raises(ModelLoadError, match=r"legacy HDF5 .*model.save\('old.keras'\)"):
        load_model(tmp_path / "old.h5")
    (tmp_path / "renamed.keras").write_bytes((tmp_path / "old.h5").read_bytes())
    with pytest.raises(ModelLoadError, match="legacy HDF5 file renamed"):
        load_model(tmp_path / "renamed.keras")


def test_corrupt_file_is_refused(tmp_path):
    good = (REFERENCE_DIR / "dense_relu.keras").read_bytes()
    (tmp_path / "cut.keras").write_bytes(good[: len(good) // 2])
    with pytest.raises(ModelLoadError, match="cut.keras"):
        load_model(tmp_path / "cut.keras")
    flipped = bytearray(good)
    with zipfile.ZipFile(REFERENCE_DIR / "dense_relu.keras") as zf:
        info = zf.getinfo("model.weights.h5")
    flipped[info.header_offset + 100] ^= 0xFF  # inside the stored weights
    (tmp_path / "flip.keras").write_bytes(bytes(flipped))
    with pytest.raises(ModelLoadError, match="flip.keras"):
        load_model(tmp_path / "flip.keras")


def test_safe_mode_refuses_lambda_layers(tmp_path):
    model = _chain((3,), L.Dense(2), L.Lambda(lambda t: t * 2.0, name="times2"))
    model.save(tmp_path / "lam.keras")
    with pytest.raises(ModelLoadError, match="lam.keras' contains code .*safe mode"):
        load_model(tmp_path / "lam.keras")
