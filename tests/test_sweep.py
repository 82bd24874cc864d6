"""Sweeps: grid/random expansion, exact metrics, Dask with a worker killed mid-sweep, CLI."""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest

from loihi_core import Emulator, convert, load_model, map_to_chip
from loihi_core.cli import main
from loihi_core.sweep import (SweepError, config_of, latency_steps, load_results, load_sweep,
                              pareto_front, run_sweep, save_results)
from refcases import case_config, load_case

GRID = {"grid": {"scale_firing_rates": [60.0, 100.0, 160.0], "synapse": [0.003, 0.005]}}


@pytest.fixture(scope="module")
def tutorial():
    ref = load_case("tutorial_random")
    graph = load_model(ref.keras_path)
    rng = np.random.default_rng(5)
    images = rng.uniform(0, 1, (24, 28, 28, 1)).astype(np.float32)
    labels = rng.integers(0, 10, 24)
    base = case_config("tutorial_random")
    return graph, images, labels, {**GRID, "base_config": base}


def test_grid_and_random_expansion():
    spec = load_sweep({"grid": {"scale_firing_rates": [1, 2, 3], "synapse": [None, 0.005]},
                       "random": {"n": 4, "seed": 1,
                                  "space": {"presentation_steps": {"int_uniform": [10, 20]}}}})
    assert len(spec) == 10 and spec.fields == ["scale_firing_rates", "synapse", "presentation_steps"]
    assert [(p.config.scale_firing_rates, p.config.synapse) for p in spec.points[:6]] == [
        (1.0, None), (1.0, 0.005), (2.0, None), (2.0, 0.005), (3.0, None), (3.0, 0.005)]
    samples = [p.config.presentation_steps for p in spec.points[6:]]
    assert all(10 <= s <= 20 for s in samples)
    again = load_sweep({"grid": {"scale_firing_rates": [1, 2, 3], "synapse": [None, 0.005]},
                        "random": {"n": 4, "seed": 1,
                                   "space": {"presentation_steps": {"int_uniform": [10, 20]}}}})
    assert [p.config for p in again.points] == [p.config for p in spec.points]


def test_bad_sweeps_name_every_problem():
    with pytest.raises(SweepError) as info:
        load_sweep({"grid": {"synapse": [0.1, -1], "blah": [1]}, "random": {"n": 0}})
    paths = [p for p, _ in info.value.problems]
    assert paths[:3] == ["grid.synapse[1]", "grid.blah", "random.n"]


def test_metrics_equal_a_direct_emulator_run(tutorial):
    graph, images, labels, sweep = tutorial
    df = run_sweep(graph, images, labels, sweep, scheduler="local-threads", shard_size=7)
    assert len(df) == 6 and (df["error"] == "").all() and (df["n_images"] == 24).all()
    for _, row in df.iterrows():
        net = convert(graph, config_of(row))
        result = Emulator(map_to_chip(net)).run(images)
        assert row["accuracy"] == result.accuracy(labels)
        for layer, rate in result.rates().items():
            assert row[f"rate/{layer}"] == pytest.approx(rate, rel=1e-12)
        spikes = sum(int(c.sum()) for c in result.spike_counts.values())
        assert row["spikes_per_image"] == pytest.approx(spikes / 24)
        assert row["synops_per_image"] == pytest.approx(result.synaptic_ops.mean())
        assert row["n_cores"] == 14
    # more spikes at higher scales
    by_scale = df.groupby("scale_firing_rates")["spikes_per_image"].mean()
    assert by_scale.is_monotonic_increasing


def test_configurations_that_do_not_fit_are_kept_with_their_error(tutorial):
    graph, images, labels, sweep = tutorial
    bad = {"base_config": sweep["base_config"],
           "grid": {"layers.conv1.block_shape": [[8, 8, 16], [2, 6, 64]]}}
    df = run_sweep(graph, images[:8], labels[:8], bad, scheduler="local-threads")
    assert list(df["error"] == "") == [True, False]
    assert "synapse bits" in df["error"][1] and np.isnan(df["accuracy"][1])


def test_latency_is_the_step_from_which_the_answer_stays_correct():
    out = np.zeros((3, 5, 2))
    out[0, :, 1] = 1                   # right from the first step
    out[1, 2:, 1] = 1                  # right from step 3 on
    out[1, 3, 1] = 0                   # ...but wrong again at step 4 (0-based 3)
    out[1, 3, 0] = 1
    out[2, :, 0] = 1                   # never right
    np.testing.assert_array_equal(latency_steps(out, np.array([1, 1, 1])), [1, 5, np.nan])


def test_dask_worker_killed_mid_sweep_loses_and_doubles_nothing(tutorial):
    """Kill one of two worker processes after the first result: Dask reschedules its tasks,
    and every (configuration, shard) is counted exactly once, equal to an in-process run."""
    distributed = pytest.importorskip("distributed")
    graph, images, labels, sweep = tutorial
    expected = run_sweep(graph, images, labels, sweep, scheduler="local-threads", shard_size=4)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        pids = list(client.run(os.getpid).values())
        assert len(pids) == 2
        seen = []

        def progress(p):
            seen.append((p.config_index, p.shard_index))
            if len(seen) == 1:
                os.kill(pids[0], signal.SIGKILL)

        df = run_sweep(graph, images, labels, sweep, scheduler=client, shard_size=4,
                       progress=progress)
        assert pids[0] not in client.run(os.getpid).values()  # the worker really died
    assert sorted(seen) == sorted(set(seen)) and len(seen) == 6 * 6
    assert df.attrs["duplicates_ignored"] == 0
    assert (df["error"] == "").all()
    cols = ["accuracy", "spikes_per_image", "synops_per_image", "latency_steps"]
    np.testing.assert_array_equal(df[cols].to_numpy(), expected[cols].to_numpy())


def test_cli_writes_results_that_load_back(tutorial, tmp_path, capsys):
    graph, images, labels, sweep = tutorial
    ref = load_case("tutorial_random")
    (tmp_path / "sweep.json").write_text(json.dumps(sweep))
    np.savez(tmp_path / "x.npz", images=images, labels=labels)
    out = tmp_path / "res.csv"
    assert main(["sweep", str(ref.keras_path), "--data", str(tmp_path / "x.npz"), "--grid",
                 str(tmp_path / "sweep.json"), "--threads", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "[6/6]" in printed and "Pareto front" in printed
    df = load_results(out)
    assert len(df) == 6
    front = pareto_front(df)
    assert 1 <= len(front) <= 6
    for _, r in front.iterrows():  # nothing on the front is dominated
        better = df[(df.accuracy >= r.accuracy) & (df.spikes_per_image <= r.spikes_per_image)
                    & ((df.accuracy > r.accuracy) | (df.spikes_per_image < r.spikes_per_image))]
        assert better.empty
    cfg = config_of(df.iloc[[2]])
    assert (cfg.scale_firing_rates, cfg.synapse) == (100.0, 0.003)
    save_results(df, tmp_path / "again.csv")
    assert len(load_results(tmp_path / "again.csv")) == 6
