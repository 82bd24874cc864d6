"""``loihi-studio calibrate MODEL.keras --data X.npz --target-rate 200 --out CFG.json``.

Finds per-layer ``scale_firing_rates`` that put every spiking layer's mean rate (over
active neurons) within the tolerance of the target, measured on the emulator, and writes
the tuned config.
"""

from __future__ import annotations

import argparse

from ._common import add_model_arguments, load_inputs


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "calibrate", help="find per-layer scale_firing_rates that hit a target firing rate",
        description="Start from the one-shot ReLU estimate (target / mean activation) and "
                    "iterate against the bit-exact emulator until every layer's mean rate of "
                    "active neurons is within the tolerance of the target.")
    add_model_arguments(parser)
    parser.add_argument("--data", required=True, metavar="X.npz",
                        help=".npz with 'images' (the calibration batch)")
    parser.add_argument("--target-rate", type=float, default=200.0, metavar="HZ",
                        help="target mean rate of active neurons (default 200 Hz)")
    parser.add_argument("--tolerance", type=float, default=0.05,
                        help="relative band around the target (default 0.05 = ±5%%)")
    parser.add_argument("--n-images", type=int, default=64, metavar="N",
                        help="calibration images to use (default 64)")
    parser.add_argument("--method", choices=("emulator", "rate"), default="emulator",
                        help="measure on the emulator (default) or with the chip-true rate "
                             "functions (instant)")
    parser.add_argument("--out", required=True, metavar="CFG.json", help="tuned config to write")
    return parser


def run(args: argparse.Namespace) -> int:
    from ..calibrate import calibrate
    from ..config import load_config
    from ..graph import load_model

    config = load_config(args.config) if args.config else load_config(None)
    images, _ = load_inputs(args.data, args.n_images)
    graph = load_model(args.model)

    def progress(i, rates):
        print(f"iteration {i}: " + ", ".join(f"{k} {v:.1f} Hz" for k, v in rates.items()))

    result = calibrate(graph, images, config, args.target_rate, tolerance=args.tolerance,
                       method=args.method, progress=progress)
    result.config.save(args.out)
    print(result.table())
    print(f"{'converged' if result.converged else 'NOT converged'} after "
          f"{len(result.history)} measurement(s); wrote {args.out}")
    return 0 if result.converged else 1
