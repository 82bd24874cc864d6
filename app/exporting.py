"""Export formats of the dashboard's *Export* menu.

The tuned-config JSON is always available: it is the one file that reproduces a tuning
headless (``loihi-studio simulate MODEL.keras --config CFG.json ...``). The Lava-dl NetX
(HDF5) and NengoLoihi-script exports come from :func:`loihi_core.export.export` when the
installed core provides it; otherwise their menu entries are shown disabled, so the
menu keeps its shape and nothing else changes when the core gains them.
"""

from __future__ import annotations

import importlib
import io
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np


@dataclass(frozen=True)
class ExportFormat:
    """One entry of the menu: ``core`` is the format name ``loihi_core.export`` uses."""

    key: str
    label: str
    suffix: str
    core: str


FORMATS = (
    ExportFormat("json", "Tuned config (.json)", ".config.json", "json"),
    ExportFormat("lava", "Lava-dl NetX (.net, HDF5)", ".net", "lava-hdf5"),
    ExportFormat("nengo", "NengoLoihi script (.zip)", "_nengo_loihi.zip", "nengo-loihi"),
)
BY_LABEL = {f.label: f for f in FORMATS}
BY_KEY = {f.key: f for f in FORMATS}
#: Test images packed with the NengoLoihi script (its default data when run without --data).
SCRIPT_IMAGES = 200


def _core_export() -> tuple[Callable | None, tuple[str, ...]]:
    try:
        module = importlib.import_module("loihi_core.export")
    except ImportError:
        return None, ()
    fn = getattr(module, "export", None)
    return (fn if callable(fn) else None), tuple(getattr(module, "FORMATS", ()))


def available() -> dict[str, bool]:
    """Which formats the installed core can write."""
    fn, formats = _core_export()
    return {f.key: f.key == "json" or (fn is not None and f.core in formats) for f in FORMATS}


def filename(fmt: ExportFormat, model_name: str) -> str:
    stem = Path(model_name or "model").name
    if stem.endswith(".keras"):
        stem = stem[: -len(".keras")]
    return f"{stem}{fmt.suffix}"


@dataclass
class Exported:
    data: bytes
    notes: list[str]


def export_bytes(key: str, graph: Any, config: Any, images: np.ndarray | None = None,
                 labels: np.ndarray | None = None) -> Exported:
    """The file of format ``key`` for ``graph`` tuned by ``config``, with the core's notes.

    Raises the core's errors (``ExportError`` for a layer the format cannot express, ...).
    """
    if key == "json":
        return Exported(config.to_json().encode("utf-8"), [])
    fmt = BY_KEY[key]
    fn, formats = _core_export()
    if fn is None or fmt.core not in formats:
        raise RuntimeError(f"this Loihi Studio core cannot export {fmt.label}")
    with tempfile.TemporaryDirectory(prefix="loihi-studio-export-") as tmp, \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if key == "lava":
            out = Path(tmp) / "network.net"
            result = fn(graph, config, out, fmt.core)
            data = out.read_bytes()
        else:
            out = Path(tmp) / "nengo_loihi"
            kwargs = {}
            if images is not None:
                kwargs = {"images": images[:SCRIPT_IMAGES],
                          "labels": None if labels is None else labels[:SCRIPT_IMAGES]}
            result = fn(graph, config, out, fmt.core, **kwargs)
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
                for path in result.paths:
                    zf.write(path, Path(path).name)
            data = buf.getvalue()
        notes = list(getattr(result, "notes", [])) + [str(w.message) for w in caught]
    return Exported(data, notes)
