"""The zoo (``tests/zoo.py``): every architecture goes load → convert → rate mode →
automatic block shapes → map → emulate, from a ``.keras`` file saved by Keras 3."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from loihi_core.convert import convert  # noqa: E402
from loihi_core.emulator import Emulator  # noqa: E402
from loihi_core.graph import load_model  # noqa: E402
from loihi_core.mapping import map_to_chip  # noqa: E402
from loihi_core.simulate import run_rates  # noqa: E402
from zoo import APPROXIMATE, BUILDERS  # noqa: E402


def _randomize(model, seed=0):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        new = []
        for var in layer.weights:
            shape = tuple(var.shape)
            if var.name == "moving_variance":
                new.append(rng.uniform(0.5, 1.5, shape))
            elif var.name == "gamma":
                new.append(rng.uniform(0.5, 1.5, shape))
            else:
                new.append(rng.normal(0, 0.3, shape))
        if new:
            layer.set_weights([w.astype("float32") for w in new])
    return model


@pytest.fixture(scope="module")
def zoo_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("zoo")
    files = {}
    for name, build in BUILDERS.items():
        model = _randomize(build())
        model.save(root / f"{name}.keras")
        files[name] = (root / f"{name}.keras", model)
    return files


def test_the_zoo_has_at_least_15_architectures():
    assert len(BUILDERS) >= 15


@pytest.mark.parametrize("name", list(BUILDERS))
def test_zoo_rate_mode_equals_keras(name, zoo_files):
    path, model = zoo_files[name]
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, (3, *model.input_shape[1:])).astype(np.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net = convert(load_model(path), {"schema_version": 1, "neuron": "RectifiedLinear"})
    announced = any("replaced by" in str(w.message) for w in caught)
    assert announced == (name in APPROXIMATE)
    got = run_rates(net, x, ideal=True).reshape(len(x), -1)
    want = model.predict(x, verbose=0).reshape(len(x), -1)
    if name in APPROXIMATE:
        assert not np.allclose(got, want, atol=1e-3)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * max(1.0, np.abs(want).max()))


@pytest.mark.parametrize("name", list(BUILDERS))
def test_zoo_maps_with_automatic_block_shapes_and_emulates(name, zoo_files):
    path, model = zoo_files[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max pooling, relu6 saturation
        net = convert(path, {"schema_version": 1, "scale_firing_rates": 200, "synapse": 0.005,
                             "presentation_steps": 20})
    chip = map_to_chip(net, auto_block_shapes=True)
    for block in chip.blocks:
        for resource, (used, limit) in block.utilization().items():
            assert used <= limit, (name, block.layer, resource)
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 1, (2, *model.input_shape[1:])).astype(np.float32)
    result = Emulator(chip).run(x, mode="independent")
    assert result.output.shape == (2, 20, int(np.prod(model.output_shape[1:])))
    assert np.isfinite(result.output).all()
    fired = {k: int(v.sum()) for k, v in result.spike_counts.items()}
    assert sum(fired.values()) > 0, fired
    assert result.synaptic_ops.sum() > 0
