"""Keras model import: a small, plain-data layer graph (the converter's input).

:func:`load_model` reads a Keras 3 ``.keras`` file (or takes an in-memory ``keras.Model``)
and returns a :class:`LayerGraph`: the layers in topological order with their shapes,
weights (NumPy), normalised activation and input names. Nothing Keras is kept, so a
graph pickles, travels to worker processes and is cheap to inspect without TensorFlow.

Two decisions make the converter safe:

* files are loaded with ``safe_mode=True`` (a ``Lambda`` or any pickled code is refused)
  and never unpickled by us;
* activations are recognised by *identity* of the callable (``keras.activations.relu``,
  ``keras.ops.relu``, ``tf.nn.relu``, a default ``ReLU()`` layer), never by name alone:
  Keras serialises any function called ``relu`` as the string ``"relu"``, so a custom
  ``relu`` would otherwise be silently taken for the real one. Anything not recognised
  keeps a descriptive name that the converter refuses with an error, so a relu we fail to
  recognise can never become a silent linear layer (the seed-002 bug).

Keras is imported lazily inside the functions: ``import loihi_core.graph`` stays cheap.
Files are first read without TensorFlow by :mod:`loihi_core.keras_file` (JSON config and
HDF5 weights only, same graph bit for bit); whatever that reader does not understand
exactly falls back to the Keras loader below (``LOIHI_STUDIO_KERAS_LOADER=1`` forces it).
Graph walking relies on Keras 3 internals (``Sequential._functional``,
``Functional._nodes_by_depth``, ``Node.parent_nodes``); ``tests/test_graph.py`` pins them.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .errors import ModelLoadError

#: Canonical layer kinds of the IR (``LayerNode.kind``), by Keras class name.
KIND_BY_CLASS = {
    "InputLayer": "input",
    "Dense": "dense",
    "Conv2D": "conv2d",
    "Conv2DTranspose": "conv2d_transpose",
    "Flatten": "flatten",
    "Reshape": "reshape",
    # identity at inference time
    "Dropout": "dropout",
    "SpatialDropout1D": "dropout",
    "SpatialDropout2D": "dropout",
    "SpatialDropout3D": "dropout",
    "GaussianDropout": "dropout",
    "GaussianNoise": "dropout",
    "AlphaDropout": "dropout",
    "Identity": "dropout",
    "Activation": "activation",
    "ReLU": "activation",
    "Softmax": "activation",
    "BatchNormalization": "batch_norm",
    "AveragePooling2D": "avg_pool",
    "MaxPooling2D": "max_pool",
    "GlobalAveragePooling2D": "global_avg_pool",
    "GlobalMaxPooling2D": "global_max_pool",
    # graphs, 1-D and depthwise layers (loihi_core.converter.layers)
    "Conv1D": "conv1d",
    "DepthwiseConv1D": "depthwise_conv",
    "DepthwiseConv2D": "depthwise_conv",
    "SeparableConv1D": "separable_conv",
    "SeparableConv2D": "separable_conv",
    "AveragePooling1D": "avg_pool",
    "MaxPooling1D": "max_pool",
    "GlobalAveragePooling1D": "global_avg_pool",
    "GlobalMaxPooling1D": "global_max_pool",
    "ZeroPadding1D": "padding",
    "ZeroPadding2D": "padding",
    "Cropping1D": "cropping",
    "Cropping2D": "cropping",
    "UpSampling1D": "upsampling",
    "UpSampling2D": "upsampling",
    "Permute": "permute",
    "ActivityRegularization": "dropout",
    "LeakyReLU": "activation",
    "Add": "merge",
    "Subtract": "merge",
    "Average": "merge",
    "Concatenate": "merge",
}

#: Set to ``1`` to read ``.keras`` files with Keras only (skips the TF-free reader of
#: :mod:`loihi_core.keras_file`; ``bench/bench_cli.py`` uses it for the "before" column).
KERAS_LOADER_ENV = "LOIHI_STUDIO_KERAS_LOADER"

#: The activation names the converter understands; anything else is unsupported.
SUPPORTED_ACTIVATIONS = ("relu", "linear", "softmax")

Shape = tuple  # tuple[int | None, ...] without the batch axis


@dataclass
class LayerNode:
    """One Keras layer, as plain data.

    Attributes
    ----------
    name
        The Keras layer name (unique within a model).
    kind
        Canonical kind (a value of :data:`KIND_BY_CLASS`, or ``"unsupported"``).
    keras_class
        The Keras class name (``"Conv2D"``), for messages.
    input_shapes
        Shape of each input without the batch axis (``()`` entries for none).
    output_shape
        Output shape without the batch axis.
    weights
        Variables by Keras variable name: ``kernel``, ``bias`` (Dense/Conv), ``gamma``,
        ``beta``, ``moving_mean``, ``moving_variance`` (BatchNormalization); float32 arrays.
    activation
        ``"relu"``, ``"linear"``, ``"softmax"``, or a descriptive name of an unsupported
        activation (``"sigmoid"``, ``"ReLU(max_value=6.0)"``, ``"custom function 'relu'"``).
        Layers without an activation (Flatten, pooling ...) have ``"linear"``.
    config
        ``layer.get_config()`` reduced to plain Python (JSON-like) values.
    inputs
        Names of the layers feeding this one (empty for the input layer).
    """

    name: str
    kind: str
    keras_class: str
    input_shapes: tuple[Shape, ...]
    output_shape: Shape
    weights: dict[str, np.ndarray]
    activation: str
    config: dict[str, Any]
    inputs: tuple[str, ...]

    @property
    def input_shape(self) -> Shape:
        """The single input's shape (layers with one input)."""
        if len(self.input_shapes) != 1:
            raise ValueError(f"layer {self.name!r} has {len(self.input_shapes)} inputs, not 1")
        return self.input_shapes[0]

    @property
    def n_params(self) -> int:
        return int(sum(w.size for w in self.weights.values()))


@dataclass
class LayerGraph:
    """A Keras model as an ordered list of :class:`LayerNode` (topological order).

    Attributes
    ----------
    nodes
        Layers in topological order, input layer(s) first.
    name
        The Keras model name.
    input_names, output_names
        Names of the model's input and output layers.
    source
        Path of the ``.keras`` file, or ``None`` for an in-memory model.
    sha256
        Hex SHA-256 of the file bytes (``None`` for an in-memory model): identifies the exact
        model a tuned config or a cached result belongs to.
    keras_version
        Version of Keras that read (or, for files, saved) the model.
    """

    nodes: list[LayerNode]
    name: str
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    source: str | None = None
    sha256: str | None = None
    keras_version: str | None = None
    _index: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._index = {node.name: i for i, node in enumerate(self.nodes)}

    def __iter__(self) -> Iterator[LayerNode]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def __getitem__(self, name: str) -> LayerNode:
        try:
            return self.nodes[self._index[name]]
        except KeyError:
            raise KeyError(f"the model has no layer {name!r}; its layers are: "
                           f"{', '.join(self._index)}") from None

    @property
    def names(self) -> list[str]:
        return [node.name for node in self.nodes]

    def consumers(self, name: str) -> list[str]:
        """Names of the layers that take ``name``'s output as an input."""
        return [node.name for node in self.nodes if name in node.inputs]

    def layer_shapes(self) -> dict[str, Shape]:
        """Output shape of every layer by name (what ``TunedConfig.validate_for`` takes)."""
        return {node.name: node.output_shape for node in self.nodes}


# ---------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------

def load_model(source: Any) -> LayerGraph:
    """Read a Keras 3 model into a :class:`LayerGraph`.

    Parameters
    ----------
    source
        A path to a ``.keras`` file, an in-memory ``keras.Model`` (functional or a built
        Sequential), or a :class:`LayerGraph` (returned as is).

    Raises
    ------
    ModelLoadError
        Naming the file, when it is missing, not a Keras 3 zip (a legacy ``.h5`` or a
        SavedModel directory), corrupt, or refused by Keras' safe mode (``Lambda`` layers).
    """
    if isinstance(source, LayerGraph):
        return source
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        check_keras_file(path)
        graph = None
        if os.environ.get(KERAS_LOADER_ENV, "") in ("", "0"):
            from .keras_file import read_graph  # noqa: PLC0415 (import cycle)

            graph = read_graph(path)
        if graph is None:
            graph = graph_from_model(read_keras_file(path))
        graph.source = str(path)
        graph.sha256 = file_sha256(path)
        graph.keras_version = _saved_keras_version(path) or graph.keras_version or _keras_version()
        return graph
    return graph_from_model(source)


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_keras_file(path: str | os.PathLike):
    """Load a ``.keras`` file with Keras (``safe_mode=True``, ``compile=False``).

    Checks the file first so that the common mistakes get a clear message instead of a
    Keras traceback. Returns the ``keras.Model``.
    """
    path = Path(path)
    check_keras_file(path)
    keras = _import_keras()
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:  # Keras raises ValueError/TypeError/OSError/KeyError ...
        shown = str(path)
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "safe_mode" in str(exc) or "Lambda" in str(exc):
            raise ModelLoadError(
                f"{shown!r} contains code (a Lambda layer or a pickled function) that safe mode "
                f"refuses to load; replace it with standard Keras layers. Keras said: {msg}") from None
        raise ModelLoadError(f"cannot load {shown!r}: {type(exc).__name__}: {msg}") from None


def check_keras_file(path: str | os.PathLike) -> None:
    """Refuse what is not a readable Keras 3 ``.keras`` zip, with a message naming the file.

    Raises
    ------
    ModelLoadError
        For a missing file, a directory, a legacy ``.h5``, a non-zip or a corrupt zip.
    """
    path = Path(path)
    shown = str(path)
    if path.is_dir():
        raise ModelLoadError(
            f"{shown!r} is a directory (a TensorFlow SavedModel?); Loihi Studio reads Keras 3 "
            f"'.keras' files: load it in Keras and save it with model.save('model.keras')")
    if not path.exists():
        raise ModelLoadError(f"model file {shown!r} does not exist")
    if path.suffix.lower() in (".h5", ".hdf5"):
        raise ModelLoadError(
            f"{shown!r} is a legacy HDF5 model; Loihi Studio reads Keras 3 '.keras' files: "
            f"load it in Keras and save it with model.save('{path.stem}.keras')")
    if path.suffix.lower() != ".keras":
        raise ModelLoadError(f"{shown!r} does not end in '.keras'; Loihi Studio reads Keras 3 "
                             f"'.keras' files (save with model.save('model.keras'))")
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            head = f.read(8)
        what = "a legacy HDF5 file renamed to .keras" if head.startswith(b"\x89HDF") else "not a zip archive"
        raise ModelLoadError(f"{shown!r} is not a Keras 3 '.keras' file ({what}); "
                             f"re-save the model with model.save('model.keras') in Keras 3")
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ModelLoadError(f"{shown!r} is corrupt (cannot read the zip archive: {exc})") from None
    missing = {"config.json", "metadata.json"} - names
    if missing:
        raise ModelLoadError(f"{shown!r} is not a Keras 3 '.keras' file (it has no "
                             f"{', '.join(sorted(missing))}); re-save the model with Keras 3")
    if bad is not None:
        raise ModelLoadError(f"{shown!r} is corrupt (member {bad!r} fails its CRC check)")


def _saved_keras_version(path: Path) -> str | None:
    try:
        with zipfile.ZipFile(path) as zf:
            return json.loads(zf.read("metadata.json")).get("keras_version")
    except (KeyError, ValueError, OSError, zipfile.BadZipFile):
        return None


def _keras_version() -> str | None:
    """The installed Keras version, read without importing Keras."""
    from importlib import metadata  # noqa: PLC0415

    try:
        return metadata.version("keras")
    except metadata.PackageNotFoundError:
        return None


def _import_keras():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras  # noqa: PLC0415 (lazy on purpose: TensorFlow takes seconds to import)

    return keras


# ---------------------------------------------------------------------------------------
# walking a keras.Model
# ---------------------------------------------------------------------------------------

def functional_view(model):
    """The Functional graph behind ``model`` (a Sequential's hidden twin).

    Keras 3 Sequential models have no ``.operations``; once built they keep a Functional
    twin in ``_functional`` that includes the InputLayer.
    """
    keras = _import_keras()
    if not isinstance(model, keras.Model):
        raise ModelLoadError(f"expected a keras.Model or a path to a '.keras' file, got "
                             f"{type(model).__name__}")
    if isinstance(model, keras.Sequential):
        functional = getattr(model, "_functional", None)
        if functional is None:
            raise ModelLoadError(
                f"Sequential model {model.name!r} is not built, so it has no layer graph; "
                f"start it with keras.Input(shape) or call model.build(input_shape)")
        model = functional
    if not hasattr(model, "_nodes_by_depth") or not hasattr(model, "operations"):
        raise ModelLoadError(
            f"model {model.name!r} ({type(model).__name__}) is a subclassed keras.Model, which "
            f"has no inspectable layer graph; rebuild it with the functional API or Sequential")
    return model


def model_nodes(model) -> list[tuple[Any, Any]]:
    """``(layer, node)`` pairs of the graph in topological order, one per layer call.

    Only nodes of *this* graph are used (``_nodes_by_depth``): a reloaded Sequential's
    layers carry extra inbound nodes from building and loading.
    """
    functional = functional_view(model)
    node_of: dict[int, list] = {}
    for depth in sorted(functional._nodes_by_depth, reverse=True):  # inputs are deepest
        for node in functional._nodes_by_depth[depth]:
            node_of.setdefault(id(node.operation), []).append(node)
    pairs = []
    for layer in functional.operations:  # topologically sorted, InputLayer(s) included
        nodes = node_of.get(id(layer), [])
        if len(nodes) > 1:
            raise ModelLoadError(
                f"layer {layer.name!r} ({type(layer).__name__}) is called {len(nodes)} times "
                f"(a shared layer); give each call its own layer")
        if nodes:
            pairs.append((layer, nodes[0]))
    return pairs


def graph_from_model(model) -> LayerGraph:
    """Build the plain-data :class:`LayerGraph` of an in-memory ``keras.Model``."""
    keras = _import_keras()
    functional = functional_view(model)
    nodes = []
    for layer, node in model_nodes(model):
        nodes.append(_layer_node(layer, node, keras))
    input_names = tuple(t._keras_history.operation.name for t in functional.inputs)
    output_names = tuple(t._keras_history.operation.name for t in functional.outputs)
    return LayerGraph(nodes=nodes, name=model.name, input_names=input_names,
                      output_names=output_names, keras_version=keras.__version__)


def _shape(tensor) -> Shape:
    return tuple(None if d is None else int(d) for d in tuple(tensor.shape)[1:])


def _layer_node(layer, node, keras) -> LayerNode:
    cls = type(layer).__name__
    if isinstance(layer, keras.Model):  # a nested model is one opaque "layer"
        kind = "unsupported"
    else:
        kind = KIND_BY_CLASS.get(cls, "unsupported")
    try:
        config = _plain(layer.get_config())
    except Exception as exc:  # custom layers may not implement get_config
        config = {"get_config_error": f"{type(exc).__name__}: {exc}"}
    weights = {}
    if kind != "unsupported" or not isinstance(layer, keras.Model):
        for var in layer.weights:
            name = var.name.split("/")[-1]
            weights[name] = np.array(var.numpy())
    if cls in ("ReLU", "Softmax", "LeakyReLU"):
        activation = activation_layer_name(cls, layer.get_config() if cls == "ReLU" else config)
    elif hasattr(layer, "activation") and cls not in ("PReLU", "ELU"):
        activation = activation_name(layer.activation)
    elif kind == "unsupported":
        activation = _snake(cls)  # e.g. "leaky_re_lu", "p_re_lu": named in errors
    else:
        activation = "linear"
    return LayerNode(
        name=layer.name,
        kind=kind,
        keras_class=cls,
        input_shapes=tuple(_shape(t) for t in node.input_tensors),
        output_shape=_shape(node.output_tensors[0]),
        weights=weights,
        activation=activation,
        config=config,
        inputs=tuple(p.operation.name for p in node.parent_nodes),
    )


def _snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and not name[i - 1].isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def relu_config_activation(cfg: dict) -> str:
    """``"relu"`` for a default ``ReLU`` layer config, else ``"ReLU(max_value=…, …)"`` with
    the settings that differ (the converter parses or refuses them)."""
    extras = {k: cfg.get(k) for k in ("max_value", "negative_slope", "threshold")}
    defaults = {"max_value": None, "negative_slope": 0.0, "threshold": 0.0}
    changed = {k: v for k, v in extras.items() if v != defaults[k]}
    if not changed:
        return "relu"
    args = ", ".join(f"{k}={v}" for k, v in changed.items())
    return f"ReLU({args})"


def activation_layer_name(cls: str, cfg: dict) -> str | None:
    """The activation an activation *layer* applies, from its config: ``ReLU``, ``Softmax``
    and ``LeakyReLU`` (``None`` for any other class). Shared by the Keras and the TF-free
    readers, so both name the same layer the same way."""
    if cls == "ReLU":
        return relu_config_activation(cfg)
    if cls == "Softmax":
        axis = cfg.get("axis", -1)
        return "softmax" if axis in (-1, [-1]) else f"softmax(axis={axis})"
    if cls == "LeakyReLU":
        slope = cfg.get("negative_slope", cfg.get("alpha", 0.3))
        return f"LeakyReLU(negative_slope={float(slope)!r})"
    return None


def _relu_layer_activation(layer) -> str:
    return relu_config_activation(layer.get_config())


def _known_activations() -> dict[int, str]:
    """Identity of every callable we accept, mapped to its canonical name.

    Built on each call from the modules already imported (``tensorflow`` only when it is
    in ``sys.modules``: a model cannot hold ``tf.nn.relu`` without it).
    """
    keras = _import_keras()
    known: dict[int, str] = {}
    for fn in (keras.activations.relu, keras.ops.relu, keras.ops.nn.relu):
        known[id(fn)] = "relu"
    for fn in (keras.activations.linear,):
        known[id(fn)] = "linear"
    for fn in (keras.activations.softmax, keras.ops.softmax, keras.ops.nn.softmax):
        known[id(fn)] = "softmax"
    tf = sys.modules.get("tensorflow")
    if tf is not None:
        known[id(tf.nn.relu)] = "relu"
        known[id(tf.nn.softmax)] = "softmax"
        known[id(tf.keras.activations.relu)] = "relu"
        known[id(tf.identity)] = "linear"
    return known


def activation_name(fn: Any) -> str:
    """Normalise an activation (callable, layer, string or ``None``) to its IR name.

    Returns ``"relu"``, ``"linear"`` or ``"softmax"`` only for the real Keras/TensorFlow
    functions (checked by identity) and a default ``ReLU()`` layer; every other value
    gives a descriptive name that :mod:`loihi_core.convert` rejects.
    """
    if fn is None:
        return "linear"
    if isinstance(fn, str):
        keras = _import_keras()
        try:
            fn = keras.activations.get(fn)
        except ValueError:
            return fn
    known = _known_activations()
    if id(fn) in known:
        return known[id(fn)]
    keras = _import_keras()
    if isinstance(fn, keras.layers.ReLU):
        return _relu_layer_activation(fn)
    if isinstance(fn, keras.layers.Layer):
        return f"{type(fn).__name__} layer"
    name = getattr(fn, "__name__", None) or type(fn).__name__
    module = getattr(fn, "__module__", "") or ""
    if module.startswith(("keras", "tensorflow")) and name not in SUPPORTED_ACTIVATIONS:
        return name  # e.g. "sigmoid", "relu6", "leaky_relu", "gelu"
    return f"custom function {module + '.' if module else ''}{name}"


def _plain(value: Any) -> Any:
    """Reduce a Keras config to JSON-like Python values (picklable, no Keras objects)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return repr(value)
