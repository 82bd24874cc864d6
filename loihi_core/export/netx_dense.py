"""NetX's dense weight path, on integers: what Lava computes with a ``dense`` layer's weights.

lava-dl NetX does not hand a dense layer's ``weight`` to Lava as written: its optimiser
rescales it and Lava's bit-accurate ``Dense`` model classifies, clips and truncates it again.
The two disagree for a matrix with no positive weight whose most negative weight is a power
of two (see :mod:`loihi_core.export.lava`). :func:`netx_dense_weights` follows that path so
that the exporter can tell whether a file is reproduced exactly. Written from our reading of
lava-dl 0.6 (``netx/utils.py``, ``netx/hdf5.py``, ``netx/blocks/process.py``) and Lava 0.10
(``utils/weightutils.py``, ``proc/dense/models.py``).
"""

from __future__ import annotations

import math

import numpy as np


def netx_dense_weights(weight: np.ndarray) -> tuple[np.ndarray, int] | None:
    """What Lava computes with a dense weight matrix as NetX reads it from the file.

    Follows, on integers, what lava-dl 0.6 NetX and Lava 0.10 do with a ``dense`` layer's
    ``weight`` (our reading of their sources; see the module docstring): NetX's optimiser
    picks a sign mode from the matrix (inhibitory if every weight is < 0, excitatory if
    none is, else mixed), shifts the weights left by ``s`` bits to fill 8 bits and sets the
    weight exponent to ``-s``, with a weight precision from the trailing zero bits the
    weights share; Lava's bit-accurate ``Dense`` model picks the sign mode again (inhibitory
    if no weight is > 0), clips to that mode's 8-bit range (inhibitory magnitudes <= 255),
    truncates to the precision, and shifts each step's sum right by ``s``.

    Parameters
    ----------
    weight
        The integers written, any orientation.

    Returns
    -------
    (weights, shift) or None
        The integers Lava adds per spike before its right shift by ``shift``: the file is
        reproduced exactly when ``weights == weight << shift``. ``None`` when NetX cannot
        load the matrix (all zero: its optimiser divides by the largest weight).
    """
    w = np.asarray(weight, np.int64)
    if w.size == 0:
        return None
    hi, lo = int(w.max()), int(w.min())
    if hi == 0 and lo == 0:
        return None
    if hi < 0:  # NetX's sign mode: inhibitory, excitatory or mixed
        signed, scale = 0, 256 / -lo
    elif lo >= 0:
        signed, scale = 0, 255 / hi
    else:
        signed, scale = 1, min(127 / hi if hi > 0 else math.inf, 128 / -lo)
    shift = int(math.floor(math.log2(scale))) + signed
    shared = next((n for n in range(8, 0, -1) if not np.any(w % (1 << n))), 0)
    n_bits = 8 - shift - (shared - signed)
    if shift < 0:  # pragma: no cover - cannot happen for weights in [-256, 254]
        return None
    w = w << shift
    if w.min() >= 0:  # Lava's sign mode, clip and truncation
        mode_mixed, inhibitory, lo_clip = 0, False, 0
    elif w.max() <= 0:
        mode_mixed, inhibitory, lo_clip = 0, True, 0
    else:
        mode_mixed, inhibitory, lo_clip = 1, False, -256
    magnitude = -w if inhibitory else w
    magnitude = np.clip(magnitude, lo_clip, 255)
    cut = 8 - n_bits + mode_mixed
    if cut < 0:  # pragma: no cover - not reached by even weights
        return None
    magnitude = (magnitude >> cut) << cut
    return (-magnitude if inhibitory else magnitude), shift
