"""Panel components of the dashboard: layer cards, side-bar sections, result panels.

Each component takes the session's :class:`~app.state.StudioState` and builds its own
widgets in ``__init__`` (never as class attributes, which every session would share).
Widgets write to the state through its methods; the components redraw from the state's
parameters. Nothing here computes anything heavy: that is the runner's job.
"""

from __future__ import annotations

from html import escape
import math
import re
from typing import Any

import numpy as np
import panel as pn
import param
from bokeh.models import CustomJSTickFormatter

from loihi_core.neurons import NEURON_TYPES

from .messages import MessageBox, StaticHTML
from .pipeline import Problem
from .plots import CoreCostHeatmap, CoreHeatmap, ImageThumb, ProfilePlot, RasterPlot, RatesPlot
from .state import (SCALE_BOUNDS, LayerTuning, StudioState, _round_sig, fit_block_shape,
                    format_block_shape, parse_block_shape)

#: Shows the log10 slider position as the scale itself (a Bokeh model: one per widget,
#: since a model can only belong to one session's document).
_LOG_FORMAT_JS = """
    const v = Math.pow(10, tick);
    return v >= 100 ? v.toFixed(0) : v.toPrecision(3);
"""


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|#~])")


#: Styles of the KPI strip and the network table. They travel inside the panes' HTML (a
#: ``<style>`` element in the pane's shadow root) rather than as pane ``stylesheets``:
#: Panel re-sends a pane's stylesheet models with every text update, and Bokeh answers a
#: change of model references by re-walking the whole document (~250 ms on this page).
PANE_CSS = """
.kpi-row {display: flex; flex-wrap: wrap; gap: 10px; align-items: stretch;}
.kpi {background: white; border: 1px solid #d9dee5; border-radius: 6px; padding: 6px 14px;
      min-width: 150px; flex: 1 1 150px;}
.kpi-title {font-size: 0.78em; color: #5b6675; text-transform: uppercase; letter-spacing: .04em;}
.kpi-value {font-size: 1.55em; font-weight: 600; line-height: 1.25;}
.kpi-sub {font-size: 0.8em; color: #6b7280;}
.kpi-stale {align-self: center; color: #b26b00; font-size: 0.85em; max-width: 260px;}
.kpi-reason {max-width: 560px; flex: 2 1 300px;}
.net-table {border-collapse: collapse; font-size: 0.9em; margin: 6px 0 14px 0;}
.net-table td, .net-table th {border-bottom: 1px solid #e3e7ec; padding: 4px 10px; text-align: left;}
.net-table th {background: #f3f6f9;}
"""

_STYLE = f"<style>{PANE_CSS}</style>"


def markdown_escape(text: str) -> str:
    """Messages name fields like ``block_shape`` and files like ``my_data.npz``: keep their
    underscores (and any other Markdown syntax) literal."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def problems_markdown(problems: list[Problem]) -> str:
    seen, lines = set(), []
    for p in problems:
        if p.message not in seen:
            seen.add(p.message)
            lines.append(f"- {markdown_escape(p.message)}")
    return "\n".join(lines)


def _alert(alert_type: str = "danger", css_classes: list[str] | None = None) -> MessageBox:
    """A message box: empty (not hidden) when there is nothing to say (see app.messages)."""
    return MessageBox(alert_type, css_classes=css_classes)


def _show(alert: MessageBox, problems: list[Problem]) -> None:
    alert.object = problems_markdown(problems)


def _shape_text(shape: tuple[int, ...]) -> str:
    return " × ".join(str(s) for s in shape)


class PromptFloatSlider(pn.widgets.FloatSlider):
    """A FloatSlider whose changes reach the server's callbacks at once.

    Panel holds every widget change for 50 ms (``_debounce``) to coalesce bursts; the
    scale slider computes only on release (``value_throttled``, one event), so that wait
    is pure latency on every tuning step.
    """

    _debounce = 0


#: Decades either side of the current scale on the slider: ~125 px per decade, so a drag
#: tunes finely (a 60 px drag is about × 3) and a key press moves 0.01 decade (2.3 %).
#: The window re-centres when the value comes near an end (release, entry, auto-scale).
SLIDER_DECADES = 1.0


def slider_window(log_value: float) -> tuple[float, float]:
    lo, hi = (math.log10(v) for v in SCALE_BOUNDS)
    start = min(max(lo, round(log_value - SLIDER_DECADES, 2)), hi - 2 * SLIDER_DECADES)
    return start, round(start + 2 * SLIDER_DECADES, 2)


def on_chip_locked(t: LayerTuning) -> str:
    """Why a layer's *on chip* box cannot be changed ("" if it can)."""
    if not NEURON_TYPES[t.neuron].on_chip_capable:
        return f"{t.neuron} neurons cannot run on Loihi; pick a Loihi neuron type first"
    return ""


class LayerCard(pn.viewable.Viewer):
    """Controls of one neuron layer next to its activation profile.

    The scale has a log slider (coarse, throttled: one update per release or key press)
    and an exact entry; the block shape is typed and validated against the layer's shape;
    problems of this layer (bad entry, over-limit mapping, conversion errors) appear in
    the card itself.
    """

    tuning = param.ClassSelector(class_=LayerTuning)
    state = param.ClassSelector(class_=StudioState)

    def __init__(self, **params: Any):
        super().__init__(**params)
        t, name = self.tuning, self.tuning.layer
        shape = _shape_text(t.shape)
        # log slider: the value it shows while dragging goes to the exact entry; the
        # computation runs once, on release (value_throttled)
        start, end = slider_window(self._log(t.scale_firing_rates))
        self.scale_slider = PromptFloatSlider(
            label="scale_firing_rates (log)", start=start, end=end, step=0.01,
            value=self._log(t.scale_firing_rates), show_value=False, tooltips=False,
            format=CustomJSTickFormatter(code=_LOG_FORMAT_JS), width=250, margin=(2, 8),
            css_classes=["scale-slider"])
        # no start/end: the browser would clamp or drop an out-of-range entry silently;
        # the state rejects it with the reason in this card instead
        self.scale_entry = pn.widgets.FloatInput(
            label="scale (exact)", value=t.scale_firing_rates,
            step=1.0, format="0.[000]", width=117, margin=(2, 4, 2, 8), css_classes=["scale-entry"])
        self._dragging = False
        self._syncing = False
        self.block_note = StaticHTML("", margin=(0, 8), css_classes=["block-note"],
                                       styles={"font-size": "0.8em", "color": "#b26b00"})
        self.synapse = pn.widgets.FloatInput.from_param(
            t.param.synapse, label="synapse τ (s)", step=0.001, start=0.0, end=1.0,
            placeholder="none", width=117, margin=(2, 8, 2, 4),
            description="lowpass filter on the spikes this layer sends; empty = none")
        self.block_entry = pn.widgets.TextInput(
            label="block shape", value=format_block_shape(t.block_shape), placeholder="auto",
            width=150, margin=(2, 4, 2, 8), css_classes=["block-entry"],
            description=f"per-core tile of the {shape} output, e.g. "
                        f"{', '.join(str(max(1, s // 2)) for s in t.shape)}; empty = automatic")
        self.on_chip = pn.widgets.Checkbox.from_param(t.param.on_chip, label="on chip",
                                                      margin=(28, 8, 2, 8), width=80)
        # an option whose only outcome would be an error is disabled, the reason in a tooltip
        why = on_chip_locked(t)
        self.on_chip_why = pn.widgets.TooltipIcon(value=why or "-", visible=bool(why),
                                                  margin=(30, 0, 0, -6), width=20,
                                                  css_classes=["on-chip-why"])
        self.on_chip.disabled = bool(why)
        self.neuron = pn.widgets.Select.from_param(
            t.param.neuron, label="neuron", options=list(NEURON_TYPES), width=250, margin=(2, 8))
        self.alert = _alert()
        self.header = StaticHTML("", margin=(2, 8, 0, 8), sizing_mode="stretch_width")
        self.profile = ProfilePlot(name)
        self.profile_pane = pn.pane.Bokeh(self.profile.figure, sizing_mode="stretch_width",
                                          margin=(0, 4, 4, 0))
        self.scale_slider.param.watch(self._on_slider, "value_throttled")
        self.scale_slider.param.watch(self._on_drag, "value")
        self.scale_entry.param.watch(self._on_entry, "value")
        self.block_entry.param.watch(self._on_block, "value")
        t.param.watch(self._sync_scale, "scale_firing_rates")
        t.param.watch(self._sync_block, "block_shape")
        t.param.watch(lambda *e: self.refresh_header(), ["on_chip", "neuron"])
        self.state.param.watch(self._sync_block, "config")
        controls = pn.Column(
            self.scale_slider,
            pn.Row(self.scale_entry, self.synapse),
            pn.Row(self.block_entry, self.on_chip, self.on_chip_why),
            self.block_note,
            self.neuron,
            width=272, margin=0)
        self._layout = pn.Column(
            self.header,
            pn.Row(controls, self.profile_pane, sizing_mode="stretch_width"),
            self.alert,
            sizing_mode="stretch_width", css_classes=["layer-card", f"layer-{name}"],
            styles={"border": "1px solid #d9dee5", "border-radius": "6px", "background": "white"},
            margin=(6, 6),
        )
        self.refresh_header()

    @staticmethod
    def _log(value: float) -> float:
        return round(math.log10(max(value, SCALE_BOUNDS[0])), 2)

    # widget → state ------------------------------------------------------------------
    def _on_slider(self, event: param.parameterized.Event) -> None:
        if event.new is None:
            return
        self.state.set_scale(self.tuning.layer, _round_sig(10 ** float(event.new)))

    def _on_drag(self, event: param.parameterized.Event) -> None:
        if event.new is None or self._log(self.tuning.scale_firing_rates) == event.new:
            return
        self._dragging = True
        try:
            self.scale_entry.value = _round_sig(10 ** float(event.new))
        finally:
            self._dragging = False

    def _on_entry(self, event: param.parameterized.Event) -> None:
        if self._dragging or event.new is None:
            return
        # also the current value: re-entering it clears an error shown for a rejected one
        self.state.set_scale(self.tuning.layer, float(event.new))

    def _on_block(self, event: param.parameterized.Event) -> None:
        if self._syncing:
            return
        t = self.tuning
        try:
            typed = parse_block_shape(event.new, t.shape)
        except ValueError:
            typed = None
        fitted = fit_block_shape(typed, t.shape)
        if typed is not None and fitted != typed:
            # larger than the layer: clipped, and said so next to the entry
            self.block_note.object = (
                f"<div class='block-note'>{escape(format_block_shape(typed))} is larger than the "
                f"{_shape_text(t.shape)} layer: clipped to {escape(format_block_shape(fitted))}</div>")
            self.state.set_block_shape(t.layer, format_block_shape(fitted))
            self._syncing = True
            try:
                self.block_entry.value = format_block_shape(fitted)
            finally:
                self._syncing = False
            return
        self.block_note.object = ""
        self.state.set_block_shape(t.layer, event.new)

    # state → widget ------------------------------------------------------------------
    def _sync_scale(self, *events: param.parameterized.Event) -> None:
        t = self.tuning
        value = self._log(t.scale_firing_rates)
        margin = 0.15 * SLIDER_DECADES
        if not self.scale_slider.start + margin <= value <= self.scale_slider.end - margin:
            start, end = slider_window(value)  # re-centred on the value (fine steps kept)
            self._dragging = True
            try:
                self.scale_slider.param.update(start=start, end=end, value=value)
            finally:
                self._dragging = False
        self._dragging = True
        try:
            self.scale_slider.value = value
        finally:
            self._dragging = False
        self.scale_entry.value = t.scale_firing_rates

    def _sync_block(self, *events: param.parameterized.Event) -> None:
        """Show the current block shape, unless the entry holds a rejected value (kept, so
        the user can fix what they typed, next to the reason)."""
        rejected = any(p.field == "block_shape" and p.message.startswith("block shape")
                       for p in self.state.problems_for("layer", self.tuning.layer))
        text = format_block_shape(self.tuning.block_shape)
        if not rejected and self.block_entry.value != text:
            self._syncing = True  # showing the state's value is no edit
            try:
                self.block_entry.value = text
            finally:
                self._syncing = False

    def clear(self, reason: str) -> None:
        self.profile.clear(reason, self.state.generation)

    def show_problems(self) -> None:
        _show(self.alert, self.state.problems_for("layer", self.tuning.layer))

    def refresh_header(self) -> None:
        t, st = self.tuning, self.state
        why = on_chip_locked(t)
        if self.on_chip.disabled != bool(why):
            self.on_chip.disabled = bool(why)
            self.on_chip_why.param.update(value=why or "-", visible=bool(why))
        where = "chip" if t.on_chip else "host"
        cores = ""
        chip = st.chip_stage.chip if st.chip_stage is not None else None
        if chip is not None and t.layer in chip.block_shapes:
            n = len(chip.blocks_of(t.layer))
            bs = chip.block_shapes[t.layer]
            cores = f" · {n} core{'s' if n != 1 else ''}"
            self.block_entry.placeholder = f"auto: {format_block_shape(tuple(bs))}"
        elif not t.on_chip:
            self.block_entry.placeholder = "host layer"
        rate = ""
        if st.emulation is not None and t.layer in st.emulation.result.spike_counts:
            r = st.emulation.result.rates().get(t.layer, 0.0)
            rate = f" · <b>{r:.0f} Hz</b>"
        sources = ""
        if t.inputs and (len(t.inputs) > 1 or t.index == 0
                         or t.inputs[0] != list(st.layers)[t.index - 1]):
            sources = f" · from {', '.join(t.inputs)}"
        html = (
            f"<div style='font-size:1.02em'><b>{t.layer}</b> "
            f"<span style='color:#555'>· {_shape_text(t.shape)} = {t.n_neurons:,} neurons · "
            f"{where}{cores}{rate}{sources}</span></div>")
        if html != self.header.object:
            self.header.object = html

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout


def cost_breakdown(cost: Any) -> str:
    """The cost estimate's breakdown, one line each (the energy card's tooltip): energy per
    layer and per term, the step time's parts, and the figure with the x86 cores' power."""
    per_layer = sorted(cost.energy_per_layer_J.items(), key=lambda kv: -kv[1])
    lines = ["energy per layer: " + ", ".join(f"{n} {e * 1e6:.1f} µJ" for n, e in per_layer),
             "energy per term: " + ", ".join(f"{k.replace('_', ' ')} {e * 1e6:.1f} µJ"
                                           for k, e in cost.energy_breakdown_J.items()),
             "time per step: " + " + ".join(f"{k.replace('_', ' ')} {t * 1e9:.0f} ns"
                                            for k, t in cost.time_breakdown_s.items())]
    if cost.x86_power_W:
        lines.append(f"with the x86 cores' {cost.x86_power_W * 1e3:.0f} mW (Blouw 2019): "
                     f"{cost.energy_per_image_with_x86_J * 1e6:.1f} µJ per image")
    lines.append(f"static power (not included): {cost.static_power_W * 1e3:.0f} mW")
    return "\n".join(lines)


class KpiStrip(pn.viewable.Viewer):
    """The headline numbers: accuracy of emulator and Keras, cores, rates, energy proxy."""

    state = param.ClassSelector(class_=StudioState)

    def __init__(self, **params: Any):
        super().__init__(**params)
        # the CSS goes once with the page, not with every update of the numbers
        self.pane = StaticHTML("", sizing_mode="stretch_width", margin=(4, 6), stylesheets=[PANE_CSS])
        self.refresh()

    @staticmethod
    def _card(title: str, value: str, sub: str = "", color: str = "#0f2b46", hover: str = "") -> str:
        tip = f" title='{escape(hover, quote=True)}'" if hover else ""
        return (f"<div class='kpi'{tip}><div class='kpi-title'>{title}</div>"
                f"<div class='kpi-value' style='color:{color}'>{value}</div>"
                f"<div class='kpi-sub'>{sub}</div></div>")

    def refresh(self) -> None:
        st = self.state
        cards = []
        emu = st.emulation
        net = st.network_stage
        labels = st.bundle.labels if st.bundle is not None else None
        if emu is not None and net is not None and labels is not None and len(labels) <= int(
                np.max(emu.image_ids, initial=-1)):
            labels = None  # (never shown together: a data switch clears the results)
        if emu is not None and net is not None:
            ids = emu.image_ids
            pred = emu.result.predictions
            keras = net.keras_output.argmax(axis=1) if len(net.keras_output) == len(pred) else None
            if labels is not None:
                lab = labels[ids]
                cards.append(self._card("Emulator accuracy", f"{np.mean(pred == lab):.0%}",
                                        f"{int(np.sum(pred == lab))}/{len(ids)} live images"))
                if keras is not None:
                    cards.append(self._card("Keras accuracy", f"{np.mean(keras == lab):.0%}",
                                            f"{int(np.sum(keras == lab))}/{len(ids)} live images",
                                            color="#555"))
            elif keras is not None:
                cards.append(self._card("Agrees with Keras", f"{np.mean(keras == pred):.0%}",
                                        f"{len(ids)} live images (no labels)"))
        ev = st.evaluation
        if ev is not None:
            if ev.emulator_accuracy is not None:
                cards.append(self._card(f"Run · {ev.n_images} images",
                                        f"{ev.emulator_accuracy:.1%}",
                                        f"Keras {ev.keras_accuracy:.1%} · agree {ev.agreement:.0%}"))
            else:
                cards.append(self._card(f"Run · {ev.n_images} images", f"{ev.agreement:.1%}",
                                        "agreement with Keras"))
        chip = st.chip_stage.chip if st.chip_stage is not None else None
        if chip is not None:
            over = chip.errors
            cards.append(self._card("Cores", f"{chip.n_cores}",
                                    f"{chip.n_chips} chip{'s' if chip.n_chips != 1 else ''}"
                                    + (" · over limit" if over else ""),
                                    color="#d62728" if over else "#0f2b46"))
        if emu is not None:
            rates = emu.result.rates()
            chip_layers = [n for n in rates if n not in emu.result.host_layers]
            if chip_layers:
                mean = float(np.mean([rates[n] for n in chip_layers]))
                cards.append(self._card("Mean rate (chip)", f"{mean:.0f} Hz",
                                        f"target {st.target_rate:.0f} Hz"))
            cost = getattr(emu, "cost", None)  # loihi_core.cost estimate (issue 17)
            if cost is not None:
                cards.append(self._card("Energy / image (Loihi est.)",
                                        f"{cost.energy_per_image_J * 1e6:.1f} µJ",
                                        f"{cost.inferences_per_s:,.0f} images/s · "
                                        f"{cost.time_per_step_s * 1e6:.2f} µs/step",
                                        hover=cost_breakdown(cost)))
            ops = emu.result.synaptic_ops
            if ops is not None and len(ops):
                cards.append(self._card("Synaptic ops / image", f"{float(np.mean(ops)) / 1e6:.2f} M",
                                        "counted by the emulator"))
        reason = escape(st.status_reason())
        if not cards:
            if st.blocked:
                cards.append(self._card("Cannot run", "–", "no results for this config",
                                        color="#b26b00"))
            else:
                cards.append(self._card("Loihi Studio", "…", "computing"))
        if st.current:
            stale = ""
        elif st.blocked and emu is None:
            stale = f"<div class='kpi-stale kpi-reason'>cannot run: {reason}</div>"
        elif st.blocked:
            stale = (f"<div class='kpi-stale kpi-reason'>this config cannot run on the chip: "
                     f"{reason} Results shown are from the last config that could.</div>")
        else:
            stale = "<div class='kpi-stale'>updating…</div>"
        html = f"<div class='kpi-row'>{''.join(cards)}{stale}</div>"
        if html != self.pane.object:
            self.pane.object = html

    def __panel__(self) -> pn.viewable.Viewable:
        return self.pane


class CoresPanel(pn.viewable.Viewer):
    """The core-utilization heatmap with the mapping errors under it."""

    state = param.ClassSelector(class_=StudioState)

    def __init__(self, **params: Any):
        super().__init__(**params)
        self.plot = CoreHeatmap()
        self.cost_plot = CoreCostHeatmap()
        # loading overlays go on a wrapping Column: Panel 1.9 cannot set them on a Bokeh pane
        self.pane = pn.Column(pn.pane.Bokeh(self.plot.figure, sizing_mode="stretch_width"),
                              pn.pane.Bokeh(self.cost_plot.figure, sizing_mode="stretch_width"),
                              sizing_mode="stretch_width", margin=0)
        self.alert = _alert()
        self.layout = pn.Column(self.pane, self.alert, sizing_mode="stretch_width")

    def refresh(self) -> None:
        st = self.state
        if st.chip_stage is not None:
            self.plot.update(st.chip_stage.chip, st.chip_stage.generation)
        else:
            self.plot.clear(st.status_short(), st.generation)
        self.refresh_cost()
        _show(self.alert, st.problems_for("mapping"))

    def refresh_cost(self) -> None:
        st = self.state
        emu = st.emulation
        cost = getattr(emu, "cost", None) if emu is not None else None
        chip = getattr(emu, "chip", None) if emu is not None else None
        chip = chip if chip is not None else (st.chip_stage.chip if st.chip_stage else None)
        if cost is not None and chip is not None and len(chip.blocks) == cost.n_cores:
            self.cost_plot.update(chip, cost, st.generation)
        else:
            self.cost_plot.clear(st.status_short() or "waiting for an emulation", st.generation)

    def __panel__(self) -> pn.viewable.Viewable:
        return self.layout


class RatesPanel(pn.viewable.Viewer):
    """Per-layer mean firing rate vs target (emulator bars, rate-mode estimate dots)."""

    state = param.ClassSelector(class_=StudioState)

    def __init__(self, **params: Any):
        super().__init__(**params)
        self.plot = RatesPlot()
        self.pane = pn.Column(pn.pane.Bokeh(self.plot.figure, sizing_mode="stretch_width"),
                              sizing_mode="stretch_width", margin=0)

    def refresh(self) -> None:
        st = self.state
        net = st.network_stage
        if net is None:
            layers = list(st.layers)
            if layers:  # the layers of the current model, with no rates (and why)
                self.plot.update(layers, None, {}, st.target_rate, {}, generation=st.generation,
                                 note=st.status_short())
            else:
                self.plot.clear(st.status_short(), st.generation)
            return
        layers = list(net.network.layers)
        on_chip = {n: layer.on_chip for n, layer in net.network.layers.items()}
        emulated = st.emulation.result.rates() if st.emulation is not None else None
        note = "" if st.current else (
            "bars: last emulation" if st.emulation is not None else st.status_short())
        self.plot.update(layers, emulated, net.estimated_rates, st.target_rate, on_chip,
                         generation=st.generation if st.current else net.generation, note=note)

    def __panel__(self) -> pn.viewable.Viewable:
        return self.pane


class RasterPanel(pn.viewable.Viewer):
    """Spike rasters of every layer for a chosen live image, with the output over time."""

    state = param.ClassSelector(class_=StudioState)

    def __init__(self, **params: Any):
        super().__init__(**params)
        self.plot = RasterPlot()
        self.thumb = ImageThumb()
        self.image = pn.widgets.IntSlider.from_param(
            self.state.param.image_index, label="live image", start=0,
            end=max(self.state.n_live - 1, 1), width=230, margin=(4, 12))
        self.info = StaticHTML("", margin=(4, 12), width=260,
                                 styles={"font-size": "0.85em", "color": "#444"})
        self.plots = pn.Column(pn.pane.Bokeh(self.plot.figure, sizing_mode="stretch_width"),
                               pn.pane.Bokeh(self.plot.output_figure, sizing_mode="stretch_width"),
                               sizing_mode="stretch_width", margin=0)
        self.layout = pn.Column(
            pn.Row(pn.Column(self.image, self.info, margin=0),
                   pn.pane.Bokeh(self.thumb.figure, margin=(4, 10))),
            self.plots, sizing_mode="stretch_width")

    def refresh(self) -> None:
        st = self.state
        emu = st.emulation
        n_live = st.n_live
        self.image.end = max(n_live - 1, 1)
        self.image.disabled = n_live <= 1
        if emu is None:
            self.plot.clear(st.status_short(), st.generation)
            self.thumb.source.data = {"image": []}
            self.info.object = ""
            return
        i = int(min(st.image_index, emu.result.n_images - 1))
        image_id = int(emu.image_ids[i])
        label = int(st.bundle.labels[image_id]) if st.bundle.labels is not None else None
        keras = None
        net = st.network_stage
        if net is not None and len(net.keras_output) > i:
            keras = int(net.keras_output[i].argmax())
        self.plot.update(emu.result, i, list(emu.result.spikes), generation=emu.generation,
                         label=label, keras_prediction=keras, stale=not st.current)
        self.thumb.update(st.bundle.images[image_id])
        total = {n: int(c[i].sum()) for n, c in emu.result.spike_counts.items()}
        self.info.object = (f"{emu.result.steps} steps; spikes: "
                            + ", ".join(f"{n} {v:,}" for n, v in total.items()))

    def __panel__(self) -> pn.viewable.Viewable:
        return self.layout


def network_table(state: StudioState) -> str:
    """HTML table of the converted network (layers, shapes, placement, cores)."""
    net = state.network_stage.network if state.network_stage is not None else None
    if net is None:
        return ""
    chip = state.chip_stage.chip if state.chip_stage is not None else None
    rows = []
    for name, layer in net.layers.items():
        cores = len(chip.blocks_of(name)) if chip is not None and name in chip.block_shapes else "–"
        bs = chip.block_shapes.get(name) if chip is not None else None
        rows.append(
            f"<tr><td><b>{name}</b></td><td>{' → '.join(layer.keras_layers)}</td>"
            f"<td>{_shape_text(layer.shape)}</td><td style='text-align:right'>{layer.n_neurons:,}</td>"
            f"<td>{'chip' if layer.on_chip else 'host'}</td><td>{layer.neuron.name}</td>"
            f"<td style='text-align:right'>{layer.gain:g}</td>"
            f"<td>{'–' if layer.synapse is None else f'{layer.synapse:g} s'}</td>"
            f"<td>{_shape_text(tuple(bs)) if bs else '–'}</td><td style='text-align:right'>{cores}</td></tr>")
    r = net.readout
    rows.append(f"<tr><td><b>{r.name}</b></td><td>{' → '.join(r.keras_layers)}</td>"
                f"<td>{_shape_text(r.shape)}</td><td></td><td>host (readout)</td><td>–</td><td></td>"
                f"<td></td><td></td><td></td></tr>")
    head = ("<tr><th>neuron layer</th><th>Keras layers</th><th>shape</th><th>neurons</th>"
            "<th>runs on</th><th>neuron</th><th>scale</th><th>synapse</th><th>block shape</th>"
            "<th>cores</th></tr>")
    notes = "".join(f"<li>{n}</li>" for n in net.notes)
    roles = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in net.layer_roles.items())
    return (f"{_STYLE}<table class='net-table'>{head}{''.join(rows)}</table>"
            + (f"<h4>Conversion notes</h4><ul>{notes}</ul>" if notes else "")
            + f"<h4>What each Keras layer became</h4><table class='net-table'>{roles}</table>")
