"""Checking a sweep against the model before anything runs.

Layer names the model lacks, a swept top-level field that every layer overrides (so it
changes nothing), and configurations that give the same network would each waste a sweep
or mislead its Pareto front; they are refused up front with the field and the
configuration numbers.
"""

from __future__ import annotations

import json
from typing import Any

from ..config import LayerOverrides, TunedConfig
from .spec import SweepError, SweepSpec, _split_field

def check_against_model(spec: SweepSpec, model: Any) -> None:
    """Check a sweep against the model before anything runs.

    Refuses, with every problem at once:

    * swept ``layers.<layer>.*`` fields that name no neuron layer of ``model`` (settings
      under other names would fail every configuration the same way);
    * a swept top-level field (``scale_firing_rates``, ``synapse``, ``neuron``) that every
      neuron layer overrides with its own value in every configuration: it changes
      nothing (the README's example base config sets a scale per layer);
    * configurations that give the same network (:func:`effective_key`): each would be
      evaluated again and listed twice, on the Pareto front too.
    """
    from ..convert import neuron_layer_shapes

    neuron_layers = list(neuron_layer_shapes(model))
    problems = []
    swept = list(_swept_paths(spec))
    for path, name in swept:
        layer, _ = _split_field(name)
        if layer is not None and layer not in neuron_layers:
            problems.append((path, f"the model has no neuron layer {layer!r}; its "
                             f"neuron layers are: {', '.join(neuron_layers)}"))
    if problems:
        raise SweepError(problems)
    first: dict[str, int] = {}
    repeats: list[tuple[int, int]] = []
    for point in spec.points:
        key = effective_key(point.config, neuron_layers)
        if key in first:
            repeats.append((point.index, first[key]))
        else:
            first[key] = point.index
    for path, name in swept:
        layer, key = _split_field(name)
        if layer is None and key in OVERRIDABLE_FIELDS and neuron_layers and all(
                key in config.layers.get(n, _NO_OVERRIDES).to_dict()
                for config in spec.configs for n in neuron_layers):
            problems.append((path, f"every neuron layer of the model sets its own {key} in the "
                             f"config ({', '.join(neuron_layers)}), so the top-level {key} "
                             f"changes nothing{_repeat_text(repeats)}; sweep "
                             f"layers.<layer>.{key} instead, or remove the per-layer values from "
                             f"the base config"))
    if repeats and not problems:  # (a field that changes nothing explains its repeats)
        shown = ", ".join(f"#{i} = #{j}" for i, j in repeats[:8])
        more = f" and {len(repeats) - 8} more" if len(repeats) > 8 else ""
        problems.append(("", f"{len(repeats)} configuration(s) give the same network as an earlier "
                         f"one ({shown}{more}; # is the configuration number); each would be "
                         f"evaluated again and listed twice: remove the values that change "
                         f"nothing" + (", or lower random.n" if spec.random else "")))
    if problems:
        raise SweepError(problems)


def _repeat_text(repeats: list[tuple[int, int]]) -> str:
    """`` (configurations #9, #10 repeat #8)`` for the first group of repeats."""
    if not repeats:
        return ""
    target = repeats[0][1]
    same = [i for i, j in repeats if j == target]
    shown = ", ".join(f"#{i}" for i in same[:6]) + (", ..." if len(same) > 6 else "")
    more = f"; {len(repeats)} repeats in all" if len(repeats) > len(same) else ""
    return f" (configurations {shown} repeat #{target}{more})"


#: Top-level fields that a layer's own value overrides.
OVERRIDABLE_FIELDS = ("scale_firing_rates", "synapse", "neuron")
_NO_OVERRIDES = LayerOverrides()


def _swept_paths(spec: SweepSpec):
    """``(json path, field)`` of every swept field."""
    for name in spec.grid or {}:
        yield f"grid.{name}", name
    for name in (spec.random.space if spec.random else {}):
        yield f"random.space.{name}", name


def effective_key(config: TunedConfig, neuron_layers: list[str]) -> str:
    """What a configuration makes of the model, as text: equal keys, equal networks.

    The top-level values that reach the network (``dt``, ``presentation_steps``,
    ``max_to_avg_pool``, ``n_chips``) and every neuron layer's effective settings; a
    top-level value that every layer overrides does not appear.
    """
    layers = {}
    for name in neuron_layers:
        s = config.for_layer(name)
        layers[name] = [s.scale_firing_rates, s.neuron.to_config(), s.synapse, s.on_chip,
                        None if s.block_shape is None else list(s.block_shape)]
    return json.dumps([config.dt, config.presentation_steps, config.max_to_avg_pool,
                       config.n_chips, layers], sort_keys=True, default=str)
