"""The second bundled example: a small residual network on the bundled MNIST digits.

``python -m loihi_core.residual_example --out assets/examples`` writes
``mnist_residual.keras`` and ``mnist_residual.config.json`` (it shares
``mnist_test.npz`` with the tutorial example). The network exercises the graph path of the
converter, mapper and emulator:

Input (28, 28, 1) → Conv2D(4, 1×1, relu, "to-spikes", host) → Conv2D(16, 3×3/2, relu,
"conv0") → [Conv2D(16, 3×3 same, relu, "conv_a") → Conv2D(16, 3×3 same, linear,
"conv_b")] + identity shortcut → Add → ReLU "res" → AveragePooling2D(2) → Flatten →
Dense(64, relu, "dense0") → Dense(10, "out").

``res`` gets two connections (from ``conv_a`` through ``conv_b``'s kernel, and from
``conv0`` through a 1×1 depthwise identity), and the pooling folds into ``dense0``.
Trained with ReLUs (Adam, seeded), fine-tuned through Loihi rates (:func:`loihi_core.train.train`
on the graph) at the scales a rate-model calibration picks, then every layer's
``scale_firing_rates`` is calibrated against the emulator to 200 Hz on 100 training digits.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

MODEL_FILE = "mnist_residual.keras"
CONFIG_FILE = "mnist_residual.config.json"
PRESENTATION_STEPS = 50
TARGET_RATE = 200.0


def build_residual_model():
    """The untrained residual network (a functional ``keras.Model`` "mnist_residual")."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras  # noqa: PLC0415 (lazy: TensorFlow takes seconds to import)

    L = keras.layers
    x = keras.Input((28, 28, 1), name="input")
    h = L.Conv2D(4, 1, activation="relu", use_bias=False, name="to-spikes")(x)
    h = L.Conv2D(16, 3, strides=2, activation="relu", name="conv0")(h)
    y = L.Conv2D(16, 3, padding="same", activation="relu", name="conv_a")(h)
    y = L.Conv2D(16, 3, padding="same", name="conv_b")(y)
    h = L.ReLU(name="res")(L.Add(name="add")([h, y]))
    h = L.Flatten(name="flatten")(L.AveragePooling2D(2, name="pool")(h))
    h = L.Dense(64, activation="relu", name="dense0")(h)
    return keras.Model(x, L.Dense(10, name="out")(h), name="mnist_residual")


def base_config():
    from .config import LayerOverrides, TunedConfig
    from .neurons import LoihiSpikingRectifiedLinear

    return TunedConfig(dt=0.001, presentation_steps=PRESENTATION_STEPS,
                       neuron=LoihiSpikingRectifiedLinear(), scale_firing_rates=100.0,
                       synapse=0.005, layers={"to-spikes": LayerOverrides(on_chip=False)})


def build_residual_example(out_dir: str | os.PathLike, *, seed: int = 0, epochs: int = 8,
                           finetune_epochs: int = 3, log=print) -> dict[str, Any]:
    """Train, calibrate and write the example (see module docstring); returns the numbers."""
    import keras  # noqa: PLC0415

    from .calibrate import calibrate
    from .convert import convert
    from .data import load_mnist
    from .emulator import Emulator
    from .mapping import map_to_chip
    from .train import set_seeds, train

    t0 = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    split = load_mnist(n_test=1000, seed=seed)
    set_seeds(seed)
    model = build_residual_model()
    model.compile(keras.optimizers.Adam(1e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"], jit_compile=False)
    model.fit(split.x_train, split.y_train, epochs=epochs, batch_size=32, shuffle=True, verbose=0)
    plain = type(model).from_config(model.get_config())
    plain.set_weights(model.get_weights())
    path = out / MODEL_FILE
    log(f"ReLU training: {time.perf_counter() - t0:.0f} s")
    # Loihi-aware fine-tuning through the rates at the scales a first (rate-model)
    # calibration picks, then the final calibration against the emulator
    first = calibrate(plain, split.x_train[:100], base_config(), TARGET_RATE, method="rate")
    plain, _ = train(plain, split.x_train, split.y_train, neuron="loihi",
                     scale_firing_rates=first.scales, epochs=finetune_epochs, batch_size=32,
                     learning_rate=3e-4, seed=seed)
    plain.save(path)
    keras_acc = float((plain.predict(split.x_test, verbose=0).argmax(1) == split.y_test).mean())
    log(f"trained in {time.perf_counter() - t0:.0f} s: Keras test accuracy {keras_acc:.1%}")
    result = calibrate(path, split.x_train[:100], base_config(), TARGET_RATE)
    config = result.config
    config.save(out / CONFIG_FILE)
    chip = map_to_chip(convert(path, config), auto_block_shapes=True)
    emu = Emulator(chip).run(split.x_test)
    emu_acc = float((emu.predictions == split.y_test).mean())
    summary = {"keras_accuracy": keras_acc, "emulator_accuracy": emu_acc,
               "rates": {k: round(v, 1) for k, v in result.rates.items()},
               "scales": result.scales, "cores": chip.n_cores,
               "seconds": time.perf_counter() - t0}
    log(f"calibrated rates {summary['rates']} Hz; emulator {emu_acc:.1%} vs Keras "
        f"{keras_acc:.1%} on {len(split.x_test)} test digits, {chip.n_cores} cores")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loihi_core.residual_example",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="assets/examples")
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args(argv)
    build_residual_example(args.out, epochs=args.epochs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
