"""What the dashboard computes for one tuned config, in stages, without Panel.

Every function here is pure (inputs → plain results) and safe to run in a worker thread:
the dashboard runs :func:`run_stages` off the Bokeh event loop and shows each stage as
soon as it is ready, so the cheap feedback (activation profiles, rate estimates) appears
before the slower mapping and emulation finish. Unit tests call the same functions
synchronously.

Stages of :func:`run_stages`:

1. :class:`NetworkStage` — :func:`loihi_core.convert`, the layers' input currents on the
   calibration images (activation profiles) and rate-mode rate estimates (milliseconds);
2. :class:`ChipStage` — :func:`loihi_core.map_to_chip` with over-limit blocks *reported*
   (the heatmap shows them red) rather than raised;
3. :class:`EmulationStage` — the bit-exact emulator on the live images, all spikes recorded
   for the rasters. Skipped when the mapping has errors (such a chip cannot run).

A failing stage yields a :class:`Failure` whose :class:`Problem` entries name the layer and
field at fault, so the UI can put each message next to the control that caused it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

import loihi_core
from loihi_core import TunedConfig
from loihi_core.calibrate import rate_mode_rates
from loihi_core.errors import ConfigError, ConversionError, LoihiStudioError, MappingError
from loihi_core.memory import ByteLRU
from loihi_core.simulate import ideal_neuron, layer_currents

from .data import ModelBundle

#: Input samples per layer used for a profile histogram (more adds time, not insight).
PROFILE_SAMPLES = 20_000
PROFILE_BINS = 60
PROFILE_POINTS = 600


# ---------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    """One thing that is wrong, and where to show it.

    Attributes
    ----------
    area
        ``"layer"`` (shown in that layer's card), ``"global"`` (next to the global
        settings), ``"mapping"`` (under the core heatmap), or an action: ``"model"``,
        ``"data"``, ``"import"``, ``"calibration"``, ``"run"``.
    message
        The text shown, verbatim from the core where possible.
    layer, field
        The layer and the setting at fault, when known.
    """

    area: str
    message: str
    layer: str | None = None
    field: str | None = None


@dataclass(frozen=True)
class Job:
    """A frozen snapshot of what to compute (safe to hand to a worker thread)."""

    generation: int
    bundle: ModelBundle
    config: TunedConfig
    live: np.ndarray
    calib: np.ndarray
    record: Any = "all"


@dataclass
class Profile:
    """The activation profile of one layer: where its inputs sit on the neuron's curve.

    ``x`` is the layer's input in Keras units (``J / gain``: independent of the scale), so
    changing ``scale_firing_rates`` stretches the staircase under a fixed histogram.
    """

    x: np.ndarray
    chip_rate: np.ndarray
    ideal_rate: np.ndarray
    edges: np.ndarray
    fraction: np.ndarray
    max_rate: float
    x_saturate: float | None
    silent_fraction: float
    saturated_fraction: float
    mean_active_rate: float


@dataclass
class NetworkStage:
    generation: int
    config: TunedConfig
    network: Any
    profiles: dict[str, Profile]
    estimated_rates: dict[str, float]
    keras_output: np.ndarray
    seconds: float


@dataclass
class ChipStage:
    generation: int
    config: TunedConfig
    chip: Any
    problems: list[Problem]
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.chip.errors


@dataclass
class EmulationStage:
    generation: int
    config: TunedConfig
    result: Any
    image_ids: np.ndarray
    seconds: float
    cost: Any = None  # loihi_core.cost.CostReport of the live images (issue 17)


@dataclass
class Failure:
    generation: int
    config: TunedConfig
    stage: str
    problems: list[Problem] = field(default_factory=list)


Stage = NetworkStage | ChipStage | EmulationStage | Failure


# ---------------------------------------------------------------------------------------
# error → problems
# ---------------------------------------------------------------------------------------

_LAYER_RE = re.compile(r"layer '([^']+)'")


def problems_from_error(exc: BaseException, layers: list[str] | None = None,
                        area: str = "global") -> list[Problem]:
    """Turn a core exception into problems placed next to their cause.

    ``ConfigError`` paths (``layers.conv0.block_shape``) point at a layer and field;
    ``ConversionError`` and ``MappingError`` carry ``.layer``. Anything else goes to
    ``area``.
    """
    layers = layers or []
    if isinstance(exc, ConfigError):
        out = []
        for path, msg in exc.problems:
            parts = path.split(".")
            if parts[0] == "layers" and len(parts) > 1 and parts[1] in layers:
                out.append(Problem("layer", f"{parts[-1] if len(parts) > 2 else parts[1]}: {msg}",
                                   layer=parts[1], field=parts[2] if len(parts) > 2 else None))
            else:
                out.append(Problem(area, f"{path}: {msg}" if path else msg,
                                   field=parts[0] or None))
        return out
    layer = getattr(exc, "layer", None)
    if layer in layers:
        return [Problem("layer", str(exc), layer=layer,
                        field="block_shape" if isinstance(exc, MappingError) else None)]
    return [Problem(area, str(exc))]


def mapping_problems(chip: Any, layers: list[str]) -> list[Problem]:
    """Problems from a chip's over-limit report: under the heatmap and on the layer."""
    out = []
    for msg in chip.errors:
        found = _LAYER_RE.search(msg)
        out.append(Problem("mapping", msg))
        if found and found.group(1) in layers:
            out.append(Problem("layer", msg, layer=found.group(1), field="block_shape"))
    return out


# ---------------------------------------------------------------------------------------
# stage 1: network, profiles, estimates
# ---------------------------------------------------------------------------------------

def layer_profile(layer: Any, x: np.ndarray, dt: float) -> Profile:
    """Activation profile of ``layer`` from samples ``x`` of its input (Keras units)."""
    gain = float(layer.gain)
    neuron = layer.neuron
    amp = float(neuron.amplitude)
    max_rate = float(min(neuron.max_rate(dt), 1.0 / dt))
    lo = float(min(0.0, np.quantile(x, 0.005))) if x.size else 0.0
    hi = float(np.quantile(x, 0.995)) if x.size else 1.0
    hi = max(hi, 1e-6 + abs(lo) * 0.05, 1e-6)
    # where the staircase reaches its ceiling (one spike per step / refractory period)
    probe = np.geomspace(1e-9, 1e9, 2000)
    probe_rate = neuron.chip_rates(probe, gain, 0.0, dt)[:, 0] / amp
    at_max = np.nonzero(probe_rate >= max_rate * (1 - 1e-9))[0]
    x_sat = float(probe[at_max[0]]) if at_max.size else None
    if x_sat is not None and x_sat < hi * 3:
        hi = max(hi, x_sat * 1.2)
    grid = np.linspace(lo, hi, PROFILE_POINTS)
    chip_rate = neuron.chip_rates(grid, gain, 0.0, dt)[:, 0] / amp
    ideal = ideal_neuron(neuron)
    ideal_rate = ideal.rates(grid, gain, 0.0, dt)[:, 0] / float(ideal.amplitude)
    counts, edges = np.histogram(x, bins=PROFILE_BINS, range=(lo, hi))
    fraction = counts / max(x.size, 1)
    rates = neuron.chip_rates(x, gain, 0.0, dt)[:, 0] / amp if x.size else np.zeros(0)
    active = rates > 0
    return Profile(x=grid, chip_rate=chip_rate, ideal_rate=ideal_rate, edges=edges,
                   fraction=fraction, max_rate=max_rate, x_saturate=x_sat,
                   silent_fraction=float(np.mean(~active)) if rates.size else 1.0,
                   saturated_fraction=float(np.mean(rates >= max_rate * (1 - 1e-9))) if rates.size else 0.0,
                   mean_active_rate=float(rates[active].mean()) if active.any() else 0.0)


# Results shared by every session, bounded by bytes (LOIHI_STUDIO_CACHE_MB; see
# loihi_core.memory). Every key starts with the bundle's token (_PROFILES: its first part
# does), which is how forget_models finds a closed session's entries.
_INPUTS = ByteLRU("app.inputs")
_REFERENCE = ByteLRU("app.reference")
_PROFILES = ByteLRU("app.profiles")


def _token_of(key: tuple) -> str:
    return key[0][0] if isinstance(key[0], tuple) else key[0]


def forget_models(keep: Callable[[str], bool]) -> int:
    """Drop the shared results of every model whose bundle token ``keep`` rejects.

    Called when a session closes, with the tokens still open elsewhere kept. Returns
    the bytes released (estimated).
    """
    return sum(cache.discard(lambda key: keep(_token_of(key)))
               for cache in (_INPUTS, _REFERENCE, _PROFILES, _RESULTS))


def _input_signature(network: Any) -> tuple:
    """What a layer's input (in Keras units) depends on.

    With ReLU-family neurons the ideal network is positively homogeneous, so the inputs
    ``J / gain`` do not depend on any scale: moving a scale slider reuses them. LIF-family
    layers depend on their gain and neuron parameters.
    """
    sig = []
    for name, layer in network.layers.items():
        if layer.neuron.family == "relu":
            sig.append((name, "relu", float(layer.neuron.amplitude)))
        else:
            sig.append((name, repr(layer.neuron.to_config()), float(layer.gain)))
    return tuple(sig)


def layer_inputs(network: Any, bundle: ModelBundle, ids: np.ndarray) -> dict[str, np.ndarray]:
    """Samples of every layer's input ``J / gain`` on ``bundle.images[ids]`` (cached)."""
    key = (bundle.token, ids.tobytes(), _input_signature(network))

    def make() -> dict[str, np.ndarray]:
        currents = layer_currents(network, bundle.images[ids])
        out = {}
        for name, layer in network.layers.items():
            x = (np.asarray(currents[name], np.float64) / float(layer.gain)).ravel()
            step = max(1, x.size // PROFILE_SAMPLES)
            out[name] = x[::step]
        return out

    return _INPUTS.get_or_make(key, make)


def keras_outputs(bundle: ModelBundle, ids: np.ndarray, chunk: int = 256) -> np.ndarray:
    """The Keras model's outputs on ``bundle.images[ids]``, without TensorFlow.

    The network is converted with ideal ReLU neurons (the model as trained), so this is the
    reference the emulator's accuracy is compared with.
    """
    reference = loihi_core.convert(bundle.graph, TunedConfig(max_to_avg_pool=bundle.config.max_to_avg_pool))
    outs = [loihi_core.run_rates(reference, bundle.images[ids[i:i + chunk]], ideal=True)
            for i in range(0, len(ids), chunk)]
    return np.concatenate(outs).reshape(len(ids), -1)


def reference_outputs(bundle: ModelBundle, ids: np.ndarray) -> np.ndarray:
    """:func:`keras_outputs`, cached: they do not depend on the tuning."""
    key = (bundle.token, bundle.config.max_to_avg_pool, ids.tobytes())
    return _REFERENCE.get_or_make(key, lambda: keras_outputs(bundle, ids))


def network_stage(job: Job) -> NetworkStage:
    t0 = time.perf_counter()
    network = loihi_core.convert(job.bundle.graph, job.config)
    inputs = layer_inputs(network, job.bundle, job.calib)
    inputs_key = (job.bundle.token, job.calib.tobytes(), _input_signature(network))
    # a profile is reused (the same object) while its layer's settings are unchanged, so
    # the page only redraws the profiles a change affects
    profiles = {name: _PROFILES.get_or_make(
                    (inputs_key, name, float(layer.gain), repr(layer.neuron), float(network.dt)),
                    lambda layer=layer, name=name: layer_profile(layer, inputs[name], network.dt))
                for name, layer in network.layers.items()}
    live = job.bundle.images[job.live]
    per_neuron = rate_mode_rates(network, live)
    estimated = {}
    for name, rates in per_neuron.items():
        active = rates > 0
        estimated[name] = float(rates[active].mean()) if active.any() else 0.0
    keras = reference_outputs(job.bundle, job.live)
    return NetworkStage(job.generation, job.config, network, profiles, estimated, keras,
                        time.perf_counter() - t0)


# ---------------------------------------------------------------------------------------
# stages 2 and 3
# ---------------------------------------------------------------------------------------

def chip_stage(job: Job, network: Any) -> ChipStage:
    t0 = time.perf_counter()
    chip = loihi_core.map_to_chip(network, raise_on_overflow=False, n_chips=job.config.n_chips)
    return ChipStage(job.generation, job.config, chip, mapping_problems(chip, list(network.layers)),
                     time.perf_counter() - t0)


def emulation_stage(job: Job, chip: Any) -> EmulationStage:
    t0 = time.perf_counter()
    result = loihi_core.Emulator(chip).run(job.bundle.images[job.live], record=job.record)
    from loihi_core.cost import estimate

    return EmulationStage(job.generation, job.config, result, np.asarray(job.live),
                          time.perf_counter() - t0, cost=estimate(chip, result))


_RESULTS = ByteLRU("app.results")


def _job_key(job: Job) -> tuple:
    return (job.bundle.token, job.config.to_json(), np.asarray(job.live).tobytes(),
            np.asarray(job.calib).tobytes(), repr(job.record))


def cached_stages(job: Job) -> list[Stage] | None:
    """The stages of an identical earlier job (any session's), re-tagged for ``job``.

    Results are read-only, so sessions share them: a new page on the bundled example, an
    undo, or a second user trying the same config shows its results without computing.
    """
    stages = _RESULTS.get(_job_key(job))
    if stages is None:
        return None
    return [replace(stage, generation=job.generation) for stage in stages]


def run_stages(job: Job) -> Iterator[Stage]:
    """Yield the stages for ``job`` in order; stop at the first failure (yielded)."""
    cached = cached_stages(job)
    if cached is not None:
        yield from cached
        return
    done: list[Stage] = []
    for stage in _compute_stages(job):
        done.append(stage)
        yield stage
    _RESULTS.put(_job_key(job), done)


def _compute_stages(job: Job) -> Iterator[Stage]:
    layers = [node.name for node in job.bundle.graph]
    try:
        net = network_stage(job)
    except LoihiStudioError as exc:
        yield Failure(job.generation, job.config, "network", problems_from_error(exc, layers))
        return
    yield net
    names = list(net.network.layers)
    try:
        chip = chip_stage(job, net.network)
    except LoihiStudioError as exc:
        yield Failure(job.generation, job.config, "chip",
                      problems_from_error(exc, names, area="mapping"))
        return
    yield chip
    if not chip.ok:
        return
    yield emulation_stage(job, chip.chip)


def compute_all(job: Job) -> list[Stage]:
    """All stages at once (what the unit tests and the headless check use)."""
    return list(run_stages(job))


# ---------------------------------------------------------------------------------------
# actions: calibration and evaluation on more images
# ---------------------------------------------------------------------------------------

def calibrate(bundle: ModelBundle, config: TunedConfig, ids: np.ndarray, target_rate: float,
              progress: Callable[[int, dict[str, float]], None] | None = None,
              tolerance: float = 0.05):
    """Per-layer scales that put every layer's emulated mean rate on ``target_rate``."""
    # no final evaluation: the page emulates the result right away (and Run measures
    # accuracy on more images); it would add a fourth emulator run to every auto-scale
    return loihi_core.calibrate(bundle.graph, bundle.images[ids], config, target_rate=target_rate,
                                tolerance=tolerance, method="emulator", progress=progress,
                                evaluate_result=False)


@dataclass
class Evaluation:
    """Accuracy of the emulator and the Keras model on the first ``n_images`` images."""

    n_images: int
    emulator_accuracy: float | None
    keras_accuracy: float | None
    agreement: float
    rates: dict[str, float]
    synaptic_ops: float
    seconds: float
    config: TunedConfig | None = None


def evaluate(bundle: ModelBundle, config: TunedConfig, n_images: int, chunk: int = 64,
             progress: Callable[[int, int], None] | None = None) -> Evaluation:
    """Emulate ``n_images`` images (no spike recording) and compare with the Keras model.

    Raises the core's errors (a config that does not map cannot be evaluated).
    """
    t0 = time.perf_counter()
    n = int(min(n_images, len(bundle.images)))
    network = loihi_core.convert(bundle.graph, config)
    chip = loihi_core.map_to_chip(network, raise_on_overflow=True, n_chips=config.n_chips)
    emulator = loihi_core.Emulator(chip)
    preds, counts, synops = [], {}, []
    for start in range(0, n, chunk):
        result = emulator.run(bundle.images[start:min(start + chunk, n)])
        preds.append(result.predictions)
        synops.append(result.synaptic_ops)
        for name, c in result.spike_counts.items():
            counts.setdefault(name, []).append(c)
        if progress is not None:
            progress(min(start + chunk, n), n)
    pred = np.concatenate(preds)
    ids = np.arange(n)
    keras_pred = reference_outputs(bundle, ids).argmax(axis=1)
    seconds_per_image = result.steps * result.dt
    rates = {}
    for name, parts in counts.items():
        c = np.concatenate(parts)
        active = c > 0
        rates[name] = float(c[active].mean() / seconds_per_image) if active.any() else 0.0
    labels = bundle.labels[:n] if bundle.labels is not None else None
    return Evaluation(
        n_images=n,
        emulator_accuracy=None if labels is None else float(np.mean(pred == labels)),
        keras_accuracy=None if labels is None else float(np.mean(keras_pred == labels)),
        agreement=float(np.mean(pred == keras_pred)), rates=rates,
        synaptic_ops=float(np.concatenate(synops).mean()), seconds=time.perf_counter() - t0,
        config=config)


# ---------------------------------------------------------------------------------------
# rasters
# ---------------------------------------------------------------------------------------

def bin_raster(spikes: np.ndarray, max_rows: int = 240, lo: int = 0, hi: int | None = None
               ) -> tuple[np.ndarray, int, int, int]:
    """Rasterize a ``(steps, n_neurons)`` spike array to at most ``max_rows`` neuron rows.

    Each output pixel counts the spikes of a run of consecutive neurons in one step, so no
    spike is lost however many neurons a layer has (the browser never draws more rows
    than the plot has pixels). ``lo``/``hi`` select a neuron window (zooming).

    Returns
    -------
    image, rows_per_bin, lo, hi
        ``image`` is ``(n_bins, steps)`` float32 spike counts.
    """
    steps, n = spikes.shape
    hi = n if hi is None else int(min(max(hi, lo + 1), n))
    lo = int(min(max(lo, 0), max(hi - 1, 0)))
    window = spikes[:, lo:hi]
    width = hi - lo
    per = max(1, -(-width // max_rows))
    n_bins = -(-width // per)
    padded = np.zeros((steps, n_bins * per), np.float32)
    padded[:, :width] = window
    image = padded.reshape(steps, n_bins, per).sum(axis=2).T
    return image, per, lo, hi
