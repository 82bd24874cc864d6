"""``loihi-studio export MODEL.keras --format F --out PATH [--config CFG.json]``: deployment files.

Formats (see :mod:`loihi_core.export`):

* ``lava-hdf5``: the on-chip part as a Lava-dl NetX HDF5 network (``--exact`` refuses to
  round biases or weights that netx cannot hold exactly);
* ``nengo-loihi``: a standalone NengoDL + NengoLoihi script and its ``.npz`` weights
  (``--out`` is a ``.py`` file or a folder; ``--data X.npz`` stores test images with them);
* ``json``: the tuned config alone, as the app exports it.

Prints the files written and the notes (how to feed the exported network, what was
approximated); approximations are also printed as warnings on stderr. Exit code 0 on
success, 2 with a message for a model, config, format or path problem.
"""

from __future__ import annotations

import argparse
import sys
import warnings

FORMATS = ("lava-hdf5", "nengo-loihi", "json")  # == loihi_core.export.FORMATS (kept import-free)


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "export", help="write deployment files: Lava-dl NetX HDF5, a NengoLoihi script, or JSON",
        description="Export a tuned network: its on-chip part as a Lava-dl NetX HDF5 network "
                    "(lava-hdf5), a standalone NengoDL + NengoLoihi script with its weights "
                    "(nengo-loihi), or the tuned config alone (json).")
    parser.add_argument("model", help="path to a Keras 3 .keras file")
    parser.add_argument("--config", metavar="CFG.json", default=None,
                        help="tuned-config JSON (default: the NengoDL/NengoLoihi defaults)")
    parser.add_argument("--format", required=True, choices=FORMATS, help="what to write")
    parser.add_argument("--out", required=True, metavar="PATH",
                        help="file to write (lava-hdf5: e.g. net.net; json: cfg.json); "
                             "nengo-loihi: a .py file or a folder")
    parser.add_argument("--exact", action="store_true",
                        help="lava-hdf5: fail instead of rounding biases/weights netx cannot hold")
    parser.add_argument("--data", metavar="X.npz", default=None,
                        help="nengo-loihi: test images and labels to store with the weights "
                             "(arrays x_test/y_test, images/labels or x/y)")
    parser.set_defaults(func=run)
    return parser


def _load_data(path: str):
    import numpy as np

    from ..export import ExportError
    from ..export.nengo_loihi import DATA_KEYS

    try:
        with np.load(path) as f:
            for image_key, label_key in DATA_KEYS:
                if image_key in f.files:
                    return f[image_key], (f[label_key] if label_key in f.files else None)
            raise ExportError(f"{path}: expected arrays named one of "
                              f"{', '.join(k for k, _ in DATA_KEYS)}; found {', '.join(f.files)}")
    except (OSError, ValueError) as exc:
        if isinstance(exc, ExportError):
            raise
        raise ExportError(f"cannot read test data {path!r}: {exc}") from None


def run(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..errors import LoihiStudioError
    from ..export import export

    try:
        config = load_config(args.config) if args.config else None
        images = labels = None
        if args.data:
            images, labels = _load_data(args.data)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = export(args.model, config, args.out, args.format, exact=args.exact,
                            images=images, labels=labels)
    except LoihiStudioError as exc:
        print(f"loihi-studio export: error: {exc}", file=sys.stderr)
        return 2
    for w in caught:
        print(f"loihi-studio export: warning: {w.message}", file=sys.stderr)
    print(f"wrote {args.format}: " + ", ".join(str(p) for p in result.paths))
    for layer in result.layers:
        extra = "".join(f" {k}={layer[k]}" for k in ("vThMant", "iDecay", "vDecay") if k in layer)
        name = f" {layer['layer']!r}" if "layer" in layer else ""
        print(f"  {layer['type']:<8}{name} shape {tuple(layer['shape'])}{extra}")
    for note in result.notes:
        print(f"  - {note}")
    return 0
