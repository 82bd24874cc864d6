"""A standalone NengoDL + NengoLoihi script of the tuned network (``--format nengo-loihi``).

The user's Loihi host has NengoDL, NengoLoihi and TensorFlow, but not Loihi Studio. The
export writes two files:

* ``<name>.py``: a script that rebuilds the tuned network the way the NengoDL/NengoLoihi
  tutorial does (``nengo_dl.Converter`` with ``swap_activations``, per-layer
  ``scale_firing_rates`` and ``synapse``; ``on_chip = False`` for the host layer(s);
  a ``nengo_loihi.BlockShape`` per on-chip layer), presents test images with
  ``nengo.processes.PresentInput`` and runs ``nengo_loihi.Simulator(net, target=...)``,
  printing the accuracy (``--target sim|loihi``, ``--n-images``, ``--data X.npz``);
* ``<name>.npz``: the weights, read by the script.

Decisions
---------
**The architecture is recreated in code, not loaded from the ``.keras`` file.** A Keras 3
``.keras`` file cannot be read by the Keras 2 inside the TensorFlow versions NengoDL
supports, so the script builds a ``tf.keras`` model with plain ``Conv2D``/``Dense``/
``Flatten``/``Reshape`` layers, an API that is the same in Keras 2 and 3.

**It is the *converted* architecture, with folded weights.** Every neuron layer of our
network is one Keras layer with a relu, so the NengoDL Converter makes exactly one ensemble
per neuron layer and NengoLoihi maps the same blocks as Loihi Studio:

* BatchNormalization is folded into the preceding Conv2D/Dense (exact);
* average pooling is folded into the next layer: a conv after pooling ``p`` becomes a conv
  with a ``k·p`` kernel and stride ``s·p``; a Dense after pooling + Flatten reads the
  unpooled input with repeated rows (exact); MaxPooling2D was replaced by average pooling
  when the config allowed it (an approximation, noted in the script);
* a Conv2DTranspose is its exact dense matrix;
* a softmax at the end is left out (it does not change the argmax).

The ``.npz`` therefore holds, per neuron layer, ``<layer>/kernel`` (float32, the folded
kernel Loihi Studio maps) and ``<layer>/bias`` (float64, the folded Keras bias before
``scale_firing_rates``), and ``<readout>/kernel``/``<readout>/bias`` for the host-side
output layer. ``build_keras_model(weights)`` in the script reproduces the original
model's outputs (pre-softmax) to float32 round-off.

**Biases are compartment biases.** NengoDL's Converter implements Conv2D biases as a
constant host Node feeding the neurons through a sparse connection; on NengoLoihi that
would arrive as on/off-encoded spikes from the host instead of a per-compartment bias.
The script builds the layers without Keras biases and sets ``ensemble.bias = bias ·
scale_firing_rates`` itself, which is what the Converter does for Dense layers and what
Loihi Studio's discretization uses.

**Block shapes are the ones Loihi Studio mapped:** those of the tuned config, and the
automatic ones for the other on-chip layers (NengoLoihi's own automatic splitting is
sequential and differs).

This module only writes text and a ``.npz``: it imports neither NengoDL nor NengoLoihi
(they do not run here: NengoLoihi 1.1 needs NumPy 1.x).
"""

from __future__ import annotations

import datetime as _dt
import io
import keyword
import pprint
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from .common import (ExportError, ExportResult, _umask, atomic_write, check_output_file,
                     check_parent_folder, refuse_special, write_bytes)

#: Data keys the script accepts for ``--data`` (images, labels), tried in order.
DATA_KEYS = (("x_test", "y_test"), ("images", "labels"), ("x", "y"))


@dataclass
class _KerasLayer:
    """One line of the generated ``build_keras_model``."""

    code: str
    name: str | None = None  # a weighted layer whose weights are set from the npz
    weights: list[str] = field(default_factory=list)  # npz keys, in set_weights order


@dataclass
class NengoLoihiSpec:
    """Everything the script needs, as plain data (also what the tests inspect)."""

    model_name: str
    model_source: str | None
    model_sha256: str | None
    dt: float
    presentation_steps: int
    input_name: str
    input_shape: tuple[int, ...]
    neuron_layers: list[str]
    layer_shapes: dict[str, tuple[int, ...]]
    default_neuron: dict[str, Any]
    neurons: dict[str, dict[str, Any]]
    scale_firing_rates: dict[str, float]
    default_synapse: float | None
    synapse: dict[str, float | None]
    on_chip: dict[str, bool]
    block_shapes: dict[str, tuple[int, ...]]
    block_shapes_from_config: list[str]
    n_chips: int
    readout_name: str | None
    keras_layers: list[_KerasLayer]
    arrays: dict[str, np.ndarray]
    notes: list[str]


def _neuron_spec(neuron) -> dict[str, Any]:
    return {"type": neuron.name, **{k: float(v) for k, v in neuron.params.items()}}


def _keras_out(n_in: int, k: int, s: int, padding: str) -> int:
    return -(-n_in // s) if padding == "same" else (n_in - k) // s + 1


def _view_layer(current: tuple, needed: tuple, names: set[str], target: str) -> _KerasLayer | None:
    """A Flatten/Reshape making the running tensor ``current`` into ``needed`` (or None)."""
    if tuple(current) == tuple(needed):
        return None
    base = f"{target}_input_view"
    name, k = base, 1
    while name in names:
        k += 1
        name = f"{base}{k}"
    names.add(name)
    if len(needed) == 1:
        return _KerasLayer(f"x = tf.keras.layers.Flatten(name={name!r})(x)")
    return _KerasLayer(f"x = tf.keras.layers.Reshape({tuple(int(v) for v in needed)!r}, "
                       f"name={name!r})(x)")


def build_spec(graph: Any, config: Any = None) -> NengoLoihiSpec:
    """Convert ``graph`` with ``config`` and collect what the script needs.

    Raises :class:`ExportError` when a connection cannot be written as a Keras layer with
    the same geometry (it would not be what Loihi Studio mapped).
    """
    from ..config import load_config
    from ..convert import convert, plan_conversion
    from ..errors import MappingError
    from ..graph import load_model
    from ..mapping import map_to_chip

    graph = load_model(graph)
    cfg = load_config(config)
    network = convert(graph, cfg)
    plan = plan_conversion(graph, max_to_avg_pool=cfg.max_to_avg_pool)
    biases = {p.name: p.bias for p in plan.neuron_layers}
    _check_chain(network)

    notes: list[str] = []
    try:
        chip = map_to_chip(network, raise_on_overflow=False, discretize=False)
        block_shapes = {k: tuple(int(x) for x in v) for k, v in chip.block_shapes.items()}
        n_chips = max(chip.n_chips, 1)
    except MappingError as exc:
        block_shapes = {name: tuple(layer.block_shape) for name, layer in network.layers.items()
                        if layer.on_chip and layer.block_shape is not None}
        n_chips = 1
        notes.append(f"no automatic block shapes ({exc}); only the configured ones are set")
    if cfg.n_chips is not None:
        n_chips = int(cfg.n_chips)

    names = set(network.layers) | {network.input_name}
    if network.readout.weights is not None:
        names.add(network.readout.name)
    lines: list[_KerasLayer] = []
    arrays: dict[str, np.ndarray] = {}
    current = tuple(network.input_shape)
    previous = network.input_name
    for layer in network.layers.values():
        conn = network.connections_into(layer.name)[0]
        view = _view_layer(current, conn.pre_shape, names, layer.name)
        if view is not None:
            lines.append(view)
        bias = biases[layer.name]
        if conn.kind == "conv":
            kh, kw, _, filters = conn.weights.shape
            for n_in, n_out, k, s in zip(conn.pre_shape[:2], conn.post_shape[:2], (kh, kw),
                                         conn.strides):
                if _keras_out(n_in, k, s, conn.padding) != n_out:
                    raise ExportError(
                        f"layer {layer.name!r}: its folded conv (kernel {(kh, kw)}, strides "
                        f"{tuple(conn.strides)}, padding {conn.padding!r}) on a "
                        f"{tuple(conn.pre_shape)} input does not give the {tuple(conn.post_shape)} "
                        f"output as a Keras Conv2D", layer=layer.name)
            code = (f"x = tf.keras.layers.Conv2D(\n        {int(filters)}, {(int(kh), int(kw))!r}, "
                    f"strides={tuple(int(s) for s in conn.strides)!r}, padding={conn.padding!r}, "
                    f"activation=tf.nn.relu,\n        use_bias=neuron_biases, "
                    f"name={layer.name!r})(x)")
            if bias is None:
                bias = np.zeros(int(filters))
            else:
                per_pixel = np.asarray(bias, np.float64).reshape(-1, int(filters))
                if not (per_pixel == per_pixel[0]).all():
                    raise ExportError(
                        f"layer {layer.name!r}: its folded bias varies over the image (a linear "
                        f"layer with a bias before a padded conv), which a Keras Conv2D bias "
                        f"cannot express", layer=layer.name)
                bias = per_pixel[0]
            current = tuple(conn.post_shape)
        else:
            units = int(conn.weights.shape[1])
            code = (f"x = tf.keras.layers.Dense(\n        {units}, activation=tf.nn.relu, "
                    f"use_bias=neuron_biases, name={layer.name!r})(x)")
            if bias is None:
                bias = np.zeros(units)
            bias = np.broadcast_to(np.asarray(bias, np.float64), conn.post_shape).reshape(-1) \
                if np.size(bias) != units else np.asarray(bias, np.float64)
            current = (units,)
        arrays[f"{layer.name}/kernel"] = np.asarray(conn.weights, np.float32)
        arrays[f"{layer.name}/bias"] = np.array(bias, np.float64)
        lines.append(_KerasLayer(code, layer.name, [f"{layer.name}/kernel", f"{layer.name}/bias"]))
        previous = layer.name

    r = network.readout
    readout_name = None
    if r.weights is not None:
        n_pre, n_out = r.weights.shape
        view = _view_layer(current, (int(n_pre),), names, r.name)
        if view is not None:
            lines.append(view)
        use_bias = r.bias is not None
        lines.append(_KerasLayer(f"x = tf.keras.layers.Dense({int(n_out)}, use_bias={use_bias}, "
                                 f"name={r.name!r})(x)", r.name,
                                 [f"{r.name}/kernel"] + ([f"{r.name}/bias"] if use_bias else [])))
        arrays[f"{r.name}/kernel"] = np.asarray(r.weights, np.float32)
        if use_bias:
            arrays[f"{r.name}/bias"] = np.asarray(r.bias, np.float32)
        readout_name = r.name
    if r.activation == "softmax":
        notes.append(f"the final softmax of {r.name!r} is left out (the argmax is unchanged)")
    for name in network.max_pool_substituted:
        notes.append(f"MaxPooling2D {name!r} was replaced by average pooling (folded into the "
                     f"next layer's weights), as in the tuned config")

    layers = list(network.layers.values())
    configured = [lay.name for lay in layers if lay.on_chip and lay.block_shape is not None]
    return NengoLoihiSpec(
        model_name=graph.name or "model", model_source=graph.source, model_sha256=graph.sha256,
        dt=float(network.dt), presentation_steps=int(network.presentation_steps),
        input_name=network.input_name, input_shape=tuple(int(v) for v in network.input_shape),
        neuron_layers=[lay.name for lay in layers],
        layer_shapes={lay.name: tuple(int(v) for v in lay.shape) for lay in layers},
        default_neuron=_neuron_spec(cfg.neuron),
        neurons={lay.name: _neuron_spec(lay.neuron) for lay in layers},
        scale_firing_rates={lay.name: float(lay.gain) for lay in layers},
        default_synapse=cfg.synapse,
        synapse={lay.name: lay.synapse for lay in layers},
        on_chip={lay.name: bool(lay.on_chip) for lay in layers},
        block_shapes={lay.name: block_shapes[lay.name] for lay in layers
                      if lay.on_chip and lay.name in block_shapes},
        block_shapes_from_config=configured, n_chips=n_chips, readout_name=readout_name,
        keras_layers=lines, arrays=arrays, notes=notes)


# ---------------------------------------------------------------------------------------
# the script
# ---------------------------------------------------------------------------------------

_TEMPLATE = '''\
#!/usr/bin/env python3
"""Run @@MODEL@@ on Loihi with NengoDL and NengoLoihi.

Generated by Loihi Studio @@VERSION@@ on @@DATE@@ from @@SOURCE@@
and its tuned config. It needs only NumPy, TensorFlow, Nengo, NengoDL and NengoLoihi
(NengoLoihi 1.1 runs on NumPy 1.x), not Loihi Studio. The weights are read from
@@WEIGHTS@@ (in this script's folder).

What it builds:

* the network as Loihi Studio converted it, as a tf.keras model (build_keras_model):
  every neuron layer is one Conv2D/Dense with a relu; BatchNormalization and pooling are
  already folded into the weights;@@NOTES@@
* nengo_dl.Converter with swap_activations, per-layer scale_firing_rates and synapse;
* NengoLoihi settings: on_chip=False for the host layer(s), a BlockShape per on-chip layer;
* biases as ensemble biases (bias * scale_firing_rates, as the Converter does for Dense
  layers), so that they become Loihi compartment biases for Conv2D layers too.

Usage:
    python @@SCRIPT@@ --data test.npz --n-images 100 --target sim
    python @@SCRIPT@@ --data test.npz --target loihi

--data is an .npz with test images and labels under x_test/y_test, images/labels or x/y.
Each image is shown for PRESENTATION_STEPS steps without resetting the network (as
NengoLoihi runs); the prediction is the argmax of the output at the last step.
"""

import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
WEIGHTS_FILE = os.path.join(HERE, @@WEIGHTS@@)

MODEL_NAME = @@MODEL@@
MODEL_SHA256 = @@SHA@@
DT = @@DT@@
PRESENTATION_STEPS = @@STEPS@@
INPUT_NAME = @@INPUT_NAME@@
INPUT_SHAPE = @@INPUT_SHAPE@@
#: the host-side output layer (a Dense on the filtered spikes), None if the model ends in neurons
READOUT = @@READOUT@@

#: neuron layers in network order, and their output shapes (rows, cols, channels) or (n,)
NEURON_LAYERS = @@NEURON_LAYERS@@
LAYER_SHAPES = @@LAYER_SHAPES@@

#: neuron type per layer ({"type": ..., parameters}); DEFAULT_NEURON goes in swap_activations
DEFAULT_NEURON = @@DEFAULT_NEURON@@
NEURONS = @@NEURONS@@

#: NengoDL scale_firing_rates per layer (gain = scale, bias * scale, amplitude / scale)
SCALE_FIRING_RATES = @@SCALES@@

#: lowpass time constant (s) on the connections out of each layer; None = no filter
DEFAULT_SYNAPSE = @@DEFAULT_SYNAPSE@@
SYNAPSE = @@SYNAPSE@@

#: NengoLoihi placement and per-core block shapes
ON_CHIP = @@ON_CHIP@@
BLOCK_SHAPES = @@BLOCK_SHAPES@@
#: the block shapes set in the tuned config (the others were chosen by Loihi Studio)
BLOCK_SHAPES_FROM_CONFIG = @@BLOCK_SHAPES_FROM_CONFIG@@
#: Loihi chips the mapping needs (hardware_options for --target loihi)
N_CHIPS = @@N_CHIPS@@

DATA_KEYS = @@DATA_KEYS@@
#: the Keras layers with weights and their arrays in the .npz, in set_weights order
KERAS_WEIGHTS = @@WEIGHT_KEYS@@


def load_weights(path=WEIGHTS_FILE):
    """The exported arrays, by name (``<layer>/kernel``, ``<layer>/bias``)."""
    with np.load(path) as f:
        return {key: f[key] for key in f.files}


def build_keras_model(weights, neuron_biases=True):
    """The converted network as a tf.keras model, with the exported weights.

    With ``neuron_biases=True`` it computes what the original Keras model computes
    (without a final softmax); ``build_network`` uses ``neuron_biases=False`` and sets the
    biases on the ensembles instead.
    """
    import tensorflow as tf

    inp = tf.keras.Input(shape=INPUT_SHAPE, name=INPUT_NAME)
    x = inp
@@LAYERS@@
    model = tf.keras.Model(inp, x, name=MODEL_NAME)
    for name, keys in KERAS_WEIGHTS:
        if name in NEURON_LAYERS and not neuron_biases:
            keys = keys[:1]
        model.get_layer(name).set_weights([weights[key] for key in keys])
    return model


def neuron_bias(weights, name):
    """Per-neuron bias of a layer (before scale_firing_rates), channels-last order."""
    bias = np.asarray(weights[name + "/bias"], dtype=np.float64)
    size = int(np.prod(LAYER_SHAPES[name]))
    if bias.size != size:
        bias = np.broadcast_to(bias, LAYER_SHAPES[name]).reshape(-1)
    return bias


def make_neuron_type(spec, amplitude=None):
    """A Nengo/NengoLoihi neuron type from its spec ({"type": ..., parameters})."""
    import nengo
    import nengo_loihi

    params = {key: value for key, value in spec.items() if key != "type"}
    if amplitude is not None:
        params["amplitude"] = amplitude
    if spec["type"] == "LoihiSpikingRectifiedLinear":
        return nengo_loihi.neurons.LoihiSpikingRectifiedLinear(**params)
    if spec["type"] == "LoihiLIF":
        return nengo_loihi.neurons.LoihiLIF(**params)
    # RectifiedLinear, SpikingRectifiedLinear, LIF, LIFRate (host-side layers only)
    return getattr(nengo, spec["type"])(**params)


def lowpass(tau):
    import nengo

    return None if tau is None else nengo.Lowpass(tau)


def build_network(weights):
    """The tuned spiking network: returns ``(net, converter, model, output_probe)``."""
    import nengo_dl
    import nengo_loihi
    import tensorflow as tf

    nengo_loihi.set_defaults()
    model = build_keras_model(weights, neuron_biases=False)
    converter = nengo_dl.Converter(
        model,
        swap_activations={tf.nn.relu: make_neuron_type(DEFAULT_NEURON)},
        scale_firing_rates={model.get_layer(name): SCALE_FIRING_RATES[name]
                            for name in NEURON_LAYERS},
        synapse=lowpass(DEFAULT_SYNAPSE),
        allow_fallback=False,
    )
    net = converter.net
    nengo_loihi.add_params(net)
    ensembles = {}
    for name in NEURON_LAYERS:
        scale = SCALE_FIRING_RATES[name]
        ens = converter.layers[model.get_layer(name)].ensemble
        ensembles[name] = ens
        ens.bias = neuron_bias(weights, name) * scale
        if NEURONS[name] != DEFAULT_NEURON:
            amplitude = NEURONS[name].get("amplitude", 1.0) / scale
            ens.neuron_type = make_neuron_type(NEURONS[name], amplitude=amplitude)
        net.config[ens].on_chip = ON_CHIP[name]
        if name in BLOCK_SHAPES:
            net.config[ens].block_shape = nengo_loihi.BlockShape(
                tuple(BLOCK_SHAPES[name]), tuple(LAYER_SHAPES[name]))
    for conn in net.all_connections:
        pre = getattr(conn.pre_obj, "ensemble", None)
        for name, ens in ensembles.items():
            if pre is ens and SYNAPSE[name] != DEFAULT_SYNAPSE:
                conn.synapse = lowpass(SYNAPSE[name])
    probe = converter.outputs[model.output]
    if READOUT is None:  # the output is the last layer's filtered spikes
        probe.synapse = lowpass(SYNAPSE[NEURON_LAYERS[-1]])
    return net, converter, model, probe


def load_data(path, weights, n_images):
    """``(images, labels)`` from ``--data`` (or the images stored with the weights)."""
    if path is None:
        if "data/images" not in weights:
            raise SystemExit("no test data: pass --data X.npz (arrays x_test/y_test, "
                             "images/labels or x/y)")
        images, labels = weights["data/images"], weights.get("data/labels")
    else:
        with np.load(path) as f:
            for image_key, label_key in DATA_KEYS:
                if image_key in f.files:
                    images = f[image_key]
                    labels = f[label_key] if label_key in f.files else None
                    break
            else:
                raise SystemExit(f"{path}: expected arrays named one of "
                                 f"{', '.join(k for k, _ in DATA_KEYS)}; found {f.files}")
    n = len(images) if n_images is None else min(int(n_images), len(images))
    images = np.asarray(images[:n], dtype=np.float64).reshape(n, -1)
    if images.shape[1] != int(np.prod(INPUT_SHAPE)):
        raise SystemExit(f"images have {images.shape[1]} values each, the model takes "
                         f"{INPUT_SHAPE}")
    if labels is not None:
        labels = np.asarray(labels[:n])
        labels = labels.argmax(axis=-1) if labels.ndim > 1 else labels.astype(np.int64)
    return images, labels


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=("sim", "loihi"), default="sim",
                        help="NengoLoihi target: its emulator (sim) or the chip (loihi)")
    parser.add_argument("--n-images", type=int, default=10,
                        help="number of test images to present (default 10)")
    parser.add_argument("--data", default=None, metavar="X.npz",
                        help="test images and labels (x_test/y_test, images/labels or x/y)")
    parser.add_argument("--weights", default=WEIGHTS_FILE, help="the exported weights (.npz)")
    parser.add_argument("--n-chips", type=int, default=N_CHIPS,
                        help=f"Loihi chips to use with --target loihi (default {N_CHIPS})")
    args = parser.parse_args(argv)

    import nengo
    import nengo_loihi

    weights = load_weights(args.weights)
    images, labels = load_data(args.data, weights, args.n_images)
    net, converter, model, probe = build_network(weights)
    converter.inputs[model.input].output = nengo.processes.PresentInput(
        images, presentation_time=PRESENTATION_STEPS * DT)
    options = {"dt": DT, "target": args.target}
    if args.target == "loihi":
        options["hardware_options"] = {"n_chips": args.n_chips}
    with nengo_loihi.Simulator(net, **options) as sim:
        sim.run_steps(len(images) * PRESENTATION_STEPS)
        output = sim.data[probe]
    output = np.asarray(output).reshape(len(images), PRESENTATION_STEPS, -1)
    predictions = output[:, -1].argmax(axis=-1)
    print("predictions:", " ".join(str(int(p)) for p in predictions))
    if labels is not None:
        accuracy = float(np.mean(predictions == labels))
        print(f"accuracy: {accuracy:.4f} on {len(images)} images ({args.target})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''


def _literal(value: Any) -> str:
    """``value`` as a Python literal (``ast.literal_eval`` reads it back)."""
    return pprint.pformat(value, width=88, sort_dicts=False)


def render_script(spec: NengoLoihiSpec, script_name: str, weights_name: str) -> str:
    """The script text for ``spec`` (``weights_name``: the npz file beside it)."""
    layer_code = "\n".join(f"    {line.code}" for line in spec.keras_layers)
    weight_keys = [(line.name, line.weights) for line in spec.keras_layers if line.name]
    notes = "".join(f"\n  {note};" for note in spec.notes)
    source = spec.model_source or "an in-memory Keras model"
    if spec.model_sha256:
        source += f" (sha256 {spec.model_sha256[:16]}…)"
    values = {
        "@@MODEL@@": repr(spec.model_name),
        "@@VERSION@@": __version__,
        "@@DATE@@": _dt.date.today().isoformat(),
        "@@SOURCE@@": source,
        "@@WEIGHTS@@": repr(weights_name),
        "@@SCRIPT@@": script_name,
        "@@NOTES@@": notes,
        "@@SHA@@": repr(spec.model_sha256),
        "@@DT@@": repr(spec.dt),
        "@@STEPS@@": repr(spec.presentation_steps),
        "@@INPUT_NAME@@": repr(spec.input_name),
        "@@INPUT_SHAPE@@": repr(spec.input_shape),
        "@@READOUT@@": repr(spec.readout_name),
        "@@NEURON_LAYERS@@": _literal(spec.neuron_layers),
        "@@LAYER_SHAPES@@": _literal(spec.layer_shapes),
        "@@DEFAULT_NEURON@@": _literal(spec.default_neuron),
        "@@NEURONS@@": _literal(spec.neurons),
        "@@SCALES@@": _literal(spec.scale_firing_rates),
        "@@DEFAULT_SYNAPSE@@": repr(spec.default_synapse),
        "@@SYNAPSE@@": _literal(spec.synapse),
        "@@ON_CHIP@@": _literal(spec.on_chip),
        "@@BLOCK_SHAPES@@": _literal(spec.block_shapes),
        "@@BLOCK_SHAPES_FROM_CONFIG@@": _literal(spec.block_shapes_from_config),
        "@@N_CHIPS@@": repr(spec.n_chips),
        "@@DATA_KEYS@@": repr(DATA_KEYS),
        "@@LAYERS@@": layer_code,
        "@@WEIGHT_KEYS@@": _literal(weight_keys),
    }
    text = _TEMPLATE
    for key, value in values.items():
        text = text.replace(key, value)
    return text


def _script_stem(name: str) -> str:
    stem = re.sub(r"\W+", "_", name).strip("_") or "model"
    if stem[0].isdigit() or keyword.iskeyword(stem):
        stem = f"model_{stem}"
    return f"{stem}_nengo_loihi"


def check_output(out: Any) -> Path:
    """Check ``out`` (a ``.py`` file or a folder) before anything is computed; nothing is
    created. The rules of :func:`~.common.check_output_file` apply to the files written."""
    out = Path(out)
    if str(out) in ("", "."):
        raise ExportError("no output path given")
    if out.suffix == ".py":
        check_output_file(out)
        check_output_file(out.with_suffix(".npz"))
        return out
    if out.is_symlink() and not out.is_dir():
        refuse_special(out)
    if out.exists() and not out.is_dir():
        raise ExportError(f"output path {str(out)!r} exists and is not a folder; give a folder "
                          f"or a .py file name")
    if not out.exists():
        try:
            check_parent_folder(out)
        except ExportError as exc:
            if "is a file, not a folder" in str(exc):
                raise
            raise ExportError(f"cannot create the folder {str(out)!r}: its parent does not "
                              f"exist; create it first") from None
    return out


def output_paths(out: Any, model_name: str) -> tuple[Path, Path]:
    """``(script, weights)`` paths for ``out``: a ``.py`` file, or a folder (created if its
    parent exists) that gets ``<model>_nengo_loihi.py`` and ``.npz`` (``model_name``: the
    ``.keras`` file's stem or the Keras model name). Both must be absent or regular files
    (a folder reached through a symbolic link is fine; a link as a file is refused)."""
    out = check_output(out)
    if out.suffix == ".py":
        return out, out.with_suffix(".npz")
    if not out.exists():
        try:
            out.mkdir()
        except OSError as exc:
            raise ExportError(f"cannot create the folder {str(out)!r}: {exc.strerror or exc}") from None
    stem = _script_stem(model_name)
    script, weights = out / f"{stem}.py", out / f"{stem}.npz"
    check_output_file(script)
    check_output_file(weights)
    return script, weights


def export_nengo_loihi(graph: Any, config: Any, out_dir_or_path: Any, *,
                       images: np.ndarray | None = None,
                       labels: np.ndarray | None = None) -> ExportResult:
    """Write the NengoDL/NengoLoihi script and its weights.

    Parameters
    ----------
    graph
        The model: a ``.keras`` path, a ``keras.Model`` or a :class:`~loihi_core.graph.LayerGraph`.
    config
        The tuned config (object, dict, JSON path, or ``None`` for the defaults).
    out_dir_or_path
        A ``.py`` path (the ``.npz`` goes beside it, same stem) or a folder.
    images, labels
        Optional test data stored in the ``.npz`` (``data/images``, ``data/labels``); the
        script uses it when run without ``--data``.

    Returns
    -------
    ExportResult
        Paths ``[script, weights]`` and notes.
    """
    check_output(out_dir_or_path)  # before the (slow) conversion
    spec = build_spec(graph, config)
    stem = Path(spec.model_source).stem if spec.model_source else spec.model_name
    script_path, weights_path = output_paths(out_dir_or_path, stem)
    arrays = dict(spec.arrays)
    if images is not None:
        arrays["data/images"] = np.asarray(images)
        if labels is not None:
            arrays["data/labels"] = np.asarray(labels)
    text = render_script(spec, script_path.name, weights_path.name)
    compile(text, str(script_path), "exec")  # never write a script that does not parse

    def save_npz(tmp: Path) -> None:
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        tmp.write_bytes(buf.getvalue())

    atomic_write(weights_path, save_npz)
    write_bytes(script_path, text.encode("utf-8"))
    try:  # executable like any script (``./model_nengo_loihi.py``), within the umask
        script_path.chmod(script_path.stat().st_mode | (0o111 & ~_umask()))
    except OSError:  # pragma: no cover - best effort
        pass
    notes = list(spec.notes)
    notes.append("run it on the Loihi host (NengoDL, NengoLoihi, TensorFlow, NumPy 1.x): "
                 f"python {script_path.name} --data test.npz --target sim|loihi")
    return ExportResult("nengo-loihi", [script_path, weights_path], notes)


def _check_chain(network) -> None:
    """The script rebuilds a chain of Conv2D/Dense layers: refuse what it cannot express,
    naming the layer (NengoLoihi 1.1 itself cannot build convolutions into a merge)."""
    previous = network.input_name
    for layer in network.layers.values():
        conns = network.connections_into(layer.name)
        if layer.is_input_encoder:
            raise ExportError(
                "the on-chip first layer is exported by NengoLoihi's own input encoding: set "
                "its on_chip to true in the exported script's config instead (the script writes "
                "chains with the first layer on the host)", layer=layer.name)
        if len(conns) != 1 or conns[0].pre != previous:
            raise ExportError(
                f"layer {layer.name!r} reads {', '.join(c.pre for c in conns)}: the NengoLoihi "
                f"export writes a chain of layers and this network branches; export its tuned "
                f"config as JSON and emulate it with loihi-studio instead", layer=layer.name)
        conn = conns[0]
        if conn.kind == "sparse" or conn.groups != 1 or not isinstance(conn.padding, str):
            raise ExportError(
                f"layer {layer.name!r}: its incoming {conn.kind} connection (groups "
                f"{conn.groups}, padding {conn.padding!r}) has no Keras Conv2D/Dense equivalent "
                f"in the exported script", layer=layer.name)
        previous = layer.name
    if network.readout.more_terms:
        raise ExportError(f"the readout {network.readout.name!r} reads several layers; the "
                          f"NengoLoihi export writes a chain", layer=network.readout.name)

