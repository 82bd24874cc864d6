"""Tuned-config JSON: validation with JSON paths, round-trips, fuzzing."""

from __future__ import annotations

import functools
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loihi_core.config import SCHEMA_VERSION, TunedConfig, load_config
from loihi_core.errors import ConfigError
from loihi_core.neurons import LoihiLIF, LoihiSpikingRectifiedLinear

EXAMPLE = {
    "schema_version": 1, "dt": 0.001, "presentation_steps": 30,
    "neuron": "LoihiSpikingRectifiedLinear", "scale_firing_rates": 100, "synapse": 0.005,
    "layers": {
        "to-spikes": {"on_chip": False},
        "conv0": {"scale_firing_rates": 400, "block_shape": [16, 16, 4]},
        "dense0": {"neuron": {"type": "LoihiLIF", "tau_rc": 0.05}, "synapse": None},
    },
}
SHAPES = {"input": (28, 28, 1), "to-spikes": (28, 28, 3), "conv0": (13, 13, 32),
          "conv1": (6, 6, 64), "flatten": (2304,), "dense0": (100,), "dense1": (10,)}


def test_defaults_follow_nengodl():
    c = TunedConfig()
    assert c.scale_firing_rates == 1.0 and c.synapse is None and c.dt == 0.001
    assert c.neuron == LoihiSpikingRectifiedLinear()
    s = c.for_layer("anything")
    assert (s.scale_firing_rates, s.synapse, s.on_chip, s.block_shape) == (1.0, None, None, None)


def test_layer_overrides_inherit_defaults():
    c = load_config(EXAMPLE)
    conv0 = c.for_layer("conv0")
    assert conv0.scale_firing_rates == 400 and conv0.block_shape == (16, 16, 4)
    assert conv0.synapse == 0.005 and conv0.on_chip is None
    assert c.for_layer("to-spikes").on_chip is False
    assert c.for_layer("to-spikes").scale_firing_rates == 100
    dense0 = c.for_layer("dense0")
    assert dense0.synapse is None  # explicit null = no filter, not "inherit"
    assert dense0.neuron == LoihiLIF(tau_rc=0.05)


def test_round_trip_is_identity(tmp_path):
    c = load_config(EXAMPLE)
    path = tmp_path / "cfg.json"
    c.save(path)
    again = load_config(path)
    assert again == c
    assert again.to_json() == c.to_json()
    assert json.loads(c.to_json())["layers"]["conv0"] == {"scale_firing_rates": 400.0,
                                                          "block_shape": [16, 16, 4]}


def test_every_problem_reported_with_its_path():
    bad = {"schema_version": 1, "dt": -1, "scale_firing_rates": -3, "blok_shape": 1,
           "layers": {"conv0": {"block_shape": [0, 4], "on_chip": "yes", "synapse": -0.1},
                      "dense0": {"scale_firing_rates": 0}}}
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    paths = [p for p, _ in info.value.problems]
    assert paths == ["blok_shape", "dt", "scale_firing_rates", "layers.conv0.block_shape",
                     "layers.conv0.on_chip", "layers.conv0.synapse",
                     "layers.dense0.scale_firing_rates"]
    assert "layers.conv0.block_shape: expected a list of positive ints" in str(info.value)


def test_block_shape_checked_against_the_layer_shape():
    c = load_config({"schema_version": 1, "layers": {"conv0": {"block_shape": [16, 4]}}})
    with pytest.raises(ConfigError, match=r"layers\.conv0\.block_shape: expected 3 positive ints "
                                          r"for a \(13, 13, 32\) layer, got \[16, 4\]"):
        c.validate_for(SHAPES)


def test_unknown_layer_names_are_errors():
    c = load_config({"schema_version": 1, "layers": {"conv9": {"scale_firing_rates": 3}}})
    with pytest.raises(ConfigError, match=r"layers\.conv9: the model has no layer 'conv9'"):
        c.validate_for(SHAPES)


def test_neuron_settings_on_a_linear_layer_are_errors():
    c = load_config({"schema_version": 1, "layers": {"dense1": {"scale_firing_rates": 3}}})
    with pytest.raises(ConfigError, match="has no nonlinearity"):
        c.validate_for(SHAPES, neuron_layers=["to-spikes", "conv0", "conv1", "dense0"])


@pytest.mark.parametrize("doc, message", [
    ({"presentation_steps": 10**9}, r"presentation_steps: 1000000000 steps per image is too many"),
    ({"dt": 5}, r"dt: a time step of 5 s is surely a mistake"),
    ({"dt": 1e-9}, r"dt: a time step of 1e-09 s"),
    ({"scale_firing_rates": 1e9}, r"scale_firing_rates: scale_firing_rates 1e\+09 is out of bounds"),
    ({"layers": {"conv0": {"scale_firing_rates": 1e-9}}},
     r"layers\.conv0\.scale_firing_rates: scale_firing_rates 1e-09 is out of bounds"),
    ({"input_range": [1, 0]}, r"input_range: expected \[low, high\]"),
    ({"input_range": [0]}, r"input_range: expected \[low, high\]"),
])
def test_values_out_of_sane_bounds_are_refused(doc, message):
    with pytest.raises(ConfigError, match=message):
        load_config({"schema_version": 1, **doc})


def test_input_range_round_trips_and_is_omitted_when_unset():
    c = load_config({"schema_version": 1, "input_range": [0, 255]})
    assert c.input_range == (0.0, 255.0)
    assert load_config(c.to_json()) == c
    assert "input_range" not in TunedConfig().to_dict()


def test_newer_schema_refused():
    with pytest.raises(ConfigError, match=f"reads up to version {SCHEMA_VERSION}; upgrade"):
        load_config({"schema_version": SCHEMA_VERSION + 1})


@pytest.mark.parametrize("text, message", [
    ('{"schema_version": 1, "dt": NaN}', "NaN is not allowed"),
    ('{"schema_version": 1, "dt": 0.001, "dt": 0.002}', "duplicate key 'dt'"),
    ('{"schema_version": 1,', "not valid JSON"),
    ('[1, 2]', "a tuned config is a JSON object"),
    ('{"dt": 0.001}', "schema_version: missing"),
    ('{"schema_version": 1, "neuron": "Sigmoid"}', "neuron:"),
])
def test_malformed_json_refused_clearly(text, message):
    with pytest.raises(ConfigError, match=message):
        load_config(text)


def test_missing_file_named(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.json")


def test_edits_are_validated_and_immutable():
    c = load_config(EXAMPLE)
    c2 = c.with_layer("conv1", scale_firing_rates=250.0, block_shape=(8, 8, 16))
    assert c.for_layer("conv1").scale_firing_rates == 100
    assert c2.for_layer("conv1").scale_firing_rates == 250 and c2.for_layer("conv1").block_shape == (8, 8, 16)
    assert c2.with_layer("conv1", block_shape=None).for_layer("conv1").block_shape is None
    with pytest.raises(ConfigError, match=r"layers\.conv1\.scale_firing_rates"):
        c.with_layer("conv1", scale_firing_rates=-1)
    assert c.with_defaults(presentation_steps=50).presentation_steps == 50


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10**6) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20)
config_like = st.fixed_dictionaries(
    {"schema_version": st.sampled_from([1, 1, 1, 2, 0, "1"])},
    optional={
        "dt": st.sampled_from([0.001, 0.002, -1, 0, "x", None, 1e-6, 1e-7, 1.0, 1.5]),
        "presentation_steps": st.sampled_from([1, 30, 0, 2.5, True, 10_000, 10_001, 10**9]),
        "neuron": st.sampled_from(["LoihiSpikingRectifiedLinear", "LoihiLIF", "LIF", "Bogus",
                                   {"type": "LoihiLIF", "tau_rc": 0.05}, {"type": "LoihiLIF", "x": 1}, 3]),
        "scale_firing_rates": st.sampled_from([1, 100.5, 0, -2, "a", 1e6, 1e7, 1e-7]),
        "synapse": st.sampled_from([None, 0.005, 0, -1, "a"]),
        "input_range": st.sampled_from([None, [0, 1], [-1, 1.5], [0, 255], [1], [0, "a"], "x", 3]),
        "layers": st.dictionaries(st.sampled_from(["conv0", "dense0", "x"]), json_values, max_size=3)
        | st.dictionaries(st.sampled_from(["conv0", "dense0"]), st.fixed_dictionaries({}, optional={
            "scale_firing_rates": st.sampled_from([1, 3.5, 0, -1]),
            "block_shape": st.sampled_from([[16, 16, 4], [50], [], [0], None, [1.5]]),
            "on_chip": st.sampled_from([True, False, 1]),
            "synapse": st.sampled_from([None, 0.01, -1])}), max_size=2),
        "extra": json_values,
    })


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(json_values, config_like))
def test_fuzz_loader_only_raises_config_error(doc):
    """Any JSON document either loads (and then round-trips) or raises ConfigError."""
    try:
        c = load_config(json.dumps(doc))
    except ConfigError as exc:
        assert exc.problems and all(isinstance(m, str) and m for _, m in exc.problems)
        return
    again = load_config(c.to_json())
    assert again == c and again.to_json() == c.to_json()


# ---------------------------------------------------------------------------------------
# the published JSON Schema agrees with the loader
# ---------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _schema_validator():
    import importlib.resources

    import jsonschema

    text = (importlib.resources.files("loihi_core") / "schemas" / "tuned-config-v1.schema.json").read_text()
    schema = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_schema_accepts_the_documented_example_and_what_we_write():
    validator = _schema_validator()
    validator.validate(EXAMPLE)
    validator.validate(json.loads(load_config(EXAMPLE).to_json()))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(json_values, config_like))
def test_schema_and_loader_agree(doc):
    """A document is valid for the schema exactly when the loader accepts it."""
    validator = _schema_validator()
    schema_ok = not list(validator.iter_errors(doc))
    try:
        load_config(json.dumps(doc))
        loader_ok = True
    except ConfigError:
        loader_ok = False
    assert schema_ok == loader_ok, doc
