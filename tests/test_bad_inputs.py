"""Bad inputs, CLI and API: every one gets the project's error and a message naming the cause.

CLI cases run ``loihi_core.cli.main`` in-process (argparse's errors exit through
``SystemExit``) and assert exit code 2, one line on stderr naming the cause, and no
traceback; a few run the real ``python -m loihi_core`` in a subprocess. API cases assert
the project's error type (every one a :class:`LoihiStudioError`) and the message.
The data loader is fuzzed with hypothesis (the config loader is fuzzed in test_config.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import loihi_core as lc
from loihi_core.cli import main
from loihi_core.data import load_images_npz
from loihi_core.errors import (ArgumentError, ConfigError, DataError, DataRangeWarning,
                               LoihiStudioError, MappingError, ModelLoadError)
from loihi_core.inputs import as_images
from refcases import case_config, load_case, reference_network

ROOT = Path(__file__).resolve().parent.parent
DENSE = load_case("dense_relu")  # 16 inputs → hidden (16 relu) → 3 outputs
TUTORIAL = load_case("tutorial_random")  # (28, 28, 1) → to-spikes, conv0, conv1, dense0


# ---------------------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------------------

def _npz(path: Path, **arrays) -> str:
    np.savez(path, **arrays)
    return str(path)


def _json(path: Path, doc) -> str:
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return str(path)


@pytest.fixture(scope="module")
def f(tmp_path_factory):
    """Every file the CLI cases name, as ``{key: path}``."""
    d = tmp_path_factory.mktemp("bad")
    x = DENSE.arrays["images"]
    good_cfg = case_config("dense_relu")
    files = {
        "model": str(DENSE.keras_path), "tmodel": str(TUTORIAL.keras_path), "dir": str(d),
        "missing": str(d / "missing.keras"), "out": str(d / "out.npz"),
        "outcfg": str(d / "out.json"), "nofolder": str(d / "no" / "such" / "o.npz"),
        "outkeras": str(d / "tuned.keras"), "nofolderkeras": str(d / "no" / "t.keras"),
        "dev": "/dev/null",
        "cfg": _json(d / "cfg.json", good_cfg),
        "tcfg": _json(d / "tcfg.json", case_config("tutorial_random")),
        "ranged": _json(d / "ranged.json", {**good_cfg, "input_range": [0, 1]}),
        "data": _npz(d / "data.npz", images=x, labels=np.array([0, 1, 2, 0])),
        "tdata": _npz(d / "tdata.npz", images=TUTORIAL.arrays["images"]),
    }
    (d / "afile").write_text("x")
    files["underfile"] = str(d / "afile" / "o.npz")
    bad_data = {
        "shape": dict(images=np.zeros((2, 5), np.float32)),
        "nan": dict(images=np.where(np.arange(16) == 3, np.nan, 0.5)[None].repeat(2, 0)),
        "inf": dict(images=np.full((2, 16), np.inf)),
        "complex": dict(images=np.zeros((2, 16), complex)),
        "bool": dict(images=np.zeros((2, 16), bool)),
        "int": dict(images=np.zeros((2, 16), np.int64)),
        "empty": dict(images=np.zeros((0, 16), np.float32)),
        "nokey": dict(pixels=np.zeros((2, 16))),
        "onehot": dict(images=x, labels=np.eye(4)),
        "nlabels": dict(images=x, labels=np.array([0, 1])),
        "neglabels": dict(images=x, labels=np.array([0, -1, 0, 0])),
        "floatlabels": dict(images=x, labels=np.array([0.5, 1, 2, 0])),
        "pixels255": dict(images=np.round(x * 255)),
        "tshape": dict(images=np.zeros((2, 28, 28, 3), np.float32)),
        "tnan": dict(images=np.full((2, 28, 28, 1), np.nan, np.float32)),
        "t255": dict(images=np.round(TUTORIAL.arrays["images"] * 255)),
    }
    for key, arrays in bad_data.items():
        files[f"d_{key}"] = _npz(d / f"{key}.npz", **arrays)
    files["d_pickle"] = _npz(d / "pickle.npz", images=np.array([{"a": 1}, None], dtype=object))
    files["d_text"] = _json(d / "text.npz", "images,labels\n")
    bad_configs = {
        "steps": {**good_cfg, "presentation_steps": 10**9},
        "steps0": {**good_cfg, "presentation_steps": 0},
        "dt": {**good_cfg, "dt": 5},
        "dt0": {**good_cfg, "dt": 0},
        "scale": {**good_cfg, "scale_firing_rates": 1e9},
        "layerscale": {**good_cfg, "layers": {"hidden": {"scale_firing_rates": 1e-9}}},
        "unknown": {**good_cfg, "blok_shape": [4]},
        "layername": {**good_cfg, "layers": {"hiden": {"block_shape": [4]}}},
        "blockshape": {**good_cfg, "layers": {"hidden": {"block_shape": [4, 4]}}},
        "newer": {**good_cfg, "schema_version": 99},
        "list": [1, 2],
        "neuron": {**good_cfg, "neuron": "Sigmoid"},
        "range": {**good_cfg, "input_range": [1, 0]},
        "nchips": {**good_cfg, "n_chips": 40},
        "synapse": {**good_cfg, "synapse": -1},
    }
    for key, doc in bad_configs.items():
        files[f"c_{key}"] = _json(d / f"c_{key}.json", doc)
    files["c_json"] = _json(d / "c_json.json", '{"schema_version": 1,')
    files["c_nan"] = _json(d / "c_nan.json", '{"schema_version": 1, "dt": NaN}')
    files["m_text"] = _json(d / "text.keras", "not a zip")
    files["m_h5"] = _json(d / "model.h5", "x")
    with zipfile.ZipFile(d / "empty.keras", "w") as z:
        z.writestr("readme.txt", "no config")
    files["m_zip"] = str(d / "empty.keras")
    return files


def cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """Run the CLI in-process: ``(exit code, stdout, stderr)``."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def _fill(argv: list[str], files: dict) -> list[str]:
    return [files[a[1:]] if a.startswith("@") else a for a in argv]


SIM = ["simulate", "@model", "--config", "@cfg", "--inputs", "@data", "--out", "@out"]
CAL = ["calibrate", "@model", "--config", "@cfg", "--data", "@data", "--out", "@outcfg"]


def _with(base: list[str], flag: str, value: str) -> list[str]:
    """``base`` with ``flag``'s value replaced (or appended)."""
    argv = list(base)
    if flag in argv:
        argv[argv.index(flag) + 1] = value
    else:
        argv += [flag, value]
    return argv


CLI_CASES = [
    # simulate: argument values
    (_with(SIM, "--steps", "0"), r"argument --steps: expected a positive integer, got 0"),
    (_with(SIM, "--steps", "-5"), r"argument --steps: expected a positive integer, got -5"),
    (_with(SIM, "--steps", "abc"), r"argument --steps: expected a positive integer, got 'abc'"),
    (_with(SIM, "--steps", "1000000000"), r"argument --steps: 1000000000 steps per image is too many"),
    (_with(SIM, "--n-images", "0"), r"argument --n-images: expected a positive integer, got 0"),
    (SIM[:-2], r"the following arguments are required: --out"),
    (SIM + ["--bogus"], r"unrecognized arguments: --bogus"),
    (["simulat", "@model"], r"argument COMMAND: invalid choice: 'simulat'"),
    # simulate: paths, all checked before any work
    (_with(SIM, "--out", "@nofolder"), r"--out: cannot write .*o\.npz'?: the folder .* does not exist"),
    (_with(SIM, "--out", "@dir"), r"--out: '.*' is a directory; give a file name"),
    (_with(SIM, "--out", "@dev"), r"--out: '/dev/null' is not a regular file"),
    (_with(SIM, "--out", "@underfile"), r"--out: cannot write .*: '.*afile' is a file, not a folder"),
    (_with(SIM, "--out", ""), r"--out: no output path given"),
    (_with(SIM, "--inputs", "@missing"), r"--inputs: data file '.*missing\.keras' does not exist"),
    (_with(SIM, "--inputs", "@dir"), r"--inputs: data file '.*' is a directory"),
    (["simulate", "@missing", "--inputs", "@data", "--out", "@out"], r"MODEL: model file '.*missing\.keras' does not exist"),
    (["simulate", "@dir", "--inputs", "@data", "--out", "@out"], r"MODEL: model file '.*' is a directory"),
    (_with(SIM, "--config", "@missing"), r"--config: config file '.*missing\.keras' does not exist"),
    (["simulate", "@m_text", "--inputs", "@data", "--out", "@out"], r"is not a Keras 3 '\.keras' file"),
    (["simulate", "@m_h5", "--inputs", "@data", "--out", "@out"], r"is a legacy HDF5 model; Loihi Studio reads Keras 3 '\.keras' files"),
    (["simulate", "@m_zip", "--inputs", "@data", "--out", "@out"], r"is not a Keras 3 '\.keras' file"),
    # simulate: data contents
    (_with(SIM, "--inputs", "@d_shape"), r"'images' has shape \(2, 5\), but the model takes \(n, 16\)"),
    (_with(SIM, "--inputs", "@d_nan"), r"'images' contains 2 NaN and 0 infinite values"),
    (_with(SIM, "--inputs", "@d_inf"), r"'images' contains 0 NaN and 32 infinite values"),
    (_with(SIM, "--inputs", "@d_complex"), r"'images' has dtype complex128 \(complex\)"),
    (_with(SIM, "--inputs", "@d_bool"), r"'images' has dtype bool"),
    (_with(SIM, "--inputs", "@d_int"), r"'images' has dtype int64; expected float images"),
    (_with(SIM, "--inputs", "@d_empty"), r"'images': the batch is empty"),
    (_with(SIM, "--inputs", "@d_nokey"), r"has no 'images' array \(it has: pixels\)"),
    (_with(SIM, "--inputs", "@d_pickle"), r"contains Python objects"),
    (_with(SIM, "--inputs", "@d_text"), r"is not an \.npz file"),
    (_with(SIM, "--inputs", "@d_onehot"), r"'labels' has shape \(4, 4\) \(one-hot\?\)"),
    (_with(SIM, "--inputs", "@d_nlabels"), r"2 labels for 4 images"),
    (_with(SIM, "--inputs", "@d_neglabels"), r"'labels' has negative values"),
    (_with(SIM, "--inputs", "@d_floatlabels"), r"'labels' has dtype float64; expected integer"),
    (_with(_with(SIM, "--inputs", "@d_pixels255"), "--config", "@ranged"),
     r"values span \[7, 254\], but the model expects inputs in \[0, 1\].*divide by 255"),
    # simulate: configs
    (_with(SIM, "--config", "@c_steps"), r"presentation_steps: 1000000000 steps per image is too many"),
    (_with(SIM, "--config", "@c_steps0"), r"presentation_steps: expected a positive integer, got 0"),
    (_with(SIM, "--config", "@c_dt"), r"dt: a time step of 5 s is surely a mistake"),
    (_with(SIM, "--config", "@c_dt0"), r"dt: expected a time step in seconds \(> 0\), got 0"),
    (_with(SIM, "--config", "@c_scale"), r"scale_firing_rates: scale_firing_rates 1e\+09 is out of bounds"),
    (_with(SIM, "--config", "@c_layerscale"), r"layers\.hidden\.scale_firing_rates: .*out of bounds"),
    (_with(SIM, "--config", "@c_unknown"), r"blok_shape: unknown field"),
    (_with(SIM, "--config", "@c_layername"), r"layers\.hiden: the model has no layer 'hiden'"),
    (_with(SIM, "--config", "@c_blockshape"), r"layers\.hidden\.block_shape: expected 1 positive ints"),
    (_with(SIM, "--config", "@c_newer"), r"schema version 99.*upgrade Loihi Studio"),
    (_with(SIM, "--config", "@c_list"), r"a tuned config is a JSON object, got list"),
    (_with(SIM, "--config", "@c_neuron"), r"neuron: .*Sigmoid"),
    (_with(SIM, "--config", "@c_range"), r"input_range: expected \[low, high\]"),
    (_with(SIM, "--config", "@c_nchips"), r"n_chips: expected a board size of 1 to 32 chips, got 40"),
    (_with(SIM, "--config", "@c_synapse"), r"synapse: expected a lowpass time constant"),
    (_with(SIM, "--config", "@c_json"), r"not valid JSON"),
    (_with(SIM, "--config", "@c_nan"), r"NaN is not allowed"),
    # calibrate
    (_with(CAL, "--target-rate", "0"), r"argument --target-rate: expected a positive number, got 0"),
    (_with(CAL, "--target-rate", "-3"), r"argument --target-rate: expected a positive number, got -3"),
    (_with(CAL, "--target-rate", "nan"), r"argument --target-rate: expected a positive number, got nan"),
    (_with(CAL, "--target-rate", "inf"), r"argument --target-rate: expected a positive number, got inf"),
    (_with(CAL, "--target-rate", "fast"), r"argument --target-rate: expected a positive number, got 'fast'"),
    (_with(CAL, "--target-rate", "5000"), r"--target-rate: 5000 Hz is not below the one-spike-per-step ceiling \(1000 Hz"),
    (_with(CAL, "--tolerance", "0"), r"argument --tolerance: expected a positive number, got 0"),
    (_with(CAL, "--tolerance", "1.5"), r"argument --tolerance: expected a fraction between 0 and 1"),
    (_with(CAL, "--n-images", "0"), r"argument --n-images: expected a positive integer, got 0"),
    (_with(CAL, "--eval-images", "-1"), r"argument --eval-images: expected a positive integer, got -1"),
    (_with(CAL, "--method", "magic"), r"argument --method: invalid choice: 'magic'"),
    (_with(CAL, "--out", "@nofolder"), r"--out: cannot write .*: the folder .* does not exist"),
    (_with(CAL, "--out", "@dir"), r"--out: '.*' is a directory"),
    (_with(CAL, "--out", "@dev"), r"--out: '/dev/null' is not a regular file"),
    (_with(CAL, "--data", "@missing"), r"--data: data file '.*' does not exist"),
    (_with(CAL, "--data", "@d_shape"), r"'images' has shape \(2, 5\), but the model takes \(n, 16\)"),
    (_with(CAL, "--data", "@d_nan"), r"'images' contains 2 NaN"),
    (_with(CAL, "--data", "@d_empty"), r"'images': the batch is empty"),
    (_with(_with(CAL, "--data", "@d_pixels255"), "--config", "@ranged"), r"'images': values span \[7, 254\]"),
    (_with(CAL, "--config", "@c_steps"), r"presentation_steps: 1000000000 steps per image is too many"),
    (["calibrate", "@tmodel", "--config", "@tcfg", "--data", "@d_tshape", "--out", "@outcfg"],
     r"'images' has shape \(2, 28, 28, 3\), but the model takes \(n, 28, 28, 1\)"),
    (["calibrate", "@tmodel", "--config", "@tcfg", "--data", "@d_tnan", "--out", "@outcfg"],
     r"contains 1568 NaN and 0 infinite values \(in 2 image\(s\), the first is image 0\)"),
    (["calibrate", "@missing", "--data", "@data", "--out", "@outcfg"], r"MODEL: model file .* does not exist"),
    # map, inspect, tutorial
    (["map", "@model", "--n-chips", "0"], r"argument --n-chips: expected a positive integer, got 0"),
    (["map", "@model", "--n-chips", "33"], r"n_chips: expected a board size of 1 to 32 chips, got 33"),
    (["map", "@missing"], r"MODEL: model file .* does not exist"),
    (["map", "@model", "--config", "@c_blockshape"], r"layers\.hidden\.block_shape"),
    (["inspect", "@missing"], r"does not exist"),
    (["tutorial", "--n-test", "5"], r"--n-test: use at least 100 held-out digits"),
    (["tutorial", "--out", "@cfg"], r"--out: '.*cfg\.json' is a file; give a folder"),
    (["tutorial", "--json", "@nofolder"], r"--json: cannot write .*: the folder .* does not exist"),
    (["train", "@model", "--data", "@data", "--out", "@nofolderkeras"], r"--out: directory '.*no' does not exist"),
    (["train", "@model", "--data", "@missing", "--out", "@outkeras"], r"--data: data file .* does not exist"),
    (["train", "@missing", "--data", "@data", "--out", "@outkeras"], r"MODEL: model file .* does not exist"),
    (["train", "@model", "--data", "@data", "--out", "@outkeras", "--epochs", "-1"], r"--epochs"),
]


@pytest.mark.parametrize("argv, message", CLI_CASES,
                         ids=[f"{a[0]}-{i}" for i, (a, _) in enumerate(CLI_CASES)])
def test_cli_bad_input_is_one_line_with_exit_code_2(argv, message, f, capsys):
    code, out, err = cli(_fill(argv, f), capsys)
    assert code == 2, (out, err)
    lines = [line for line in err.splitlines() if line.strip()
             and "absl" not in line and not line.startswith(("I0000", "WARNING: All log"))]
    errors = [line for line in lines if ": error: " in line]
    assert len(errors) == 1, err
    assert errors[0].startswith("loihi-studio"), errors[0]
    assert "Traceback" not in err and "Traceback" not in out
    import re

    assert re.search(message, errors[0]), errors[0]


def test_cli_bad_out_is_found_before_any_work(f, capsys, monkeypatch):
    """A bad --out fails without loading the model (the model path is not even read)."""
    code, _, err = cli(["simulate", f["missing"], "--inputs", f["missing"], "--out",
                        f["nofolder"]], capsys)
    assert code == 2 and "--out" in err and "model" not in err.lower().split("--out")[0]


def test_cli_range_warning_is_one_line(f, capsys, tmp_path):
    """0-255 floats without a recorded input range run, with a one-line warning."""
    code, out, err = cli(_fill(_with(_with(SIM, "--inputs", "@d_pixels255"), "--out",
                                     str(tmp_path / "o.npz")), f), capsys)
    assert code == 0, err
    warns = [line for line in err.splitlines() if ": warning: " in line]
    assert len(warns) == 1 and "look like 8-bit pixels" in warns[0], err


@pytest.mark.parametrize("argv, message", [
    (["simulate", str(DENSE.keras_path), "--inputs", "x.npz", "--out", "o.npz", "--steps", "0"],
     "argument --steps: expected a positive integer, got 0"),
    (["calibrate", str(TUTORIAL.keras_path), "--data", "WRONGSHAPE", "--out", "OUT"],
     "but the model takes (n, 28, 28, 1)"),
])
def test_cli_in_a_subprocess_has_no_traceback(argv, message, tmp_path):
    if "WRONGSHAPE" in argv:
        argv[argv.index("WRONGSHAPE")] = _npz(tmp_path / "w.npz", images=np.zeros((2, 28, 28, 3)))
        argv[argv.index("OUT")] = str(tmp_path / "c.json")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    run = subprocess.run([sys.executable, "-m", "loihi_core", *argv], capture_output=True,
                         text=True, env=env, cwd=tmp_path)
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1 and message in errors[0], run.stderr


# ---------------------------------------------------------------------------------------
# API
# ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dense():
    net = reference_network("dense_relu")
    return net, lc.Emulator(lc.map_to_chip(net)), DENSE.arrays["images"]


@pytest.fixture(scope="module")
def graph():
    return lc.load_model(DENSE.keras_path)


X16 = DENSE.arrays["images"]
BAD_IMAGES = [
    (np.full((2, 16), np.nan), DataError, r"images contains 32 NaN and 0 infinite values"),
    (np.full((2, 16), -np.inf), DataError, r"images contains 0 NaN and 32 infinite values"),
    (X16.astype(complex), DataError, r"images has dtype complex128 \(complex\)"),
    (X16 > 0.5, DataError, r"images has dtype bool"),
    (np.zeros((2, 16), np.int32), DataError, r"images has dtype int32"),
    (np.zeros((2, 16), np.uint16), DataError, r"images has dtype uint16"),
    (np.zeros((0, 16)), DataError, r"images: the batch is empty"),
    (np.zeros((2, 15)), DataError, r"images has shape \(2, 15\), but the model takes \(n, 16\)"),
    (np.zeros((2, 4, 4)), DataError, r"images has shape \(2, 4, 4\), but the model takes \(n, 16\)"),
    (np.zeros(15), DataError, r"images has shape \(15,\)"),
    (None, DataError, r"images: expected an array .* got NoneType"),
    ("images.npz", DataError, r"images: expected an array .* got str"),
    ({"images": 1}, DataError, r"images: expected an array .* got dict"),
    ([[0.1, 0.2], [0.3]], DataError, r"images cannot be read as an array"),
    (np.array(["a"] * 16)[None], DataError, r"images has dtype <U1"),
]


@pytest.mark.parametrize("images, error, message", BAD_IMAGES)
def test_emulator_run_refuses_bad_images(dense, images, error, message):
    _, emu, _ = dense
    with pytest.raises(error, match=message):
        emu.run(images, 5)


@pytest.mark.parametrize("images, error, message", BAD_IMAGES[:8])
def test_rate_and_float_spiking_simulation_refuse_bad_images(dense, images, error, message):
    net, _, _ = dense
    with pytest.raises(error, match=message):
        lc.run_rates(net, images)
    with pytest.raises(error, match=message):
        lc.run_spiking(net, images, 5)


@pytest.mark.parametrize("kwargs, message", [
    (dict(presentation_steps=0), r"presentation_steps: expected a positive integer, got 0"),
    (dict(presentation_steps=-3), r"presentation_steps: expected a positive integer, got -3"),
    (dict(presentation_steps=2.5), r"presentation_steps: expected a positive integer, got 2\.5"),
    (dict(presentation_steps="10"), r"presentation_steps: expected a positive integer, got '10'"),
    (dict(presentation_steps=10**9), r"presentation_steps: 1000000000 is too many \(at most 10,000\)"),
    (dict(mode="parallel"), r"mode: expected one of 'independent', 'sequential', got 'parallel'"),
    (dict(record=["nope"]), r"record: cannot record 'nope': the network's neuron layers are to_spikes, hidden, hidden2"),
    (dict(record={"hidden": [99]}), r"record\['hidden'\]: neuron ids must be in 0\.\.31"),
    (dict(record={"hidden": ["a"]}), r"record\['hidden'\]: expected integer neuron ids"),
    (dict(record=5), r"record: expected None, 'all', a list of layer names"),
    (dict(chunk_size=0), r"chunk_size: expected a positive integer, got 0"),
])
def test_emulator_run_names_bad_arguments(dense, kwargs, message):
    _, emu, images = dense
    with pytest.raises(ArgumentError, match=message) as info:
        emu.run(images, **{"presentation_steps": 5, **kwargs})
    assert info.value.argument in message


def test_uint8_is_scaled_to_unit_range_in_the_api_too(dense):
    """The same pixels as uint8 and as float / 255 give the very same spikes everywhere."""
    net, emu, _ = dense
    pixels = np.random.default_rng(0).integers(0, 256, (3, 16), dtype=np.uint8)
    floats = pixels.astype(np.float32) / np.float32(255)
    a, b = emu.run(pixels, 20, record="all"), emu.run(floats, 20, record="all")
    np.testing.assert_array_equal(a.output, b.output)
    np.testing.assert_array_equal(a.spikes["hidden"], b.spikes["hidden"])
    np.testing.assert_array_equal(lc.run_rates(net, pixels), lc.run_rates(net, floats))
    np.testing.assert_array_equal(lc.run_spiking(net, pixels, 10).output,
                                  lc.run_spiking(net, floats, 10).output)


def test_data_outside_the_recorded_input_range_is_refused_and_slivers_warned():
    cfg = lc.load_config({**case_config("dense_relu"), "input_range": [0, 1]})
    net = lc.convert(DENSE.keras_path, cfg)
    emu = lc.Emulator(lc.map_to_chip(net))
    with pytest.raises(DataError, match=r"images: values span \[0, 255\], but the model expects "
                                        r"inputs in \[0, 1\].*divide by 255"):
        emu.run(np.linspace(0, 255, 64).reshape(4, 16), 5)
    with pytest.raises(DataError, match=r"values span \[-0\.94.*\], but the model expects"):
        lc.run_rates(net, X16 * 2 - 1)
    with pytest.warns(DataRangeWarning, match=r"values span only .* of the expected input range"):
        emu.run(X16 / 255, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        emu.run(X16, 5)  # in range: silent


def test_float_pixels_without_a_recorded_range_warn(dense):
    _, emu, _ = dense
    with pytest.warns(DataRangeWarning, match=r"look like 8-bit pixels \(0-255\)"):
        emu.run(np.round(X16 * 255), 5)


@pytest.mark.parametrize("source, message", [
    ([1, 2], r"expected a tuned config: a path to a \.json file, JSON text, a dict or a TunedConfig, got list"),
    (3, r"got int"), (2.5, r"got float"), (object(), r"got object"), ((1,), r"got tuple"),
    ("[1, 2]", r"a tuned config is a JSON object, got list"),
    ("", r"cannot read config file '\.'"),
])
def test_load_config_of_the_wrong_kind(source, message):
    with pytest.raises(ConfigError, match=message):
        lc.load_config(source)


def test_functions_taking_a_network_accept_what_the_user_holds(graph):
    """map_to_chip and Emulator take a path, a LayerGraph or a network and convert."""
    from_path = lc.map_to_chip(DENSE.keras_path)
    from_graph = lc.map_to_chip(graph)
    assert from_path.n_cores == from_graph.n_cores == 2
    emu = lc.Emulator(lc.convert(graph, case_config("dense_relu")))
    ref = lc.Emulator(lc.map_to_chip(reference_network("dense_relu")))
    np.testing.assert_array_equal(emu.run(X16, 20).output, ref.run(X16, 20).output)
    assert lc.run_rates(graph, X16).shape == (4, 4)


@pytest.mark.parametrize("call, message", [
    (lambda: lc.map_to_chip(123), r"network: expected a SpikingNetwork .* got int"),
    (lambda: lc.map_to_chip(None), r"network: expected a SpikingNetwork .* got NoneType"),
    (lambda: lc.auto_block_shapes(123), r"network: expected a SpikingNetwork .* got int"),
    (lambda: lc.evaluate(1, X16), r"model: expected a SpikingNetwork .* got int"),
    (lambda: lc.Emulator(123), r"chip: expected a ChipModel .* got int"),
    (lambda: lc.Emulator([1]), r"chip: expected a ChipModel .* got list"),
    (lambda: (lc.mapping.clear_layer_cache(),
              lc.Emulator(lc.map_to_chip(reference_network("dense_relu"), discretize=False))),
     r"chip: the chip model was mapped with discretize=False"),
    (lambda: lc.run_rates(3.5, X16), r"network: expected a SpikingNetwork .* got float"),
    (lambda: lc.run_spiking({}, X16), r"network: expected a SpikingNetwork .* got dict"),
    (lambda: lc.run_spiking(reference_network("dense_relu"), X16, 0),
     r"presentation_steps: expected a positive integer, got 0"),
    (lambda: lc.verify(123, reference_network("dense_relu"), X16),
     r"model: expected the keras\.Model or the path of the \.keras file"),
    (lambda: lc.verify(str(DENSE.keras_path), 123, X16), r"network: expected a SpikingNetwork"),
    (lambda: lc.measure_rates(None, X16, network=reference_network("dense_relu"), method="x"),
     r"method: expected one of 'emulator', 'rate', got 'x'"),
    (lambda: lc.measure_rates(None, X16, network=reference_network("dense_relu"),
                              presentation_steps=0), r"presentation_steps: expected a positive integer"),
])
def test_api_wrong_kinds_of_argument(call, message):
    with pytest.raises(ArgumentError, match=message):
        call()


def test_verify_with_an_in_memory_graph_says_what_to_pass():
    import keras

    model = keras.models.load_model(DENSE.keras_path, safe_mode=True, compile=False)
    g = lc.load_model(model)
    assert g.source is None
    with pytest.raises(ArgumentError, match=r"model: verify runs the Keras model itself.*pass "
                                            r"the keras\.Model or the \.keras path"):
        lc.verify(g, reference_network("dense_relu"), X16, reference="keras")
    # an exact conversion needs only the graph (the ideal rate mode stands in for Keras)
    assert lc.verify(g, reference_network("dense_relu"), X16).reference == "ideal rate mode"
    with pytest.raises(ArgumentError, match=r"reference: expected one of 'auto', 'keras'"):
        lc.verify(g, reference_network("dense_relu"), X16, reference="tf")


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(images=np.full((2, 16), np.nan)), DataError, r"images contains 32 NaN"),
    (dict(images=np.zeros((2, 3))), DataError, r"images has shape \(2, 3\), but the model takes \(n, 16\)"),
    (dict(labels=[0, 1]), DataError, r"labels: 2 labels for 4 images"),
    (dict(steps=0), ArgumentError, r"steps: expected a positive integer, got 0"),
])
def test_verify_names_bad_data(graph, kwargs, error, message):
    args = {"images": X16, **kwargs}
    with pytest.raises(error, match=message):
        lc.verify(DENSE.keras_path, graph, **args)


CAL_CASES = [
    (dict(target_rate=0), ArgumentError, r"target_rate: expected a positive number Hz, got 0"),
    (dict(target_rate=-1), ArgumentError, r"target_rate: expected a positive number Hz, got -1"),
    (dict(target_rate=float("nan")), ArgumentError, r"target_rate: expected a positive number"),
    (dict(target_rate="200"), ArgumentError, r"target_rate: expected a positive number Hz, got '200'"),
    (dict(target_rate=5000), ArgumentError, r"target_rate 5000 Hz is not below the ceiling of layer 'to_spikes' \(1000 Hz"),
    (dict(tolerance=0), ArgumentError, r"tolerance: expected a positive number, got 0"),
    (dict(tolerance=2), ArgumentError, r"tolerance: 2 must be below 1"),
    (dict(max_iterations=0), ArgumentError, r"max_iterations: expected a positive integer, got 0"),
    (dict(method="exact"), ArgumentError, r"method: expected one of 'emulator', 'rate', got 'exact'"),
    (dict(presentation_steps=0), ArgumentError, r"presentation_steps: expected a positive integer"),
    (dict(layers=["nope"]), ArgumentError, r"layers: 'nope' are not spiking neuron layers; they are: to_spikes, hidden, hidden2"),
    (dict(layers="hidden"), ArgumentError, r"layers: expected a list of layer names, got 'hidden'"),
    (dict(progress=5), ArgumentError, r"progress: expected a function progress\(i, rates\), got int"),
    (dict(model=123), ArgumentError, r"model: expected a \.keras path, a keras\.Model or a LayerGraph, got int"),
    (dict(images=np.full((2, 16), np.inf)), DataError, r"images contains 0 NaN and 32 infinite"),
    (dict(images=np.zeros((2, 28, 28, 1))), DataError, r"images has shape \(2, 28, 28, 1\), but the model takes \(n, 16\)"),
    (dict(images=np.zeros((2, 16), bool)), DataError, r"images has dtype bool"),
    (dict(labels=[0, 1, 2]), DataError, r"labels: 3 labels for 4 images"),
    (dict(config=[1, 2]), ConfigError, r"expected a tuned config.*got list"),
    (dict(config={"schema_version": 1, "presentation_steps": 10**9}), ConfigError,
     r"presentation_steps: 1000000000 steps per image is too many"),
    (dict(config={"schema_version": 1, "input_range": [0, 0.5]}), DataError,
     r"values span \[.*\], but the model expects inputs in \[0, 0\.5\]"),
    (dict(model="nope.keras"), ModelLoadError, r"model file 'nope\.keras' does not exist"),
]


@pytest.mark.parametrize("kwargs, error, message", CAL_CASES)
def test_calibrate_names_bad_arguments(graph, kwargs, error, message):
    args = dict(model=graph, images=X16, config=case_config("dense_relu"), target_rate=200.0,
                method="rate", evaluate_result=False)
    args.update(kwargs)
    with pytest.raises(error, match=message) as info:
        lc.calibrate(args.pop("model"), args.pop("images"), **args)
    assert isinstance(info.value, LoihiStudioError)


def test_calibrate_warns_on_an_unfiltered_readout_and_reports_accuracy(graph):
    cfg = {**case_config("dense_relu"), "synapse": None}
    with pytest.warns(UserWarning, match=r"the readout is unfiltered \(layer 'hidden2' has synapse null\)"):
        result = lc.calibrate(graph, X16, cfg, 100.0, method="rate", labels=[0, 1, 2, 0])
    assert result.warnings and "unfiltered" in result.warnings[0]
    ev = result.evaluation
    assert ev.n_images == 4 and 0 <= ev.emulator_accuracy <= 1 and 0 <= ev.keras_accuracy <= 1
    assert "emulator" in ev.summary() and "Keras" in ev.summary()
    assert result.config.input_range == (0.0, 1.0)  # recorded from the calibration data


def test_calibrate_without_a_config_starts_from_the_tutorial_defaults(graph):
    from loihi_core.calibrate import TUTORIAL_DEFAULTS

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a filtered readout: no warning
        result = lc.calibrate(graph, X16, None, 100.0, method="rate", evaluate_result=False)
    assert result.config.synapse == TUTORIAL_DEFAULTS.synapse == 0.005
    assert result.config.presentation_steps == 50


def test_errors_are_importable_from_the_package():
    for name in ("LoihiStudioError", "ArgumentError", "ConfigError", "ConversionError",
                 "DataError", "DiscretizationError", "MappingError", "ModelLoadError",
                 "ExportError", "SweepError"):
        assert name in lc.__all__
        cls = getattr(lc, name)
        assert issubclass(cls, lc.LoihiStudioError) or cls is lc.LoihiStudioError
    from loihi_core.export.common import ExportError

    assert lc.ExportError is ExportError
    assert "DataRangeWarning" in lc.__all__


# ---------------------------------------------------------------------------------------
# mapping: layers that cannot fit are refused before their weights are built
# ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def wide_models(tmp_path_factory):
    import keras

    d = tmp_path_factory.mktemp("wide")

    def save(name, hidden, chip, block=None):
        inp = keras.Input((8,), name="input")
        x = keras.layers.Dense(hidden, activation="relu", name="to-spikes")(inp)
        x = keras.layers.Dense(chip, activation="relu", name="chip")(x)
        out = keras.layers.Dense(2, name="out")(x)
        path = d / f"{name}.keras"
        keras.Model(inp, out).save(path)
        return path

    return {"fanin": save("fanin", 5000, 4), "index": save("index", 16, 5000)}


def test_dense_fan_in_over_the_axon_limit_is_refused_up_front(wide_models, capsys):
    with pytest.raises(MappingError, match=r"layer 'chip': its dense input from 'to-spikes' has "
                                           r"5,000 neurons.*max 4096 per core.*no block shape fits") as info:
        lc.map_to_chip(wide_models["fanin"])
    e = info.value
    assert (e.layer, e.resource, e.used, e.limit) == ("chip", "in_axons", 5000, 4096)
    code, _, err = cli(["map", str(wide_models["fanin"])], capsys)
    assert code == 2 and "no block shape fits" in err and err.count("\n") == 1


def test_twelve_bit_index_overflow_fills_used_and_limit(wide_models):
    cfg = {"schema_version": 1, "layers": {"chip": {"block_shape": [5000]}}}
    with pytest.raises(MappingError, match=r"synapse indices need more than 12 bits \(the block's "
                                           r"synapses address 5000 compartments, max 4096\)") as info:
        lc.map_to_chip(lc.convert(wide_models["index"], cfg))
    e = info.value
    assert (e.layer, e.resource, e.used, e.limit) == ("chip", "synapse_bits", 5000, 4096)


def test_board_sized_layers_are_refused_before_mapping():
    from loihi_core.mapping import check_layers_can_fit

    net = reference_network("dense_relu")
    layer = net.layers["hidden"]
    big = type(layer)(**{**layer.__dict__, "shape": (1024 * 128 * 32 + 1,)})
    with pytest.raises(MappingError, match=r"layer 'hidden' has 4,194,305 neurons, more than the "
                                           r"4,194,304 compartments of a full 32-chip board"):
        check_layers_can_fit(net, [big])


# ---------------------------------------------------------------------------------------
# fuzzing the data loader
# ---------------------------------------------------------------------------------------

DTYPES = st.sampled_from([np.uint8, np.float16, np.float32, np.float64, np.int32, np.int64,
                          np.uint16, np.bool_, np.complex64])
arrays = DTYPES.flatmap(lambda dt: hnp.arrays(
    dt, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5),
    elements=None if dt in (np.bool_,) else (
        st.floats(width=16 if dt == np.float16 else 32, allow_nan=True, allow_infinity=True)
        if np.dtype(dt).kind == "f" else None)))
SHAPES = st.sampled_from([None, (5,), (2, 2), (2, 2, 1), (3, 5, 5)])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arrays, SHAPES, st.sampled_from([None, (0.0, 1.0), (-1.0, 1.0)]))
def test_fuzz_as_images_returns_valid_batches_or_raises_data_error(images, shape, rng):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataRangeWarning)
            out = as_images(images, shape, input_range=rng)
    except DataError as exc:
        assert str(exc)
        return
    assert out.dtype.kind == "f" and np.isfinite(out).all() and out.shape[0] >= 1
    if shape is not None:
        assert out.shape[1:] == shape
    if images.dtype == np.uint8:
        assert out.min() >= 0 and out.max() <= 1
    if rng is not None:
        span = rng[1] - rng[0]
        assert out.min() >= rng[0] - 0.011 * span and out.max() <= rng[1] + 0.011 * span


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(["images", "labels", "other"]), arrays, max_size=3),
       SHAPES, st.booleans())
def test_fuzz_npz_loader_only_raises_data_error(tmp_path, contents, shape, require_labels):
    path = tmp_path / "fuzz.npz"
    np.savez(path, **contents)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataRangeWarning)
            images, labels = load_images_npz(path, input_shape=shape, require_labels=require_labels)
    except DataError as exc:
        assert str(path) in str(exc) and str(exc)
        return
    assert images.dtype == np.float32 and np.isfinite(images).all() and len(images) >= 1
    if labels is not None:
        assert labels.dtype == np.int64 and labels.shape == (len(images),) and (labels >= 0).all()


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=400), st.integers(0, 2000))
def test_fuzz_corrupt_npz_bytes_only_raise_data_error(tmp_path, junk, cut):
    """Random bytes and truncated/patched real .npz files are refused as DataError."""
    good = tmp_path / "good.npz"
    np.savez_compressed(good, images=X16, labels=np.arange(4))
    raw = good.read_bytes()
    for data in (junk, raw[:cut], raw[:cut] + junk + raw[cut + len(junk):]):
        path = tmp_path / "c.npz"
        path.write_bytes(data)
        try:
            load_images_npz(path)
        except DataError:
            pass
