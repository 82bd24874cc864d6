"""Simulating a :class:`~loihi_core.network.SpikingNetwork` without the chip (NumPy, float).

Two modes, both vectorised over a batch of images:

* **rate mode** (:func:`run_rates`): every neuron layer outputs ``amplitude · rate(J)`` with
  ``J = gain · (W x) + bias`` and ``rate`` the neuron type's own rate function. With ideal
  ``RectifiedLinear`` neurons this *is* the Keras model (``model.predict`` to float32
  round-off, whatever ``scale_firing_rates``); with the Loihi neuron types it shows the
  quantization of Loihi's rates (1000/n Hz plateaus).
* **float spiking mode** (:func:`run_spiking`): the neurons' float ``step`` functions with
  lowpass synapses, each image simulated independently from a zero state. This is the
  "unquantized spiking network" baseline that the bit-exact emulator is compared against.

Synapses follow nengo: ``y ← a·y + (1 − a)·x`` with ``a = exp(−dt/τ)`` (zero-order hold),
and a filtered connection delivers the previous step's filter value (nengo updates
synapse state at the end of a step), so every filtered hop adds one step of latency.
Connections without a synapse (from the input node, or ``synapse=None``) are immediate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import arguments as _arguments
from .inputs import network_images
from .network import Connection, NeuronLayer, Readout, SpikingNetwork, full_kernel
from .neurons import NeuronType

#: Largest im2col patch array built at once (float64 entries); bigger batches are chunked.
_PATCH_BUDGET = 1 << 23


# ---------------------------------------------------------------------------------------
# connections
# ---------------------------------------------------------------------------------------

def conv_gather_indices(conn: Connection) -> np.ndarray:
    """im2col indices of a conv connection: ``(OH·OW, kh·kw·C)`` into the flat pre vector.

    Entry ``[o, (a·kw + b)·C + c]`` is the flat index (channels-last, C order) of the input
    read by output pixel ``o`` through kernel tap ``(a, b)`` and channel ``c``; taps that
    fall in the zero padding point at index ``n_pre`` (an appended zero).
    """
    h, w, c = conn.pre_shape
    kh, kw = conn.weights.shape[:2]
    oh, ow = conn.post_shape[:2]
    sr, sc = conn.strides
    pt, pl = conn.padding_amounts()
    rows = np.arange(oh)[:, None] * sr + np.arange(kh)[None, :] - pt  # (oh, kh)
    cols = np.arange(ow)[:, None] * sc + np.arange(kw)[None, :] - pl  # (ow, kw)
    r = rows[:, None, :, None, None]
    q = cols[None, :, None, :, None]
    ch = np.arange(c)[None, None, None, None, :]
    idx = (r * w + q) * c + ch  # (oh, ow, kh, kw, c)
    inside = np.broadcast_to((r >= 0) & (r < h) & (q >= 0) & (q < w), idx.shape)
    idx = np.where(inside, idx, h * w * c)
    return idx.reshape(oh * ow, kh * kw * c)


def connection_operator(conn: Connection) -> Callable[[np.ndarray], np.ndarray]:
    """A function mapping the pre output ``(n, n_pre)`` to the weighted input ``(n, n_post)``.

    Computed in float64 from the float32 weights.
    """
    if conn.kind == "sparse":
        matrix_t = conn.weights.T.tocsr().astype(np.float64)
        return lambda x: np.asarray((matrix_t @ np.asarray(x, np.float64).T).T)
    weights = conn.weights.astype(np.float64)
    if conn.kind == "dense":
        return lambda x: x @ weights
    if conn.kind != "conv":
        raise ValueError(f"connection {conn.pre!r} → {conn.post!r}: unknown kind {conn.kind!r}")
    return conv_operator(conn)


def conv_operator(conn: Connection) -> Callable[[np.ndarray], np.ndarray]:
    """The weighted input of a conv connection as a function of ``(n, n_pre)`` (float64)."""
    weights = full_kernel(np.asarray(conn.weights, np.float64), conn.groups)
    idx = conv_gather_indices(conn)
    kernel = weights.reshape(-1, weights.shape[-1])  # (kh·kw·C, F) in (a, b, c) order
    chunk = max(1, _PATCH_BUDGET // max(idx.size, 1))

    def apply(x: np.ndarray) -> np.ndarray:
        n = x.shape[0]
        out = np.empty((n, idx.shape[0] * kernel.shape[1]))
        for start in range(0, n, chunk):
            xs = x[start:start + chunk]
            ext = np.concatenate([xs, np.zeros((xs.shape[0], 1))], axis=1)
            patches = ext[:, idx]  # (m, OH·OW, K)
            out[start:start + chunk] = (patches @ kernel).reshape(xs.shape[0], -1)
        return out

    return apply


def _input_matrix(network: SpikingNetwork, images: np.ndarray) -> np.ndarray:
    """Images as ``(n, n_in)`` float64, rounded through float32 as Keras does."""
    images = np.asarray(images)
    shape = tuple(network.input_shape)
    if images.shape[1:] != shape:
        if images.shape == shape:
            images = images[None]
        elif images.ndim >= 1 and int(np.prod(images.shape[1:])) == int(np.prod(shape)):
            pass  # flattened images are fine
        else:
            raise ValueError(f"images have shape {images.shape}; expected (n, *{shape}) for "
                             f"input {network.input_name!r}")
    return images.astype(np.float32).reshape(images.shape[0], -1).astype(np.float64)


def _checked(network, images):
    """The public entry points' arguments by the project's policies (:mod:`.arguments`,
    :mod:`.inputs`): a model or graph is converted, images are validated and scaled."""
    network = _arguments.as_network(network)
    return network, network_images(network, images)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def apply_readout(readout: Readout, pre_activity) -> np.ndarray:
    """The host-side output ``(n, n_out)`` from the pre layers' (filtered) activities.

    ``pre_activity`` is the activity of ``readout.pre``, or a dict of activities by layer
    name for a readout of several terms.
    """
    if not isinstance(pre_activity, dict):
        pre_activity = {readout.pre: pre_activity}
    out = 0.0
    for pre, weights in readout.terms:
        act = pre_activity[pre]
        out = out + (act if weights is None else act @ np.asarray(weights, np.float64))
    if readout.bias is not None:
        out = out + readout.bias.astype(np.float64)
    if readout.activation == "softmax":
        out = _softmax(out)
    elif readout.activation is not None:
        raise ValueError(f"readout {readout.name!r}: unknown activation {readout.activation!r}")
    return out


# ---------------------------------------------------------------------------------------
# rate mode
# ---------------------------------------------------------------------------------------

def ideal_neuron(neuron: NeuronType) -> NeuronType:
    """The unquantized rate counterpart of ``neuron`` (same amplitude and time constants).

    Relu types → ``RectifiedLinear``; LIF types → ``LIFRate``. Used to separate what a
    conversion changes (e.g. max → average pooling) from Loihi's rate quantization.
    """
    from . import neurons as nt

    if isinstance(neuron, nt.LIFRate):
        return nt.LIFRate(amplitude=neuron.amplitude, tau_rc=neuron.tau_rc, tau_ref=neuron.tau_ref)
    if isinstance(neuron, (nt.RectifiedLinear, nt.SpikingRectifiedLinear)):
        return nt.RectifiedLinear(amplitude=neuron.amplitude)
    return neuron


def layer_rates(layer: NeuronLayer, weighted_input: np.ndarray, dt: float,
                neuron: NeuronType | None = None) -> np.ndarray:
    """Output of one neuron layer in rate mode: ``amplitude · rate(gain·u + bias)``.

    ``neuron.rates`` already multiplies by the neuron's own amplitude, so the result is
    rescaled to the layer's ``amplitude`` (``neuron.amplitude / gain``).
    """
    neuron = layer.neuron if neuron is None else neuron
    rates = np.asarray(neuron.rates(weighted_input, layer.gain, layer.bias, dt), dtype=np.float64)
    out = rates * (layer.amplitude / neuron.amplitude)
    if layer.max_value is not None and not getattr(neuron, "on_chip_capable", False):
        # the ideal model of a Keras ReLU(max_value); Loihi relus saturate on their own
        out = np.minimum(out, layer.max_value)
    return out


def layer_currents(network: SpikingNetwork, images: np.ndarray, *, ideal: bool = True,
                   activity: Callable[[NeuronLayer, np.ndarray, np.ndarray], np.ndarray] | None = None
                   ) -> dict[str, np.ndarray]:
    """Input current ``J = gain · (W x) + bias`` of every neuron layer, ``(n, n_neurons)``.

    With ``ideal`` (default) the layers feeding each one run as ideal rate neurons, so the
    currents are those of the Keras model scaled by each layer's gain: what the activation
    profile plots show against the neuron's rate curve. ``activity(layer, J, u)``, when
    given, computes what each layer passes on instead (``u`` is its weighted input).
    """
    network, images = _checked(network, images)
    x = _input_matrix(network, images)
    acts = {network.input_name: x}
    ops = {id(c): connection_operator(c) for c in network.connections}
    currents = {}
    for name, layer in network.layers.items():
        u = sum(ops[id(c)](acts[c.pre]) for c in network.connections_into(name))
        currents[name] = J = layer.gain * u + layer.bias
        if activity is not None:
            acts[name] = activity(layer, J, u)
        else:
            acts[name] = layer_rates(layer, u, network.dt,
                                     ideal_neuron(layer.neuron) if ideal else None)
    return currents


def run_rates(network: SpikingNetwork, images: np.ndarray, return_layers: bool = False, *,
              ideal: bool = False):
    """Rate-mode output of ``network`` for a batch of images.

    Parameters
    ----------
    network
        The converted network.
    images
        ``(n, *network.input_shape)`` (any float dtype; rounded to float32 like Keras).
    return_layers
        Also return each neuron layer's output ``(n, *layer.shape)`` by layer name (the
        Keras layer of the same name computes the same values with ideal neurons).
    ideal
        Use each layer's :func:`ideal_neuron` instead of its (Loihi) neuron type.

    Returns
    -------
    output, or (output, layers)
        ``output`` has shape ``(n, *network.readout.shape)``, float64.
    """
    network, images = _checked(network, images)
    x = _input_matrix(network, images)
    acts = {network.input_name: x}
    ops = {id(c): connection_operator(c) for c in network.connections}
    for name, layer in network.layers.items():
        conns = network.connections_into(name)
        if not conns:
            raise ValueError(f"neuron layer {name!r} has no incoming connection")
        u = sum(ops[id(c)](acts[c.pre]) for c in conns)
        neuron = ideal_neuron(layer.neuron) if ideal else None
        acts[name] = layer_rates(layer, u, network.dt, neuron)
    out = apply_readout(network.readout, {p: acts[p] for p in network.readout.pres})
    out = out.reshape(x.shape[0], *network.readout.shape)
    if not return_layers:
        return out
    layers = {name: acts[name].reshape(x.shape[0], *layer.shape)
              for name, layer in network.layers.items()}
    return out, layers


# ---------------------------------------------------------------------------------------
# float spiking mode
# ---------------------------------------------------------------------------------------

@dataclass
class SpikingResult:
    """What :func:`run_spiking` returns.

    Attributes
    ----------
    output
        ``(n_images, steps, n_out)``: the readout at every step (from filtered activity).
    spike_counts
        Per neuron layer, ``(n_images, n_neurons)`` spikes over the presentation.
    steps, dt
        Presentation length in steps and the time step (s).
    spikes
        Per neuron layer ``(n_images, steps, n_neurons)`` uint8, when requested.
    """

    output: np.ndarray
    spike_counts: dict[str, np.ndarray]
    steps: int
    dt: float
    amplitudes: dict[str, float] = field(default_factory=dict)
    spikes: dict[str, np.ndarray] | None = None

    @property
    def rates(self) -> dict[str, np.ndarray]:
        """Mean firing rate (Hz) per neuron, ``(n_images, n_neurons)`` per layer."""
        return {k: v / (self.steps * self.dt) for k, v in self.spike_counts.items()}

    @property
    def activities(self) -> dict[str, np.ndarray]:
        """Mean amplitude-scaled output per neuron (comparable with Keras activations)."""
        return {k: v * (self.amplitudes[k] / (self.steps * self.dt))
                for k, v in self.spike_counts.items()}

    @property
    def predictions(self) -> np.ndarray:
        """``argmax`` of the output at the last step of each image."""
        return self.output[:, -1, :].argmax(axis=1)


def run_spiking(network: SpikingNetwork, images: np.ndarray, presentation_steps: int | None = None,
                *, reset: bool = True, record_spikes: bool = False) -> SpikingResult:
    """Float spiking simulation: ideal spiking dynamics with lowpass synapses.

    Parameters
    ----------
    network
        The converted network; its neurons' vectorised ``make_state(shape)`` and
        ``step(J, dt, state)`` are used.
    images
        ``(n, *network.input_shape)``.
    presentation_steps
        Steps per image (default ``network.presentation_steps``).
    reset
        ``True`` (default): every image is an independent simulation from zero state,
        all images advance together (vectorised over the batch). ``False``: images are
        shown one after another without resetting neurons or synapses, as nengo-loihi
        presents them (then the host-side first layer reproduces its spikes exactly).
    record_spikes
        Also return every layer's spikes per step.

    Notes
    -----
    A connection with a synapse reads the pre layer's filtered output from the previous
    step (nengo's timing), so each filtered hop adds one step of latency; the readout
    reads the last layer's filter the same way.
    """
    network, images = _checked(network, images)
    presentation_steps = _arguments.presentation_steps(presentation_steps)
    steps = int(network.presentation_steps if presentation_steps is None else presentation_steps)
    if steps < 1:
        raise ValueError(f"presentation_steps must be >= 1, got {steps}")
    x = _input_matrix(network, images)
    n = x.shape[0]
    if reset:
        sim = _FloatSimulator(network, n)
        return sim.present(x, steps, record_spikes)
    sim = _FloatSimulator(network, 1)
    parts = [sim.present(x[i:i + 1], steps, record_spikes) for i in range(n)]
    return SpikingResult(
        output=np.concatenate([p.output for p in parts]),
        spike_counts={k: np.concatenate([p.spike_counts[k] for p in parts])
                      for k in network.layers},
        steps=steps, dt=float(network.dt), amplitudes=parts[0].amplitudes,
        spikes=None if not record_spikes else {
            k: np.concatenate([p.spikes[k] for p in parts]) for k in network.layers})


class _FloatSimulator:
    """State of a float spiking simulation of ``batch`` independent copies of a network."""

    def __init__(self, network: SpikingNetwork, batch: int):
        self.network = network
        self.dt = dt = float(network.dt)
        self.batch = batch
        self.ops = {id(c): connection_operator(c) for c in network.connections}
        self.states = {name: layer.neuron.make_state((batch, layer.n_neurons))
                       for name, layer in network.layers.items()}
        self.scale = {name: layer.amplitude / dt for name, layer in network.layers.items()}
        self.to_count = {name: dt / layer.neuron.amplitude for name, layer in network.layers.items()}
        # one lowpass filter per (pre layer, tau) pair used by a connection or the readout
        taus = {(c.pre, c.synapse) for c in network.connections
                if c.pre != network.input_name and c.synapse is not None}
        ro = network.readout
        self.ro_tau = {pre: network.layers[pre].synapse for pre in ro.pres}
        taus.update((pre, tau) for pre, tau in self.ro_tau.items() if tau is not None)
        self.filt = {key: np.zeros((batch, network.layers[key[0]].n_neurons)) for key in taus}
        self.decay = {key: float(np.exp(-dt / key[1])) for key in taus}

    def present(self, x: np.ndarray, steps: int, record_spikes: bool) -> SpikingResult:
        net, dt, n = self.network, self.dt, self.batch
        # the input node is constant during a presentation, so is its weighted input
        const_in = {id(c): self.ops[id(c)](x) for c in net.connections if c.pre == net.input_name}
        counts = {name: np.zeros((n, layer.n_neurons), np.int64) for name, layer in net.layers.items()}
        rec = ({name: np.zeros((n, steps, layer.n_neurons), np.uint8)
                for name, layer in net.layers.items()} if record_spikes else None)
        ro = net.readout
        n_out = int(np.prod(ro.shape))
        output = np.empty((n, steps, n_out))
        for t in range(steps):
            outs: dict[str, np.ndarray] = {}
            for name, layer in net.layers.items():
                u = 0.0
                for c in net.connections_into(name):
                    if id(c) in const_in:
                        u = u + const_in[id(c)]
                    elif c.synapse is None:
                        u = u + self.ops[id(c)](outs[c.pre])
                    else:
                        u = u + self.ops[id(c)](self.filt[(c.pre, c.synapse)])
                J = layer.gain * u + layer.bias
                raw = np.asarray(layer.neuron.step(J, dt, self.states[name]), np.float64)
                # spikes this step: 0/1 for Loihi neurons, possibly more for nengo's ideal
                # SpikingRectifiedLinear, whose step emits n·amplitude/dt
                spikes = np.rint(raw * self.to_count[name])
                counts[name] += spikes.astype(np.int64)
                if rec is not None:
                    rec[name][:, t] = spikes
                outs[name] = spikes * self.scale[name]
            pre_act = {pre: self.filt[(pre, tau)] if tau is not None else outs[pre]
                       for pre, tau in self.ro_tau.items()}
            output[:, t] = apply_readout(ro, pre_act).reshape(n, n_out)
            for key, a in self.decay.items():
                self.filt[key] = a * self.filt[key] + (1 - a) * outs[key[0]]
        return SpikingResult(output=output, spike_counts=counts, steps=steps, dt=dt,
                             amplitudes={k: v.amplitude for k, v in net.layers.items()},
                             spikes=rec)
