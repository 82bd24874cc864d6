"""Firing-rate measurement and calibration of the per-layer ``scale_firing_rates``.

The NengoLoihi tutorial picks each layer's scale once, from the ReLU network's activations
(``scale = target / mean activation``). On Loihi neurons that estimate misses: the rate is a
staircase of ``1/(n·dt)`` plateaus, the chip fires one step later than ``rates()`` says at
exact periods, and spikes arrive through filtered, quantized synapses — the tutorial's
200 Hz target gives 198/142/102/49 Hz. :func:`calibrate` starts from that estimate and
iterates against the measurement that matters (the bit-exact emulator by default) until
every layer's mean rate is within the tolerance of the target.

Rates follow the tutorial's definition: the mean over *active* neurons (those that spiked
at least once for an image), in Hz; :class:`LayerRates` also keeps the mean over all
neurons and the per-neuron distribution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .config import TunedConfig, load_config
from .network import SpikingNetwork

METHODS = ("emulator", "rate")


@dataclass
class LayerRates:
    """Firing-rate statistics of one layer on a batch of images.

    Attributes
    ----------
    mean_active
        Mean rate (Hz) over neurons that fired for an image (the tutorial's number).
    mean_all
        Mean rate over all neurons and images.
    active_fraction
        Fraction of (image, neuron) pairs that fired at all.
    saturated_fraction
        Fraction at the one-spike-per-step ceiling (no headroom left).
    max_rate
        Highest rate of any neuron.
    per_neuron
        ``(n_images, n_neurons)`` rates in Hz (the full distribution).
    """

    mean_active: float
    mean_all: float
    active_fraction: float
    saturated_fraction: float
    max_rate: float
    per_neuron: np.ndarray = field(repr=False)

    @classmethod
    def from_rates(cls, rates: np.ndarray, ceiling: float) -> "LayerRates":
        rates = np.asarray(rates, np.float64)
        active = rates > 0
        return cls(mean_active=float(rates[active].mean()) if active.any() else 0.0,
                   mean_all=float(rates.mean()) if rates.size else 0.0,
                   active_fraction=float(active.mean()) if rates.size else 0.0,
                   saturated_fraction=float(np.mean(rates >= ceiling * (1 - 1e-9))) if rates.size else 0.0,
                   max_rate=float(rates.max()) if rates.size else 0.0, per_neuron=rates)


def _graph_and_config(model: Any, config: Any):
    from .graph import load_model

    return load_model(model), load_config(config)


def rate_mode_rates(network: SpikingNetwork, images: np.ndarray) -> dict[str, np.ndarray]:
    """Per-neuron rates (Hz) when every layer fires at its neuron's chip-true rate.

    Each layer passes ``amplitude · rate`` on, as the spiking network does on average.
    """
    from .simulate import layer_currents

    out = {}

    def chip_rate(layer, J, u):
        out[layer.name] = layer.neuron.chip_rates_from_current(J, network.dt) / layer.neuron.amplitude
        return out[layer.name] * layer.amplitude

    layer_currents(network, images, activity=chip_rate)
    return out


def measure_rates(model: Any, images: np.ndarray, config: Any = None, *,
                  method: str = "emulator", presentation_steps: int | None = None,
                  network: SpikingNetwork | None = None) -> dict[str, LayerRates]:
    """Firing-rate statistics of every neuron layer on ``images``.

    Parameters
    ----------
    model
        ``.keras`` path, ``keras.Model`` or :class:`~loihi_core.graph.LayerGraph`
        (ignored when ``network`` is given).
    config
        Tuned config (scales, neurons, block shapes ...).
    method
        ``"emulator"``: the bit-exact chip emulator (host layers with the float step),
        images independent; ``"rate"``: the neurons' chip-true rate functions (instant,
        no spikes).
    presentation_steps
        Steps per image for the emulator (default: the config's).
    """
    from .convert import convert

    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if network is None:
        graph, cfg = _graph_and_config(model, config)
        network = convert(graph, cfg)
    ceiling = 1.0 / network.dt
    if method == "rate":
        per = rate_mode_rates(network, images)
    else:
        from .emulator import Emulator
        from .mapping import map_to_chip

        result = Emulator(map_to_chip(network)).run(images, presentation_steps)
        per = result.neuron_rates()
    return {name: LayerRates.from_rates(
                per[name], min(ceiling, network.layers[name].neuron.max_rate(network.dt)))
            for name in network.layers}


@dataclass
class CalibrationResult:
    """What :func:`calibrate` returns.

    Attributes
    ----------
    config
        The input config with every calibrated layer's ``scale_firing_rates`` set.
    scales
        The calibrated scale per layer.
    rates
        Final measured mean rate (Hz, active neurons) per layer.
    initial_scales
        The one-shot ReLU estimate calibration started from (the tutorial's method).
    history
        Per iteration: ``{"scales": {...}, "rates": {...}}``.
    converged
        Whether every layer ended within the tolerance.
    """

    config: TunedConfig
    scales: dict[str, float]
    rates: dict[str, float]
    initial_scales: dict[str, float]
    history: list[dict]
    converged: bool
    target_rate: float
    tolerance: float

    def table(self) -> str:
        lines = [f"{'layer':<16} {'scale':>10} {'rate Hz':>9} {'target':>7}"]
        for name, s in self.scales.items():
            r = self.rates[name]
            flag = "" if abs(r / self.target_rate - 1) <= self.tolerance else "  (off target)"
            lines.append(f"{name:<16} {s:>10.4g} {r:>9.1f} {self.target_rate:>7.0f}{flag}")
        return "\n".join(lines)


def initial_scales(network: SpikingNetwork, images: np.ndarray, target_rate: float) -> dict[str, float]:
    """The tutorial's one-shot estimate: ``target / mean ReLU activation`` per layer.

    ``network`` may have any scales: the ideal activations do not depend on them.
    """
    from .simulate import run_rates

    _, layers = run_rates(network, images, return_layers=True, ideal=True)
    out = {}
    for name, act in layers.items():
        act = np.asarray(act).reshape(len(images), -1)
        active = act > 0
        mean = float(act[active].mean()) if active.any() else 0.0
        out[name] = target_rate / mean if mean > 0 else 1.0
    return out


def calibrate(model: Any, images: np.ndarray, config: Any = None, target_rate: float = 200.0, *,
              tolerance: float = 0.05, max_iterations: int = 10, method: str = "emulator",
              presentation_steps: int | None = None, layers: list[str] | None = None,
              progress: Callable[[int, dict[str, float]], None] | None = None) -> CalibrationResult:
    """Find per-layer ``scale_firing_rates`` that put every layer's mean rate on target.

    A layer's rate depends on its own scale and on the layers before it, never on the
    ones after, so layers are calibrated in order: for each, a 1-D search on its scale
    (log-log secant inside a bracket, starting from the tutorial's one-shot estimate),
    with the earlier layers already fixed. When the layer's rate jumps over the band
    (an input layer fed by identical pixel values moves in whole 1/(n·dt) steps), the
    scale giving the closest rate is kept and the layer is reported off target.

    Parameters
    ----------
    model
        ``.keras`` path, ``keras.Model`` or :class:`~loihi_core.graph.LayerGraph`.
    images
        Calibration batch ``(n, *input_shape)``; a few dozen images are enough.
    config
        Starting tuned config (its neuron types, synapses, block shapes are kept).
    target_rate
        Wanted mean rate of active neurons, Hz (must be below the one-spike-per-step
        ceiling of every layer's neuron type).
    tolerance
        Relative band around the target (0.05 = ±5 %).
    max_iterations
        Measurements per layer at most.
    method
        ``"emulator"`` (bit-exact, default) or ``"rate"`` (chip-true rate functions).
    layers
        Layers to calibrate (default: every spiking neuron layer).
    progress
        Called as ``progress(measurement, rates)`` after each measurement.

    Raises
    ------
    ValueError
        When the target is not positive or not below a layer's ceiling.
    """
    from .convert import convert

    graph, cfg = _graph_and_config(model, config)
    images = np.asarray(images)
    if not (isinstance(target_rate, (int, float)) and math.isfinite(target_rate) and target_rate > 0):
        raise ValueError(f"target_rate must be a positive number of Hz, got {target_rate!r}")
    network = convert(graph, cfg)
    names = [n for n, layer in network.layers.items()
             if layer.neuron.spiking and not layer.is_input_encoder
             and (layers is None or n in layers)]
    for name in names:
        ceiling = network.layers[name].neuron.max_rate(network.dt)
        if target_rate >= ceiling:
            raise ValueError(
                f"target_rate {target_rate:g} Hz is not below the ceiling of layer {name!r} "
                f"({ceiling:g} Hz = one spike per {'step' if ceiling == 1 / network.dt else 'refractory period'}); "
                f"choose a lower target")
    start = initial_scales(network, images, target_rate)
    scales = {n: start[n] for n in names}
    history: list[dict] = []
    rates: dict[str, float] = {}

    def measure() -> dict[str, float]:
        nonlocal cfg
        for name in names:
            cfg = cfg.with_layer(name, scale_firing_rates=float(scales[name]))
        stats = measure_rates(graph, images, cfg, method=method,
                              presentation_steps=presentation_steps)
        result = {n: stats[n].mean_active for n in names}
        history.append({"scales": dict(scales), "rates": dict(result)})
        if progress is not None:
            progress(len(history) - 1, dict(result))
        return result

    rates = measure()
    for name in names:
        tried: list[tuple[float, float]] = []  # (scale, rate) of this layer
        for _ in range(max_iterations):
            tried.append((scales[name], rates[name]))
            if abs(rates[name] / target_rate - 1) <= tolerance:
                break
            nxt = _next_scale(tried, target_rate)
            if nxt is None:  # the band falls in a jump of the rate: keep the closest
                break
            scales[name] = nxt
            rates = measure()
        best_scale, best_rate = min(tried + [(scales[name], rates[name])],
                                    key=lambda p: abs(math.log(max(p[1], 1e-9) / target_rate)))
        if best_scale != scales[name]:
            scales[name] = best_scale
            rates = measure()
    converged = all(abs(rates[n] / target_rate - 1) <= tolerance for n in names
                    if network.layers[n].on_chip)
    for name in names:
        cfg = cfg.with_layer(name, scale_firing_rates=float(scales[name]))
    return CalibrationResult(config=cfg, scales=dict(scales), rates=rates,
                             initial_scales={n: start[n] for n in names}, history=history,
                             converged=converged, target_rate=float(target_rate),
                             tolerance=float(tolerance))


def _next_scale(tried: list[tuple[float, float]], target: float) -> float | None:
    """The next scale to try for one layer, from its measured (scale, rate) points.

    Inside a bracket (one point below the target, one above) interpolate in log-log
    space, where a relu layer's rate is roughly linear; outside, extrapolate with the
    latest slope (1 until known), at most ×/÷ 4 per step. ``None`` when the bracket has
    closed to 0.1 % without reaching the band.
    """
    below = [p for p in tried if p[1] < target]
    above = [p for p in tried if p[1] > target]
    log = math.log
    if below and above:
        lo = max(below, key=lambda p: p[0])
        hi = min(above, key=lambda p: p[0])
        if hi[0] <= lo[0] * 1.001:
            return None
        if lo[1] <= 0:
            return math.sqrt(lo[0] * hi[0])
        frac = (log(target) - log(lo[1])) / (log(hi[1]) - log(lo[1]))
        frac = min(max(frac, 0.1), 0.9)  # stay strictly inside the bracket
        return math.exp(log(lo[0]) + frac * (log(hi[0]) - log(lo[0])))
    s, r = tried[-1]
    slope = 1.0
    if len(tried) >= 2:
        (s0, r0), (s1, r1) = tried[-2], tried[-1]
        if r0 > 0 and r1 > 0 and abs(log(s1 / s0)) > 1e-9 and abs(log(r1 / r0)) > 1e-9:
            slope = min(max(log(r1 / r0) / log(s1 / s0), 0.2), 5.0)
    step = log(4.0) if r <= 0 else (log(target) - log(r)) / slope
    step = min(max(step, -log(4.0)), log(4.0))
    return float(math.exp(log(s) + step))
