"""``loihi-studio calibrate MODEL.keras --data X.npz --target-rate 200 --out CFG.json``.

Finds per-layer ``scale_firing_rates`` that put every spiking layer's mean rate (over
active neurons) within the tolerance of the target, measured on the emulator, then runs
the calibrated config on the data and reports the emulator's accuracy next to Keras'
(when the file has labels; else their agreement). Without ``--config`` it starts from the
tutorial's settings (5 ms synapses, 50 steps per image): NengoDL's defaults leave the
readout unfiltered, and a config calibrated from them hits every rate but scores ~15 %.
A config far below Keras is not written without ``--force``.
"""

from __future__ import annotations

import argparse

from ._common import (add_model_arguments, check_input_file, check_model_and_config_paths,
                      check_output_file, fraction, positive_float, positive_int,
                      write_file)

#: Images the final config is evaluated on (from the start of the data file).
DEFAULT_EVAL_IMAGES = 500


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "calibrate", help="find per-layer scale_firing_rates that hit a target firing rate",
        description="Calibrate every layer on the chip-true rate model, then iterate against "
                    "the bit-exact emulator (all off-target layers corrected per run, then "
                    "layer by layer) on the first --n-images images until every layer's mean "
                    "rate of active neurons is within the tolerance of the target; then report "
                    "the emulator's accuracy with the calibrated config on --eval-images images "
                    "next to Keras' (computed without TensorFlow: the converted network's ideal "
                    "rate mode, equal to model.predict to float32 round-off). Without --config, "
                    "start from the tutorial's settings (synapse 0.005, 50 steps).")
    add_model_arguments(parser)
    parser.add_argument("--data", required=True, metavar="X.npz",
                        help=".npz with 'images' (the calibration batch) and optional 'labels'")
    parser.add_argument("--target-rate", type=positive_float, default=200.0, metavar="HZ",
                        help="target mean rate of active neurons (default 200 Hz; below the "
                             "one-spike-per-step ceiling, 1000 Hz at dt = 1 ms)")
    parser.add_argument("--tolerance", type=fraction, default=0.05,
                        help="relative band around the target (default 0.05 = ±5%%)")
    parser.add_argument("--n-images", type=positive_int, default=64, metavar="N",
                        help="calibration images to use (default 64)")
    parser.add_argument("--eval-images", type=positive_int, default=DEFAULT_EVAL_IMAGES,
                        metavar="N", help="images to evaluate the calibrated config on "
                                          f"(default {DEFAULT_EVAL_IMAGES})")
    parser.add_argument("--method", choices=("emulator", "rate"), default="emulator",
                        help="measure on the emulator (default) or with the chip-true rate "
                             "functions (instant)")
    parser.add_argument("--force", action="store_true",
                        help="write the config even when its accuracy is far below Keras'")
    parser.add_argument("--out", required=True, metavar="CFG.json", help="tuned config to write")
    return parser


def run(args: argparse.Namespace) -> int:
    from ..calibrate import FAR_BELOW, TUTORIAL_DEFAULTS, calibrate, evaluate
    from ..config import load_config
    from ..data import load_images_npz
    from ..errors import ArgumentError
    from ..graph import load_model

    check_output_file(args.out)  # every path before any work
    check_input_file(args.data, "--data", "data file")
    check_model_and_config_paths(args)
    config = load_config(args.config) if args.config else TUTORIAL_DEFAULTS
    if args.target_rate >= 1.0 / config.dt:
        raise ArgumentError(f"--target-rate: {args.target_rate:g} Hz is not below the "
                            f"one-spike-per-step ceiling ({1.0 / config.dt:g} Hz at dt = "
                            f"{config.dt:g} s); choose a lower target", "--target-rate")
    graph = load_model(args.model)
    all_images, all_labels = load_images_npz(
        args.data, input_shape=tuple(graph[graph.input_names[0]].output_shape),
        input_range=config.input_range)
    images = all_images[:args.n_images]
    labels = None if all_labels is None else all_labels[:args.n_images]

    def progress(i, rates):
        print(f"iteration {i}: " + ", ".join(f"{k} {v:.1f} Hz" for k, v in rates.items()))

    result = calibrate(graph, images, config, args.target_rate, tolerance=args.tolerance,
                       method=args.method, progress=progress, labels=labels,
                       evaluate_result=False)
    print(result.table())
    print(f"{'converged' if result.converged else 'NOT converged'} after "
          f"{len(result.history)} measurement(s)")
    n_eval = min(args.eval_images, len(all_images))
    ev = evaluate(graph, all_images[:n_eval], result.config,
                  None if all_labels is None else all_labels[:n_eval])
    print(ev.summary())
    print("(Keras' figures come from the converted network's ideal rate mode, which equals "
          "model.predict to float32 round-off; TensorFlow is not imported)")
    if ev.far_below_keras and not args.force:
        what = ("accuracy" if ev.emulator_accuracy is not None else "agreement with Keras")
        raise ArgumentError(f"not writing {args.out}: the calibrated config's {what} is more "
                            f"than {FAR_BELOW * 100:.0f} points below Keras' ({ev.summary()}); check the "
                            f"synapse and presentation_steps of --config, or pass --force",
                            "--force")
    write_file(args.out, result.config.save)
    print(f"wrote {args.out}")
    return 0 if result.converged else 1
