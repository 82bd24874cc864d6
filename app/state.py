"""Per-session dashboard state: the tuning as ``param`` objects, mirrored to a TunedConfig.

One :class:`StudioState` exists per browser session (``create_app`` builds a new one), so
two users never see each other's changes. It holds

* the loaded :class:`~app.data.ModelBundle` (model, data, starting config);
* one :class:`LayerTuning` per neuron layer, whose parameters the widgets edit;
* ``config``: the last *valid* :class:`loihi_core.TunedConfig` built from them, with an
  undo/redo history, export and import;
* the results of the last computation (network, chip, emulation) and the problems found,
  each tagged with where the UI should show it.

The state never runs anything slow by itself: a change bumps ``generation`` and calls
``on_request`` (the session's runner computes off the event loop, latest wins) or, with
``auto_compute``, computes synchronously (what the unit tests use). Results of an older
generation are dropped by :meth:`accept`. A config that fails keeps the previous results
on screen, with the problem next to its cause.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import param

import loihi_core
from loihi_core import TunedConfig
from loihi_core.errors import ConfigError, LoihiStudioError
from loihi_core.neurons import NEURON_TYPES, neuron_from_config

from . import pipeline
from .data import DataError, ModelBundle
from .pipeline import ChipStage, EmulationStage, Evaluation, Failure, NetworkStage, Problem

#: Range of the scale slider (log10), wide enough for any sensible network.
SCALE_BOUNDS = (1e-3, 1e6)
UNDO_DEPTH = 200
#: Problems of actions that concern the config as it was: they go when the config changes.
CONFIG_BOUND_AREAS = ("run", "calibration", "blocks", "export", "import", "sweep")
_LAYER_FIELDS = ("scale_firing_rates", "block_shape", "neuron", "synapse", "on_chip")


def parse_block_shape(text: str | None, shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """``"16, 16, 4"`` → ``(16, 16, 4)``; empty or ``auto`` → ``None`` (automatic).

    Raises
    ------
    ValueError
        Naming what is wrong, with the layer's shape (the entry is rejected as typed).
    """
    text = (text or "").strip().strip("()[]").strip()
    if not text or text.lower() == "auto":
        return None
    parts = [p for p in text.replace("x", ",").replace("×", ",").replace(" ", ",").split(",") if p]
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError(f"block shape {text!r}: expected {len(shape)} positive integers "
                         f"such as {', '.join(str(max(1, s // 2)) for s in shape)}") from None
    if len(values) != len(shape) or any(v < 1 for v in values):
        raise ValueError(f"block shape {text!r}: expected {len(shape)} positive integers for a "
                         f"{' × '.join(map(str, shape))} layer, got {len(values)}"
                         + ("" if all(v > 0 for v in values) else " with a value < 1"))
    return values


def fit_block_shape(values: tuple[int, ...] | None, shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """``values`` clipped to the layer's ``shape`` (a tile cannot be larger than its layer;
    the mapper clips it the same way)."""
    if values is None:
        return None
    return tuple(min(int(v), int(s)) for v, s in zip(values, shape))


def format_block_shape(block_shape: tuple[int, ...] | None) -> str:
    return "" if block_shape is None else ", ".join(str(v) for v in block_shape)


def default_on_chip(fed_by_input: bool, neuron: str) -> bool:
    """The converter's default placement: the layers fed by the input off chip (they turn
    it into spikes), the rest on chip (unless its neuron type cannot run on Loihi)."""
    return not fed_by_input and bool(NEURON_TYPES[neuron].on_chip_capable)


class LayerTuning(param.Parameterized):
    """The settings of one neuron layer, as the widgets edit them.

    Values are effective settings (defaults already applied); :meth:`StudioState.to_config`
    writes only those that differ from the config's defaults.
    """

    layer = param.String(default="", constant=True, doc="Keras layer name")
    shape = param.Parameter(default=(1,), constant=True, doc="output shape (no batch axis)")
    index = param.Integer(default=0, constant=True, doc="position among the neuron layers")
    inputs = param.List(default=[], constant=True,
                        doc="the layers (or the model input) its connections come from")
    fed_by_input = param.Boolean(default=False, constant=True,
                                 doc="every connection comes from the model input")
    scale_firing_rates = param.Number(default=1.0, bounds=SCALE_BOUNDS,
                                      doc="multiplies the input gain, divides the output amplitude")
    block_shape = param.Parameter(default=None, doc="per-core tile of the layer; None = automatic")
    neuron = param.Selector(default="LoihiSpikingRectifiedLinear", objects=list(NEURON_TYPES))
    neuron_params = param.Dict(default={}, doc="non-default neuron parameters (tau_rc ...)")
    synapse = param.Number(default=None, allow_None=True, bounds=(0, 1.0),
                           doc="lowpass tau (s) on connections out of this layer; None = none")
    on_chip = param.Boolean(default=True)

    @property
    def n_neurons(self) -> int:
        return int(np.prod(self.shape))

    def neuron_config(self) -> Any:
        """The tuned-config form of the neuron (a name, or an object with parameters)."""
        return {"type": self.neuron, **self.neuron_params} if self.neuron_params else self.neuron


class StudioState(param.Parameterized):
    """Everything one browser session tunes and sees (see the module docstring)."""

    bundle = param.Parameter(default=None, doc="the loaded ModelBundle")
    layers = param.Dict(default={}, doc="layer name → LayerTuning, in network order")
    config = param.ClassSelector(class_=TunedConfig, default=None, allow_None=True,
                                 doc="the last valid config built from the tuning")

    target_rate = param.Number(default=200.0, bounds=(1.0, 5000.0), doc="Hz, for auto-scale and the plots")
    dt = param.Number(default=0.001, bounds=(1e-5, 0.1))
    presentation_steps = param.Integer(default=30, bounds=(1, 1000))
    n_images = param.Integer(default=200, bounds=(1, 10_000), doc="images emulated by Run")
    live_images = param.Integer(default=8, bounds=(1, 64), doc="images emulated after every change")
    calib_images = param.Integer(default=32, bounds=(1, 512), doc="images for profiles and auto-scale")
    image_index = param.Integer(default=0, bounds=(0, None), doc="live image shown in the raster")

    generation = param.Integer(default=0, doc="bumped on every change that needs a computation")
    network_stage = param.Parameter(default=None)
    chip_stage = param.Parameter(default=None)
    emulation = param.Parameter(default=None)
    evaluation = param.Parameter(default=None)
    calibration = param.Parameter(default=None)
    problems = param.List(default=[], item_type=Problem)
    can_undo = param.Boolean(default=False)
    can_redo = param.Boolean(default=False)
    current = param.Boolean(default=True, doc="whether the results shown match the config")
    blocked = param.Boolean(default=False, doc="the config cannot be emulated (see problems)")

    auto_compute = param.Boolean(default=False, doc="compute synchronously on every change")

    def __init__(self, bundle: ModelBundle | None = None, **params: Any):
        super().__init__(**params)
        self.on_request: Callable[[], None] | None = None
        self._undo: list[TunedConfig] = []
        self._redo: list[TunedConfig] = []
        self._applying = False
        self._edit: dict[tuple[str | None, str], Problem] = {}
        self._compute: dict[str, list[Problem]] = {}
        self._action: dict[str, list[Problem]] = {}
        self.param.watch(self._on_global, ["dt", "presentation_steps"])
        self.param.watch(self._on_live, ["live_images", "calib_images"])
        if bundle is not None:
            self.set_bundle(bundle)

    # ------------------------------------------------------------------------------------
    # model and data
    # ------------------------------------------------------------------------------------
    def set_bundle(self, bundle: ModelBundle) -> None:
        """Switch to another model (or the example): new layers, fresh history, recompute."""
        network = loihi_core.convert(bundle.graph, bundle.config)
        tunings = {}
        keras_layers = [(n, lay) for n, lay in network.layers.items() if not lay.is_input_encoder]
        for i, (name, layer) in enumerate(keras_layers):
            sources = list(dict.fromkeys(
                network.input_name if c.pre not in network.layers
                or network.layers[c.pre].is_input_encoder else c.pre
                for c in network.connections_into(name)))
            with param.parameterized.discard_events(self):
                t = LayerTuning(layer=name, shape=tuple(layer.shape), index=i, inputs=sources,
                                fed_by_input=sources == [network.input_name],
                                name=f"tuning_{name}")
            t.param.watch(self._on_tuning, list(_LAYER_FIELDS))
            tunings[name] = t
        self._undo.clear()
        self._redo.clear()
        self._edit.clear()
        self._compute.clear()
        self._action.clear()
        with param.parameterized.batch_call_watchers(self):
            self.param.update(bundle=bundle, layers=tunings, network_stage=None, chip_stage=None,
                              emulation=None, evaluation=None, calibration=None, image_index=0)
        self._apply(bundle.config, record=False)

    def set_data(self, images: np.ndarray, labels: np.ndarray | None, name: str) -> bool:
        """Use another data set with the current model; ``False`` (and a problem) if unusable."""
        try:
            bundle = self.bundle.with_data(images, labels, name)
        except DataError as exc:
            self._set_action("data", [Problem("data", f"{name}: {exc}")])
            return False
        self._set_action("data", [])
        self._compute.clear()
        # results of the old images would be indexed with the new ones: clear them all at once
        with param.parameterized.batch_call_watchers(self):
            self.param.update(bundle=bundle, network_stage=None, chip_stage=None, emulation=None,
                              evaluation=None, calibration=None, image_index=0, blocked=False)
        self._request()
        return True

    def set_action_problem(self, area: str, message: str | None) -> None:
        """Show (or clear, with ``None``) a problem of an action: model, data, import ..."""
        self._set_action(area, [] if message is None else [Problem(area, message)])

    # ------------------------------------------------------------------------------------
    # config <-> param objects
    # ------------------------------------------------------------------------------------
    @property
    def base(self) -> TunedConfig:
        """The config the model started with (what Reset returns to)."""
        return self.bundle.config if self.bundle is not None else TunedConfig()

    def to_config(self) -> TunedConfig:
        """The TunedConfig of the current tuning (only non-default values are written).

        Raises
        ------
        ConfigError
            With the JSON path of each bad value.
        """
        doc = self.base.to_dict()
        doc["dt"] = float(self.dt)
        doc["presentation_steps"] = int(self.presentation_steps)
        default_neuron = neuron_from_config(doc["neuron"]).to_config()
        default_scale = doc["scale_firing_rates"]
        default_synapse = doc["synapse"]
        layers = {name: dict(v) for name, v in doc.get("layers", {}).items() if name not in self.layers}
        for name, t in self.layers.items():
            entry: dict[str, Any] = {}
            if t.scale_firing_rates != default_scale:
                entry["scale_firing_rates"] = float(t.scale_firing_rates)
            if t.block_shape is not None:
                entry["block_shape"] = list(t.block_shape)
            neuron = neuron_from_config(t.neuron_config())
            if neuron.to_config() != default_neuron:
                entry["neuron"] = neuron.to_config()
            if t.synapse != default_synapse:
                entry["synapse"] = t.synapse
            if t.on_chip != default_on_chip(t.fed_by_input, t.neuron):
                entry["on_chip"] = bool(t.on_chip)
            if entry:
                layers[name] = entry
        doc["layers"] = layers
        return TunedConfig.from_dict(doc)

    def from_config(self, config: TunedConfig) -> None:
        """Set every parameter from ``config`` (without recording history or computing)."""
        was = self._applying
        self._applying = True
        try:
            self.param.update(dt=float(config.dt), presentation_steps=int(config.presentation_steps))
            for name, t in self.layers.items():
                s = config.for_layer(name)
                cfg = s.neuron.to_config()
                neuron_name = cfg if isinstance(cfg, str) else cfg["type"]
                params = {} if isinstance(cfg, str) else {k: v for k, v in cfg.items() if k != "type"}
                on_chip = (s.on_chip if s.on_chip is not None
                           else default_on_chip(t.fed_by_input, neuron_name))
                t.param.update(scale_firing_rates=float(s.scale_firing_rates),
                               block_shape=None if s.block_shape is None else tuple(s.block_shape),
                               neuron=neuron_name, neuron_params=params, synapse=s.synapse,
                               on_chip=bool(on_chip))
        finally:
            self._applying = was

    # ------------------------------------------------------------------------------------
    # edits
    # ------------------------------------------------------------------------------------
    def _on_tuning(self, *events: param.parameterized.Event) -> None:
        if self._applying:
            return
        for event in events:
            if event.name == "neuron" and event.old != event.new:
                with param.parameterized.discard_events(event.obj):
                    event.obj.neuron_params = {}
            self._edit.pop((event.obj.layer, event.name), None)
        self._commit()

    def _on_global(self, *events: param.parameterized.Event) -> None:
        if self._applying:
            return
        for event in events:
            self._edit.pop((None, event.name), None)
        self._commit()

    def _on_live(self, *events: param.parameterized.Event) -> None:
        if self.bundle is not None:
            self.image_index = min(self.image_index, self.n_live - 1)
            self._request()

    def set_block_shape(self, layer: str, text: str) -> bool:
        """Set a layer's block shape from what the user typed; ``False`` if it is invalid.

        An invalid entry leaves the config (and every result on screen) as it was and shows
        the reason in the layer's card.
        """
        t = self.layers[layer]
        try:
            value = parse_block_shape(text, t.shape)
        except ValueError as exc:
            self._edit[(layer, "block_shape")] = Problem("layer", str(exc), layer=layer,
                                                         field="block_shape")
            self._publish()
            return False
        self._edit.pop((layer, "block_shape"), None)
        if value == t.block_shape:
            self._publish()
        t.block_shape = value
        return True

    def set_scale(self, layer: str, value: float) -> bool:
        """Set a layer's ``scale_firing_rates``; ``False`` (with a problem shown) if invalid.

        A rejected value leaves the config as it was; the problem says what is allowed and
        stays until a valid value is entered.
        """
        lo, hi = SCALE_BOUNDS
        try:
            number = float(value)
            ok = bool(np.isfinite(number)) and lo <= number <= hi
        except (ValueError, TypeError):
            ok = False
        if not ok:
            self._edit[(layer, "scale_firing_rates")] = Problem(
                "layer", f"scale_firing_rates must be a number from {lo:g} to {hi:g} "
                f"(it multiplies the layer's input gain), got {value!r}; the scale stays "
                f"{self.layers[layer].scale_firing_rates:g}",
                layer=layer, field="scale_firing_rates")
            self._publish()
            return False
        if self._edit.pop((layer, "scale_firing_rates"), None) is not None:
            self._publish()
        self.layers[layer].scale_firing_rates = number
        return True

    def _commit(self) -> None:
        """Build the config from the tuning; on success record history and recompute."""
        try:
            config = self.to_config()
        except ConfigError as exc:
            for p in pipeline.problems_from_error(exc, list(self.layers)):
                self._edit[(p.layer, p.field or "")] = p
            self._publish()
            return
        self._publish()
        if self.config is not None and config.to_json() == self.config.to_json():
            return
        if self.config is not None:
            self._undo.append(self.config)
            del self._undo[:-UNDO_DEPTH]
            self._redo.clear()
        self._config_changed()
        self.current = False  # before the config changes: nothing may look settled meanwhile
        self.config = config
        self._history_flags()
        self._request()

    def _apply(self, config: TunedConfig, record: bool = True) -> None:
        """Make ``config`` the current one (undo, reset, import, auto-scale ...)."""
        if record and self.config is not None and config.to_json() != self.config.to_json():
            self._undo.append(self.config)
            del self._undo[:-UNDO_DEPTH]
            self._redo.clear()
        self._edit.clear()
        if self.config is None or config.to_json() != self.config.to_json():
            self._config_changed(publish=False)
        self._publish()
        self.current = False  # before the config changes: nothing may look settled meanwhile
        self.from_config(config)
        self.config = config
        self._history_flags()
        self._request()

    def _config_changed(self, publish: bool = True) -> None:
        """Drop the messages of actions on the previous config (a Run error, a refused
        import, export notes): their cause is gone with it."""
        for area in CONFIG_BOUND_AREAS:
            self._action.pop(area, None)
        if publish:
            self._publish()

    def apply_config(self, config: TunedConfig) -> None:
        """Make ``config`` current, recorded in the undo history."""
        self._apply(config, record=True)

    def undo(self) -> bool:
        if not self._undo:
            return False
        self._redo.append(self.config)
        self._apply(self._undo.pop(), record=False)
        return True

    def redo(self) -> bool:
        if not self._redo:
            return False
        self._undo.append(self.config)
        self._apply(self._redo.pop(), record=False)
        return True

    def reset(self) -> None:
        """Back to the model's starting config (undoable)."""
        self.apply_config(self.base)

    def _history_flags(self) -> None:
        self.param.update(can_undo=bool(self._undo), can_redo=bool(self._redo))

    # ------------------------------------------------------------------------------------
    # export / import
    # ------------------------------------------------------------------------------------
    def export_json(self) -> str:
        """The current config as tuned-config JSON (what ``--config`` takes headless)."""
        return self.config.to_json()

    def import_json(self, text: str | bytes, filename: str = "config") -> bool:
        """Load a tuned config; ``False`` (with the problems shown) if it does not fit."""
        if isinstance(text, (bytes, bytearray)):
            try:
                text = bytes(text).decode("utf-8-sig")
            except UnicodeDecodeError:
                self._set_action("import", [Problem(
                    "import", f"{filename}: not a text file, so not a tuned config; pick the "
                    ".json file that Export (or `loihi-studio` with --config) writes")])
                return False
        try:
            config = TunedConfig.from_json(text)
        except LoihiStudioError as exc:
            self._refuse("import", filename, exc)
            return False
        return self.apply_external(config, filename, "import")

    def apply_external(self, config: TunedConfig, source: str, area: str = "import") -> bool:
        """Apply a config from elsewhere (a file, a sweep row) after checking it fits the
        model; ``False`` with the reasons shown in ``area`` if not. Undoable."""
        try:
            loihi_core.convert(self.bundle.graph, config)
        except LoihiStudioError as exc:
            self._refuse(area, source, exc)
            return False
        self._set_action(area, [])
        self.apply_config(config)
        return True

    def _refuse(self, area: str, source: str, exc: LoihiStudioError) -> None:
        lines = ([f"{p}: {m}" if p else m for p, m in exc.problems]
                 if isinstance(exc, ConfigError) else [str(exc)])
        self._set_action(area, [Problem(area, f"{source}: {line}") for line in lines])

    # ------------------------------------------------------------------------------------
    # computing
    # ------------------------------------------------------------------------------------
    @property
    def n_live(self) -> int:
        return int(min(self.live_images, len(self.bundle.images))) if self.bundle else 0

    def job(self) -> pipeline.Job:
        """A snapshot of what to compute now (handed to a worker thread by the runner)."""
        n = len(self.bundle.images)
        return pipeline.Job(generation=self.generation, bundle=self.bundle, config=self.config,
                            live=np.arange(min(self.live_images, n)),
                            calib=np.arange(min(self.calib_images, n)))

    def _request(self) -> None:
        if self.bundle is None or self.config is None:
            return
        self.param.update(generation=self.generation + 1, current=False, blocked=False)
        if self.auto_compute:
            self.compute_now()
        elif self.on_request is not None:
            self.on_request()

    def compute_now(self) -> None:
        """Compute every stage synchronously (tests, scripts)."""
        for stage in pipeline.run_stages(self.job()):
            self.accept(stage)

    def accept(self, stage: pipeline.Stage) -> bool:
        """Show a finished stage; ``False`` if it belongs to an older generation."""
        if stage.generation != self.generation:
            return False
        if isinstance(stage, NetworkStage):
            self._compute["network"] = []
            self.network_stage = stage
        elif isinstance(stage, ChipStage):
            self._compute["chip"] = stage.problems
            self.param.update(chip_stage=stage, blocked=not stage.ok)
        elif isinstance(stage, EmulationStage):
            self.param.update(emulation=stage, current=True)
        elif isinstance(stage, Failure):
            self._compute[stage.stage] = self._explain(stage)
            if stage.stage == "network":
                self._compute["chip"] = []
            self.blocked = True
        self._publish()
        return True

    def _explain(self, failure: Failure) -> list[Problem]:
        """The failure's problems, reworded where the core's advice cannot be followed here."""
        if len(self.layers) == 1 and failure.stage in ("chip", "network"):
            (name,) = self.layers
            model = self.bundle.name if self.bundle is not None else "this model"
            return [Problem("model", (
                f"{model} has one neuron layer ({name}), which turns the input into spikes on "
                f"the host by default, so no layer is left for the chip. Tick \"on chip\" on "
                f"{name}: the host then encodes the input as NengoLoihi does (an on/off pair of "
                f"spiking neurons per input value) and {name} runs on Loihi."))]
        return list(failure.problems)

    def status_reason(self) -> str:
        """Why the result views show nothing (or an older result): the config's first
        problem when it cannot run, otherwise that the results are being computed."""
        if self.blocked:
            for area in ("model", "layer", "global", "mapping"):
                for p in self._compute_problems():
                    if p.area == area:
                        return p.message
            return "this config cannot run on the chip (see the messages)"
        return "computing…"

    def status_short(self) -> str:
        """:meth:`status_reason` short enough for a plot title."""
        return "cannot run (see the messages)" if self.blocked else "computing…"

    def action_problems(self, areas: tuple[str, ...]) -> list[Problem]:
        """Problems of the user's actions (not of computing the config) in ``areas``."""
        return [p for area in areas for p in self._action.get(area, [])]

    def _compute_problems(self) -> list[Problem]:
        return [p for items in self._compute.values() for p in items]

    # ------------------------------------------------------------------------------------
    # actions
    # ------------------------------------------------------------------------------------
    def auto_block_shapes(self) -> bool:
        """Pin every on-chip layer to the block shape that fits with the fewest cores."""
        try:
            network = loihi_core.convert(self.bundle.graph, self.config)
            shapes = loihi_core.auto_block_shapes(network)
        except LoihiStudioError as exc:
            self._set_action("blocks", pipeline.problems_from_error(exc, list(self.layers), "blocks"))
            return False
        self._set_action("blocks", [])
        config = self.config
        for name, shape in shapes.items():
            config = config.with_layer(name, block_shape=tuple(shape))
        self.apply_config(config)
        return True

    def calibration_args(self) -> tuple:
        n = len(self.bundle.images)
        return (self.bundle, self.config, np.arange(min(self.calib_images, n)), float(self.target_rate))

    def accept_calibration(self, result: Any) -> None:
        """Apply an auto-scale result (undoable) and remember how it went."""
        config = self.config
        for name, scale in result.scales.items():
            config = config.with_layer(name, scale_firing_rates=float(_round_sig(scale)))
        self.apply_config(config)
        # after applying: the remark concerns the config it produced
        self._set_action("calibration", [] if result.converged else [Problem(
            "calibration", "auto-scale did not converge within the iteration limit; the closest "
            "scales found are applied: " + ", ".join(
                f"{k} {v:.0f} Hz" for k, v in result.rates.items()))])
        self.calibration = result

    def calibrate_now(self, progress: Callable | None = None) -> Any:
        """Auto-scale synchronously (tests); the UI runs the same in a worker thread."""
        try:
            result = pipeline.calibrate(*self.calibration_args(), progress=progress)
        except (LoihiStudioError, ValueError) as exc:
            self._set_action("calibration", [Problem("calibration", str(exc))])
            return None
        self.accept_calibration(result)
        return result

    def accept_evaluation(self, evaluation: Evaluation) -> None:
        self._set_action("run", [])
        self.evaluation = evaluation

    def evaluate_now(self, progress: Callable | None = None) -> Evaluation | None:
        try:
            evaluation = pipeline.evaluate(self.bundle, self.config, self.n_images, progress=progress)
        except LoihiStudioError as exc:
            self._set_action("run", [Problem("run", str(exc))])
            return None
        self.accept_evaluation(evaluation)
        return evaluation

    # ------------------------------------------------------------------------------------
    # problems
    # ------------------------------------------------------------------------------------
    def _set_action(self, area: str, problems: list[Problem]) -> None:
        self._action[area] = list(problems)
        self._publish()

    def _publish(self) -> None:
        found = list(self._edit.values())
        for group in (self._compute, self._action):
            for items in group.values():
                found.extend(items)
        self.problems = found

    def problems_for(self, area: str, layer: str | None = None) -> list[Problem]:
        return [p for p in self.problems if p.area == area and (layer is None or p.layer == layer)]


def _round_sig(value: float, digits: int = 4) -> float:
    """Round to ``digits`` significant digits (configs stay readable: 251.2, not 251.18864)."""
    if value == 0 or not np.isfinite(value):
        return value
    return float(f"{value:.{digits}g}")
