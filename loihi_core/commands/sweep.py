"""``loihi-studio sweep MODEL.keras --data X.npz --grid SWEEP.json --out results.csv``.

Evaluates every configuration of a grid/random search (the SWEEP.json format is in
:mod:`loihi_core.sweep`) on the bit-exact emulator over a labelled test set, prints one
line per finished configuration, writes the results table as CSV and prints a summary:
the most accurate configuration and the accuracy/spikes Pareto front.

Where it runs:

* default, ``--threads [N]``: in-process threads. On one machine this is the fastest: the
  emulator's Numba kernels release the GIL, and there is no cluster to start, no
  per-worker JIT-cache load and no data copy (``bench/bench_sweep.py`` measures it);
* ``--workers N``: an embedded Dask ``LocalCluster`` of N worker processes (loopback, no
  dashboard);
* ``--scheduler tcp://host:8786``: an existing Dask cluster (``dask scheduler`` and
  ``dask worker tcp://host:8786 --nthreads 1`` with the same loihi-studio installed),
  which is where sweeps scale: more cores and machines.

``--out`` is checked before anything else (its folder exists and is writable, it is not a
folder or a device, an existing file needs ``--resume`` or ``--overwrite``); each
configuration's row is appended to it as soon as the configuration is done, so a crash or
Ctrl-C after N configurations keeps N rows, and ``--resume`` runs only the others.

Exit code 0 when at least one configuration ran, 1 when none did (every row has an
error), 2 for invalid input.
"""

from __future__ import annotations

import argparse
import math
import sys
import time


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "sweep", help="evaluate a grid/random search of tuned configs on the emulator",
        description="Vary tuned-config fields (scale_firing_rates, synapse, "
                    "presentation_steps, neuron, per-layer settings) over a grid and/or random "
                    "samples, evaluate each configuration on the bit-exact emulator over a test "
                    "set (sharded by images, in parallel), and write one CSV row per "
                    "configuration: accuracy, rates, spikes and synaptic ops per image, cores, "
                    "latency.")
    parser.add_argument("model", help="path to a Keras 3 .keras file")
    parser.add_argument("--data", required=True, metavar="X.npz",
                        help=".npz with 'images' and 'labels' (the test set)")
    parser.add_argument("--grid", required=True, metavar="SWEEP.json",
                        help="the sweep: base_config, grid and/or random (see the docs)")
    parser.add_argument("--config", metavar="BASE.json", default=None,
                        help="tuned config to start from (replaces the sweep's base_config)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDR", default=None,
                       help="address of a running Dask scheduler, e.g. tcp://head:8786")
    where.add_argument("--workers", type=int, metavar="N", default=None,
                       help="start a local Dask cluster of N worker processes")
    where.add_argument("--threads", type=int, nargs="?", const=0, metavar="N", default=None,
                       help="run in this process on N threads (the default; N defaults to "
                            "the CPU count)")
    parser.add_argument("--shard-size", type=int, default=64, metavar="N",
                        help="images per task (default 64)")
    parser.add_argument("--n-images", type=int, default=None, metavar="N",
                        help="use only the first N images")
    parser.add_argument("--retries", type=int, default=2, metavar="N",
                        help="retries of a failed task (default 2)")
    parser.add_argument("--out", required=True, metavar="results.csv",
                        help="CSV to write, one row per configuration, each written as soon as "
                             "its configuration is done (checked before anything runs)")
    again = parser.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="keep the rows already in --out and run only the configurations "
                            "it lacks (after a crash or Ctrl-C)")
    again.add_argument("--overwrite", action="store_true",
                       help="replace an existing --out (without it, or --resume, an existing "
                            "file is refused)")
    return parser


def _fmt(value, spec: str, missing: str = "-") -> str:
    try:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return missing
    except TypeError:
        pass
    return format(value, spec)


def _line(row: dict, fields: list[str]) -> str:
    from ..sweep import describe_params

    head = f"#{row['index']} {describe_params(row, fields)}"
    if row["error"]:
        return f"{head}: ERROR {row['error']}"
    return (f"{head}: accuracy {row['accuracy']:.2%}, {row['spikes_per_image']:,.0f} spikes/image, "
            f"{row['n_cores']} cores, latency {_fmt(row['latency_steps'], '.1f')} steps")


def run(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..data import load_images_npz
    from ..errors import ConfigError
    from ..graph import load_model
    from ..sweep import best_row, load_sweep, pareto_front, run_sweep
    from ..sweep.results import check_output_csv

    # --out first: a sweep must not run for an hour and then find it cannot write.
    check_output_csv(args.out, resume=args.resume, overwrite=args.overwrite, what="--out")

    for flag, value, low in (("--shard-size", args.shard_size, 1), ("--n-images", args.n_images, 1),
                             ("--retries", args.retries, 0), ("--workers", args.workers, 1),
                             ("--threads", args.threads, 0)):
        if value is not None and value < low:
            raise ConfigError([(flag, f"must be >= {low}, got {value}")])
    # Everything cheap is checked before the model is loaded (TensorFlow takes seconds).
    base = load_config(args.config) if args.config else None
    spec = load_sweep(args.grid, base_config=base)
    images, labels = load_images_npz(args.data, require_labels=True)
    if args.n_images is not None:
        images, labels = images[:args.n_images], labels[:args.n_images]
    graph = load_model(args.model)

    if args.scheduler:
        scheduler, n_workers = args.scheduler, None
    elif args.workers:
        scheduler, n_workers = "local", args.workers
    else:
        scheduler, n_workers = "local-threads", (args.threads or None)
    n_shards = -(-len(images) // args.shard_size)
    print(f"sweep: {len(spec)} configurations x {len(images)} images "
          f"({n_shards} shard{'s' * (n_shards != 1)} of <= {args.shard_size}) = "
          f"{len(spec) * n_shards} tasks; fields: {', '.join(spec.fields) or '(none)'}")
    fields = spec.fields
    last = [time.perf_counter()]

    def progress(p) -> None:
        now = time.perf_counter()
        if p.row is not None:
            print(f"[{p.done_configs}/{p.total_configs} {p.elapsed:6.1f} s] {_line(p.row, fields)}",
                  flush=True)
            last[0] = now
        elif now - last[0] > 10:
            print(f"[{p.done_configs}/{p.total_configs} {p.elapsed:6.1f} s] "
                  f"{p.done_shards}/{p.total_shards} tasks done", flush=True)
            last[0] = now

    df = run_sweep(graph, images, labels, spec, scheduler=scheduler, n_workers=n_workers,
                   shard_size=args.shard_size, retries=args.retries, progress=progress,
                   out=args.out, resume=args.resume, overwrite=args.overwrite)

    wall = df.attrs["wall_seconds"]
    n_ok = int((df["error"] == "").sum())
    resumed = df.attrs.get("resumed", 0)
    ran = len(df) - resumed
    kept = f", {resumed} kept from {args.out}" if resumed else ""
    print(f"\n{len(df)} configurations ({n_ok} ran, {len(df) - n_ok} with errors{kept}) in "
          f"{wall:.1f} s on {df.attrs['backend']}: {ran * len(images) / wall:,.1f} "
          f"configuration-images/s")
    best = best_row(df)
    if best is not None:
        print(f"best accuracy: {_line(best.to_dict(), fields)}")
        front = pareto_front(df)
        print(f"Pareto front (max accuracy, min spikes/image), {len(front)} configuration(s):")
        for _, row in front.iterrows():
            print(f"  {_line(row.to_dict(), fields)}")
    print(f"wrote {args.out}")
    if n_ok == 0:
        print("loihi-studio sweep: no configuration ran; see the error column", file=sys.stderr)
        return 1
    return 0
