"""Sweep results: the CSV table, reading it back, the Pareto front.

:class:`ResultsWriter` appends each configuration's row to the CSV as soon as it is
complete (flushed to disk), so that a sweep that crashes keeps what it finished;
``--resume`` reads those rows back (:func:`completed_rows`) and skips them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import TunedConfig
from ..errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

def save_results(df: "pd.DataFrame", path: str | os.PathLike) -> None:
    """Write the results table as CSV (UTF-8, no index column)."""
    df.to_csv(path, index=False)


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

