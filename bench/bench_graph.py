"""Convert + map of a ResNet-20-sized CIFAR network (graphs, residual blocks, ~0.27 M weights).

    python bench/bench_graph.py [--repeats 3]

ResNet-20 (He et al. 2016, CIFAR-10): a 3×3 conv, then 3 stages of 3 basic blocks with
16/32/64 filters (conv-BN-relu-conv-BN + shortcut, strided 1×1 projections between stages),
global average pooling and a Dense(10). Random weights; Keras builds it once. Prints the
seconds of ``convert`` (from an in-memory LayerGraph: no Keras in the timing), of
``map_to_chip`` with given block shapes, and of automatic block shapes + mapping, each the
median of ``--repeats`` runs, and the same for the tutorial network measured in the same
run as the baseline (ratio = ResNet-20 / tutorial). Target: convert + map under 1 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def resnet20():
    import keras

    L = keras.layers

    def bn_conv(h, f, s=1, act=True):
        h = L.BatchNormalization()(L.Conv2D(f, 3, strides=s, padding="same", use_bias=False)(h))
        return L.ReLU()(h) if act else h

    x = keras.Input((32, 32, 3))
    h = bn_conv(x, 16)
    for stage, f in enumerate((16, 32, 64)):
        for block in range(3):
            s = 2 if stage > 0 and block == 0 else 1
            y = bn_conv(bn_conv(h, f, s), f, act=False)
            if s != 1:
                h = L.BatchNormalization()(L.Conv2D(f, 1, strides=2, use_bias=False)(h))
            h = L.ReLU()(L.Add()([h, y]))
    h = L.GlobalAveragePooling2D()(h)
    model = keras.Model(x, L.Dense(10)(h), name="resnet20")
    rng = np.random.default_rng(0)
    for layer in model.layers:
        ws = [rng.uniform(0.5, 1.5, w.shape) if "variance" in w.name or "gamma" in w.name
              else rng.normal(0, 0.1, w.shape) for w in layer.weights]
        if ws:
            layer.set_weights([w.astype("float32") for w in ws])
    return model


def median_seconds(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def measure(graph, config, repeats):
    from loihi_core.convert import convert
    from loihi_core.mapping import auto_block_shapes, clear_layer_cache, map_to_chip

    t_conv, net = median_seconds(lambda: convert(graph, config), repeats)
    shapes = auto_block_shapes(net)

    def fresh_map():
        clear_layer_cache()
        return map_to_chip(net, shapes)

    def fresh_auto():
        clear_layer_cache()
        return map_to_chip(net, auto_block_shapes=True)

    t_map, chip = median_seconds(fresh_map, repeats)
    t_auto, _ = median_seconds(fresh_auto, repeats)
    return t_conv, t_map, t_auto, net, chip


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    from loihi_core.graph import load_model

    config = {"schema_version": 1, "scale_firing_rates": 200, "synapse": 0.005}
    resnet = load_model(resnet20())
    tutorial = load_model(ROOT / "assets" / "examples" / "mnist_tutorial.keras")
    rows = []
    for name, graph in (("tutorial (baseline)", tutorial), ("ResNet-20", resnet)):
        t_conv, t_map, t_auto, net, chip = measure(graph, config, args.repeats)
        n_params = sum(n.n_params for n in graph)
        rows.append((name, n_params, sum(lay.n_neurons for lay in net.layers.values()),
                     len(net.connections), chip.n_cores, t_conv, t_map, t_auto))
    print(f"{'network':22s} {'weights':>8s} {'neurons':>8s} {'conns':>6s} {'cores':>6s} "
          f"{'convert s':>10s} {'map s':>8s} {'auto+map s':>11s} {'convert+map s':>14s}")
    for name, w, n, c, cores, tc, tm, ta in rows:
        print(f"{name:22s} {w:8d} {n:8d} {c:6d} {cores:6d} {tc:10.3f} {tm:8.3f} {ta:11.3f} "
              f"{tc + tm:14.3f}")
    base, res = rows[0], rows[1]
    print(f"ratio ResNet-20 / tutorial: convert+map {(res[5] + res[6]) / (base[5] + base[6]):.1f}x, "
          f"auto+map {res[7] / base[7]:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
