"""Sweep results: the CSV table, reading it back, the Pareto front.

:class:`ResultsWriter` appends each configuration's row to the CSV as soon as it is
complete (flushed to disk), so that a sweep that crashes keeps what it finished;
``--resume`` reads those rows back (:func:`completed_rows`) and skips them.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import TunedConfig
from ..errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

#: Columns after the swept fields and ``accuracy``/``rate/<layer>``, in table order.
TAIL_COLUMNS = ("spikes_per_image", "synops_per_image", "energy_per_image_J", "time_per_step_s",
                "n_cores", "latency_steps", "n_images", "seconds", "error", "config")


def result_columns(fields: Sequence[str], layers: Sequence[str]) -> list[str]:
    """The results table's columns for swept ``fields`` and neuron ``layers``."""
    return (["index", "source", *fields, "accuracy", *(f"rate/{name}" for name in layers),
             *TAIL_COLUMNS])


def save_results(df: "pd.DataFrame", path: str | os.PathLike) -> None:
    """Write the results table as CSV (UTF-8, no index column).

    The table goes to a temporary file beside ``path`` that then replaces it, so a crash
    while writing leaves the previous file (e.g. the rows a sweep wrote as it went).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        df.to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def check_output_csv(path: str | os.PathLike, *, resume: bool = False, overwrite: bool = False,
                     what: str = "out") -> Path:
    """Check where a sweep will write its results, before anything runs.

    Refuses (:class:`SweepError` naming ``what``): an empty path, a folder, a symbolic link
    (as exports do), a parent folder that is missing, is a file or cannot be written (tried
    by creating a file in it), an existing path that is not a regular file (a device, a
    pipe), and an existing non-empty file unless ``resume`` (continue it) or ``overwrite``
    (start again) is given.

    Returns
    -------
    Path
        The path.
    """
    from .spec import SweepError

    def refuse(msg: str):
        raise SweepError([(what, msg)])

    if path is None or str(path) in ("", "."):
        refuse("no output file given; give a .csv path such as results.csv")
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if p.is_symlink():
        refuse(f"{str(p)!r} is a symbolic link (to {os.readlink(p)!r}); results are written "
               f"only to regular files, not through or over links: give the target path itself")
    if p.is_dir():
        refuse(f"{str(p)!r} is a folder; give a file name such as {str(p / 'results.csv')!r}")
    ancestor = parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if ancestor.exists() and not ancestor.is_dir():
        refuse(f"cannot write {str(p)!r}: {str(ancestor)!r} is a file, not a folder")
    if not parent.is_dir():
        refuse(f"cannot write {str(p)!r}: the folder {str(parent)!r} does not exist; create it "
               f"first")
    if p.exists() or p.is_symlink():
        if not p.is_file():
            refuse(f"{str(p)!r} exists and is not a regular file (a device, pipe, socket or "
                   f"broken link); give a .csv file path")
        if _has_rows(p) and not (resume or overwrite):
            refuse(f"{str(p)!r} already exists; add --resume to keep its rows and run only the "
                   f"configurations it lacks, or --overwrite to start again")
        if not os.access(p, os.W_OK):
            refuse(f"cannot write {str(p)!r}: permission denied")
    try:
        probe = tempfile.NamedTemporaryFile(dir=parent, prefix=f".{p.name}.", suffix=".probe")
        probe.close()
    except OSError as exc:
        refuse(f"cannot write into the folder {str(parent)!r}: {exc.strerror or exc}")
    return p


def _has_rows(path: Path) -> bool:
    """Whether a file has more than a header line (a sweep that failed to start leaves
    only the header: running it again needs neither ``--resume`` nor ``--overwrite``)."""
    try:
        with open(path, "rb") as f:
            f.readline()
            return bool(f.readline().strip())
    except OSError:
        return True


class ResultsWriter:
    """Appends result rows to a CSV as configurations finish (each row flushed to disk).

    Parameters
    ----------
    path
        The CSV (checked with :func:`check_output_csv`).
    columns
        The table's columns (:func:`result_columns`).
    append
        Keep the rows already in the file (``--resume``; its header must be ``columns``);
        otherwise the file is started with the header alone.
    """

    def __init__(self, path: str | os.PathLike, columns: Sequence[str], append: bool = False):
        self.path = Path(path)
        self.columns = list(columns)
        fresh = not (append and self.path.is_file() and self.path.stat().st_size > 0)
        try:
            self._file = open(self.path, "w" if fresh else "a", encoding="utf-8", newline="")
        except OSError as exc:
            from .spec import SweepError

            raise SweepError([("out", f"cannot write {str(self.path)!r}: "
                               f"{exc.strerror or exc}")]) from None
        if fresh:
            import pandas as pd

            self._write(pd.DataFrame(columns=self.columns).to_csv(index=False,
                                                                   lineterminator="\n"))

    def append(self, row: Mapping[str, Any]) -> None:
        """Write one row (missing columns empty) and flush it to disk."""
        import pandas as pd

        frame = pd.DataFrame([dict(row)]).reindex(columns=self.columns)
        self._write(frame.to_csv(index=False, header=False, lineterminator="\n"))

    def _write(self, text: str) -> None:
        self._file.write(text)
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "ResultsWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def completed_rows(path: str | os.PathLike, configs_json: Sequence[str], columns: Sequence[str],
                   n_images: int, what: str = "out") -> dict[int, dict[str, Any]]:
    """The rows of an earlier run of the same sweep, by configuration number (``--resume``).

    A row counts as done when it ran or failed for a reason a rerun does not change (does
    not convert, does not fit); rows of tasks that failed after their retries are run
    again. A later row of one configuration replaces an earlier one.

    Raises
    ------
    SweepError
        When the file is not this sweep's: other columns, configurations that are not in
        the sweep, or another number of images.
    """
    from .spec import SweepError

    p = Path(path)
    if not p.is_file() or p.stat().st_size == 0:
        return {}
    df = load_results(p)
    if list(df.columns) != list(columns):
        raise SweepError([(what, f"{str(p)!r} has other columns than this sweep's results "
                           f"(another sweep or model?); give another --out, or --overwrite")])
    index_of = {c: i for i, c in enumerate(configs_json)}
    done: dict[int, dict[str, Any]] = {}
    foreign = 0
    for row in df.to_dict("records"):
        i = index_of.get(row["config"])
        if i is None:
            foreign += 1
            continue
        if row["error"].startswith("task for shard"):
            done.pop(i, None)
            continue
        if int(row["n_images"]) != n_images:
            raise SweepError([(what, f"{str(p)!r} holds results over {int(row['n_images'])} "
                               f"images, this run has {n_images}; give another --out, or "
                               f"--overwrite")])
        row["index"] = i
        done[i] = row
    if foreign:
        raise SweepError([(what, f"{str(p)!r} holds {foreign} row(s) whose configuration is not "
                           f"in this sweep (another sweep?); give another --out, or --overwrite")])
    return done


def load_results(path: str | os.PathLike) -> "pd.DataFrame":
    """Read a results CSV written by :func:`save_results` (or ``loihi-studio sweep``).

    ``error`` is ``""`` for configurations that ran (as returned by :func:`run_sweep`).

    Raises
    ------
    DataError
        When the file is missing or lacks the ``config``, ``accuracy`` or ``error`` column.
    """
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise DataError(f"results file {str(path)!r} does not exist")
    try:
        df = pd.read_csv(p, dtype={"error": str, "config": str, "source": str})
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise DataError(f"cannot read results file {str(path)!r}: {exc}") from None
    missing = [c for c in ("config", "accuracy", "error") if c not in df.columns]
    if missing:
        raise DataError(f"{str(path)!r} is not a sweep results table (no "
                        f"{', '.join(missing)} column)")
    df["error"] = df["error"].fillna("").astype(str)
    if "n_cores" in df.columns:
        df["n_cores"] = df["n_cores"].astype("Int64")
    return df


def config_of(row: Any) -> TunedConfig:
    """The tuned config of one results row (a ``DataFrame`` row, a dict, or a 1-row frame)."""
    if hasattr(row, "columns"):
        if len(row) != 1:
            raise ValueError(f"config_of takes one row, got {len(row)}")
        row = row.iloc[0]
    return TunedConfig.from_json(row["config"])


def pareto_front(df: "pd.DataFrame", maximize: str = "accuracy",
                 minimize: str = "spikes_per_image") -> "pd.DataFrame":
    """The configurations no other beats on both objectives (sorted by ``minimize``).

    A row is on the front when no row has a ``maximize`` at least as high *and* a
    ``minimize`` at least as low, with one of the two strictly better. Rows with an
    ``error`` or missing values are left out. By default: highest accuracy for the fewest
    spikes per image (the energy proxy).
    """
    ok = df[(df["error"].fillna("") == "") & df[maximize].notna() & df[minimize].notna()]
    ordered = ok.sort_values([minimize, maximize], ascending=[True, False], kind="stable")
    keep = []
    best = -math.inf
    last_min = None
    for idx, hi, lo in zip(ordered.index, ordered[maximize], ordered[minimize]):
        if hi > best:
            keep.append(idx)
            best, last_min = hi, lo
        elif hi == best and lo == last_min:
            keep.append(idx)  # an exact tie with a front point: neither dominates
    return ordered.loc[keep]


def best_row(df: "pd.DataFrame") -> "pd.Series | None":
    """The most accurate configuration (fewest spikes among equals), or ``None``."""
    ok = df[(df["error"].fillna("") == "") & df["accuracy"].notna()]
    if ok.empty:
        return None
    return ok.sort_values(["accuracy", "spikes_per_image"], ascending=[False, True],
                          kind="stable").iloc[0]


def describe_params(row: Mapping[str, Any], fields: Sequence[str]) -> str:
    """``field=value`` pairs of a row's swept fields, for progress lines and summaries."""
    parts = []
    for name in fields:
        value = row.get(name)
        if value is None:
            value = "null"
        elif isinstance(value, float):
            value = f"{value:g}" if math.isfinite(value) else "null"
        parts.append(f"{name}={value}")
    return " ".join(parts) or "(base config)"

