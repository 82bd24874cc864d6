"""Loihi-aware training: train a Keras model through the rates Loihi neurons really produce.

A network trained with ideal ReLUs loses accuracy on Loihi because a Loihi neuron's rate is
a staircase (one spike per whole number of steps, at most one per step) rather than a
line. Training *through* that staircase lets the weights adapt to it. Two tools:

* :func:`train` (rate-based, fast): every relu that the converter turns into neurons is
  replaced by :func:`loihi_activation`, whose forward pass is the exact Loihi rate and
  whose gradient is that of a smooth curve through the middle of the staircase
  (straight-through: ``out = smooth + stop_gradient(loihi - smooth)``; the staircase
  itself has zero gradient almost everywhere). This is what NengoLoihi's NengoDL training
  builders do (``shared/spec/loihi-semantics.md`` §1.7);
* :func:`finetune_spiking` (slower): unrolls a few time steps of the real spiking network
  (spiking relu steps, lowpass synapses, the converter's settings) with the smooth rate in
  the backward pass, and trains the readout at the last steps. It fixes what rates cannot
  see: the start-up transient and the synapse delays of a short presentation.

Both return a *plain* Keras model with the original architecture (standard ReLUs, so it
saves and loads anywhere with ``safe_mode=True`` and no custom objects) holding the
trained weights: the Loihi activations only exist in an internal twin model.

``scale_firing_rates`` follows NengoDL: the neuron current is ``J = scale · x`` (the Keras
bias is already in ``x``), and the output amplitude is ``1/scale``, so a layer outputs
``rate(scale · x) / scale``, which approximates ``relu(x)`` in value whatever the scale.

TensorFlow/Keras are imported inside the functions: ``import loihi_core.train`` is cheap.
"""

from __future__ import annotations

import functools
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from .data import check_images, check_labels
from .errors import ConfigError, ConversionError, DataError
from .neurons import (LIFRate, LoihiLIF, LoihiSpikingRectifiedLinear, RectifiedLinear,
                      discretize_tau_rc, discretize_tau_ref, neuron_from_config)

if TYPE_CHECKING:  # pragma: no cover
    import keras

#: Below this current (NengoDL's ``eps``) a period ``1/J`` is treated as infinite.
_EPS = 1e-15
#: Default per-layer scale (the NengoLoihi tutorial's value).
DEFAULT_SCALE = 100.0


class TrainResult(NamedTuple):
    """What :func:`train` and :func:`finetune_spiking` return (unpacks as ``model, history``).

    Attributes
    ----------
    model
        A plain ``keras.Model`` with the original architecture and the trained weights.
    history
        Keras' per-epoch metrics (``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``)
        as lists of floats, plus ``seconds`` (wall time of the training).
    """

    model: Any
    history: dict[str, Any]


# ---------------------------------------------------------------------------------------
# neuron specifications (plain data, no Keras)
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ActivationSpec:
    """How one neuron layer is trained: which rate curve, its parameters and its scale.

    Attributes
    ----------
    kind
        ``"loihi-relu"``, ``"loihi-lif"`` (staircase forward, smooth backward), ``"relu"``
        or ``"lif"`` (ideal rate curves, forward = backward).
    scale
        ``scale_firing_rates`` of the layer (> 0).
    dt
        Time step in seconds.
    amplitude
        The neuron type's ``amplitude`` (the layer outputs ``amplitude / scale`` per Hz).
    tau_rc, tau_ref
        For the LIF kinds, the time constants *as used*: discretized by Loihi's 12-bit
        decay and whole-step refractory period for ``"loihi-lif"``, as given for ``"lif"``.
    """

    kind: str
    scale: float
    dt: float = 0.001
    amplitude: float = 1.0
    tau_rc: float = 0.02
    tau_ref: float = 0.002

    @classmethod
    def from_neuron(cls, neuron: Any, scale: float, dt: float) -> "ActivationSpec":
        """The spec for a neuron type (an instance, a config name or a CLI alias)."""
        try:
            n = neuron_from_config(neuron)
        except (TypeError, ValueError) as exc:
            raise ConfigError([("neuron", str(exc))]) from None
        if not (isinstance(scale, (int, float, np.floating, np.integer))
                and not isinstance(scale, bool) and math.isfinite(scale) and scale > 0):
            raise ConfigError([("scale_firing_rates", f"must be a positive number, got {scale!r}")])
        if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
            raise ConfigError([("dt", f"must be a positive number of seconds, got {dt!r}")])
        scale, dt = float(scale), float(dt)
        if isinstance(n, LoihiSpikingRectifiedLinear):
            return cls("loihi-relu", scale, dt, n.amplitude)
        if isinstance(n, LoihiLIF):
            return cls("loihi-lif", scale, dt, n.amplitude, discretize_tau_rc(n.tau_rc, dt),
                       discretize_tau_ref(n.tau_ref, dt))
        if isinstance(n, LIFRate):  # LIF and LIFRate: the ideal rate curve
            return cls("lif", scale, dt, n.amplitude, n.tau_rc, n.tau_ref)
        if isinstance(n, RectifiedLinear):  # RectifiedLinear and SpikingRectifiedLinear
            return cls("relu", scale, dt, n.amplitude)
        raise ConfigError([("neuron", f"cannot train with {type(n).__name__} neurons")])

    @property
    def max_rate(self) -> float:
        """Highest rate in Hz (one spike per step, or per refractory period)."""
        if self.kind == "loihi-relu":
            return 1.0 / self.dt
        if self.kind == "loihi-lif":
            return 1.0 / (self.tau_ref + self.dt)
        if self.kind == "lif" and self.tau_ref > 0:
            return 1.0 / self.tau_ref
        return math.inf


@dataclass(frozen=True)
class RateBand:
    """Firing-rate regularisation: penalise neurons whose mean rate leaves ``[low, high]`` Hz.

    The penalty of a layer is ``weight · mean_i(d_i²)`` with ``d_i`` the distance of neuron
    ``i``'s mean rate over the batch (of the smooth, differentiable rate) from the band,
    divided by ``high``. Too high rates saturate at one spike per step and quantize
    coarsely; too low rates need long presentations to carry a value.
    """

    low: float
    high: float
    weight: float = 1.0

    @classmethod
    def parse(cls, value: Any) -> "RateBand | None":
        if value is None or isinstance(value, RateBand):
            return value
        try:
            values = [float(v) for v in value]
        except (TypeError, ValueError):
            values = []
        if len(values) not in (2, 3) or not all(math.isfinite(v) for v in values):
            raise ConfigError([("rate_regularization", f"expected (low_hz, high_hz) or (low_hz, "
                                f"high_hz, weight), got {value!r}")])
        low, high, *rest = values
        weight = rest[0] if rest else 1.0
        if not 0 <= low < high or weight < 0:
            raise ConfigError([("rate_regularization", f"expected 0 <= low < high and weight "
                                f">= 0, got low={low:g}, high={high:g}, weight={weight:g}")])
        return cls(low, high, weight)


# ---------------------------------------------------------------------------------------
# the activation (Keras, created lazily)
# ---------------------------------------------------------------------------------------

def _import_keras():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras  # noqa: PLC0415 (lazy on purpose: TensorFlow takes seconds to import)

    return keras


def _rate_functions(ops):
    """``(staircase, smooth)`` rate functions in Hz (amplitude 1) of a current ``J``.

    ``staircase(J64, spec)`` is the exact Loihi rate, computed in float64 in the operation
    order of :mod:`loihi_core.neurons` (the ``ceil`` turns any round-off into a whole step,
    so float32 would disagree with the reference near plateau edges). ``smooth(J, spec)``
    is the differentiable surrogate in the input dtype. Where ``J`` is below threshold the
    unused branch sees a safe dummy current, so no inf/NaN enters the gradient.
    """

    def staircase(J, s: ActivationSpec):
        if s.kind == "loihi-relu":
            pos = J > 0
            period = 1.0 / ops.where(pos, J, 1.0)
        else:  # loihi-lif
            j = J - 1.0
            pos = j > 0
            period = s.tau_ref + s.tau_rc * ops.log1p(1.0 / ops.where(pos, j, 1.0))
        return ops.where(pos, (1.0 / s.dt) / ops.ceil(period / s.dt), ops.zeros_like(J))

    def smooth(J, s: ActivationSpec):
        if s.kind in ("loihi-relu", "relu"):
            Jp = ops.relu(J)
            # A·J/(1 + J·dt/2): a half-step refractory period puts the curve through the
            # middle of the staircase (which always lies at or below J)
            return Jp if s.kind == "relu" else Jp / (1.0 + (0.5 * s.dt) * Jp)
        pos = J > 1
        j = ops.where(pos, ops.maximum(J - 1.0, _EPS), 1.0)
        tau_ref = s.tau_ref + (0.5 * s.dt if s.kind == "loihi-lif" else 0.0)
        rate = 1.0 / (tau_ref + s.tau_rc * ops.log1p(1.0 / j))
        return ops.where(pos, rate, ops.zeros_like(J))

    return staircase, smooth


@functools.lru_cache(maxsize=None)
def _activation_class():
    """The Keras layer class, defined on first use so that Keras loads lazily."""
    keras = _import_keras()
    ops = keras.ops
    staircase, smooth = _rate_functions(ops)

    class LoihiRateActivation(keras.layers.Layer):
        """Loihi neuron rates as a Keras activation (see :func:`loihi_activation`)."""

        def __init__(self, spec: ActivationSpec, band: RateBand | None = None, **kwargs):
            super().__init__(**kwargs)
            self.spec = spec
            self.band = band

        def call(self, x):
            s = self.spec
            out_scale = s.amplitude / s.scale  # output per Hz
            J = x * s.scale
            hz_smooth = smooth(J, s)
            if s.kind in ("loihi-relu", "loihi-lif"):
                J64 = ops.cast(x, "float64") * s.scale
                hz_loihi = ops.cast(staircase(J64, s), x.dtype)
                out = (hz_smooth + ops.stop_gradient(hz_loihi - hz_smooth)) * out_scale
            else:
                out = hz_smooth * out_scale
            if self.band is not None:
                self.add_loss(self._band_penalty(hz_smooth))
            return out

        def _band_penalty(self, hz):
            b = self.band
            mean = ops.mean(hz, axis=0)  # each neuron's mean rate over the batch
            dist = (ops.relu(b.low - mean) + ops.relu(mean - b.high)) / b.high
            return b.weight * ops.mean(ops.square(dist))

        def compute_output_shape(self, input_shape):
            return input_shape

        def get_config(self):
            cfg = super().get_config()
            cfg.update(spec=vars(self.spec).copy(),
                       band=None if self.band is None else vars(self.band).copy())
            return cfg

        @classmethod
        def from_config(cls, config):
            config = dict(config)
            spec = ActivationSpec(**config.pop("spec"))
            band = config.pop("band", None)
            return cls(spec, None if band is None else RateBand(**band), **config)

    return LoihiRateActivation


def loihi_activation(neuron: Any = "loihi", scale_firing_rates: float = DEFAULT_SCALE,
                     dt: float = 0.001, rate_regularization: Any = None,
                     name: str | None = None) -> keras.layers.Layer:
    """A Keras layer computing a Loihi neuron's rate: ``rate(scale · x) · amplitude / scale``.

    Parameters
    ----------
    neuron
        ``"loihi"`` (LoihiSpikingRectifiedLinear), ``"loihi-lif"``, ``"relu"``, any
        tuned-config neuron form, or a :class:`~loihi_core.neurons.NeuronType`.
    scale_firing_rates
        Input gain and inverse output amplitude (NengoDL semantics).
    dt
        Time step (s): sets the staircase's step and the one-spike-per-step ceiling.
    rate_regularization
        ``(low_hz, high_hz[, weight])``: adds the :class:`RateBand` penalty with
        ``add_loss``; ``None`` for none.
    name
        The Keras layer name.

    Notes
    -----
    Loihi kinds: the forward pass equals :meth:`NeuronType.rates_from_current` of
    :mod:`loihi_core.neurons` (computed in float64, returned in the input dtype); the
    gradient is that of :meth:`NeuronType.smooth_rates`, e.g. ``A/(1 + dt·J/2)²`` for the
    relu (``J = scale · x``). Ideal kinds: forward and gradient of the ideal rate.
    """
    spec = ActivationSpec.from_neuron(neuron, scale_firing_rates, dt)
    return _activation_class()(spec, RateBand.parse(rate_regularization), name=name)


# ---------------------------------------------------------------------------------------
# the twin model: the original layers, with the converter's relus swapped out
# ---------------------------------------------------------------------------------------

@dataclass
@dataclass
class _TwinStep:
    """One Keras layer call of the twin graph.

    ``clone`` is the cloned layer (``None`` for a neuron-only step), ``inputs`` the names of
    the tensors it reads, ``neuron`` the neuron layer it closes (after the clone, if any),
    ``leaky`` the slope of a leaky relu built as ``neuron − leaky·<neuron>_neg``.
    """

    name: str
    clone: Any
    inputs: list[str]
    neuron: str | None = None
    leaky: float | None = None


@dataclass
class _Twin:
    """The model as a graph of cloned layers with its neuron layers (the converter's) marked.

    ``steps`` are in topological order; ``clones`` maps every original layer name to its
    clone (weights copied). The same graph runs with Loihi rate activations
    (:func:`train`) or unrolled over spiking steps (:func:`finetune_spiking`).
    """

    input_shape: tuple[int, ...]
    input_name: str
    neuron_names: list[str]
    steps: list[_TwinStep]
    output_name: str
    clones: dict[str, Any]
    softmax_output: bool
    n_outputs: int | None

    def run(self, x, neuron_fn, training=None):
        """Evaluate the graph on ``x``; ``neuron_fn(name, u)`` gives a neuron layer's output
        from its input ``u``."""
        keras = _import_keras()
        tensors = {self.input_name: x}
        for step in self.steps:
            args = [tensors[i] for i in step.inputs]
            h = args[0] if len(args) == 1 else args
            if step.clone is not None:
                # BatchNormalization keeps its moving statistics (the converter folds them
                # into the weights) instead of normalising per batch
                mode = (False if isinstance(step.clone, keras.layers.BatchNormalization)
                        else training)
                h = step.clone(h, training=mode) if training is not None else step.clone(h)
            if step.neuron is not None:
                if step.leaky is not None:
                    h = (neuron_fn(step.neuron, h)
                         - step.leaky * neuron_fn(f"{step.neuron}_neg", -h))
                else:
                    h = neuron_fn(step.neuron, h)
            tensors[step.name] = h
        return tensors[self.output_name]


def _load_keras_model(model_or_path: Any):
    from .graph import read_keras_file

    if isinstance(model_or_path, (str, os.PathLike)):
        return read_keras_file(model_or_path)
    keras = _import_keras()
    if not isinstance(model_or_path, keras.Model):
        raise TypeError(f"expected a keras.Model or a path to a '.keras' file, got "
                        f"{type(model_or_path).__name__}")
    return model_or_path


def _build_twin(kmodel) -> _Twin:
    """Clone ``kmodel``'s layers and mark the neuron layers the converter would make.

    Raises :class:`ConversionError` when the model cannot be converted (training for
    Loihi only makes sense for a model that converts).
    """
    from .convert import plan_conversion
    from .converter.planner import parse_call
    from .graph import graph_from_model, model_nodes

    graph = graph_from_model(kmodel)
    plan = plan_conversion(graph)
    neuron_names = [p.name for p in plan.neuron_layers]
    roles = {p.name: p.role for p in plan.neuron_layers}
    steps: list[_TwinStep] = []
    clones: dict[str, Any] = {}
    for layer, _node in model_nodes(kmodel):
        node = graph[layer.name]
        if node.kind == "input":
            continue
        closes = layer.name in roles
        leaky = None
        if closes and roles[layer.name] == "leaky_positive":
            act = node.activation
            leaky = 0.2 if act == "leaky_relu" else parse_call(act).get("negative_slope", 0.3)
        if closes and node.kind == "activation":  # a ReLU / Activation layer: neurons replace it
            steps.append(_TwinStep(layer.name, None, list(node.inputs), layer.name, leaky))
            continue
        cfg = layer.get_config()
        if closes:  # Conv/Dense(activation="relu"): keep it linear, the neurons follow
            cfg["activation"] = "linear"
        clone = type(layer).from_config(cfg)
        clones[layer.name] = clone
        steps.append(_TwinStep(layer.name, clone, list(node.inputs),
                               layer.name if closes else None, leaky))
    out_shape = tuple(graph[graph.output_names[0]].output_shape)
    return _Twin(input_shape=tuple(plan.input_shape), input_name=plan.input_name,
                 neuron_names=neuron_names, steps=steps, output_name=graph.output_names[0],
                 clones=clones, softmax_output=plan.readout.activation == "softmax",
                 n_outputs=out_shape[0] if len(out_shape) == 1 else None)


def _twin_model(twin: _Twin, activations: Mapping[str, Any], kmodel):
    """The functional twin with ``activations`` at the neuron layers; copies the weights in."""
    keras = _import_keras()
    x = keras.Input(twin.input_shape, name=twin.input_name)
    h = twin.run(x, lambda name, u: activations[name](u))
    model = keras.Model(x, h, name=f"{kmodel.name}_loihi_twin")
    for name, clone in twin.clones.items():
        clone.set_weights(kmodel.get_layer(name).get_weights())
    return model


def _plain_copy(kmodel, twin: _Twin):
    """A fresh, uncompiled copy of the original architecture holding the twin's weights.

    Rebuilt from the model's config rather than with ``keras.models.clone_model``, which
    also compiles the copy when the original was compiled: the saved file would then
    carry a stale optimizer state (three times the size of the weights).
    """
    result = type(kmodel).from_config(kmodel.get_config())
    for name, clone in twin.clones.items():
        result.get_layer(name).set_weights(clone.get_weights())
    return result


def _unique_name(base: str, taken: set[str]) -> str:
    name, i = base, 1
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    taken.add(name)
    return name


def _per_layer(value: Any, names: list[str], what: str) -> dict[str, Any]:
    """A value per neuron layer from one value or a mapping that must name every layer."""
    if not isinstance(value, Mapping) or (what == "neuron" and "type" in value):
        return {name: value for name in names}  # one value (a neuron object has a "type")
    unknown = [k for k in value if k not in names]
    missing = [n for n in names if n not in value]
    problems = [(f"{what}.{k}", f"the model has no neuron layer {k!r}; neuron layers are: "
                 f"{', '.join(names)}") for k in unknown]
    problems += [(what, f"no value for neuron layer {n!r}; give all of: {', '.join(names)}")
                 for n in missing]
    if problems:
        raise ConfigError(problems)
    return {name: value[name] for name in names}


def settings_from_config(model_or_path: Any,
                         config: Any) -> tuple[dict[str, Any], dict[str, float], float]:
    """``(neurons, scales, dt)`` per neuron layer from a tuned config, for :func:`train`.

    Each layer gets its effective settings (the config's defaults with its overrides).
    """
    from .config import load_config
    from .convert import convert

    cfg = load_config(config)
    network = convert(_load_keras_model(model_or_path), cfg)  # validates the config
    neurons = {name: layer.neuron for name, layer in network.layers.items()}
    scales = {name: layer.gain for name, layer in network.layers.items()}
    return neurons, scales, float(cfg.dt)


# ---------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------

def set_seeds(seed: int) -> None:
    """Seed Python's, NumPy's and Keras/TensorFlow's random generators (global state)."""
    keras = _import_keras()
    keras.utils.set_random_seed(int(seed))


def _check_training_args(epochs: int, batch_size: int, learning_rate: float,
                         validation_split: float) -> None:
    problems = []
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
        problems.append(("epochs", f"must be an integer >= 1, got {epochs!r}"))
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        problems.append(("batch_size", f"must be an integer >= 1, got {batch_size!r}"))
    if not (isinstance(learning_rate, (int, float)) and math.isfinite(learning_rate)
            and learning_rate > 0):
        problems.append(("learning_rate", f"must be a positive number, got {learning_rate!r}"))
    if not (isinstance(validation_split, (int, float)) and 0 <= validation_split < 1):
        problems.append(("validation_split", f"must be in [0, 1), got {validation_split!r}"))
    if problems:
        raise ConfigError(problems)


def _check_data(twin: _Twin, images: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    images = check_images(images, where="images", input_shape=twin.input_shape)
    if labels is None:
        raise DataError("labels are required for training (integer class indices)")
    labels = check_labels(labels, len(images), where="labels", n_classes=twin.n_outputs)
    return images, labels


def _compile(model, twin: _Twin, learning_rate: float) -> None:
    keras = _import_keras()
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=not twin.softmax_output),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        jit_compile=False)


def _history(hist, seconds: float) -> dict[str, Any]:
    out: dict[str, Any] = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    out["seconds"] = seconds
    return out


def _rate_twin(kmodel, neuron: Any, scale_firing_rates: Any, dt: float,
               rate_regularization: Any) -> tuple[_Twin, Any]:
    """``(twin, functional twin model)`` with a :func:`loihi_activation` per neuron layer."""
    band = RateBand.parse(rate_regularization)
    twin = _build_twin(kmodel)
    neurons = _per_layer(neuron, twin.neuron_names, "neuron")
    scales = _per_layer(scale_firing_rates, twin.neuron_names, "scale_firing_rates")
    taken = {layer.name for layer in kmodel.layers}
    activations = {}
    for name in twin.neuron_names:
        spec = ActivationSpec.from_neuron(neurons[name], scales[name], dt)
        act_name = name if name not in twin.clones else _unique_name(f"{name}_loihi", taken)
        activations[name] = _activation_class()(spec, band, name=act_name)
    return twin, _twin_model(twin, activations, kmodel)


def rate_model(model_or_path: Any, *, neuron: Any = "loihi",
               scale_firing_rates: float | Mapping[str, float] = DEFAULT_SCALE,
               dt: float = 0.001, rate_regularization: Any = None) -> keras.Model:
    """A Keras model computing ``model`` with Loihi neuron rates at its neuron layers.

    The same layers (copies, with the same weights) where every relu the converter turns
    into neurons is a :func:`loihi_activation`; this is the model :func:`train` trains.
    Its ``predict`` is the converted network's rate mode
    (:func:`loihi_core.simulate.run_rates`) computed by Keras in float32. A
    ``ReLU``/``Activation("relu")`` neuron layer keeps its name; an in-layer relu becomes a
    layer named ``<layer>_loihi``. Parameters as for :func:`train`.
    """
    return _rate_twin(_load_keras_model(model_or_path), neuron, scale_firing_rates, dt,
                      rate_regularization)[1]


def train(model_or_path: Any, images: np.ndarray, labels: np.ndarray, *,
          neuron: Any = "loihi", scale_firing_rates: float | Mapping[str, float] = DEFAULT_SCALE,
          epochs: int = 5, batch_size: int = 32, learning_rate: float = 1e-3,
          validation_split: float = 0.1, rate_regularization: Any = None, dt: float = 0.001,
          seed: int = 0, verbose: int = 0) -> TrainResult:
    """Train a Keras model through Loihi neuron rates; return a plain model and the history.

    Every relu that :func:`loihi_core.convert.convert` turns into a neuron layer
    (``activation="relu"`` in any spelling, ``ReLU()``, ``Activation("relu")``) is replaced,
    in an internal twin model (:func:`rate_model`), by :func:`loihi_activation`; the twin
    is trained and its weights are copied into a fresh copy of the original architecture.

    Parameters
    ----------
    model_or_path
        A ``keras.Model`` (not modified) or a ``.keras`` path; it must be convertible.
    images, labels
        Training images ``(n, *input_shape)`` (uint8 taken as 0-255 pixels) and integer
        class labels ``(n,)``.
    neuron
        ``"loihi"``, ``"loihi-lif"``, ``"relu"`` (plain training), a tuned-config neuron,
        or a mapping from every neuron-layer name to one of those.
    scale_firing_rates
        One scale for all neuron layers or a mapping naming every one (e.g. calibrated).
    epochs, batch_size, learning_rate
        Adam optimisation settings.
    validation_split
        Fraction of the data (the last images, as Keras takes it) held out for
        ``val_loss``/``val_accuracy``; 0 for none.
    rate_regularization
        ``(low_hz, high_hz[, weight])`` band for the neurons' mean firing rates
        (:class:`RateBand`), or ``None``.
    dt
        Simulation time step (s) of the Loihi rates.
    seed
        Seeds Python, NumPy and Keras/TensorFlow (the batch order): the same seed and
        data give the same weights.
    verbose
        Keras ``fit`` verbosity (0 silent, 2 one line per epoch).

    Returns
    -------
    TrainResult
        ``(model, history)``.

    Raises
    ------
    ConversionError
        The model cannot be converted to a spiking network.
    ConfigError, DataError
        Bad settings or data (named in the message).
    """
    _check_training_args(epochs, batch_size, learning_rate, validation_split)
    kmodel = _load_keras_model(model_or_path)
    twin, model = _rate_twin(kmodel, neuron, scale_firing_rates, dt, rate_regularization)
    images, labels = _check_data(twin, images, labels)
    set_seeds(seed)
    _compile(model, twin, learning_rate)
    start = time.perf_counter()
    hist = model.fit(images, labels, epochs=int(epochs), batch_size=int(batch_size),
                     validation_split=float(validation_split), shuffle=True, verbose=verbose)
    seconds = time.perf_counter() - start
    return TrainResult(_plain_copy(kmodel, twin), _history(hist, seconds))


# ---------------------------------------------------------------------------------------
# spiking-aware fine-tuning
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _SpikingLayer:
    """The converter's settings of one neuron layer, as the unrolled network uses them."""

    spec: ActivationSpec
    decay: float | None  # lowpass a = exp(-dt/tau) on connections out of it; None = no filter


def _spiking_layers(kmodel, twin: _Twin, config: Any) -> tuple[dict[str, _SpikingLayer], float]:
    from .config import load_config
    from .convert import convert

    cfg = load_config(config)
    network = convert(kmodel, cfg)
    layers = {}
    for name in twin.neuron_names:
        layer = network.layers[name]
        if not isinstance(layer.neuron, LoihiSpikingRectifiedLinear):
            raise ConversionError(
                f"finetune_spiking simulates LoihiSpikingRectifiedLinear neurons only; neuron "
                f"layer {name!r} has {type(layer.neuron).__name__}: fine-tune it with the "
                f"rate-based train() instead", layer=name)
        spec = ActivationSpec.from_neuron(layer.neuron, layer.gain, network.dt)
        decay = None if layer.synapse is None else math.exp(-network.dt / layer.synapse)
        layers[name] = _SpikingLayer(spec, decay)
    return layers, float(network.dt)


def _unrolled_model(twin: _Twin, layers: dict[str, _SpikingLayer], steps: int, loss_steps: int):
    """A Keras model running ``steps`` spiking steps; outputs the mean readout of the last
    ``loss_steps`` steps. Shares the twin's layers (so training it trains them)."""
    keras = _import_keras()
    ops = keras.ops
    _, smooth = _rate_functions(ops)

    class SpikingUnroll(keras.Model):
        def __init__(self):
            super().__init__(name="spiking_unroll")
            self.all_layers = list(twin.clones.values())

        def call(self, x, training=None):
            voltage: dict[str, Any] = {}
            filt: dict[str, Any] = {}
            readouts = []
            for t in range(steps):
                out: dict[str, Any] = {}

                def neuron(name, u):
                    sl = layers[name]
                    out[name] = self._neuron_step(name, sl.spec, u, voltage)
                    if sl.decay is None:
                        return out[name]
                    if name not in filt:
                        filt[name] = ops.zeros_like(out[name])
                    # a filtered connection delivers the previous step's filter value
                    return filt[name]

                readout = twin.run(x, neuron, training)
                if t >= steps - loss_steps:
                    readouts.append(readout)
                for name in out:  # synapses update at the end of the step (nengo timing)
                    a = layers[name].decay
                    if a is not None:
                        filt[name] = a * filt[name] + (1.0 - a) * out[name]
            return ops.mean(ops.stack(readouts, axis=0), axis=0)

        def _neuron_step(self, name, spec, u, voltage):
            """Loihi relu step (v += J·dt; spike when v > 1; reset to 0) with the smooth
            rate's gradient (straight-through)."""
            J = u * spec.scale
            v = voltage.get(name)
            v = ops.stop_gradient(J) * spec.dt + (0.0 if v is None else v)
            spiked = v > 1.0
            voltage[name] = ops.where(spiked, ops.zeros_like(v), ops.relu(v))
            amplitude = spec.amplitude / spec.scale
            spikes = ops.cast(spiked, u.dtype) * (amplitude / spec.dt)
            rate = smooth(J, spec) * amplitude
            return rate + ops.stop_gradient(spikes - rate)

    return SpikingUnroll()


def _spiking_setup(model_or_path, config, steps, loss_steps):
    for what, value in (("steps", steps), ("loss_steps", loss_steps)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ConfigError([(what, f"must be an integer >= 1, got {value!r}")])
    if loss_steps > steps:
        raise ConfigError([("loss_steps", f"must be <= steps ({steps}), got {loss_steps}")])
    kmodel = _load_keras_model(model_or_path)
    twin = _build_twin(kmodel)
    layers, dt = _spiking_layers(kmodel, twin, config)
    # build the clones (and copy the weights in) through the functional twin
    identity = {name: _import_keras().layers.Identity() for name in twin.neuron_names}
    _twin_model(twin, identity, kmodel)
    unrolled = _unrolled_model(twin, layers, int(steps), int(loss_steps))
    return kmodel, twin, unrolled


def spiking_model(model_or_path: Any, config: Any = None, *, steps: int = 20,
                  loss_steps: int = 5) -> keras.Model:
    """A Keras model that runs ``steps`` steps of the converted spiking network.

    The network is what :func:`loihi_core.convert.convert` makes of ``model`` with
    ``config``, simulated like :func:`loihi_core.simulate.run_spiking` (each image from a
    zero state, nengo's synapse timing); the output is the readout averaged over the last
    ``loss_steps`` steps (``loss_steps=1``: ``run_spiking(...).output[:, -1]``). Its
    gradient is the straight-through smooth-rate gradient that :func:`finetune_spiking`
    trains with. Only LoihiSpikingRectifiedLinear neurons are supported.
    """
    return _spiking_setup(model_or_path, config, steps, loss_steps)[2]


def evaluate_spiking(model_or_path: Any, images: np.ndarray, labels: np.ndarray, *,
                     config: Any = None, steps: int = 20, loss_steps: int = 5,
                     batch_size: int = 64) -> dict[str, float]:
    """Loss and accuracy of the unrolled spiking network that :func:`finetune_spiking` trains.

    The prediction is the readout averaged over the last ``loss_steps`` of ``steps``
    (each image from a zero state), as in training.
    """
    kmodel, twin, unrolled = _spiking_setup(model_or_path, config, steps, loss_steps)
    images, labels = _check_data(twin, images, labels)
    _compile(unrolled, twin, 1e-3)
    loss, accuracy = unrolled.evaluate(images, labels, batch_size=int(batch_size), verbose=0)
    return {"loss": float(loss), "accuracy": float(accuracy)}


def finetune_spiking(model_or_path: Any, images: np.ndarray, labels: np.ndarray, *,
                     config: Any = None, steps: int = 20, loss_steps: int = 5, epochs: int = 1,
                     batch_size: int = 32, learning_rate: float = 1e-4,
                     validation_split: float = 0.0, seed: int = 0,
                     verbose: int = 0) -> TrainResult:
    """Fine-tune a model through a few unrolled steps of its spiking network.

    The network is the converted one (:func:`loihi_core.convert.convert` with ``config``:
    per-layer ``scale_firing_rates``, synapses, ``dt``), simulated as
    :func:`loihi_core.simulate.run_spiking` does, each image from a zero state:

    * Loihi relu neurons: ``v += J·dt``; a spike when ``v > 1``; reset to 0; the output is
      ``spikes · amplitude / dt`` with ``J = scale · x`` and ``amplitude = 1/scale``;
    * a lowpass ``y ← a·y + (1 − a)·x``, ``a = exp(−dt/τ)``, on connections out of layers
      with a synapse, updated at the end of a step (each filtered hop is one step late).

    The backward pass uses the smooth rate's gradient at every step (straight-through:
    ``out = smooth + stop_gradient(spikes − smooth)``) and flows through the synapses;
    the loss is the cross-entropy of the readout averaged over the last ``loss_steps``.

    Parameters
    ----------
    model_or_path
        A convertible ``keras.Model`` (not modified) or ``.keras`` path, usually already
        trained with :func:`train`.
    images, labels
        Training data, as for :func:`train`.
    config
        The tuned config (path, dict, :class:`~loihi_core.config.TunedConfig` or ``None``
        for the defaults); all neuron layers must be LoihiSpikingRectifiedLinear.
    steps, loss_steps
        Steps simulated per image, and how many of the last ones the loss reads.
    epochs, batch_size, learning_rate, validation_split, seed, verbose
        As for :func:`train` (a small learning rate: this only adjusts a trained model).

    Returns
    -------
    TrainResult
        A plain model with the original architecture, and the history.
    """
    _check_training_args(epochs, batch_size, learning_rate, validation_split)
    kmodel, twin, unrolled = _spiking_setup(model_or_path, config, steps, loss_steps)
    images, labels = _check_data(twin, images, labels)
    set_seeds(seed)
    _compile(unrolled, twin, learning_rate)
    start = time.perf_counter()
    hist = unrolled.fit(images, labels, epochs=int(epochs), batch_size=int(batch_size),
                        validation_split=float(validation_split), shuffle=True, verbose=verbose)
    seconds = time.perf_counter() - start
    return TrainResult(_plain_copy(kmodel, twin), _history(hist, seconds))
