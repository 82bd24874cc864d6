"""The NengoLoihi keras-to-loihi tutorial, end to end, on the bundled MNIST digits.

``loihi-studio tutorial [--out assets/examples]`` does what the seed notebook does by hand
and prints its table:

1. train the tutorial network with ReLUs (Keras, rate);
2. run it as a spiking network with ideal ``SpikingRectifiedLinear`` neurons at
   ``scale_firing_rates = 100`` (float spiking simulation, 5 ms synapses);
3. the same with Loihi neurons (``LoihiSpikingRectifiedLinear``);
4. calibrate per-layer scales on the bit-exact emulator (the notebook's one-shot estimate
   misses the target; :func:`loihi_core.calibrate.calibrate` iterates) and run the chip
   emulator with the tutorial's block shapes (14 cores);
5. fine-tune through Loihi rates (forward Loihi rate, backward smooth rate), calibrate
   again, emulate;
6. the chosen model on the whole held-out set, with rates per layer and timings.

With ``--out`` it also writes the example files the app opens (model, test set, and the
tuned config with the calibrated scales).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np


@dataclass
class TutorialRow:
    """One line of the tutorial's table."""

    label: str
    simulator: str
    accuracy: float
    n_images: int
    steps: int | None
    rates: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class TutorialResult:
    rows: list[TutorialRow]
    keras_accuracy: float
    emulator_accuracy: float
    target_rate: float
    scales: dict[str, float]
    final_rates: dict[str, float]
    kept: str
    seconds: float
    files: dict[str, str] = field(default_factory=dict)

    def table(self) -> str:
        """The table as Markdown (also what the README shows)."""
        layers = list(self.final_rates)
        head = ("| step | simulator | accuracy | images × steps | "
                + " | ".join(f"{n} Hz" for n in layers) + " | time |")
        lines = [head, "|" + "---|" * (5 + len(layers))]
        for r in self.rows:
            steps = "rate" if r.steps is None else f"{r.n_images} × {r.steps}"
            rates = " | ".join(f"{r.rates[n]:.0f}" if n in r.rates else "–" for n in layers)
            lines.append(f"| {r.label} | {r.simulator} | {r.accuracy:.1%} | {steps} | {rates} | "
                         f"{r.seconds:.1f} s |")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _mean_active(counts: np.ndarray, seconds: float) -> float:
    active = counts > 0
    return float(counts[active].mean() / seconds) if active.any() else 0.0


def run_tutorial(out_dir: str | Path | None = None, *, seed: int = 0, relu_epochs: int = 10,
                 loihi_epochs: int = 4, target_rate: float = 200.0, n_test: int = 1000,
                 n_calibration: int = 64, n_spiking: int = 200, presentation_steps: int = 50,
                 log: Callable[[str], None] = print) -> TutorialResult:
    """Run the tutorial (see the module docstring); returns the table's numbers.

    Parameters
    ----------
    out_dir
        Where to write the example files (model, test set, calibrated config); ``None``
        writes nothing.
    n_test
        Held-out digits for the final emulator run (≥ 500 for a meaningful comparison).
    n_calibration, n_spiking
        Images for calibration, and for the (slow, NumPy) float-spiking rows.
    presentation_steps
        Steps each image is shown for in every spiking row.
    """
    from .calibrate import calibrate
    from .convert import convert
    from .data import load_mnist
    from .emulator import Emulator
    from .example import (CONFIG_FILE, MODEL_FILE, TEST_FILE, example_config,
                          train_example_models)
    from .graph import load_model
    from .mapping import map_to_chip
    from .simulate import run_spiking

    t_start = time.perf_counter()
    split = load_mnist(n_test=n_test, seed=seed)
    x_test, y_test = split.x_test, split.y_test
    n_val = int(round(0.1 * len(split.x_train)))
    x_cal = split.x_train[-n_val:][:n_calibration]  # validation digits, never the test set
    base = example_config(presentation_steps=presentation_steps)
    relu, tuned, summary = train_example_models(split, seed=seed, relu_epochs=relu_epochs,
                                                loihi_epochs=loihi_epochs, log=log)
    rows: list[TutorialRow] = []
    rows.append(TutorialRow("ReLU network", "Keras (rate)", summary["relu_keras_test"],
                            len(x_test), None, seconds=summary["relu_train_seconds"]))
    graph_relu = load_model(relu)
    graph_tuned = load_model(tuned)

    def spiking_row(label: str, neuron: str) -> TutorialRow:
        t0 = time.perf_counter()
        net = convert(graph_relu, base.with_defaults(neuron=neuron))
        res = run_spiking(net, x_test[:n_spiking], presentation_steps)
        seconds = presentation_steps * net.dt
        rates = {k: _mean_active(v, seconds) for k, v in res.spike_counts.items()}
        row = TutorialRow(label, "float spiking (NumPy)", float(np.mean(res.predictions == y_test[:n_spiking])),
                          n_spiking, presentation_steps, rates, time.perf_counter() - t0)
        log(f"{label}: {row.accuracy:.1%}")
        return row

    rows.append(spiking_row("SpikingReLU ×100", "SpikingRectifiedLinear"))
    rows.append(spiking_row("Loihi neurons ×100", "LoihiSpikingRectifiedLinear"))

    def emulated(label: str, graph, images, labels) -> tuple[TutorialRow, Any]:
        t0 = time.perf_counter()
        cal = calibrate(graph, x_cal, base, target_rate, presentation_steps=presentation_steps)
        chip = map_to_chip(convert(graph, cal.config))
        res = Emulator(chip).run(images, presentation_steps)
        row = TutorialRow(label, f"Loihi emulator ({chip.n_cores} cores)", res.accuracy(labels),
                          len(images), presentation_steps, res.rates(), time.perf_counter() - t0)
        log(f"{label}: {row.accuracy:.1%}; scales " + ", ".join(
            f"{k} {v:.3g}" for k, v in cal.scales.items()))
        return row, cal

    row_relu, cal_relu = emulated(f"Loihi neurons, calibrated scales ({target_rate:g} Hz)",
                                  graph_relu, x_test[:n_spiking], y_test[:n_spiking])
    row_tuned, cal_tuned = emulated("Loihi-trained, calibrated scales", graph_tuned,
                                    x_test[:n_spiking], y_test[:n_spiking])
    rows += [row_relu, row_tuned]

    kept = summary["kept"]
    model, graph, cal = (tuned, graph_tuned, cal_tuned) if kept == "loihi" else (relu, graph_relu, cal_relu)
    keras_acc = summary[f"{kept}_keras_test"]
    t0 = time.perf_counter()
    chip = map_to_chip(convert(graph, cal.config))
    final = Emulator(chip).run(x_test, presentation_steps)
    rows.append(TutorialRow(f"held-out set ({'Loihi-trained' if kept == 'loihi' else 'ReLU'} model)",
                            f"Loihi emulator ({chip.n_cores} cores)", final.accuracy(y_test),
                            len(x_test), presentation_steps, final.rates(), time.perf_counter() - t0))
    files: dict[str, str] = {}
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        model.save(out / MODEL_FILE)
        np.savez_compressed(out / TEST_FILE, images=x_test.astype(np.float32),
                            labels=y_test.astype(np.int64))
        cal.config.save(out / CONFIG_FILE)
        files = {"model": str(out / MODEL_FILE), "test_set": str(out / TEST_FILE),
                 "config": str(out / CONFIG_FILE)}
    result = TutorialResult(rows=rows, keras_accuracy=keras_acc,
                            emulator_accuracy=final.accuracy(y_test), target_rate=target_rate,
                            scales=dict(cal.scales), final_rates=final.rates(), kept=kept,
                            seconds=time.perf_counter() - t_start, files=files)
    return result
