"""Discretization: float compartment and synapse parameters → Loihi's integer registers.

Loihi stores thresholds, biases, decays and weights as small integers with shared
exponents. This module reproduces NengoLoihi 1.1.0's choices exactly
(``shared/spec/loihi-semantics.md`` §2), so that our integer blocks, and therefore the
emulator's spikes, equal the reference bit for bit. Three details make or break that:

* discretization runs **per block** (after splitting): the weight scale comes from the
  largest weight of the block, so block shapes change the quantization;
* NumPy 1.x dtype rules are mimicked: decays are quantized in float32, and weights are
  scaled in float32 (``float32 array * float64 scalar`` stayed float32 there);
* every ``round`` is NumPy's round-half-to-even.

All functions are pure NumPy and work on one block at a time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import DiscretizationError

VTH_MAN_MAX = 2**17 - 1
VTH_EXP = 6
VTH_MAX = VTH_MAN_MAX * 2**VTH_EXP
BIAS_MAN_MAX = 2**12 - 1
BIAS_EXP_MAX = 2**3 - 1
BIAS_MAX = BIAS_MAN_MAX * 2**BIAS_EXP_MAX
Q_BITS = 21  # synaptic input accumulator: 21 bits + sign
U_BITS = 23  # current U (and U + bias): 23 bits + sign
DECAY_BITS = 12
MAX_DECAY = 2**DECAY_BITS - 1
REFRACT_DELAY_MAX = 63

#: Real index bits per synapse-format field value, and real weight bits.
INDEX_BITS_MAP = (0, 6, 7, 8, 9, 10, 11, 12)
WEIGHT_BITS = 8
#: Synapse memory layout: weights per chunk, and the per-chunk header (4 + 6 bits).
CHUNK_WEIGHTS = 64
CHUNK_HEADER_BITS = 10


# ---------------------------------------------------------------------------------------
# time constants and decays
# ---------------------------------------------------------------------------------------

def decay_from_tau(tau: float | None, dt: float) -> np.float32:
    """Per-step decay ``-expm1(-dt/tau)`` of a lowpass filter, as float32 (1 for no filter)."""
    if tau is None or tau == 0:
        return np.float32(1.0)
    return np.float32(-np.expm1(-dt / tau))


def decay_u_int(decay_u: np.ndarray | float) -> np.ndarray:
    """12-bit current-decay register. The chip adds 1 back, hence the ``- 1`` (float32 math)."""
    d = np.asarray(decay_u, dtype=np.float32)
    return np.round(np.clip(d * np.float32(MAX_DECAY) - np.float32(1), 0, MAX_DECAY)).astype(np.int64)


def decay_v_int(decay_v: np.ndarray | float) -> np.ndarray:
    """12-bit voltage-decay register (float32 math)."""
    d = np.asarray(decay_v, dtype=np.float32)
    return np.round(d * np.float32(MAX_DECAY)).astype(np.int64)


def decay_magnitude(decay: np.ndarray | float, x0: float = 2**21, offset: int = 0) -> np.ndarray:
    """Estimated ``sum_i x_i / x0`` of the truncating integer decay ``x_i = floor(r x_{i-1})``.

    Loihi's integer decay loses the fractional part at every step, so a filtered input
    integrates to a little less than the ideal geometric series; NengoLoihi scales the
    weights by the inverse of this estimate (``q = 0.494`` models the average loss).
    """
    r = (2**DECAY_BITS - offset - np.asarray(decay, dtype=np.float64)) / 2**DECAY_BITS
    q = 0.494
    n = -np.log1p(x0 * (1 - r) / q) / np.log(r)
    series = (1 - r ** (n + 1)) / (1 - r)
    loss = q / ((1 - r) * x0) * (n + 1 - (1 - r ** (n + 1)) / (1 - r))
    return series - loss


# ---------------------------------------------------------------------------------------
# encodings
# ---------------------------------------------------------------------------------------

def vth_to_int(vth: np.ndarray) -> np.ndarray:
    """Threshold registers: a 17-bit mantissa times 2**6."""
    mant = np.round(np.asarray(vth, np.float64) / 2**VTH_EXP).astype(np.int64)
    if np.any(mant <= 0) or np.any(mant > VTH_MAN_MAX):
        raise DiscretizationError(f"threshold mantissa out of range (1..{VTH_MAN_MAX}): "
                                  f"{mant.min()}..{mant.max()}")
    return mant * 2**VTH_EXP


def bias_to_int(bias: np.ndarray) -> np.ndarray:
    """Bias registers: a 13-bit signed mantissa times ``2**exp`` with ``exp`` in 0..7."""
    bias = np.asarray(bias, np.float64)
    exp = np.ceil(np.log2(np.maximum(np.abs(bias) / BIAS_MAN_MAX, 1))).astype(np.int64)
    mant = np.round(bias / 2.0**exp).astype(np.int64)
    if np.any(exp > BIAS_EXP_MAX) or np.any(np.abs(mant) > BIAS_MAN_MAX):
        raise DiscretizationError(f"bias out of range (|bias| <= {BIAS_MAX})")
    return mant * 2**exp


def idx_bits_field(max_index: int) -> int:
    """Synapse-format index field for indices up to ``max_index`` (``-1``: more than 12 bits)."""
    need = int(math.ceil(math.log2(max_index + 1))) if max_index > 0 else 0
    for field, bits in enumerate(INDEX_BITS_MAP):
        if bits >= need:
            return field
    return -1


def real_idx_bits(field: int) -> int:
    """Index bits a field stands for (``-1`` counts as 12, as NengoLoihi's counting does)."""
    return INDEX_BITS_MAP[field]


def weight_set_bits(n_weights, bits_per_weight: int):
    """Synapse memory for weight sets of ``n_weights`` (an int or an array of them):
    64-weight chunks, each with a 10-bit header, padded to 64-bit words."""
    n = np.asarray(n_weights, np.int64)
    full, rest = np.divmod(n, CHUNK_WEIGHTS)
    words = lambda k: -(-(k * bits_per_weight + CHUNK_HEADER_BITS) // 64) * 64  # noqa: E731
    bits = full * words(CHUNK_WEIGHTS) + np.where(rest > 0, words(rest), 0)
    return int(bits) if bits.ndim == 0 else bits


# ---------------------------------------------------------------------------------------
# one block
# ---------------------------------------------------------------------------------------

@dataclass
class FloatCompartments:
    """The float parameters of a block's compartments, before discretization.

    Arrays are per compartment; ``vth``/``bias``/``decay_u``/``decay_v`` are float32 as
    NengoLoihi stores them. ``scale_u``/``scale_v`` say whether the current/voltage decays
    need the integral correction of :func:`decay_magnitude`.
    """

    vth: np.ndarray
    bias: np.ndarray
    decay_u: np.ndarray
    decay_v: np.ndarray
    refract_delay: np.ndarray
    scale_u: bool
    scale_v: bool
    vmin: float = 0.0
    vmax: float = math.inf


@dataclass
class DiscreteCompartments:
    """Integer registers of a block's compartments (see :class:`~loihi_core.chip.Compartments`)."""

    vth: np.ndarray
    bias: np.ndarray
    decay_u: np.ndarray
    decay_v: np.ndarray
    refract_delay: np.ndarray
    vmin: int
    vmax: int
    w_max: float
    w_exp: int
    v_scale: float
    b_scale: float
    w_scale: float


def discretize_compartments(comp: FloatCompartments, weight_sets: list[np.ndarray],
                            label: str = "block") -> DiscreteCompartments:
    """Choose the block's scales and quantize thresholds, biases and decays.

    Parameters
    ----------
    comp
        Float parameters of the block's compartments.
    weight_sets
        Every float32 weight array of every synapse into the block (their largest
        magnitude sets the weight scale).
    label
        Names the block in errors.
    """
    du = decay_u_int(comp.decay_u)
    dv = decay_v_int(comp.decay_v)
    u_infactor = (1.0 / decay_magnitude(du, x0=2**21, offset=1) if comp.scale_u
                  else np.ones(du.shape))
    v_infactor = (1.0 / decay_magnitude(dv, x0=2**21, offset=0) if comp.scale_v
                  else np.ones(dv.shape))
    vth_f = np.asarray(comp.vth, np.float32)
    bias_f = np.asarray(comp.bias, np.float32)
    w_max = max_abs(weight_sets)
    b_max = float(np.abs(bias_f).max()) if bias_f.size else 0.0
    w_exp = 0

    if w_max > 1e-8:  # the normal case: scale so the largest weight uses all 8 bits
        w_scale = 255.0 / float(w_max)
        s_scale = 1.0 / (u_infactor * v_infactor)
        for w_exp in range(0, -8, -1):
            v_scale = s_scale * w_scale * 2 ** (6 + w_exp)
            b_scale = v_scale * v_infactor
            vth = np.round(vth_f * v_scale)
            bias = np.round(bias_f * b_scale)
            if np.all(vth <= VTH_MAX) and np.all(np.abs(bias) <= BIAS_MAX):
                break
        else:
            raise DiscretizationError(
                f"{label}: could not find a weight exponent that fits the threshold and bias "
                f"registers; the layer's weights are too small relative to its biases: lower "
                f"scale_firing_rates or retrain with smaller biases")
    elif b_max > 1e-8:  # no weights: scale the biases to the full range
        b_scale = BIAS_MAX / b_max
        while b_scale * b_max > 1:
            v_scale = b_scale / v_infactor
            w_scale = b_scale * u_infactor / 2**6
            vth = np.round(vth_f * v_scale)
            bias = np.round(bias_f * b_scale)
            if np.all(vth <= VTH_MAX):
                break
            b_scale /= 2.0
        else:
            raise DiscretizationError(f"{label}: could not find a bias scaling that fits the "
                                      f"threshold register")
    else:  # neither weights nor biases: only the threshold matters
        vth_max = min(VTH_MAX, 2**Q_BITS - 1)
        v_scale = np.array([vth_max / (float(vth_f.max()) + 1)])
        vth = np.round(vth_f * v_scale)
        b_scale = v_scale * v_infactor
        bias = np.round(bias_f * b_scale)
        w_scale = v_scale * v_infactor * u_infactor / 2**6

    v_scale = np.broadcast_to(np.asarray(v_scale, np.float64), du.shape)
    if v_scale.size and not np.all(v_scale == v_scale.flat[0]):
        raise DiscretizationError(f"{label}: compartments need different voltage scales (mixed "
                                  f"synapse or membrane time constants in one block)")
    vmin_f = float(v_scale.flat[0]) * comp.vmin if v_scale.size else 0.0
    vmax_f = float(v_scale.flat[0]) * comp.vmax if v_scale.size else math.inf
    vmin_e = int(np.clip(np.round(np.log2(1 - vmin_f)), 0, 31))
    with np.errstate(over="ignore"):
        vmax_e = int(np.clip(np.round((np.log2(vmax_f + 1) - 9) / 2), 0, 7))
    refract = np.asarray(comp.refract_delay, np.int64)
    if np.any(refract > REFRACT_DELAY_MAX):
        raise DiscretizationError(f"{label}: refractory period of {int(refract.max()) - 1} steps "
                                  f"exceeds Loihi's maximum of {REFRACT_DELAY_MAX - 1}")
    return DiscreteCompartments(
        vth=vth_to_int(vth), bias=bias_to_int(bias), decay_u=du, decay_v=dv,
        refract_delay=refract, vmin=1 - 2**vmin_e, vmax=2 ** (9 + 2 * vmax_e) - 1,
        w_max=float(w_max), w_exp=int(w_exp), v_scale=float(v_scale.flat[0]) if v_scale.size else 1.0,
        b_scale=float(np.asarray(b_scale).flat[0]), w_scale=float(np.asarray(w_scale).flat[0]))


def max_abs(arrays: list[np.ndarray]) -> np.float32:
    """Largest magnitude over a list of float32 arrays (0 for none)."""
    sizes = [a.size for a in arrays]
    if not any(sizes):
        return np.float32(0)
    return np.float32(np.abs(np.concatenate([np.asarray(a, np.float32).ravel() for a in arrays])).max())


def discretize_weight_sets(weight_sets: list[np.ndarray], disc: DiscreteCompartments
                           ) -> tuple[list[np.ndarray], int]:
    """Quantize one synapse's weight sets with the block's scale (spec §2.7).

    Returns the integers the chip adds to its input accumulator per spike
    (``Wgt * 2**(6 + weight_exp)``, ``Wgt`` an even 8-bit value) and the synapse's weight
    exponent. A synapse much weaker than the block's strongest gets a lower exponent, so
    it keeps its resolution. (All sets are quantized in one vectorised pass; the
    arithmetic is elementwise, so this equals quantizing them one by one.)
    """
    if not weight_sets:
        return [], -6
    flat = np.concatenate([w.ravel() for w in weight_sets]).astype(np.float32, copy=False)
    w_max_s = np.float32(np.abs(flat).max()) if flat.size else np.float32(0)
    w_max = np.float32(disc.w_max)
    if w_max_s > 1e-16:
        dw = int(np.floor(np.log2(np.float32(w_max / w_max_s))))
        wexp = max(disc.w_exp - dw, -6)
    else:
        wexp = -6
        dw = disc.w_exp - wexp
    x = (flat * np.float32(disc.w_scale)) * np.float32(2.0**dw)  # float32, as NumPy 1.x did
    m = np.clip(np.round(x / np.float32(2)), -127, 127).astype(np.int64)
    s2 = 1 + wexp
    if s2 >= 0:
        w_int = (m << s2) << 6
    else:
        k = -s2
        m2 = np.clip(np.round(m / 2.0**k) * 2**k, -127, 127).astype(np.int64)
        w_int = (m2 >> k) << 6
    out, start = [], 0
    for w in weight_sets:
        out.append(w_int[start:start + w.size].reshape(w.shape))
        start += w.size
    return out, wexp
