"""Peak memory of ``loihi-studio map`` on a model whose big layer cannot fit on a core.

The model is ``Input(784) → Dense(20000, relu) → Dense(20000, relu) → Dense(10)``
(1.66 GB of float32 weights). The second layer's dense fan-in (20 000) is over the 4 096
input axons of a core, so no block shape fits; the mapper must say so before it builds
any per-block weight copies (it used to peak at ~12 GB before refusing).

Prints the weights' size, the whole command's peak RSS (``/usr/bin/time -v``), the peak
of NumPy allocations inside ``map_to_chip`` alone (``tracemalloc``), and their ratios to
the weights. Run: ``python bench/bench_map_memory.py [--units 20000]``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def build(path: Path, units: int) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    inp = keras.Input((784,), name="input")
    x = keras.layers.Dense(units, activation="relu", name="to-spikes")(inp)
    x = keras.layers.Dense(units, activation="relu", name="big")(x)
    out = keras.layers.Dense(10, name="out")(x)
    model = keras.Model(inp, out)
    model.save(path)
    return int(sum(w.size for w in model.get_weights())) * 4


MAP_ONLY = """
import sys, tracemalloc, warnings
import loihi_core as lc
net = lc.convert(lc.load_model(sys.argv[1]))
tracemalloc.start()
try:
    lc.map_to_chip(net)
except lc.MappingError as exc:
    print("refused:", exc)
print("map_to_chip peak bytes", tracemalloc.get_traced_memory()[1])
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--units", type=int, default=20000)
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "big.keras"
        weights = build(model, args.units)
        print(f"weights: {weights / 1e9:.2f} GB ({args.units} x {args.units} Dense)")
        run = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-m", "loihi_core", "map",
                              str(model)], capture_output=True, text=True, env=env)
        peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", run.stderr)[1])
        error = [line for line in run.stderr.splitlines() if "error:" in line]
        print(f"loihi-studio map: exit {run.returncode}; {error[0] if error else ''}")
        print(f"  peak RSS {peak_kb / 1e6:.2f} GB = {peak_kb * 1e3 / weights:.2f} x the weights")
        run = subprocess.run([sys.executable, "-c", MAP_ONLY, str(model)], capture_output=True,
                             text=True, env=env)
        peak = int(re.search(r"map_to_chip peak bytes (\d+)", run.stdout)[1])
        print(f"  map_to_chip alone: peak allocation {peak / 1e6:.1f} MB = "
              f"{peak / weights:.4f} x the weights")


if __name__ == "__main__":
    main()
