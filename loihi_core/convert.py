"""Keras layer graph → :class:`~loihi_core.network.SpikingNetwork` (NengoDL Converter semantics).

The model may be any directed acyclic graph of supported layers (residual and branching
networks included). :mod:`loihi_core.converter` plans it: every relu (any spelling, a
clipped ``ReLU(max_value)``, the two halves of a ``LeakyReLU``) closes a
:class:`~loihi_core.network.NeuronLayer` named after the Keras layer that applies it (so
its rate-mode output *is* that layer's output), and every path of linear layers between
two neuron layers (convolutions, pooling, padding, batch normalisation, merges, views)
becomes one exact :class:`~loihi_core.network.Connection` — several into a layer that a
merge feeds, as NengoLoihi builds them. Layers after the last neurons form the host-side
:class:`~loihi_core.network.Readout`.

:func:`convert` applies a tuned config to that plan: ``gain = scale_firing_rates``,
``bias = keras_bias · gain``, ``amplitude = neuron.amplitude / gain``, the synapse of each
layer on the connections out of it, and the on/off-chip placement (the layers fed by the
input run on the host by default; an on-chip first layer gets NengoLoihi's on/off input
encoder). The one approximation, max pooling, is announced with a warning. Anything else
that cannot run raises a :class:`~loihi_core.errors.ConversionError` naming the layer.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp

from .converter import (ConnectionPlan, ConversionPlan, NeuronLayerPlan, ReadoutPlan,
                        plan_conversion, unsupported_reason)
from .converter.linear import DENSE_MAX_ENTRIES, Conv, Matrix
from .converter.planner import conv_or_matrix
from .errors import ConfigError, ConversionError
from .graph import LayerGraph, load_model
from .network import Connection, NeuronLayer, Readout, SpikingNetwork

__all__ = ["convert", "plan_conversion", "unsupported_reason", "default_on_chip",
           "neuron_layer_shapes", "ConversionPlan", "NeuronLayerPlan", "ReadoutPlan",
           "input_encoder_name", "ENCODER_RATE", "ENCODER_SYNAPSE"]

#: NengoLoihi's host encoding of an input that feeds an on-chip layer: an on/off pair of
#: spiking relus per input dimension, 1 000 Hz at ±1 (gain = bias = rate/2), whose spikes
#: reach the chip through its ``decode_tau`` synapse (s).
ENCODER_RATE = 1000.0
ENCODER_SYNAPSE = 0.005


def _fed_by_input(plan: ConversionPlan, p: NeuronLayerPlan) -> bool:
    return all(c.source == plan.input_name for c in p.connections)


def default_on_chip(graph: LayerGraph | Any, neuron=None) -> dict[str, bool]:
    """The default placement by neuron-layer name: layers fed by the input off chip, the
    others on chip.

    The first neuron layer(s) turn the input into spikes on the host, as in the
    NengoDL/NengoLoihi tutorial. A layer whose neuron type cannot run on Loihi (the ideal
    rate/spiking types) defaults to off chip.
    """
    plan = plan_conversion(load_model(graph))
    capable = True if neuron is None else bool(getattr(neuron, "on_chip_capable", True))
    return {p.name: (not _fed_by_input(plan, p)) and capable for p in plan.neuron_layers}


def neuron_layer_shapes(graph: LayerGraph | Any) -> dict[str, tuple[int, ...]]:
    """Shapes of the layers that become neurons, by name (for configs and the app)."""
    plan = plan_conversion(load_model(graph))
    return {layer.name: layer.shape for layer in plan.neuron_layers}


def input_encoder_name(input_name: str) -> str:
    """Name of the host's on/off encoder layer of an on-chip first layer."""
    return f"{input_name}_encoder"


def _load_config(config):
    from .config import load_config  # lazy: keeps graph/convert importable on their own

    return load_config(config)


def _padding(op: Conv) -> str | tuple[int, int]:
    """Keras' own padding word when the explicit padding is one, else ``(top, left)``."""
    (h, w, _), (oh, ow, _) = op.in_shape, op.out_shape
    kh, kw = op.kernel.shape[:2]
    sr, sc = op.strides
    if op.pad == (0, 0) and (oh, ow) == ((h - kh) // sr + 1, (w - kw) // sc + 1):
        return "valid"
    same = (max((oh - 1) * sr + kh - h, 0) // 2, max((ow - 1) * sc + kw - w, 0) // 2)
    if op.pad == same and (oh, ow) == (-(-h // sr), -(-w // sc)):
        return "same"
    return tuple(op.pad)


def _connection(pre: str, post: NeuronLayer, cp: ConnectionPlan, synapse: float | None,
                source_shape: tuple[int, ...]) -> Connection:
    op = conv_or_matrix(cp.op, post.shape)
    if isinstance(op, Conv):
        return Connection(pre=pre, post=post.name, kind="conv",
                          weights=op.kernel.astype(np.float32), pre_shape=op.in_shape,
                          post_shape=op.out_shape, strides=tuple(op.strides),
                          padding=_padding(op), synapse=synapse, groups=int(op.groups))
    assert isinstance(op, Matrix)
    if op.is_sparse:
        weights = op.m.astype(np.float32).tocsr()
        weights.eliminate_zeros()
        kind = "sparse"
    else:
        weights, kind = np.asarray(op.m, np.float32), "dense"
    return Connection(pre=pre, post=post.name, kind=kind, weights=weights,
                      pre_shape=(int(np.prod(source_shape)),), post_shape=tuple(post.shape),
                      synapse=synapse)


def convert(model: Any, config: Any = None) -> SpikingNetwork:
    """Convert a Keras model to a :class:`SpikingNetwork` with the settings of a tuned config.

    Parameters
    ----------
    model
        A path to a ``.keras`` file, a ``keras.Model`` or a :class:`LayerGraph`.
    config
        A :class:`~loihi_core.config.TunedConfig`, a tuned-config dict or JSON path, or
        ``None`` for the defaults (scale 1, no synapse, LoihiSpikingRectifiedLinear).

    Raises
    ------
    ConversionError
        Naming the layer that cannot be converted and what to do.
    ConfigError
        When the config names layers the model does not have, or bad block shapes.
    """
    graph = load_model(model)
    cfg = _load_config(config)
    plan = plan_conversion(graph, max_to_avg_pool=bool(getattr(cfg, "max_to_avg_pool", True)))
    for message in plan.warnings:
        warnings.warn(message, UserWarning, stacklevel=2)
    names = [p.name for p in plan.neuron_layers]
    _check_config_names(cfg, graph, plan)
    cfg.validate_for(_config_shapes(graph, plan), neuron_layers=names)
    dt = float(cfg.dt)

    layers: dict[str, NeuronLayer] = {}
    for p in plan.neuron_layers:
        s = cfg.for_layer(p.name)
        neuron = s.neuron
        gain = float(s.scale_firing_rates)
        if not (math.isfinite(gain) and gain > 0):
            raise ConfigError([(f"layers.{p.name}.scale_firing_rates",
                                f"must be a positive number, got {gain}")])
        capable = bool(getattr(neuron, "on_chip_capable", True))
        on_chip = s.on_chip if s.on_chip is not None else (not _fed_by_input(plan, p) and capable)
        if on_chip and not capable:
            raise ConversionError(
                f"neuron layer {p.name!r} is set on chip but its neuron type "
                f"{type(neuron).__name__} cannot run on Loihi; use LoihiSpikingRectifiedLinear "
                f"or LoihiLIF, or set \"on_chip\": false", layer=p.name)
        n = int(np.prod(p.shape))
        bias = np.zeros(n) if p.bias is None else np.asarray(p.bias, np.float64) * gain
        layers[p.name] = NeuronLayer(
            name=p.name, shape=p.shape, neuron=neuron, gain=gain, bias=np.array(bias, np.float64),
            amplitude=neuron.amplitude / gain, on_chip=bool(on_chip), synapse=s.synapse,
            block_shape=None if s.block_shape is None else tuple(s.block_shape),
            keras_layers=p.keras_layers, max_value=p.max_value, role=p.role)
        if p.max_value is not None and getattr(neuron, "family", "") == "relu":
            exact = 1.0 / (p.max_value * dt)
            if not math.isclose(gain, exact, rel_tol=1e-9):
                warnings.warn(
                    f"{p.name!r} clips at {p.max_value:g} in Keras; Loihi relus saturate at one "
                    f"spike per step, i.e. at {1.0 / (gain * dt):g} with scale_firing_rates "
                    f"{gain:g}: set it to {exact:g} for an exact clip (verify reports the cost)",
                    UserWarning, stacklevel=2)

    shapes = {plan.input_name: plan.input_shape, **{n: lay.shape for n, lay in layers.items()}}
    encoder = _input_encoder(plan, layers)
    connections: list[Connection] = []
    if encoder is not None:
        n_in = int(np.prod(plan.input_shape))
        encode = _on_off(n_in).T
        encode = encode.tocsr() if sp.issparse(encode) else encode
        connections.append(Connection(
            pre=plan.input_name, post=encoder.name,
            kind="sparse" if sp.issparse(encode) else "dense",
            weights=encode.astype(np.float32), pre_shape=(n_in,), post_shape=encoder.shape))
    ordered: dict[str, NeuronLayer] = {} if encoder is None else {encoder.name: encoder}
    for p in plan.neuron_layers:
        post = layers[p.name]
        ordered[p.name] = post
        for cp in p.connections:
            if cp.source == plan.input_name and post.on_chip:
                # the host's on/off neurons carry the input: decode them (±1/rate per
                # spike·dt) through this path's map
                n_in = int(np.prod(plan.input_shape))
                decode = _on_off(n_in) / ENCODER_RATE
                routed = ConnectionPlan(encoder.name, Matrix(decode).then(cp.op), cp.path)
                conn = _connection(encoder.name, post, routed, encoder.synapse, encoder.shape)
            else:
                pre = layers.get(cp.source)
                conn = _connection(cp.source, post, cp, None if pre is None else pre.synapse,
                                   shapes[cp.source])
            connections.append(conn)
    r = plan.readout
    (pre0, w0), *more = r.terms
    readout = Readout(name=r.name, pre=pre0, weights=w0, bias=r.bias, shape=r.shape,
                      activation=r.activation, keras_layers=r.keras_layers,
                      more_terms=tuple(more))
    notes = list(plan.notes)
    for p in plan.neuron_layers:
        folded = [k for k in p.keras_layers
                  if k in graph and graph[k].kind not in ("flatten", "reshape", "dropout")]
        if len(folded) > 1:
            notes.append(f"neuron layer {p.name!r} = {' → '.join(folded)}")
        if len(p.connections) > 1:
            notes.append(f"neuron layer {p.name!r} has {len(p.connections)} incoming connections "
                         f"(from {', '.join(cp.source for cp in p.connections)})")
    if encoder is not None:
        notes.append(f"the input is encoded on the host by {encoder.n_neurons} on/off neurons "
                     f"({encoder.name!r}, {ENCODER_RATE:g} Hz at ±1) feeding the on-chip first "
                     f"layer through a {ENCODER_SYNAPSE:g} s synapse, as NengoLoihi does")
    return SpikingNetwork(
        input_name=plan.input_name, input_shape=plan.input_shape, layers=ordered,
        connections=connections, readout=readout, dt=dt,
        presentation_steps=int(cfg.presentation_steps), notes=notes,
        layer_roles=dict(plan.roles), max_pool_substituted=list(plan.max_pool_substituted),
        model_sha256=graph.sha256, input_range=getattr(cfg, "input_range", None))


def _on_off(n_in: int):
    """The ``(2 n_in, n_in)`` map ``[+I; -I]`` of the on/off encoder's neurons to the input.

    Dense as before up to :data:`~loihi_core.converter.linear.DENSE_MAX_ENTRIES` entries;
    beyond, a sparse CSR matrix (a 128x128x3 image would need 19 GB dense). Each row has
    one non-zero, so every product with it is the same single term either way.
    """
    if 2 * n_in * n_in <= DENSE_MAX_ENTRIES:
        return np.concatenate([np.eye(n_in), -np.eye(n_in)], axis=0)
    eye = sp.identity(n_in, format="csr", dtype=np.float64)
    return sp.vstack([eye, -eye], format="csr")


def _input_encoder(plan: ConversionPlan, layers: dict[str, NeuronLayer]) -> NeuronLayer | None:
    """The host's on/off encoder layer, when an on-chip layer reads the input directly."""
    if not any(layers[p.name].on_chip and any(c.source == plan.input_name for c in p.connections)
               for p in plan.neuron_layers):
        return None
    from .neurons import SpikingRectifiedLinear

    n = 2 * int(np.prod(plan.input_shape))
    name = input_encoder_name(plan.input_name)
    gain = ENCODER_RATE / 2
    return NeuronLayer(name=name, shape=(n,), neuron=SpikingRectifiedLinear(), gain=gain,
                       bias=np.full(n, gain), amplitude=1.0, on_chip=False,
                       synapse=ENCODER_SYNAPSE, role="input_encoder")


def _config_shapes(graph: LayerGraph, plan: ConversionPlan) -> dict[str, tuple]:
    shapes = dict(graph.layer_shapes())
    for p in plan.neuron_layers:
        shapes[p.name] = p.shape
    return shapes


def _check_config_names(cfg, graph: LayerGraph, plan: ConversionPlan) -> None:
    """Settings that would be silently ignored are refused: those given under a folded
    layer's name (``conv1`` of ``conv1 → relu1``) and synapses on layers without neurons."""
    owner = {}
    for p in plan.neuron_layers:
        for k in p.keras_layers:
            if k != p.name and k in graph and graph[k].kind not in ("flatten", "reshape", "dropout"):
                owner.setdefault(k, p.name)
    neuron_names = {p.name for p in plan.neuron_layers}
    problems = []
    for name, overrides in (getattr(cfg, "layers", {}) or {}).items():
        if name in owner and name not in neuron_names:
            problems.append((f"layers.{name}",
                             f"{name!r} is folded into neuron layer {owner[name]!r}; put its "
                             f"settings under {owner[name]!r}"))
        elif (name in graph and name not in neuron_names
              and "synapse" in overrides.to_dict()):
            problems.append((f"layers.{name}.synapse",
                             f"{name!r} has no neurons, and a synapse filters the output of a "
                             f"neuron layer; set it on one of: {', '.join(sorted(neuron_names))}"))
    if problems:
        raise ConfigError(problems)
