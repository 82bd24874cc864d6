"""The dashboard's plots: Bokeh figures built once per session, updated in place.

Every plot keeps its :class:`~bokeh.models.ColumnDataSource` objects and changes only
their ``data`` when a result arrives. That costs a few milliseconds, where rebuilding a
figure (or a HoloViews element) per update would cost tens to hundreds: the difference
between a slider that feels live and one that lags. Each update also writes the state's
``generation`` into the sources' ``tags``, which is how the browser tests and the UI
benchmark know that the page shows the result of a given change.

The functions that turn results into columns (``*_columns``) are pure and unit-tested;
the classes only hold the figures.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from bokeh.models import (BasicTicker, BoxAnnotation, ColorBar, ColumnDataSource, FactorRange,
                          FixedTicker, HoverTool, Label, LinearColorMapper, Range1d, Span)
from bokeh.palettes import Blues256, Category10_10, Viridis256
from bokeh.plotting import figure

from loihi_core.chip import RESOURCE_LIMITS, RESOURCES

from .pipeline import Profile, bin_raster

ACCENT = "#0071c5"
IDEAL = "#6b7280"
INPUTS = "#9db7d5"
DANGER = "#d62728"
GOOD = "#2ca02c"
WARN = "#ff9f1c"
TARGET = "#2ca02c"
RESOURCE_LABELS = {"compartments": "compartments", "in_axons": "input axons",
                   "out_axons": "output axons", "synapse_bits": "synapse memory"}
#: Neuron rows of one layer's band in the raster (more rows than pixels would alias).
RASTER_ROWS = 160
#: Spike raster colours: white where no neuron of the pixel spiked, then light to dark blue.
_SPIKES_PALETTE = tuple(reversed(Blues256))[90:]


def _figure(height: int, **kw: Any):
    kw.setdefault("tools", "pan,wheel_zoom,box_zoom,reset,save")
    kw.setdefault("toolbar_location", "above")
    fig = figure(height=height, sizing_mode="stretch_width", **kw)
    fig.toolbar.logo = None
    fig.toolbar.autohide = True
    fig.title.text_font_size = "10.5pt"
    fig.title.text_font_style = "normal"
    fig.axis.axis_label_text_font_size = "9pt"
    fig.axis.axis_label_text_font_style = "normal"
    fig.axis.major_label_text_font_size = "8.5pt"
    fig.grid.grid_line_alpha = 0.35
    fig.min_border_left = 50
    return fig


def _clip(text: str, limit: int = 90) -> str:
    """Plot titles are one canvas line: long reasons end in an ellipsis (the full text is
    in the messages next to their cause)."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _same(a: Any, b: Any) -> bool:
    """Whether two column values are equal (arrays by value, lists element by element)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape
                and a.dtype == b.dtype and np.array_equal(a, b))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def set_columns(source: ColumnDataSource, cols: dict) -> list[str]:
    """Give ``source`` the data ``cols``, sending the browser only the columns that changed.

    ``source.data = cols`` re-sends every column; a core heatmap's factor column alone is
    ~10 kB of JSON that most edits leave as it was. When the columns and their lengths are
    the same, only the changed ones go out (``data.update`` sends just those). Returns the
    names of the columns sent.
    """
    old = source.data
    lengths = {len(v) for v in cols.values()}
    if (set(old) != set(cols) or len(lengths) > 1
            or any(len(old[k]) != len(v) for k, v in cols.items())):
        source.data = cols
        return list(cols)
    changed = {k: v for k, v in cols.items() if not _same(old[k], v)}
    if changed:
        source.data.update(changed)
    return list(changed)


def _tag(sources: list[ColumnDataSource], generation: int) -> None:
    for s in sources:
        s.tags = [int(generation)]


# ---------------------------------------------------------------------------------------
# activation profile
# ---------------------------------------------------------------------------------------

def profile_top(profile: Profile, target_rate: float) -> float:
    """Top of the rate axis: the curve's highest rate in view (or the target), plus room.

    Pinning it to the one-spike-per-step ceiling would flatten the low staircase of a
    layer whose inputs never get near saturation.
    """
    return max(float(profile.chip_rate.max()), float(target_rate), 1.0) * 1.15


def profile_columns(profile: Profile, top: float) -> tuple[dict, dict]:
    """Curve columns and histogram columns (bars scaled to 85 % of the axis height)."""
    frac = profile.fraction
    peak = float(frac.max()) if frac.size and frac.max() > 0 else 1.0
    top = frac / peak * top * 0.85
    curve = {"x": profile.x, "chip": profile.chip_rate, "ideal": profile.ideal_rate}
    hist = {"left": profile.edges[:-1], "right": profile.edges[1:], "top": top,
            "fraction": frac * 100.0}
    return curve, hist


class ProfilePlot:
    """One layer's Loihi rate staircase vs the ideal curve over its input histogram."""

    def __init__(self, layer: str, height: int = 210):
        self.layer = layer
        self.curve = ColumnDataSource({"x": [], "chip": [], "ideal": []}, name=f"profile-{layer}")
        self.hist = ColumnDataSource({"left": [], "right": [], "top": [], "fraction": []},
                                     name=f"profile-hist-{layer}")
        # no zoom or save tools (nor their toolbar): a page has one of these per layer, and
        # each tool is a few more models to build, send and render at every page load;
        # the hover read-outs stay
        fig = _figure(height, x_range=Range1d(0, 1), y_range=Range1d(0, 1100),
                      x_axis_label="input (Keras units)", y_axis_label="rate (Hz)",
                      tools="", toolbar_location=None)
        hist = fig.quad(left="left", right="right", top="top", bottom=0, source=self.hist,
                        fill_color=INPUTS, fill_alpha=0.45, line_color=None)
        ideal = fig.line("x", "ideal", source=self.curve, line_color=IDEAL, line_dash="dashed",
                         line_width=1.5)
        chip = fig.line("x", "chip", source=self.curve, line_color=ACCENT, line_width=2)
        self.ceiling = Span(location=1000, dimension="width", line_color=DANGER,
                            line_dash="dotted", line_width=1.5)
        self.target = Span(location=200, dimension="width", line_color=TARGET,
                           line_dash="dashed", line_width=1.2)
        self.saturated = BoxAnnotation(left=None, fill_color=DANGER, fill_alpha=0.07)
        fig.add_layout(self.ceiling)
        fig.add_layout(self.target)
        fig.add_layout(self.saturated)
        fig.add_tools(HoverTool(renderers=[chip], mode="vline",
                                tooltips=[("input", "@x{0.000}"), ("Loihi", "@chip{0.0} Hz"),
                                          ("ideal", "@ideal{0.0} Hz")]))
        fig.add_tools(HoverTool(renderers=[hist], tooltips=[
            ("inputs", "@left{0.000} to @right{0.000}"), ("share", "@fraction{0.0} %")]))
        fig.title.text_font_size = "9.5pt"
        self.figure = fig
        self._shown: tuple | None = None

    def update(self, profile: Profile, target_rate: float, generation: int = 0) -> bool:
        """Show ``profile``; ``False`` (nothing sent) when it is already shown."""
        key = (id(profile), float(target_rate))
        if key == self._shown:
            return False
        self._shown = key
        top = profile_top(profile, target_rate)
        curve, hist = profile_columns(profile, top)
        set_columns(self.curve, curve)
        set_columns(self.hist, hist)
        fig = self.figure
        fig.x_range.update(start=float(profile.x[0]), end=float(profile.x[-1]))
        fig.y_range.update(start=0.0, end=top)
        self.ceiling.location = profile.max_rate
        self.target.location = float(target_rate)
        sat = profile.x_saturate
        self.saturated.left = sat if sat is not None and sat < profile.x[-1] else float(profile.x[-1])
        fig.title.text = profile_title(profile)
        _tag([self.curve, self.hist], generation)
        return True

    def clear(self, reason: str, generation: int = 0) -> None:
        """Show no profile, with ``reason`` as the title (a model or data switch)."""
        self._shown = None
        self.curve.data = {"x": [], "chip": [], "ideal": []}
        self.hist.data = {"left": [], "right": [], "top": [], "fraction": []}
        self.figure.title.text = reason
        _tag([self.curve, self.hist], generation)


def profile_title(profile: Profile) -> str:
    """Short enough for the narrowest card (the plot is ~300 px wide at its smallest)."""
    sat = profile.x_saturate
    where = "" if sat is None or sat <= profile.x[-1] else f" · sat. at {sat:.3g}"
    return (f"{profile.silent_fraction:.0%} silent · {profile.saturated_fraction:.0%} sat. · "
            f"{profile.mean_active_rate:.0f} Hz{where}")


# ---------------------------------------------------------------------------------------
# core utilization
# ---------------------------------------------------------------------------------------

def heatmap_columns(chip: Any) -> tuple[dict, list[tuple[str, str]]]:
    """Cells (core × resource) of a chip model, and the x factors (chip, core)."""
    cols: dict[str, list] = {k: [] for k in ("core", "resource", "fraction", "layer", "block",
                                            "used", "limit", "percent", "over")}
    factors = []
    for b in chip.blocks:
        key = (f"chip {max(b.chip, 0)}", str(max(b.core, 0) if b.core >= 0 else b.index))
        factors.append(key)
        util = b.utilization()
        for r in RESOURCES:
            used, limit = util[r]
            frac = used / limit
            cols["core"].append(key)
            cols["resource"].append(RESOURCE_LABELS[r])
            cols["fraction"].append(frac)
            cols["layer"].append(b.layer)
            cols["block"].append(int(b.index))
            cols["used"].append(int(used))
            cols["limit"].append(int(limit))
            cols["percent"].append(frac * 100.0)
            cols["over"].append("OVER LIMIT" if used > limit else "")
    return cols, factors


class CoreHeatmap:
    """Cores (grouped by chip) × the four per-core resources; red = over the limit."""

    def __init__(self, height: int = 240):
        self.source = ColumnDataSource({k: [] for k in ("core", "resource", "fraction", "layer",
                                                        "block", "used", "limit", "percent", "over")},
                                       name="core-heatmap")
        resources = [RESOURCE_LABELS[r] for r in reversed(RESOURCES)]
        fig = _figure(height, x_range=FactorRange(factors=[("chip 0", "0")]),
                      y_range=FactorRange(factors=resources), tools="hover,save,reset,xwheel_zoom,xpan")
        self.mapper = LinearColorMapper(palette=Viridis256, low=0.0, high=1.0, high_color=DANGER)
        fig.rect(x="core", y="resource", width=0.94, height=0.94, source=self.source,
                 fill_color={"field": "fraction", "transform": self.mapper}, line_color=None)
        fig.hover.tooltips = [("core", "@core"), ("layer", "@layer (block @block)"),
                              ("resource", "@resource"), ("used", "@used / @limit (@percent{0.0} %)"),
                              ("", "@over")]
        bar = ColorBar(color_mapper=self.mapper, width=10, ticker=BasicTicker(desired_num_ticks=5),
                       title="used", title_text_font_size="8pt", major_label_text_font_size="8pt")
        fig.add_layout(bar, "right")
        fig.xaxis.major_label_orientation = 1.2
        fig.xaxis.group_text_font_size = "8.5pt"
        fig.xgrid.grid_line_color = None
        fig.ygrid.grid_line_color = None
        fig.title.text = "Core utilization"
        self.figure = fig

    def update(self, chip: Any, generation: int = 0, stale: bool = False) -> None:
        cols, factors = heatmap_columns(chip)
        fig = self.figure
        fig.x_range.factors = factors or [("chip 0", "0")]
        fig.xaxis.major_label_text_font_size = "8pt" if len(factors) <= 64 else "0pt"
        set_columns(self.source, cols)
        over = sum(1 for b in chip.blocks if b.overflows())
        peak = max((f for f in cols["fraction"]), default=0.0)
        text = (f"{chip.n_cores} cores on {chip.n_chips} chip{'s' if chip.n_chips != 1 else ''}"
                f" · peak {peak:.0%}")
        if over:
            text += f" · {over} core{'s' if over != 1 else ''} OVER LIMIT"
        self.figure.title.text = text
        self.figure.title.text_color = DANGER if over or chip.errors else "#222222"
        _tag([self.source], generation)

    def clear(self, reason: str, generation: int = 0) -> None:
        """No cores: ``reason`` in the title (nothing of another model stays on screen)."""
        self.figure.x_range.factors = [("chip 0", "0")]
        self.source.data = {k: [] for k in self.source.data}
        self.figure.title.text = _clip(f"No cores: {reason}")
        self.figure.title.text_color = "#b26b00"
        _tag([self.source], generation)


def core_cost_columns(chip: Any, cost: Any) -> tuple[dict, list[tuple[str, str]]]:
    """Cells (core × energy/time) of a cost estimate, as a share of the costliest core."""
    cols: dict[str, list] = {k: [] for k in ("core", "what", "fraction", "layer", "value")}
    factors = []
    energy = np.asarray(cost.core_energy_J, float)
    time = np.asarray(cost.core_time_per_step_s, float)
    top_e, top_t = max(float(energy.max(initial=0)), 1e-30), max(float(time.max(initial=0)), 1e-30)
    for k, b in enumerate(chip.blocks):
        key = (f"chip {max(b.chip, 0)}", str(max(b.core, 0) if b.core >= 0 else b.index))
        factors.append(key)
        for what, value, top, text in (("energy", energy[k], top_e, f"{energy[k] * 1e6:.3f} µJ/image"),
                                       ("time/step", time[k], top_t, f"{time[k] * 1e9:.0f} ns/step")):
            cols["core"].append(key)
            cols["what"].append(what)
            cols["fraction"].append(float(value / top))
            cols["layer"].append(b.layer)
            cols["value"].append(text)
    return cols, factors


class CoreCostHeatmap:
    """Estimated energy and work per step of every core, relative to the costliest one:
    the slowest and most expensive cores stand out (``loihi_core.cost``)."""

    def __init__(self, height: int = 110):
        self.source = ColumnDataSource({k: [] for k in ("core", "what", "fraction", "layer", "value")},
                                       name="core-cost")
        fig = _figure(height, x_range=FactorRange(factors=[("chip 0", "0")]),
                      y_range=FactorRange(factors=["time/step", "energy"]),
                      tools="hover,save,reset,xwheel_zoom,xpan")
        mapper = LinearColorMapper(palette=Viridis256, low=0.0, high=1.0)
        fig.rect(x="core", y="what", width=0.94, height=0.94, source=self.source,
                 fill_color={"field": "fraction", "transform": mapper}, line_color=None)
        fig.hover.tooltips = [("core", "@core"), ("layer", "@layer"), ("", "@value"),
                              ("of the costliest core", "@fraction{0%}")]
        fig.xaxis.major_label_text_font_size = "0pt"
        fig.xgrid.grid_line_color = None
        fig.ygrid.grid_line_color = None
        fig.title.text = "Estimated cost per core: waiting for an emulation"
        self.figure = fig

    def update(self, chip: Any, cost: Any, generation: int = 0) -> None:
        cols, factors = core_cost_columns(chip, cost)
        self.figure.x_range.factors = factors or [("chip 0", "0")]
        set_columns(self.source, cols)
        slowest = chip.blocks[cost.slowest_core].layer if cost.n_cores else "–"
        self.figure.title.text = _clip(f"Est. cost per core (vs the costliest) · slowest: "
                                       f"{slowest}")
        _tag([self.source], generation)

    def clear(self, reason: str, generation: int = 0) -> None:
        self.figure.x_range.factors = [("chip 0", "0")]
        self.source.data = {k: [] for k in self.source.data}
        self.figure.title.text = _clip(f"No cost estimate: {reason}")
        _tag([self.source], generation)


# ---------------------------------------------------------------------------------------
# rates vs target
# ---------------------------------------------------------------------------------------

def rates_columns(layers: list[str], emulated: dict[str, float] | None, estimated: dict[str, float],
                  target: float, on_chip: dict[str, bool], tolerance: float = 0.05) -> dict:
    rate = [float((emulated or {}).get(n, 0.0)) for n in layers]
    est = [float(estimated.get(n, 0.0)) for n in layers]
    color = []
    for r in rate:
        off = abs(r / target - 1) if target else 0
        color.append(GOOD if off <= tolerance else (WARN if off <= 0.25 else DANGER))
    return {"layer": list(layers), "rate": rate, "estimate": est, "color": color,
            "where": ["chip" if on_chip.get(n, True) else "host" for n in layers],
            "off": [f"{(r / target - 1) * 100:+.0f} %" if target else "" for r in rate]}


class RatesPlot:
    """Mean firing rate (active neurons) per layer vs the target; dots: rate-mode estimate."""

    def __init__(self, height: int = 240):
        self.source = ColumnDataSource({"layer": [], "rate": [], "estimate": [], "color": [],
                                        "where": [], "off": []}, name="rates")
        fig = _figure(height, x_range=FactorRange(factors=["-"]), y_range=Range1d(0, 300),
                      y_axis_label="mean rate, active neurons (Hz)", tools="save,reset")
        bars = fig.vbar(x="layer", top="rate", width=0.6, source=self.source, fill_color="color",
                        fill_alpha=0.8, line_color=None, legend_label="emulator")
        fig.scatter(x="layer", y="estimate", source=self.source, size=9, marker="diamond",
                    fill_color="white", line_color="#333333", legend_label="rate-mode estimate")
        self.target = Span(location=200, dimension="width", line_color=TARGET, line_dash="dashed",
                           line_width=1.5)
        fig.add_layout(self.target)
        self.target_label = Label(x=0, y=200, x_units="screen", text="target", text_font_size="8pt",
                                  text_color=TARGET, x_offset=4, y_offset=2)
        fig.add_layout(self.target_label)
        fig.add_tools(HoverTool(renderers=[bars], tooltips=[
            ("layer", "@layer (@where)"), ("emulator", "@rate{0.0} Hz (@off vs target)"),
            ("estimate", "@estimate{0.0} Hz")]))
        fig.legend.location = "top_right"
        fig.legend.orientation = "horizontal"
        fig.legend.label_text_font_size = "8pt"
        fig.legend.background_fill_alpha = 0.0
        fig.legend.border_line_alpha = 0.0
        fig.legend.padding = 0
        fig.xgrid.grid_line_color = None
        fig.title.text = "Firing rate vs target"
        self.figure = fig

    def update(self, layers: list[str], emulated: dict[str, float] | None, estimated: dict[str, float],
               target: float, on_chip: dict[str, bool], generation: int = 0, note: str = "") -> None:
        cols = rates_columns(layers, emulated, estimated, target, on_chip)
        self.figure.x_range.factors = list(layers)
        set_columns(self.source, cols)
        top = max([target] + cols["rate"] + cols["estimate"]) * 1.3
        self.figure.y_range.update(start=0.0, end=top)
        self.target.location = float(target)
        self.target_label.y = float(target)
        self.target_label.text = f"target {target:.0f} Hz"
        self.figure.title.text = "Firing rate vs target" + (f" · {note}" if note else "")
        _tag([self.source], generation)

    def clear(self, reason: str, generation: int = 0) -> None:
        self.figure.x_range.factors = ["-"]
        self.source.data = {k: [] for k in self.source.data}
        self.figure.title.text = _clip(f"Firing rate vs target · {reason}")
        _tag([self.source], generation)


# ---------------------------------------------------------------------------------------
# spike raster and output
# ---------------------------------------------------------------------------------------

def raster_columns(result: Any, image: int, layers: list[str], rows: int = RASTER_ROWS) -> dict:
    """One band per layer: spikes of ``image`` binned to at most ``rows`` neuron rows.

    Pixel values are the fraction of the bin's neurons that spiked at that step, so a
    binned band reads like the raster it summarises.
    """
    cols: dict[str, list] = {k: [] for k in ("image", "x", "y", "dw", "dh", "layer", "per",
                                            "neurons", "spikes")}
    for k, name in enumerate(layers):
        spikes = result.spikes.get(name)
        if spikes is None:
            continue
        img, per, _, _ = bin_raster(spikes[image], max_rows=rows)
        # square root: one spike in a bin of many neurons must still be visible
        cols["image"].append(np.sqrt(img / per).astype(np.float32))
        cols["x"].append(0.0)
        cols["y"].append(float(len(layers) - 1 - k))
        cols["dw"].append(float(spikes.shape[1]))
        cols["dh"].append(0.92)
        cols["layer"].append(name)
        cols["per"].append(int(per))
        cols["neurons"].append(int(spikes.shape[2]))
        cols["spikes"].append(int(spikes[image].sum()))
    return cols


def output_columns(result: Any, image: int) -> dict:
    out = np.asarray(result.output[image])
    steps = np.arange(out.shape[0]) + 0.5
    return {"xs": [steps] * out.shape[1], "ys": [out[:, c] for c in range(out.shape[1])],
            "cls": [str(c) for c in range(out.shape[1])],
            "color": [Category10_10[c % 10] for c in range(out.shape[1])],
            "width": [1.5] * out.shape[1]}


class RasterPlot:
    """Spike rasters of every layer for one image (binned server-side), output below."""

    def __init__(self, height: int = 330, output_height: int = 170):
        self.source = ColumnDataSource({k: [] for k in ("image", "x", "y", "dw", "dh", "layer",
                                                        "per", "neurons", "spikes")},
                                       name="raster")
        self.mapper = LinearColorMapper(palette=_SPIKES_PALETTE, low=1e-6, high=1.0,
                                        low_color="#ffffff")
        fig = _figure(height, x_range=Range1d(0, 30), y_range=Range1d(0, 1),
                      tools="xpan,xwheel_zoom,box_zoom,reset,save")
        img = fig.image(image="image", x="x", y="y", dw="dw", dh="dh", source=self.source,
                        color_mapper=self.mapper)
        fig.add_tools(HoverTool(renderers=[img], tooltips=[
            ("layer", "@layer (@neurons neurons, @spikes spikes)"), ("step", "$x{0}"),
            ("neurons per row", "@per")]))
        self.ticker = FixedTicker(ticks=[])
        fig.yaxis.ticker = self.ticker
        fig.ygrid.grid_line_color = None
        fig.xaxis.visible = False
        fig.title.text = "Spike raster"
        self.figure = fig
        self.output = ColumnDataSource({"xs": [], "ys": [], "cls": [], "color": [], "width": []},
                                       name="raster-output")
        out = _figure(output_height, x_range=fig.x_range, y_range=Range1d(0, 1),
                      x_axis_label="time step",
                      y_axis_label="output", tools="xpan,xwheel_zoom,reset,save")
        lines = out.multi_line(xs="xs", ys="ys", source=self.output, line_color="color",
                               line_width="width", line_alpha=0.9)
        out.add_tools(HoverTool(renderers=[lines], tooltips=[("class", "@cls"), ("step", "$x{0}"),
                                                             ("output", "$y{0.000}")]))
        self.output_figure = out

    def update(self, result: Any, image: int, layers: list[str], generation: int = 0,
               label: int | None = None, keras_prediction: int | None = None, stale: bool = False) -> None:
        cols = raster_columns(result, image, layers)
        set_columns(self.source, cols)
        steps = int(result.steps)
        n = len(cols["layer"])
        self.figure.x_range.update(start=0.0, end=float(steps))
        self.figure.y_range.update(start=-0.05, end=float(max(n, 1)) - 0.03)
        self.ticker.ticks = [y + 0.46 for y in cols["y"]]
        self.figure.yaxis.major_label_overrides = {
            y + 0.46: f"{name}" for y, name in zip(cols["y"], cols["layer"])}
        out = output_columns(result, image)
        pred = int(result.output[image, -1].argmax())
        if label is not None and 0 <= label < len(out["width"]):
            out["width"][label] = 3.5
        set_columns(self.output, out)
        parts = [f"image {image}"]
        if label is not None:
            parts.append(f"label {label}")
        parts.append(f"emulator {pred}")
        if keras_prediction is not None:
            parts.append(f"Keras {keras_prediction}")
        self.figure.title.text = "Spikes of " + " · ".join(parts) + (
            " (last working config)" if stale else "")
        self.output_figure.title.text = "Output over time (thick: the label's class)"
        lo = min((float(np.min(y)) for y in out["ys"]), default=0.0)
        hi = max((float(np.max(y)) for y in out["ys"]), default=1.0)
        pad = 0.05 * (hi - lo) if hi > lo else 0.5
        self.output_figure.y_range.update(start=lo - pad, end=hi + pad)
        _tag([self.source, self.output], generation)

    def clear(self, reason: str, generation: int = 0) -> None:
        """No spikes to show: empty rasters, ``reason`` in the title."""
        self.source.data = {k: [] for k in self.source.data}
        self.output.data = {k: [] for k in self.output.data}
        self.ticker.ticks = []
        self.figure.yaxis.major_label_overrides = {}
        self.figure.title.text = _clip(f"No spikes: {reason}")
        self.output_figure.title.text = "Output over time"
        _tag([self.source, self.output], generation)


class ImageThumb:
    """The chosen input image (channel mean), for orientation next to the raster."""

    def __init__(self, size: int = 120):
        self.source = ColumnDataSource({"image": []}, name="thumb")
        fig = figure(width=size, height=size, toolbar_location=None, tools="",
                     x_range=Range1d(0, 1), y_range=Range1d(0, 1), min_border=0)
        fig.image(image="image", x=0, y=0, dw=1, dh=1, source=self.source,
                  palette="Greys256", level="image")
        fig.axis.visible = False
        fig.grid.visible = False
        fig.outline_line_color = None
        self.figure = fig

    def update(self, image: np.ndarray) -> None:
        arr = np.asarray(image, np.float32)
        if arr.ndim == 3:
            arr = arr.mean(axis=-1)
        if arr.ndim != 2:
            self.figure.visible = False
            return
        lo, hi = float(arr.min()), float(arr.max())
        norm = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
        set_columns(self.source, {"image": [np.flipud(1.0 - norm)]})
        self.figure.visible = True
