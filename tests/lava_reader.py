"""An independent reader of Lava-dl NetX HDF5 networks, for the tests (h5py + NumPy only).

Written from the format description (``shared/spec/loihi-semantics.md`` §7), deliberately
without importing ``loihi_core``: it checks what netx needs from a file and runs the
network with Lava's bit-accurate CUBA LIF step, so that an export can be judged by
something that does not share its code.

* :func:`read_netx` checks the layout (:class:`LayoutError` names the problem) and
  returns the layers;
* :func:`run_cuba` runs them on an input spike train.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import h5py
import numpy as np

#: Layer types netx can build from a file (pool/average/concat raise NotImplementedError).
SUPPORTED = ("input", "conv", "dense", "flatten")
REQUIRED = {
    "input": ("type", "shape"),
    "flatten": ("type", "shape"),
    "dense": ("type", "shape", "inFeatures", "outFeatures", "weight", "neuron"),
    "conv": ("type", "shape", "inChannels", "outChannels", "kernelSize", "stride", "padding",
             "dilation", "groups", "weight", "neuron"),
}
NEURON_KEYS = ("type", "iDecay", "vDecay", "vThMant", "refDelay", "gradedSpike")
U_BITS = 23  # Lava wraps the current to 24-bit signed
V_MAX = 2**23 - 1


class LayoutError(AssertionError):
    """The file is not a network netx can read (the message says why and where)."""


@dataclass
class Layer:
    kind: str
    shape: tuple[int, ...]
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    neuron: dict[str, int] = field(default_factory=dict)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    flatten_before: bool = False


def _check(cond: bool, where: str, msg: str) -> None:
    if not cond:
        raise LayoutError(f"{where}: {msg}")


def _type(ds, where: str) -> str:
    value = ds[()]
    if getattr(value, "shape", ()) != ():
        _check(value.shape == (1,), where, f"type must be a scalar or (1,) array, got {value.shape}")
        value = value[0]
    _check(isinstance(value, bytes), where, f"type must be an ascii string, got {value!r}")
    return value.decode("ascii")


def _int_scalar(group, key: str, where: str) -> int:
    ds = group[key]
    _check(isinstance(ds, h5py.Dataset), where, f"{key} must be a dataset, not a group")
    value = ds[()]
    _check(np.ndim(value) == 0 and np.issubdtype(np.asarray(value).dtype, np.integer), where,
           f"{key} must be an integer scalar, got {value!r}")
    return int(value)


def _pair(group, key: str, where: str) -> tuple[int, int]:
    value = np.asarray(group[key][()])
    _check(np.issubdtype(value.dtype, np.integer), where, f"{key} must be integer")
    if value.ndim == 0:
        return int(value), int(value)
    _check(value.shape == (2,), where, f"{key} must be a scalar or (y, x) pair, got {value.shape}")
    return int(value[0]), int(value[1])


def read_netx(path) -> list[Layer]:
    """Read and check a netx file; returns its layers (input first).

    Checks: ``/layer/0..n-1`` numbered without gaps; only input/conv/dense/flatten types,
    input first and only there; every required key per type; no ``messageBits`` anywhere;
    integer weights that are even and in [-256, 254]; integer biases of the right length;
    CUBA neuron parameters in range; shapes consistent from layer to layer (conv output
    sizes from kernel/stride/padding/dilation, dense feature counts, flatten only after a
    conv layer, a dense layer fed a flat vector).
    """
    layers: list[Layer] = []
    with h5py.File(path, "r") as f:
        names: list[str] = []
        f.visit(names.append)
        bad = [n for n in names if n.split("/")[-1] == "messageBits"]
        _check(not bad, str(path), f"messageBits must not be written (netx would get a group): {bad}")
        _check("layer" in f and isinstance(f["layer"], h5py.Group), str(path), "no /layer group")
        keys = sorted(f["layer"].keys(), key=lambda k: int(k) if k.isdigit() else -1)
        _check(keys == [str(i) for i in range(len(keys))], str(path),
               f"layers must be numbered 0..n-1, got {keys}")
        _check(len(keys) >= 2, str(path), "need an input layer and at least one neuron layer")
        prev_shape: tuple[int, ...] | None = None
        prev_kind = None
        pending_flatten = False
        for key in keys:
            g = f["layer"][key]
            where = f"layer/{key}"
            kind = _type(g["type"], where)
            _check(kind in SUPPORTED, where, f"type {kind!r} cannot be read by netx "
                   f"(supported: {', '.join(SUPPORTED)})")
            _check((kind == "input") == (key == "0"), where, "the input layer must be layer 0, "
                   "and only layer 0")
            missing = [k for k in REQUIRED[kind] if k not in g]
            _check(not missing, where, f"{kind} layer lacks {missing}")
            shape_arr = np.asarray(g["shape"][()])
            _check(shape_arr.ndim == 1 and np.issubdtype(shape_arr.dtype, np.integer)
                   and np.all(shape_arr > 0), where, f"shape must be positive ints, got {shape_arr}")
            shape = tuple(int(v) for v in shape_arr)
            layer = Layer(kind, shape)
            if kind == "input":
                _check(len(shape) in (1, 3), where, f"input shape must be (N,) or (C, H, W), got {shape}")
                _check("neuron" not in g, where, "an input neuron group would add a Lava Input "
                       "process; this reader expects spikes fed straight to layer 1")
            elif kind == "flatten":
                _check(prev_kind == "conv", where, "flatten must follow a conv layer")
                _check(int(np.prod(shape)) == int(np.prod(prev_shape)), where,
                       f"flatten of {prev_shape} cannot have shape {shape}")
                pending_flatten = True
            else:
                _read_neuron(g, where, layer)
                w = np.asarray(g["weight"][()])
                _check(np.issubdtype(w.dtype, np.integer), where, f"weight must be integer, got {w.dtype}")
                _check(w.size == 0 or (w.min() >= -256 and w.max() <= 254), where,
                       f"weights must lie in [-256, 254], got {w.min()}..{w.max()}")
                _check(np.all(w % 2 == 0), where, "8-bit mixed-sign weights must be even")
                layer.weight = w.astype(np.int64)
                if kind == "dense":
                    _read_dense(g, where, layer, prev_shape, pending_flatten)
                else:
                    _read_conv(g, where, layer, prev_shape)
                layer.flatten_before = pending_flatten
                pending_flatten = False
            layers.append(layer)
            prev_shape, prev_kind = shape, kind
        _check(not pending_flatten, str(path), "the file ends with a flatten layer")
    return layers


def _read_neuron(g, where: str, layer: Layer) -> None:
    n = g["neuron"]
    _check(isinstance(n, h5py.Group), where, "neuron must be a group")
    missing = [k for k in NEURON_KEYS if k not in n]
    _check(not missing, where, f"neuron lacks {missing}")
    _check(_type(n["type"], where + "/neuron") == "CUBA", where, "neuron type must be CUBA")
    p = {k: _int_scalar(n, k, where + "/neuron") for k in ("iDecay", "vDecay", "vThMant", "refDelay")}
    _check(0 <= p["iDecay"] <= 4096 and 0 <= p["vDecay"] <= 4096, where,
           f"decays must be 0..4096, got iDecay {p['iDecay']}, vDecay {p['vDecay']}")
    _check(1 <= p["vThMant"] <= 2**17 - 1, where, f"vThMant must be 1..131071, got {p['vThMant']}")
    layer.neuron = p


def _read_bias(g, where: str, n: int) -> np.ndarray:
    if "bias" not in g:
        return np.zeros(n, np.int64)
    b = np.asarray(g["bias"][()])
    _check(np.issubdtype(b.dtype, np.integer), where, f"bias must be integer, got {b.dtype}")
    _check(b.shape == (n,), where, f"bias must have shape ({n},), got {b.shape}")
    return b.astype(np.int64)


def _read_dense(g, where, layer: Layer, prev_shape, flattened: bool) -> None:
    n_in, n_out = _int_scalar(g, "inFeatures", where), _int_scalar(g, "outFeatures", where)
    _check(len(layer.shape) == 1 and layer.shape[0] == n_out, where,
           f"shape {layer.shape} does not match outFeatures {n_out}")
    _check(layer.weight.shape == (n_out, n_in), where,
           f"weight must be (outFeatures, inFeatures) = {(n_out, n_in)}, got {layer.weight.shape}")
    _check(len(prev_shape) == 1 or flattened, where,
           f"a dense layer after a {prev_shape} layer needs a flatten layer before it")
    _check(int(np.prod(prev_shape)) == n_in, where,
           f"inFeatures {n_in} does not match the previous layer's {prev_shape}")
    layer.bias = _read_bias(g, where, n_out)


def _read_conv(g, where, layer: Layer, prev_shape) -> None:
    c_in, c_out = _int_scalar(g, "inChannels", where), _int_scalar(g, "outChannels", where)
    groups = _int_scalar(g, "groups", where)
    kh, kw = _pair(g, "kernelSize", where)
    layer.stride, layer.padding = _pair(g, "stride", where), _pair(g, "padding", where)
    layer.dilation, layer.groups = _pair(g, "dilation", where), groups
    _check(prev_shape is not None and len(prev_shape) == 3, where,
           f"a conv layer needs a (C, H, W) input, got {prev_shape}")
    _check(prev_shape[0] == c_in, where, f"inChannels {c_in} != input channels {prev_shape[0]}")
    _check(layer.weight.shape == (c_out, c_in // groups, kh, kw), where,
           f"weight must be (out, in/groups, kH, kW) = {(c_out, c_in // groups, kh, kw)}, "
           f"got {layer.weight.shape}")
    out = [(n + 2 * p - d * (k - 1) - 1) // s + 1 for n, p, d, k, s in
           zip(prev_shape[1:], layer.padding, layer.dilation, (kh, kw), layer.stride)]
    _check(layer.shape == (c_out, *out), where,
           f"shape {layer.shape} does not follow from the input {prev_shape}: expected "
           f"{(c_out, *out)}")
    layer.bias = _read_bias(g, where, c_out)


# ---------------------------------------------------------------------------------------
# Lava's bit-accurate CUBA LIF
# ---------------------------------------------------------------------------------------

def _decay(x: np.ndarray, d: int) -> np.ndarray:
    """``trunc(x · (4096 − d) / 4096)`` in integers."""
    return np.sign(x) * ((np.abs(x) * (4096 - d)) >> 12)


def _wrap(x: np.ndarray, bits: int) -> np.ndarray:
    return ((x + (1 << bits)) % (1 << (bits + 1))) - (1 << bits)


def synaptic_input(layer: Layer, spikes: np.ndarray) -> np.ndarray:
    """``a_in`` of a layer for the previous layer's spikes (cross-correlation for conv)."""
    if layer.kind == "dense":
        return layer.weight @ spikes.reshape(-1)
    c_out, oh, ow = layer.shape
    sr, sc = layer.stride
    pr, pc = layer.padding
    dr, dc = layer.dilation
    x = np.pad(spikes, ((0, 0), (pr, pr), (pc, pc)))
    out = np.zeros((c_out, oh, ow), np.int64)
    _, _, kh, kw = layer.weight.shape
    for a in range(kh):
        for b in range(kw):
            patch = x[:, a * dr: a * dr + sr * (oh - 1) + 1: sr, b * dc: b * dc + sc * (ow - 1) + 1: sc]
            out += np.einsum("oc,chw->ohw", layer.weight[:, :, a, b], patch)
    return out


@dataclass
class CubaRun:
    """Spikes of every neuron layer ``(T, *shape)`` and the largest magnitudes seen."""

    spikes: list[np.ndarray]
    max_abs_input: int  # |a_in << 6|: Loihi wraps it at 2^21
    max_abs_current: int
    max_voltage: int
    min_voltage: int


def run_cuba(layers: list[Layer], inputs: np.ndarray, vmin: int | None = None) -> CubaRun:
    """Run the network on ``inputs`` ``(T, *input shape)`` (0/1 spikes, slayer order).

    Per step ``t`` and layer, with ``s`` the previous layer's spikes of step ``t − 1``
    (for the first layer: the input at ``t − 1``, zeros at ``t = 0``)::

        u ← trunc(u·(4096 − iDecay)/4096) + (a_in(s) << 6), wrapped to 24-bit signed
        v ← trunc(v·(4096 − vDecay)/4096) + u + (bias << 6), clipped to ±(2^23 − 1)
        spike where v > vThMant << 6; v ← 0 where spiking

    No refractory period. ``vmin`` (e.g. 0) additionally clamps ``v`` from below before
    the threshold test, as NengoLoihi does; Lava does not (``None``).
    """
    neurons = [layer for layer in layers if layer.kind in ("conv", "dense")]
    steps = inputs.shape[0]
    u = [np.zeros(layer.shape, np.int64) for layer in neurons]
    v = [np.zeros(layer.shape, np.int64) for layer in neurons]
    last = [np.zeros(layer.shape, np.int64) for layer in neurons]
    out = [np.zeros((steps, *layer.shape), np.uint8) for layer in neurons]
    stats = dict(inp=0, cur=0, vmax=0, vmin=0)
    for t in range(steps):
        pre = np.asarray(inputs[t - 1], np.int64) if t > 0 else np.zeros(inputs.shape[1:], np.int64)
        new = []
        for k, layer in enumerate(neurons):
            source = pre if k == 0 else last[k - 1]
            a_in = synaptic_input(layer, source) << 6
            bias = layer.bias.reshape(-1, *([1] * (len(layer.shape) - 1))) << 6
            u[k] = _wrap(_decay(u[k], layer.neuron["iDecay"]) + a_in, U_BITS)
            v[k] = np.clip(_decay(v[k], layer.neuron["vDecay"]) + u[k] + bias, -V_MAX, V_MAX)
            if vmin is not None:
                v[k] = np.maximum(v[k], vmin)
            stats["inp"] = max(stats["inp"], int(np.abs(a_in).max()))
            stats["cur"] = max(stats["cur"], int(np.abs(u[k]).max()))
            stats["vmax"] = max(stats["vmax"], int(v[k].max()))
            stats["vmin"] = min(stats["vmin"], int(v[k].min()))
            spiked = v[k] > (layer.neuron["vThMant"] << 6)
            v[k][spiked] = 0
            out[k][t] = spiked
            new.append(spiked.astype(np.int64))
        last = new
    return CubaRun(out, stats["inp"], stats["cur"], stats["vmax"], stats["vmin"])
