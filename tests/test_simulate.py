"""Rate mode and float spiking mode, and the exact composition of linear maps, without TensorFlow.

The Keras side of these checks comes from the reference data (``keras_output``, spikes of
the host-side first layer in nengo-loihi) and from naive loop implementations of the
TensorFlow conv/pooling semantics written here.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loihi_core import neurons as nt
from loihi_core.network import Connection, NeuronLayer, Readout, SpikingNetwork
from loihi_core.simulate import connection_operator, ideal_neuron, run_rates, run_spiking
from refcases import CASES, load_case, reference_network


# ---------------------------------------------------------------------------------------
# naive TensorFlow semantics
# ---------------------------------------------------------------------------------------

def naive_conv(x: np.ndarray, kernel: np.ndarray, strides, padding: str) -> np.ndarray:
    """Cross-correlation of one (H, W, C) image, TensorFlow's padding rule, plain loops."""
    h, w, _ = x.shape
    kh, kw, _, f = kernel.shape
    sr, sc = strides
    if padding == "valid":
        oh, ow, pt, pl = (h - kh) // sr + 1, (w - kw) // sc + 1, 0, 0
    else:
        oh, ow = -(-h // sr), -(-w // sc)
        pt = max((oh - 1) * sr + kh - h, 0) // 2
        pl = max((ow - 1) * sc + kw - w, 0) // 2
    out = np.zeros((oh, ow, f))
    for i in range(oh):
        for j in range(ow):
            for a in range(kh):
                for b in range(kw):
                    r, c = i * sr + a - pt, j * sc + b - pl
                    if 0 <= r < h and 0 <= c < w:
                        out[i, j] += x[r, c] @ kernel[a, b]
    return out


def naive_avg_pool(x: np.ndarray, pool) -> np.ndarray:
    ph, pw = pool
    hp, wp = x.shape[0] // ph, x.shape[1] // pw
    out = np.zeros((hp, wp, x.shape[2]))
    for i in range(hp):
        for j in range(wp):
            out[i, j] = x[i * ph:(i + 1) * ph, j * pw:(j + 1) * pw].mean(axis=(0, 1))
    return out


conv_cases = st.fixed_dictionaries({
    "h": st.integers(1, 9), "w": st.integers(1, 9), "c": st.integers(1, 3),
    "kh": st.integers(1, 4), "kw": st.integers(1, 4), "f": st.integers(1, 3),
    "sr": st.integers(1, 3), "sc": st.integers(1, 3),
    "padding": st.sampled_from(["valid", "same"]), "seed": st.integers(0, 2**31),
})


def _conv_connection(kernel, pre_shape, post_shape, strides, padding) -> Connection:
    return Connection(pre="a", post="b", kind="conv", weights=kernel, pre_shape=pre_shape,
                      post_shape=post_shape, strides=strides, padding=padding)


@settings(max_examples=80, deadline=None)
@given(conv_cases)
def test_conv_operator_equals_naive_tensorflow_conv(p):
    if p["padding"] == "valid" and (p["kh"] > p["h"] or p["kw"] > p["w"]):
        return
    rng = np.random.default_rng(p["seed"])
    x = rng.normal(size=(3, p["h"], p["w"], p["c"]))
    kernel = rng.normal(size=(p["kh"], p["kw"], p["c"], p["f"]))
    strides = (p["sr"], p["sc"])
    expected = np.stack([naive_conv(xi, kernel, strides, p["padding"]) for xi in x])
    conn = _conv_connection(kernel, x.shape[1:], expected.shape[1:], strides, p["padding"])
    got = connection_operator(conn)(x.reshape(3, -1))
    np.testing.assert_allclose(got, expected.reshape(3, -1), rtol=1e-12, atol=1e-12)


def _same_or_valid(n, k, s, padding):
    if padding == "valid":
        return (n - k) // s + 1, 0
    out = -(-n // s)
    return out, max((out - 1) * s + k - n, 0) // 2


@settings(max_examples=150, deadline=None)
@given(conv_cases, st.integers(1, 3), st.integers(1, 3), st.integers(1, 3),
       st.sampled_from([1, "depthwise"]))
def test_composed_linear_maps_equal_applying_them_in_turn(p, k1, s1, pad1, groups):
    """Any conv-like map (a pooling, a padding, a depthwise or plain conv) followed by a
    conv is one exact map: a single conv when the second never reads the first's padding,
    else a matrix (the converter's :meth:`Conv.then`)."""
    from loihi_core.converter.linear import Conv

    rng = np.random.default_rng(p["seed"])
    h, w, c, f = p["h"] + 3, p["w"] + 3, p["c"], p["f"]
    g1 = c if groups == "depthwise" else 1
    oh1, _ = _same_or_valid(h + 2 * (pad1 - 1), k1, s1, "valid")
    ow1, _ = _same_or_valid(w + 2 * (pad1 - 1), k1, s1, "valid")
    if oh1 < 1 or ow1 < 1:
        return
    first = Conv(rng.normal(size=(k1, k1, c // g1, c)), (s1, s1), (pad1 - 1, pad1 - 1), g1,
                 (h, w, c), (oh1, ow1, c))
    kh, kw, sr, sc = p["kh"], p["kw"], p["sr"], p["sc"]
    if p["padding"] == "valid" and (kh > oh1 or kw > ow1):
        return
    oh2, top = _same_or_valid(oh1, kh, sr, p["padding"])
    ow2, left = _same_or_valid(ow1, kw, sc, p["padding"])
    second = Conv(rng.normal(size=(kh, kw, c, f)), (sr, sc), (top, left), 1, (oh1, ow1, c),
                  (oh2, ow2, f))
    x = rng.normal(size=(2, h * w * c))
    expected = second.apply(first.apply(x))
    composed = first.then(second)
    np.testing.assert_allclose(composed.apply(x), expected, rtol=1e-10, atol=1e-10)
    if isinstance(composed, Conv):
        assert composed.strides == (s1 * sr, s1 * sc)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 9), st.integers(1, 9), st.integers(1, 3), st.integers(1, 4),
       st.integers(1, 4), st.integers(0, 2**31))
def test_average_pooling_folds_exactly_into_flatten_dense(h, w, c, ph, pw, seed):
    from loihi_core.converter.linear import Conv, Matrix

    if ph > h or pw > w:
        return
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(h, w, c))
    pooled = naive_avg_pool(x, (ph, pw))
    weights = rng.normal(size=(pooled.size, 5))
    pool = Conv(np.full((ph, pw, 1, c), 1.0 / (ph * pw)), (ph, pw), (0, 0), c, (h, w, c),
                pooled.shape)
    composed = pool.then(Matrix(weights))
    np.testing.assert_allclose(composed.apply(x.reshape(1, -1))[0], pooled.reshape(-1) @ weights,
                               rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------------------
# rate mode on the reference networks (Keras outputs stored in the npz)
# ---------------------------------------------------------------------------------------

def _with_neuron(network: SpikingNetwork, neuron) -> SpikingNetwork:
    layers = {k: dataclasses.replace(v, neuron=neuron) for k, v in network.layers.items()}
    return dataclasses.replace(network, layers=layers)


@pytest.mark.parametrize("case", CASES)
def test_rate_mode_with_ideal_neurons_equals_keras_output(case):
    net = _with_neuron(reference_network(case), nt.RectifiedLinear())
    ref = load_case(case).arrays
    out = run_rates(net, ref["images"])
    keras = ref["keras_output"].astype(np.float64)
    np.testing.assert_allclose(out, keras, rtol=1e-5, atol=1e-6 * np.abs(keras).max())


@pytest.mark.parametrize("case", CASES)
def test_rate_mode_ideal_flag_matches_explicit_ideal_neurons(case):
    net = reference_network(case)
    images = load_case(case).arrays["images"]
    got, got_layers = run_rates(net, images, return_layers=True, ideal=True)
    ideal = reference_network(case)
    ideal.layers = {k: dataclasses.replace(v, neuron=ideal_neuron(v.neuron))
                    for k, v in ideal.layers.items()}
    want, want_layers = run_rates(ideal, images, return_layers=True)
    np.testing.assert_array_equal(got, want)
    for name in net.layers:
        np.testing.assert_array_equal(got_layers[name], want_layers[name])


def test_rate_mode_uses_the_loihi_rate_staircase():
    """With LoihiSpikingRectifiedLinear each neuron outputs amplitude·1000/n (n integer)."""
    net = reference_network("dense_relu")
    images = load_case("dense_relu").arrays["images"]
    _, layers = run_rates(net, images, return_layers=True)
    for name, layer in net.layers.items():
        hz = layers[name].reshape(-1) / layer.amplitude  # back to Hz
        periods = 1000.0 / hz[hz > 0]
        np.testing.assert_allclose(periods, np.round(periods), rtol=1e-9)
        assert hz.max() <= 1000.0


def test_rate_mode_return_layers_shapes_and_flat_images():
    net = reference_network("conv_relu")
    images = load_case("conv_relu").arrays["images"]
    out, layers = run_rates(net, images, return_layers=True)
    assert out.shape == (len(images), 3)
    assert {k: v.shape[1:] for k, v in layers.items()} == {k: v.shape for k, v in net.layers.items()}
    np.testing.assert_array_equal(run_rates(net, images.reshape(len(images), -1)), out)
    with pytest.raises(ValueError, match=r"has shape \(3, 5, 10, 1\), but the model takes \(n, 10, 10, 1\)"):
        run_rates(net, images[:, :5])


# ---------------------------------------------------------------------------------------
# float spiking mode
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES)
def test_sequential_spiking_reproduces_the_host_layer_spikes_of_nengo_loihi(case):
    """The first (off-chip) layer runs nengo's float step on the host in the reference,
    images back to back without reset: ``reset=False`` must give the same spikes, bit for bit."""
    net = reference_network(case)
    ref = load_case(case)
    steps = ref.steps_per_image
    result = run_spiking(net, ref.arrays["images"], steps, reset=False, record_spikes=True)
    first = next(iter(net.layers))
    got = result.spikes[first].reshape(-1, net.layers[first].n_neurons)  # image-major = time
    np.testing.assert_array_equal(got, ref.arrays[f"spikes/{first}"])


def _tiny_network(synapse: float | None, neuron=None) -> SpikingNetwork:
    neuron = neuron or nt.SpikingRectifiedLinear()
    w1 = np.array([[1.0, 0.5, -1.0], [0.25, 1.0, 2.0]], np.float32)
    w2 = np.array([[0.5, 1.0], [1.0, -0.5], [0.3, 0.3]], np.float32)
    layers = {
        "a": NeuronLayer("a", (3,), neuron, 40.0, np.array([0.0, 4.0, 8.0]), neuron.amplitude / 40,
                         False, synapse),
        "b": NeuronLayer("b", (2,), neuron, 20.0, np.array([2.0, 0.0]), neuron.amplitude / 20,
                         True, synapse),
    }
    conns = [Connection("x", "a", "dense", w1, (2,), (3,)),
             Connection("a", "b", "dense", w2, (3,), (2,), synapse=synapse)]
    readout = Readout("out", "b", np.array([[1.0], [2.0]], np.float32),
                      np.array([0.5], np.float32), (1,))
    return SpikingNetwork("x", (2,), layers, conns, readout, dt=0.001, presentation_steps=200)


def _manual_simulation(net: SpikingNetwork, x: np.ndarray, steps: int):
    """One image, written out step by step: nengo timing (filtered hops read last step)."""
    dt, tau = net.dt, net.layers["a"].synapse
    a = math.exp(-dt / tau)
    la, lb = net.layers["a"], net.layers["b"]
    sa, sb = la.neuron.make_state((1, 3)), lb.neuron.make_state((1, 2))
    fa, fb = np.zeros(3), np.zeros(2)
    w1, w2 = (c.weights.astype(np.float64) for c in net.connections)
    outs = []
    for _ in range(steps):
        ja = la.gain * (x @ w1) + la.bias
        oa = (la.neuron.step(ja[None], dt, sa)[0] != 0) * (la.amplitude / dt)
        jb = lb.gain * (fa @ w2) + lb.bias
        ob = (lb.neuron.step(jb[None], dt, sb)[0] != 0) * (lb.amplitude / dt)
        outs.append(fb @ net.readout.weights.astype(np.float64) + net.readout.bias)
        fa = a * fa + (1 - a) * oa
        fb = a * fb + (1 - a) * ob
    return np.array(outs)


def test_spiking_follows_nengo_timing_and_zero_order_hold_lowpass():
    net = _tiny_network(0.01)
    x = np.array([[0.6, 0.2]], np.float32)
    result = run_spiking(net, x, 200)
    expected = _manual_simulation(net, x[0].astype(np.float64), 200)
    np.testing.assert_allclose(result.output[0], expected, rtol=1e-12, atol=1e-12)


def test_spiking_batch_members_are_independent_simulations():
    net = _tiny_network(0.005)
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 1, (4, 2)).astype(np.float32)
    batch = run_spiking(net, x, 120, record_spikes=True)
    for i in range(4):
        one = run_spiking(net, x[i:i + 1], 120, record_spikes=True)
        np.testing.assert_array_equal(batch.output[i], one.output[0])
        for name in net.layers:
            np.testing.assert_array_equal(batch.spikes[name][i], one.spikes[name][0])
            np.testing.assert_array_equal(batch.spike_counts[name][i], one.spike_counts[name][0])
    assert batch.output.shape == (4, 120, 1)


def test_spiking_rates_approach_rate_mode_for_long_presentations():
    """A layer with constant input fires at its rate-mode rate (to one spike); the next
    layer, driven by filtered spikes, comes close."""
    net = _tiny_network(0.005, nt.LoihiSpikingRectifiedLinear())
    x = np.array([[0.6, 0.2], [0.1, 0.9]], np.float32)
    steps = 4000
    result = run_spiking(net, x, steps)
    _, layers = run_rates(net, x, return_layers=True)
    one_spike = net.layers["a"].amplitude / (steps * net.dt)
    assert np.all(np.abs(result.activities["a"] - layers["a"]) <= one_spike * 1.0001)
    assert layers["a"].max() > 100 * one_spike  # not trivially silent
    np.testing.assert_allclose(result.activities["b"], layers["b"], rtol=0.05, atol=3 * one_spike)
    for name in net.layers:
        assert np.all(result.spike_counts[name] <= steps)
    np.testing.assert_allclose(result.rates["a"], result.spike_counts["a"] / (steps * net.dt))


def test_spiking_without_synapse_is_immediate():
    net = _tiny_network(None)
    x = np.array([[0.6, 0.2]], np.float32)
    result = run_spiking(net, x, 50, record_spikes=True)
    # with no synapse, the readout at step t is computed from b's spikes at step t
    b = result.spikes["b"][0].astype(np.float64) * (net.layers["b"].amplitude / net.dt)
    expected = b @ net.readout.weights.astype(np.float64) + net.readout.bias
    np.testing.assert_allclose(result.output[0], expected, rtol=1e-12)
    assert result.predictions.shape == (1,)
