"""Shared pieces of the exporters: the error type, the result record, safe file writing.

Every exporter writes through :func:`atomic_write`, so a failed export never leaves a
half-written file where a previous good one was: the data goes to a temporary file in the
destination folder and is moved into place only when it is complete. Exports write regular
files only: :func:`check_output_file` refuses folders, device nodes, pipes, sockets and
symbolic links at the destination, before anything is computed.
"""

from __future__ import annotations

import os
import stat
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
    """Validate an output *file* path before anything is computed.

    Exports create or replace **regular files only**:

    * an existing folder, device node (``/dev/full``, ``/dev/null``), named pipe or socket
      at ``path`` is refused (replacing it would destroy it or write nowhere);
    * a symbolic link at ``path`` is refused, whatever it points to: replacing it would
      silently cut the link, and writing through it would change a file the user did not
      name. Give the link's target instead. (Folders reached through links are fine.)
    * the parent must be an existing folder; a parent that is a file gets its own message.

    Raises
    ------
    ExportError
        Naming the path and what to do.
    """
    path = Path(path)
    if str(path) in ("", "."):
        raise ExportError("no output path given")
    refuse_special(path)
    if path.is_dir():
        raise ExportError(f"output path {str(path)!r} is a directory; give a file name "
                          f"(e.g. {str(path / 'net.net')!r})")
    check_parent_folder(path)
    return path


def refuse_special(path: Path) -> None:
    """:class:`ExportError` when ``path`` is a symbolic link or exists as a special file."""
    if path.is_symlink():
        try:
            target = os.readlink(path)
        except OSError:  # pragma: no cover - a link that vanished meanwhile
            target = "?"
        raise ExportError(f"output path {str(path)!r} is a symbolic link (to {target!r}); exports "
                          f"write only regular files and do not follow or replace links: give "
                          f"the target path itself, or remove the link")
    try:
        mode = path.stat().st_mode
    except OSError:  # absent (or its parent is not a folder): checked elsewhere
        return
    kind = next((name for test, name in ((stat.S_ISCHR, "character device"),
                                         (stat.S_ISBLK, "block device"),
                                         (stat.S_ISFIFO, "named pipe"),
                                         (stat.S_ISSOCK, "socket")) if test(mode)), None)
    if kind is not None:
        raise ExportError(f"output path {str(path)!r} is a {kind}, not a regular file; exports "
                          f"only create or replace regular files: give a file name")


def check_parent_folder(path: Path) -> None:
    """:class:`ExportError` unless ``path``'s parent is an existing folder."""
    parent = path.parent if str(path.parent) else Path(".")
    if parent.is_dir():
        return
    ancestor = parent
    while not ancestor.exists() and ancestor != ancestor.parent:  # the nearest that exists
        ancestor = ancestor.parent
    if ancestor.exists() and not ancestor.is_dir():
        raise ExportError(f"cannot write {str(path)!r}: {str(ancestor)!r} is a file, not a "
                          f"folder")
    raise ExportError(f"cannot write {str(path)!r}: the folder {str(parent)!r} does not "
                      f"exist; create it first")


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
        refuse_special(path)  # again: the path may have changed while we computed
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
