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
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from . import arguments as _args
from .config import TunedConfig, load_config
from .errors import ArgumentError
from .inputs import check_labels, infer_input_range, network_images
from .network import SpikingNetwork

METHODS = ("emulator", "rate")
#: Starting points of :func:`calibrate`'s emulator search.
STARTS = ("rate", "relu")
#: Emulator runs that correct all off-target layers at once (``start="rate"``).
JOINT_RUNS = 3

#: Where calibration starts when no config is given: the NengoLoihi tutorial's settings
#: (5 ms lowpass synapses, 50 steps per image, scale 100). NengoDL's own defaults (no
#: synapse) leave the readout unfiltered: the output is the last step's spikes, and the
#: bundled example then scores 15 % although every layer fires on target.
TUTORIAL_DEFAULTS = TunedConfig(synapse=0.005, presentation_steps=50, scale_firing_rates=100.0)
#: A calibrated config whose emulator accuracy is this far below Keras' (or that agrees
#: with Keras on fewer than ``1 - FAR_BELOW`` of the images) is not written by the CLI
#: without ``--force``.
FAR_BELOW = 0.10


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

    _args.choice(method, "method", METHODS)
    presentation_steps = _args.presentation_steps(presentation_steps)
    if network is None:
        graph, cfg = _graph_and_config(model, config)
        network = convert(graph, cfg)
    else:
        network = _args.as_network(network)
    images = network_images(network, images)
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
    evaluation: "Evaluation | None" = None
    warnings: list[str] = field(default_factory=list)

    def table(self) -> str:
        lines = [f"{'layer':<16} {'scale':>10} {'rate Hz':>9} {'target':>7}"]
        for name, s in self.scales.items():
            r = self.rates[name]
            flag = "" if abs(r / self.target_rate - 1) <= self.tolerance else "  (off target)"
            lines.append(f"{name:<16} {s:>10.4g} {r:>9.1f} {self.target_rate:>7.0f}{flag}")
        return "\n".join(lines)


@dataclass
class Evaluation:
    """How a tuned config does on a batch: the emulator against Keras.

    Attributes
    ----------
    n_images
        Images evaluated.
    emulator_accuracy, keras_accuracy
        Accuracies (``None`` without labels). Keras' is computed without TensorFlow, by
        the converted network with ideal ReLUs, which equals ``model.predict`` to float32
        round-off (with MaxPooling substituted it is the average-pooling network).
    agreement
        Fraction of images where the emulator's prediction equals Keras'.
    """

    n_images: int
    emulator_accuracy: float | None
    keras_accuracy: float | None
    agreement: float

    @property
    def far_below_keras(self) -> bool:
        """Whether the config is much worse than the model (see :data:`FAR_BELOW`)."""
        if self.emulator_accuracy is not None and self.keras_accuracy is not None:
            return self.emulator_accuracy < self.keras_accuracy - FAR_BELOW
        return self.agreement < 1 - FAR_BELOW

    def summary(self) -> str:
        if self.emulator_accuracy is None:
            return (f"on {self.n_images} images the emulator agrees with Keras on "
                    f"{self.agreement:.1%} (no labels, so no accuracy)")
        return (f"accuracy on {self.n_images} images: emulator {self.emulator_accuracy:.1%}, "
                f"Keras {self.keras_accuracy:.1%} (agreement {self.agreement:.1%})")


def evaluate(model: Any, images: np.ndarray, config: Any = None, labels: Any = None, *,
             presentation_steps: int | None = None) -> Evaluation:
    """Emulator vs Keras on ``images`` for a tuned config (see :class:`Evaluation`).

    ``model`` is anything :func:`loihi_core.convert` takes, or a converted network (then
    ``config`` is ignored).
    """
    from .emulator import Emulator
    from .mapping import map_to_chip
    from .simulate import run_rates

    network = _args.as_network(model, "model", config=config)
    images = network_images(network, images)
    labels = None if labels is None else check_labels(labels, len(images), where="labels")
    steps = _args.presentation_steps(presentation_steps)
    result = Emulator(map_to_chip(network)).run(images, steps)
    keras_pred = run_rates(network, images, ideal=True).reshape(len(images), -1).argmax(axis=1)
    emu_pred = result.predictions
    return Evaluation(
        n_images=len(images),
        emulator_accuracy=None if labels is None else float(np.mean(emu_pred == labels)),
        keras_accuracy=None if labels is None else float(np.mean(keras_pred == labels)),
        agreement=float(np.mean(emu_pred == keras_pred)))


def unfiltered_readout(network: SpikingNetwork) -> str | None:
    """A warning when the output is read from unfiltered spikes (``synapse`` null on the
    readout's layer), else ``None``: the last step's spikes decide the class then."""
    pre = network.readout.pre
    if network.layers[pre].synapse is None:
        return (f"the readout is unfiltered (layer {pre!r} has synapse null): the prediction is "
                f"the last step's spikes, and accuracy is usually poor; set \"synapse\": 0.005 "
                f"(the tutorial's) in the config")
    return None


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
              progress: Callable[[int, dict[str, float]], None] | None = None,
              labels: Any = None, evaluate_result: bool = True,
              start: str = "rate") -> CalibrationResult:
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
        Starting tuned config (its neuron types, synapses, block shapes are kept);
        ``None`` starts from :data:`TUTORIAL_DEFAULTS` (5 ms synapses, 50 steps), not
        from the unfiltered NengoDL defaults. The returned config records the images'
        range as ``input_range`` when the starting config has none.
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
    labels
        Class labels of ``images``: the final :class:`Evaluation` then has accuracies.
    evaluate_result
        Run the final config once more on ``images`` and compare with Keras
        (``result.evaluation``).
    start
        Where the emulator search starts: ``"rate"`` (default) first calibrates every
        layer on the chip-true rate model (:func:`rate_mode_rates`, no emulator runs),
        then corrects all off-target layers at once per emulator run, and only then
        searches layer by layer; ``"relu"`` starts the layer-by-layer search from the
        tutorial's one-shot ReLU estimate (``history[0]`` is then that estimate).
        ``bench/bench_calibrate.py`` counts the emulator runs of both.

    Warns
    -----
    UserWarning
        When the readout is unfiltered (also in ``result.warnings``).

    Raises
    ------
    ArgumentError
        Naming the argument: a target that is not positive or not below a layer's
        ceiling, a bad tolerance, method, layer name ...
    DataError
        For images the input policy refuses (:mod:`loihi_core.inputs`).
    """
    from .convert import convert

    if not _args._is_model_source(model):
        raise ArgumentError(f"model: expected a .keras path, a keras.Model or a LayerGraph, got "
                            f"{type(model).__name__}", "model")
    graph, cfg = _graph_and_config(model, TUTORIAL_DEFAULTS if config is None else config)
    target_rate = _args.positive_number(target_rate, "target_rate", unit=" Hz")
    tolerance = _args.positive_number(tolerance, "tolerance", below=1)
    max_iterations = _args.positive_int(max_iterations, "max_iterations", 1000)
    _args.choice(method, "method", METHODS)
    presentation_steps = _args.presentation_steps(presentation_steps)
    if progress is not None and not callable(progress):
        raise ArgumentError(f"progress: expected a function progress(i, rates), got "
                            f"{type(progress).__name__}", "progress")
    network = convert(graph, cfg)
    images = network_images(network, images)
    labels = None if labels is None else check_labels(labels, len(images), where="labels")
    spiking = [n for n, layer in network.layers.items()
               if layer.neuron.spiking and not layer.is_input_encoder]
    if layers is not None:
        if isinstance(layers, str) or not all(isinstance(n, str) for n in layers):
            raise ArgumentError(f"layers: expected a list of layer names, got {layers!r}", "layers")
        unknown = [n for n in layers if n not in spiking]
        if unknown:
            raise ArgumentError(f"layers: {', '.join(map(repr, unknown))} are not spiking neuron "
                                f"layers; they are: {', '.join(spiking)}", "layers")
    names = [n for n in spiking if layers is None or n in layers]
    for name in names:
        ceiling = network.layers[name].neuron.max_rate(network.dt)
        if target_rate >= ceiling:
            raise ArgumentError(
                f"target_rate {target_rate:g} Hz is not below the ceiling of layer {name!r} "
                f"({ceiling:g} Hz = one spike per {'step' if ceiling == 1 / network.dt else 'refractory period'}); "
                f"choose a lower target", "target_rate")
    notes = []
    unfiltered = unfiltered_readout(network)
    if unfiltered:
        notes.append(unfiltered)
        warnings.warn(unfiltered, UserWarning, stacklevel=2)
    if cfg.input_range is None:  # record what the scales were calibrated for
        cfg = cfg.with_defaults(input_range=list(infer_input_range(images)))
    _args.choice(start, "start", STARTS)
    first = initial_scales(network, images, target_rate)
    if method == "emulator" and start == "rate":
        with warnings.catch_warnings():  # the unfiltered-readout note is given once, above
            warnings.simplefilter("ignore")
            rate_pass = calibrate(graph, images, cfg, target_rate, tolerance=tolerance,
                                  max_iterations=max_iterations, method="rate",
                                  presentation_steps=presentation_steps, layers=names,
                                  evaluate_result=False, start="relu")
        first = {**first, **rate_pass.scales}
    start_scales = first
    scales = {n: start_scales[n] for n in names}
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
    if method == "emulator" and start == "rate":
        # all layers per run: each off-target layer scaled by target / its rate (a relu
        # layer's rate is roughly proportional to its scale); layers whose rate moves in
        # jumps are left to the layer-by-layer search below
        for _ in range(min(JOINT_RUNS, max_iterations)):
            off = [n for n in names if rates[n] > 0 and abs(rates[n] / target_rate - 1) > tolerance]
            if not off:
                break
            for n in off:
                scales[n] = scales[n] * target_rate / rates[n]
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
    evaluation = (evaluate(graph, images, cfg, labels, presentation_steps=presentation_steps)
                  if evaluate_result else None)
    return CalibrationResult(config=cfg, scales=dict(scales), rates=rates,
                             initial_scales={n: start_scales[n] for n in names}, history=history,
                             converged=converged, target_rate=float(target_rate),
                             tolerance=float(tolerance), evaluation=evaluation, warnings=notes)


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
