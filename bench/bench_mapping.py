"""Mapping + discretization time: the tutorial network and a large conv net (> 1 M neurons).

    python bench/bench_mapping.py

Prints milliseconds per ``map_to_chip`` (block shapes given, and automatic) after a
warm-up call; the app re-maps on every block-shape change, so the tutorial must stay
well under 100 ms. "From scratch" empties the mapper's layer cache before every call;
"after a scale change" is what the app does on a slider move: one layer's scale changes,
so it and the layer after it are rebuilt and the others come from the cache.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def large_network():
    """Input 128×128×3 → to-spikes 1×1×8 (host) → conv 3×3 'same' ×64 (1 048 576 neurons)
    → conv 3×3/2 ×64 (254 016 neurons), read out on the host."""
    from loihi_core.network import Connection, NeuronLayer, Readout, SpikingNetwork
    from loihi_core.neurons import LoihiSpikingRectifiedLinear

    rng = np.random.default_rng(0)
    relu = LoihiSpikingRectifiedLinear()
    shapes = {"in": (128, 128, 3), "spikes": (128, 128, 8), "conv0": (128, 128, 64),
              "conv1": (63, 63, 64)}
    layers = {name: NeuronLayer(name, shapes[name], relu, 100.0,
                                np.zeros(int(np.prod(shapes[name]))), 0.01, name != "spikes", 0.005)
              for name in ("spikes", "conv0", "conv1")}
    conns = [
        Connection("in", "spikes", "conv", rng.normal(0, .3, (1, 1, 3, 8)).astype(np.float32),
                   shapes["in"], shapes["spikes"]),
        Connection("spikes", "conv0", "conv", rng.normal(0, .3, (3, 3, 8, 64)).astype(np.float32),
                   shapes["spikes"], shapes["conv0"], (1, 1), "same", synapse=0.005),
        Connection("conv0", "conv1", "conv", rng.normal(0, .3, (3, 3, 64, 64)).astype(np.float32),
                   shapes["conv0"], shapes["conv1"], (2, 2), "valid", synapse=0.005),
    ]
    readout = Readout("out", "conv1", None, None, (int(np.prod(shapes["conv1"])),))
    return SpikingNetwork("in", shapes["in"], layers, conns, readout)


def timed(fn, repeat=5, before=None):
    fn()
    times = []
    for i in range(repeat):
        if before is not None:
            before(i)
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, min(times) * 1000, float(np.median(times)) * 1000


def main() -> None:
    from refcases import reference_network

    from loihi_core.mapping import auto_block_shapes, clear_layer_cache, map_to_chip

    net = reference_network("tutorial_random")
    scratch = lambda i: clear_layer_cache()  # noqa: E731
    chip, best, med = timed(lambda: map_to_chip(net), before=scratch)
    print(f"tutorial, tutorial block shapes: {chip.n_cores} cores; map + discretize from "
          f"scratch {best:.1f} ms (median {med:.1f} ms)")
    first = next(layer for layer in net.layers.values() if layer.on_chip)

    def rescale(i):
        first.gain *= 1.01
        first.amplitude /= 1.01
        first.bias = first.bias * 1.01

    _, best, med = timed(lambda: map_to_chip(net), repeat=9, before=rescale)
    print(f"tutorial, re-map after a scale change of {first.name!r} (layer cache): "
          f"{best:.1f} ms (median {med:.1f} ms)")
    _, best, med = timed(lambda: map_to_chip(net, discretize=False), before=scratch)
    print(f"tutorial, mapping only (resource counts):            {best:.1f} ms (median {med:.1f} ms)")
    shapes, best, med = timed(lambda: auto_block_shapes(net), before=scratch)
    chip = map_to_chip(net, shapes)
    print(f"tutorial, automatic block shapes {shapes}: {chip.n_cores} cores; search "
          f"{best:.1f} ms (median {med:.1f} ms)")

    big = large_network()
    n = sum(layer.n_neurons for layer in big.layers.values() if layer.on_chip)
    t0 = time.perf_counter()
    shapes = auto_block_shapes(big)
    search = time.perf_counter() - t0
    clear_layer_cache()
    t0 = time.perf_counter()
    chip = map_to_chip(big, shapes)
    total = time.perf_counter() - t0
    print(f"large conv net ({n:,} on-chip neurons): automatic block shapes {shapes} in "
          f"{search:.2f} s; map + discretize {chip.n_cores} cores on {chip.n_chips} chips in "
          f"{total:.2f} s")


if __name__ == "__main__":
    main()
