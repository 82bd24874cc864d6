"""Keras layer graph → :class:`~loihi_core.network.SpikingNetwork` (NengoDL Converter semantics).

The model must be one chain of layers. Walking it, the converter keeps the *linear*
operations met since the last nonlinearity and folds them into one connection:

* ``Flatten``/``Reshape`` are views (channels-last C order, as Keras), ``Dropout`` and
  friends are the identity at inference;
* ``AveragePooling2D`` (``pool_size == strides``, ``'valid'``) is folded **exactly** into the
  next weighted layer: pooling (p, p) then a k×k conv of stride s is a (k·p)×(k·p) conv of
  stride s·p with weights K/p² (rows for the cropped remainder are never read); pooling
  then Flatten + Dense repeats each Dense row over its p×p window, divided by p²;
* ``MaxPooling2D`` has no synaptic equivalent: with ``max_to_avg_pool`` (the default) it is
  replaced by average pooling, with a warning and a note; this is the one approximation
  (``loihi_core.verify`` reports its cost);
* ``BatchNormalization`` right after a Conv2D/Dense is folded exactly into its weights:
  ``inv = gamma / sqrt(var + eps)``, ``W·inv``, ``(b - mean)·inv + beta``;
* a ``Conv2DTranspose`` becomes an exact dense connection (its full weight matrix).

Every relu (``activation="relu"`` in any spelling, a ``ReLU()`` layer or
``Activation("relu")``) closes a :class:`~loihi_core.network.NeuronLayer` named after the
layer that applies the relu (so its rate-mode output *is* that Keras layer's output);
``gain = scale_firing_rates``, ``bias = keras_bias · gain``, ``amplitude =
neuron.amplitude / gain``. Layers after the last relu form the host-side
:class:`~loihi_core.network.Readout` (one Dense, optional softmax). Anything else raises a
:class:`~loihi_core.errors.ConversionError` naming the layer, its class and what to do.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import ConfigError, ConversionError
from .folding import (check_same_pool_fold, conv_transpose_matrix, expand_conv_for_pool,
                      expand_dense_rows_for_pool, fold_batch_norm)
from .graph import LayerGraph, LayerNode, load_model
from .network import Connection, NeuronLayer, Readout, SpikingNetwork

#: Largest dense weight matrix the converter builds for a Conv2DTranspose (entries).
MAX_DENSE_ENTRIES = 1 << 24

_MERGE = ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot")
_RECURRENT = ("LSTM", "GRU", "SimpleRNN", "RNN", "Bidirectional", "ConvLSTM1D", "ConvLSTM2D",
              "ConvLSTM3D", "TimeDistributed")
_OTHER_CONV = ("Conv1D", "Conv3D", "SeparableConv1D", "SeparableConv2D", "DepthwiseConv1D",
               "DepthwiseConv2D", "Conv1DTranspose", "Conv3DTranspose")
_ACT_LAYERS = ("LeakyReLU", "PReLU", "ELU", "ThresholdedReLU")
_PREPROCESSING = ("Rescaling", "Normalization", "Resizing", "CenterCrop", "RandomFlip",
                  "RandomRotation", "RandomZoom", "RandomTranslation", "RandomCrop",
                  "RandomContrast", "RandomBrightness")
_SUPPORTED_LIST = ("InputLayer, Conv2D, Dense, Flatten, Reshape, Dropout, ReLU, Activation "
                   "('relu', 'linear', 'softmax'), BatchNormalization, AveragePooling2D, "
                   "MaxPooling2D (approximated), GlobalAveragePooling2D, Conv2DTranspose")


# ---------------------------------------------------------------------------------------
# per-layer support
# ---------------------------------------------------------------------------------------

def unsupported_reason(node: LayerNode) -> str | None:
    """Why ``node`` cannot be converted on its own, or ``None`` if it can.

    Only checks the layer itself (class, configuration, activation); how layers combine is
    checked by :func:`convert`. The message names the layer, its class and what to do.
    """
    who = f"layer {node.name!r} ({node.keras_class})"
    cls, cfg = node.keras_class, node.config
    if node.kind == "unsupported":
        if cls in _MERGE:
            return (f"{cls} {node.name!r} (a merge of branches, e.g. skip connections) is not "
                    f"supported yet: the converter handles one chain of layers; remove the branch "
                    f"or convert the two paths as separate models")
        if cls in _RECURRENT:
            return (f"{cls} {node.name!r} is a recurrent layer, which is not supported: use "
                    f"Conv2D/Dense layers with relu")
        if cls in _OTHER_CONV:
            return (f"{cls} {node.name!r} is not supported yet: use a regular Conv2D "
                    f"(2-D, groups=1) with relu")
        if cls in _ACT_LAYERS:
            return (f"{cls} {node.name!r} is not supported: spiking neurons implement relu "
                    f"(non-negative rates), so retrain with ReLU / activation='relu'")
        if cls in ("ZeroPadding2D", "Cropping2D"):
            return (f"{cls} {node.name!r} is not supported: use padding='same' or 'valid' in the "
                    f"Conv2D instead")
        if cls in ("UpSampling2D", "UpSampling1D"):
            return (f"{cls} {node.name!r} is not supported: use a Conv2DTranspose with "
                    f"strides instead")
        if cls == "Lambda":
            return (f"Lambda {node.name!r} runs arbitrary code and cannot be converted: replace "
                    f"it with standard Keras layers")
        if cls in _PREPROCESSING:
            return (f"{cls} {node.name!r} is a preprocessing layer: apply it to the data before "
                    f"the model and remove it from the model")
        if cls in ("Functional", "Sequential", "Model"):
            return (f"{node.name!r} is a nested model ({cls}): build the network as one flat "
                    f"functional or Sequential model")
        if cls in ("MaxPooling1D", "AveragePooling1D", "MaxPooling3D", "AveragePooling3D",
                   "GlobalAveragePooling1D", "GlobalMaxPooling1D"):
            return (f"{cls} {node.name!r} is not supported: only 2-D pooling is "
                    f"(AveragePooling2D, MaxPooling2D)")
        return f"{who} is not supported; supported layers are: {_SUPPORTED_LIST}"
    if node.activation not in ("relu", "linear", "softmax"):
        return (f"{who}: activation {node.activation!r} has no spiking equivalent (Loihi neurons "
                f"compute relu); use activation='relu' (or a plain ReLU() layer), or "
                f"'linear'/'softmax' in the last Dense")
    if node.activation == "softmax" and node.kind not in ("dense", "activation"):
        return (f"{who}: softmax is only supported in the last Dense layer (or an "
                f"Activation('softmax') after it)")
    if cfg.get("data_format", "channels_last") != "channels_last":
        return (f"{who} uses data_format={cfg.get('data_format')!r}; only 'channels_last' "
                f"is supported: rebuild the model with channels_last")
    if node.kind in ("conv2d", "conv2d_transpose"):
        if tuple(cfg.get("dilation_rate", (1, 1))) != (1, 1):
            return (f"{who} has dilation_rate={tuple(cfg['dilation_rate'])}; only (1, 1) is "
                    f"supported")
        if int(cfg.get("groups", 1)) != 1:
            return f"{who} has groups={cfg['groups']}; only groups=1 is supported"
        if cfg.get("padding") not in ("valid", "same"):
            return f"{who} has padding={cfg.get('padding')!r}; use 'valid' or 'same'"
    if node.kind in ("avg_pool", "max_pool"):
        pool = tuple(cfg["pool_size"])
        strides = tuple(cfg["strides"]) if cfg.get("strides") is not None else pool
        if cfg.get("padding") != "valid":
            return (f"{who} has padding={cfg.get('padding')!r}: 'same' pooling averages over "
                    f"fewer cells at the border and cannot be folded into synapse weights; "
                    f"use padding='valid'")
        if pool != strides:
            return (f"{who} has pool_size={pool} but strides={strides}: only non-overlapping "
                    f"pooling (strides == pool_size) folds exactly into synapse weights")
    if node.kind == "batch_norm":
        axis = cfg.get("axis", -1)
        axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
        rank = len(node.output_shape)
        if axis not in (-1, rank) or cfg.get("renorm"):
            return (f"{who} normalises axis {cfg.get('axis')}; only the last (channels) axis "
                    f"can be folded into the preceding layer's weights")
    if node.kind == "input" and any(d is None for d in node.output_shape):
        return (f"input {node.name!r} has shape {node.output_shape} with unknown sizes: give "
                f"keras.Input a fixed shape, e.g. keras.Input((28, 28, 1))")
    return None


# ---------------------------------------------------------------------------------------
# planning: what each Keras layer becomes
# ---------------------------------------------------------------------------------------

@dataclass
class _Weighted:
    """A weighted layer resolved into one connection (float64 until the network is built)."""

    node: LayerNode
    kind: str  # "dense" | "conv"
    kernel: np.ndarray
    bias: np.ndarray | None
    pre_shape: tuple[int, ...]
    post_shape: tuple[int, ...]
    strides: tuple[int, int] = (1, 1)
    padding: str = "valid"
    folded: list[str] = field(default_factory=list)  # views/pooling folded in before it
    batch_norm: str | None = None  # BatchNormalization folded in after it
    trailing_views: list[LayerNode] = field(default_factory=list)


@dataclass
class NeuronLayerPlan:
    """A neuron layer before settings are applied (shape, incoming connection, bias)."""

    name: str
    shape: tuple[int, ...]
    pre: str
    weighted: _Weighted
    keras_layers: tuple[str, ...]


@dataclass
class ReadoutPlan:
    name: str
    pre: str
    weights: np.ndarray | None
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


def _chain(graph: LayerGraph) -> list[LayerNode]:
    """The layers as one chain from the input to the output, or a ConversionError."""
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
    chain = [graph[graph.input_names[0]]]
    while chain[-1].name != graph.output_names[0]:
        nxt = graph.consumers(chain[-1].name)
        if len(nxt) != 1:
            raise ConversionError(
                f"the output of layer {chain[-1].name!r} ({chain[-1].keras_class}) feeds "
                f"{len(nxt)} layers ({', '.join(nxt) or 'none'}); only a single chain of layers "
                f"is supported (no branches)", layer=chain[-1].name)
        node = graph[nxt[0]]
        if len(node.inputs) != 1:
            raise ConversionError(f"layer {node.name!r} ({node.keras_class}) takes "
                                  f"{len(node.inputs)} inputs; only a single chain of layers is "
                                  f"supported", layer=node.name)
        chain.append(node)
    if len(chain) != len(graph):
        extra = [n for n in graph.names if n not in {c.name for c in chain}]
        raise ConversionError(f"layers {', '.join(extra)} are not on the path from the input to "
                              f"the output; only a single chain of layers is supported")
    return chain


class _Planner:
    """Walks the chain and folds linear layers between nonlinearities (see module doc)."""

    def __init__(self, graph: LayerGraph, max_to_avg_pool: bool):
        self.graph = graph
        self.max_to_avg_pool = max_to_avg_pool
        self.roles: dict[str, str] = {}
        self.notes: list[str] = []
        self.max_subs: list[str] = []
        self.warnings: list[str] = []  # emitted by convert(), not by planning
        self.layers: list[NeuronLayerPlan] = []
        self.readout: ReadoutPlan | None = None

    # -- state --------------------------------------------------------------------------
    def _reset(self, src: str, shape: tuple[int, ...], nonneg: bool) -> None:
        self.src, self.src_shape, self.src_nonneg = src, shape, nonneg
        self.view = shape            # current shape of the data since src
        self.pool_base = None        # (H, W, C) view at the first pooling
        self.pool = (1, 1)           # accumulated pooling factors
        self.pooled_view = None      # view right after the last pooling
        self.pending: list[LayerNode] = []  # layers folded into the next connection
        self.weighted: _Weighted | None = None
        self.softmax: LayerNode | None = None

    def plan(self) -> ConversionPlan:
        chain = _chain(self.graph)
        inp = chain[0]
        self.roles[inp.name] = "input (host)"
        self._reset(inp.name, tuple(inp.output_shape), nonneg=False)
        for node in chain[1:]:
            self._visit(node)
        self._finish(chain[-1])
        if not self.layers:
            raise ConversionError(
                "the model has no relu, so there is nothing to turn into spiking neurons: add "
                "activation='relu' to the hidden Conv2D/Dense layers")
        return ConversionPlan(inp.name, tuple(inp.output_shape), self.layers, self.readout,
                              self.roles, self.notes, self.max_subs, self.warnings)

    # -- one layer ----------------------------------------------------------------------
    def _visit(self, node: LayerNode) -> None:
        kind = node.kind
        if kind == "dropout":
            self.roles[node.name] = "identity at inference (ignored)"
            return
        if self.softmax is not None and kind not in ("flatten", "reshape"):
            raise ConversionError(
                f"layer {node.name!r} ({node.keras_class}) follows the softmax of "
                f"{self.softmax.name!r}; softmax is only supported at the end of the model",
                layer=node.name)
        if kind in ("flatten", "reshape"):
            return self._view(node)
        if kind in ("avg_pool", "max_pool", "global_avg_pool", "global_max_pool"):
            return self._pooling(node)
        if kind == "batch_norm":
            return self._batch_norm(node)
        if kind in ("dense", "conv2d", "conv2d_transpose"):
            self._weighted_layer(node)
            if node.activation == "relu":
                self._close_neuron_layer(node)
            elif node.activation == "softmax":
                self._softmax(node)
            return
        if kind == "activation":
            if node.activation == "relu":
                return self._relu_layer(node)
            if node.activation == "softmax":
                return self._softmax(node)
            self.roles[node.name] = "identity (linear activation)"
            return
        raise ConversionError(unsupported_reason(node) or f"layer {node.name!r} "
                              f"({node.keras_class}) is not supported", layer=node.name)

    def _view(self, node: LayerNode) -> None:
        shape = tuple(node.output_shape)
        if self.weighted is not None:
            # after the weighted layer and before any activation: fine only at the very end
            self.weighted.trailing_views.append(node)
            self.roles[node.name] = f"view of {self.weighted.node.name!r}"
            self.view = shape
            return
        self.view = shape
        self.pending.append(node)
        self.roles[node.name] = "view (C-order reshape, no computation)"

    def _pooling(self, node: LayerNode) -> None:
        if self.weighted is not None:
            raise ConversionError(
                f"{node.keras_class} {node.name!r} sits between {self.weighted.node.keras_class} "
                f"{self.weighted.node.name!r} and its activation (or after the output layer); "
                f"put the pooling after the activation (conv → relu → pooling)", layer=node.name)
        if len(self.view) != 3:
            raise ConversionError(f"{node.keras_class} {node.name!r} gets a {self.view} input; "
                                  f"2-D pooling needs (rows, cols, channels)", layer=node.name)
        if self.pool_base is not None and self.view != self.pooled_view:
            raise ConversionError(
                f"{node.keras_class} {node.name!r}: a Reshape between two poolings cannot be "
                f"folded; remove it", layer=node.name)
        h, w, c = self.view
        if node.kind.startswith("global_"):
            pool = (h, w)
        else:
            pool = tuple(int(p) for p in node.config["pool_size"])
        if pool[0] > h or pool[1] > w:
            raise ConversionError(f"{node.keras_class} {node.name!r}: pool {pool} is larger than "
                                  f"its input {self.view}", layer=node.name)
        is_max = node.kind in ("max_pool", "global_max_pool")
        if is_max:
            avg_cls = node.keras_class.replace("Max", "Average")
            if not self.max_to_avg_pool:
                raise ConversionError(
                    f"{node.keras_class} {node.name!r} cannot be computed by Loihi synapses (a "
                    f"max is not a weighted sum); set \"max_to_avg_pool\": true in the tuned "
                    f"config to substitute average pooling (verify reports the accuracy cost), or "
                    f"retrain with {avg_cls}", layer=node.name)
            msg = (f"{node.keras_class} {node.name!r} replaced by {avg_cls} (max pooling cannot "
                   f"be computed by Loihi synapses); outputs will differ from Keras: check the "
                   f"cost with loihi_core.verify")
            self.warnings.append(msg)
            self.notes.append(msg)
            self.max_subs.append(node.name)
        if self.pool_base is None:
            self.pool_base = self.view
        self.pool = (self.pool[0] * pool[0], self.pool[1] * pool[1])
        base = self.pool_base
        self.pooled_view = (base[0] // self.pool[0], base[1] // self.pool[1], base[2])
        self.view = tuple(node.output_shape)  # (c,) for a global pooling without keepdims
        self.pending.append(node)
        kind = "average pooling" if not is_max else "max pooling → average pooling"
        self.roles[node.name] = f"{kind} {pool}, folded into the next connection"

    def _batch_norm(self, node: LayerNode) -> None:
        wt = self.weighted
        if wt is None or wt.trailing_views or wt.batch_norm is not None:
            raise ConversionError(
                f"BatchNormalization {node.name!r} must directly follow a Conv2D or Dense (it is "
                f"folded into that layer's weights); move it before the activation "
                f"(conv → batch norm → relu)", layer=node.name)
        wt.kernel, wt.bias = fold_batch_norm(wt.kernel, wt.bias, node)
        wt.batch_norm = node.name
        self.roles[node.name] = f"folded into {wt.node.name!r}"

    def _weighted_layer(self, node: LayerNode) -> None:
        if self.weighted is not None:
            prev = self.weighted.node
            raise ConversionError(
                f"{node.keras_class} {node.name!r} directly follows {prev.keras_class} "
                f"{prev.name!r} with no relu between them: two weighted layers without a "
                f"nonlinearity are one linear map, but each connection must end in neurons "
                f"(or be the last layer); add activation='relu' to {prev.name!r} or merge the "
                f"two layers", layer=node.name)
        self.weighted = self._resolve(node)
        self.roles[node.name] = "weights"

    def _resolve(self, node: LayerNode) -> _Weighted:
        """Fold the pending views/pooling into ``node``'s weights (one connection)."""
        w = node.weights
        kernel = w["kernel"].astype(np.float64)
        bias = w["bias"].astype(np.float64) if "bias" in w else None
        in_view = self.view
        out_shape = tuple(node.output_shape)
        pooled = self.pool_base is not None
        base = self.pool_base
        if node.kind == "dense" and len(in_view) == 3:
            # Dense on (H, W, C) acts on the channels of every pixel: a 1×1 conv
            kernel = kernel.reshape(1, 1, *kernel.shape)
            conv_like, strides, padding = True, (1, 1), "valid"
        elif node.kind == "dense":
            if len(in_view) != 1:
                raise ConversionError(f"Dense {node.name!r} gets a {in_view} input; add a Flatten "
                                      f"before it", layer=node.name)
            conv_like, strides, padding = False, (1, 1), "valid"
        elif node.kind == "conv2d":
            if len(in_view) != 3:
                raise ConversionError(f"Conv2D {node.name!r} gets a {in_view} input; it needs "
                                      f"(rows, cols, channels)", layer=node.name)
            conv_like = True
            strides = tuple(int(s) for s in node.config["strides"])
            padding = node.config["padding"]
        else:  # conv2d_transpose → exact dense matrix
            return self._resolve_transpose(node, kernel, bias, in_view, out_shape)

        if conv_like:
            if pooled and in_view != self.pooled_view:
                raise ConversionError(f"{node.keras_class} {node.name!r}: a Reshape between the "
                                      f"pooling and this layer cannot be folded", layer=node.name)
            if pooled:
                if padding == "same":
                    why = check_same_pool_fold(self.pooled_view[:2], base[:2], kernel.shape[:2],
                                               strides, self.pool)
                    if why:
                        raise ConversionError(
                            f"cannot fold the pooling before {node.keras_class} {node.name!r} "
                            f"exactly: {why}; use padding='valid' in {node.name!r} or an input "
                            f"size that divides evenly", layer=node.name)
                kernel, strides = expand_conv_for_pool(kernel, strides, self.pool)
                pre_shape = base
            else:
                pre_shape = in_view
            wt = _Weighted(node, "conv", kernel, bias, tuple(pre_shape), out_shape,
                           strides, padding)
        else:
            if pooled:
                kernel = expand_dense_rows_for_pool(kernel, base, self.pool)
                pre_shape = (int(np.prod(base)),)
            else:
                pre_shape = in_view
            wt = _Weighted(node, "dense", kernel, bias, tuple(pre_shape), out_shape)
        wt.folded.extend(n.name for n in self.pending)
        return wt

    def _resolve_transpose(self, node, kernel, bias, in_view, out_shape) -> _Weighted:
        if len(in_view) != 3:
            raise ConversionError(f"Conv2DTranspose {node.name!r} gets a {in_view} input; it "
                                  f"needs (rows, cols, channels)", layer=node.name)
        if self.pool_base is not None and in_view != self.pooled_view:
            raise ConversionError(f"Conv2DTranspose {node.name!r}: a Reshape between the "
                                  f"pooling and this layer cannot be folded", layer=node.name)
        n_in = int(np.prod(self.pool_base or in_view))
        n_out = int(np.prod(out_shape))
        if n_in * n_out > MAX_DENSE_ENTRIES:
            raise ConversionError(
                f"Conv2DTranspose {node.name!r} becomes a dense {n_in}×{n_out} connection, too "
                f"large to build ({n_in * n_out} weights > {MAX_DENSE_ENTRIES}); use a smaller "
                f"layer or an upsampling-free architecture", layer=node.name)
        if node.config.get("output_padding") is not None:
            raise ConversionError(f"Conv2DTranspose {node.name!r}: output_padding is not "
                                  f"supported; leave it None", layer=node.name)
        strides = tuple(int(s) for s in node.config["strides"])
        mat = conv_transpose_matrix(kernel, tuple(in_view), out_shape, strides,
                                    node.config["padding"])
        pre_shape = (n_in,)
        if self.pool_base is not None:
            mat = expand_dense_rows_for_pool(mat, self.pool_base, self.pool)
        self.notes.append(f"Conv2DTranspose {node.name!r} became an exact dense "
                          f"{n_in}×{n_out} connection")
        wt = _Weighted(node, "dense", mat, bias, pre_shape, out_shape)
        wt.folded.extend(n.name for n in self.pending)
        return wt

    def _relu_layer(self, node: LayerNode) -> None:
        if self.weighted is None:
            if self.src_nonneg:
                # relu of rates (>= 0), possibly average-pooled: the identity
                self.roles[node.name] = "identity (its input is already non-negative)"
                self.notes.append(f"{node.keras_class} {node.name!r} is the identity here "
                                  f"(its input is non-negative) and was dropped")
                return
            raise ConversionError(
                f"{node.keras_class} {node.name!r} has no Conv2D/Dense before it (it follows "
                f"{self.src!r}); a neuron layer needs incoming weights: apply the relu to a "
                f"Conv2D/Dense output", layer=node.name)
        self._close_neuron_layer(node)

    def _close_neuron_layer(self, node: LayerNode) -> None:
        wt = self.weighted
        if wt.trailing_views:
            v = wt.trailing_views[0]
            raise ConversionError(
                f"{v.keras_class} {v.name!r} sits between {wt.node.name!r} and its activation "
                f"{node.name!r}; move it after the activation", layer=v.name)
        shape = wt.post_shape
        keras_layers = (*wt.folded, wt.node.name, *([wt.batch_norm] if wt.batch_norm else []))
        if node.name != wt.node.name:
            keras_layers += (node.name,)
        self.layers.append(NeuronLayerPlan(node.name, tuple(shape), self.src, wt, keras_layers))
        self.roles[node.name] = f"neuron layer {shape}"
        if node.name != wt.node.name:
            self.roles[wt.node.name] = f"weights of neuron layer {node.name!r}"
        self._reset(node.name, tuple(shape), nonneg=True)

    def _softmax(self, node: LayerNode) -> None:
        self.softmax = node
        self.roles[node.name] = (self.roles.get(node.name, "") + ", softmax").lstrip(", ")

    def _finish(self, last: LayerNode) -> None:
        """Layers after the last neuron layer: one Dense (pooling/BN folded) or nothing."""
        if not self.layers:
            return
        wt = self.weighted
        names = [n.name for n in self.pending]
        if wt is not None:
            if wt.kind != "dense" or len(wt.post_shape) != 1:
                raise ConversionError(
                    f"{wt.node.keras_class} {wt.node.name!r} comes after the last relu, so it would "
                    f"run on the host as the readout, which must be a Dense on a flat input; add "
                    f"Flatten + Dense after the last relu, or give {wt.node.name!r} a relu",
                    layer=wt.node.name)
            weights, bias = wt.kernel, wt.bias
            names = [*wt.folded, wt.node.name, *([wt.batch_norm] if wt.batch_norm else []),
                     *(v.name for v in wt.trailing_views)]
            self.roles[wt.node.name] = "readout (host)" + (", softmax" if self.softmax else "")
        elif self.pool_base is not None:  # pooled activities are the output: a pooling matrix
            n_pooled = int(np.prod(self.pooled_view))
            weights = expand_dense_rows_for_pool(np.eye(n_pooled), self.pool_base, self.pool)
            bias = None
        else:
            weights = bias = None
        if self.softmax is not None and self.softmax.name not in names:
            names.append(self.softmax.name)
        self.readout = ReadoutPlan(
            name=last.name, pre=self.src,
            weights=None if weights is None else weights.astype(np.float32),
            bias=None if bias is None else bias.astype(np.float32),
            shape=tuple(last.output_shape), activation="softmax" if self.softmax else None,
            keras_layers=tuple(names))


def plan_conversion(graph: LayerGraph, max_to_avg_pool: bool = True) -> ConversionPlan:
    """Analyse ``graph``: neuron layers, folded layers, readout (no settings applied).

    Raises :class:`ConversionError` for anything that cannot be converted.
    """
    planner = _Planner(graph, max_to_avg_pool)
    try:
        return planner.plan()
    except ConversionError as exc:
        exc.partial_roles = dict(planner.roles)  # what the layers before the failure became
        raise


# ---------------------------------------------------------------------------------------
# settings and the network
# ---------------------------------------------------------------------------------------

def default_on_chip(graph: LayerGraph | Any, neuron=None) -> dict[str, bool]:
    """The default placement by neuron-layer name: the first off chip, the others on chip.

    The first neuron layer turns the input into spikes on the host (a conv from the input
    node cannot go to the chip). A layer whose neuron type cannot run on Loihi (the ideal
    rate/spiking types) defaults to off chip.
    """
    plan = plan_conversion(load_model(graph))
    out = {}
    for i, layer in enumerate(plan.neuron_layers):
        capable = True if neuron is None else bool(getattr(neuron, "on_chip_capable", True))
        out[layer.name] = i > 0 and capable
    return out


def neuron_layer_shapes(graph: LayerGraph | Any) -> dict[str, tuple[int, ...]]:
    """Shapes of the layers that become neurons, by name (for configs and the app)."""
    plan = plan_conversion(load_model(graph))
    return {layer.name: layer.shape for layer in plan.neuron_layers}


def _load_config(config):
    from .config import load_config  # lazy: keeps graph/convert importable on their own

    return load_config(config)


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

    layers: dict[str, NeuronLayer] = {}
    connections: list[Connection] = []
    for index, p in enumerate(plan.neuron_layers):
        s = cfg.for_layer(p.name)
        neuron = s.neuron
        gain = float(s.scale_firing_rates)
        if not (math.isfinite(gain) and gain > 0):
            raise ConfigError([(f"layers.{p.name}.scale_firing_rates",
                                f"must be a positive number, got {gain}")])
        capable = bool(getattr(neuron, "on_chip_capable", True))
        on_chip = s.on_chip if s.on_chip is not None else (index > 0 and capable)
        if on_chip and not capable:
            raise ConversionError(
                f"neuron layer {p.name!r} is set on chip but its neuron type "
                f"{type(neuron).__name__} cannot run on Loihi; use LoihiSpikingRectifiedLinear "
                f"or LoihiLIF, or set \"on_chip\": false", layer=p.name)
        wt = p.weighted
        n = int(np.prod(p.shape))
        bias = np.zeros(n)
        if wt.bias is not None:
            bias = np.broadcast_to(wt.bias, p.shape).reshape(-1) * gain
        layers[p.name] = NeuronLayer(
            name=p.name, shape=p.shape, neuron=neuron, gain=gain, bias=np.array(bias, np.float64),
            amplitude=neuron.amplitude / gain, on_chip=bool(on_chip), synapse=s.synapse,
            block_shape=None if s.block_shape is None else tuple(s.block_shape),
            keras_layers=p.keras_layers)
        pre_layer = layers.get(p.pre)
        connections.append(Connection(
            pre=p.pre, post=p.name, kind=wt.kind, weights=wt.kernel.astype(np.float32),
            pre_shape=tuple(wt.pre_shape), post_shape=tuple(wt.post_shape),
            strides=tuple(wt.strides), padding=wt.padding,
            synapse=None if pre_layer is None else pre_layer.synapse))
    r = plan.readout
    readout = Readout(name=r.name, pre=r.pre, weights=r.weights, bias=r.bias, shape=r.shape,
                      activation=r.activation, keras_layers=r.keras_layers)
    notes = list(plan.notes)
    for p in plan.neuron_layers:
        folded = [k for k in p.keras_layers
                  if graph[k].kind not in ("flatten", "reshape", "dropout")]
        if len(folded) > 1:
            notes.append(f"neuron layer {p.name!r} = {' → '.join(folded)}")
    return SpikingNetwork(
        input_name=plan.input_name, input_shape=plan.input_shape, layers=layers,
        connections=connections, readout=readout, dt=float(cfg.dt),
        presentation_steps=int(cfg.presentation_steps), notes=notes,
        layer_roles=dict(plan.roles), max_pool_substituted=list(plan.max_pool_substituted),
        model_sha256=graph.sha256, input_range=getattr(cfg, "input_range", None))


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
        for k in (p.weighted.node.name, p.weighted.batch_norm):
            if k is not None and k != p.name:
                owner[k] = p.name
    neuron_names = {p.name for p in plan.neuron_layers}
    problems = []
    for name, overrides in (getattr(cfg, "layers", {}) or {}).items():
        if name in owner:
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
