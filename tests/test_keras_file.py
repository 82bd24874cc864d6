"""The TF-free ``.keras`` reader gives the Keras loader's graph, and commands stay TF-free.

Each comparison loads the same real file twice: with Keras (``LOIHI_STUDIO_KERAS_LOADER=1``)
and with :func:`loihi_core.keras_file.read_graph`; every field must be equal and every
weight bit-equal.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import layers as L

from loihi_core import graph as G
from loihi_core.keras_file import read_graph

import zoo  # noqa: E402 (tests/ is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "assets" / "examples" / "mnist_tutorial.keras"
FILES = sorted((ROOT / "tests" / "data" / "reference").glob("*.keras")) + \
    sorted((ROOT / "assets" / "examples").glob("*.keras"))


def _keras_graph(path, monkeypatch):
    monkeypatch.setenv(G.KERAS_LOADER_ENV, "1")
    graph = G.load_model(path)
    monkeypatch.delenv(G.KERAS_LOADER_ENV)
    return graph


def assert_same_graph(expected: G.LayerGraph, got: G.LayerGraph) -> None:
    for name in ("name", "input_names", "output_names", "source", "sha256", "keras_version"):
        assert getattr(got, name) == getattr(expected, name), name
    assert got.names == expected.names
    for a, b in zip(expected.nodes, got.nodes):
        for name in ("name", "kind", "keras_class", "input_shapes", "output_shape",
                     "activation", "config", "inputs"):
            assert getattr(b, name) == getattr(a, name), (a.name, name)
        assert list(b.weights) == list(a.weights), a.name
        for var, value in a.weights.items():
            assert b.weights[var].dtype == value.dtype and b.weights[var].shape == value.shape
            assert np.array_equal(b.weights[var], value), (a.name, var)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_bundled_files_read_without_keras_equal_the_keras_graph(path, monkeypatch):
    assert read_graph(path) is not None  # understood, no fallback
    assert_same_graph(_keras_graph(path, monkeypatch), G.load_model(path))


@pytest.mark.parametrize("name", list(zoo.BUILDERS))
def test_zoo_files_read_without_keras_equal_the_keras_graph(name, tmp_path, monkeypatch):
    path = tmp_path / f"{name}.keras"
    zoo.BUILDERS[name]().save(path)
    assert read_graph(path) is not None
    assert_same_graph(_keras_graph(path, monkeypatch), G.load_model(path))


def test_sequential_models_with_pooling_read_without_keras(tmp_path, monkeypatch):
    """A Sequential whose layers have no output-shape rule here (pooling, padding,
    upsampling) still reads without Keras: the next layer's recorded input shape is used."""
    L = keras.layers
    model = keras.Sequential([
        keras.Input((12, 12, 1)), L.Conv2D(4, 3, activation="relu", name="conv"),
        L.ZeroPadding2D(1), L.AveragePooling2D(2, name="pool"), L.UpSampling2D(2),
        L.MaxPooling2D(3, strides=2, padding="same"), L.Flatten(name="flat"),
        L.Dense(3, name="out")])
    path = tmp_path / "pooling.keras"
    model.save(path)
    assert read_graph(path) is not None
    assert_same_graph(_keras_graph(path, monkeypatch), G.load_model(path))


def relu(x):  # a custom function that merely *is called* relu
    return keras.ops.maximum(x, 0.0)


@keras.saving.register_keras_serializable(package="test")
def registered_relu(x):
    return keras.ops.maximum(x, 0.0)


def test_activations_mean_what_keras_makes_of_the_file(tmp_path, monkeypatch):
    """A plain custom ``relu`` is saved by Keras as the string "relu" (the file cannot tell
    it apart; Keras loads its own relu), a registered function as a dict: the reader gives
    the same as Keras for the first and hands the second to Keras."""
    model = keras.Sequential([keras.Input((5,)), L.Dense(4, activation=relu, name="d"),
                              L.Dense(2, name="out")])
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as zf:
        saved = json.loads(zf.read("config.json"))["config"]["layers"][1]["config"]["activation"]
    assert saved == "relu"
    assert_same_graph(_keras_graph(tmp_path / "m.keras", monkeypatch),
                      G.load_model(tmp_path / "m.keras"))
    model = keras.Sequential([keras.Input((5,)), L.Dense(4, activation=registered_relu, name="d"),
                              L.Dense(2, name="out")])
    model.save(tmp_path / "r.keras")
    with zipfile.ZipFile(tmp_path / "r.keras") as zf:
        saved = json.loads(zf.read("config.json"))["config"]["layers"][1]["config"]["activation"]
    assert isinstance(saved, dict)
    assert read_graph(tmp_path / "r.keras") is None
    assert G.load_model(tmp_path / "r.keras")["d"].activation.startswith("custom function")


@pytest.mark.parametrize("activation", ["relu", "linear", "softmax", "relu6", "leaky_relu",
                                        "sigmoid", "tanh"])
def test_activation_strings_match_the_keras_path(activation, tmp_path, monkeypatch):
    model = keras.Sequential([keras.Input((5,)), L.Dense(4, activation=activation, name="d"),
                              L.Dense(2, name="out")])
    model.save(tmp_path / "m.keras")
    understood = read_graph(tmp_path / "m.keras") is not None
    assert understood == (activation in ("relu", "linear", "softmax", "relu6", "leaky_relu"))
    assert_same_graph(_keras_graph(tmp_path / "m.keras", monkeypatch),
                      G.load_model(tmp_path / "m.keras"))


def test_nested_model_and_shared_layer_fall_back_to_keras(tmp_path):
    inner = keras.Sequential([keras.Input((4,)), L.Dense(3)], name="inner")
    x = keras.Input((4,))
    keras.Model(x, L.Dense(2)(inner(x))).save(tmp_path / "nested.keras")
    assert read_graph(tmp_path / "nested.keras") is None
    assert G.load_model(tmp_path / "nested.keras").nodes[1].kind == "unsupported"
    shared = L.Dense(4, name="shared")
    x = keras.Input((4,))
    keras.Model(x, shared(shared(x))).save(tmp_path / "shared.keras")
    assert read_graph(tmp_path / "shared.keras") is None
    with pytest.raises(G.ModelLoadError, match="shared"):
        G.load_model(tmp_path / "shared.keras")


# ---------------------------------------------------------------------------------------
# commands that do not train import no TensorFlow
# ---------------------------------------------------------------------------------------

_WRAPPER = (
    "import atexit, runpy, sys\n"
    "atexit.register(lambda: print('HEAVY', sorted(m for m in ('tensorflow', 'keras') "
    "if m in sys.modules), file=sys.stderr))\n"
    "sys.argv = ['loihi-studio'] + sys.argv[1:]\n"
    "runpy.run_module('loihi_core', run_name='__main__')\n"
)


def _command(tmp_path, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _WRAPPER, *map(str, args)], cwd=tmp_path,
                          capture_output=True, text=True)


@pytest.mark.parametrize("command", ["map", "inspect", "export-json", "export-lava", "simulate",
                                     "calibrate"])
def test_commands_on_the_example_never_import_tensorflow(command, tmp_path):
    args = {
        "map": ["map", EXAMPLE],
        "inspect": ["inspect", EXAMPLE],
        "export-json": ["export", EXAMPLE, "--format", "json", "--out", tmp_path / "o.json"],
        "export-lava": ["export", EXAMPLE, "--format", "lava-hdf5", "--out", tmp_path / "o.h5"],
        "simulate": ["simulate", EXAMPLE, "--inputs", EXAMPLE.with_name("mnist_test.npz"),
                     "--out", tmp_path / "o.npz", "--n-images", "4", "--steps", "10"],
        "calibrate": ["calibrate", EXAMPLE, "--config", EXAMPLE.with_suffix(".config.json"),
                      "--data", EXAMPLE.with_name("mnist_test.npz"), "--n-images", "8",
                      "--eval-images", "16", "--target-rate", "150", "--force",
                      "--out", tmp_path / "c.json"],
    }[command]
    out = _command(tmp_path, *args)
    assert out.returncode in ((0, 1) if command == "calibrate" else (0,)), out.stderr
    assert "HEAVY []" in out.stderr, out.stderr
    if command == "calibrate":
        assert "TensorFlow is not imported" in out.stdout
    if command == "simulate":
        assert np.load(tmp_path / "o.npz")["predictions"].shape[0] == 4


def test_verify_of_an_exact_conversion_imports_no_tensorflow():
    """``verify`` takes the Keras activations from the exact ideal rate mode."""
    code = ("import sys, numpy as np, loihi_core as lc\n"
            f"data = np.load({str(EXAMPLE.with_name('mnist_test.npz'))!r})\n"
            f"net = lc.convert({str(EXAMPLE)!r}, {str(EXAMPLE.with_suffix('.config.json'))!r})\n"
            f"r = lc.verify({str(EXAMPLE)!r}, net, data['images'][:32], steps=20,\n"
            "              labels=data['labels'][:32])\n"
            "print(r.reference, len(r.layers), r.rate_agreement, r.keras_accuracy)\n"
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    summary, heavy = out.stdout.strip().splitlines()[-2:]
    assert heavy == "[]", out.stdout + out.stderr
    reference, n_layers, agreement, accuracy = summary.rsplit(" ", 3)
    assert reference == "ideal rate mode" and int(n_layers) == 4
    assert float(agreement) >= 0.9 and float(accuracy) >= 0.9


def test_app_start_up_imports_no_tensorflow():
    code = ("import sys, app.dashboard, app.data\n"
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr
