"""Evaluating one sweep task: one configuration on one shard of images.

A task converts and maps its configuration (cached per process, so once per configuration
per worker), emulates its images in independent mode and returns integer totals
(:class:`ShardStats`) that add exactly across shards (:func:`combine_shards`).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..config import TunedConfig
from ..errors import LoihiStudioError

@dataclass(frozen=True)
class ShardStats:
    """What one task reports: integer totals over its images, so that shards add exactly.

    Attributes
    ----------
    n_images, n_correct
        Images evaluated and classified correctly.
    latency_sum
        Sum over the correct images of their latency in steps (see the module docstring).
    spikes, synops
        Total spikes (all neuron layers) and synaptic operations over the shard.
    layer_spikes, layer_active
        Per neuron layer: total spikes, and number of (image, neuron) pairs that spiked.
    steps, dt
        Presentation steps and time step (to turn counts into rates).
    n_cores
        Cores of the mapping (``None`` when the configuration did not map).
    energy_J, step_time_sum
        Estimated dynamic energy of the shard's images (J) and the sum over its images of the
        estimated time per step (s), from :func:`loihi_core.cost.estimate` (floats: shards add
        to round-off).
    error
        ``""``, or why the configuration cannot run (conversion or mapping failure).
    seconds
        Compute time of the task (not compared).
    """

    n_images: int
    n_correct: int = 0
    latency_sum: int = 0
    spikes: int = 0
    synops: int = 0
    layer_spikes: dict[str, int] = field(default_factory=dict)
    layer_active: dict[str, int] = field(default_factory=dict)
    steps: int = 0
    dt: float = 0.0
    n_cores: int | None = None
    energy_J: float = 0.0
    step_time_sum: float = 0.0
    error: str = ""
    seconds: float = field(default=0.0, compare=False)


def latency_steps(output: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per image, steps until the output argmax is the label and stays so (see module doc).

    Parameters
    ----------
    output
        ``(n, steps, n_out)`` readout at every step.
    labels
        ``(n,)`` class labels.

    Returns
    -------
    ndarray
        ``(n,)`` float: ``1 + t*`` for correctly classified images (``t*`` the first step
        index from which the argmax equals the label at every later step), ``NaN`` for
        the others.
    """
    ok = output.argmax(axis=-1) == np.asarray(labels)[:, None]
    steps = ok.shape[1]
    wrong = ~ok
    last_wrong = np.where(wrong.any(axis=1), steps - 1 - wrong[:, ::-1].argmax(axis=1), -1)
    return np.where(ok[:, -1], last_wrong + 2, np.nan).astype(np.float64)


@dataclass
class _Prepared:
    emulator: Any = None
    n_cores: int | None = None
    error: str = ""
    failed: BaseException | None = None
    ready: threading.Event = field(default_factory=threading.Event)


#: Per-process cache of mapped emulators: ``(token, config json) -> _Prepared``. Tasks of
#: one configuration reuse its mapping; a failed mapping is cached too (tried once).
_CACHE: "OrderedDict[tuple[str, str], _Prepared]" = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 6


def _prepare(graph: Any, config_json: str, cache_key: str | None) -> _Prepared:
    key = (cache_key, config_json) if cache_key is not None else None
    if key is not None:
        with _CACHE_LOCK:
            entry = _CACHE.get(key)
            if entry is not None:
                _CACHE.move_to_end(key)
                owner = False
            else:
                entry = _CACHE[key] = _Prepared()
                owner = True
                while len(_CACHE) > _CACHE_SIZE:
                    _CACHE.popitem(last=False)
        if not owner:
            entry.ready.wait()
            if entry.failed is not None:  # the owner hit an unexpected error: let this task retry
                raise RuntimeError(f"preparing the configuration failed in another task: "
                                   f"{type(entry.failed).__name__}: {entry.failed}")
            return entry
    else:
        entry = _Prepared()
    try:
        _build(graph, config_json, entry)
    except BaseException as exc:
        entry.failed = exc
        if key is not None:
            with _CACHE_LOCK:
                if _CACHE.get(key) is entry:
                    del _CACHE[key]
        raise
    finally:
        entry.ready.set()
    return entry


def _build(graph: Any, config_json: str, entry: _Prepared) -> None:
    """Convert, map and compile one configuration into ``entry`` (errors recorded, not raised)."""
    from ..convert import convert
    from ..emulator import Emulator
    from ..mapping import map_to_chip

    try:
        config = TunedConfig.from_json(config_json)
        network = convert(graph, config)
        chip = map_to_chip(network, n_chips=config.n_chips, raise_on_overflow=False)
        entry.n_cores = chip.n_cores
        if chip.errors:
            entry.error = "does not fit on the chip: " + "; ".join(chip.errors)
            return
        entry.emulator = Emulator(chip)
    except LoihiStudioError as exc:
        entry.error = f"{type(exc).__name__}: {exc}"


def _set_numba_threads(n: int | None) -> None:
    """Numba threads for this (executor) thread: ``set_num_threads`` is thread-local."""
    if n is None:
        return
    import numba

    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))


def evaluate_shard(graph: Any, config: TunedConfig | str, images: np.ndarray, labels: np.ndarray,
                   *, cache_key: str | None = None, numba_threads: int | None = None) -> ShardStats:
    """Evaluate one configuration on a batch of images (one sweep task).

    Parameters
    ----------
    graph
        The model's :class:`~loihi_core.graph.LayerGraph` (or anything :func:`convert` takes).
    config
        The configuration (a :class:`TunedConfig` or its JSON).
    images, labels
        The shard: ``(n, *input_shape)`` float images and ``(n,)`` int labels.
    cache_key
        With a key, the mapped emulator is cached in this process under ``(key, config)``,
        so the other shards of the configuration skip conversion and mapping.
    numba_threads
        Numba threads for the emulation in this thread (``None``: leave as is).

    Returns
    -------
    ShardStats
        Integer totals; a configuration that does not convert or map gives a
        ``ShardStats`` with ``error`` set (deterministic failures are results, not
        exceptions, so they are not retried).
    """
    t0 = time.perf_counter()
    config_json = config if isinstance(config, str) else _config_json(config)
    prepared = _prepare(graph, config_json, cache_key)
    n = int(len(images))
    if prepared.emulator is None:
        return ShardStats(n_images=n, n_cores=prepared.n_cores, error=prepared.error,
                          seconds=time.perf_counter() - t0)
    _set_numba_threads(numba_threads)
    result = prepared.emulator.run(images, mode="independent")
    labels = np.asarray(labels, np.int64)
    correct = result.predictions == labels
    latency = latency_steps(result.output, labels)
    from ..cost import estimate

    cost = estimate(prepared.emulator.chip, result)
    layer_spikes = {k: int(v.sum()) for k, v in result.spike_counts.items()}
    layer_active = {k: int(np.count_nonzero(v)) for k, v in result.spike_counts.items()}
    return ShardStats(
        n_images=n, n_correct=int(correct.sum()),
        latency_sum=int(np.nansum(latency[correct])), spikes=sum(layer_spikes.values()),
        synops=int(result.synaptic_ops.sum()), layer_spikes=layer_spikes,
        layer_active=layer_active, steps=int(result.steps), dt=float(result.dt),
        n_cores=prepared.n_cores, energy_J=cost.energy_per_image_J * n,
        step_time_sum=cost.time_per_step_s * n, seconds=time.perf_counter() - t0)


def combine_shards(shards: Sequence[ShardStats]) -> dict[str, Any]:
    """The metrics of one configuration from all its shards (in shard order).

    Integer totals are added, then divided once, so the numbers equal a single emulator
    run over all the images (``accuracy``, ``rate/<layer>`` as
    :meth:`EmulatorResult.rates`).
    """
    n_cores = next((s.n_cores for s in shards if s.n_cores is not None), None)
    out: dict[str, Any] = {"n_images": sum(s.n_images for s in shards),
                           "seconds": sum(s.seconds for s in shards),
                           "n_cores": n_cores}
    errors = [s.error for s in shards if s.error]
    if errors:
        out["error"] = errors[0]
        return out
    n = out["n_images"]
    n_correct = sum(s.n_correct for s in shards)
    seconds = shards[0].steps * shards[0].dt
    out["accuracy"] = n_correct / n
    for layer in shards[0].layer_spikes:
        spikes = sum(s.layer_spikes[layer] for s in shards)
        active = sum(s.layer_active[layer] for s in shards)
        out[f"rate/{layer}"] = (spikes / active) / seconds if active else 0.0
    out["spikes_per_image"] = sum(s.spikes for s in shards) / n
    out["synops_per_image"] = sum(s.synops for s in shards) / n
    out["energy_per_image_J"] = sum(s.energy_J for s in shards) / n
    out["time_per_step_s"] = sum(s.step_time_sum for s in shards) / n
    out["latency_steps"] = (sum(s.latency_sum for s in shards) / n_correct if n_correct
                            else math.nan)
    out["error"] = ""
    return out


def _config_json(config: TunedConfig) -> str:
    """One-line canonical JSON of a config (the ``config`` column)."""
    return json.dumps(config.to_dict(), separators=(",", ":"), allow_nan=False)

