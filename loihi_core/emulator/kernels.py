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

Integer state is int64 and matches NengoLoihi's int32 emulator exactly. The accumulator
is int32 like the reference's: it may wrap modulo 2**32, which does not change the 22-bit
value the step uses. Weights are int16 when they fit (:mod:`.compiled`), else int32.

Step 3 runs in two passes: a branch-free pass over every compartment (selects instead of
``if``, so the CPU updates several compartments per instruction; it also clears the
accumulator for the next step), then a scan for the compartments that spiked (counts,
recording, readout, next step's sources). The host relu layer is integrated the same way.

The host input layer is either given as a spike train (any neuron type, computed by
:func:`loihi_core.simulate.run_spiking`) or, for the relu family driven by a constant
image, integrated here with the same float64 operations as the NumPy step
(``v += J*dt``; spike where ``v > 1``; ``v = max(v, 0)``; reset to 0) — bit for bit the
same spikes, without a Python loop over time steps.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

Q_MASK = (1 << 22) - 1
Q_HALF = 1 << 21
U_MASK = (1 << 24) - 1
U_HALF = 1 << 23

#: ``host_kind`` values: spikes given, Loihi relu (one spike a step), nengo's ideal
#: spiking relu (several spikes a step collapse to one on the way to the chip).
HOST_GIVEN, HOST_LOIHI_RELU, HOST_SPIKING_RELU = 0, 1, 2


@njit(inline="always")
def _decay(x, d, offset):
    """``sign(x) · ((|x| · (4096 - offset - d)) >> 12)``, written as a select."""
    m = (abs(x) * (4096 - offset - d)) >> 12
    return m if x >= 0 else -m


@njit(inline="always")
def _update_compartments(inp, decay_u, decay_v, vth, bias, refract, vmin, vmax, u, v, ref,
                         spiked):
    """Step 3 for every compartment, without branches; clears ``inp`` for the next step."""
    for c in range(vth.shape[0]):
        q = ((np.int64(inp[c]) + Q_HALF) & Q_MASK) - Q_HALF
        inp[c] = 0
        uc = _decay(u[c], decay_u[c], 1) + q
        uc = ((uc + U_HALF) & U_MASK) - U_HALF
        u[c] = uc
        u2 = ((uc + bias[c] + U_HALF) & U_MASK) - U_HALF
        vc = _decay(v[c], decay_v[c], 0) + u2
        vc = min(max(vc, vmin[c]), vmax[c])
        r = ref[c]
        vc = 0 if r > 0 else vc
        s = vc > vth[c]
        r = refract[c] if s else r
        v[c] = 0 if s else vc
        ref[c] = r - 1 if r > 0 else r
        spiked[c] = s


@njit(inline="always")
def _integrate_host(host_kind, host_J, dt, host_v, host_prev, host_k):
    """One float step of the host relu layer (see the module doc), without branches:
    ``host_prev`` gets the spikes, ``host_k`` the spikes per neuron (the ideal relu may
    emit several in one step)."""
    if host_kind == HOST_LOIHI_RELU:
        for h in range(host_v.shape[0]):
            vh = host_v[h] + host_J[h] * dt
            s = vh > 1
            host_v[h] = 0.0 if (s or vh < 0) else vh
            host_prev[h] = s
            host_k[h] = 1.0
    else:
        for h in range(host_v.shape[0]):
            jh = host_J[h]
            jh = 0.0 if jh < 0 else jh
            vh = host_v[h] + jh * dt
            k = np.floor(vh)
            host_v[h] = vh - k
            host_prev[h] = k > 0
            host_k[h] = k


@njit(inline="always")
def _add_row(inp, dest, r, seg_ptr, seg_off, seg_w0, seg_len, row_w):
    """Add weight row ``r`` from compartment ``dest`` on; returns the number of adds."""
    ops = 0
    for s in range(seg_ptr[r], seg_ptr[r + 1]):
        o = dest + seg_off[s]
        w0 = seg_w0[s]
        length = seg_len[s]
        if length >= 16:  # a slice add vectorises; a scalar loop does not
            target = inp[o:o + length]
            target += row_w[w0:w0 + length]
        else:
            for k in range(length):
                inp[o + k] += row_w[w0 + k]
        ops += length
    return ops


@njit(nogil=True, cache=True)
def run_stream(host_spikes, host_kind, host_J, host_v, dt, decay_u, decay_v, vth, bias, refract,
               vmin, vmax, comp_fan_ptr, host_fan_ptr, fan_dest, fan_row, seg_ptr, seg_off,
               seg_w0, seg_len, row_w, probe_row, probe_weights, rec_col, host_rec_col,
               u, v, ref, spiked, host_prev, counts, host_counts, rec_out, host_rec_out,
               probe_out, synops):
    """Run ``probe_out.shape[0]`` steps, continuing from the given state.

    With ``host_kind == HOST_GIVEN`` step ``t`` adds the host spikes ``host_spikes[t]``
    (already shifted by one step by the caller). Otherwise the host relu layer is
    integrated from the constant current ``host_J`` (voltage ``host_v``), its spikes of
    step ``t`` reach the chip at ``t + 1``; ``host_prev`` carries the last step's spikes
    across calls. ``counts``/``host_counts`` (spikes), ``rec_out``/``host_rec_out``
    (recorded columns ``rec_col``/``host_rec_col``) and ``probe_out`` (spikes of the probed
    compartments through ``probe_weights``) are filled in place.
    """
    n = vth.shape[0]
    n_host = host_fan_ptr.shape[0] - 1
    n_out = probe_weights.shape[1]
    steps = probe_out.shape[0]
    inp = np.zeros(n, np.int32)
    ops = 0
    # the sources that spiked in the previous step, as lists (cheaper than scanning)
    fired = np.nonzero(spiked)[0]
    n_fired = fired.size
    fired_list = np.empty(n, np.int64)
    fired_list[:n_fired] = fired
    host_fired = np.empty(n_host, np.int64)
    n_host_fired = 0
    for h in range(n_host):
        if host_prev[h]:
            host_fired[n_host_fired] = h
            n_host_fired += 1
    host_k = np.zeros(n_host)
    for t in range(steps):
        if host_kind == HOST_GIVEN:
            n_host_fired = 0
            for h in range(n_host):
                if host_spikes[t, h] != 0:
                    host_fired[n_host_fired] = h
                    n_host_fired += 1
        for i in range(n_host_fired):
            h = host_fired[i]
            for e in range(host_fan_ptr[h], host_fan_ptr[h + 1]):
                ops += _add_row(inp, fan_dest[e], fan_row[e], seg_ptr, seg_off, seg_w0,
                                seg_len, row_w)
        if host_kind != HOST_GIVEN:
            _integrate_host(host_kind, host_J, dt, host_v, host_prev, host_k)
            n_host_fired = 0
            for h in range(n_host):
                if host_prev[h]:
                    host_fired[n_host_fired] = h
                    n_host_fired += 1
                    host_counts[h] += np.int64(host_k[h])
                    if host_rec_col[h] >= 0:
                        host_rec_out[t, host_rec_col[h]] = 1
        for i in range(n_fired):
            c = fired_list[i]
            for e in range(comp_fan_ptr[c], comp_fan_ptr[c + 1]):
                ops += _add_row(inp, fan_dest[e], fan_row[e], seg_ptr, seg_off, seg_w0,
                                seg_len, row_w)
        _update_compartments(inp, decay_u, decay_v, vth, bias, refract, vmin, vmax, u, v, ref,
                             spiked)
        n_fired = 0
        for c in range(n):
            if spiked[c]:
                counts[c] += 1
                fired_list[n_fired] = c
                n_fired += 1
                if rec_col[c] >= 0:
                    rec_out[t, rec_col[c]] = 1
                p = probe_row[c]
                if p >= 0:
                    for o in range(n_out):
                        probe_out[t, o] += probe_weights[p, o]
    synops[0] += ops


@njit(nogil=True, cache=True, parallel=True)
def run_streams(host_spikes, host_kind, host_J, dt, decay_u, decay_v, vth, bias, refract, vmin,
                vmax, comp_fan_ptr, host_fan_ptr, fan_dest, fan_row, seg_ptr, seg_off, seg_w0,
                seg_len, row_w, probe_row, probe_weights, rec_col, host_rec_col, counts,
                host_counts, rec_out, host_rec_out, probe_out, synops):
    """:func:`run_stream` from a zero state for every stream ``i``, in parallel.

    Per stream ``i``: ``host_spikes[i]`` (given spikes) or ``host_J[i]`` (host currents).
    """
    n = vth.shape[0]
    n_host = host_fan_ptr.shape[0] - 1
    for i in prange(probe_out.shape[0]):
        run_stream(host_spikes[i], host_kind, host_J[i], np.zeros(n_host), dt, decay_u, decay_v,
                   vth, bias, refract, vmin, vmax, comp_fan_ptr, host_fan_ptr, fan_dest, fan_row,
                   seg_ptr, seg_off, seg_w0, seg_len, row_w, probe_row, probe_weights, rec_col,
                   host_rec_col, np.zeros(n, np.int64), np.zeros(n, np.int64),
                   np.zeros(n, np.int64), np.zeros(n, np.bool_), np.zeros(n_host, np.bool_),
                   counts[i], host_counts[i], rec_out[i], host_rec_out[i], probe_out[i], synops[i])
