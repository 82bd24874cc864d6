"""Walk a Keras layer graph in topological order and plan the spiking network.

Every tensor gets a :class:`~.values.Value` (the linear paths reaching it). A nonlinearity
(a relu in any spelling, a clipped relu, a leaky relu) closes a neuron layer: its
incoming connections are the value's terms, its bias the value's bias. The model output's
value becomes the host-side readout. Layers are converted by the family modules of
:mod:`loihi_core.converter.layers` through :mod:`.registry`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConversionError
from ..graph import LayerGraph, LayerNode
from .linear import Conv, Identity, LinearOp, Matrix, lift3
from .registry import REGISTRY, supported_classes
from .values import Term, Value, source_value

#: Largest dense readout matrix (entries) built from a linear path after the last neurons.
MAX_READOUT_ENTRIES = 1 << 25

_RECURRENT = ("LSTM", "GRU", "SimpleRNN", "RNN", "Bidirectional", "ConvLSTM1D", "ConvLSTM2D",
              "ConvLSTM3D", "TimeDistributed")
_PREPROCESSING = ("Rescaling", "Normalization", "Resizing", "CenterCrop", "RandomFlip",
                  "RandomRotation", "RandomZoom", "RandomTranslation", "RandomCrop",
                  "RandomContrast", "RandomBrightness")
_NONLINEAR_MERGE = ("Multiply", "Maximum", "Minimum", "Dot")
_ATTENTION = ("Attention", "AdditiveAttention", "MultiHeadAttention", "GroupQueryAttention")


@dataclass
class ConnectionPlan:
    """One incoming path of a neuron layer: ``source`` through ``op`` (float64)."""

    source: str
    op: LinearOp
    path: tuple[str, ...]


@dataclass
class NeuronLayerPlan:
    """A neuron layer before settings are applied.

    ``bias`` is the flat Keras-unit bias (float64) or ``None``; ``max_value`` the clip of
    a ``ReLU(max_value=m)``; ``keras_layers`` the Keras layers folded into it, ``name``
    (whose Keras output equals the layer's rate-mode output) last.
    """

    name: str
    shape: tuple[int, ...]
    connections: list[ConnectionPlan]
    bias: np.ndarray | None
    keras_layers: tuple[str, ...]
    max_value: float | None = None
    role: str = "layer"

    @property
    def inputs(self) -> list[str]:
        """The sources of its connections, each once."""
        return list(dict.fromkeys(c.source for c in self.connections))


@dataclass
class ReadoutPlan:
    name: str
    terms: list[tuple[str, np.ndarray | None]]
    bias: np.ndarray | None
    shape: tuple[int, ...]
    activation: str | None
    keras_layers: tuple[str, ...]


@dataclass
class ConversionPlan:
    """Structure of the converted network, independent of the tuned settings.

    ``roles`` says for every Keras layer what it became (shown by ``inspect``).
    """

    input_name: str
    input_shape: tuple[int, ...]
    neuron_layers: list[NeuronLayerPlan]
    readout: ReadoutPlan
    roles: dict[str, str]
    notes: list[str]
    max_pool_substituted: list[str]
    warnings: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------

def unsupported_reason(node: LayerNode) -> str | None:
    """Why ``node`` cannot be converted on its own, or ``None`` if it can.

    Only checks the layer itself (class, configuration, activation); how layers combine is
    checked by :func:`plan_conversion`. The message names the layer, its class and what to do.
    """
    from . import layers  # noqa: F401  (registers the families)

    cls, cfg = node.keras_class, node.config
    who = f"layer {node.name!r} ({cls})"
    entry = REGISTRY.get(cls)
    if entry is None:
        if cls in _NONLINEAR_MERGE:
            return (f"{cls} {node.name!r} is a nonlinear merge that synapses cannot compute (they "
                    f"only add weighted spikes); use Add, Subtract, Average or Concatenate")
        if cls in _RECURRENT:
            return (f"{cls} {node.name!r} is a recurrent layer, which is not supported: use "
                    f"Conv1D/Conv2D/Dense layers with relu (a Conv1D over time replaces many RNNs)")
        if cls in _ATTENTION:
            return (f"{cls} {node.name!r} (attention) multiplies activations, which synapses "
                    f"cannot compute; it is not supported")
        if cls == "Lambda":
            return (f"Lambda {node.name!r} runs arbitrary code and cannot be converted: replace "
                    f"it with standard Keras layers")
        if cls in _PREPROCESSING:
            return (f"{cls} {node.name!r} is a preprocessing layer: apply it to the data before "
                    f"the model and remove it from the model")
        if cls in ("Functional", "Sequential", "Model"):
            return (f"{node.name!r} is a nested model ({cls}): build the network as one flat "
                    f"functional or Sequential model")
        if cls in ("PReLU", "ELU", "ThresholdedReLU"):
            return (f"{cls} {node.name!r} is not supported: spiking neurons implement relu "
                    f"(non-negative rates); retrain with ReLU, ReLU(max_value) or LeakyReLU")
        if cls.endswith("3D"):
            return f"{cls} {node.name!r} is not supported: only 1-D and 2-D layers are"
        return f"{who} is not supported; supported layers are: {', '.join(supported_classes())}"
    if cfg.get("data_format", "channels_last") != "channels_last":
        return (f"{who} uses data_format={cfg.get('data_format')!r}; only 'channels_last' "
                f"is supported: rebuild the model with channels_last")
    activation = node.activation
    if activation not in ("relu", "linear", "softmax", "relu6", "leaky_relu") and not (
            activation.startswith("ReLU(") or activation.startswith("LeakyReLU(")):
        return (f"{who}: activation {activation!r} has no spiking equivalent (Loihi neurons "
                f"compute relu); use 'relu' (or ReLU(max_value), 'relu6', LeakyReLU), or "
                f"'linear'/'softmax' in the last layer")
    if activation.startswith("ReLU(") and "threshold" in activation:
        return (f"{who}: a ReLU threshold has no spiking equivalent; use threshold=0 (a bias "
                f"shift in the previous layer does the same)")
    if entry.check is not None:
        return entry.check(node)
    if node.kind == "input" and any(d is None for d in node.output_shape):
        return (f"input {node.name!r} has shape {node.output_shape} with unknown sizes: give "
                f"keras.Input a fixed shape, e.g. keras.Input((28, 28, 1))")
    return None


class Planner:
    """State of one conversion (see module docstring)."""

    def __init__(self, graph: LayerGraph, max_to_avg_pool: bool = True):
        self.graph = graph
        self.max_to_avg_pool = max_to_avg_pool
        self.values: dict[str, Value] = {}
        self.layers: list[NeuronLayerPlan] = []
        self.roles: dict[str, str] = {}
        self.notes: list[str] = []
        self.warnings: list[str] = []
        self.max_subs: list[str] = []

    # -- helpers for the layer families -------------------------------------------------
    def fail(self, node: LayerNode, message: str) -> ConversionError:
        return ConversionError(message, layer=node.name)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        self.notes.append(message)

    def role(self, node: LayerNode, text: str) -> None:
        self.roles[node.name] = text

    def neurons(self, node: LayerNode, value: Value, *, name: str | None = None,
                max_value: float | None = None, role: str | None = None,
                kind: str = "layer") -> Value:
        """Close a neuron layer ``relu(value)`` (clipped at ``max_value``); returns its output."""
        name = name or node.name
        if value.softmax:
            raise self.fail(node, f"{node.keras_class} {node.name!r} follows a softmax; softmax is "
                                  f"only supported at the end of the model")
        if not value.terms:
            raise self.fail(node, f"{node.keras_class} {node.name!r} gets a constant input (no "
                                  f"path from the model input reaches it); remove it")
        if name in self.graph and name != node.name:
            raise self.fail(node, f"cannot name the extra neuron layer {name!r}: the model has a "
                                  f"layer of that name; rename it")
        folded = [k for k in value.layers if self.graph[k].kind not in ("flatten", "reshape", "dropout")]
        keras_layers = tuple(dict.fromkeys((*value.layers, node.name)))
        plan = NeuronLayerPlan(
            name=name, shape=tuple(int(d) for d in value.shape),
            connections=[ConnectionPlan(t.source, t.op, t.path) for t in value.terms],
            bias=value.bias, keras_layers=keras_layers, max_value=max_value, role=kind)
        self.layers.append(plan)
        inputs = ", ".join(plan.inputs)
        self.roles[node.name] = role or f"neuron layer {plan.shape} from {inputs}"
        for k in folded:
            if k != node.name:
                self.roles.setdefault(k, f"folded into neuron layer {name!r}")
        return source_value(name, plan.shape, nonneg=True)

    def activation(self, node: LayerNode, value: Value) -> Value:
        """Apply ``node.activation`` (of a Dense/Conv or an Activation layer) to ``value``."""
        act = node.activation
        if act == "linear":
            return value
        if act == "softmax":
            value.softmax = True
            return value
        from .layers.activations import nonlinearity

        return nonlinearity(self, node, value, act)

    # -- the walk -----------------------------------------------------------------------
    def plan(self) -> ConversionPlan:
        from . import layers  # noqa: F401  (registers the families)

        graph = self.graph
        for node in graph:
            reason = unsupported_reason(node)
            if reason:
                raise ConversionError(reason, layer=node.name)
        if len(graph.input_names) != 1:
            raise ConversionError(f"the model has {len(graph.input_names)} inputs "
                                  f"({', '.join(graph.input_names)}); only single-input models "
                                  f"are supported")
        if len(graph.output_names) != 1:
            raise ConversionError(f"the model has {len(graph.output_names)} outputs "
                                  f"({', '.join(graph.output_names)}); only single-output models "
                                  f"are supported")
        inp = graph[graph.input_names[0]]
        out_name = graph.output_names[0]
        for node in graph:
            if node.kind == "input":
                self.values[node.name] = source_value(node.name, tuple(node.output_shape), False)
                self.roles[node.name] = "input (host)"
                continue
            missing = [i for i in node.inputs if i not in self.values]
            if missing:  # pragma: no cover - Keras orders operations topologically
                raise ConversionError(f"layer {node.name!r} comes before its input {missing[0]!r}",
                                      layer=node.name)
            entry = REGISTRY[node.keras_class]
            inputs = [self.values[i] for i in node.inputs]
            if any(v.softmax for v in inputs) and node.kind not in ("flatten", "reshape", "dropout"):
                raise ConversionError(
                    f"layer {node.name!r} ({node.keras_class}) follows a softmax; softmax is only "
                    f"supported at the end of the model", layer=node.name)
            self.values[node.name] = entry.convert(self, node, inputs)
        unused = [n.name for n in graph if n.name != out_name and not graph.consumers(n.name)
                  and n.kind != "input"]
        if unused:
            raise ConversionError(f"layers {', '.join(unused)} do not lead to the model output; "
                                  f"remove them (only single-output models are supported)",
                                  layer=unused[0])
        if not self.layers:
            raise ConversionError(
                "the model has no relu, so there is nothing to turn into spiking neurons: add "
                "activation='relu' to the hidden Conv/Dense layers")
        readout = self._readout(graph[out_name], self.values[out_name])
        return ConversionPlan(inp.name, tuple(inp.output_shape), self.layers, readout,
                              self.roles, self.notes, self.max_subs, self.warnings)

    def _readout(self, node: LayerNode, value: Value) -> ReadoutPlan:
        """The output's value as host-side terms from neuron layers (dense matrices)."""
        neuron_names = {p.name for p in self.layers}
        terms = []
        for t in value.terms:
            if t.source not in neuron_names:
                raise ConversionError(
                    f"the model output {node.name!r} reads the model input directly (through "
                    f"{' → '.join(t.path) or 'nothing'}); every path to the output must pass "
                    f"through a relu", layer=node.name)
            n_src, n_out = t.op.n_in, t.op.n_out
            if isinstance(t.op, Identity) and t.op.scale == 1.0:
                terms.append((t.source, None))
                continue
            if n_src * n_out > MAX_READOUT_ENTRIES:
                raise ConversionError(
                    f"the readout from {t.source!r} to the output {node.name!r} would be a dense "
                    f"{n_src}×{n_out} matrix (too large); add a relu before the last layers",
                    layer=node.name)
            m = t.op.matrix()
            m = m.toarray() if hasattr(m, "toarray") else np.asarray(m)
            terms.append((t.source, m.astype(np.float32)))
        for k in value.layers:
            self.roles.setdefault(k, "readout (host)")
        self.roles[node.name] = "readout (host)" + (", softmax" if value.softmax else "")
        bias = None if value.bias is None else value.bias.astype(np.float32)
        if not terms:
            raise ConversionError(f"the model output {node.name!r} is a constant", layer=node.name)
        return ReadoutPlan(name=node.name, terms=terms, bias=bias,
                           shape=tuple(node.output_shape),
                           activation="softmax" if value.softmax else None,
                           keras_layers=tuple(dict.fromkeys((*value.layers, node.name))))


def plan_conversion(graph: LayerGraph, max_to_avg_pool: bool = True) -> ConversionPlan:
    """Analyse ``graph``: neuron layers, folded layers, readout (no settings applied).

    Raises :class:`ConversionError` for anything that cannot be converted.
    """
    planner = Planner(graph, max_to_avg_pool)
    try:
        return planner.plan()
    except ConversionError as exc:
        exc.partial_roles = dict(planner.roles)  # what the layers before the failure became
        raise


def parse_call(text: str) -> dict[str, float]:
    """``"ReLU(max_value=6.0, negative_slope=0.1)"`` → ``{"max_value": 6.0, ...}``."""
    out = {}
    for key, val in re.findall(r"(\w+)=([-+0-9.eE]+|None)", text):
        if val != "None":
            out[key] = float(val)
    return out


def conv_or_matrix(op: LinearOp, shape: tuple[int, ...]) -> LinearOp:
    """``op`` ready to be a connection into a layer of ``shape``: a conv whose output is
    the layer's own (lifted) shape stays a conv; an identity becomes a 1×1 depthwise conv
    (a diagonal sparse map for a flat layer); anything else a matrix."""
    if isinstance(op, Identity):
        if len(shape) == 1:  # one weight per neuron: a diagonal sparse map
            return Matrix(op.matrix())
        return op.as_conv(shape)
    if isinstance(op, Conv) and op.out_shape == lift3(shape):
        return op
    if isinstance(op, Conv):
        return Matrix.of(op.matrix())
    return op
