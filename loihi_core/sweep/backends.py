"""Where sweep tasks run: in-process threads, any ``Executor``, or a Dask cluster.

Each backend runs ``(configuration, shard)`` tasks and yields ``(task, ShardStats or the
exception)`` as they finish; :func:`make_backend` picks one from ``scheduler=`` /
``executor=``. Dask workers set themselves up once (a per-worker ``NUMBA_CACHE_DIR`` seeded
from this machine's cache) and are checked for matching versions before any task runs.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .evaluate import ShardStats, evaluate_shard
from .spec import SweepError

_WORKER_LOCK = threading.Lock()
_WORKER_READY = False
#: NUMBA_CACHE_DIR as this process started (the per-worker dir goes below it).
_ORIGINAL_NUMBA_CACHE_DIR = os.environ.get("NUMBA_CACHE_DIR")


def _kernels_file() -> Path:
    from .. import emulator

    return Path(emulator.__file__).with_name("kernels.py")


def worker_numba_cache_dir(worker_name: str) -> Path:
    """The per-worker Numba cache of a Dask worker named ``worker_name`` on this machine."""
    base = (Path(_ORIGINAL_NUMBA_CACHE_DIR) if _ORIGINAL_NUMBA_CACHE_DIR else
            Path(tempfile.gettempdir()) / f"loihi-studio-numba-{_uid()}")
    return base / ("dask-worker-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", worker_name))


def _uid() -> str:
    return str(os.getuid()) if hasattr(os, "getuid") else "user"


def _seed_numba_cache(target_base: Path) -> None:
    """Copy this machine's cached kernels into a worker's cache (newer files only).

    The worker then loads the kernels instead of compiling them (about 1 s instead of
    20+ s). Numba's cache lives in ``<NUMBA_CACHE_DIR>/<dir>_<sha1 of the dir>`` or, by
    default, in ``__pycache__`` beside the source; both are tried.
    """
    try:
        from numba.core.caching import _CacheLocator

        sub = _CacheLocator.get_suitable_cache_subpath(str(_kernels_file()))
    except Exception:  # noqa: BLE001 (a Numba without this helper: workers just compile)
        return
    sources = [_kernels_file().parent / "__pycache__"]
    if _ORIGINAL_NUMBA_CACHE_DIR:
        sources.insert(0, Path(_ORIGINAL_NUMBA_CACHE_DIR) / sub)
    target = target_base / sub
    for src in sources:
        files = sorted(src.glob("kernels.*.nb[ic]")) if src.is_dir() else []
        if not files:
            continue
        target.mkdir(parents=True, exist_ok=True)
        for f in files:
            dest = target / f.name
            if not dest.exists() or dest.stat().st_mtime < f.stat().st_mtime:
                tmp = target / f".{f.name}.{os.getpid()}.tmp"
                shutil.copy2(f, tmp)
                os.replace(tmp, dest)
        return


def _prepare_dask_worker() -> None:
    """Once per worker process: a per-worker ``NUMBA_CACHE_DIR``, seeded from this machine.

    Runs inside the first task (so a worker restarted after a crash sets itself up too),
    before the emulator's kernels are imported; a process that already imported them
    keeps its cache.
    """
    global _WORKER_READY
    with _WORKER_LOCK:
        if _WORKER_READY:
            return
        _WORKER_READY = True
        if "loihi_core.emulator.kernels" in sys.modules:
            return
        try:
            from distributed import get_worker

            name = str(get_worker().name)
        except Exception:  # noqa: BLE001 (not in a worker: use the pid)
            name = f"pid{os.getpid()}"
        target = worker_numba_cache_dir(name)
        try:
            target.mkdir(parents=True, exist_ok=True)
            _seed_numba_cache(target)
        except OSError:
            return
        os.environ["NUMBA_CACHE_DIR"] = str(target)
        if "numba" in sys.modules:
            from numba.core import config as numba_config

            numba_config.reload_config()


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    from .. import __version__

    out = {"loihi_core": __version__}
    for name in ("numpy", "numba"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def worker_info() -> dict[str, Any]:
    """What a (Dask worker) process runs with: ``client.run(worker_info)`` checks a cluster.

    Returns the pid, the package versions that must match the client's, the Numba cache
    directory in use, whether the process has set itself up for sweeps, and whether it
    imported TensorFlow (sweep workers never should).
    """
    return {"pid": os.getpid(), "versions": _versions(),
            "numba_cache_dir": os.environ.get("NUMBA_CACHE_DIR"),
            "prepared": _WORKER_READY,
            "tensorflow_imported": "tensorflow" in sys.modules or "keras" in sys.modules}


def _dask_task(graph: Any, images: np.ndarray, labels: np.ndarray, start: int, stop: int,
               config_json: str, cache_key: str, numba_threads: int | None) -> ShardStats:
    """A sweep task on a Dask worker: the scattered arrays are sliced here, not shipped."""
    _prepare_dask_worker()
    return evaluate_shard(graph, config_json, images[start:stop], labels[start:stop],
                          cache_key=cache_key, numba_threads=numba_threads)


@dataclass(frozen=True)
class _Task:
    config: int
    shard: int
    start: int
    stop: int


def _shards(n_images: int, shard_size: int) -> list[tuple[int, int]]:
    return [(a, min(a + shard_size, n_images)) for a in range(0, n_images, shard_size)]


def _is_address(value: str) -> bool:
    return "://" in value or bool(re.fullmatch(r"[\w.\-\[\]:]+:\d+", value))


class _Backend:
    """Runs tasks and yields ``(task, ShardStats or the exception)`` as they finish."""

    name = "backend"

    def __enter__(self) -> "_Backend":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        pass

    def run(self, graph, images, labels, tasks, configs_json, token, retries) -> Iterator:
        raise NotImplementedError


class _ExecutorBackend(_Backend):
    """Any ``concurrent.futures.Executor``; a task that raised is resubmitted ``retries`` times."""

    def __init__(self, executor, numba_threads: int | None, own: bool = False, name: str = ""):
        self.executor = executor
        self.numba_threads = numba_threads
        self.own = own
        self.name = name or type(executor).__name__

    def close(self) -> None:
        if self.own:
            self.executor.shutdown(wait=True, cancel_futures=True)

    def run(self, graph, images, labels, tasks, configs_json, token, retries):
        from concurrent.futures import FIRST_COMPLETED, wait

        def submit(task: _Task):
            return self.executor.submit(
                evaluate_shard, graph, configs_json[task.config], images[task.start:task.stop],
                labels[task.start:task.stop], cache_key=token, numba_threads=self.numba_threads)

        pending = {}
        try:
            for task in tasks:
                pending[submit(task)] = (task, 0)
            while pending:
                done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                for fut in done:
                    task, attempt = pending.pop(fut)
                    exc = fut.exception()
                    if exc is not None and attempt < retries and not _is_fatal(exc):
                        pending[submit(task)] = (task, attempt + 1)
                        continue
                    yield task, (exc if exc is not None else fut.result())
        finally:
            for fut in pending:
                fut.cancel()


def _is_fatal(exc: BaseException) -> bool:
    """Errors a retry cannot fix: the pool itself is gone."""
    from concurrent.futures import BrokenExecutor

    return isinstance(exc, (BrokenExecutor, KeyboardInterrupt))


class _DaskBackend(_Backend):
    """A Dask client: data scattered once to every worker, ``retries`` per task."""

    def __init__(self, client, numba_threads: int | None, own_client: bool, cluster=None,
                 name: str = "dask"):
        self.client = client
        self.numba_threads = 1 if numba_threads is None else numba_threads
        self.own_client = own_client
        self.cluster = cluster
        self.name = name

    def close(self) -> None:
        if self.own_client:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def _check_workers(self) -> None:
        """Refuse a cluster without workers or whose workers run other versions."""
        client = self.client
        if not client.scheduler_info().get("workers"):
            try:
                client.wait_for_workers(1, timeout=60)
            except TimeoutError:
                raise SweepError([("scheduler", f"the Dask cluster at {client.scheduler.address} "
                                   f"has no workers (waited 60 s); start some with: dask worker "
                                   f"{client.scheduler.address} --nthreads 1")]) from None
        try:
            infos = client.run(worker_info)
        except Exception as exc:  # noqa: BLE001 (e.g. workers without loihi_core)
            raise SweepError([("scheduler", f"the Dask workers cannot run Loihi Studio code "
                               f"({type(exc).__name__}: {exc}); install the same loihi-studio on "
                               f"every worker")]) from None
        mine = _versions()
        problems = [("scheduler", f"worker {addr} has {name} {info['versions'].get(name)}, this "
                     f"process {want}; install the same versions everywhere")
                    for addr, info in infos.items() for name, want in mine.items()
                    if info["versions"].get(name) != want]
        if problems:
            raise SweepError(problems[:10])

    def run(self, graph, images, labels, tasks, configs_json, token, retries):
        from distributed import as_completed

        client = self.client
        self._check_workers()
        graph_f, images_f, labels_f = client.scatter([graph, images, labels], broadcast=True,
                                                     hash=False)
        futures = {}
        try:
            for task in tasks:
                fut = client.submit(
                    _dask_task, graph_f, images_f, labels_f, task.start, task.stop,
                    configs_json[task.config], token, self.numba_threads,
                    key=f"loihi-sweep-{token}-{task.config}-{task.shard}", retries=retries,
                    pure=False)
                futures[fut] = task
            for fut in as_completed(list(futures)):
                task = futures[fut]
                try:
                    outcome = fut.result()
                except Exception as exc:  # noqa: BLE001 (failed after retries: report it)
                    outcome = exc
                yield task, outcome
        finally:
            client.cancel(list(futures) + [graph_f, images_f, labels_f])


def make_backend(scheduler: Any, executor: Any, n_workers: int | None,
             numba_threads: int | None) -> _Backend:
    cpus = os.cpu_count() or 1
    if n_workers is not None and (isinstance(n_workers, bool) or not isinstance(n_workers, int)
                                  or n_workers < 1):
        raise SweepError([("n_workers", f"expected a positive integer, got {n_workers!r}")])
    if executor is not None:
        if scheduler is not None:
            raise SweepError([("executor", "give either scheduler= or executor=, not both")])
        return _ExecutorBackend(executor, numba_threads)
    if isinstance(scheduler, str) and scheduler in ("local-threads", "threads"):
        from concurrent.futures import ThreadPoolExecutor

        n = n_workers or cpus
        threads = numba_threads if numba_threads is not None else max(1, cpus // n)
        return _ExecutorBackend(ThreadPoolExecutor(max_workers=n, thread_name_prefix="sweep"),
                                threads, own=True, name=f"local-threads ({n} threads x "
                                                        f"{threads} numba)")
    try:
        import distributed
    except ImportError:
        raise SweepError([("scheduler", "running on Dask needs dask.distributed: pip install "
                           "'loihi-studio[sweep]' (or use scheduler=\"local-threads\")")]) from None
    if scheduler is None or scheduler in ("local", "processes"):
        import logging

        n = n_workers or cpus
        cluster = distributed.LocalCluster(
            n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address=None, silence_logs=logging.ERROR)
        try:
            client = distributed.Client(cluster)
        except BaseException:
            cluster.close()
            raise
        return _DaskBackend(client, numba_threads, own_client=True, cluster=cluster,
                            name=f"dask LocalCluster ({n} processes)")
    if isinstance(scheduler, distributed.Client):
        return _DaskBackend(scheduler, numba_threads, own_client=False,
                            name=f"dask {scheduler.scheduler.address}")
    if isinstance(scheduler, str) and _is_address(scheduler):
        client = connect_scheduler(scheduler)
        return _DaskBackend(client, numba_threads, own_client=True, name=f"dask {scheduler}")
    raise SweepError([("scheduler", f"expected None or 'local' (a local Dask cluster), "
                       f"'local-threads', a scheduler address such as 'tcp://host:8786', or a "
                       f"distributed.Client; got {scheduler!r}")])



#: Seconds a scheduler address has to answer as a Dask scheduler.
CONNECT_TIMEOUT_S = 15.0


def connect_scheduler(address: str, timeout: float = CONNECT_TIMEOUT_S) -> Any:
    """A :class:`distributed.Client` of the scheduler at ``address``, or a clear error.

    ``distributed.Client(address, timeout=...)`` bounds the TCP connect, but not the
    handshake after it: a server that accepts the connection and then stays silent (a web
    server waiting for a request, any other service) would make it wait for ever, and one
    that answers something else makes Dask misread it (e.g. a ``MemoryError`` for a huge
    frame). So the client is made in a helper thread that has ``timeout`` seconds; a client
    that connects after that is closed at once.

    Raises
    ------
    SweepError
        Naming the address and what to check.
    """
    import distributed

    state: dict[str, Any] = {}
    lock = threading.Lock()

    def attempt() -> None:
        try:
            client = distributed.Client(address, timeout=f"{max(1.0, timeout - 3):g}s")
        except BaseException as exc:  # noqa: BLE001 (reported by the caller)
            state["error"] = exc
            return
        with lock:
            if state.get("abandoned"):
                client.close()
            else:
                state["client"] = client

    thread = threading.Thread(target=attempt, name="loihi-sweep-connect", daemon=True)
    thread.start()
    thread.join(timeout)
    with lock:
        if "client" in state:
            return state["client"]
        if "error" not in state:
            state["abandoned"] = True
            raise SweepError([("scheduler", f"no Dask scheduler answered at {address!r} within "
                               f"{timeout:g} s: something accepts connections there but does not "
                               f"speak Dask's protocol (a web server, another service?); check the "
                               f"address and port (dask scheduler listens on 8786 by default)")])
    exc = state["error"]
    if isinstance(exc, (OSError, TimeoutError)):
        raise SweepError([("scheduler", f"cannot reach the Dask scheduler at {address!r}: "
                           f"{exc}")])
    raise SweepError([("scheduler", f"{address!r} did not answer as a Dask scheduler "
                       f"({type(exc).__name__}: {str(exc)[:200]}); check the address and port "
                       f"(dask scheduler listens on 8786 by default)")])
