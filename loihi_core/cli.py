"""The ``loihi-studio`` command line (also ``python -m loihi_core``).

Each subcommand lives in ``loihi_core/commands/<name>.py`` with two functions:
``register(subparsers)`` adds its parser and ``run(args) -> int`` does the work. Modules
are imported lazily, and heavy libraries (TensorFlow) only inside ``run``, so that
``loihi-studio --help`` answers instantly.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from . import __version__
from .errors import LoihiStudioError

#: Subcommands in the order ``--help`` lists them (the issue tracker fixes these names).
COMMANDS = ("inspect", "map", "simulate", "calibrate", "train", "export", "tutorial", "sweep")


def _load(name: str):
    try:
        return importlib.import_module(f"loihi_core.commands.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"loihi_core.commands.{name}":
            return None
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loihi-studio",
        description="Take a trained Keras network onto Intel's Loihi: convert, map to cores, "
                    "emulate bit-exactly, calibrate, train and export.")
    parser.add_argument("--version", action="version", version=f"loihi-studio {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = _load(name)
        if module is not None:
            module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    module = _load(args.command)
    try:
        return int(module.run(args) or 0)
    except LoihiStudioError as exc:
        print(f"loihi-studio {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
