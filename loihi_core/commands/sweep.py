"""``loihi-studio sweep MODEL.keras --data X.npz --grid SWEEP.json --out results.csv``.

Evaluates every configuration of a grid/random search on the emulator over a labelled
test set — on an embedded Dask ``LocalCluster`` by default, on an existing cluster with
``--scheduler tcp://host:8786``, or in-process threads with ``--threads`` — and writes one
CSV row per configuration (accuracy, rate per layer, spikes and synaptic operations per
image, cores, latency). See :mod:`loihi_core.sweep` for the SWEEP.json format.
"""

from __future__ import annotations

import argparse


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "sweep", help="evaluate many tunings over a test set, locally or on a Dask cluster",
        description="Grid or random search over tuned-config fields, each configuration "
                    "evaluated on the bit-exact emulator over the test set, sharded by images.")
    parser.add_argument("model", help="path to a Keras 3 .keras file")
    parser.add_argument("--data", required=True, metavar="X.npz",
                        help=".npz with 'images' and 'labels'")
    parser.add_argument("--grid", required=True, metavar="SWEEP.json",
                        help="the sweep: base_config, grid and/or random search")
    parser.add_argument("--config", metavar="BASE.json", default=None,
                        help="base tuned config (replaces the sweep's base_config)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDR", default=None,
                       help="an existing Dask scheduler, e.g. tcp://host:8786")
    where.add_argument("--threads", action="store_true",
                       help="run in this process on threads (no Dask; often fastest on one "
                            "small machine)")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="local worker processes (or threads); default: the CPU count")
    parser.add_argument("--shard-size", type=int, default=64, metavar="N",
                        help="images per task (default 64)")
    parser.add_argument("--n-images", type=int, default=None, metavar="N",
                        help="use only the first N images")
    parser.add_argument("--retries", type=int, default=2, metavar="N")
    parser.add_argument("--out", required=True, metavar="results.csv")
    return parser


def run(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..graph import load_model
    from ..sweep import (best_row, describe_params, load_sweep, pareto_front, run_sweep,
                         save_results)
    from ._common import load_inputs

    graph = load_model(args.model)
    images, labels = load_inputs(args.data, args.n_images)
    if labels is None:
        from ..errors import DataError

        raise DataError(f"{args.data!r} has no 'labels' array; a sweep needs them to measure "
                        f"accuracy")
    spec = load_sweep(args.grid, load_config(args.config) if args.config else None)
    scheduler = "local-threads" if args.threads else (args.scheduler or "local")
    print(f"sweep: {len(spec.points)} configurations x {len(images)} images "
          f"(shards of {args.shard_size}) on {scheduler}")

    def progress(p):
        if p.row is not None:
            r = p.row
            acc = "error: " + r["error"] if r.get("error") else f"accuracy {r['accuracy']:.1%}"
            print(f"[{p.done_configs}/{p.total_configs}] {describe_params(r, spec.fields)}: {acc} "
                  f"({p.elapsed:.0f} s)", flush=True)

    df = run_sweep(graph, images, labels, spec, scheduler=scheduler, n_workers=args.workers,
                   shard_size=args.shard_size, retries=args.retries, progress=progress)
    save_results(df, args.out)
    best = best_row(df)
    n_err = int((df["error"] != "").sum())
    print(f"done in {df.attrs['wall_seconds']:.1f} s ({df.attrs['backend']}); wrote {args.out}"
          + (f"; {n_err} configuration(s) failed (see the error column)" if n_err else ""))
    if best is not None:
        print(f"best: {describe_params(best, spec.fields)}: accuracy {best['accuracy']:.1%}, "
              f"{best['spikes_per_image']:.0f} spikes/image")
    front = pareto_front(df)
    if len(front):
        print("Pareto front (accuracy vs spikes per image):")
        for _, r in front.iterrows():
            print(f"  {describe_params(r, spec.fields)}: {r['accuracy']:.1%}, "
                  f"{r['spikes_per_image']:.0f} spikes/image")
    return 0
