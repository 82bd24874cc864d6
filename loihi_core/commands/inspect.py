"""``loihi-studio inspect MODEL.keras [--config CFG.json] [--json]``: what the converter makes of a model.

Prints every Keras layer with its shape and what it becomes (neuron layer, folded weights,
view, readout, or why it cannot be converted), the neuron layers with their settings and
the default on/off-chip split, and the conversion notes (approximations made). Exit code
0 when the model converts, 2 when it does not (the reason is printed).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from typing import Any

from ..errors import LoihiStudioError


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "inspect", help="show how a Keras model converts to a spiking network",
        description="Load a Keras 3 .keras model and show its layers, which are convertible, "
                    "the neuron layers (with neuron counts and on/off-chip placement) and the "
                    "conversion notes.")
    parser.add_argument("model", help="path to a Keras 3 .keras file")
    parser.add_argument("--config", metavar="CFG.json", default=None,
                        help="tuned-config JSON whose settings to apply")
    parser.add_argument("--json", action="store_true", help="print a JSON document instead")
    parser.set_defaults(func=run)
    return parser


def inspect_model(model: Any, config: Any = None) -> dict:
    """Everything ``inspect`` shows, as a JSON-able dict (also used by the app).

    Never raises for conversion or config problems: they are returned under ``"error"``
    (with the failing ``"error_layer"``), with the layer list still filled in.
    Raises :class:`~loihi_core.errors.ModelLoadError` when the model cannot be read.
    """
    from ..convert import convert, unsupported_reason
    from ..graph import load_model

    graph = load_model(model)
    doc: dict[str, Any] = {
        "model": {"name": graph.name, "source": graph.source, "sha256": graph.sha256,
                  "keras_version": graph.keras_version,
                  "n_params": sum(node.n_params for node in graph)},
        "layers": [], "neuron_layers": [], "readout": None, "notes": [], "error": None,
        "error_layer": None,
    }
    network = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # substitutions are listed under notes
            network = convert(graph, config)
    except LoihiStudioError as exc:
        doc["error"] = str(exc)
        doc["error_layer"] = getattr(exc, "layer", None)
        roles = getattr(exc, "partial_roles", {})
    else:
        roles = network.layer_roles
    for node in graph:
        reason = unsupported_reason(node)
        doc["layers"].append({
            "name": node.name, "class": node.keras_class,
            "output_shape": list(node.output_shape), "params": node.n_params,
            "activation": node.activation,
            "convertible": reason is None and doc["error_layer"] != node.name,
            "role": roles.get(node.name) or (
                f"not supported: {reason}" if reason else
                "cannot convert: see the error" if doc["error_layer"] == node.name else ""),
        })
    if network is not None:
        for layer in network.layers.values():
            doc["neuron_layers"].append({
                "name": layer.name, "shape": list(layer.shape), "n_neurons": layer.n_neurons,
                "neuron": type(layer.neuron).__name__,
                "scale_firing_rates": layer.gain, "amplitude": layer.amplitude,
                "synapse": layer.synapse, "on_chip": layer.on_chip,
                "block_shape": None if layer.block_shape is None else list(layer.block_shape),
                "keras_layers": list(layer.keras_layers),
            })
        r = network.readout
        doc["readout"] = {"name": r.name, "pre": r.pre, "shape": list(r.shape),
                          "activation": r.activation, "keras_layers": list(r.keras_layers)}
        doc["notes"] = list(network.notes)
        doc["n_neurons"] = {
            "total": sum(layer.n_neurons for layer in network.layers.values()),
            "on_chip": sum(layer.n_neurons for layer in network.on_chip_layers),
            "off_chip": sum(layer.n_neurons for layer in network.off_chip_layers),
        }
        doc["dt"] = network.dt
        doc["presentation_steps"] = network.presentation_steps
    return doc


def _table(rows: list[list[str]], header: list[str]) -> list[str]:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    out.extend(fmt.format(*(str(x) for x in row)) for row in rows)
    return [line.rstrip() for line in out]


def format_report(doc: dict) -> str:
    m = doc["model"]
    lines = [f"Model {m['name']!r}" + (f" from {m['source']}" if m["source"] else "")
             + (f" (sha256 {m['sha256'][:12]}…)" if m["sha256"] else "")
             + f", Keras {m['keras_version']}, {m['n_params']} parameters", "", "Layers:"]
    rows = [[layer["name"], layer["class"], tuple(layer["output_shape"]),
             "yes" if layer["convertible"] else "NO", layer["role"]] for layer in doc["layers"]]
    lines += ["  " + s for s in _table(rows, ["name", "class", "output shape", "ok", "becomes"])]
    if doc["neuron_layers"]:
        lines += ["", "Neuron layers:"]
        rows = [[n["name"], tuple(n["shape"]), n["n_neurons"], n["neuron"],
                 f"{n['scale_firing_rates']:g}", "-" if n["synapse"] is None else f"{n['synapse']:g}",
                 "on chip" if n["on_chip"] else "off chip (host)",
                 "auto" if n["block_shape"] is None else tuple(n["block_shape"])]
                for n in doc["neuron_layers"]]
        lines += ["  " + s for s in _table(
            rows, ["name", "shape", "neurons", "neuron type", "scale", "synapse", "placement",
                   "block shape"])]
        t = doc["n_neurons"]
        lines.append(f"  total {t['total']} neurons: {t['on_chip']} on chip, {t['off_chip']} "
                     f"off chip; dt {doc['dt']:g} s, {doc['presentation_steps']} steps per image")
    if doc["readout"]:
        r = doc["readout"]
        lines += ["", f"Readout (host): {r['name']!r} reads {r['pre']!r} → {tuple(r['shape'])}"
                  + (f", {r['activation']}" if r["activation"] else "")]
    if doc["notes"]:
        lines += ["", "Notes:"] + [f"  - {n}" for n in doc["notes"]]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from ..config import load_config

    try:
        config = load_config(args.config) if args.config else None
        doc = inspect_model(args.model, config)
    except LoihiStudioError as exc:
        if args.json:
            print(json.dumps({"error": str(exc)}, indent=2))
        print(f"loihi-studio inspect: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print(format_report(doc))
    if doc["error"]:
        print(f"loihi-studio inspect: error: {doc['error']}", file=sys.stderr)
        return 2
    return 0
