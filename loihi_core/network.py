"""The spiking-network description shared by conversion, mapping, emulation and the app.

A :class:`SpikingNetwork` is what :func:`loihi_core.convert.convert` makes of a Keras model
and a tuned config. It follows the NengoDL Converter's semantics so that users' numbers
carry over:

* every Keras nonlinearity becomes a :class:`NeuronLayer` (a nengo ``Ensemble``): its
  neurons get ``gain = scale_firing_rates``, ``bias = keras_bias * scale_firing_rates``
  and ``amplitude = neuron.amplitude / scale_firing_rates``;
* every weighted Keras layer feeding a neuron layer becomes a :class:`Connection` into it
  (``dense`` or ``conv``); pooling is folded into these weights by the converter;
* the network input is a host-side node; the first neuron layer normally runs off chip and
  turns the input into spikes, as in the NengoDL/NengoLoihi tutorial;
* layers after the last neuron layer form the off-chip :class:`Readout`, computed on the
  host from the synapse-filtered output of the last neuron layer.

Everything here is plain data (NumPy arrays, tuples, floats): no Keras, no nengo.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .neurons import NeuronType

ConnectionKind = Literal["dense", "conv", "sparse"]


@dataclass
class NeuronLayer:
    """One population of neurons (one Keras layer with a nonlinearity).

    Attributes
    ----------
    name
        The Keras layer name (unique in the model); the key used in the tuned config.
    shape
        Output shape without the batch axis: ``(rows, cols, channels)`` or ``(n,)``.
        Neuron ``i`` is element ``i`` of the C-order (channels-last) flattening.
    neuron
        The neuron type (with its own ``amplitude``, usually 1).
    gain
        Input gain, equal to the layer's ``scale_firing_rates``; uniform over the layer.
    bias
        Per-neuron bias current in nengo units (``keras_bias * gain``), float64, shape ``(n,)``.
    amplitude
        Output amplitude of one spike, ``neuron.amplitude / gain``.
    on_chip
        Whether the layer runs on Loihi (``False`` for the host-side input layer).
    synapse
        Lowpass time constant (s) applied on connections *out of* this layer; ``None`` = none.
    block_shape
        The per-core tile of ``shape`` requested by the config, or ``None`` (automatic).
    keras_layers
        The Keras layers folded into this neuron layer, in order (pooling before it, the
        weighted layer, a folded BatchNormalization, the activation layer); ``name`` is the
        last one, whose Keras output equals this layer's rate-mode output.
    max_value
        The clip of a Keras ``ReLU(max_value=m)`` (``None``: none). The ideal rate model
        clips there; Loihi relus saturate at one spike per step instead.
    role
        ``"layer"`` for a Keras layer (its rate-mode output is that layer's output);
        ``"leaky_positive"``/``"leaky_negative"`` for the two halves of a Keras
        ``LeakyReLU`` (``relu(x)`` and ``relu(-x)``); ``"input_encoder"`` for the host's
        on/off neurons that turn the input into spikes for an on-chip first layer
        (NengoLoihi's ``OnOffDecodeNeurons``): it has no tuned settings of its own.
    """

    name: str
    shape: tuple[int, ...]
    neuron: NeuronType
    gain: float
    bias: np.ndarray
    amplitude: float
    on_chip: bool
    synapse: float | None
    block_shape: tuple[int, ...] | None = None
    keras_layers: tuple[str, ...] = ()

    role: str = "layer"
    max_value: float | None = None

    @property
    def n_neurons(self) -> int:
        return int(np.prod(self.shape))

    @property
    def equals_keras_layer(self) -> bool:
        """Whether its rate-mode output is the output of the Keras layer of its name."""
        return self.role == "layer"

    @property
    def is_input_encoder(self) -> bool:
        """The host's on/off neurons that feed an on-chip first layer (not a Keras layer)."""
        return self.role == "input_encoder"

    @property
    def scale_firing_rates(self) -> float:
        return self.gain


@dataclass
class Connection:
    """Weights from one population (or the input node) into a neuron layer.

    The input to neuron ``j`` of ``post`` is ``gain_post * (W applied to pre's output)_j + bias_j``.
    A neuron layer may receive several connections, even several from the same ``pre``
    (a residual block: one per path through the Keras graph, NengoDL/NengoLoihi's
    semantics); their inputs add up.

    Attributes
    ----------
    pre
        Name of the presynaptic :class:`NeuronLayer`, or :attr:`SpikingNetwork.input_name`.
    post
        Name of the postsynaptic :class:`NeuronLayer`.
    kind
        ``"dense"``: ``weights`` has shape ``(n_pre, n_post)`` (Keras ``Dense`` orientation,
        rows in the pre layer's flattening order).
        ``"conv"``: ``weights`` is a Keras kernel ``(kh, kw, c_in // groups, c_out)``
        (cross-correlation), applied with ``strides``, ``padding`` and ``groups`` to a
        ``pre_shape = (H, W, c_in)`` input. 1-D layers are convolved as ``(1, L, C)``.
        ``"sparse"``: ``weights`` is a ``scipy.sparse`` CSR matrix ``(n_pre, n_post)``: any
        other exact linear map (an upsampling, a permutation, a composition of linear
        layers that is no convolution), stored by its non-zeros.
    weights
        float32 array (or CSR matrix); pooling and folded BatchNormalization are included.
    strides, padding
        Conv only: ``(sr, sc)``, and ``"valid"``, ``"same"`` or explicit ``(top, left)``
        zero padding (negative: cropping), the bottom/right side following from the shapes.
    groups
        Conv only: Keras ``groups`` (``c_in`` for a depthwise convolution). Output channel
        ``f`` reads input channels ``g·c_in/groups ..`` of its group ``g = f // (c_out/groups)``.
    pre_shape, post_shape
        Shapes of the pre output and post layer (without batch axis). Either may be a view
        of the layer's own shape (a Keras Reshape/Flatten, or ``(1, L, C)`` for a 1-D
        layer ``(L, C)``): the C-order flattening, hence neuron numbering, is the same.
    synapse
        Lowpass tau (s) on this connection, ``None`` = no filter. It is the pre layer's
        ``synapse`` (NengoDL puts the synapse on connections out of spiking layers).
    """

    pre: str
    post: str
    kind: ConnectionKind
    weights: Any
    pre_shape: tuple[int, ...]
    post_shape: tuple[int, ...]
    strides: tuple[int, int] = (1, 1)
    padding: str | tuple[int, int] = "valid"
    synapse: float | None = None
    groups: int = 1

    def padding_amounts(self) -> tuple[int, int]:
        """Top/left zero padding of a conv (as Keras/TensorFlow pick it for ``"same"``)."""
        if self.kind != "conv" or self.padding == "valid":
            return (0, 0)
        if not isinstance(self.padding, str):
            return (int(self.padding[0]), int(self.padding[1]))
        kh, kw = self.weights.shape[:2]
        (h, w), (oh, ow) = self.pre_shape[:2], self.post_shape[:2]
        sr, sc = self.strides
        return (max((oh - 1) * sr + kh - h, 0) // 2, max((ow - 1) * sc + kw - w, 0) // 2)


@dataclass
class Readout:
    """The off-chip output computation that follows the last neuron layer.

    ``output = activation(filtered(amplitude * spikes / dt of pre) @ weights + bias)`` where
    ``filtered`` is the pre layer's synapse. With ``weights is None`` the output is the
    filtered, amplitude-scaled activity of ``pre`` itself (the model ends in a neuron layer).

    Attributes
    ----------
    name
        The Keras name of the output layer.
    pre
        The neuron layer it reads.
    weights, bias
        Dense weights ``(n_pre, n_out)`` and bias ``(n_out,)`` (float32), or ``None``.
    activation
        ``None`` or ``"softmax"`` (monotonic, so predictions are unchanged).
    shape
        Output shape (without batch axis).
    keras_layers
        The Keras layers this readout computes (Dense, folded pooling/BatchNormalization,
        views, softmax).
    more_terms
        Further ``(pre, weights)`` terms added to the output, for a readout that reads
        several neuron layers (a merge after the last neurons, ``Dense(Concatenate(a, b))``).
        Each term is filtered with its own pre layer's synapse. :attr:`terms` lists all.
    """

    name: str
    pre: str
    weights: np.ndarray | None
    bias: np.ndarray | None
    shape: tuple[int, ...]
    activation: str | None = None
    keras_layers: tuple[str, ...] = ()
    more_terms: tuple[tuple[str, np.ndarray | None], ...] = ()

    @property
    def terms(self) -> list[tuple[str, np.ndarray | None]]:
        """Every ``(pre layer, weights or None)`` term of the output, first one first."""
        return [(self.pre, self.weights), *self.more_terms]

    @property
    def pres(self) -> list[str]:
        """The neuron layers the readout reads (each once, in term order)."""
        return list(dict.fromkeys(pre for pre, _ in self.terms))


@dataclass
class SpikingNetwork:
    """A converted network: input node → neuron layers (topological order) → readout.

    Attributes
    ----------
    input_name, input_shape
        The Keras input layer's name and shape (without batch axis).
    layers
        Neuron layers in topological order (insertion order of the dict).
    connections
        All connections into neuron layers, in topological order of their ``post``.
    readout
        The off-chip output computation.
    dt
        Simulation time step (s).
    presentation_steps
        Steps each image is shown for.
    notes
        Human-readable remarks from conversion (substitutions made, folded layers), shown by
        ``loihi-studio inspect`` and the app.
    layer_roles
        What each Keras layer became (``"neuron layer (13, 13, 32)"``, ``"folded into
        'conv1'"``, ``"readout (host)"`` ...), by Keras name, in model order.
    max_pool_substituted
        Names of MaxPooling2D layers replaced by average pooling (an approximation).
    model_sha256
        SHA-256 of the ``.keras`` file converted (``None`` for an in-memory model).
    input_range
        ``(low, high)`` of the inputs the model expects, from the tuned config (``None``:
        not recorded); :mod:`loihi_core.inputs` refuses data outside it.
    """

    input_name: str
    input_shape: tuple[int, ...]
    layers: dict[str, NeuronLayer]
    connections: list[Connection]
    readout: Readout
    dt: float = 0.001
    presentation_steps: int = 30
    notes: list[str] = field(default_factory=list)
    layer_roles: dict[str, str] = field(default_factory=dict)
    max_pool_substituted: list[str] = field(default_factory=list)
    model_sha256: str | None = None
    input_range: tuple[float, float] | None = None

    def connections_into(self, post: str) -> list[Connection]:
        return [c for c in self.connections if c.post == post]

    def connections_from(self, pre: str) -> list[Connection]:
        return [c for c in self.connections if c.pre == pre]

    @property
    def on_chip_layers(self) -> list[NeuronLayer]:
        return [layer for layer in self.layers.values() if layer.on_chip]

    @property
    def off_chip_layers(self) -> list[NeuronLayer]:
        return [layer for layer in self.layers.values() if not layer.on_chip]


def full_kernel(kernel: np.ndarray, groups: int) -> np.ndarray:
    """A grouped conv kernel ``(kh, kw, C/groups, F)`` as the plain ``(kh, kw, C, F)`` one.

    Output channel ``f`` of group ``g`` (``g = f // (F/groups)``) reads input channels
    ``g·C/groups ..``; every other entry is zero. ``groups == 1`` returns ``kernel`` itself.
    """
    if groups == 1:
        return kernel
    kh, kw, cg, f = kernel.shape
    fg = f // groups
    full = np.zeros((kh, kw, cg * groups, f), kernel.dtype)
    for g in range(groups):
        full[:, :, g * cg:(g + 1) * cg, g * fg:(g + 1) * fg] = kernel[:, :, :, g * fg:(g + 1) * fg]
    return full
