"""Running a sweep: every configuration × shard of images, one result row per configuration."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import TunedConfig
from .backends import _Task, _shards, make_backend
from .evaluate import ShardStats, _config_json, combine_shards
from .results import ResultsWriter, check_output_csv, completed_rows, result_columns, save_results
from .checks import check_against_model
from .spec import SweepError, SweepPoint, SweepSpec, effective_value, load_sweep

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

@dataclass(frozen=True)
class SweepProgress:
    """Reported to ``progress`` after every finished task, exactly once per task.

    Attributes
    ----------
    done_shards, total_shards
        Tasks finished (including this one) and in all.
    done_configs, total_configs
        Configurations with all their shards in, and in all.
    elapsed
        Seconds since the sweep started (cluster start included).
    config_index, shard_index
        The task that finished.
    stats
        Its :class:`ShardStats` (``None`` when the task failed after its retries).
    row
        When this task completed its configuration: the configuration's result row.
    """

    done_shards: int
    total_shards: int
    done_configs: int
    total_configs: int
    elapsed: float
    config_index: int
    shard_index: int
    stats: ShardStats | None
    row: dict[str, Any] | None


def run_sweep(model: Any, images: np.ndarray, labels: np.ndarray,
              sweep: SweepSpec | Mapping | str | os.PathLike | Sequence[TunedConfig], *,
              base_config: Any = None, scheduler: Any = None, executor: Any = None,
              n_workers: int | None = None, shard_size: int = 64, retries: int = 2,
              numba_threads: int | None = None,
              progress: Callable[[SweepProgress], None] | None = None,
              out: str | os.PathLike | None = None, resume: bool = False,
              overwrite: bool = False) -> "pd.DataFrame":
    """Evaluate every configuration of a sweep on the emulator; one result row each.

    Parameters
    ----------
    model
        The model: a :class:`~loihi_core.graph.LayerGraph` (load it once with
        :func:`loihi_core.load_model`; it is plain data that workers unpickle without
        TensorFlow), a ``.keras`` path or a ``keras.Model`` (loaded here, in this process).
    images, labels
        The test set: ``(n, *input_shape)`` images (uint8 pixels are scaled to ``[0, 1]``)
        and ``(n,)`` integer labels.
    sweep
        A :class:`SweepSpec`, a SWEEP.json path/string/dict, or a list of tuned configs.
    base_config
        Replaces the sweep's base config (ignored for a list of configs).
    scheduler
        ``None``/``"local"`` (embedded :class:`distributed.LocalCluster` of ``n_workers``
        processes), ``"local-threads"`` (in-process threads), a Dask scheduler address
        (``"tcp://host:8786"``) or a :class:`distributed.Client`.
    executor
        Any :class:`concurrent.futures.Executor` to run the tasks on instead.
    n_workers
        Local worker processes or threads (default: the CPU count).
    shard_size
        Images per task. Smaller shards balance better over many workers; each task costs
        a scheduling round trip (~ms) and, once per worker and configuration, a mapping.
    retries
        How many times a task that raised is retried (Dask also reschedules the tasks of
        a worker that died).
    numba_threads
        Numba threads per task. Default: 1 on Dask workers (one task per core), the CPU
        count divided by the number of threads for ``"local-threads"``.
    progress
        Called with a :class:`SweepProgress` after every task, in this thread.
    out
        A results CSV to write as the sweep goes: checked before anything runs, each
        configuration's row appended (and flushed to disk) as soon as it is complete, so a
        sweep that crashes after N configurations keeps N rows; at the end the whole table
        replaces it in configuration order (what :func:`save_results` writes).
    resume
        With ``out``: keep the rows ``out`` already holds for this sweep's configurations
        and run only the others (rows of tasks that failed after their retries run again).
    overwrite
        With ``out``: replace an existing file (otherwise an existing non-empty ``out``
        without ``resume`` is refused, so that no finished work is lost).

    Returns
    -------
    pandas.DataFrame
        One row per configuration, in sweep order (columns: see the module docstring).
        ``df.attrs`` holds ``n_images``, ``shard_size``, ``backend``, ``wall_seconds``,
        ``resumed`` (rows taken from ``out``).

    Raises
    ------
    SweepError, ConfigError, DataError, ConversionError
        Before any task runs: an invalid sweep, layer fields the model lacks, a swept
        field that per-layer values override, configurations that repeat, a base config
        that does not convert, images or labels that do not fit the model, an ``out``
        that cannot be written or holds another sweep's results.
    """
    from ..convert import convert
    from ..data import check_images, check_labels
    from ..graph import load_model

    t_start = time.perf_counter()
    if out is not None:
        out = check_output_csv(out, resume=resume, overwrite=overwrite)
    graph = load_model(model)
    if isinstance(sweep, Sequence) and not isinstance(sweep, (str, bytes)) and all(
            isinstance(c, TunedConfig) for c in sweep):
        spec = SweepSpec(base_config=TunedConfig(), grid=None, random=None,
                         points=tuple(SweepPoint(i, "list", {}, c) for i, c in enumerate(sweep)))
        if not spec.points:
            raise SweepError("the list of configurations is empty")
    else:
        spec = load_sweep(sweep, base_config)
    check_against_model(spec, graph)
    base_network = convert(graph, spec.base_config)  # a base that does not convert: say so now
    images = check_images(images, input_shape=base_network.input_shape)
    labels = check_labels(labels, len(images), n_classes=int(np.prod(base_network.readout.shape)))
    if isinstance(shard_size, bool) or not isinstance(shard_size, (int, np.integer)) or shard_size < 1:
        raise SweepError([("shard_size", f"expected a positive integer, got {shard_size!r}")])
    if isinstance(retries, bool) or not isinstance(retries, (int, np.integer)) or retries < 0:
        raise SweepError([("retries", f"expected an integer >= 0, got {retries!r}")])

    layers = ([layer.name for layer in base_network.off_chip_layers]
              + [layer.name for layer in base_network.on_chip_layers])
    columns = result_columns(spec.fields, layers)
    configs_json = [_config_json(p.config) for p in spec.points]
    done = (completed_rows(out, configs_json, columns, len(images))
            if out is not None and resume else {})
    shards = _shards(len(images), int(shard_size))
    tasks = [_Task(p.index, s, a, b) for p in spec.points if p.index not in done
             for s, (a, b) in enumerate(shards)]
    token = uuid.uuid4().hex
    writer = ResultsWriter(out, columns, append=resume) if out is not None else None
    collector = _Collector(spec, len(shards), progress, t_start, done=done,
                           on_row=None if writer is None else writer.append)
    try:
        if tasks:
            with make_backend(scheduler, executor, n_workers, numba_threads) as backend:
                for task, outcome in backend.run(graph, images, labels, tasks, configs_json,
                                                 token, int(retries)):
                    collector.add(task, outcome)
                name = backend.name
        else:
            name = "none (every configuration was already in the results)"
    finally:
        if writer is not None:
            writer.close()
    df = collector.frame(columns)
    if out is not None:
        save_results(df, out)
    df.attrs.update(n_images=len(images), shard_size=int(shard_size), backend=name,
                    wall_seconds=time.perf_counter() - t_start, model=graph.source,
                    model_sha256=graph.sha256, resumed=len(done))
    return df


class _Collector:
    """Keeps each (configuration, shard) result exactly once and builds the rows."""

    def __init__(self, spec: SweepSpec, n_shards: int, progress, t_start: float,
                 done: Mapping[int, dict] | None = None,
                 on_row: Callable[[dict], None] | None = None):
        self.spec = spec
        self.n_shards = n_shards
        self.progress = progress
        self.t_start = t_start
        self.on_row = on_row
        self.results: dict[tuple[int, int], ShardStats | BaseException] = {}
        self.rows: dict[int, dict] = dict(done or {})
        self.per_config: dict[int, int] = {}
        self.duplicates = 0
        self.total = (len(spec.points) - len(self.rows)) * n_shards

    def add(self, task: _Task, outcome: ShardStats | BaseException) -> None:
        key = (task.config, task.shard)
        if key in self.results:  # cannot happen with futures; never count a result twice
            self.duplicates += 1
            return
        self.results[key] = outcome
        done = self.per_config[task.config] = self.per_config.get(task.config, 0) + 1
        row = None
        if done == self.n_shards:
            row = self.rows[task.config] = self._row(task.config)
            if self.on_row is not None:
                self.on_row(row)
        if self.progress is not None:
            self.progress(SweepProgress(
                done_shards=len(self.results), total_shards=self.total,
                done_configs=len(self.rows), total_configs=len(self.spec.points),
                elapsed=time.perf_counter() - self.t_start, config_index=task.config,
                shard_index=task.shard,
                stats=outcome if isinstance(outcome, ShardStats) else None, row=row))

    def _row(self, index: int) -> dict[str, Any]:
        point = self.spec.points[index]
        outcomes = [self.results.get((index, s)) for s in range(self.n_shards)]
        failed = [(s, o) for s, o in enumerate(outcomes) if not isinstance(o, ShardStats)]
        if failed:
            s, exc = failed[0]
            why = "no result" if exc is None else f"{type(exc).__name__}: {exc}"
            metrics: dict[str, Any] = {
                "n_images": sum(o.n_images for o in outcomes if isinstance(o, ShardStats)),
                "n_cores": next((o.n_cores for o in outcomes
                                 if isinstance(o, ShardStats) and o.n_cores is not None), None),
                "error": f"task for shard {s} failed after its retries: {why}"}
        else:
            metrics = combine_shards(outcomes)
        row: dict[str, Any] = {"index": index, "source": point.source}
        for name in self.spec.fields:
            value = effective_value(point.config, name)
            row[name] = json.dumps(value) if isinstance(value, (list, dict)) else value
        row.update(metrics)
        row["config"] = _config_json(point.config)
        return row

    def frame(self, columns: Sequence[str]) -> "pd.DataFrame":
        import pandas as pd

        for index in range(len(self.spec.points)):  # a backend that lost tasks: say so
            if index not in self.rows:
                self.rows[index] = self._row(index)
        rows = [self.rows[i] for i in range(len(self.spec.points))]
        columns = list(columns)
        extra = []  # rate columns of layers the base network does not have (not expected)
        for row in rows:
            extra += [k for k in row if k.startswith("rate/") and k not in columns + extra]
        if extra:
            at = columns.index("spikes_per_image")
            columns[at:at] = extra
        rate_cols = [c for c in columns if c.startswith("rate/")]
        df = pd.DataFrame(rows).reindex(columns=columns)
        df["error"] = df["error"].fillna("").astype(str)
        df["n_cores"] = df["n_cores"].astype("Int64")
        for col in ["accuracy", *rate_cols, "spikes_per_image", "synops_per_image",
                    "energy_per_image_J", "time_per_step_s", "latency_steps"]:
            df[col] = df[col].astype(float)
        df.attrs["duplicates_ignored"] = self.duplicates
        return df

