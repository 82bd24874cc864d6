"""``loihi-studio train MODEL.keras --data X.npz --out TUNED.keras``: Loihi-aware training.

Trains the model through the rates its Loihi neurons will really produce (forward: the
exact staircase; backward: the smooth rate), optionally followed by a spiking-aware
fine-tuning over a few unrolled time steps, and writes a plain Keras model (standard
ReLUs, loadable anywhere) with the new weights. See :mod:`loihi_core.train`.

Settings: ``--config`` gives per-layer neurons, scales, synapses and ``dt``; ``--scale``
and ``--neuron`` replace the config's top-level defaults (a layer's own value in the config
still wins). Without a config the scale defaults to 100, the tutorial's value, and the
spiking fine-tune runs without synapses (the schema's default).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError

#: Most images used for the before/after Loihi-rate accuracy that ``train`` prints.
_MAX_EVAL = 1000


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "train", help="train a model through Loihi neuron rates (and spikes)",
        description="Train a Keras model with every converted relu replaced by the Loihi "
                    "neuron's exact rate (smooth gradient), optionally fine-tune it through "
                    "unrolled spiking steps, and write a plain Keras model.")
    parser.add_argument("model", help="path to a Keras 3 .keras file (trained or not)")
    parser.add_argument("--data", required=True, metavar="X.npz",
                        help=".npz with 'images' (n, *input_shape) and integer 'labels' (n,)")
    parser.add_argument("--out", required=True, metavar="TUNED.keras",
                        help="where to write the trained model (.keras)")
    parser.add_argument("--config", metavar="CFG.json", default=None,
                        help="tuned config: per-layer scale_firing_rates, neurons, synapses, dt")
    parser.add_argument("--neuron", default=None, metavar="TYPE",
                        help="neuron type: loihi (default), loihi-lif, relu, or a config name")
    parser.add_argument("--scale", type=float, default=None, metavar="S",
                        help="scale_firing_rates for every layer (default: the config's, or 100)")
    parser.add_argument("--epochs", type=int, default=5, metavar="N",
                        help="rate-training epochs (default 5; 0 = only the spiking fine-tune)")
    parser.add_argument("--batch-size", type=int, default=32, metavar="N",
                        help="batch size (default 32)")
    parser.add_argument("--learning-rate", type=float, default=1e-3, metavar="LR",
                        help="Adam learning rate (default 1e-3)")
    parser.add_argument("--validation-split", type=float, default=0.1, metavar="F",
                        help="fraction of the data held out for validation (default 0.1)")
    parser.add_argument("--rate-target", type=float, nargs=2, default=None,
                        metavar=("LOW", "HIGH"),
                        help="penalise neurons whose mean rate (Hz) leaves [LOW, HIGH]")
    parser.add_argument("--rate-weight", type=float, default=1.0, metavar="W",
                        help="weight of the --rate-target penalty (default 1)")
    parser.add_argument("--spiking-finetune", type=int, default=0, metavar="STEPS",
                        help="then fine-tune through STEPS unrolled spiking steps (e.g. "
                             "20-50; the loss reads the last 5; learning rate / 10)")
    parser.add_argument("--spiking-epochs", type=int, default=1, metavar="N",
                        help="epochs of the spiking fine-tune (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.set_defaults(func=run)
    return parser


def _config(args: argparse.Namespace):
    from ..config import TunedConfig, load_config

    if args.config:
        cfg = load_config(args.config)
    else:
        cfg = TunedConfig(scale_firing_rates=100.0)
    changes = {}
    if args.scale is not None:
        changes["scale_firing_rates"] = args.scale
    if args.neuron is not None:
        changes["neuron"] = args.neuron
    if changes:
        try:
            cfg = cfg.with_defaults(**changes)
        except ConfigError as exc:
            raise ConfigError([("--scale" if p == "scale_firing_rates" else
                                "--neuron" if p == "neuron" else p, m)
                               for p, m in exc.problems]) from None
    return cfg


def _check_args(args: argparse.Namespace) -> None:
    problems = []
    if Path(args.out).suffix.lower() != ".keras":
        problems.append(("--out", f"{args.out!r} must end in '.keras' (Keras 3 format)"))
    elif not Path(args.out).resolve().parent.is_dir():
        problems.append(("--out", f"directory {str(Path(args.out).parent)!r} does not exist"))
    if args.epochs < 0:
        problems.append(("--epochs", f"must be >= 0, got {args.epochs}"))
    if args.epochs == 0 and not args.spiking_finetune:
        problems.append(("--epochs", "is 0 and there is no --spiking-finetune: nothing to train"))
    if not 0 <= args.validation_split < 1:
        problems.append(("--validation-split", f"must be in [0, 1), got {args.validation_split}"))
    if args.spiking_finetune < 0:
        problems.append(("--spiking-finetune", f"must be a number of steps >= 1, got "
                         f"{args.spiking_finetune}"))
    if problems:
        raise ConfigError(problems)


def _rate_accuracy(model, config, images, labels) -> float:
    from ..convert import convert
    from ..simulate import run_rates

    pred = run_rates(convert(model, config), images).argmax(axis=1)
    return float((pred == labels).mean())


def run(args: argparse.Namespace) -> int:
    import math
    import warnings

    from ..data import check_images, load_images_npz
    from ..graph import read_keras_file
    from ..train import finetune_spiking, settings_from_config, train

    from ._common import check_input_file, check_model_and_config_paths, check_output_file

    _check_args(args)
    check_output_file(args.out)  # every path before the (long) training
    check_input_file(args.data, "--data", "data file")
    check_model_and_config_paths(args)
    cfg = _config(args)
    images, labels = load_images_npz(args.data, require_labels=True)
    model = read_keras_file(args.model)
    images = check_images(images, where=args.data, input_shape=tuple(model.input_shape[1:]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. max → average pooling: shown by inspect
        neurons, scales, dt = settings_from_config(model, cfg)
    # the images Keras' validation_split holds out (the last ones), or all if none
    n_val = len(images) - math.floor(len(images) * (1.0 - args.validation_split))
    eval_x, eval_y = (images[-n_val:], labels[-n_val:]) if n_val else (images, labels)
    eval_x, eval_y = eval_x[:_MAX_EVAL], eval_y[:_MAX_EVAL]
    what = "validation" if n_val else "training"
    print(f"{len(images)} images; neuron layers: " + ", ".join(
        f"{name} ({type(neurons[name]).__name__}, scale {scales[name]:g})" for name in neurons))
    before = _rate_accuracy(model, cfg, eval_x, eval_y)

    band = None if args.rate_target is None else (*args.rate_target, args.rate_weight)
    if args.epochs:
        model, history = train(model, images, labels, neuron=neurons, scale_firing_rates=scales,
                               epochs=args.epochs, batch_size=args.batch_size,
                               learning_rate=args.learning_rate,
                               validation_split=args.validation_split,
                               rate_regularization=band, dt=dt, seed=args.seed, verbose=2)
        print(f"rate training: {args.epochs} epochs in {history['seconds']:.1f} s")
    if args.spiking_finetune:
        steps = args.spiking_finetune
        model, history = finetune_spiking(
            model, images, labels, config=cfg, steps=steps, loss_steps=min(5, steps),
            epochs=args.spiking_epochs, batch_size=args.batch_size,
            learning_rate=args.learning_rate / 10, validation_split=args.validation_split,
            seed=args.seed, verbose=2)
        print(f"spiking fine-tune: {steps} steps, {args.spiking_epochs} epochs in "
              f"{history['seconds']:.1f} s")
    after = _rate_accuracy(model, cfg, eval_x, eval_y)
    print(f"Loihi rate-mode accuracy on {len(eval_x)} {what} images: {before:.1%} before, "
          f"{after:.1%} after")
    model.save(args.out)
    print(f"wrote {args.out}")
    return 0
