"""Helpers shared by the CLI commands: reading the model, the config and input arrays."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="path to a Keras 3 .keras file")
    parser.add_argument("--config", metavar="CFG.json", default=None,
                        help="tuned-config JSON (scales, neurons, synapses, block shapes)")


def load_model_and_config(args: argparse.Namespace):
    """``(graph, config, network)`` from ``args.model`` and ``args.config``."""
    from ..config import load_config
    from ..convert import convert
    from ..graph import load_model

    config = load_config(args.config) if args.config else load_config(None)
    graph = load_model(args.model)
    return graph, config, convert(graph, config)


def load_inputs(path: str | Path, n_images: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """``(images, labels or None)`` from an ``.npz`` with ``images`` and optional ``labels``."""
    from ..data import load_images_npz

    images, labels = load_images_npz(path)
    if n_images is not None:
        if n_images < 1:
            raise ConfigError([("--n-images", f"must be >= 1, got {n_images}")])
        images = images[:n_images]
        labels = None if labels is None else labels[:n_images]
    return images, labels


def print_rates(rates: dict[str, Any], target: float | None = None) -> None:
    for name, r in rates.items():
        tail = "" if target is None else f"  ({r / target - 1:+.1%} vs {target:g} Hz)"
        print(f"  {name:<20} {r:8.1f} Hz{tail}")
