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
import warnings

from . import __version__
from .errors import DataRangeWarning, LoihiStudioError

#: Set to 1 to get Python's traceback for unexpected errors (bugs) instead of one line.
DEBUG_ENV = "LOIHI_STUDIO_DEBUG"


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line (and exit code 2).

    argparse prints the whole usage block before the error; a user who mistyped a value
    needs the error and where to look, so: ``loihi-studio simulate: error: argument
    --steps: expected a positive integer, got 0 (see loihi-studio simulate --help)``.
    """

    def error(self, message: str):  # noqa: D102 - argparse's hook
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

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
    parser = OneLineParser(
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


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def main(argv: list[str] | None = None) -> int:
    """Run one command; every error is one line on stderr.

    Exit codes: 0 success, 1 a command's own "not good enough" result (e.g. calibration
    did not converge), 2 bad input of any kind (arguments, files, models, configs, data,
    mappings that do not fit), 3 an unexpected internal error (a bug: the one-line
    message says how to get the traceback), 130 interrupted.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    module = _load(args.command)
    prefix = f"loihi-studio {args.command}"
    shown: set[str] = set()

    def show(message, category, *_args, **_kwargs):
        # one line each, once: the same data are checked when read and again by the API,
        # so at most one data-range warning per command
        key = "range" if issubclass(category, DataRangeWarning) else _one_line(message)
        if key not in shown:
            shown.add(key)
            print(f"{prefix}: warning: {_one_line(message)}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        warnings.simplefilter("always")
        try:
            return int(module.run(args) or 0)
        except LoihiStudioError as exc:
            print(f"{prefix}: error: {_one_line(exc)}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            return 130
        except MemoryError:
            print(f"{prefix}: error: out of memory; use fewer images (--n-images) or a smaller "
                  f"model", file=sys.stderr)
            return 2
        except Exception as exc:  # a bug: one line, the traceback on request
            if os.environ.get(DEBUG_ENV):
                raise
            print(f"{prefix}: internal error: {type(exc).__name__}: {_one_line(exc)} (a bug; "
                  f"rerun with {DEBUG_ENV}=1 for the traceback and report it)", file=sys.stderr)
            return 3


if __name__ == "__main__":
    raise SystemExit(main())
