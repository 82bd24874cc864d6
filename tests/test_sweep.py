"""Sweeps (``loihi_core.sweep``): SWEEP.json expansion and validation, metrics equal to a
direct emulator run, failed configurations kept, retries, a Dask worker killed mid-sweep
(every (configuration, shard) result exactly once and equal to an in-process run), the CLI.

Loads the reference tutorial network once (TensorFlow, ~6 s); the Dask test starts a
2-process LocalCluster on loopback (~5 s with the worker restart).
"""

from __future__ import annotations

import json
import os
import signal
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from loihi_core import Emulator, TunedConfig, convert, load_model, map_to_chip
from loihi_core.cli import main
from loihi_core.errors import DataError
from loihi_core.sweep import (SweepError, check_against_model, config_of, effective_value,
                              evaluate_shard, latency_steps, load_results, load_sweep,
                              pareto_front, run_sweep, save_results, worker_info)
from refcases import case_config, load_case

GRID = {"grid": {"scale_firing_rates": [60.0, 100.0, 160.0], "synapse": [0.003, 0.005]}}
N_IMAGES = 24


@pytest.fixture(scope="module")
def tutorial():
    """The tutorial network (14 cores), 24 random images and labels, a 6-point grid."""
    ref = load_case("tutorial_random")
    graph = load_model(ref.keras_path)
    rng = np.random.default_rng(5)
    images = rng.uniform(0, 1, (N_IMAGES, 28, 28, 1)).astype(np.float32)
    labels = rng.integers(0, 10, N_IMAGES)
    return graph, images, labels, {**GRID, "base_config": case_config("tutorial_random")}


def problems_of(doc) -> dict[str, str]:
    with pytest.raises(SweepError) as info:
        load_sweep(doc)
    return dict(info.value.problems)


# -- SWEEP.json -------------------------------------------------------------------------

def test_grid_is_the_product_in_key_order_and_random_samples_follow():
    doc = {"grid": {"scale_firing_rates": [1, 2, 3], "synapse": [None, 0.005]},
           "random": {"n": 4, "seed": 1,
                      "space": {"presentation_steps": {"int_uniform": [10, 20]},
                                "layers.conv0.scale_firing_rates": {"log_uniform": [10, 1000]}}}}
    spec = load_sweep(doc)
    assert len(spec) == 3 * 2 + 4
    assert spec.fields == ["scale_firing_rates", "synapse", "presentation_steps",
                           "layers.conv0.scale_firing_rates"]
    assert [(p.config.scale_firing_rates, p.config.synapse) for p in spec.points[:6]] == [
        (1.0, None), (1.0, 0.005), (2.0, None), (2.0, 0.005), (3.0, None), (3.0, 0.005)]
    assert [p.source for p in spec.points] == ["grid"] * 6 + ["random"] * 4
    random = spec.points[6:]
    for p in random:  # a random sample sets only its own fields on the base
        assert 10 <= p.config.presentation_steps <= 20
        scale = p.config.for_layer("conv0").scale_firing_rates
        assert 10 <= scale <= 1000 and scale == float(f"{scale:.4g}")
        assert p.config.scale_firing_rates == 1.0 and p.config.synapse is None
    assert len({p.config.presentation_steps for p in random}) > 1
    assert load_sweep(doc).configs == spec.configs  # seeded: the same document, the same samples
    other = load_sweep({**doc, "random": {**doc["random"], "seed": 2}})
    assert other.configs[6:] != spec.configs[6:]


def test_grid_counts_and_layer_fields():
    spec = load_sweep({"grid": {"scale_firing_rates": [50, 100, 200],
                                "layers.conv0.scale_firing_rates": [200, 400],
                                "synapse": [0.002, 0.005], "presentation_steps": [20, 30],
                                "neuron": ["LoihiSpikingRectifiedLinear", "LoihiLIF"],
                                "layers.conv1.block_shape": [[8, 8, 16], None]}})
    assert len(spec) == 3 * 2 * 2 * 2 * 2 * 2
    last = spec.points[-1].config
    assert (last.scale_firing_rates, last.synapse, last.presentation_steps) == (200.0, 0.005, 30)
    assert type(last.neuron).__name__ == "LoihiLIF"
    assert last.for_layer("conv0").scale_firing_rates == 400.0
    assert last.for_layer("conv1").block_shape is None
    assert spec.points[0].config.for_layer("conv1").block_shape == (8, 8, 16)
    # effective values: an unset layer field inherits the global one
    first = spec.points[0].config
    assert effective_value(first, "layers.conv1.scale_firing_rates") == 50.0
    assert effective_value(first, "neuron") == "LoihiSpikingRectifiedLinear"
    assert len(load_sweep({"grid": {}})) == 1  # the base config alone


def test_base_config_from_a_path_and_replaced_by_the_cli_config(tmp_path):
    TunedConfig(scale_firing_rates=7.0).save(tmp_path / "base.json")
    (tmp_path / "sweep.json").write_text(json.dumps(
        {"base_config": "base.json", "grid": {"synapse": [0.001, 0.002]}}))
    spec = load_sweep(tmp_path / "sweep.json")
    assert [c.scale_firing_rates for c in spec.configs] == [7.0, 7.0]
    spec = load_sweep(tmp_path / "sweep.json", base_config=TunedConfig(presentation_steps=11))
    assert [(c.scale_firing_rates, c.presentation_steps) for c in spec.configs] == [(1.0, 11)] * 2


def test_validation_names_every_problem_with_its_path():
    found = problems_of({"grid": {"synapse": [0.1, -1], "blah": [1], "dt": [],
                                  "scale_firing_rates": [10, 20, 10],
                                  "layers.conv0.blok_shape": [[1]],
                                  "neuron": ["LoihiLIF", "Nope"]},
                         "random": {"n": 0, "seed": -1, "extra": 1,
                                    "space": {"neuron": {"uniform": [0, 1]},
                                              "scale_firing_rates": {"log_uniform": [0, 10]},
                                              "synapse": {"normal": [0, 1]},
                                              "presentation_steps": {"int_uniform": [1.5, 3]}}},
                         "typo": 1})
    assert set(found) == {
        "grid.synapse[1]", "grid.blah", "grid.dt", "grid.scale_firing_rates[2]",
        "grid.layers.conv0.blok_shape", "grid.neuron[1]", "random.n", "random.seed",
        "random.extra", "random.space.neuron.uniform", "random.space.scale_firing_rates.log_uniform",
        "random.space.synapse", "random.space.presentation_steps.int_uniform", "typo"}
    assert "lowpass time constant" in found["grid.synapse[1]"]  # the tuned config's own message
    assert "repeats grid.scale_firing_rates[0]" in found["grid.scale_firing_rates[2]"]
    assert "unknown neuron type 'Nope'" in found["grid.neuron[1]"]
    assert "use {\"choice\"" in found["random.space.neuron.uniform"]
    assert "0 < lo" in found["random.space.scale_firing_rates.log_uniform"]


def test_file_errors_and_versions(tmp_path):
    assert "needs \"grid\" and/or \"random\"" in str(pytest.raises(SweepError, load_sweep, {}).value)
    assert "upgrade" in problems_of({"schema_version": 2, "grid": {}})["schema_version"]
    path = tmp_path / "s.json"
    path.write_text('{"grid": {"synapse": [0.001]}, "grid": {}}')
    assert "duplicate key 'grid'" in str(pytest.raises(SweepError, load_sweep, path).value)
    path.write_text('{"grid": {"synapse": [NaN]}}')
    assert "NaN" in str(pytest.raises(SweepError, load_sweep, path).value)
    path.write_text('{"grid": {"synapse": [-1]}}')
    assert "(in s.json)" in str(pytest.raises(SweepError, load_sweep, path).value)
    assert "does not exist" in str(pytest.raises(SweepError, load_sweep, tmp_path / "x.json").value)
    assert "time step" in problems_of({"base_config": {"schema_version": 1, "dt": -1},
                                       "grid": {}})["base_config.dt"]


def test_layer_fields_are_checked_against_the_model(tutorial):
    graph = tutorial[0]
    check_against_model(load_sweep({"grid": {"layers.conv0.synapse": [0.01]}}), graph)
    with pytest.raises(SweepError) as info:
        check_against_model(load_sweep({"grid": {"layers.conv9.scale_firing_rates": [1]},
                                        "random": {"n": 1, "space": {"layers.flatten.on_chip":
                                                                     {"choice": [True]}}}}), graph)
    found = dict(info.value.problems)
    assert set(found) == {"grid.layers.conv9.scale_firing_rates",
                          "random.space.layers.flatten.on_chip"}
    assert "neuron layers are: to-spikes, conv0, conv1, dense0" in found["grid.layers.conv9.scale_firing_rates"]


# -- metrics ----------------------------------------------------------------------------

def test_latency_is_the_step_from_which_the_answer_stays_correct():
    out = np.zeros((3, 5, 2))
    out[0, :, 1] = 1                   # right from the first step
    out[1, 2:, 1] = 1                  # right from step 3 on
    out[1, 3, 1] = 0                   # ...but wrong again at step 4 (0-based 3)
    out[1, 3, 0] = 1
    out[2, :, 0] = 1                   # never right
    np.testing.assert_array_equal(latency_steps(out, np.array([1, 1, 1])), [1, 5, np.nan])


def test_metrics_equal_a_direct_emulator_run(tutorial):
    graph, images, labels, sweep = tutorial
    seen = []
    df = run_sweep(graph, images, labels, sweep, scheduler="local-threads", shard_size=7,
                   progress=seen.append)
    assert len(df) == 6 and (df["error"] == "").all() and (df["n_images"] == N_IMAGES).all()
    assert len(seen) == 6 * 4 and seen[-1].done_shards == seen[-1].total_shards == 24
    assert sum(p.row is not None for p in seen) == 6
    assert list(df["scale_firing_rates"]) == [60.0, 60.0, 100.0, 100.0, 160.0, 160.0]
    for _, row in df.iterrows():
        config = config_of(row)
        assert (config.scale_firing_rates, config.synapse) == (row["scale_firing_rates"], row["synapse"])
        result = Emulator(map_to_chip(convert(graph, config))).run(images)
        assert row["accuracy"] == result.accuracy(labels)
        for layer, rate in result.rates().items():  # integer totals, divided once: exact
            assert row[f"rate/{layer}"] == rate
        spikes = sum(int(c.sum()) for c in result.spike_counts.values())
        assert row["spikes_per_image"] == spikes / N_IMAGES
        assert row["synops_per_image"] == result.synaptic_ops.sum() / N_IMAGES
        assert row["n_cores"] == 14
        correct = result.predictions == labels
        latency = latency_steps(result.output, labels)[correct]
        assert row["latency_steps"] == pytest.approx(latency.mean() if correct.any() else np.nan,
                                                     nan_ok=True)
        assert row["latency_steps"] <= 30 or not correct.any()
    by_scale = df.groupby("scale_firing_rates")["spikes_per_image"].mean()
    assert by_scale.is_monotonic_increasing  # more spikes at higher scales


def test_configurations_that_do_not_fit_are_kept_with_their_error(tutorial):
    graph, images, labels, sweep = tutorial
    base = json.loads(json.dumps(sweep["base_config"]))
    base["layers"]["conv0"]["on_chip"] = True  # so that an ideal neuron there cannot convert
    bad = {"base_config": base,
           "grid": {"layers.conv1.block_shape": [[8, 8, 16], [2, 6, 64]],
                    "layers.conv0.neuron": ["LoihiSpikingRectifiedLinear", "RectifiedLinear"]}}
    df = run_sweep(graph, images[:8], labels[:8], bad, scheduler="local-threads", shard_size=4)
    assert len(df) == 4 and list(df["error"] == "") == [True, False, False, False]
    assert "RectifiedLinear cannot run on Loihi" in df["error"][1]
    assert "synapse bits" in df["error"][2] and df["n_cores"][2] == 13  # cores still reported
    assert df.loc[1:, "accuracy"].isna().all()
    assert df["layers.conv1.block_shape"][2] == "[2, 6, 64]"


def test_inputs_are_validated_before_anything_runs(tutorial):
    graph, images, labels, sweep = tutorial
    with pytest.raises(DataError, match="24 labels for 23 images"):
        run_sweep(graph, images[:23], labels, sweep, scheduler="local-threads")
    with pytest.raises(DataError, match="model takes"):
        run_sweep(graph, images[:, :20], labels, sweep, scheduler="local-threads")
    with pytest.raises(SweepError, match="scheduler"):
        run_sweep(graph, images, labels, sweep, scheduler="bogus")


# -- executors, retries, Dask ----------------------------------------------------------

class FlakyExecutor(ThreadPoolExecutor):
    """Fails the first ``failures`` tasks it is given (a crashed task, as seen by a pool)."""

    def __init__(self, failures: int):
        super().__init__(max_workers=2)
        self.failures = failures

    def submit(self, fn, /, *args, **kwargs):
        if self.failures > 0:
            self.failures -= 1
            return super().submit(_crash)
        return super().submit(fn, *args, **kwargs)


def _crash():
    raise RuntimeError("worker crashed")


def test_any_executor_with_retries_counts_every_shard_once(tutorial):
    graph, images, labels, sweep = tutorial
    sweep = {**sweep, "grid": {"synapse": [0.003, 0.005]}}
    images, labels = images[:12], labels[:12]
    expected = run_sweep(graph, images, labels, sweep, scheduler="local-threads", shard_size=4)
    seen = []
    with FlakyExecutor(failures=3) as pool:
        df = run_sweep(graph, images, labels, sweep, executor=pool, shard_size=4, retries=2,
                       progress=lambda p: seen.append((p.config_index, p.shard_index)))
    assert sorted(seen) == [(c, s) for c in range(2) for s in range(3)]
    cols = [c for c in df.columns if c != "seconds"]
    assert df[cols].equals(expected[cols])
    with FlakyExecutor(failures=1) as pool:  # no retries: the row says why, nothing is dropped
        df = run_sweep(graph, images, labels, sweep, executor=pool, shard_size=4, retries=0)
    assert len(df) == 2 and (df["error"] != "").sum() == 1
    assert "failed after its retries: RuntimeError: worker crashed" in df["error"][0]


def test_dask_worker_killed_mid_sweep_loses_and_doubles_nothing(tutorial):
    """Kill one of two worker processes after the first result: Dask reschedules its tasks,
    and every (configuration, shard) is reported exactly once, equal to an in-process run."""
    distributed = pytest.importorskip("distributed")
    graph, images, labels, sweep = tutorial
    spec = load_sweep({**sweep, "grid": {"scale_firing_rates": [60.0, 100.0, 160.0]}})
    shard = 4
    expected = {(p.index, s): evaluate_shard(graph, p.config, images[a:a + shard],
                                             labels[a:a + shard], cache_key="test")
                for p in spec.points for s, a in enumerate(range(0, N_IMAGES, shard))}
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        pids = [info["pid"] for info in client.run(worker_info).values()]
        assert len(pids) == 2
        seen = {}

        def progress(p):
            seen.setdefault((p.config_index, p.shard_index), []).append(p.stats)
            if len(seen) == 1:
                os.kill(pids[0], signal.SIGKILL)

        df = run_sweep(graph, images, labels, spec, scheduler=client, shard_size=shard,
                       progress=progress)
        infos = list(client.run(worker_info).values())
        assert pids[0] not in [i["pid"] for i in infos]  # the worker really died (and restarted)
        assert not any(i["tensorflow_imported"] for i in infos)
        prepared = [i for i in infos if i["prepared"]]
        assert prepared and all("dask-worker-" in i["numba_cache_dir"] for i in prepared)
        # the same cluster by address: nothing changes
        again = run_sweep(graph, images[:8], labels[:8], spec.configs[:1],
                          scheduler=cluster.scheduler_address, shard_size=shard)
    assert set(seen) == set(expected)
    assert all(len(v) == 1 for v in seen.values())  # exactly once
    assert all(seen[key][0] == expected[key] for key in expected)  # equal to in-process
    assert df.attrs["duplicates_ignored"] == 0 and (df["error"] == "").all()
    assert list(df["n_images"]) == [N_IMAGES] * 3
    assert list(df["accuracy"]) == [sum(expected[c, s].n_correct for s in range(6)) / N_IMAGES
                                    for c in range(3)]
    assert again["error"][0] == "" and again["n_images"][0] == 8


# -- results files and the CLI ---------------------------------------------------------

def test_results_round_trip_and_pareto_front(tutorial, tmp_path):
    graph, images, labels, sweep = tutorial
    df = run_sweep(graph, images[:8], labels[:8], {**sweep, "grid": {
        **sweep["grid"], "layers.conv1.block_shape": [[8, 8, 16], [2, 6, 64]]}},
        scheduler="local-threads")
    save_results(df, tmp_path / "r.csv")
    back = load_results(tmp_path / "r.csv")
    assert list(back.columns) == list(df.columns) and len(back) == 12
    assert list(back["error"] == "") == list(df["error"] == "")
    assert [config_of(r) for _, r in back.iterrows()] == [config_of(r) for _, r in df.iterrows()]
    assert config_of(back.iloc[[3]]) == load_sweep({**sweep, "grid": {
        **sweep["grid"], "layers.conv1.block_shape": [[8, 8, 16], [2, 6, 64]]}}).configs[3]
    front = pareto_front(back)
    assert len(front) >= 1 and (front["error"] == "").all()
    assert front["spikes_per_image"].is_monotonic_increasing
    assert front["accuracy"].is_monotonic_increasing
    ok = back[back["error"] == ""]
    for _, r in front.iterrows():  # nothing on the front is dominated
        better = ok[(ok.accuracy >= r.accuracy) & (ok.spikes_per_image <= r.spikes_per_image)
                    & ((ok.accuracy > r.accuracy) | (ok.spikes_per_image < r.spikes_per_image))]
        assert better.empty
    for _, r in ok.drop(front.index).iterrows():  # and everything off it is
        assert ((ok.accuracy >= r.accuracy) & (ok.spikes_per_image <= r.spikes_per_image)).sum() > 1
    with pytest.raises(DataError, match="not a sweep results table"):
        (tmp_path / "x.csv").write_text("a,b\n1,2\n")
        load_results(tmp_path / "x.csv")


def test_cli_sweep_prints_progress_and_summary_and_writes_csv(tutorial, tmp_path, capsys):
    graph, images, labels, sweep = tutorial
    ref = load_case("tutorial_random")
    (tmp_path / "sweep.json").write_text(json.dumps(sweep))
    np.savez(tmp_path / "x.npz", images=images, labels=labels)
    out = tmp_path / "res.csv"
    assert main(["sweep", str(ref.keras_path), "--data", str(tmp_path / "x.npz"), "--grid",
                 str(tmp_path / "sweep.json"), "--threads", "--shard-size", "10",
                 "--n-images", "20", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "6 configurations x 20 images (2 shards of <= 10) = 12 tasks" in printed
    assert "[6/6" in printed and "best accuracy: #" in printed and "Pareto front" in printed
    df = load_results(out)
    assert len(df) == 6 and (df["n_images"] == 20).all()
    cfg = config_of(df.iloc[[2]])
    assert (cfg.scale_firing_rates, cfg.synapse) == (100.0, 0.003)


def test_cli_checks_the_sweep_before_loading_the_model(tmp_path, capsys):
    (tmp_path / "sweep.json").write_text('{"grid": {"synapse": [-1]}}')
    code = main(["sweep", str(tmp_path / "missing.keras"), "--data", str(tmp_path / "x.npz"),
                 "--grid", str(tmp_path / "sweep.json"), "--out", str(tmp_path / "r.csv")])
    assert code == 2
    assert "grid.synapse[0]" in capsys.readouterr().err
