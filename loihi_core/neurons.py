"""Neuron models: the Loihi neurons and their ideal counterparts.

Each type gives three views of the same neuron (``shared/spec/loihi-semantics.md`` §1):

* :meth:`NeuronType.rates` — the steady-state rate as NengoLoihi's ``rates()`` computes it
  (reference-compatible, bit for bit with ``tests/data/reference/rates.npz``). For the Loihi
  types it assumes a spike when the voltage *reaches* threshold;
* :meth:`NeuronType.chip_rates` — the rate the spiking dynamics really produce: the chip and
  every spiking implementation fire only when the voltage *exceeds* threshold, so at an
  exact-integer period the neuron needs one more step (J = 250 → ``rates()`` 250 Hz, chip
  200 Hz). The app and calibration use this one;
* :meth:`NeuronType.step` — the float spiking update used by the host-side (off-chip)
  layers and by :mod:`loihi_core.simulate`.

Rates are in Hz times ``amplitude`` (what a neuron outputs), as in Nengo. ``J`` is the input
current ``gain * x + bias``. The training issue adds :meth:`NeuronType.smooth_rates` (the
differentiable surrogate used in the backward pass); its NumPy form lives here so the app
can plot it and the TensorFlow form can be tested against it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np

#: Loihi's decay registers have 12 bits: time constants are quantized to this resolution.
DECAY_RESOLUTION = 4095


def discretize_tau_rc(tau_rc: float, dt: float) -> float:
    """The membrane time constant Loihi actually realises (12-bit voltage decay).

    The decay per step ``-expm1(-dt/tau_rc)`` is rounded to a multiple of 1/4095, and the
    time constant that decay corresponds to is returned.
    """
    decay = -np.expm1(-dt / tau_rc)
    decay_q = np.round(decay * DECAY_RESOLUTION)
    return float(-dt / np.log1p(-decay_q / DECAY_RESOLUTION))


def discretize_tau_ref(tau_ref: float, dt: float) -> float:
    """The refractory period Loihi realises: a whole number of steps."""
    return float(dt * np.round(tau_ref / dt))


def neuron_current(x, gain, bias) -> np.ndarray:
    """``J = gain * x + bias`` with Nengo's broadcasting (a 1-D ``x`` becomes a column).

    ``x`` of shape ``(n_x,)`` gives ``J`` of shape ``(n_x, n_neurons)``; an ``x`` of shape
    ``(..., n_neurons)`` is used as is. Float64, in this operation order (it matters for
    bit-exact rates).
    """
    x = np.asarray(x, dtype=np.float64)
    gain = np.asarray(gain, dtype=np.float64)
    bias = np.asarray(bias, dtype=np.float64)
    if x.ndim == 0:
        x = x.reshape(1, 1)
    elif x.ndim == 1:
        x = x[:, None]
    return gain * x + bias


def _check_param(cls_name: str, name: str, value: Any, minimum: float, strict: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{cls_name}.{name} must be a number, got {value!r}")
    value = float(value)
    bad = not math.isfinite(value) or (value <= minimum if strict else value < minimum)
    if bad:
        op = ">" if strict else ">="
        raise ValueError(f"{cls_name}.{name} must be a finite number {op} {minimum:g}, got {value!r}")
    return value


@dataclass(frozen=True)
class NeuronType:
    """Base class of all neuron types. Subclasses are frozen dataclasses (hashable).

    Attributes
    ----------
    amplitude
        Output of one spike times ``dt`` (Nengo semantics): a neuron firing at ``r`` Hz
        outputs ``amplitude * r``.
    """

    amplitude: float = 1.0

    #: name used in the tuned config (``"LoihiSpikingRectifiedLinear"`` ...)
    name: ClassVar[str] = "NeuronType"
    #: whether the neuron emits spikes (False for rate neurons)
    spiking: ClassVar[bool] = False
    #: whether the neuron can run on the chip
    on_chip_capable: ClassVar[bool] = False
    #: the relu family (rate ∝ current) or the LIF family
    family: ClassVar[str] = "relu"

    def __post_init__(self) -> None:
        _check_param(self.name, "amplitude", self.amplitude, 0.0, strict=True)

    # -- rates ---------------------------------------------------------------------------
    def rates(self, x, gain, bias, dt: float = 0.001) -> np.ndarray:
        """Steady-state output rate (Hz × amplitude) as the reference tools compute it."""
        return self.rates_from_current(neuron_current(x, gain, bias), dt)

    def chip_rates(self, x, gain, bias, dt: float = 0.001) -> np.ndarray:
        """Rate the spiking dynamics (and the chip) really produce (Hz × amplitude)."""
        return self.chip_rates_from_current(neuron_current(x, gain, bias), dt)

    def rates_from_current(self, J: np.ndarray, dt: float) -> np.ndarray:
        raise NotImplementedError

    def chip_rates_from_current(self, J: np.ndarray, dt: float) -> np.ndarray:
        """Defaults to :meth:`rates_from_current` (ideal neurons have no step effects)."""
        return self.rates_from_current(J, dt)

    def smooth_rates(self, J: np.ndarray, dt: float) -> np.ndarray:
        """The smooth surrogate whose gradient training uses (defaults to the rate)."""
        return self.rates_from_current(np.asarray(J, np.float64), dt)

    def max_rate(self, dt: float) -> float:
        """Highest output rate in Hz (without amplitude): one spike per step for Loihi."""
        return math.inf

    # -- spiking -------------------------------------------------------------------------
    def make_state(self, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
        """Zero state for :meth:`step` (a dict of float64 arrays of ``shape``)."""
        return {}

    def step(self, J: np.ndarray, dt: float, state: dict[str, np.ndarray]) -> np.ndarray:
        """Advance one step; returns the output (spikes × amplitude / dt, or the rate)."""
        return self.rates_from_current(np.asarray(J, np.float64), dt)

    # -- tuned config --------------------------------------------------------------------
    def to_config(self) -> str | dict:
        """The tuned-config form: the bare name, or ``{"type": name, <non-defaults>}``."""
        changed = {f.name: getattr(self, f.name) for f in fields(self)
                   if getattr(self, f.name) != f.default}
        if not changed:
            return self.name
        return {"type": self.name, **changed}

    @property
    def params(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class RectifiedLinear(NeuronType):
    """Ideal rate relu: ``amplitude * max(J, 0)`` (what the Keras model computes)."""

    name: ClassVar[str] = "RectifiedLinear"

    def rates_from_current(self, J, dt):
        return self.amplitude * np.maximum(np.asarray(J, np.float64), 0.0)


@dataclass(frozen=True)
class SpikingRectifiedLinear(RectifiedLinear):
    """Ideal spiking relu (nengo): integrates ``J·dt``, may emit several spikes a step."""

    name: ClassVar[str] = "SpikingRectifiedLinear"
    spiking: ClassVar[bool] = True

    def make_state(self, shape):
        return {"voltage": np.zeros(shape)}

    def step(self, J, dt, state):
        v = state["voltage"]
        v += np.maximum(J, 0) * dt
        n_spikes = np.floor(v)
        v -= n_spikes
        return (self.amplitude / dt) * n_spikes


@dataclass(frozen=True)
class LIFRate(NeuronType):
    """Ideal leaky integrate-and-fire rate neuron (threshold 1)."""

    tau_rc: float = 0.02
    tau_ref: float = 0.002
    name: ClassVar[str] = "LIFRate"
    family: ClassVar[str] = "lif"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_param(self.name, "tau_rc", self.tau_rc, 0.0, strict=True)
        _check_param(self.name, "tau_ref", self.tau_ref, 0.0, strict=False)

    def rates_from_current(self, J, dt):
        j = np.asarray(J, np.float64) - 1
        out = np.zeros_like(j)
        pos = j > 0
        out[pos] = self.amplitude / (self.tau_ref + self.tau_rc * np.log1p(1.0 / j[pos]))
        return out

    def max_rate(self, dt):
        return math.inf if self.tau_ref == 0 else 1.0 / self.tau_ref


@dataclass(frozen=True)
class LIF(LIFRate):
    """Ideal spiking LIF (nengo), with sub-step spike-time interpolation."""

    min_voltage: float = 0.0
    name: ClassVar[str] = "LIF"
    spiking: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.min_voltage, bool) or not isinstance(
                self.min_voltage, (int, float)) or not math.isfinite(self.min_voltage):
            raise TypeError(f"{self.name}.min_voltage must be a finite number, got "
                            f"{self.min_voltage!r}")

    def make_state(self, shape):
        return {"voltage": np.zeros(shape), "refractory_time": np.zeros(shape)}

    def _taus(self, dt: float) -> tuple[float, float]:
        return self.tau_rc, self.tau_ref

    def step(self, J, dt, state):
        tau_rc, tau_ref = self._taus(dt)
        J = np.asarray(J, np.float64)
        v, ref = state["voltage"], state["refractory_time"]
        ref -= dt
        delta_t = np.clip(dt - ref, 0, dt)
        v -= (J - v) * np.expm1(-delta_t / tau_rc)
        spiked = v > 1
        out = spiked * (self.amplitude / dt)
        t_spike = self._spike_time(v, J, spiked, dt, tau_rc)
        v[v < self.min_voltage] = self.min_voltage
        v[spiked] = 0
        ref[spiked] = tau_ref + t_spike
        return out

    def _spike_time(self, v, J, spiked, dt, tau_rc):
        with np.errstate(divide="ignore", invalid="ignore"):
            return dt + tau_rc * np.log1p(-(v[spiked] - 1) / (J[spiked] - 1))


@dataclass(frozen=True)
class LoihiSpikingRectifiedLinear(SpikingRectifiedLinear):
    """Loihi's relu: integrate ``J·dt``, spike when the voltage exceeds 1, reset to 0.

    At most one spike per step, so rates are quantized to ``1/(n·dt)`` and capped at
    ``1/dt``. ``rates()`` is NengoLoihi's formula ``(amplitude/dt) / ceil(1/(J·dt))``;
    ``chip_rates()`` is what the strict threshold gives: ``floor(1/(J·dt)) + 1`` steps.
    """

    name: ClassVar[str] = "LoihiSpikingRectifiedLinear"
    on_chip_capable: ClassVar[bool] = True

    def rates_from_current(self, J, dt):
        J = np.asarray(J, np.float64)
        out = np.zeros_like(J)
        pos = J > 0
        period = 1.0 / J[pos]
        out[pos] = (self.amplitude / dt) / np.ceil(period / dt)
        return out

    def chip_rates_from_current(self, J, dt):
        J = np.asarray(J, np.float64)
        out = np.zeros_like(J)
        pos = J > 0
        steps = np.floor(1.0 / (J[pos] * dt)) + 1
        out[pos] = (self.amplitude / dt) / steps
        return out

    def smooth_rates(self, J, dt):
        """``A·J / (1 + J·dt/2)``: the relu with a half-step refractory period, which runs
        through the middle of the Loihi staircase (NengoLoihi's training surrogate)."""
        J = np.asarray(J, np.float64)
        out = np.zeros_like(J)
        pos = J > 0
        out[pos] = self.amplitude / (0.5 * dt + 1.0 / J[pos])
        return out

    def max_rate(self, dt):
        return 1.0 / dt

    def step(self, J, dt, state):
        v = state["voltage"]
        v += np.asarray(J, np.float64) * dt
        spiked = v > 1
        out = spiked * (self.amplitude / dt)
        np.maximum(v, 0, out=v)
        v[spiked] = 0
        return out


@dataclass(frozen=True)
class LoihiLIF(LIF):
    """Loihi's LIF: 12-bit decay and a whole-step refractory period, no spike-time
    interpolation. ``tau_rc``/``tau_ref`` are the requested values; the realised ones are
    :func:`discretize_tau_rc` and :func:`discretize_tau_ref`.
    """

    name: ClassVar[str] = "LoihiLIF"
    on_chip_capable: ClassVar[bool] = True

    def _taus(self, dt: float) -> tuple[float, float]:
        return discretize_tau_rc(self.tau_rc, dt), discretize_tau_ref(self.tau_ref, dt)

    def rates_from_current(self, J, dt):
        tau_rc, tau_ref = self._taus(dt)
        j = np.asarray(J, np.float64) - 1
        out = np.zeros_like(j)
        pos = j > 0
        period = tau_ref + tau_rc * np.log1p(1.0 / j[pos])
        out[pos] = (self.amplitude / dt) / np.ceil(period / dt)
        return out

    def chip_rates_from_current(self, J, dt):
        """Refractory steps plus the integration steps until the voltage *exceeds* 1."""
        tau_rc, tau_ref = self._taus(dt)
        j = np.asarray(J, np.float64) - 1
        out = np.zeros_like(j)
        pos = j > 0
        integrate = np.floor(tau_rc * np.log1p(1.0 / j[pos]) / dt) + 1
        out[pos] = (self.amplitude / dt) / (np.round(tau_ref / dt) + integrate)
        return out

    def smooth_rates(self, J, dt):
        """The LIF curve with ``tau_ref + dt/2``: the middle of the Loihi staircase."""
        tau_rc, tau_ref = self._taus(dt)
        j = np.asarray(J, np.float64) - 1
        out = np.zeros_like(j)
        pos = j > 0
        out[pos] = self.amplitude / (tau_ref + 0.5 * dt + tau_rc * np.log1p(1.0 / j[pos]))
        return out

    def max_rate(self, dt):
        return 1.0 / (dt * (round(self.tau_ref / dt) + 1))

    def _spike_time(self, v, J, spiked, dt, tau_rc):
        return dt  # refractory_time <- tau_ref_d + dt: no sub-step interpolation


NEURON_TYPES: dict[str, type[NeuronType]] = {
    cls.name: cls for cls in (RectifiedLinear, SpikingRectifiedLinear, LIFRate, LIF,
                              LoihiSpikingRectifiedLinear, LoihiLIF)}

#: Short names accepted by the CLI (``--neuron loihi``).
NEURON_ALIASES = {"loihi": "LoihiSpikingRectifiedLinear", "loihi-relu": "LoihiSpikingRectifiedLinear",
                  "loihi-lif": "LoihiLIF", "relu": "RectifiedLinear", "spiking-relu":
                  "SpikingRectifiedLinear", "lif": "LIF", "lif-rate": "LIFRate"}


def neuron_from_config(value: Any) -> NeuronType:
    """Build a neuron type from its tuned-config form (a name or ``{"type": ..., params}``).

    Raises
    ------
    ValueError, TypeError
        With a message naming the unknown type or parameter and the accepted ones.
    """
    if isinstance(value, NeuronType):
        return value
    if isinstance(value, str):
        type_name, params = value, {}
    elif isinstance(value, dict):
        if "type" not in value:
            raise ValueError(f"a neuron object needs a \"type\" (one of {', '.join(NEURON_TYPES)})")
        type_name = value["type"]
        params = {k: v for k, v in value.items() if k != "type"}
    else:
        raise TypeError(f"expected a neuron type name (one of {', '.join(NEURON_TYPES)}) or an "
                        f"object {{\"type\": ..., parameters}}, got {value!r}")
    if not isinstance(type_name, str):
        raise TypeError(f"neuron \"type\" must be a string, got {type_name!r}")
    cls = NEURON_TYPES.get(NEURON_ALIASES.get(type_name, type_name))
    if cls is None:
        raise ValueError(f"unknown neuron type {type_name!r}; expected one of {', '.join(NEURON_TYPES)}")
    allowed = [f.name for f in fields(cls)]
    unknown = [k for k in params if k not in allowed]
    if unknown:
        raise ValueError(f"{cls.name} has no parameter {unknown[0]!r}; its parameters are "
                         f"{', '.join(allowed)}")
    return cls(**params)
