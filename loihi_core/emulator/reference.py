"""A plain, vectorised NumPy implementation of the same integer step as :mod:`.kernels`.

It exists for two reasons: it is the baseline that ``bench/bench_emulator.py`` measures
the Numba kernels against (a fair one — vectorised, no Python loop over axons), and an
independent second implementation the tests compare the kernels with. It runs one stream
(no batching) and returns the spikes of every compartment.
"""

from __future__ import annotations

import numpy as np

from .compiled import CompiledChip


def _wrap(x: np.ndarray, bits: int) -> np.ndarray:
    half = 1 << bits
    return ((x + half) & ((half << 1) - 1)) - half


def _decay(x: np.ndarray, d: np.ndarray, offset: int) -> np.ndarray:
    return np.sign(x) * ((np.abs(x) * (4096 - offset - d)) >> 12)


def _expand(ptr: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """Indices of all CSR entries of ``sources`` (vectorised ``concat(range(...))``)."""
    starts, stops = ptr[sources], ptr[sources + 1]
    lengths = stops - starts
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    offsets = np.repeat(stops - lengths.cumsum(), lengths)
    return offsets + np.arange(total)


def run_stream_numpy(c: CompiledChip, host_spikes: np.ndarray) -> np.ndarray:
    """Spikes ``(steps, n_compartments)`` (bool) of one stream from a zero state.

    ``host_spikes`` is the already shifted host spike train, as for
    :func:`.kernels.run_stream`.
    """
    n = c.n_compartments
    u = np.zeros(n, np.int64)
    v = np.zeros(n, np.int64)
    ref = np.zeros(n, np.int64)
    spiked = np.zeros(n, bool)
    out = np.zeros((host_spikes.shape[0], n), bool)
    for t in range(host_spikes.shape[0]):
        host_entries = _expand(c.host_fan_ptr, np.nonzero(host_spikes[t])[0])
        comp_entries = _expand(c.comp_fan_ptr, np.nonzero(spiked)[0])
        entries = np.concatenate([host_entries, comp_entries])
        rows = c.fan_row[entries]
        k = _expand(c.row_ptr, rows)
        dest = np.repeat(c.fan_dest[entries], c.row_ptr[rows + 1] - c.row_ptr[rows])
        inp = np.bincount(dest + c.row_idx[k], weights=c.row_w[k], minlength=n).astype(np.int64)
        u = _wrap(_decay(u, c.decay_u, 1) + _wrap(inp, 21), 23)
        v = _decay(v, c.decay_v, 0) + _wrap(u + c.bias, 23)
        v = np.clip(v, c.vmin, c.vmax)
        v[ref > 0] = 0
        spiked = v > c.vth
        v[spiked] = 0
        ref[spiked] = c.refract[spiked]
        ref = np.maximum(ref - 1, 0)
        out[t] = spiked
    return out
