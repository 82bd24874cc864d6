"""The tuned-config JSON (schema version 1): the single description of a tuning.

The app exports and imports it, the CLI takes it with ``--config``, the API with
``config=``. Top-level values are defaults; ``layers`` overrides them per Keras layer::

    {"schema_version": 1, "dt": 0.001, "presentation_steps": 30,
     "neuron": "LoihiSpikingRectifiedLinear",
     "scale_firing_rates": 100, "synapse": 0.005,
     "layers": {"to-spikes": {"on_chip": false},
                "conv0": {"scale_firing_rates": 400, "block_shape": [16, 16, 4]}}}

Defaults follow NengoDL's Converter and NengoLoihi (``scale_firing_rates`` 1, no synapse,
LoihiSpikingRectifiedLinear neurons, the first neuron layer off chip, the others on chip),
so that numbers carry over from existing notebooks.

Loading validates everything at once and reports every problem with its JSON path
(``layers.conv0.block_shape: expected 3 positive ints for a (13, 13, 32) layer, got [0, 4]``).
Unknown keys (typos such as ``blok_shape``), duplicate keys, NaN/Infinity and a newer
``schema_version`` are refused. ``load → save → load`` is the identity, and ``save`` writes
canonical bytes (sorted top-level keys, layers in the order given).
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .neurons import LoihiSpikingRectifiedLinear, NeuronType, neuron_from_config

SCHEMA_VERSION = 1

_TOP_KEYS = ("schema_version", "dt", "presentation_steps", "neuron", "scale_firing_rates",
             "synapse", "max_to_avg_pool", "n_chips", "input_range", "layers")

#: Bounds that keep a config from asking for absurd work or registers (a
#: ``presentation_steps`` of 1e9 would allocate ~75 GiB). Loihi models use dt = 1 ms,
#: a few dozen steps per image and scales of 1 to a few thousand.
MIN_DT, MAX_DT = 1e-6, 1.0
MAX_PRESENTATION_STEPS = 10_000
MIN_SCALE, MAX_SCALE = 1e-6, 1e6
_LAYER_KEYS = ("scale_firing_rates", "block_shape", "on_chip", "neuron", "synapse")


class _Unset:
    """Marker for "not set in this layer's overrides" (``None`` means "no synapse")."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __reduce__(self):
        return (_Unset, ())


UNSET: Any = _Unset()


@dataclass(frozen=True)
class LayerOverrides:
    """Per-layer values that override the top-level defaults; unset fields inherit."""

    scale_firing_rates: float | None = None
    block_shape: tuple[int, ...] | None = None
    on_chip: bool | None = None
    neuron: NeuronType | None = None
    synapse: Any = UNSET  # float, None (= no filter) or UNSET (= inherit)

    def to_dict(self) -> dict:
        out: dict[str, Any] = {}
        if self.scale_firing_rates is not None:
            out["scale_firing_rates"] = self.scale_firing_rates
        if self.block_shape is not None:
            out["block_shape"] = list(self.block_shape)
        if self.on_chip is not None:
            out["on_chip"] = self.on_chip
        if self.neuron is not None:
            out["neuron"] = self.neuron.to_config()
        if self.synapse is not UNSET:
            out["synapse"] = self.synapse
        return out

    @property
    def is_empty(self) -> bool:
        return not self.to_dict()


@dataclass(frozen=True)
class LayerSettings:
    """The effective settings of one layer (defaults with its overrides applied).

    ``on_chip`` is ``None`` when the config does not say; the converter then applies the
    default split (first neuron layer off chip, the rest on chip).
    """

    scale_firing_rates: float
    neuron: NeuronType
    synapse: float | None
    on_chip: bool | None
    block_shape: tuple[int, ...] | None


@dataclass(frozen=True)
class TunedConfig:
    """A tuning of a converted network (see the module docstring for the JSON form)."""

    dt: float = 0.001
    presentation_steps: int = 30
    neuron: NeuronType = field(default_factory=LoihiSpikingRectifiedLinear)
    scale_firing_rates: float = 1.0
    synapse: float | None = None
    max_to_avg_pool: bool = True
    n_chips: int | None = None
    layers: Mapping[str, LayerOverrides] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION
    #: ``(low, high)`` of the inputs the model was trained on (``None``: not recorded);
    #: data outside it are refused (:mod:`loihi_core.inputs`).
    input_range: tuple[float, float] | None = None

    # -- reading -------------------------------------------------------------------------
    def for_layer(self, name: str) -> LayerSettings:
        """Effective settings of layer ``name`` (defaults where the layer sets nothing)."""
        o = self.layers.get(name, LayerOverrides())
        return LayerSettings(
            scale_firing_rates=(self.scale_firing_rates if o.scale_firing_rates is None
                                else o.scale_firing_rates),
            neuron=self.neuron if o.neuron is None else o.neuron,
            synapse=self.synapse if o.synapse is UNSET else o.synapse,
            on_chip=o.on_chip,
            block_shape=o.block_shape,
        )

    # -- editing (immutable: every edit returns a new config) ------------------------------
    def with_layer(self, name: str, **changes: Any) -> "TunedConfig":
        """A copy with layer ``name``'s overrides updated (``block_shape=None`` clears it).

        Values are validated like the JSON; a bad value raises :class:`ConfigError`.
        """
        current = self.layers.get(name, LayerOverrides()).to_dict()
        for key, value in changes.items():
            if key not in _LAYER_KEYS:
                raise ConfigError([(f"layers.{name}", f"unknown field {key!r}; expected one of "
                                    f"{', '.join(_LAYER_KEYS)}")])
            if isinstance(value, NeuronType):
                value = value.to_config()
            if isinstance(value, tuple):
                value = list(value)
            if value is None and key != "synapse":
                current.pop(key, None)
            else:
                current[key] = value
        problems: list[tuple[str, str]] = []
        overrides = _parse_layer(current, f"layers.{name}", problems)
        if problems:
            raise ConfigError(problems)
        layers = dict(self.layers)
        if overrides.is_empty:
            layers.pop(name, None)
        else:
            layers[name] = overrides
        return replace(self, layers=layers)

    def with_defaults(self, **changes: Any) -> "TunedConfig":
        """A copy with top-level values changed, validated like the JSON."""
        doc = self.to_dict()
        for key, value in changes.items():
            if isinstance(value, NeuronType):
                value = value.to_config()
            doc[key] = value
        return TunedConfig.from_dict(doc)

    # -- validation against a model ---------------------------------------------------------
    def validate_for(self, layer_shapes: Mapping[str, tuple[int, ...]],
                     neuron_layers: Collection[str] | None = None) -> None:
        """Check that every configured layer exists and its block shape fits its shape.

        Parameters
        ----------
        layer_shapes
            Output shape (without batch axis) of every layer of the model, by Keras name.
        neuron_layers
            Names of the layers that become neurons; ``block_shape``, ``neuron`` and
            ``scale_firing_rates`` only make sense there. ``None`` skips that check.

        Raises
        ------
        ConfigError
            Listing every problem with its JSON path.
        """
        problems: list[tuple[str, str]] = []
        known = ", ".join(layer_shapes) or "(none)"
        for name, o in self.layers.items():
            path = f"layers.{name}"
            if name not in layer_shapes:
                problems.append((path, f"the model has no layer {name!r}; its layers are: {known}"))
                continue
            if neuron_layers is not None and name not in neuron_layers:
                bad = [k for k in ("scale_firing_rates", "block_shape", "neuron", "on_chip")
                       if k in o.to_dict()]
                if bad:
                    problems.append((path, f"{name!r} has no nonlinearity, so it has no neurons "
                                     f"to set {', '.join(bad)} on; neuron layers are: "
                                     f"{', '.join(neuron_layers)}"))
            shape = tuple(layer_shapes[name])
            if o.block_shape is not None and len(o.block_shape) != len(shape):
                problems.append((f"{path}.block_shape",
                                 f"expected {len(shape)} positive ints for a {shape} layer, "
                                 f"got {list(o.block_shape)}"))
        if problems:
            raise ConfigError(problems)

    # -- (de)serialisation ----------------------------------------------------------------
    def to_dict(self) -> dict:
        doc: dict[str, Any] = {
            "schema_version": self.schema_version,
            "dt": self.dt,
            "presentation_steps": self.presentation_steps,
            "neuron": self.neuron.to_config(),
            "scale_firing_rates": self.scale_firing_rates,
            "synapse": self.synapse,
            "max_to_avg_pool": self.max_to_avg_pool,
        }
        if self.n_chips is not None:
            doc["n_chips"] = self.n_chips
        if self.input_range is not None:
            doc["input_range"] = list(self.input_range)
        doc["layers"] = {name: o.to_dict() for name, o in self.layers.items()}
        return doc

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def from_dict(cls, doc: Any) -> "TunedConfig":
        problems: list[tuple[str, str]] = []
        config = _parse_top(doc, problems)
        if problems or config is None:
            raise ConfigError(problems or [("", "not a tuned config")])
        return config

    @classmethod
    def from_json(cls, text: str | bytes) -> "TunedConfig":
        return cls.from_dict(_loads_strict(text))


def load_config(source: str | Path | Mapping | TunedConfig | None) -> TunedConfig:
    """Load a tuned config from a path, a JSON string, a dict, or pass one through.

    ``None`` gives the defaults. Raises :class:`ConfigError` naming every problem (also
    for a source of another type, e.g. a list).
    """
    if source is None:
        return TunedConfig()
    if not isinstance(source, (TunedConfig, Mapping, str, bytes, Path)):
        raise ConfigError([("", f"expected a tuned config: a path to a .json file, JSON text, a "
                            f"dict or a TunedConfig, got {type(source).__name__}")])
    if isinstance(source, TunedConfig):
        return source
    if isinstance(source, Mapping):
        return TunedConfig.from_dict(source)
    if isinstance(source, Path) or (isinstance(source, str) and not source.lstrip().startswith(("{", "["))):
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError([("", f"config file {str(path)!r} does not exist")]) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError([("", f"cannot read config file {str(path)!r}: {exc}")]) from None
        try:
            return TunedConfig.from_json(text)
        except ConfigError as exc:
            raise ConfigError([(p, f"{m} (in {path.name})" if not p else m)
                               for p, m in exc.problems]) from None
    return TunedConfig.from_json(source)


# ---------------------------------------------------------------------------------------
# parsing helpers: each appends (json_path, message) to ``problems`` instead of raising,
# so that one load reports everything that is wrong.
# ---------------------------------------------------------------------------------------

def _reject_constant(name: str):
    raise ValueError(f"{name} is not allowed (use a finite number)")


def _no_duplicates(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def strict_json_loads(text: str | bytes) -> Any:
    """``json.loads`` that refuses duplicate keys and NaN/Infinity.

    Raises ``ValueError`` with a one-line reason (also for malformed JSON), so that the
    tuned-config and sweep loaders can report it under their own error class.
    """
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise ValueError("not valid JSON: nested too deeply") from None


def _loads_strict(text: str | bytes) -> Any:
    try:
        return strict_json_loads(text)
    except ValueError as exc:
        msg = str(exc)
        raise ConfigError([("", msg if msg.startswith("not valid JSON")
                                else f"not a valid tuned config: {msg}")]) from None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _positive(value: Any, path: str, problems: list, what: str = "a positive number") -> float | None:
    if not _is_number(value) or value <= 0:
        problems.append((path, f"expected {what}, got {json.dumps(value, default=str)}"))
        return None
    return float(value)


def _scale(value: Any, path: str, problems: list) -> float | None:
    scale = _positive(value, path, problems, "a positive number (scale_firing_rates > 0)")
    if scale is not None and not MIN_SCALE <= scale <= MAX_SCALE:
        problems.append((path, f"scale_firing_rates {scale:g} is out of bounds ({MIN_SCALE:g} to "
                         f"{MAX_SCALE:g}); typical scales are 1 to a few thousand"))
        return None
    return scale


def _synapse(value: Any, path: str, problems: list) -> Any:
    if value is None:
        return None
    if not _is_number(value) or value < 0:
        problems.append((path, "expected a lowpass time constant in seconds (a number >= 0) "
                         f"or null for no filter, got {json.dumps(value, default=str)}"))
        return UNSET
    return None if value == 0 else float(value)


def _neuron(value: Any, path: str, problems: list) -> NeuronType | None:
    try:
        return neuron_from_config(value)
    except (ValueError, TypeError) as exc:
        problems.append((path, str(exc)))
        return None


def _unknown_keys(doc: Mapping, allowed: tuple[str, ...], path: str, problems: list) -> None:
    for key in doc:
        if key not in allowed:
            where = f"{path}.{key}" if path else str(key)
            problems.append((where, f"unknown field; expected one of {', '.join(allowed)}"))


def _parse_layer(doc: Any, path: str, problems: list) -> LayerOverrides:
    if not isinstance(doc, Mapping):
        problems.append((path, f"expected an object of layer settings, got {json.dumps(doc, default=str)}"))
        return LayerOverrides()
    _unknown_keys(doc, _LAYER_KEYS, path, problems)
    kwargs: dict[str, Any] = {}
    if "scale_firing_rates" in doc:
        kwargs["scale_firing_rates"] = _scale(doc["scale_firing_rates"], f"{path}.scale_firing_rates",
                                              problems)
    if "block_shape" in doc:
        bs = doc["block_shape"]
        if bs is not None:
            if (not isinstance(bs, list) or not bs
                    or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in bs)):
                problems.append((f"{path}.block_shape", "expected a list of positive ints "
                                 f"(rows, cols, channels) or (n,), or null for automatic, got "
                                 f"{json.dumps(bs, default=str)}"))
            else:
                kwargs["block_shape"] = tuple(bs)
    if "on_chip" in doc:
        if not isinstance(doc["on_chip"], bool):
            problems.append((f"{path}.on_chip", f"expected true or false, got {json.dumps(doc['on_chip'], default=str)}"))
        else:
            kwargs["on_chip"] = doc["on_chip"]
    if "neuron" in doc:
        kwargs["neuron"] = _neuron(doc["neuron"], f"{path}.neuron", problems)
    if "synapse" in doc:
        kwargs["synapse"] = _synapse(doc["synapse"], f"{path}.synapse", problems)
    return LayerOverrides(**kwargs)


def _parse_top(doc: Any, problems: list) -> TunedConfig | None:
    if not isinstance(doc, Mapping):
        problems.append(("", f"a tuned config is a JSON object, got {type(doc).__name__}"))
        return None
    version = doc.get("schema_version")
    if version is None:
        problems.append(("schema_version", f"missing; add \"schema_version\": {SCHEMA_VERSION}"))
    elif not isinstance(version, int) or isinstance(version, bool) or version < 1:
        problems.append(("schema_version", f"expected a positive integer, got {json.dumps(version, default=str)}"))
    elif version > SCHEMA_VERSION:
        problems.append(("schema_version", f"this file uses schema version {version}, but this "
                         f"Loihi Studio reads up to version {SCHEMA_VERSION}; upgrade Loihi Studio"))
        return None
    _unknown_keys(doc, _TOP_KEYS, "", problems)
    kwargs: dict[str, Any] = {}
    if "dt" in doc:
        dt = _positive(doc["dt"], "dt", problems, "a time step in seconds (> 0)")
        if dt is not None and not MIN_DT <= dt <= MAX_DT:
            problems.append(("dt", f"a time step of {dt:g} s is surely a mistake (allowed "
                             f"{MIN_DT:g} to {MAX_DT:g} s); Loihi models use 0.001"))
            dt = None
        kwargs["dt"] = dt
    if "presentation_steps" in doc:
        ps = doc["presentation_steps"]
        if not isinstance(ps, int) or isinstance(ps, bool) or ps < 1:
            problems.append(("presentation_steps", f"expected a positive integer, got {json.dumps(ps, default=str)}"))
        elif ps > MAX_PRESENTATION_STEPS:
            problems.append(("presentation_steps", f"{ps} steps per image is too many (at most "
                             f"{MAX_PRESENTATION_STEPS:,}; Loihi models use a few dozen)"))
        else:
            kwargs["presentation_steps"] = ps
    if "neuron" in doc:
        kwargs["neuron"] = _neuron(doc["neuron"], "neuron", problems)
    if "scale_firing_rates" in doc:
        kwargs["scale_firing_rates"] = _scale(doc["scale_firing_rates"], "scale_firing_rates", problems)
    if "synapse" in doc:
        kwargs["synapse"] = _synapse(doc["synapse"], "synapse", problems)
    if "max_to_avg_pool" in doc:
        if not isinstance(doc["max_to_avg_pool"], bool):
            problems.append(("max_to_avg_pool", "expected true or false"))
        else:
            kwargs["max_to_avg_pool"] = doc["max_to_avg_pool"]
    if "n_chips" in doc and doc["n_chips"] is not None:
        nc = doc["n_chips"]
        if not isinstance(nc, int) or isinstance(nc, bool) or not 1 <= nc <= 32:
            problems.append(("n_chips", f"expected a board size of 1 to 32 chips, got {json.dumps(nc, default=str)}"))
        else:
            kwargs["n_chips"] = nc
    if "input_range" in doc and doc["input_range"] is not None:
        ir = doc["input_range"]
        if (not isinstance(ir, list) or len(ir) != 2 or not all(_is_number(v) for v in ir)
                or not ir[0] < ir[1]):
            problems.append(("input_range", "expected [low, high], two finite numbers with low < "
                             f"high (the range of the model's training inputs, e.g. [0, 1]), got "
                             f"{json.dumps(ir, default=str)}"))
        else:
            kwargs["input_range"] = (float(ir[0]), float(ir[1]))
    layers: dict[str, LayerOverrides] = {}
    raw_layers = doc.get("layers", {})
    if not isinstance(raw_layers, Mapping):
        problems.append(("layers", "expected an object mapping Keras layer names to settings"))
    else:
        for name, sub in raw_layers.items():
            overrides = _parse_layer(sub, f"layers.{name}", problems)
            if not overrides.is_empty:
                layers[name] = overrides
    kwargs["layers"] = layers
    if problems:
        return None
    return TunedConfig(**kwargs)
