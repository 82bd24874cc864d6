"""Emulator runs and seconds of a calibration on the bundled examples, per starting point.

    python bench/bench_calibrate.py [--images 64] [--target 150]

For ``assets/examples/mnist_tutorial`` and ``mnist_residual``: :func:`loihi_core.calibrate`
from the tutorial's one-shot ReLU estimate, layer by layer (``start="relu"``, the method
before issue 16), and from the chip-true rate model with all layers corrected per emulator
run (``start="rate"``, the default), on the same images in the same run. Prints the number
of emulator runs (one per ``history`` entry), the seconds (median of ``--repeats``; the
Numba kernels are compiled by an untimed run first) and whether every layer is in the band.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    from loihi_core.calibrate import calibrate
    from loihi_core.config import load_config
    from loihi_core.graph import load_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--target", type=float, default=150.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    examples = ROOT / "assets" / "examples"
    images = np.load(examples / "mnist_test.npz")["images"][:args.images]
    print(f"calibration to {args.target:g} Hz on {args.images} images, 50 steps "
          f"(seconds: median of {args.repeats})")
    print(f"{'model':<16} {'start':<6} {'emulator runs':>13} {'seconds':>8} {'converged':>9}")
    for name in ("mnist_tutorial", "mnist_residual"):
        graph = load_model(examples / f"{name}.keras")
        config = load_config(examples / f"{name}.config.json")
        calibrate(graph, images[:2], config, args.target, max_iterations=1,
                  evaluate_result=False)  # JIT warm-up
        for start in ("relu", "rate"):
            seconds, result = [], None
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                result = calibrate(graph, images, config, args.target, presentation_steps=50,
                                   start=start, evaluate_result=False)
                seconds.append(time.perf_counter() - t0)
            print(f"{name:<16} {start:<6} {len(result.history):>13} "
                  f"{statistics.median(seconds):>7.2f}s {str(result.converged):>9}")


if __name__ == "__main__":
    main()
