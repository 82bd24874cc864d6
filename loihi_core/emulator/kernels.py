"""Numba kernels of the integer Loihi step (``shared/spec/loihi-semantics.md`` §3).

One *stream* is a run of consecutive time steps on one copy of the chip state: a whole
sequence of images shown back to back (``sequential`` mode), or one image from a zero
state (``independent`` mode, where streams run in parallel with ``prange``). Per step:

1. clear the dendritic accumulator (one delay slot);
2. add the weight rows of the host input spikes of the *previous* step (host → chip
   takes one step) and of the compartments that spiked in the previous step;
3. update every compartment: wrap the input to 21+1 bits, decay the current and add the
   input (wrap to 23+1 bits), add the bias (wrap), decay the voltage and add, clip to
   [vmin, vmax], hold at 0 while refractory, spike when V > vth, reset and start the
   refractory count.

All arithmetic is int64 and matches NengoLoihi's int32 emulator exactly: the only place
int32 could overflow (the accumulator) is wrapped to 22 bits before it is used, and that
wrap is the same modulo 2**32 or 2**64.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

Q_MASK = (1 << 22) - 1
Q_HALF = 1 << 21
U_MASK = (1 << 24) - 1
U_HALF = 1 << 23


@njit(inline="always")
def _decay(x, d, offset):
    r = 4096 - offset - d
    if x >= 0:
        return (x * r) >> 12
    return -(((-x) * r) >> 12)


@njit(nogil=True, cache=True)
def run_stream(host_spikes, decay_u, decay_v, vth, bias, refract, vmin, vmax,
               comp_fan_ptr, host_fan_ptr, fan_dest, fan_row, row_ptr, row_idx, row_w,
               probe_row, probe_weights, rec_col, u, v, ref, spiked, counts, rec_out,
               probe_out, synops):
    """Run ``host_spikes.shape[0]`` steps, continuing from the state ``u, v, ref, spiked``.

    Step ``t`` adds the host spikes ``host_spikes[t]`` (the caller shifts the host's
    spike train by one step: row 0 holds the step before the stream, zeros for a fresh
    start).

    ``counts`` (per compartment), ``rec_out`` (steps × recorded columns, for compartments
    with ``rec_col >= 0``) and ``probe_out`` (steps × outputs: the spikes of the probed
    compartments through ``probe_weights``) are filled in place; ``synops[0]`` counts the
    synaptic weight additions.
    """
    n = vth.shape[0]
    n_host = host_spikes.shape[1]
    n_out = probe_weights.shape[1]
    steps = host_spikes.shape[0]
    inp = np.zeros(n, np.int64)
    ops = 0
    for t in range(steps):
        inp[:] = 0
        for h in range(n_host):
            if host_spikes[t, h]:
                for e in range(host_fan_ptr[h], host_fan_ptr[h + 1]):
                    dest = fan_dest[e]
                    r = fan_row[e]
                    for k in range(row_ptr[r], row_ptr[r + 1]):
                        inp[dest + row_idx[k]] += row_w[k]
                    ops += row_ptr[r + 1] - row_ptr[r]
        for c in range(n):
            if spiked[c]:
                for e in range(comp_fan_ptr[c], comp_fan_ptr[c + 1]):
                    dest = fan_dest[e]
                    r = fan_row[e]
                    for k in range(row_ptr[r], row_ptr[r + 1]):
                        inp[dest + row_idx[k]] += row_w[k]
                    ops += row_ptr[r + 1] - row_ptr[r]
        for c in range(n):
            q = ((inp[c] + Q_HALF) & Q_MASK) - Q_HALF
            uc = _decay(u[c], decay_u[c], 1) + q
            uc = ((uc + U_HALF) & U_MASK) - U_HALF
            u[c] = uc
            u2 = ((uc + bias[c] + U_HALF) & U_MASK) - U_HALF
            vc = _decay(v[c], decay_v[c], 0) + u2
            if vc < vmin[c]:
                vc = vmin[c]
            elif vc > vmax[c]:
                vc = vmax[c]
            if ref[c] > 0:
                vc = 0
            s = vc > vth[c]
            if s:
                vc = 0
                ref[c] = refract[c]
                counts[c] += 1
                if rec_col[c] >= 0:
                    rec_out[t, rec_col[c]] = 1
                p = probe_row[c]
                if p >= 0:
                    for o in range(n_out):
                        probe_out[t, o] += probe_weights[p, o]
            if ref[c] > 0:
                ref[c] -= 1
            v[c] = vc
            spiked[c] = s
    synops[0] += ops


@njit(nogil=True, cache=True, parallel=True)
def run_streams(host_spikes, decay_u, decay_v, vth, bias, refract, vmin, vmax,
                comp_fan_ptr, host_fan_ptr, fan_dest, fan_row, row_ptr, row_idx, row_w,
                probe_row, probe_weights, rec_col, counts, rec_out, probe_out, synops):
    """:func:`run_stream` from a zero state for every stream ``host_spikes[i]``, in parallel."""
    n = vth.shape[0]
    for i in prange(host_spikes.shape[0]):
        run_stream(host_spikes[i], decay_u, decay_v, vth, bias, refract, vmin, vmax,
                   comp_fan_ptr, host_fan_ptr, fan_dest, fan_row, row_ptr, row_idx, row_w,
                   probe_row, probe_weights, rec_col, np.zeros(n, np.int64),
                   np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.bool_),
                   counts[i], rec_out[i], probe_out[i], synops[i])
