"""Reference cases from NengoDL + NengoLoihi 1.1.0 (``tests/data/reference``), without Keras.

``reference_network(case)`` builds the :class:`~loihi_core.network.SpikingNetwork` a case
describes directly from its ``case`` settings and the Keras weights stored in the ``.npz``,
so mapping and emulator tests do not depend on the Keras importer. ``load_case(case)``
returns the settings, the npz arrays and the discretized blocks of the reference.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from loihi_core.network import Connection, NeuronLayer, Readout, SpikingNetwork
from loihi_core.neurons import LoihiLIF, LoihiSpikingRectifiedLinear

REFERENCE_DIR = Path(__file__).parent / "data" / "reference"
CASES = ("dense_relu", "conv_relu", "dense_lif", "tutorial_random")


@dataclass
class ReferenceCase:
    name: str
    info: dict  # the whole .json.gz document
    arrays: dict  # the .npz contents

    @property
    def settings(self) -> dict:
        return self.info["case"]

    @property
    def blocks(self) -> list[dict]:
        return self.info["blocks"]

    @property
    def keras_path(self) -> Path:
        return REFERENCE_DIR / f"{self.name}.keras"

    @property
    def steps_per_image(self) -> int:
        return int(round(self.settings["pres_time"] / self.info["dt"]))


def load_case(name: str) -> ReferenceCase:
    with gzip.open(REFERENCE_DIR / f"{name}.json.gz", "rt") as f:
        info = json.load(f)
    with np.load(REFERENCE_DIR / f"{name}.npz") as z:
        arrays = {k: z[k] for k in z.files}
    return ReferenceCase(name, info, arrays)


def _out_shape(kind: str, params: dict, in_shape: tuple[int, ...]) -> tuple[int, ...]:
    if kind == "dense":
        return (params["units"],)
    if kind == "flatten":
        return (int(np.prod(in_shape)),)
    if kind == "conv":
        k, s = params["kernel_size"], params.get("strides", 1)
        h, w, _ = in_shape
        if params.get("padding", "valid") == "same":
            return (-(-h // s), -(-w // s), params["filters"])
        return ((h - k) // s + 1, (w - k) // s + 1, params["filters"])
    raise ValueError(kind)


def reference_network(name: str) -> SpikingNetwork:
    """The converted network of a reference case, built from its settings and weights."""
    case = load_case(name)
    s = case.settings
    if s["neuron"] == "LoihiLIF":
        neuron = LoihiLIF(**s.get("neuron_args", {}))
    else:
        neuron = LoihiSpikingRectifiedLinear(**s.get("neuron_args", {}))
    scales = s["scale_firing_rates"]
    block_shapes = s.get("block_shapes") or {}
    layers: dict[str, NeuronLayer] = {}
    connections: list[Connection] = []
    readout = None
    input_name, input_shape = None, None
    prev_name, prev_shape = None, None
    for kind, lname, params in s["layers"]:
        if kind == "input":
            input_name, input_shape = lname, tuple(params["shape"])
            prev_name, prev_shape = lname, input_shape
            continue
        out_shape = _out_shape(kind, params, prev_shape)
        if kind == "flatten":
            prev_shape = out_shape
            continue
        kernel = case.arrays[f"weights/{lname}/kernel"].astype(np.float32)
        bias_key = f"weights/{lname}/bias"
        keras_bias = case.arrays[bias_key] if bias_key in case.arrays else None
        if params.get("activation") == "relu":
            gain = float(scales[lname] if isinstance(scales, dict) else scales)
            n = int(np.prod(out_shape))
            bias = np.zeros(n)
            if keras_bias is not None:
                bias = np.broadcast_to(keras_bias.astype(np.float64), out_shape).reshape(-1) * gain
            on_chip = len(layers) > 0
            synapse = s["synapse"]
            layers[lname] = NeuronLayer(
                name=lname, shape=out_shape, neuron=neuron, gain=gain, bias=np.array(bias),
                amplitude=neuron.amplitude / gain, on_chip=on_chip, synapse=synapse,
                block_shape=tuple(block_shapes[lname]) if lname in block_shapes else None)
            pre_synapse = layers[prev_name].synapse if prev_name in layers else None
            connections.append(Connection(
                pre=prev_name, post=lname, kind="conv" if kind == "conv" else "dense",
                weights=kernel, pre_shape=prev_shape, post_shape=out_shape,
                strides=(params.get("strides", 1),) * 2,
                padding=params.get("padding", "valid"), synapse=pre_synapse))
            prev_name, prev_shape = lname, out_shape
        else:
            readout = Readout(name=lname, pre=prev_name, weights=kernel,
                              bias=None if keras_bias is None else keras_bias.astype(np.float32),
                              shape=out_shape)
    return SpikingNetwork(input_name=input_name, input_shape=input_shape, layers=layers,
                          connections=connections, readout=readout, dt=case.info["dt"],
                          presentation_steps=case.steps_per_image)


def case_config(case: str) -> dict:
    """The tuned-config JSON equivalent of a reference case's settings."""
    ref = load_case(case)
    s = ref.settings
    scale = s["scale_firing_rates"]
    neuron = {"type": s["neuron"], **s["neuron_args"]} if s["neuron_args"] else s["neuron"]
    layers = {}
    for name in ref.info["layers"]:
        entry = {}
        if isinstance(scale, dict):
            entry["scale_firing_rates"] = scale[name]
        if name in s["block_shapes"]:
            entry["block_shape"] = s["block_shapes"][name]
        if entry:
            layers[name] = entry
    return {"schema_version": 1, "dt": ref.info["dt"], "presentation_steps": ref.steps_per_image,
            "neuron": neuron, "scale_firing_rates": 1.0 if isinstance(scale, dict) else scale,
            "synapse": s["synapse"], "layers": layers}
