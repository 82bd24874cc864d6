"""Rate measurement in rate mode and on the emulator."""

from __future__ import annotations

import numpy as np
import pytest

from loihi_core.calibrate import LayerRates, measure_rates, rate_mode_rates
from loihi_core.simulate import connection_operator
from refcases import load_case, reference_network


def test_rate_mode_passes_chip_true_rates_layer_to_layer():
    net = reference_network("dense_relu")
    images = load_case("dense_relu").arrays["images"]
    rates = rate_mode_rates(net, images)
    x = images.reshape(len(images), -1).astype(np.float64)
    for name, layer in net.layers.items():
        (conn,) = net.connections_into(name)
        J = layer.gain * connection_operator(conn)(x) + layer.bias
        np.testing.assert_allclose(rates[name], layer.neuron.chip_rates_from_current(J, net.dt))
        x = rates[name] * layer.amplitude
    assert all(r.max() <= 1000 for r in rates.values())


def test_rate_statistics_follow_the_tutorials_definition():
    stats = LayerRates.from_rates(np.array([[0, 100, 1000], [0, 0, 500]]), ceiling=1000)
    assert stats.mean_active == pytest.approx(1600 / 3) and stats.mean_all == pytest.approx(1600 / 6)
    assert (stats.active_fraction, stats.saturated_fraction, stats.max_rate) == (0.5, 1 / 6, 1000)


def test_emulator_and_rate_measurements_agree_roughly():
    net = reference_network("tutorial_random")
    images = np.random.default_rng(2).uniform(0, 1, (8, 28, 28, 1)).astype(np.float32)
    emu = measure_rates(None, images, network=net, method="emulator", presentation_steps=100)
    rate = measure_rates(None, images, network=net, method="rate")
    for name in ("to-spikes", "conv0"):
        assert emu[name].mean_active == pytest.approx(rate[name].mean_active, rel=0.25)
