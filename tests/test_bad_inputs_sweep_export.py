"""Bad inputs to sweeps and exports (issue 14): every case ends in the project's error
(``SweepError``/``ExportError``, CLI exit code 2 with one line on stderr) whose message
names the cause, before any work is done; no finished sweep work is lost.

* ``--out`` of a sweep is checked before anything else (the model, data and sweep paths
  given to those CLI cases do not even exist);
* a sweep writes each row as its configuration finishes: a crash after N configurations
  keeps N rows, and ``--resume`` runs only the rest (the table then equals one full run);
* a scheduler address that accepts TCP but does not speak Dask fails within the deadline
  (a silent server and one that answers garbage, both on 127.0.0.1);
* duplicate configurations, and a swept field that every layer overrides (the README's
  old example), are refused before anything runs;
* the SWEEP.json loader is fuzzed with hypothesis: it returns a spec or raises
  ``SweepError``, nothing else;
* exports write regular files only: devices (``/dev/full``, ``/dev/null``), named pipes,
  sockets and symbolic links are refused, a parent that is a file has its own message.

The model-based cases share one TensorFlow import (module fixtures, ~6 s).
"""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loihi_core.cli import main
from loihi_core.config import TunedConfig
from loihi_core.errors import LoihiStudioError
from loihi_core.export import ExportError, export, export_json
from loihi_core.sweep import (SweepError, check_against_model, load_results, load_sweep,
                              run_sweep)
from loihi_core.sweep.backends import CONNECT_TIMEOUT_S, connect_scheduler
from refcases import case_config, load_case

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_MODEL = ROOT / "assets" / "examples" / "mnist_tutorial.keras"
EXAMPLE_CONFIG = ROOT / "assets" / "examples" / "mnist_tutorial.config.json"
EXAMPLE_DATA = ROOT / "assets" / "examples" / "mnist_test.npz"


def cli_error(capsys, argv: list[str]) -> str:
    """Run the CLI, expect exit code 2 and one error line; return it."""
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert "Traceback" not in err and err.count("\n") == 0, err
    assert err.startswith(f"loihi-studio {argv[0]}: error: "), err
    return err


@pytest.fixture
def fifo(tmp_path) -> Path:
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


@pytest.fixture
def unix_socket(tmp_path):
    path = tmp_path / "sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    yield path
    s.close()


# =======================================================================================
# sweeps: --out first
# =======================================================================================

def _out_cases(tmp_path: Path, fifo: Path) -> dict[str, tuple[Path, str]]:
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "done.csv").write_text("index,accuracy\n0,0.5\n")
    (tmp_path / "folder").mkdir()
    (tmp_path / "target.csv").write_text("")
    (tmp_path / "link.csv").symlink_to(tmp_path / "target.csv")
    return {
        "missing folder": (tmp_path / "missing" / "r.csv", "the folder .* does not exist; create it first"),
        "parent is a file": (tmp_path / "a_file" / "r.csv", "'.*a_file' is a file, not a folder"),
        "grandparent is a file": (tmp_path / "a_file" / "sub" / "r.csv", "'.*a_file' is a file, not a folder"),
        "a folder": (tmp_path / "folder", "is a folder; give a file name"),
        "a device": (Path("/dev/full"), "'/dev/full' exists and is not a regular file"),
        "the null device": (Path("/dev/null"), "is not a regular file"),
        "a named pipe": (fifo, "is not a regular file"),
        "a symlink": (tmp_path / "link.csv", "is a symbolic link .*give the target path itself"),
        "an unwritable folder": (Path("/sys/r.csv"), "cannot write into the folder '/sys'"),
        "earlier results": (tmp_path / "done.csv", "already exists; add --resume .* or --overwrite"),
    }


OUT_CASES = ["missing folder", "parent is a file", "grandparent is a file", "a folder", "a device",
             "the null device", "a named pipe", "a symlink", "an unwritable folder",
             "earlier results"]


@pytest.mark.parametrize("case", OUT_CASES)
def test_cli_sweep_checks_out_before_anything_else(case, tmp_path, fifo, capsys):
    """Model, data and sweep do not exist: the error is still about --out."""
    out, pattern = _out_cases(tmp_path, fifo)[case]
    err = cli_error(capsys, ["sweep", tmp_path / "nope.keras", "--data", tmp_path / "nope.npz",
                             "--grid", tmp_path / "nope.json", "--out", out])
    assert err.startswith("loihi-studio sweep: error: --out: ")
    import re
    assert re.search(pattern, err), err
    if case == "earlier results":
        assert (tmp_path / "done.csv").read_text() == "index,accuracy\n0,0.5\n"  # untouched


@pytest.mark.parametrize("case", ["missing folder", "a device", "a symlink", "earlier results"])
def test_api_sweep_checks_out_before_loading_the_model(case, tmp_path, fifo):
    out, pattern = _out_cases(tmp_path, fifo)[case]
    with pytest.raises(SweepError, match=pattern) as info:
        run_sweep(tmp_path / "nope.keras", np.zeros((1, 2)), np.zeros(1), {"grid": {}}, out=out)
    assert info.value.problems[0][0] == "out"


def test_resume_and_overwrite_exclude_each_other(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["sweep", "m.keras", "--data", "d.npz", "--grid", "g.json", "--out",
              str(tmp_path / "r.csv"), "--resume", "--overwrite"])
    assert info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


# =======================================================================================
# sweeps: the SWEEP.json document
# =======================================================================================

BAD_SWEEPS = [
    ([1, 2], "a sweep is a JSON object"),
    ({}, 'a sweep needs "grid" and/or "random"'),
    ({"grid": []}, "grid: expected an object mapping fields to lists"),
    ({"grid": {"scale_firing_rates": 5}}, "grid.scale_firing_rates: expected a non-empty list"),
    ({"grid": {"scale_firing_rates": []}}, "grid.scale_firing_rates: expected a non-empty list"),
    ({"grid": {"scale_firing_rates": [1, 1]}}, r"grid.scale_firing_rates\[1\]: 1 repeats"),
    ({"grid": {"scale_firing_rates": [-1]}}, r"grid.scale_firing_rates\[0\]"),
    ({"grid": {"synapse": ["fast"]}}, r"grid.synapse\[0\]"),
    ({"grid": {"presentation_steps": [0]}}, r"grid.presentation_steps\[0\]"),
    ({"grid": {"scale": [1]}}, "grid.scale: unknown field"),
    ({"grid": {"layers.conv0.bias": [1]}}, "grid.layers.conv0.bias: unknown field"),
    ({"grid": {"layers..scale_firing_rates": [1]}}, "unknown field"),
    ({"grid": {}, "extra": 1}, "extra: unknown field"),
    ({"grid": {}, "schema_version": 99}, "schema version 99.*upgrade Loihi Studio"),
    ({"grid": {}, "schema_version": "1"}, "schema_version: expected a positive integer"),
    ({"grid": {}, "base_config": 3}, "base_config: expected a tuned config object"),
    ({"grid": {}, "base_config": {"dt": -1}}, "base_config.dt"),
    ({"grid": {}, "base_config": "no-such-config.json"}, "base_config"),
    ({"random": {"n": 0, "space": {"synapse": {"uniform": [0.001, 0.01]}}}}, "random.n: expected"),
    ({"random": {"n": 2.5, "space": {"synapse": {"uniform": [0.001, 0.01]}}}}, "random.n: expected"),
    ({"random": {"n": 2, "seed": -1, "space": {"synapse": {"uniform": [0.001, 0.01]}}}},
     "random.seed: expected an integer >= 0"),
    ({"random": {"n": 2, "space": {}}}, "random.space: expected a non-empty object"),
    ({"random": {"n": 2, "space": {"synapse": {"normal": [0, 1]}}}}, "expected one distribution"),
    ({"random": {"n": 2, "space": {"synapse": {"uniform": [0.01, 0.001]}}}}, "lo must be <= hi"),
    ({"random": {"n": 2, "space": {"scale_firing_rates": {"log_uniform": [0, 10]}}}},
     "a log-uniform range needs 0 < lo"),
    ({"random": {"n": 2, "space": {"presentation_steps": {"int_uniform": [1.5, 3]}}}},
     "two integers"),
    ({"random": {"n": 2, "space": {"neuron": {"uniform": [0, 1]}}}}, "neuron is not numeric"),
    ({"random": {"n": 2, "space": {"neuron": {"choice": []}}}}, "expected a non-empty list"),
    ({"random": {"n": 2, "space": {"neuron": {"choice": ["Sigmoid"]}}}}, "neuron.choice\\[0\\]"),
    ({"random": {"n": 2, "bogus": 1, "space": {"neuron": {"choice": ["LoihiLIF"]}}}},
     "random.bogus: unknown field"),
    ({"grid": {"scale_firing_rates": list(range(1, 400)), "synapse": [0.001 * i for i in range(1, 300)]}},
     "exceed the limit of 100000"),
]


@pytest.mark.parametrize("doc, pattern", BAD_SWEEPS, ids=[f"sweep{i}" for i in range(len(BAD_SWEEPS))])
def test_bad_sweep_documents_name_the_field(doc, pattern):
    with pytest.raises(SweepError, match=pattern):
        load_sweep(doc)


@pytest.mark.parametrize("text, pattern", [
    ('{"grid": {"synapse": [NaN]}}', "NaN"),
    ('{"grid": {}, "grid": {}}', "duplicate"),
    ('{"grid": ', "not valid JSON"),
])
def test_bad_sweep_text(text, pattern, tmp_path):
    path = tmp_path / "s.json"
    path.write_text(text)
    with pytest.raises(SweepError, match=pattern):
        load_sweep(path)
    with pytest.raises(SweepError, match=pattern):
        load_sweep(text)


def test_bad_sweep_files(tmp_path, capsys):
    with pytest.raises(SweepError, match="does not exist"):
        load_sweep(tmp_path / "none.json")
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00{")
    with pytest.raises(SweepError, match="cannot read sweep file"):
        load_sweep(tmp_path / "bin.json")
    (tmp_path / "g.json").write_text(json.dumps({"grid": {"synapse": "x"}}))
    err = cli_error(capsys, ["sweep", "m.keras", "--data", "d.npz", "--grid", tmp_path / "g.json",
                             "--out", tmp_path / "r.csv"])
    assert "grid.synapse: expected a non-empty list" in err and "(in g.json)" in err
    assert not (tmp_path / "r.csv").exists()


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12)
FIELDS = st.sampled_from(["scale_firing_rates", "synapse", "presentation_steps", "neuron", "dt",
                          "max_to_avg_pool", "n_chips", "layers.conv0.scale_firing_rates",
                          "layers.conv0.block_shape", "layers.x.on_chip", "layers.x.synapse",
                          "bogus", "layers.conv0"])
DISTS = st.dictionaries(st.sampled_from(["log_uniform", "uniform", "int_uniform", "choice", "x"]),
                        JSON, min_size=0, max_size=2)
SWEEP_DOCS = st.fixed_dictionaries({}, optional={
    "schema_version": st.integers(-2, 3) | JSON,
    "base_config": st.none() | st.fixed_dictionaries({}, optional={
        "schema_version": st.just(1), "scale_firing_rates": JSON, "synapse": JSON}) | JSON,
    "grid": st.dictionaries(FIELDS, st.lists(JSON, max_size=4) | JSON, max_size=3) | JSON,
    "random": st.fixed_dictionaries({}, optional={
        "n": st.integers(-2, 50) | JSON, "seed": st.integers(-2, 5) | JSON,
        "space": st.dictionaries(FIELDS, DISTS | JSON, max_size=3) | JSON}) | JSON,
})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SWEEP_DOCS)
def test_fuzzed_sweep_documents_load_or_raise_sweep_error(doc):
    try:
        spec = load_sweep(doc)
    except SweepError as exc:
        assert str(exc) and all(isinstance(p, str) and m for p, m in exc.problems)
        return
    assert len(spec) >= 1 and all(isinstance(c, TunedConfig) for c in spec.configs)
    assert load_sweep(spec.to_dict()).configs == spec.configs  # what it loads, it writes


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60) | st.binary(max_size=60).map(lambda b: b.decode("latin-1")))
def test_fuzzed_sweep_text_loads_or_raises_sweep_error(text):
    try:
        load_sweep("{" + text)
    except SweepError:
        pass


# =======================================================================================
# sweeps against the model: fields that change nothing, duplicates
# =======================================================================================

@pytest.fixture(scope="module")
def example_graph():
    from loihi_core import load_model

    return load_model(EXAMPLE_MODEL)


README_OLD = {"schema_version": 1, "base_config": str(EXAMPLE_CONFIG),
              "grid": {"synapse": [0.002, 0.005],
                       "layers.conv0.scale_firing_rates": [300, 750],
                       "presentation_steps": [30, 50]},
              "random": {"n": 4, "seed": 0,
                         "space": {"scale_firing_rates": {"log_uniform": [10, 1000]}}}}


def test_a_field_every_layer_overrides_is_refused_before_anything_runs(example_graph):
    """The README's old example: every layer of the bundled config has its own scale, so
    the random top-level scale changed nothing: 4 samples = the same network."""
    spec = load_sweep(README_OLD)
    with pytest.raises(SweepError) as info:
        check_against_model(spec, example_graph)
    problems = dict(info.value.problems)
    msg = problems["random.space.scale_firing_rates"]
    assert "every neuron layer of the model sets its own scale_firing_rates" in msg
    assert "to-spikes, conv0, conv1, dense0" in msg and "sweep layers.<layer>.scale_firing_rates" in msg
    assert "(configurations #9, #10, #11 repeat #8)" in msg and len(problems) == 1
    grid = {"base_config": str(EXAMPLE_CONFIG), "grid": {"scale_firing_rates": [50, 100, 200]}}
    with pytest.raises(SweepError, match="grid.scale_firing_rates: every neuron layer"):
        check_against_model(load_sweep(grid), example_graph)


def test_the_readme_example_is_accepted(example_graph):
    readme = (ROOT / "README.md").read_text()
    start = readme.index('```json\n{"schema_version": 1,\n "base_config": "mnist_tutorial')
    doc = json.loads(readme[start + len("```json\n"):readme.index("```", start + 7)])
    assert json.loads((ROOT / "assets" / "examples" / "SWEEP.json").read_text()) == doc
    spec = load_sweep(ROOT / "assets" / "examples" / "SWEEP.json")  # base config beside it
    check_against_model(spec, example_graph)
    doc["base_config"] = str(EXAMPLE_CONFIG)
    spec = load_sweep(doc)
    check_against_model(spec, example_graph)  # no error: every field changes the network
    assert len(spec) == 8 + doc["random"]["n"]


@pytest.mark.parametrize("doc, pattern", [
    ({"grid": {"layers.conv0.scale_firing_rates": [300, 300.0]}}, r"\(#1 = #0; "),
    ({"grid": {"layers.conv0.synapse": [0.005, None], "synapse": [0.005]},
      "base_config": {"schema_version": 1, "synapse": None}}, None),
    ({"random": {"n": 6, "seed": 1, "space": {"neuron": {"choice": ["LoihiLIF",
                                                                     "LoihiSpikingRectifiedLinear"]}}}},
     "lower random.n"),
    ({"grid": {"synapse": [0.002, 0.005]}, "random": {"n": 1, "seed": 0, "space": {
        "synapse": {"choice": [0.005]}}}}, r"\(#2 = #1; "),
])
def test_duplicate_configurations_are_refused(doc, pattern, example_graph):
    spec = load_sweep({"base_config": str(EXAMPLE_CONFIG), **doc})
    if pattern is None:  # a per-layer value equal to the inherited one is no duplicate here
        check_against_model(spec, example_graph)
        return
    with pytest.raises(SweepError, match=pattern) as info:
        check_against_model(spec, example_graph)
    assert "give the same network as an earlier one" in str(info.value)


def test_cli_refuses_duplicates_before_running(tmp_path, capsys):
    (tmp_path / "g.json").write_text(json.dumps({"base_config": str(EXAMPLE_CONFIG),
                                                 "grid": {"scale_firing_rates": [1, 2]}}))
    err = cli_error(capsys, ["sweep", EXAMPLE_MODEL, "--data", EXAMPLE_DATA, "--grid",
                             tmp_path / "g.json", "--n-images", 2, "--out", tmp_path / "r.csv"])
    assert "sets its own scale_firing_rates" in err
    assert "sweep:" not in capsys.readouterr().out  # nothing started
    assert not (tmp_path / "r.csv").exists()


# =======================================================================================
# sweeps: rows as they finish, a crash keeps them, --resume
# =======================================================================================

@pytest.fixture(scope="module")
def tutorial():
    from loihi_core import load_model

    ref = load_case("tutorial_random")
    graph = load_model(ref.keras_path)
    rng = np.random.default_rng(7)
    images = rng.uniform(0, 1, (6, 28, 28, 1)).astype(np.float32)
    labels = rng.integers(0, 10, 6)
    sweep = {"base_config": case_config("tutorial_random"),
             "grid": {"scale_firing_rates": [60.0, 100.0, 160.0, 250.0]}}
    return graph, images, labels, sweep


class Crash(Exception):
    pass


def _metrics(df):
    return df.drop(columns=["seconds"]).reset_index(drop=True)


def test_a_crash_after_n_configurations_keeps_n_rows_and_resume_runs_the_rest(tutorial, tmp_path):
    graph, images, labels, sweep = tutorial
    full = run_sweep(graph, images, labels, sweep, scheduler="local-threads", n_workers=1,
                     shard_size=4, out=tmp_path / "full.csv")
    assert list(full["index"]) == [0, 1, 2, 3] and (full["error"] == "").all()
    assert full.attrs["resumed"] == 0
    _pd_equal(load_results(tmp_path / "full.csv"), full)

    out = tmp_path / "r.csv"
    rows_seen = []

    def crash_after_two(p):
        if p.row is not None:
            rows_seen.append(p.row["index"])
            assert len(load_results(out)) == len(rows_seen)  # on disk before we hear of it
            if len(rows_seen) == 2:
                raise Crash("killed")

    with pytest.raises(Crash):
        run_sweep(graph, images, labels, sweep, scheduler="local-threads", n_workers=1,
                  shard_size=4, out=out, progress=crash_after_two)
    kept = load_results(out)
    assert len(kept) == 2 and sorted(kept["index"]) == sorted(rows_seen)
    for _, row in kept.iterrows():
        want = full[full["index"] == row["index"]].iloc[0]
        assert row["config"] == want["config"] and row["accuracy"] == want["accuracy"]
        assert row["spikes_per_image"] == want["spikes_per_image"]

    with pytest.raises(SweepError, match="already exists; add --resume"):
        run_sweep(graph, images, labels, sweep, scheduler="local-threads", out=out)
    ran = []
    resumed = run_sweep(graph, images, labels, sweep, scheduler="local-threads", n_workers=1,
                        shard_size=4, out=out, resume=True,
                        progress=lambda p: ran.append(p.config_index) if p.row else None)
    assert sorted(ran) == sorted(set(range(4)) - set(rows_seen))  # only the missing ones
    assert resumed.attrs["resumed"] == 2
    _pd_equal(_metrics(resumed), _metrics(full))
    _pd_equal(_metrics(load_results(out)), _metrics(full))  # rewritten in sweep order

    # a finished file: --resume runs nothing; another sweep's file is refused
    again = run_sweep(graph, images, labels, sweep, scheduler="local-threads", out=out, resume=True)
    assert again.attrs["resumed"] == 4 and again.attrs["backend"].startswith("none")
    other = {**sweep, "grid": {"scale_firing_rates": [60.0, 100.0]}}
    with pytest.raises(SweepError, match="2 row\\(s\\) whose configuration is not in this sweep"):
        run_sweep(graph, images, labels, other, scheduler="local-threads", out=out, resume=True)
    with pytest.raises(SweepError, match="holds results over 6 images, this run has 4"):
        run_sweep(graph, images[:4], labels[:4], sweep, scheduler="local-threads", out=out,
                  resume=True)
    other_fields = {**sweep, "grid": {"synapse": [0.004, 0.006]}}
    with pytest.raises(SweepError, match="has other columns than this sweep's results"):
        run_sweep(graph, images, labels, other_fields, scheduler="local-threads", out=out,
                  resume=True)
    over = run_sweep(graph, images, labels, other, scheduler="local-threads", out=out,
                     overwrite=True)
    assert len(load_results(out)) == len(over) == 2


def _pd_equal(a, b):
    import pandas as pd

    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True),
                                  check_dtype=False)


def _complete_rows(path: Path) -> int:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return 0
    return max(text.count("\n") - 1, 0)  # lines written whole, less the header


def test_a_killed_sweep_process_keeps_its_finished_rows(tutorial, tmp_path, capsys):
    """A real crash: the CLI process is killed with SIGKILL as soon as two rows are on disk;
    the rows it wrote are complete and equal to what ``--resume`` then keeps, and the resumed
    table has every configuration once, in order."""
    import signal
    import subprocess
    import sys
    import time

    graph, images, labels, sweep = tutorial
    ref = load_case("tutorial_random")
    np.savez(tmp_path / "d.npz", images=images, labels=labels)
    scales = [40.0, 60.0, 100.0, 160.0, 250.0, 400.0, 640.0, 1000.0]
    (tmp_path / "g.json").write_text(json.dumps({**sweep, "grid": {"scale_firing_rates": scales}}))
    out = tmp_path / "r.csv"
    argv = ["sweep", str(ref.keras_path), "--data", str(tmp_path / "d.npz"), "--grid",
            str(tmp_path / "g.json"), "--threads", "1", "--out", str(out)]
    proc = subprocess.Popen([sys.executable, "-m", "loihi_core", *argv],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        give_up = time.monotonic() + 600  # a guard against a hang, not a measurement
        while proc.poll() is None and _complete_rows(out) < 2 and time.monotonic() < give_up:
            time.sleep(0.02)
        killed = proc.poll() is None
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    kept = load_results(out)
    assert len(kept) == _complete_rows(out) >= 2
    if killed:
        assert len(kept) < len(scales)
    assert (kept["error"] == "").all() and kept["accuracy"].notna().all()
    assert main(argv + ["--resume"]) == 0
    assert f"{len(kept)} kept from" in capsys.readouterr().out
    final = load_results(out)
    assert list(final["index"]) == list(range(len(scales))) and (final["error"] == "").all()
    assert list(final["scale_firing_rates"]) == scales
    for _, row in kept.iterrows():
        same = final[final["config"] == row["config"]].iloc[0]
        assert same["accuracy"] == row["accuracy"] and same["seconds"] == row["seconds"]


def test_cli_resume_keeps_rows_and_reports_them(tutorial, tmp_path, capsys):
    graph, images, labels, sweep = tutorial
    ref = load_case("tutorial_random")
    np.savez(tmp_path / "d.npz", images=images, labels=labels)
    (tmp_path / "g.json").write_text(json.dumps(sweep))
    out = tmp_path / "r.csv"
    run_sweep(graph, images, labels, {**sweep, "grid": {"scale_firing_rates": [60.0, 100.0]}},
              scheduler="local-threads", out=out)  # "an earlier run that stopped after two"
    argv = ["sweep", str(ref.keras_path), "--data", str(tmp_path / "d.npz"), "--grid",
            str(tmp_path / "g.json"), "--out", str(out)]
    assert main(argv) == 2
    assert "add --resume" in capsys.readouterr().err
    assert main(argv + ["--resume"]) == 0
    text = capsys.readouterr().out
    assert "2 kept from" in text and "[4/4" in text
    assert list(load_results(out)["index"]) == [0, 1, 2, 3]


# =======================================================================================
# sweeps: a scheduler address that is not Dask
# =======================================================================================

class Server:
    """A TCP server on 127.0.0.1 that accepts and then stays silent, or sends ``greeting``."""

    def __init__(self, greeting: bytes | None = None):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.address = "tcp://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.greeting = greeting
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            if self.greeting is not None:
                try:
                    conn.sendall(self.greeting)
                except OSError:
                    pass

    def close(self) -> None:
        for conn in self.conns:
            conn.close()
        self.sock.close()


def test_a_silent_server_is_not_waited_for_for_ever():
    """Dask's own connect timeout does not cover its handshake: this server would hang
    ``distributed.Client`` for ever. The sweep gives it CONNECT_TIMEOUT_S (2 s here)."""
    pytest.importorskip("distributed")
    server = Server()
    try:
        with pytest.raises(SweepError, match="no Dask scheduler answered at 'tcp://127.0.0.1:.*' "
                                             "within 2 s: something accepts connections"):
            connect_scheduler(server.address, timeout=2)
        assert server.conns  # it did connect
    finally:
        server.close()
    assert CONNECT_TIMEOUT_S <= 15


def test_a_server_speaking_another_protocol_fails_with_exit_2(tutorial, tmp_path, capsys):
    pytest.importorskip("distributed")
    graph, images, labels, sweep = tutorial
    ref = load_case("tutorial_random")
    np.savez(tmp_path / "d.npz", images=images[:2], labels=labels[:2])
    (tmp_path / "g.json").write_text(json.dumps({**sweep, "grid": {"synapse": [0.005]}}))
    server = Server(b"SSH-2.0-OpenSSH_9.6\r\n")
    try:
        err = cli_error(capsys, ["sweep", ref.keras_path, "--data", tmp_path / "d.npz", "--grid",
                                 tmp_path / "g.json", "--scheduler", server.address, "--out",
                                 tmp_path / "r.csv"])
    finally:
        server.close()
    assert f"scheduler: {server.address!r} did not answer as a Dask scheduler" in err
    assert load_results(tmp_path / "r.csv").empty  # the header only: nothing ran, nothing lost
    assert main(["sweep", str(ref.keras_path), "--data", str(tmp_path / "d.npz"), "--grid",
                 str(tmp_path / "g.json"), "--threads", "--out", str(tmp_path / "r.csv")]) == 0
    assert len(load_results(tmp_path / "r.csv")) == 1  # a header-only file needs no --resume


def test_a_closed_port_cannot_be_reached():
    pytest.importorskip("distributed")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(SweepError, match=f"cannot reach the Dask scheduler at 'tcp://127.0.0.1:{port}'"):
        connect_scheduler(f"tcp://127.0.0.1:{port}", timeout=3)


# =======================================================================================
# exports: regular files only
# =======================================================================================

CONFIG = TunedConfig().with_defaults(scale_firing_rates=80)


def _special_cases(tmp_path, fifo, unix_socket) -> dict[str, tuple[Path, str]]:
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "target.json").write_text("keep me")
    (tmp_path / "link.json").symlink_to(tmp_path / "target.json")
    (tmp_path / "dangling.json").symlink_to(tmp_path / "nowhere.json")
    (tmp_path / "devlink").symlink_to("/dev/full")
    (tmp_path / "folder").mkdir()
    return {
        "/dev/full": (Path("/dev/full"), "'/dev/full' is a character device, not a regular file"),
        "/dev/null": (Path("/dev/null"), "is a character device, not a regular file"),
        "named pipe": (fifo, "is a named pipe, not a regular file"),
        "socket": (unix_socket, "is a socket, not a regular file"),
        "symlink to a file": (tmp_path / "link.json", "is a symbolic link \\(to '.*target.json'\\)"),
        "dangling symlink": (tmp_path / "dangling.json", "is a symbolic link"),
        "symlink to a device": (tmp_path / "devlink", "is a symbolic link \\(to '/dev/full'\\)"),
        "parent is a file": (tmp_path / "a_file" / "c.json", "'.*a_file' is a file, not a folder"),
        "grandparent is a file": (tmp_path / "a_file" / "x" / "c.json", "'.*a_file' is a file, not a folder"),
        "missing folder": (tmp_path / "missing" / "c.json", "does not exist; create it first"),
        "a folder": (tmp_path / "folder", "is a directory"),
    }


SPECIAL = ["/dev/full", "/dev/null", "named pipe", "socket", "symlink to a file",
           "dangling symlink", "symlink to a device", "parent is a file", "grandparent is a file",
           "missing folder", "a folder"]


@pytest.mark.parametrize("case", SPECIAL)
def test_json_export_writes_regular_files_only(case, tmp_path, fifo, unix_socket):
    path, pattern = _special_cases(tmp_path, fifo, unix_socket)[case]
    before = {p.name: (p.is_symlink(), p.lstat().st_mode) for p in tmp_path.iterdir()}
    with pytest.raises(ExportError, match=pattern) as info:
        export_json(CONFIG, path)
    assert isinstance(info.value, LoihiStudioError)
    assert {p.name: (p.is_symlink(), p.lstat().st_mode) for p in tmp_path.iterdir()} == before
    assert (tmp_path / "target.json").read_text() == "keep me"
    assert Path("/dev/full").is_char_device() and Path("/dev/null").is_char_device()


@pytest.mark.parametrize("case", ["/dev/full", "symlink to a file", "named pipe", "parent is a file"])
def test_lava_export_refuses_before_converting(case, tmp_path, fifo, unix_socket):
    """``model`` does not exist: the path error comes first."""
    path, pattern = _special_cases(tmp_path, fifo, unix_socket)[case]
    with pytest.raises(ExportError, match=pattern):
        export(tmp_path / "nope.keras", None, path, "lava-hdf5")


@pytest.mark.parametrize("case", ["/dev/full", "symlink to a file", "parent is a file"])
def test_nengo_loihi_export_refuses_before_converting(case, tmp_path, fifo, unix_socket):
    path, pattern = _special_cases(tmp_path, fifo, unix_socket)[case]
    if path.suffix != ".py" and case != "/dev/full":
        path = path.with_suffix(".py")
        if case == "symlink to a file":
            path.symlink_to(tmp_path / "target.json")
    with pytest.raises(ExportError, match="exists and is not a folder" if case == "/dev/full"
                       else pattern):
        export(tmp_path / "nope.keras", None, path, "nengo-loihi")


def test_nengo_loihi_folder_with_a_special_file_inside(tmp_path, fifo, example_graph):
    """The folder may be reached through a link; the files in it must be regular."""
    (tmp_path / "real").mkdir()
    (tmp_path / "deploy").symlink_to(tmp_path / "real", target_is_directory=True)
    os.mkfifo(tmp_path / "real" / "mnist_tutorial_nengo_loihi.npz")
    with pytest.raises(ExportError, match="mnist_tutorial_nengo_loihi.npz' is a named pipe"):
        export(EXAMPLE_MODEL, EXAMPLE_CONFIG, tmp_path / "deploy", "nengo-loihi")
    os.unlink(tmp_path / "real" / "mnist_tutorial_nengo_loihi.npz")
    result = export(EXAMPLE_MODEL, EXAMPLE_CONFIG, tmp_path / "deploy", "nengo-loihi")
    assert [p.name for p in result.paths] == ["mnist_tutorial_nengo_loihi.py",
                                              "mnist_tutorial_nengo_loihi.npz"]
    assert (tmp_path / "real" / "mnist_tutorial_nengo_loihi.py").is_file()
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ExportError, match="'.*afile' is a file, not a folder"):
        export(EXAMPLE_MODEL, EXAMPLE_CONFIG, tmp_path / "afile" / "deploy", "nengo-loihi")


@pytest.mark.parametrize("fmt", ["json", "lava-hdf5", "nengo-loihi"])
@pytest.mark.parametrize("case", ["/dev/full", "symlink to a file", "parent is a file"])
def test_cli_export_special_paths_exit_2(fmt, case, tmp_path, fifo, unix_socket, capsys):
    path, pattern = _special_cases(tmp_path, fifo, unix_socket)[case]
    if fmt == "nengo-loihi" and case == "/dev/full":
        pattern = "exists and is not a folder"
    elif fmt == "nengo-loihi":
        path = path.with_suffix(".py")
        if case == "symlink to a file":
            path.symlink_to(tmp_path / "target.json")
    err = cli_error(capsys, ["export", tmp_path / "nope.keras", "--format", fmt, "--out", path])
    import re
    assert re.search(pattern, err), err
    assert (tmp_path / "target.json").read_text() == "keep me"
