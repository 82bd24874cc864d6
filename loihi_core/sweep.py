"""Sweeps: evaluate many tuned configs on the bit-exact emulator, locally or on a Dask cluster.

A sweep varies fields of a tuned config (:mod:`loihi_core.config`) over a grid and/or by
random search, evaluates every configuration on the emulator (independent mode: every
image from a zero state) over a labelled test set, and returns one table row per
configuration: its parameters, accuracy, mean rate per layer, spikes and synaptic
operations per image (energy proxies), cores used and latency.

>>> spec = load_sweep("SWEEP.json")                                   # doctest: +SKIP
>>> df = run_sweep(graph, images, labels, spec, scheduler="local-threads")  # doctest: +SKIP
>>> pareto_front(df)[["scale_firing_rates", "accuracy", "spikes_per_image"]]  # doctest: +SKIP

The SWEEP.json format (schema version 1)
----------------------------------------
::

    {"schema_version": 1,
     "base_config": {...a tuned config...} | "tuned.json" | null,
     "grid": {"scale_firing_rates": [50, 100, 200],
              "layers.conv0.scale_firing_rates": [200, 400],
              "synapse": [0.002, 0.005],
              "presentation_steps": [20, 30],
              "neuron": ["LoihiSpikingRectifiedLinear", "LoihiLIF"]},
     "random": {"n": 20, "seed": 0,
                "space": {"scale_firing_rates": {"log_uniform": [10, 1000]},
                          "synapse": {"uniform": [0.001, 0.01]},
                          "presentation_steps": {"int_uniform": [10, 50]},
                          "neuron": {"choice": ["LoihiSpikingRectifiedLinear", "LoihiLIF"]}}}}

* ``schema_version`` (optional, default 1): a newer version is refused.
* ``base_config``: the tuned config every configuration starts from: an object (the
  tuned-config JSON), a path to one (relative to the SWEEP.json file), or ``null``/absent
  for the defaults. The CLI's ``--config`` replaces it.
* **Fields** (the keys of ``grid`` and ``random.space``): the top-level tuned-config values
  ``scale_firing_rates``, ``synapse``, ``presentation_steps``, ``neuron``, ``dt``,
  ``max_to_avg_pool``, ``n_chips``, and per layer ``layers.<layer>.<field>`` with
  ``<field>`` one of ``scale_firing_rates``, ``synapse``, ``neuron``, ``on_chip``,
  ``block_shape`` (``null`` clears a layer override: automatic block shape, inherit).
  Values are validated exactly as in a tuned config (:meth:`TunedConfig.with_defaults`,
  :meth:`TunedConfig.with_layer`), and layer names against the model's neuron layers.
* ``grid``: field → non-empty list of distinct values. The grid is the Cartesian product,
  in key order with the last key varying fastest (nested loops); ``{}`` is one point, the
  base config itself.
* ``random``: ``n`` (≥ 1) samples, ``seed`` (default 0; the same document always gives the
  same samples), and ``space``: field → one distribution:
  ``{"log_uniform": [lo, hi]}`` (``0 < lo ≤ hi``), ``{"uniform": [lo, hi]}``,
  ``{"int_uniform": [lo, hi]}`` (integers, both ends included) or
  ``{"choice": [v1, v2, ...]}``. Continuous draws are rounded to 4 significant digits (so
  that configurations read well), and to integers for ``presentation_steps`` and
  ``n_chips``. Non-numeric fields take ``choice`` only.
* Both ``grid`` and ``random`` may be given: the configurations are then the grid points
  followed by the random samples (the union, not the product); a random sample sets only
  its ``space`` fields on the base config. At least one of the two is required.
* Unknown keys, duplicate keys, NaN/Infinity are refused; every problem is reported at
  once with its path (``grid.synapse[1]: expected a lowpass time constant ...``).

Metrics (one row per configuration)
-----------------------------------
* ``accuracy``: fraction of images whose output argmax at the last step equals the label
  (:attr:`EmulatorResult.predictions`).
* ``rate/<layer>``: mean firing rate in Hz over the *active* (image, neuron) pairs, i.e.
  neurons that spiked at least once during an image (:meth:`EmulatorResult.rates`), for
  every neuron layer (the off-chip input layer included).
* ``spikes_per_image``: spikes of all neuron layers (off-chip input layer included) per
  image; ``synops_per_image``: synaptic operations (weight additions) on the chip per image.
* ``n_cores``: Loihi cores the mapping uses (also given for configurations that do not
  fit, when the mapping got that far).
* ``latency_steps``: for an image classified correctly, the number of presentation steps
  after which the output argmax equals the label *and stays there* until the end of the
  presentation: ``1 + t*`` where ``t*`` is the first 0-based step index from which the
  argmax is the label at every later step. Reported as the mean over the correctly
  classified images (``NaN`` when none is). ``latency_steps × dt`` is the time to a stable
  correct answer; the value is bounded by ``presentation_steps``.
* ``error``: ``""`` for a configuration that ran, else why it did not (does not convert,
  does not fit on the chip, or a task failed after its retries). Such rows are kept with
  ``NaN`` metrics, never dropped.
* ``config``: the configuration's tuned-config JSON (one line); :func:`config_of` reads it.

Also ``index`` (configuration number), ``source`` (``grid``/``random``/``list``), one column
per swept field with the configuration's *effective* value (for a layer field, what the
layer gets after inheritance; lists and objects as JSON text), ``n_images`` and
``seconds`` (compute time summed over its tasks).

Execution
---------
Tasks are (configuration × image shard). Each task converts and maps its configuration
(cached per process, so once per configuration per worker) and emulates its shard. The
layer graph and the test set travel to every worker once (``client.scatter(...,
broadcast=True)``); no worker imports TensorFlow. Results are keyed by (configuration,
shard): each is counted exactly once whatever the retries, and rows come out in
configuration order. Backends (``scheduler=``):

* ``None``/``"local"``: an embedded :class:`distributed.LocalCluster` (worker processes
  with one thread each, scheduler on loopback, no dashboard), closed afterwards;
* ``"tcp://host:8786"``: an existing Dask cluster; or a :class:`distributed.Client`;
* ``"local-threads"``: in-process threads (no Dask). On one machine this is usually the
  fastest: the Numba kernels release the GIL, and there is no process start, JIT-cache
  load or data copy per worker;
* ``executor=``: any :class:`concurrent.futures.Executor` (thread or process pool, Dask's
  ``client.get_executor()``...).

A worker process that dies has its tasks rescheduled by Dask; a task that raises is
retried ``retries`` times. Dask workers set a per-worker ``NUMBA_CACHE_DIR`` (under the
original ``NUMBA_CACHE_DIR`` or the temp dir), seeded from this machine's Numba cache, so
that concurrent workers never write the same cache files and each compiles at most once.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import TunedConfig, load_config, strict_json_loads
from .errors import ConfigError, DataError, LoihiStudioError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

SWEEP_SCHEMA_VERSION = 1

#: Top-level tuned-config fields a sweep may vary.
TOP_FIELDS = ("scale_firing_rates", "synapse", "presentation_steps", "neuron", "dt",
              "max_to_avg_pool", "n_chips")
#: Per-layer fields (``layers.<layer>.<field>``).
LAYER_FIELDS = ("scale_firing_rates", "synapse", "neuron", "on_chip", "block_shape")
#: Fields that take numeric distributions in ``random.space`` (others: ``choice`` only).
NUMERIC_FIELDS = ("scale_firing_rates", "synapse", "presentation_steps", "dt", "n_chips")
#: Fields whose random draws are rounded to integers.
INTEGER_FIELDS = ("presentation_steps", "n_chips")
DISTRIBUTIONS = ("log_uniform", "uniform", "int_uniform", "choice")
#: A guard against typos that explode the grid (a product of long lists).
MAX_CONFIGS = 100_000

_SWEEP_KEYS = ("schema_version", "base_config", "grid", "random")
_RANDOM_KEYS = ("n", "seed", "space")


class SweepError(ConfigError):
    """A SWEEP.json document (or a sweep request) is invalid.

    ``problems`` holds one ``(json_path, message)`` pair per problem, as for tuned configs.
    """

    def __init__(self, problems: list[tuple[str, str]] | str):
        super().__init__(problems)
        lines = [f"{p}: {m}" if p else m for p, m in self.problems]
        text = lines[0] if len(lines) == 1 else (
            f"{len(lines)} problems in the sweep:\n  " + "\n  ".join(lines))
        self.args = (text,)

    def __str__(self) -> str:
        return str(self.args[0])


# =======================================================================================
# the SWEEP.json document
# =======================================================================================

@dataclass(frozen=True)
class SweepPoint:
    """One configuration of a sweep.

    Attributes
    ----------
    index
        Position in the sweep (the row index of the results).
    source
        ``"grid"``, ``"random"`` or ``"list"`` (configs given directly).
    params
        The swept fields this point sets, ``{field: value}`` (JSON values).
    config
        The full tuned config: the base with ``params`` applied.
    """

    index: int
    source: str
    params: dict[str, Any]
    config: TunedConfig


@dataclass(frozen=True)
class RandomSearch:
    """The ``random`` part of a sweep: ``n`` samples of ``space`` drawn with ``seed``."""

    n: int
    seed: int
    space: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: the base config, the grid, the random search and their points.

    Build one with :func:`load_sweep` (or :meth:`from_dict`); ``points`` are expanded and
    validated on construction, so a spec that exists can be run.
    """

    base_config: TunedConfig
    grid: dict[str, list[Any]] | None
    random: RandomSearch | None
    points: tuple[SweepPoint, ...]

    @property
    def fields(self) -> list[str]:
        """Swept fields: the grid's, then the random space's (each once)."""
        out = list(self.grid or {})
        out += [f for f in (self.random.space if self.random else {}) if f not in out]
        return out

    @property
    def configs(self) -> list[TunedConfig]:
        return [p.config for p in self.points]

    def __len__(self) -> int:
        return len(self.points)

    def to_dict(self) -> dict:
        """The SWEEP.json document (with the base config inlined)."""
        doc: dict[str, Any] = {"schema_version": SWEEP_SCHEMA_VERSION,
                               "base_config": self.base_config.to_dict()}
        if self.grid is not None:
            doc["grid"] = {k: list(v) for k, v in self.grid.items()}
        if self.random is not None:
            doc["random"] = {"n": self.random.n, "seed": self.random.seed,
                             "space": dict(self.random.space)}
        return doc

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"

    @classmethod
    def from_dict(cls, doc: Any, base_config: Any = None, root: Path | None = None) -> "SweepSpec":
        """Validate a SWEEP.json document (see the module docstring).

        Parameters
        ----------
        doc
            The parsed document.
        base_config
            A tuned config (anything :func:`load_config` takes) that replaces the document's
            ``base_config`` (the CLI's ``--config``).
        root
            Directory that a ``base_config`` path is relative to.

        Raises
        ------
        SweepError
            Listing every problem with its JSON path.
        """
        return _parse_sweep(doc, base_config, root)


def load_sweep(source: str | os.PathLike | Mapping | SweepSpec, base_config: Any = None) -> SweepSpec:
    """Load a sweep from a SWEEP.json path, a JSON string or a dict (or pass one through).

    ``base_config`` (a :class:`TunedConfig`, dict or path) replaces the document's base.

    Raises
    ------
    SweepError
        Naming every problem with its JSON path (and the file).
    """
    if isinstance(source, SweepSpec):
        if base_config is None:
            return source
        return SweepSpec.from_dict(source.to_dict(), base_config)
    if isinstance(source, Mapping):
        return SweepSpec.from_dict(source, base_config)
    text = str(source)
    if isinstance(source, os.PathLike) or not text.lstrip().startswith("{"):
        path = Path(source)
        try:
            raw = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SweepError(f"sweep file {text!r} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SweepError(f"cannot read sweep file {text!r}: {exc}") from None
        try:
            return SweepSpec.from_dict(_loads_strict(raw), base_config, root=path.parent)
        except SweepError as exc:
            raise SweepError([(p, f"{m} (in {path.name})") for p, m in exc.problems]) from None
    return SweepSpec.from_dict(_loads_strict(text), base_config)


def apply_params(base: TunedConfig, params: Mapping[str, Any]) -> TunedConfig:
    """``base`` with the swept ``{field: value}`` applied (validated like a tuned config).

    This is how every sweep point is built; the app can use it to apply a point.

    Raises
    ------
    ConfigError
        For an unknown field or an invalid value.
    """
    config = base
    for name, value in params.items():
        layer, key = _split_field(name)
        if key is None:
            raise SweepError([(name, _FIELD_HELP)])
        if layer is None:
            config = config.with_defaults(**{key: value})
        else:
            config = config.with_layer(layer, **{key: value})
    return config


def effective_value(config: TunedConfig, name: str) -> Any:
    """The value a configuration gives a swept field (after inheritance), JSON-like.

    ``layers.conv0.scale_firing_rates`` of a config that does not override it is the
    global ``scale_firing_rates``; neuron types are given by their tuned-config form.
    """
    layer, key = _split_field(name)
    if key is None:
        raise SweepError([(name, _FIELD_HELP)])
    if layer is None:
        return config.to_dict().get(key)
    settings = config.for_layer(layer)
    value = getattr(settings, key)
    if key == "neuron":
        return value.to_config()
    if key == "block_shape" and value is not None:
        return list(value)
    return value


_FIELD_HELP = (f"unknown field; a sweep varies one of {', '.join(TOP_FIELDS)}, or "
               f"layers.<layer>.<field> with <field> one of {', '.join(LAYER_FIELDS)}")


def _split_field(name: Any) -> tuple[str | None, str | None]:
    """``(layer, key)`` of a field name (``layer`` None for top-level); ``key`` None if unknown."""
    if not isinstance(name, str):
        return None, None
    if name in TOP_FIELDS:
        return None, name
    if name.startswith("layers."):
        layer, _, key = name[len("layers."):].rpartition(".")
        if layer and key in LAYER_FIELDS:
            return layer, key
    return None, None


def _loads_strict(text: str | bytes) -> Any:
    try:
        return strict_json_loads(text)
    except ValueError as exc:
        msg = str(exc)
        raise SweepError(msg if msg.startswith("not valid JSON") else f"not a valid sweep: {msg}") from None


def _dump(value: Any) -> str:
    return json.dumps(value, default=str)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_value(base: TunedConfig, name: str, value: Any, path: str, problems: list) -> bool:
    """Apply one value to ``base``; on failure append the config's messages under ``path``."""
    try:
        apply_params(base, {name: value})
    except ConfigError as exc:
        problems.extend((path, msg) for _, msg in exc.problems)
        return False
    return True


def _parse_base(value: Any, root: Path | None, problems: list) -> TunedConfig | None:
    if value is None:
        return TunedConfig()
    if isinstance(value, str):
        path = Path(value)
        if not path.is_absolute() and root is not None:
            path = root / path
        try:
            return load_config(path)
        except ConfigError as exc:
            problems.extend((f"base_config{'.' + p if p else ''}", m) for p, m in exc.problems)
            return None
    if isinstance(value, Mapping):
        try:
            return TunedConfig.from_dict(value)
        except ConfigError as exc:
            problems.extend((f"base_config{'.' + p if p else ''}", m) for p, m in exc.problems)
            return None
    problems.append(("base_config", f"expected a tuned config object, a path to one, or null, "
                     f"got {_dump(value)}"))
    return None


def _parse_grid(doc: Any, base: TunedConfig, problems: list) -> dict[str, list] | None:
    if not isinstance(doc, Mapping):
        problems.append(("grid", f"expected an object mapping fields to lists of values, got {_dump(doc)}"))
        return None
    grid: dict[str, list] = {}
    for name, values in doc.items():
        path = f"grid.{name}"
        if _split_field(name)[1] is None:
            problems.append((path, _FIELD_HELP))
            continue
        if not isinstance(values, list) or not values:
            problems.append((path, f"expected a non-empty list of values, got {_dump(values)}"))
            continue
        seen: dict[str, int] = {}
        ok = True
        for i, value in enumerate(values):
            key = json.dumps(value, sort_keys=True)
            if key in seen:
                problems.append((f"{path}[{i}]", f"{_dump(value)} repeats {path}[{seen[key]}]; "
                                 f"list each value once"))
                ok = False
                continue
            seen[key] = i
            ok &= _check_value(base, name, value, f"{path}[{i}]", problems)
        if ok:
            grid[name] = list(values)
    return grid


def _parse_distribution(name: str, doc: Any, base: TunedConfig, path: str, problems: list) -> dict | None:
    if not isinstance(doc, Mapping) or len(doc) != 1 or next(iter(doc)) not in DISTRIBUTIONS:
        problems.append((path, f"expected one distribution: {{\"log_uniform\": [lo, hi]}}, "
                         f"{{\"uniform\": [lo, hi]}}, {{\"int_uniform\": [lo, hi]}} or "
                         f"{{\"choice\": [values...]}}, got {_dump(doc)}"))
        return None
    kind, arg = next(iter(doc.items()))
    path = f"{path}.{kind}"
    key = _split_field(name)[1]
    if kind == "choice":
        if not isinstance(arg, list) or not arg:
            problems.append((path, f"expected a non-empty list of values, got {_dump(arg)}"))
            return None
        ok = True
        for i, value in enumerate(arg):
            ok &= _check_value(base, name, value, f"{path}[{i}]", problems)
        return {kind: list(arg)} if ok else None
    if key not in NUMERIC_FIELDS:
        problems.append((path, f"{name} is not numeric; use {{\"choice\": [...]}}"))
        return None
    want_int = kind == "int_uniform"
    if (not isinstance(arg, list) or len(arg) != 2
            or not all((_is_int if want_int else _is_number)(v) for v in arg)):
        what = "two integers" if want_int else "two finite numbers"
        problems.append((path, f"expected [lo, hi], {what}, got {_dump(arg)}"))
        return None
    lo, hi = arg
    if lo > hi:
        problems.append((path, f"lo must be <= hi, got [{lo}, {hi}]"))
        return None
    if kind == "log_uniform" and lo <= 0:
        problems.append((path, f"a log-uniform range needs 0 < lo, got [{lo}, {hi}]"))
        return None
    ok = True
    for i, end in enumerate((lo, hi)):
        value = int(round(end)) if key in INTEGER_FIELDS else end
        ok &= _check_value(base, name, value, f"{path}[{i}]", problems)
    return {kind: [lo, hi]} if ok else None


def _parse_random(doc: Any, base: TunedConfig, problems: list) -> RandomSearch | None:
    if not isinstance(doc, Mapping):
        problems.append(("random", f"expected an object {{\"n\": ..., \"seed\": ..., \"space\": "
                         f"{{...}}}}, got {_dump(doc)}"))
        return None
    for key in doc:
        if key not in _RANDOM_KEYS:
            problems.append((f"random.{key}", f"unknown field; expected one of {', '.join(_RANDOM_KEYS)}"))
    n, seed, space = doc.get("n"), doc.get("seed", 0), doc.get("space")
    ok = True
    if not _is_int(n) or not 1 <= n <= MAX_CONFIGS:
        problems.append(("random.n", f"expected the number of samples, an integer from 1 to "
                         f"{MAX_CONFIGS}, got {_dump(n)}"))
        ok = False
    if not _is_int(seed) or seed < 0:
        problems.append(("random.seed", f"expected an integer >= 0, got {_dump(seed)}"))
        ok = False
    if not isinstance(space, Mapping) or not space:
        problems.append(("random.space", f"expected a non-empty object mapping fields to "
                         f"distributions, got {_dump(space)}"))
        return None
    parsed: dict[str, dict] = {}
    for name, dist in space.items():
        path = f"random.space.{name}"
        if _split_field(name)[1] is None:
            problems.append((path, _FIELD_HELP))
            ok = False
            continue
        d = _parse_distribution(name, dist, base, path, problems)
        if d is None:
            ok = False
        else:
            parsed[name] = d
    return RandomSearch(n=n, seed=seed, space=parsed) if ok else None


def _round_sig(value: float, digits: int = 4) -> float:
    return float(f"{value:.{digits}g}")


def sample_random(random: RandomSearch) -> list[dict[str, Any]]:
    """The ``n`` parameter sets of a random search (deterministic for its seed).

    Each sample draws every field of ``space`` in the order given, from one
    ``numpy.random.default_rng(seed)`` stream.
    """
    rng = np.random.default_rng(random.seed)
    samples = []
    for _ in range(random.n):
        params: dict[str, Any] = {}
        for name, dist in random.space.items():
            kind, arg = next(iter(dist.items()))
            key = _split_field(name)[1]
            if kind == "choice":
                value = arg[int(rng.integers(len(arg)))]
            elif kind == "int_uniform":
                value = int(rng.integers(arg[0], arg[1], endpoint=True))
            else:
                lo, hi = float(arg[0]), float(arg[1])
                x = (math.exp(rng.uniform(math.log(lo), math.log(hi))) if kind == "log_uniform"
                     else rng.uniform(lo, hi))
                value = min(max(_round_sig(x), lo), hi)
                if key in INTEGER_FIELDS:
                    value = int(round(value))
            params[name] = value
        samples.append(params)
    return samples


def _parse_sweep(doc: Any, base_override: Any, root: Path | None) -> SweepSpec:
    problems: list[tuple[str, str]] = []
    if not isinstance(doc, Mapping):
        raise SweepError(f"a sweep is a JSON object with \"grid\" and/or \"random\", got "
                         f"{type(doc).__name__}")
    version = doc.get("schema_version", SWEEP_SCHEMA_VERSION)
    if not _is_int(version) or version < 1:
        problems.append(("schema_version", f"expected a positive integer, got {_dump(version)}"))
    elif version > SWEEP_SCHEMA_VERSION:
        raise SweepError([("schema_version", f"this sweep uses schema version {version}, but this "
                           f"Loihi Studio reads up to version {SWEEP_SCHEMA_VERSION}; upgrade "
                           f"Loihi Studio")])
    for key in doc:
        if key not in _SWEEP_KEYS:
            problems.append((str(key), f"unknown field; expected one of {', '.join(_SWEEP_KEYS)}"))
    if "grid" not in doc and "random" not in doc:
        problems.append(("", "a sweep needs \"grid\" and/or \"random\" (see the SWEEP.json format)"))
    if base_override is not None:
        try:
            base = load_config(base_override)
        except ConfigError as exc:
            raise SweepError([(f"--config{': ' + p if p else ''}", m)
                              for p, m in exc.problems]) from None
    else:
        base = _parse_base(doc.get("base_config"), root, problems)
    if base is None:
        raise SweepError(problems)
    grid = _parse_grid(doc["grid"], base, problems) if "grid" in doc else None
    random = _parse_random(doc["random"], base, problems) if "random" in doc else None
    if problems:
        raise SweepError(problems)

    n_grid = math.prod(len(v) for v in grid.values()) if grid is not None else 0
    n_total = n_grid + (random.n if random else 0)
    if n_total > MAX_CONFIGS:
        raise SweepError([("grid" if n_grid > MAX_CONFIGS else "", f"{n_total} configurations "
                           f"exceed the limit of {MAX_CONFIGS}; shorten the value lists")])
    points: list[SweepPoint] = []
    sets: list[tuple[str, dict]] = []
    if grid is not None:
        names = list(grid)
        sets += [("grid", dict(zip(names, combo)))
                 for combo in itertools.product(*(grid[k] for k in names))]
    if random is not None:
        sets += [("random", params) for params in sample_random(random)]
    for source, params in sets:
        try:
            config = apply_params(base, params)
        except ConfigError as exc:
            problems += [(source, f"the combination {_dump(params)} is invalid: {m}")
                         for _, m in exc.problems]
            continue
        points.append(SweepPoint(index=len(points), source=source, params=params, config=config))
    if problems:
        raise SweepError(problems[:20])
    return SweepSpec(base_config=base, grid=grid, random=random, points=tuple(points))


def check_against_model(spec: SweepSpec, model: Any) -> None:
    """Refuse swept ``layers.<layer>.*`` fields that name no neuron layer of ``model``.

    Settings under other names would fail every configuration the same way; this reports
    it once, up front, with the field's path and the model's neuron layers.
    """
    from .convert import neuron_layer_shapes

    neuron_layers = list(neuron_layer_shapes(model))
    problems = []
    for part, fields in (("grid", spec.grid or {}),
                         ("random.space", spec.random.space if spec.random else {})):
        for name in fields:
            layer, _ = _split_field(name)
            if layer is not None and layer not in neuron_layers:
                problems.append((f"{part}.{name}", f"the model has no neuron layer {layer!r}; its "
                                 f"neuron layers are: {', '.join(neuron_layers)}"))
    if problems:
        raise SweepError(problems)


# =======================================================================================
# evaluating one (configuration, shard)
# =======================================================================================

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
    from .convert import convert
    from .emulator import Emulator
    from .mapping import map_to_chip

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
    layer_spikes = {k: int(v.sum()) for k, v in result.spike_counts.items()}
    layer_active = {k: int(np.count_nonzero(v)) for k, v in result.spike_counts.items()}
    return ShardStats(
        n_images=n, n_correct=int(correct.sum()),
        latency_sum=int(np.nansum(latency[correct])), spikes=sum(layer_spikes.values()),
        synops=int(result.synaptic_ops.sum()), layer_spikes=layer_spikes,
        layer_active=layer_active, steps=int(result.steps), dt=float(result.dt),
        n_cores=prepared.n_cores, seconds=time.perf_counter() - t0)


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
    out["latency_steps"] = (sum(s.latency_sum for s in shards) / n_correct if n_correct
                            else math.nan)
    out["error"] = ""
    return out


def _config_json(config: TunedConfig) -> str:
    """One-line canonical JSON of a config (the ``config`` column)."""
    return json.dumps(config.to_dict(), separators=(",", ":"), allow_nan=False)


# =======================================================================================
# Dask workers
# =======================================================================================

_WORKER_LOCK = threading.Lock()
_WORKER_READY = False
#: NUMBA_CACHE_DIR as this process started (the per-worker dir goes below it).
_ORIGINAL_NUMBA_CACHE_DIR = os.environ.get("NUMBA_CACHE_DIR")


def _kernels_file() -> Path:
    from . import emulator

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

    from . import __version__

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


# =======================================================================================
# running a sweep
# =======================================================================================

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


def run_sweep(model: Any, images: np.ndarray, labels: np.ndarray,
              sweep: SweepSpec | Mapping | str | os.PathLike | Sequence[TunedConfig], *,
              base_config: Any = None, scheduler: Any = None, executor: Any = None,
              n_workers: int | None = None, shard_size: int = 64, retries: int = 2,
              numba_threads: int | None = None,
              progress: Callable[[SweepProgress], None] | None = None) -> "pd.DataFrame":
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

    Returns
    -------
    pandas.DataFrame
        One row per configuration, in sweep order (columns: see the module docstring).
        ``df.attrs`` holds ``n_images``, ``shard_size``, ``backend``, ``wall_seconds``.

    Raises
    ------
    SweepError, ConfigError, DataError, ConversionError
        Before any task runs: an invalid sweep, layer fields the model lacks, a base
        config that does not convert, images or labels that do not fit the model.
    """
    from .convert import convert
    from .data import check_images, check_labels
    from .graph import load_model

    t_start = time.perf_counter()
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

    shards = _shards(len(images), int(shard_size))
    tasks = [_Task(p.index, s, a, b) for p in spec.points for s, (a, b) in enumerate(shards)]
    configs_json = [_config_json(p.config) for p in spec.points]
    token = uuid.uuid4().hex
    collector = _Collector(spec, len(shards), progress, t_start)

    with _backend(scheduler, executor, n_workers, numba_threads) as backend:
        for task, outcome in backend.run(graph, images, labels, tasks, configs_json, token,
                                         int(retries)):
            collector.add(task, outcome)
        name = backend.name
    df = collector.frame()
    df.attrs.update(n_images=len(images), shard_size=int(shard_size), backend=name,
                    wall_seconds=time.perf_counter() - t_start, model=graph.source,
                    model_sha256=graph.sha256)
    return df


class _Collector:
    """Keeps each (configuration, shard) result exactly once and builds the rows."""

    def __init__(self, spec: SweepSpec, n_shards: int, progress, t_start: float):
        self.spec = spec
        self.n_shards = n_shards
        self.progress = progress
        self.t_start = t_start
        self.results: dict[tuple[int, int], ShardStats | BaseException] = {}
        self.rows: dict[int, dict] = {}
        self.per_config: dict[int, int] = {}
        self.duplicates = 0
        self.total = len(spec.points) * n_shards

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

    def frame(self) -> "pd.DataFrame":
        import pandas as pd

        for index in range(len(self.spec.points)):  # a backend that lost tasks: say so
            if index not in self.rows:
                self.rows[index] = self._row(index)
        rows = [self.rows[i] for i in range(len(self.spec.points))]
        rate_cols: list[str] = []
        for row in rows:
            rate_cols += [k for k in row if k.startswith("rate/") and k not in rate_cols]
        columns = (["index", "source"] + list(self.spec.fields) + ["accuracy"] + rate_cols
                   + ["spikes_per_image", "synops_per_image", "n_cores", "latency_steps",
                      "n_images", "seconds", "error", "config"])
        df = pd.DataFrame(rows).reindex(columns=columns)
        df["error"] = df["error"].fillna("").astype(str)
        df["n_cores"] = df["n_cores"].astype("Int64")
        for col in ["accuracy", *rate_cols, "spikes_per_image", "synops_per_image",
                    "latency_steps"]:
            df[col] = df[col].astype(float)
        df.attrs["duplicates_ignored"] = self.duplicates
        return df


# -- backends ------------------------------------------------------------------------------

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


def _backend(scheduler: Any, executor: Any, n_workers: int | None,
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
        try:
            client = distributed.Client(scheduler, timeout="10s")
        except OSError as exc:
            raise SweepError([("scheduler", f"cannot reach the Dask scheduler at {scheduler!r}: "
                               f"{exc}")]) from None
        return _DaskBackend(client, numba_threads, own_client=True, name=f"dask {scheduler}")
    raise SweepError([("scheduler", f"expected None or 'local' (a local Dask cluster), "
                       f"'local-threads', a scheduler address such as 'tcp://host:8786', or a "
                       f"distributed.Client; got {scheduler!r}")])


# =======================================================================================
# results
# =======================================================================================

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


__all__ = ["SweepError", "SweepPoint", "SweepSpec", "RandomSearch", "SweepProgress",
           "ShardStats", "load_sweep", "apply_params", "effective_value", "sample_random",
           "check_against_model", "evaluate_shard", "combine_shards", "latency_steps",
           "run_sweep", "save_results", "load_results", "config_of", "pareto_front",
           "best_row", "describe_params", "worker_numba_cache_dir", "worker_info", "SWEEP_SCHEMA_VERSION",
           "TOP_FIELDS", "LAYER_FIELDS", "DISTRIBUTIONS", "MAX_CONFIGS"]
