"""Shared pieces of the exporters: the error type, the result record, safe file writing.

Every exporter writes through :func:`atomic_write`, so a failed export never leaves a
half-written file where a previous good one was: the data goes to a temporary file in the
destination folder and is moved into place only when it is complete.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import LoihiStudioError

#: The export formats, in the order ``loihi-studio export --help`` lists them.
FORMATS = ("lava-hdf5", "nengo-loihi", "json")


class ExportError(LoihiStudioError, ValueError):
    """A network or a destination cannot be exported as asked.

    Raised for an unknown format, an on-chip layer the target format cannot express, a
    lossy conversion refused with ``exact=True``, or an output path that cannot be
    written. ``layer`` names the offending neuron layer when there is one.
    """

    def __init__(self, message: str, layer: str | None = None):
        self.layer = layer
        super().__init__(message)


@dataclass
class ExportResult:
    """What an export wrote.

    Attributes
    ----------
    format
        One of :data:`FORMATS`.
    paths
        Every file written, main file first.
    notes
        Human-readable remarks: approximations made, how to feed the exported network,
        what it does not model. The CLI prints them.
    layers
        Per exported layer, a JSON-able summary (lava-hdf5: netx type, shape, threshold ...).
    """

    format: str
    paths: list[Path]
    notes: list[str] = field(default_factory=list)
    layers: list[dict] = field(default_factory=list)


def check_format(fmt: str) -> str:
    """``fmt`` if it is a known export format, else :class:`ExportError` listing them."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return fmt


def check_output_file(path: str | os.PathLike) -> Path:
    """Validate an output *file* path: its folder must exist and it must not be a folder."""
    path = Path(path)
    if str(path) in ("", "."):
        raise ExportError("no output path given")
    if path.is_dir():
        raise ExportError(f"output path {str(path)!r} is a directory; give a file name "
                          f"(e.g. {str(path / 'net.net')!r})")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ExportError(f"cannot write {str(path)!r}: the folder {str(parent)!r} does not "
                          f"exist; create it first")
    return path


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Run ``write(tmp_path)`` on a temporary file beside ``path``, then move it into place.

    Raises :class:`ExportError` when the folder is not writable (or the disk is full).
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    except OSError as exc:
        raise ExportError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; use the usual mode
        os.replace(tmp_path, path)
    except OSError as exc:
        raise ExportError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    atomic_write(path, lambda tmp: tmp.write_bytes(data))
