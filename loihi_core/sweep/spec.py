"""The SWEEP.json document: fields, validation, expansion into configurations.

:func:`load_sweep` parses and validates a document (every problem reported at once with
its JSON path) and expands it into :class:`SweepPoint` configurations;
:func:`~.checks.check_against_model` then checks it against the model. The format is
described in :mod:`loihi_core.sweep`.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import TunedConfig, load_config, strict_json_loads
from ..errors import ConfigError

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
    if isinstance(source, (bytes, bytearray)):
        try:
            source = bytes(source).decode("utf-8")
        except UnicodeDecodeError:
            raise SweepError("a sweep given as bytes must be UTF-8 JSON text") from None
    if not isinstance(source, (str, os.PathLike)):
        raise SweepError(f"a sweep is a JSON object with \"grid\" and/or \"random\" (a dict), "
                         f"JSON text or a SWEEP.json path; got {type(source).__name__}")
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
