"""``loihi-studio simulate MODEL.keras [--config CFG.json] --inputs X.npz --out OUT.npz``.

Runs the bit-exact emulator and writes ``OUT.npz`` with ``output`` (n_steps, n_out),
``predictions`` (argmax at each image's last step), ``rates/<layer>`` (mean Hz over
active neurons), ``rates_all/<layer>`` (mean over all neurons), ``spike_counts/<layer>``
(n_images, n_neurons), ``synaptic_ops`` (per image) and, with ``--record-spikes``,
``spikes/<layer>`` (n_steps, n_neurons) uint8 in the reference files' layout. The cost
model's figures (:mod:`loihi_core.cost`) go under ``cost/``: ``cost/energy_per_image_J``,
``cost/time_per_step_s``, ``cost/inferences_per_s``, ``cost/static_power_W``,
``cost/x86_power_W`` and ``cost/energy_per_image_with_x86_J`` (the embedded x86 cores'
share that published "dynamic" figures include), ``cost/energy/<term>`` (the breakdown)
and ``cost/synops_per_core``.
"""

from __future__ import annotations

import argparse

import numpy as np

from ._common import (add_model_arguments, check_input_file, check_model_and_config_paths,
                      check_output_file, load_inputs, load_model_and_config, positive_int,
                      print_rates, steps_count, write_file)
from ._npz import save_npz


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "simulate", help="run the bit-exact Loihi emulator on input images",
        description="Map the network, then emulate the chip on the images of X.npz "
                    "(images, optional labels) and save outputs, rates and spikes.")
    add_model_arguments(parser)
    parser.add_argument("--inputs", required=True, metavar="X.npz",
                        help=".npz with 'images' (n, ...) and optional 'labels'")
    parser.add_argument("--out", required=True, metavar="OUT.npz", help="results file")
    parser.add_argument("--sequential", action="store_true",
                        help="present images back to back without reset (like NengoLoihi and "
                             "the hardware); default: each image from a zero state, in parallel")
    parser.add_argument("--record-spikes", action="store_true",
                        help="also save every layer's spikes at every step")
    parser.add_argument("--steps", type=steps_count, default=None, metavar="N",
                        help="presentation steps per image (default: the config's)")
    parser.add_argument("--n-images", type=positive_int, default=None, metavar="N",
                        help="use only the first N images")
    return parser


def run(args: argparse.Namespace) -> int:
    from ..emulator import Emulator
    from ..mapping import map_to_chip

    check_output_file(args.out)  # every path before any work
    check_input_file(args.inputs, "--inputs", "data file")
    check_model_and_config_paths(args)
    _, config, network = load_model_and_config(args)
    images, labels = load_inputs(args.inputs, args.n_images, network)
    chip = map_to_chip(network, n_chips=config.n_chips)
    result = Emulator(chip).run(images, args.steps,
                                mode="sequential" if args.sequential else "independent",
                                record="all" if args.record_spikes else None)
    out = {"output": result.flat_output(), "predictions": result.predictions,
           "synaptic_ops": result.synaptic_ops}
    rates = result.rates()
    for name, r in rates.items():
        out[f"rates/{name}"] = np.float64(r)
    for name, r in result.rates(active_only=False).items():
        out[f"rates_all/{name}"] = np.float64(r)
    for name, counts in result.spike_counts.items():
        out[f"spike_counts/{name}"] = counts
    for name in result.spikes:
        out[f"spikes/{name}"] = result.flat_spikes(name)
    from ..cost import estimate_from_counts  # the Loihi cost model's figures, under cost/

    report = estimate_from_counts(chip, mean_counts(result.spike_counts), result.steps)
    for key in ("energy_per_image_J", "time_per_step_s", "inferences_per_s", "static_power_W",
                "x86_power_W", "energy_per_image_with_x86_J"):
        out[f"cost/{key}"] = np.float64(getattr(report, key))
    for term, joules in report.energy_breakdown_J.items():
        out[f"cost/energy/{term}"] = np.float64(joules)
    out["cost/synops_per_core"] = report.synops_per_core
    if labels is not None:
        out["labels"] = labels
    write_file(args.out, lambda path: save_npz(path, out))
    steps = result.steps * result.n_images
    print(f"emulated {result.n_images} images x {result.steps} steps on {chip.n_cores} cores "
          f"in {result.seconds:.2f} s ({steps / max(result.seconds, 1e-9):,.0f} image-steps/s, "
          f"{result.mode})")
    if labels is not None:
        print(f"accuracy: {result.accuracy(labels):.2%}")
    print(f"on Loihi (estimate, loihi_core.cost): {report.energy_per_image_J * 1e6:.2f} uJ per image "
          f"dynamic, {report.time_per_step_s * 1e6:.2f} us per step, "
          f"{report.inferences_per_s:,.0f} images/s; static {report.static_power_W:.3f} W")
    print("mean firing rates (active neurons):")
    print_rates(rates)
    print(f"wrote {args.out}")
    return 0


def mean_counts(spike_counts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``{layer: (1, n_neurons)}`` mean spikes per image: the cost model uses only the mean
    over images, and this one pass over the int64 counts equals its own float64 one bit
    for bit (integer sums below 2**53 are exact), so ``cost.estimate`` of the full counts
    gives the same figures without converting every count to float64 twice."""
    return {name: counts.mean(axis=0, keepdims=True) for name, counts in spike_counts.items()}
