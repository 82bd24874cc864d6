"""Helpers shared by the CLI commands: reading the model, the config and input arrays,
checking every path before any work, and argparse value types with one-line errors."""

from __future__ import annotations

import argparse
import math
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError, LoihiStudioError, ModelLoadError


class PathError(LoihiStudioError, ValueError):
    """A path given on the command line cannot be read or written (checked up front)."""


# ---------------------------------------------------------------------------------------
# argparse types: a bad value is a one-line usage error (exit code 2) before any work
# ---------------------------------------------------------------------------------------

def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def steps_count(text: str) -> int:
    """argparse type: presentation steps, 1 to the config's bound."""
    from ..config import MAX_PRESENTATION_STEPS

    value = positive_int(text)
    if value > MAX_PRESENTATION_STEPS:
        raise argparse.ArgumentTypeError(f"{value} steps per image is too many (at most "
                                         f"{MAX_PRESENTATION_STEPS:,})")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def fraction(text: str) -> float:
    """argparse type: a number strictly between 0 and 1."""
    value = positive_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1 (0.05 = 5%), got {text}")
    return value


# ---------------------------------------------------------------------------------------
# paths, checked before any computation
# ---------------------------------------------------------------------------------------

def check_input_file(path: str | None, flag: str, what: str,
                     error: type[LoihiStudioError] = DataError) -> None:
    """Refuse a missing or unreadable input file up front (the reader checks its content)."""
    if not path:
        raise error(f"{flag}: no {what} path given")
    p = Path(path)
    if not p.exists():
        raise error(f"{flag}: {what} {str(p)!r} does not exist")
    if p.is_dir():
        raise error(f"{flag}: {what} {str(p)!r} is a directory; expected a file")
    if not os.access(p, os.R_OK):
        raise error(f"{flag}: {what} {str(p)!r} is not readable (permission denied)")


def check_output_file(path: str | None, flag: str = "--out") -> Path:
    """Refuse an output path that cannot be written, before any work is done.

    The path must name a regular file (existing or not) in an existing, writable folder;
    directories, device nodes, FIFOs and sockets are refused.
    """
    if not path:
        raise PathError(f"{flag}: no output path given")
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if p.exists():
        mode = os.stat(p).st_mode
        if stat.S_ISDIR(mode):
            raise PathError(f"{flag}: {str(p)!r} is a directory; give a file name, e.g. "
                            f"{str(p / 'out')!r}")
        if not stat.S_ISREG(mode):
            raise PathError(f"{flag}: {str(p)!r} is not a regular file (a device, FIFO or "
                            f"socket); give a file path")
        if not os.access(p, os.W_OK):
            raise PathError(f"{flag}: {str(p)!r} exists and is not writable")
    elif p.is_symlink():
        raise PathError(f"{flag}: {str(p)!r} is a broken symbolic link; give a file path")
    if not parent.exists():
        raise PathError(f"{flag}: cannot write {str(p)!r}: the folder {str(parent)!r} does not "
                        f"exist (create it first)")
    if not parent.is_dir():
        raise PathError(f"{flag}: cannot write {str(p)!r}: {str(parent)!r} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PathError(f"{flag}: cannot write {str(p)!r}: the folder {str(parent)!r} is not "
                        f"writable")
    return p


def check_model_and_config_paths(args: argparse.Namespace) -> None:
    """The model and ``--config`` paths exist (before TensorFlow is even imported)."""
    check_input_file(args.model, "MODEL", "model file", ModelLoadError)
    if getattr(args, "config", None):
        check_input_file(args.config, "--config", "config file", ConfigError)


def write_file(path: str | Path, write, flag: str = "--out") -> None:
    """``write(path)``, with OS errors (disk full, permissions) as a one-line error."""
    try:
        write(path)
    except OSError as exc:
        raise PathError(f"{flag}: cannot write {str(path)!r}: {exc.strerror or exc}") from None


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


def load_inputs(path: str | Path, n_images: int | None = None, network: Any = None
                ) -> tuple[np.ndarray, np.ndarray | None]:
    """``(images, labels or None)`` from an ``.npz`` with ``images`` and optional ``labels``,
    checked against the network's input shape and range when ``network`` is given."""
    from ..data import load_images_npz

    images, labels = load_images_npz(
        path, input_shape=None if network is None else tuple(network.input_shape),
        input_range=None if network is None else network.input_range)
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
