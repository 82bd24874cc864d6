"""Sweep throughput: configurations × images per second, 1 and 2 local Dask workers vs threads.

    python bench/bench_sweep.py [--images 256] [--configs 8]

Runs the same sweep (a grid over ``scale_firing_rates`` on the bundled MNIST example, 50
steps per image) with in-process threads, a Dask LocalCluster of 1 worker and of 2
workers, and prints throughput and ratios measured in this run (cluster start included).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "assets" / "examples"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--configs", type=int, default=8)
    args = parser.parse_args()

    import numpy as np

    from loihi_core import load_model
    from loihi_core.data import load_images_npz
    from loihi_core.sweep import run_sweep

    graph = load_model(EXAMPLE / "mnist_tutorial.keras")
    images, labels = load_images_npz(EXAMPLE / "mnist_test.npz")
    images, labels = images[:args.images], labels[:args.images]
    base = json.loads((EXAMPLE / "mnist_tutorial.config.json").read_text())
    factors = np.geomspace(0.5, 2.0, args.configs)
    sweep = {"base_config": base,
             "grid": {"layers.conv0.scale_firing_rates":
                      [round(base["layers"]["conv0"]["scale_firing_rates"] * f, 3) for f in factors]}}
    work = args.configs * args.images
    steps = base["presentation_steps"]
    run_sweep(graph, images[:8], labels[:8], {**sweep, "grid": {"synapse": [0.005]}},
              scheduler="local-threads")  # JIT/cache warm-up in this process
    results = {}
    for name, kwargs in [("threads (2)", {"scheduler": "local-threads", "n_workers": 2}),
                         ("dask 1 worker", {"scheduler": "local", "n_workers": 1}),
                         ("dask 2 workers", {"scheduler": "local", "n_workers": 2})]:
        t0 = time.perf_counter()
        df = run_sweep(graph, images, labels, sweep, shard_size=64, **kwargs)
        seconds = time.perf_counter() - t0
        results[name] = seconds
        print(f"{name:15s} {seconds:6.1f} s  {work / seconds:8.1f} config-images/s  "
              f"{work * steps / seconds:9,.0f} image-steps/s  (best accuracy "
              f"{df['accuracy'].max():.1%})", flush=True)
    base_s = results["dask 1 worker"]
    print(f"{args.configs} configurations x {args.images} images x {steps} steps; ratios vs "
          f"1 Dask worker: " + ", ".join(f"{k} {base_s / v:.2f}x" for k, v in results.items()))


if __name__ == "__main__":
    sys.exit(main())
