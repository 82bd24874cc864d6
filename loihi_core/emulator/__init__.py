"""The Numba Loihi emulator: bit-exact with NengoLoihi's emulator, batched, recording spikes.

>>> chip = map_to_chip(network)                               # doctest: +SKIP
>>> result = Emulator(chip).run(images, presentation_steps=30)  # doctest: +SKIP
>>> result.predictions, result.rates()["conv0"]                 # doctest: +SKIP

The off-chip input layer(s) run on the host with the float neuron step (as NengoLoihi's
host simulator does) and their spikes drive the chip one step later; the chip runs the
integer step of :mod:`.kernels`; the off-chip readout filters the last on-chip layer's
spikes on the host (:func:`host_readout`).

Two presentation modes:

* ``"sequential"``: images back to back without resetting any state, as NengoLoihi and the
  hardware present them (what the reference files record);
* ``"independent"``: every image from a zero state, images in parallel on all cores —
  the fast path for accuracy, calibration and sweeps.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ..chip import ChipModel
from ..network import Readout, SpikingNetwork
from ..simulate import run_spiking
from .compiled import EXPAND_BUDGET, CompiledChip, _expanded, _n_synapses, compile_chip

MODES = ("independent", "sequential")


@dataclass
class EmulatorResult:
    """What :meth:`Emulator.run` returns.

    Attributes
    ----------
    output
        ``(n_images, steps, n_out)``: the off-chip readout at every step.
    spike_counts
        Per neuron layer (host layers included), ``(n_images, n_neurons)`` spikes during
        each image's presentation.
    spikes
        Per recorded layer, ``(n_images, steps, n_recorded)`` uint8 (columns are the
        neurons ``recorded_neurons[layer]``, in the layer's channels-last order).
    steps, dt, mode
        Presentation length, time step, presentation mode.
    synaptic_ops
        Weight additions per image (an energy proxy: ~23.6 pJ each on Loihi).
    """

    output: np.ndarray
    spike_counts: dict[str, np.ndarray]
    steps: int
    dt: float
    mode: str
    spikes: dict[str, np.ndarray] = field(default_factory=dict)
    recorded_neurons: dict[str, np.ndarray] = field(default_factory=dict)
    synaptic_ops: np.ndarray | None = None
    host_layers: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def n_images(self) -> int:
        return int(self.output.shape[0])

    @property
    def predictions(self) -> np.ndarray:
        """``argmax`` of the output at the last step of each image."""
        return self.output[:, -1, :].argmax(axis=1)

    def rates(self, active_only: bool = True) -> dict[str, float]:
        """Mean firing rate (Hz) per layer over all images.

        With ``active_only`` (the tutorial's definition) the mean is over the neurons that
        spiked at least once during an image; otherwise over all neurons.
        """
        out = {}
        seconds = self.steps * self.dt
        for name, counts in self.spike_counts.items():
            # an exact integer sum over the number of active neurons: the same float as
            # ``counts[active].mean()`` without building the masked copy
            n = np.count_nonzero(counts) if active_only else counts.size
            out[name] = float(counts.sum() / n / seconds) if n else 0.0
        return out

    def neuron_rates(self) -> dict[str, np.ndarray]:
        """Firing rate (Hz) of every neuron, ``(n_images, n_neurons)`` per layer."""
        return {k: v / (self.steps * self.dt) for k, v in self.spike_counts.items()}

    def accuracy(self, labels) -> float:
        labels = np.asarray(labels).astype(np.int64).ravel()
        return float(np.mean(self.predictions == labels))

    def flat_output(self) -> np.ndarray:
        """``(n_images * steps, n_out)``: the output as one time series."""
        return self.output.reshape(-1, self.output.shape[-1])

    def flat_spikes(self, layer: str) -> np.ndarray:
        """``(n_images * steps, n_recorded)`` spikes of a recorded layer, as one time series."""
        s = self.spikes[layer]
        return s.reshape(-1, s.shape[-1])


def host_network(network: SpikingNetwork, host_layers: list[str]) -> SpikingNetwork:
    """The off-chip prefix of ``network`` as a network of its own (read out at its last layer)."""
    layers = {name: network.layers[name] for name in host_layers}
    conns = [c for c in network.connections if c.post in layers]
    last = layers[host_layers[-1]]
    readout = Readout(name=f"{last.name} (to chip)", pre=last.name, weights=None, bias=None,
                      shape=(last.n_neurons,))
    return SpikingNetwork(input_name=network.input_name, input_shape=network.input_shape,
                          layers=layers, connections=conns, readout=readout, dt=network.dt,
                          presentation_steps=network.presentation_steps)


def lowpass_coefficients(tau: float | None, dt: float) -> tuple[float, float]:
    """``(a, b)`` of nengo's zero-order-hold lowpass ``y ← a·y + b·x`` (``(0, 1)``: none)."""
    if tau is None or tau == 0:
        return 0.0, 1.0
    a = math.exp(-dt / tau)
    return a, 1.0 - a


def host_readout(probe: np.ndarray, readout: Readout, tau, dt: float) -> np.ndarray:
    """The off-chip output from the chip's per-step probe ``(n_streams, T, G · n_out)``.

    NengoLoihi's host receives chip step ``k - 1`` at host step ``k`` (step 1 sees chip
    step 1), filters it with the readout synapse in float64 and adds the bias. ``tau`` is
    one synapse tau, or a list with one per column block of the probe (a readout of layers
    with different synapses); the filtered blocks are added.
    """
    taus = list(tau) if isinstance(tau, (list, tuple)) else [tau]
    n_out = probe.shape[-1] // len(taus)
    received = np.empty_like(probe)
    received[:, 1:] = probe[:, :-1]
    received[:, 0] = probe[:, 0]
    out = np.zeros(probe.shape[:2] + (n_out,))
    for g, tau_g in enumerate(taus):
        a, b = lowpass_coefficients(tau_g, dt)
        block = received[:, :, g * n_out:(g + 1) * n_out]
        y = np.zeros((probe.shape[0], n_out))
        for k in range(probe.shape[1]):
            out[:, k] += y
            y = a * y + b * block[:, k]
    if readout.bias is not None:
        out += np.asarray(readout.bias, np.float64)
    if readout.activation == "softmax":
        e = np.exp(out - out.max(axis=-1, keepdims=True))
        out = e / e.sum(axis=-1, keepdims=True)
    return out


class Emulator:
    """Runs a mapped, discretized :class:`~loihi_core.chip.ChipModel` (see module doc)."""

    def __init__(self, chip: ChipModel):
        from ..arguments import as_chip

        chip = as_chip(chip)  # also takes a network or a model (mapped here)
        self.chip = chip
        self.network: SpikingNetwork = chip.network
        self._block_layout: CompiledChip = compile_chip(chip, expand=False)
        self._expand_ok = _n_synapses(self._block_layout) <= EXPAND_BUDGET
        self._layer_layout: CompiledChip | None = None
        self.host_layers = list(chip.host_layers)
        self._host_net = host_network(self.network, self.host_layers)

    #: Runs shorter than this (images × steps) use the block layout: expanding the rows
    #: (see :func:`.compiled.compile_chip`) costs more than it saves on a few images.
    SMALL_RUN = 2000

    @property
    def compiled(self) -> CompiledChip:
        """The arrays long runs use (rows expanded per source when they fit in memory)."""
        if not self._expand_ok:
            return self._block_layout
        if self._layer_layout is None:
            self._layer_layout = _expanded(self._block_layout)
        return self._layer_layout

    def _layout(self, work: int) -> CompiledChip:
        if self._layer_layout is not None or work >= self.SMALL_RUN:
            return self.compiled
        return self._block_layout

    # -- recording -------------------------------------------------------------------
    def _record_plan(self, record: Any) -> dict[str, np.ndarray]:
        """``{layer: neuron ids}`` to record, from ``None``/``"all"``/names/a dict."""
        if record is None or record is False:
            return {}
        names = list(self.network.layers)
        if record is True or record == "all":
            return {n: np.arange(self.network.layers[n].n_neurons) for n in names}
        if isinstance(record, str):
            record = [record]
        if not isinstance(record, Mapping):
            record = {name: None for name in record}
        plan = {}
        for name, ids in record.items():
            if name not in self.network.layers:
                raise ValueError(f"cannot record {name!r}: the network's neuron layers are "
                                 f"{', '.join(names)}")
            n = self.network.layers[name].n_neurons
            ids = np.arange(n) if ids is None else np.unique(np.asarray(ids, np.int64))
            if ids.size and (ids.min() < 0 or ids.max() >= n):
                raise ValueError(f"record[{name!r}]: neuron ids must be in 0..{n - 1}")
            plan[name] = ids
        return plan

    # -- running ---------------------------------------------------------------------
    def run(self, images: np.ndarray, presentation_steps: int | None = None,
            mode: str = "independent", record: Any = None,
            chunk_size: int = 256) -> EmulatorResult:
        """Present ``images`` and emulate the chip.

        Parameters
        ----------
        images
            ``(n, *input_shape)`` inputs (a single image is accepted too).
        presentation_steps
            Steps per image (default: the network's).
        mode
            ``"independent"`` (state reset per image, images in parallel) or
            ``"sequential"`` (back to back without reset, like NengoLoihi).
        record
            Layers whose spikes to record: ``None``, ``"all"``, a list of names or
            ``{name: neuron ids}`` (a subset, e.g. for rasters). Memory grows with what is
            recorded only.
        chunk_size
            Images per batch (bounds the working memory): the streams that run in parallel
            in independent mode, and in both modes the rows of the per-compartment spike
            count buffer.

        Raises
        ------
        DataError, ArgumentError
            For images the input policy refuses (:mod:`loihi_core.inputs`: uint8 is
            scaled to [0, 1]; NaN, wrong shapes and data outside the config's
            ``input_range`` are refused) and bad arguments, naming the argument.
        """
        from ..arguments import check_run

        images, presentation_steps = check_run(self.network, images, presentation_steps, mode,
                                               record, chunk_size)  # the input policy
        steps = int(self.network.presentation_steps if presentation_steps is None
                    else presentation_steps)
        if steps < 1:
            raise ValueError(f"presentation_steps must be >= 1, got {steps}")
        images = np.asarray(images)
        if images.shape == tuple(self.network.input_shape):
            images = images[None]
        t0 = time.perf_counter()
        plan = self._record_plan(record)
        c = self._layout(images.shape[0] * steps)
        rec_col, chip_rec = self._columns(plan, c.layer_names, c.n_compartments,
                                          lambda name, ids: c.layer_slice(name).start + _comp_index(c, name, ids))
        kind = self._host_kind()
        from .kernels import HOST_GIVEN, run_stream, run_streams  # lazy: numba compiles on first use

        host_offset = dict(zip(c.host_layers, c.host_offsets[:-1].tolist()))
        # given host spikes are recorded on the way in; the in-kernel host layer records itself
        host_plan = {} if kind == HOST_GIVEN else plan
        host_rec_col, host_rec = self._columns(host_plan, c.host_layers, c.n_host,
                                               lambda name, ids: host_offset[name] + ids)
        n = images.shape[0]
        out_probe = np.zeros((n, steps, c.n_out))
        # chip spike counts: the kernels count per compartment into a buffer of one chunk,
        # copied into the per-layer arrays after each chunk (memory: one chunk, not n images)
        counts = np.zeros((min(n, chunk_size), c.n_compartments), np.int64)
        layer_counts = {name: np.zeros((n, self.network.layers[name].n_neurons), np.int64)
                        for name in c.layer_names}
        rec = np.zeros((n, steps, int(rec_col.max(initial=-1)) + 1), np.uint8)
        host_rec_out = np.zeros((n, steps, int(host_rec_col.max(initial=-1)) + 1), np.uint8)
        synops = np.zeros((n, 1), np.int64)
        host_counts = {h: np.zeros((n, self.network.layers[h].n_neurons), np.int64)
                       for h in self.host_layers}
        early_rec = {h: np.zeros((n, steps, plan[h].size), np.uint8)
                     for h in self.host_layers if h in plan and h not in host_rec}
        dt = float(self.network.dt)
        args = (c.decay_u, c.decay_v, c.vth, c.bias, c.refract, c.vmin, c.vmax, c.comp_fan_ptr,
                c.host_fan_ptr, c.fan_dest, c.fan_row, c.seg_ptr, c.seg_off, c.seg_w0,
                c.seg_len, c.row_w, c.probe_row, c.probe_weights, rec_col, host_rec_col)

        def host_inputs(sl, sequential):
            """(given spike trains, host currents) for the images ``sl``."""
            if kind == HOST_GIVEN:
                spikes = self._host_spikes(images[sl], steps, sequential, host_counts,
                                           early_rec, plan, sl, c)
                return spikes, np.zeros((spikes.shape[0], c.n_host))
            m = sl.stop - sl.start
            return np.zeros((m, 1, 1), np.uint8), self._host_currents(images[sl])

        hc = (host_counts[c.host_layer] if kind != HOST_GIVEN
              else np.zeros((n, c.n_host), np.int64))
        layer_columns = [(c.layer_slice(name), _layer_columns(c, name, layer_counts[name]))
                         for name in c.layer_names]

        def flush(start: int, m: int) -> None:
            """Copy the first ``m`` rows of ``counts`` to images ``start:start+m``, clear them."""
            for (sl, cols), out in zip(layer_columns, layer_counts.values()):
                if cols is None:
                    out[start:start + m] = counts[:m, sl]
                else:
                    out[start:start + m, cols] = counts[:m, sl]
            counts[:m] = 0

        if mode == "independent":
            for start in range(0, n, chunk_size):
                sl = slice(start, min(start + chunk_size, n))
                m = sl.stop - sl.start
                spikes, J = host_inputs(sl, sequential=False)
                if kind == HOST_GIVEN:
                    shifted = np.zeros_like(spikes)
                    shifted[:, 1:] = spikes[:, :-1]
                    spikes = shifted
                run_streams(spikes, kind, J, dt, *args, counts[:m], hc[sl], rec[sl],
                            host_rec_out[sl], out_probe[sl], synops[sl])
                flush(start, m)
        else:
            spikes, J = host_inputs(slice(0, n), sequential=True)
            if kind == HOST_GIVEN:
                flat = spikes.reshape(n * steps, -1)
                shifted = np.zeros_like(flat)
                shifted[1:] = flat[:-1]
                spikes = shifted.reshape(n, steps, -1)
            state = [np.zeros(c.n_compartments, np.int64) for _ in range(3)]
            spiked = np.zeros(c.n_compartments, np.bool_)
            host_v = np.zeros(c.n_host)
            host_prev = np.zeros(c.n_host, np.bool_)
            for i in range(n):
                run_stream(spikes[i], kind, J[i], host_v, dt, *args, *state, spiked, host_prev,
                           counts[i % chunk_size], hc[i], rec[i], host_rec_out[i], out_probe[i],
                           synops[i])
                if (i + 1) % chunk_size == 0 or i + 1 == n:
                    start = i - i % chunk_size
                    flush(start, i + 1 - start)

        readout = self.network.readout
        tau = c.probe_taus
        if mode == "sequential":
            flat = host_readout(out_probe.reshape(1, n * steps, c.n_out), readout, tau, dt)
            output = flat.reshape(n, steps, flat.shape[-1])
        else:
            output = host_readout(out_probe, readout, tau, dt)

        spike_counts = {**host_counts, **layer_counts}
        spikes_out = dict(early_rec)
        for name, (a, b) in {**chip_rec, **host_rec}.items():
            spikes_out[name] = (rec if name in chip_rec else host_rec_out)[:, :, a:b]
        names = list(self.network.layers)
        return EmulatorResult(
            output=output, spike_counts={k: spike_counts[k] for k in names}, steps=steps, dt=dt,
            mode=mode, spikes={k: spikes_out[k] for k in names if k in spikes_out},
            recorded_neurons={k: plan[k] for k in names if k in plan},
            synaptic_ops=synops[:, 0].copy(), host_layers=list(self.host_layers),
            seconds=time.perf_counter() - t0)

    @staticmethod
    def _columns(plan, names, size, positions):
        """Column of every element recorded (``-1``: not recorded) and each layer's range."""
        cols = np.full(size, -1, np.int64)
        ranges = {}
        col = 0
        for name in names:
            if name in plan:
                ids = plan[name]
                cols[positions(name, ids)] = col + np.arange(ids.size)
                ranges[name] = (col, col + ids.size)
                col += ids.size
        return cols, ranges

    def _host_kind(self) -> int:
        """How the kernel gets the host spikes: integrated in-kernel for a single relu
        layer fed by the input node, else from :func:`run_spiking`."""
        from ..neurons import LoihiSpikingRectifiedLinear, SpikingRectifiedLinear
        from .kernels import HOST_GIVEN, HOST_LOIHI_RELU, HOST_SPIKING_RELU

        if len(self.host_layers) != 1 or any(
                conn.pre != self.network.input_name
                for conn in self.network.connections_into(self.host_layers[0])):
            return HOST_GIVEN
        neuron_cls = type(self.network.layers[self.host_layers[0]].neuron)
        return {LoihiSpikingRectifiedLinear: HOST_LOIHI_RELU,
                SpikingRectifiedLinear: HOST_SPIKING_RELU}.get(neuron_cls, HOST_GIVEN)

    def _host_currents(self, images: np.ndarray) -> np.ndarray:
        """Input current of the single host layer for each image, as the float step sees it."""
        from ..simulate import _input_matrix, connection_operator

        layer = self.network.layers[self.host_layers[0]]
        x = _input_matrix(self.network, images)
        u = 0.0
        for conn in self.network.connections_into(layer.name):
            u = u + connection_operator(conn)(x)
        return np.ascontiguousarray(layer.gain * u + layer.bias, dtype=np.float64)

    def _host_spikes(self, images, steps, sequential, counts, rec, plan, sl, c) -> np.ndarray:
        """Spikes of the host layers that drive the chip, ``(n, steps, n_host)`` (uint8),
        from the float step (several spikes of a step reach the chip as one)."""
        result = run_spiking(self._host_net, images, steps, reset=not sequential,
                             record_spikes=True)
        for name in self.host_layers:
            counts[name][sl] = result.spike_counts[name]
            if name in rec:
                rec[name][sl] = result.spikes[name][:, :, plan[name]]
        parts = [result.spikes[h] for h in c.host_layers]
        return np.minimum(np.concatenate(parts, axis=2), 1).astype(np.uint8)


def _layer_columns(c: CompiledChip, name: str, out: np.ndarray) -> np.ndarray | None:
    """Neuron id of each of the layer's compartments, ``None`` when they are in order."""
    cols = c.comp_neuron[c.layer_slice(name)]
    if cols.size == out.shape[1] and np.array_equal(cols, np.arange(cols.size)):
        return None
    return cols


def _comp_index(c: CompiledChip, name: str, ids: np.ndarray) -> np.ndarray:
    """Compartment offsets (within the layer's range) of the layer neurons ``ids``."""
    sl = c.layer_slice(name)
    inverse = np.empty(sl.stop - sl.start, np.int64)
    inverse[c.comp_neuron[sl]] = np.arange(sl.stop - sl.start)
    return inverse[ids]
