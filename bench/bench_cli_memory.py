"""Memory of the CLI's long runs: ``simulate`` over a large set, ``sweep`` over many configurations.

On the bundled MNIST example (its calibrated config; the 1 000 test digits tiled to the
sizes asked for), in this process, with ``tracemalloc`` (every NumPy buffer is traced) and
the resident memory (RSS, ``/proc``):

* **simulate** — ``loihi-studio simulate`` (``loihi_core.cli.main``) on ``--sizes`` images
  (independent mode: chunks of 256 images). Its output arrays grow with the number of
  images (``spike_counts`` per image and neuron, the output per step); the bench prints the
  run's traced peak next to the bytes of those outputs, so that what is left — the
  working memory of a chunk — can be seen to stay the same from 1 to 40 chunks. Then the
  same run three more times: what stays allocated after each run must not grow.
* **sweep** — ``run_sweep`` on in-process threads over ``--configs`` configurations
  (``layers.conv0.scale_firing_rates`` varied), sampling traced and resident memory after
  every configuration has finished: flat once the per-process caches are full.

Usage::

    .venv/bin/python bench/bench_cli_memory.py [--sizes 1000,4000,10000] [--configs 24] [--steps 30] [--only simulate|sweep] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
EXAMPLE = ROOT / "assets" / "examples"
MB = 2**20


def rss_mb() -> float:
    from loihi_core.memory import release_freed_memory, resident_bytes

    gc.collect()
    release_freed_memory()
    return resident_bytes() / MB


def bench_simulate(sizes: list[int], tmp: Path, steps: int) -> None:
    import numpy as np

    from loihi_core import cli

    data = np.load(EXAMPLE / "mnist_test.npz")
    images, labels = data["images"], data["labels"]
    model, config = EXAMPLE / "mnist_tutorial.keras", EXAMPLE / "mnist_tutorial.config.json"
    out = tmp / "out.npz"

    def run(n: int) -> tuple[float, float, int]:
        reps = -(-n // len(images))
        path = tmp / f"x{n}.npz"
        np.savez(path, images=np.tile(images, (reps, 1, 1, 1))[:n], labels=np.tile(labels, reps)[:n])
        gc.collect()
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        with contextlib.redirect_stdout(io.StringIO()):  # the CLI's own report
            code = cli.main(["simulate", str(model), "--config", str(config), "--inputs", str(path),
                             "--out", str(out), "--steps", str(steps)])
        assert code == 0, code
        peak = tracemalloc.get_traced_memory()[1] - before
        with np.load(out) as saved:
            outputs = sum(saved[k].nbytes for k in saved.files)
        gc.collect()
        left = tracemalloc.get_traced_memory()[0] - before
        return peak / MB, left / MB, outputs

    run(min(sizes))  # the model, the JIT and the mapper's cache, once
    print(f"simulate ({steps} steps per image, independent mode, chunks of 256 images):")
    print(f"{'images':>7} {'chunks':>6} {'traced peak':>12} {'outputs':>9} {'peak-outputs':>13} "
          f"{'per image':>10} {'rss':>8}")
    for n in sizes:
        peak, left, outputs = run(n)
        print(f"{n:7d} {-(-n // 256):6d} {peak:10.1f} MB {outputs / MB:7.1f} MB "
              f"{peak - outputs / MB:11.1f} MB {peak * MB / n / 1024:7.1f} kB {rss_mb():6.0f} MB", flush=True)
    n = sizes[-1]
    lefts = [run(n)[1] for _ in range(3)]
    print(f"  {n} images three more times: left allocated after each run "
          f"{', '.join(f'{x:+.2f}' for x in lefts)} MB; rss {rss_mb():.0f} MB")


def bench_sweep(n_configs: int, n_images: int) -> None:
    import numpy as np

    from loihi_core import load_model
    from loihi_core.sweep import run_sweep

    data = np.load(EXAMPLE / "mnist_test.npz")
    images, labels = data["images"][:n_images], data["labels"][:n_images]
    graph = load_model(EXAMPLE / "mnist_tutorial.keras")
    base = json.loads((EXAMPLE / "mnist_tutorial.config.json").read_text())
    scales = np.round(np.geomspace(100, 1000, n_configs), 1).tolist()
    spec = {"base_config": base, "grid": {"layers.conv0.scale_firing_rates": scales}}
    shards_per_config = -(-n_images // 64)
    samples: list[tuple[int, float, float]] = []
    done = {"tasks": 0}

    def progress(p) -> None:
        done["tasks"] += 1
        if done["tasks"] % shards_per_config == 0:
            samples.append((done["tasks"] // shards_per_config,
                            tracemalloc.get_traced_memory()[0] / MB, rss_mb()))

    gc.collect()
    t0 = time.perf_counter()
    df = run_sweep(graph, images, labels, spec, scheduler="local-threads", n_workers=2,
                   shard_size=64, progress=progress)
    assert len(df) == n_configs and not df["error"].astype(bool).any()
    print(f"\nsweep ({n_configs} configurations x {n_images} images, 2 threads, "
          f"{time.perf_counter() - t0:.0f} s): memory after every configuration")
    print(f"{'configs':>7} {'traced':>10} {'rss':>8}")
    for k, traced, rss in samples:
        if k in (1, 2, 3, 6) or k % 4 == 0 or k == n_configs:
            print(f"{k:7d} {traced:8.1f} MB {rss:6.0f} MB")
    first = next(s for s in samples if s[0] >= min(12, n_configs))
    print(f"  from configuration {first[0]} to {samples[-1][0]}: traced {samples[-1][1] - first[1]:+.1f} MB, "
          f"rss {samples[-1][2] - first[2]:+.0f} MB")
    from loihi_core import memory

    print(f"  {memory.summary_line()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,4000,10000", help="images per simulate run")
    parser.add_argument("--configs", type=int, default=24, help="configurations of the sweep")
    parser.add_argument("--sweep-images", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30, help="presentation steps of simulate")
    parser.add_argument("--only", choices=("simulate", "sweep"), default=None)
    parser.add_argument("--quick", action="store_true", help="sizes 500,2000 and 10 configurations")
    args = parser.parse_args(argv)
    sizes = [500, 2000] if args.quick else [int(s) for s in args.sizes.split(",")]
    n_configs = 10 if args.quick else args.configs
    if not (EXAMPLE / "mnist_tutorial.keras").exists():
        print("the bundled example is missing: run `make assets`")
        return 2
    tracemalloc.start()
    if args.only in (None, "simulate"):
        with tempfile.TemporaryDirectory(prefix="loihi-cli-memory-") as tmp:
            bench_simulate(sizes, Path(tmp), args.steps)
    if args.only in (None, "sweep"):
        bench_sweep(n_configs, args.sweep_images)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
