"""Per-layer verification of a converted network against its Keras model.

:func:`verify` answers "which layer breaks?": for every neuron layer it compares the Keras
activations (the output of the Keras layer of the same name) with

* the converted network in **rate mode** with its configured neurons (Loihi's quantized
  rates) and with the ideal rate neurons (which must match Keras to round-off unless a
  substitution was made: that column tells conversion errors from quantization);
* the **float spiking** simulation: the correlation between the Keras activations and the
  mean spiking output, and the firing rates (too low rates = too few spikes to carry the
  value; scale them up with ``scale_firing_rates``).

When max pooling was replaced by average pooling, the report also shows the cost: Keras
(with max pooling) versus the converted network (average pooling, ideal rate neurons):
the agreement of their predictions and, given labels, both accuracies.

The Keras activations need not come from Keras: when the conversion is exact (relu-family
neurons everywhere, no max → average pooling), the converted network with ideal rate
neurons computes every Keras layer's output to float round-off (the converter's tests hold
it to that on every supported architecture), so :func:`verify` takes them from there and
never imports TensorFlow (seconds of start-up and ~0.5 GB). Otherwise, or with
``reference="keras"``, it runs the Keras model.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .network import SpikingNetwork
from .simulate import run_rates, run_spiking


@dataclass
class LayerCheck:
    """Agreement of one neuron layer (or the output) with Keras.

    Attributes
    ----------
    name, shape, on_chip
        The layer (``on_chip`` is ``None`` for the output).
    rate_max_abs_error, rate_mean_abs_error
        Keras activations vs rate mode with the configured neurons.
    ideal_max_abs_error
        Keras activations vs rate mode with ideal (unquantized) rate neurons (``nan`` when
        the ideal rate mode itself was the reference: see ``VerificationReport.reference``).
    keras_max
        Largest Keras activation (to read the errors against).
    spike_correlation
        Pearson correlation (over images × neurons) of Keras activations with the mean
        float-spiking output; ``nan`` when either is constant.
    spike_mean_rate_hz, spike_max_rate_hz, silent_fraction
        Firing rates in the spiking run (mean, max over neurons and images) and the
        fraction of neurons that never spiked for any image.
    """

    name: str
    shape: tuple[int, ...]
    on_chip: bool | None
    rate_max_abs_error: float
    rate_mean_abs_error: float
    ideal_max_abs_error: float
    keras_max: float
    spike_correlation: float = math.nan
    spike_mean_rate_hz: float = math.nan
    spike_max_rate_hz: float = math.nan
    silent_fraction: float = math.nan


@dataclass
class PoolingCost:
    """What replacing max pooling by average pooling costs (rate mode, ideal neurons)."""

    substituted: list[str]
    agreement: float  # fraction of images where Keras and the converted net predict alike
    keras_accuracy: float | None = None
    converted_accuracy: float | None = None


@dataclass
class VerificationReport:
    """Result of :func:`verify`: one :class:`LayerCheck` per neuron layer, plus the output."""

    layers: list[LayerCheck]
    output: LayerCheck
    n_images: int
    steps: int
    rate_agreement: float  # argmax agreement Keras vs rate mode (configured neurons)
    spike_agreement: float  # argmax agreement Keras vs spiking output at the last step
    keras_accuracy: float | None = None
    rate_accuracy: float | None = None
    spike_accuracy: float | None = None
    pooling: PoolingCost | None = None
    notes: list[str] = field(default_factory=list)
    #: where the Keras activations came from: ``"keras"`` (the Keras model's own forward
    #: pass) or ``"ideal rate mode"`` (the exact conversion with ideal neurons; Keras not run)
    reference: str = "keras"

    def worst_layer(self) -> str | None:
        """The first layer whose spiking correlation drops below 0.9 (``None``: all fine)."""
        for layer in self.layers:
            if not (layer.spike_correlation >= 0.9):
                return layer.name
        return None

    def to_dict(self) -> dict:
        """JSON-able dict (NaN becomes ``None``)."""
        return _jsonable(asdict(self))

    def to_table(self) -> str:
        """A plain-text table for the CLI and logs."""
        head = (f"{'layer':<16} {'shape':<14} {'chip':<4} {'rate max err':>12} "
                f"{'rate mean err':>13} {'ideal err':>9} {'keras max':>9} "
                f"{'spike corr':>10} {'mean Hz':>8} {'max Hz':>8} {'silent':>6}")
        lines = [f"Verification on {self.n_images} images, {self.steps} steps each"]
        if self.reference != "keras":
            lines.append("Keras activations from the exact conversion with ideal rate neurons "
                         "(equal to Keras to float round-off; Keras not run)")
        lines += [head, "-" * len(head)]
        for c in [*self.layers, self.output]:
            chip = "-" if c.on_chip is None else ("yes" if c.on_chip else "no")
            lines.append(
                f"{c.name[:16]:<16} {str(tuple(c.shape))[:14]:<14} {chip:<4} "
                f"{c.rate_max_abs_error:>12.4g} {c.rate_mean_abs_error:>13.4g} "
                f"{_fmt(c.ideal_max_abs_error, 9, '.3g')} {c.keras_max:>9.4g} "
                f"{_fmt(c.spike_correlation, 10, '.3f')} "
                f"{_fmt(c.spike_mean_rate_hz, 8, '.1f')} {_fmt(c.spike_max_rate_hz, 8, '.1f')} "
                f"{_fmt(c.silent_fraction, 6, '.0%')}")
        lines.append("")
        lines.append(f"prediction agreement with Keras: rate mode {self.rate_agreement:.1%}, "
                     f"spiking {self.spike_agreement:.1%}")
        if self.keras_accuracy is not None:
            lines.append(f"accuracy: Keras {self.keras_accuracy:.1%}, rate mode "
                         f"{self.rate_accuracy:.1%}, spiking {self.spike_accuracy:.1%}")
        if self.pooling is not None:
            p = self.pooling
            line = (f"max → average pooling ({', '.join(p.substituted)}): predictions agree with "
                    f"Keras on {p.agreement:.1%} of images")
            if p.keras_accuracy is not None:
                line += (f"; accuracy {p.keras_accuracy:.1%} (Keras, max pooling) → "
                         f"{p.converted_accuracy:.1%} (converted, average pooling)")
            lines.append(line)
        worst = self.worst_layer()
        if worst is not None:
            lines.append(f"first layer with spike correlation < 0.9: {worst!r} (raise its "
                         f"scale_firing_rates or presentation steps)")
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)


def _fmt(value: float, width: int, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"{'-':>{width}}"
    return f"{value:>{width}{spec}}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    if a.size < 2 or a.std() == 0 or b.std() == 0:
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])


def keras_activations(model: Any, names: list[str], images: np.ndarray,
                      batch_size: int = 256) -> dict[str, np.ndarray]:
    """Outputs of the Keras layers ``names`` (and nothing else) for ``images``.

    Uses the tensors of *this* graph's nodes (not ``layer.output``, which a reloaded
    Sequential's layers answer from another call).
    """
    from .graph import _import_keras, functional_view, model_nodes

    keras = _import_keras()
    functional = functional_view(model)
    tensors = {layer.name: node.output_tensors[0] for layer, node in model_nodes(model)}
    missing = [n for n in names if n not in tensors]
    if missing:
        raise ValueError(f"the Keras model has no layers {missing}; was the network converted "
                         f"from another model?")
    sub = keras.Model(functional.inputs, [tensors[n] for n in names])
    outs = sub.predict(np.asarray(images, np.float32), batch_size=batch_size, verbose=0)
    if len(names) == 1:
        outs = [outs]
    return {n: np.asarray(o, np.float64) for n, o in zip(names, outs)}


def _accuracy(pred: np.ndarray, labels: np.ndarray | None) -> float | None:
    return None if labels is None else float(np.mean(pred == labels))


REFERENCES = ("auto", "keras")


def verify(model: Any, network: SpikingNetwork, images: np.ndarray, steps: int | None = None,
           labels: np.ndarray | None = None, *, reference: str = "auto") -> VerificationReport:
    """Compare ``network`` with its Keras ``model`` layer by layer.

    Parameters
    ----------
    model
        The ``keras.Model`` (or ``.keras`` path, or the ``LayerGraph`` read from one) the
        network was converted from.
    network
        The converted network.
    images
        ``(n, *input_shape)`` test inputs.
    steps
        Presentation steps of the spiking run (default ``network.presentation_steps``).
    labels
        Optional integer class labels, to report accuracies.
    reference
        ``"auto"`` (default): the Keras activations come from the converted network with
        ideal rate neurons when that is exact for it (:func:`exact_reference`), without
        TensorFlow; else from Keras. ``"keras"``: always run the Keras model.
    """
    from .arguments import as_network
    from .arguments import presentation_steps as _steps
    from .errors import ArgumentError
    from .inputs import check_labels, network_images

    if reference not in REFERENCES:
        raise ArgumentError(f"reference: expected one of {', '.join(map(repr, REFERENCES))}, "
                            f"got {reference!r}", "reference")
    _check_model_kind(model)
    network = as_network(network, "network")
    exact = reference == "auto" and exact_reference(network)
    if exact:
        from .graph import load_model  # without TensorFlow for a path

        model = load_model(model)
    else:
        model = _keras_model(model)
    images = network_images(network, images, float32=True)
    labels = None if labels is None else check_labels(labels, len(images))
    steps = _steps(steps, "steps")
    steps = int(network.presentation_steps if steps is None else steps)
    # the leaky-relu halves and the input encoder have no Keras layer of their own output
    names = [n for n, layer in network.layers.items() if layer.equals_keras_layer]
    model_out = network.readout.name

    rate_out, rate_layers = run_rates(network, images, return_layers=True)
    ideal_out, ideal_layers = run_rates(network, images, return_layers=True, ideal=True)
    if exact:
        _check_layers(model, names)
        keras_acts = {n: ideal_layers[n] for n in names}
        keras_out = ideal_out
    else:
        keras_acts = keras_activations(model, names, images)
        keras_out = _keras_output(model, images)
    spiking = run_spiking(network, images, steps)
    activities = spiking.activities
    rates = spiking.rates

    checks = []
    for name in names:
        layer = network.layers[name]
        k = keras_acts[name].reshape(len(images), -1)
        r = rate_layers[name].reshape(len(images), -1)
        i = ideal_layers[name].reshape(len(images), -1)
        hz = rates[name]
        checks.append(LayerCheck(
            name=name, shape=tuple(layer.shape), on_chip=layer.on_chip,
            rate_max_abs_error=float(np.abs(r - k).max()),
            rate_mean_abs_error=float(np.abs(r - k).mean()),
            ideal_max_abs_error=math.nan if exact else float(np.abs(i - k).max()),
            keras_max=float(np.abs(k).max()),
            spike_correlation=_correlation(k, activities[name]),
            spike_mean_rate_hz=float(hz.mean()), spike_max_rate_hz=float(hz.max()),
            silent_fraction=float(np.mean(spiking.spike_counts[name].sum(axis=0) == 0))))
    n = len(images)
    k_out = keras_out.reshape(n, -1)
    spike_last = spiking.output[:, -1, :]
    output = LayerCheck(
        name=model_out, shape=tuple(network.readout.shape), on_chip=None,
        rate_max_abs_error=float(np.abs(rate_out.reshape(n, -1) - k_out).max()),
        rate_mean_abs_error=float(np.abs(rate_out.reshape(n, -1) - k_out).mean()),
        ideal_max_abs_error=(math.nan if exact
                             else float(np.abs(ideal_out.reshape(n, -1) - k_out).max())),
        keras_max=float(np.abs(k_out).max()),
        spike_correlation=_correlation(k_out, spike_last))
    k_pred = k_out.argmax(axis=1)
    r_pred = rate_out.reshape(n, -1).argmax(axis=1)
    s_pred = spike_last.argmax(axis=1)
    pooling = None
    if network.max_pool_substituted:
        i_pred = ideal_out.reshape(n, -1).argmax(axis=1)
        pooling = PoolingCost(substituted=list(network.max_pool_substituted),
                              agreement=float(np.mean(i_pred == k_pred)),
                              keras_accuracy=_accuracy(k_pred, labels),
                              converted_accuracy=_accuracy(i_pred, labels))
    return VerificationReport(
        layers=checks, output=output, n_images=n, steps=steps,
        rate_agreement=float(np.mean(r_pred == k_pred)),
        spike_agreement=float(np.mean(s_pred == k_pred)),
        keras_accuracy=_accuracy(k_pred, labels), rate_accuracy=_accuracy(r_pred, labels),
        spike_accuracy=_accuracy(s_pred, labels), pooling=pooling, notes=list(network.notes),
        reference="ideal rate mode" if exact else "keras")


def exact_reference(network: SpikingNetwork) -> bool:
    """Whether ``network`` in rate mode with ideal neurons computes its Keras model.

    True when every neuron layer is of the relu family (its ideal neuron is the relu
    Keras computes; LIF neurons have another rate curve) and no max pooling was replaced
    by average pooling: the conversion is then exact up to float round-off (float64
    here against Keras' float32), layer by layer.
    """
    from .neurons import RectifiedLinear
    from .simulate import ideal_neuron

    return not network.max_pool_substituted and all(
        isinstance(ideal_neuron(layer.neuron), RectifiedLinear)
        for layer in network.layers.values())


def _check_model_kind(model: Any) -> None:
    from .errors import ArgumentError
    from .graph import LayerGraph

    if not (isinstance(model, (LayerGraph, str, os.PathLike))
            or (hasattr(model, "layers") and hasattr(model, "predict"))):
        raise ArgumentError(f"model: expected the keras.Model or the path of the .keras file "
                            f"the network was converted from, got {type(model).__name__}",
                            "model")


def _check_layers(graph, names: list[str]) -> None:
    missing = [n for n in names if n not in graph]
    if missing:
        raise ValueError(f"the Keras model has no layers {missing}; was the network converted "
                         f"from another model?")


def _keras_model(model: Any):
    """The ``keras.Model`` to compare against, from a model, a ``.keras`` path or a
    :class:`~loihi_core.graph.LayerGraph` read from a file (re-read with Keras)."""
    from .errors import ArgumentError
    from .graph import LayerGraph, read_keras_file

    if hasattr(model, "layers") and hasattr(model, "predict"):
        return model
    if isinstance(model, LayerGraph):
        if model.source and os.path.isfile(str(model.source)):
            return read_keras_file(model.source)
        raise ArgumentError("model: verify runs the Keras model itself, and this LayerGraph "
                            "has no source file; pass the keras.Model or the .keras path",
                            "model")
    if isinstance(model, (str, os.PathLike)):
        return read_keras_file(model)
    raise ArgumentError(f"model: expected the keras.Model or the path of the .keras file the "
                        f"network was converted from, got {type(model).__name__}", "model")


def _keras_output(model: Any, images: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict(images, batch_size=256, verbose=0), np.float64)
