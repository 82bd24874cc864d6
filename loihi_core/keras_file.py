"""Read a Keras 3 ``.keras`` file into a :class:`~loihi_core.graph.LayerGraph` without TensorFlow.

A ``.keras`` file is a zip of ``config.json`` (the model's serialised config),
``metadata.json`` and ``model.weights.h5``. Keras 3 records every layer call's input
tensors (shapes included) in ``inbound_nodes`` and, for Sequential models, each layer's
``build_config``; the weights file stores each layer's variables under
``layers/<snake_case class name>[_<n>]/vars/<i>`` in the order of the model's layer list.
That is enough to build the same graph :func:`loihi_core.graph.graph_from_model` builds
from a loaded ``keras.Model`` -- in a few milliseconds instead of seconds of importing
TensorFlow, which is what most commands (map, inspect, export, simulate) pay for today.

Safety: nothing from the file is executed or unpickled; only JSON and HDF5 datasets are
read. The reader is deliberately narrow. It returns ``None`` -- and the caller falls back
to the Keras loader, which then gives its usual result or error -- for anything it does
not understand exactly: a class outside :data:`~loihi_core.graph.KIND_BY_CLASS` or not
from ``keras.layers``, registered (custom) objects, nested models, shared layers, tensors
passed as keyword arguments, quantised or LoRA layers, an activation that is not one of
Keras' own built-ins serialised as a plain string (or a default ``ReLU`` layer), an output
shape it cannot derive, or weights that do not match the expected variables. Activations
are never guessed by name beyond Keras' own serialisation: Keras writes its built-in
functions as plain strings and resolves them to its own functions on load, so the strings
below mean exactly what the Keras path would find (see the seed-002 note in ``graph.py``).

``tests/test_keras_file.py`` checks, field by field with bit-equal weights, that this
reader and the Keras loader give the same graph for every zoo model and every bundled
``.keras`` file.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .graph import (KIND_BY_CLASS, LayerGraph, LayerNode, _plain, activation_layer_name,
                    relu_config_activation)

#: Activation strings taken as Keras' own built-ins (anything else → the Keras loader).
BUILTIN_ACTIVATIONS = ("relu", "linear", "softmax", "relu6", "leaky_relu")

#: Variable names, in the order a layer saves them, by Keras class (absent: no variables).
_KERNEL_BIAS = ("kernel", "bias")
_VARIABLES = {
    "Dense": _KERNEL_BIAS, "Conv1D": _KERNEL_BIAS, "Conv2D": _KERNEL_BIAS,
    "Conv2DTranspose": _KERNEL_BIAS, "DepthwiseConv1D": _KERNEL_BIAS,
    "DepthwiseConv2D": _KERNEL_BIAS,
    "SeparableConv1D": ("depthwise_kernel", "pointwise_kernel", "bias"),
    "SeparableConv2D": ("depthwise_kernel", "pointwise_kernel", "bias"),
    "BatchNormalization": ("gamma", "beta", "moving_mean", "moving_variance"),
}

#: Layers whose output shape equals their (single) input shape.
_SAME_SHAPE = {"Activation", "ReLU", "Softmax", "LeakyReLU", "BatchNormalization",
               "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
               "GaussianDropout", "GaussianNoise", "AlphaDropout", "Identity",
               "ActivityRegularization"}


class _NotUnderstood(Exception):
    """Internal: the file uses something this reader does not handle (use Keras)."""


def read_graph(path: str | Path) -> LayerGraph | None:
    """The :class:`LayerGraph` of a ``.keras`` file, or ``None`` when Keras must read it.

    The file is assumed to have passed :func:`loihi_core.graph.check_keras_file`. ``source``,
    ``sha256`` and ``keras_version`` are left for the caller to fill in.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            config = json.loads(zf.read("config.json"))
            import h5py  # noqa: PLC0415 (only needed here)

            with zf.open("model.weights.h5") as raw, h5py.File(raw, "r") as h5:
                return _graph(config, h5)
    except Exception as exc:  # noqa: BLE001 -- anything unexpected: the Keras loader decides
        if os.environ.get("LOIHI_STUDIO_DEBUG_READER"):
            print(f"keras_file: falling back to Keras for {path}: {exc!r}", file=sys.stderr)
        return None


def _graph(config: dict, h5) -> LayerGraph:
    cls = config.get("class_name")
    if config.get("module") not in ("keras", "keras.src.models.functional",
                                     "keras.src.models.sequential", "keras.models"):
        raise _NotUnderstood("module")
    if config.get("registered_name") not in (None, cls):
        raise _NotUnderstood("registered")
    body = config["config"]
    entries = body["layers"]
    if cls == "Functional":
        calls = _functional_calls(entries)
        inputs = tuple(ref[0] for ref in _refs(body["input_layers"]))
        outputs = tuple(ref[0] for ref in _refs(body["output_layers"]))
    elif cls == "Sequential":
        calls = _sequential_calls(entries)
        inputs = (calls[0][0]["config"]["name"],)
        outputs = (calls[-1][0]["config"]["name"],)
    else:
        raise _NotUnderstood(cls)
    weights = _weights(entries if cls == "Functional" else [c[0] for c in calls[1:]], h5)

    consumed: dict[str, tuple] = {}  # a layer's output shape, as its consumers saw it
    for entry, parents, shapes in calls:
        for parent, shape in zip(parents, shapes):
            if consumed.setdefault(parent, shape) != shape:
                raise _NotUnderstood("inconsistent shapes")
    nodes = []
    for entry, parents, shapes in calls:
        nodes.append(_node(entry, parents, shapes, consumed, weights))
    names = [n.name for n in nodes]
    if len(set(names)) != len(names) or not set(inputs) | set(outputs) <= set(names):
        raise _NotUnderstood("names")
    return LayerGraph(nodes=nodes, name=body["name"], input_names=inputs, output_names=outputs)


def _refs(value) -> list:
    """``input_layers``/``output_layers``: one ``[name, 0, 0]`` or a list of them."""
    if len(value) == 3 and isinstance(value[0], str) and isinstance(value[1], int):
        value = [value]
    for ref in value:
        if list(ref[1:]) != [0, 0]:
            raise _NotUnderstood("node index")
    return value


def _shape(batch_shape) -> tuple:
    if not isinstance(batch_shape, list) or not batch_shape:
        raise _NotUnderstood("shape")
    return tuple(None if d is None else int(d) for d in batch_shape[1:])


def _check_entry(entry: dict) -> str:
    cls = entry.get("class_name")
    if entry.get("module") != "keras.layers" or entry.get("registered_name") is not None:
        raise _NotUnderstood("custom layer")
    if cls not in KIND_BY_CLASS:
        raise _NotUnderstood(cls)
    cfg = entry.get("config", {})
    dtype = cfg.get("dtype")
    if isinstance(dtype, dict) and dtype.get("class_name") != "DTypePolicy":
        raise _NotUnderstood("quantised")
    if cfg.get("lora_rank"):
        raise _NotUnderstood("lora")
    if cfg.get("quantization_config"):
        raise _NotUnderstood("quantised")
    return cls


def _functional_calls(entries: list) -> list:
    calls = []
    for entry in entries:
        _check_entry(entry)
        inbound = entry.get("inbound_nodes", [])
        if entry["class_name"] == "InputLayer":
            if inbound:
                raise _NotUnderstood("input nodes")
            calls.append((entry, (), ()))
            continue
        if len(inbound) != 1:
            raise _NotUnderstood("shared or unused layer")
        node = inbound[0]
        if "__keras_tensor__" in json.dumps(node.get("kwargs", {})):
            raise _NotUnderstood("keyword tensors")  # e.g. a mask passed by keyword
        tensors = []
        _collect_tensors(node.get("args", []), tensors)
        parents, shapes = [], []
        for tensor in tensors:
            tcfg = tensor["config"]
            history = tcfg["keras_history"]
            if list(history[1:]) != [0, 0]:
                raise _NotUnderstood("node index")
            parents.append(history[0])
            shapes.append(_shape(tcfg["shape"]))
        if not parents:
            raise _NotUnderstood("no inputs")
        calls.append((entry, tuple(parents), tuple(shapes)))
    return calls


def _collect_tensors(value, out: list) -> None:
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            out.append(value)
            return
        raise _NotUnderstood("non-tensor argument")
    if isinstance(value, list):
        for item in value:
            _collect_tensors(item, out)
        return
    raise _NotUnderstood("non-tensor argument")


def _sequential_calls(entries: list) -> list:
    if not entries or entries[0].get("class_name") != "InputLayer":
        raise _NotUnderstood("sequential without an InputLayer")
    calls = []
    previous = None
    for entry in entries:
        cls = _check_entry(entry)
        if cls == "InputLayer":
            if previous is not None:
                raise _NotUnderstood("second input")
            calls.append((entry, (), ()))
            previous_output = _shape(entry["config"]["batch_shape"])
        else:
            build = entry.get("build_config")
            if build is not None:  # layers without variables (Reshape) may have none
                shape = _shape(build["input_shape"])
            elif previous_output is not None:
                shape = previous_output
            else:
                raise _NotUnderstood(f"input shape of {cls}")
            calls.append((entry, (previous,), (shape,)))
            try:  # only needed when the next layer has no build_config of its own
                previous_output = _output_shape(cls, entry["config"], (shape,))
            except _NotUnderstood:
                previous_output = None
        previous = entry["config"]["name"]
    return calls


def _keras_snake(name: str) -> str:
    """Keras' ``to_snake_case`` (the weights file's key for a layer class)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _weights(entries: list, h5) -> dict[str, dict[str, np.ndarray]]:
    """Variables of each layer by layer name, read from ``layers/<key>/vars``."""
    group = h5["layers"]
    used: dict[str, int] = {}
    out: dict[str, dict[str, np.ndarray]] = {}
    seen = set()
    for entry in entries:
        base = _keras_snake(entry["class_name"])
        if base in used:
            used[base] += 1
            key = f"{base}_{used[base]}"
        else:
            used[base] = 0
            key = base
        seen.add(key)
        layer_group = group[key]
        if set(layer_group.keys()) != {"vars"}:
            raise _NotUnderstood("sub-objects")
        stored = layer_group["vars"]
        names = _expected_variables(entry)
        if sorted(stored.keys()) != sorted(str(i) for i in range(len(names))):
            raise _NotUnderstood("variables")
        values = {}
        for i, name in enumerate(names):
            array = np.array(stored[str(i)])
            if array.dtype != np.float32:
                raise _NotUnderstood("dtype")
            values[name] = array
        out[entry["config"]["name"]] = values
    if set(group.keys()) != seen:
        raise _NotUnderstood("extra layers in the weights")
    return out


def _expected_variables(entry: dict) -> list[str]:
    cls, cfg = entry["class_name"], entry["config"]
    names = list(_VARIABLES.get(cls, ()))
    if cls == "BatchNormalization":
        names = ([] if not cfg.get("scale", True) else ["gamma"]) + \
                ([] if not cfg.get("center", True) else ["beta"]) + names[2:]
    elif names and not cfg.get("use_bias", True):
        names.remove("bias")
    return names


def _activation(cfg: dict) -> str:
    value = cfg.get("activation")
    if value is None:
        return "linear"
    if isinstance(value, str) and value in BUILTIN_ACTIVATIONS:
        return value
    if (isinstance(value, dict) and value.get("class_name") == "ReLU"
            and value.get("module") == "keras.layers" and value.get("registered_name") is None):
        name = relu_config_activation(value.get("config", {}))
        if name == "relu":
            return name
    raise _NotUnderstood(f"activation {value!r}")


def _node(entry, parents, shapes, consumed, weights) -> LayerNode:
    cls = entry["class_name"]
    cfg = entry["config"]
    name = cfg["name"]
    if cls == "InputLayer":
        output = _shape(cfg["batch_shape"])
    elif name in consumed:
        output = consumed[name]
    else:
        output = _output_shape(cls, cfg, shapes)
    if cls in ("ReLU", "Softmax", "LeakyReLU"):
        activation = activation_layer_name(cls, cfg)
    elif "activation" in cfg:
        activation = _activation(cfg)
    else:
        activation = "linear"
    return LayerNode(
        name=name,
        kind=KIND_BY_CLASS[cls],
        keras_class=cls,
        input_shapes=tuple(shapes),
        output_shape=output,
        weights=weights.get(name, {}),
        activation=activation,
        config=_plain(_without_shared_ids(cfg)),
        inputs=tuple(parents),
    )


def _conv_shape(cfg: dict, shape: tuple) -> tuple:
    """Keras' output-size arithmetic for a channels-last convolution."""
    spatial = shape[:-1]
    kernel, strides, dilation = cfg["kernel_size"], cfg["strides"], cfg["dilation_rate"]
    if not (len(kernel) == len(strides) == len(dilation) == len(spatial)) or None in spatial:
        raise _NotUnderstood("conv shape")
    out = []
    for n, k, s, d in zip(spatial, kernel, strides, dilation):
        if cfg["padding"] == "valid":
            size = (n - d * (k - 1) - 1) // s + 1
        elif cfg["padding"] in ("same", "causal"):
            size = (n - 1) // s + 1
        else:
            raise _NotUnderstood("padding")
        if size <= 0:
            raise _NotUnderstood("empty output")
        out.append(size)
    return tuple(out) + (int(cfg["filters"]),)


def _without_shared_ids(value: Any) -> Any:
    """Drop the ``shared_object_id`` keys the saver adds (``get_config()`` has none)."""
    if isinstance(value, dict):
        return {k: _without_shared_ids(v) for k, v in value.items() if k != "shared_object_id"}
    if isinstance(value, list):
        return [_without_shared_ids(v) for v in value]
    return value


def _ints(value: Any, rank: int) -> tuple[int, ...]:
    return tuple(int(v) for v in value) if isinstance(value, (list, tuple)) else (int(value),) * rank


def _output_shape(cls: str, cfg: dict, shapes: tuple) -> tuple:
    """The output shape of a layer nothing consumes (a model output), for simple layers."""
    if len(shapes) == 1:
        (shape,) = shapes
        if cls in _SAME_SHAPE:
            return shape
        if cls == "Dense":
            return shape[:-1] + (int(cfg["units"]),)
        if cls == "Flatten" and cfg.get("data_format", "channels_last") == "channels_last":
            if any(d is None for d in shape):
                raise _NotUnderstood("flatten of unknown size")
            return (math.prod(shape),)
        if cls == "Permute":
            return tuple(shape[d - 1] for d in cfg["dims"])
        if cls == "Reshape" and None not in shape:
            target = [int(d) for d in cfg["target_shape"]]
            if target.count(-1) == 1:
                known = math.prod(d for d in target if d != -1)
                target[target.index(-1)] = math.prod(shape) // known
            if -1 in target or math.prod(target) != math.prod(shape):
                raise _NotUnderstood("reshape")
            return tuple(target)
        if cls in ("Conv1D", "Conv2D") and cfg.get("data_format") == "channels_last":
            return _conv_shape(cfg, shape)
        if cls in ("ZeroPadding1D", "ZeroPadding2D", "Cropping1D", "Cropping2D",
                   "UpSampling1D", "UpSampling2D") and None not in shape \
                and cfg.get("data_format", "channels_last") == "channels_last":
            rank = len(shape) - 1
            if cls.startswith("UpSampling"):
                size = _ints(cfg.get("size", 2), rank)
                return tuple(n * f for n, f in zip(shape[:-1], size)) + (shape[-1],)
            key = "padding" if cls.startswith("Zero") else "cropping"
            sign = 1 if cls.startswith("Zero") else -1
            value = cfg[key]
            if rank == 1:
                pairs = [(value, value) if isinstance(value, int) else tuple(value)]
            else:
                pairs = [(v, v) if isinstance(v, int) else tuple(v)
                         for v in ((value, value) if isinstance(value, int) else value)]
            return tuple(n + sign * (a + b) for n, (a, b) in zip(shape[:-1], pairs)) + (shape[-1],)
        if cls in ("AveragePooling1D", "AveragePooling2D", "MaxPooling1D", "MaxPooling2D") \
                and cfg.get("data_format", "channels_last") == "channels_last" and None not in shape:
            rank = len(shape) - 1
            pool = _ints(cfg["pool_size"], rank)
            strides = _ints(cfg.get("strides") or cfg["pool_size"], rank)
            if cfg.get("padding", "valid") == "same":
                size = [-(-n // st) for n, st in zip(shape[:-1], strides)]
            else:
                size = [(n - p) // st + 1 for n, p, st in zip(shape[:-1], pool, strides)]
            if min(size) <= 0:
                raise _NotUnderstood("empty output")
            return tuple(size) + (shape[-1],)
        if cls in ("GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D",
                   "GlobalMaxPooling2D") and cfg.get("data_format") == "channels_last" \
                and not cfg.get("keepdims"):
            return (shape[-1],)
    elif cls in ("Add", "Subtract", "Average") and len(set(shapes)) == 1:
        return shapes[0]
    raise _NotUnderstood(f"output shape of {cls}")


__all__ = ["BUILTIN_ACTIVATIONS", "read_graph"]
