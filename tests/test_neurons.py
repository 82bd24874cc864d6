"""Neuron models: golden rates from NengoLoihi, chip-true rates against the spiking step."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loihi_core import neurons as nt
from refcases import REFERENCE_DIR

REFERENCE_TYPES = {
    "loihi_relu": nt.LoihiSpikingRectifiedLinear(),
    "loihi_relu_amp0.01": nt.LoihiSpikingRectifiedLinear(amplitude=0.01),
    "loihi_lif_20_2": nt.LoihiLIF(),
    "loihi_lif_50_1": nt.LoihiLIF(tau_rc=0.05, tau_ref=0.001),
    "loihi_lif_20_2_amp0.005": nt.LoihiLIF(amplitude=0.005),
    "relu": nt.RectifiedLinear(),
    "lif_20_2": nt.LIFRate(),
}
#: Columns whose values come straight out of a libm function (compared within a few ulp).
#: The Loihi LIF columns also call log1p, but the result is rounded to whole steps
#: (``ceil(period / dt)``), so they are compared bit for bit.
LIBM_VALUED = {"lif_20_2"}


@pytest.fixture(scope="module")
def rates_ref():
    with np.load(REFERENCE_DIR / "rates.npz") as z:
        return {k: z[k] for k in z.files}


@pytest.mark.parametrize("dt", [0.001, 0.002])
@pytest.mark.parametrize("name", list(REFERENCE_TYPES))
def test_rates_equal_nengo_loihi_bit_for_bit(rates_ref, name, dt):
    neuron = REFERENCE_TYPES[name]
    got = neuron.rates(rates_ref["x"], rates_ref["gain"], rates_ref["bias"], dt)
    expected = rates_ref[f"dt{dt}/{name}"]
    assert got.shape == expected.shape == (1601, 4)
    if name in LIBM_VALUED:
        # nengo's ideal LIFRate is a float formula around np.log1p, whose SIMD code path
        # (AVX2 vs AVX-512 ...) differs between CPUs by an ulp: CI may run on another CPU
        # than the one the reference was made on. Everything Loihi-quantized stays exact.
        np.testing.assert_array_max_ulp(got, expected, maxulp=4)
        np.testing.assert_array_equal(got > 0, expected > 0)
    else:
        np.testing.assert_array_equal(got, expected)


def test_discretized_time_constants():
    assert nt.discretize_tau_rc(0.02, 0.001) == pytest.approx(0.01997082742119743, rel=1e-15)
    assert nt.discretize_tau_ref(0.002, 0.001) == 0.002
    assert nt.discretize_tau_ref(0.0024, 0.001) == 0.002


def test_worked_examples_reference_vs_chip():
    """Spec §9.1: rates() assumes v >= 1, the chip fires on v > 1."""
    relu = nt.LoihiSpikingRectifiedLinear()
    J = np.array([0.5, 10, 250, 300, 1000, 2000])
    np.testing.assert_allclose(relu.rates(J, 1, 0)[:, 0], [0.5, 10, 250, 250, 1000, 1000])
    np.testing.assert_allclose(relu.chip_rates(J, 1, 0)[:, 0],
                               [1000 / 2001, 1000 / 101, 200, 250, 500, 1000])
    lif = nt.LoihiLIF()
    J = np.array([1.01, 1.1, 1.5, 2, 5, 10, 20, 40, 100])
    np.testing.assert_allclose(lif.rates(J, 1, 0)[:, 0],
                               [10.526315789, 20, 41.6666667, 62.5, 142.857143, 200, 250,
                                1000 / 3, 1000 / 3], rtol=1e-8)
    assert lif.max_rate(0.001) == pytest.approx(1000 / 3)
    assert relu.max_rate(0.001) == 1000


def _isi_rate(neuron, J, dt, steps=4000):
    """Rate from the steady inter-spike interval (exact, unlike a windowed count)."""
    state = neuron.make_state(J.shape)
    last = np.full(J.shape, -1)
    isi = np.zeros(J.shape)
    for t in range(steps):
        spiked = neuron.step(J, dt, state) != 0
        isi[spiked & (last >= 0)] = t - last[spiked & (last >= 0)]
        last[spiked] = t
    with np.errstate(divide="ignore"):
        return np.where(isi > 0, neuron.amplitude / (isi * dt), 0.0)


@pytest.mark.parametrize("neuron", [nt.LoihiSpikingRectifiedLinear(), nt.LoihiLIF(),
                                    nt.LoihiLIF(tau_rc=0.05, tau_ref=0.001, amplitude=0.5)])
def test_chip_rates_equal_the_spiking_step_at_steady_state(neuron):
    rng = np.random.default_rng(0)
    dt = 0.001
    # currents away from exact period boundaries (where float accumulation decides)
    J = np.concatenate([rng.uniform(1.2, 60, 200), rng.uniform(60, 3000, 200)])
    chip = neuron.chip_rates(J, 1.0, 0.0, dt)[:, 0]
    steady = _isi_rate(neuron, J, dt)
    # the float step loses an ulp now and then; only currents within 1e-9 of a period
    # boundary may disagree, and a random draw lands there with negligible probability
    np.testing.assert_allclose(steady, chip, rtol=1e-12)
    # rates() is never below the chip's rate, and equal away from exact-integer periods
    assert np.all(neuron.rates(J, 1.0, 0.0, dt)[:, 0] >= chip)


def test_exact_integer_periods_need_one_more_step_on_the_chip():
    relu = nt.LoihiSpikingRectifiedLinear()
    J = np.array([250.0, 1000.0])  # exact periods: 4 and 1 steps by rates()
    steady = _isi_rate(relu, J, 0.001, steps=200)
    np.testing.assert_allclose(steady, [200, 500])
    np.testing.assert_allclose(relu.chip_rates(J, 1, 0)[:, 0], [200, 500])


@settings(max_examples=200, deadline=None)
@given(st.floats(0.01, 5000), st.sampled_from([0.001, 0.002]))
def test_loihi_rates_are_quantized_and_capped(J, dt):
    for neuron in (nt.LoihiSpikingRectifiedLinear(), nt.LoihiLIF()):
        for r in (neuron.rates(J, 1, 0, dt).item(), neuron.chip_rates(J, 1, 0, dt).item()):
            assert 0 <= r <= neuron.max_rate(dt) * (1 + 1e-12)
            if r > 0:
                period_steps = 1 / (r * dt)
                assert abs(period_steps - round(period_steps)) < 1e-6


def test_smooth_rates_run_through_the_staircase():
    relu = nt.LoihiSpikingRectifiedLinear()
    J = np.linspace(1, 3000, 500)
    smooth = relu.smooth_rates(J, 0.001)
    np.testing.assert_allclose(smooth, J / (1 + 0.0005 * J))
    assert np.all(smooth <= J)
    lif = nt.LoihiLIF()
    s = lif.smooth_rates(np.array([0.5, 2.0]), 0.001)
    assert s[0] == 0 and s[1] == pytest.approx(
        1 / (0.0025 + nt.discretize_tau_rc(0.02, 0.001) * np.log(2)))


def test_ideal_spiking_relu_emits_several_spikes_per_step():
    neuron = nt.SpikingRectifiedLinear()
    state = neuron.make_state((1,))
    out = neuron.step(np.array([2500.0]), 0.001, state)
    assert out[0] == 2000  # two spikes of amplitude/dt


@pytest.mark.parametrize("value, expected", [
    ("LoihiLIF", nt.LoihiLIF()),
    ({"type": "LoihiLIF", "tau_rc": 0.05}, nt.LoihiLIF(tau_rc=0.05)),
    ("loihi", nt.LoihiSpikingRectifiedLinear()),
    ({"type": "LoihiSpikingRectifiedLinear", "amplitude": 0.5}, nt.LoihiSpikingRectifiedLinear(0.5)),
])
def test_neuron_config_round_trip(value, expected):
    neuron = nt.neuron_from_config(value)
    assert neuron == expected
    assert nt.neuron_from_config(neuron.to_config()) == neuron


@pytest.mark.parametrize("value, message", [
    ("Sigmoid", "unknown neuron type 'Sigmoid'"),
    ({"type": "LoihiLIF", "tau_rcc": 1}, "LoihiLIF has no parameter 'tau_rcc'"),
    ({"type": "LoihiLIF", "tau_rc": -1}, "tau_rc must be a finite number > 0"),
    ({"type": "LoihiSpikingRectifiedLinear", "amplitude": "big"}, "amplitude must be a number"),
    ({"tau_rc": 1}, "needs a \"type\""),
    (3, "expected a neuron type name"),
])
def test_bad_neuron_configs_name_the_problem(value, message):
    with pytest.raises((ValueError, TypeError), match=message):
        nt.neuron_from_config(value)
