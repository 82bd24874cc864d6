"""The *Sweep* tab: a sweep's results as accuracy vs spikes, Pareto front highlighted.

``loihi-studio sweep`` (:mod:`loihi_core.sweep`) evaluates many configs and writes a
results CSV. Loading it here plots every configuration that ran as accuracy against
spikes per image (the energy proxy), draws the Pareto front (no other configuration is
both more accurate and cheaper), and applies a chosen row's config to the live tuning
(undoable), where it can be refined.
"""

from __future__ import annotations

from typing import Any

import panel as pn
import param
from bokeh.models import ColumnDataSource, HoverTool, Range1d, TapTool

from loihi_core.errors import LoihiStudioError

from .data import read_upload
from .plots import ACCENT, DANGER, _figure
from .state import StudioState
from .messages import MessageBox
from .views import problems_markdown

#: Result columns that are not swept parameters.
METRICS = {"index", "source", "accuracy", "spikes_per_image", "synops_per_image", "n_cores",
           "energy_per_image_J", "time_per_step_s", "latency_steps", "error", "config",
           "n_images", "seconds"}


def load_results_bytes(data: bytes, filename: str):
    """A results table from uploaded CSV bytes (read by the core's ``load_results``)."""
    from loihi_core.sweep import load_results

    return read_upload(data, filename, "results.csv", load_results, raise_as=LoihiStudioError)


def swept_fields(df) -> list[str]:
    return [c for c in df.columns if c not in METRICS and not c.startswith("rate/")]


#: What the scatter's x axis can show (a cost to minimise): label → (column, display scale).
X_AXES = {"spikes per image (energy proxy)": ("spikes_per_image", 1.0),
          "energy per image (µJ, Loihi estimate)": ("energy_per_image_J", 1e6),
          "time per step (µs, Loihi estimate)": ("time_per_step_s", 1e6),
          "latency (steps to a stable answer)": ("latency_steps", 1.0)}


def scatter_columns(df, x_axis: str = "spikes per image (energy proxy)"
                    ) -> tuple[dict, dict, list[int]]:
    """Columns of all configurations that ran, of the front, and the front's row labels
    (``spikes`` holds the chosen x axis, in display units)."""
    from loihi_core.sweep import pareto_front

    column, scale = X_AXES[x_axis]
    if column not in df.columns:  # a results file from before the cost model
        column, scale = "spikes_per_image", 1.0
    ok = df[(df["error"] == "") & df["accuracy"].notna() & df[column].notna()]
    fields = swept_fields(df)
    label = [", ".join(f"{f}={row[f]}" for f in fields) for _, row in ok.iterrows()]
    allc = {"row": [int(i) for i in ok.index], "spikes": (ok[column].astype(float) * scale).tolist(),
            "accuracy": (ok["accuracy"].astype(float) * 100).tolist(), "params": label}
    front = pareto_front(df, minimize=column)
    frontc = {"spikes": (front[column].astype(float) * scale).tolist(),
              "accuracy": (front["accuracy"].astype(float) * 100).tolist()}
    return allc, frontc, [int(i) for i in front.index]


class SweepPanel(pn.viewable.Viewer):
    """Load a sweep results CSV, see the trade-off, apply a configuration."""

    state = param.ClassSelector(class_=StudioState)

    def __init__(self, **params: Any):
        super().__init__(**params)
        self.df = None
        self.points = ColumnDataSource({"row": [], "spikes": [], "accuracy": [], "params": []},
                                       name="sweep-points")
        self.front = ColumnDataSource({"spikes": [], "accuracy": []}, name="sweep-front")
        # fixed ranges: the empty state shows its axes (a data range with no data has none,
        # and Bokeh logs "could not set initial ranges" for it)
        fig = _figure(380, x_axis_label="spikes per image (energy proxy)",
                      y_axis_label="accuracy (%)", tools="pan,wheel_zoom,box_zoom,reset,save",
                      x_range=Range1d(0, 1000), y_range=Range1d(0, 100))
        dots = fig.scatter("spikes", "accuracy", source=self.points, size=8, fill_color=ACCENT,
                           fill_alpha=0.45, line_color=None, legend_label="configuration",
                           selection_fill_color=DANGER, selection_fill_alpha=1.0,
                           nonselection_fill_alpha=0.3)
        fig.line("spikes", "accuracy", source=self.front, line_color=DANGER, line_width=2,
                 legend_label="Pareto front")
        fig.scatter("spikes", "accuracy", source=self.front, size=11, marker="diamond",
                    fill_color=DANGER, line_color="white")
        fig.add_tools(HoverTool(renderers=[dots], tooltips=[
            ("row", "@row"), ("accuracy", "@accuracy{0.0} %"), ("spikes", "@spikes{0,0}"),
            ("", "@params")]))
        fig.add_tools(TapTool(renderers=[dots]))
        fig.legend.location = "bottom_right"
        fig.legend.visible = False  # no empty legend before there is anything to explain
        fig.title.text = "No sweep loaded yet: choose a results CSV written by loihi-studio sweep"
        self.figure = fig
        self.points.selected.on_change("indices", self._on_tap)
        self.file = pn.widgets.FileInput(accept=".csv", css_classes=["sweep-file"], margin=(4, 8))
        self.x_axis = pn.widgets.Select(label="x axis (a cost to minimise)", options=list(X_AXES),
                                        width=300, margin=(4, 8), css_classes=["sweep-x"])
        self.x_axis.param.watch(lambda e: self.df is not None and self.load(self.df, self._name),
                                "value")
        self._name = "results.csv"
        self.choice = pn.widgets.Select(label="configuration", options={}, width=520, margin=(4, 8))
        self.apply = pn.widgets.Button(label="Apply to the tuning", color="primary", disabled=True,
                                       width=200, margin=(24, 8, 4, 8))
        self.summary = pn.pane.HTML("", margin=(4, 8), styles={"font-size": "0.9em", "color": "#444"})
        self.alert = MessageBox("danger", margin=(4, 8), font_size="1em")
        self.file.param.watch(self._on_file, "value")
        self.apply.on_click(self._on_apply)
        self.layout = pn.Column(
            pn.pane.HTML("<div style='font-size:0.9em;color:#5b6675'>Results of "
                         "<code>loihi-studio sweep MODEL.keras --data X.npz --grid SWEEP.json --out results.csv</code>:"
                         "</div>", margin=(8, 8, 0, 8)),
            pn.Row(self.file, self.x_axis), self.alert, self.summary,
            pn.pane.Bokeh(fig, sizing_mode="stretch_width"),
            pn.Row(self.choice, self.apply), sizing_mode="stretch_width")

    def load(self, df, name: str = "results.csv") -> None:
        """Show a results table (also what the tests call)."""
        self.df, self._name = df, name
        allc, frontc, front_rows = scatter_columns(df, self.x_axis.value)
        self.points.data = allc
        self.front.data = frontc
        failed = int((df["error"] != "").sum())
        self.summary.object = (f"<b>{name}</b>: {len(df)} configurations, {failed} did not run; "
                               f"{len(front_rows)} on the Pareto front")
        self.figure.title.text = f"Accuracy vs {self.x_axis.value.split(' (')[0]}"
        self.figure.xaxis.axis_label = self.x_axis.value
        self.figure.legend.visible = bool(allc["row"])
        xs, ys = allc["spikes"], allc["accuracy"]
        if xs:
            lo, hi = min(xs), max(xs)
            pad = 0.15 * (hi - lo) if hi > lo else max(abs(hi) * 0.15, 1.0)
            self.figure.x_range.update(start=lo - pad, end=hi + pad)
            lo, hi = min(ys), max(ys)
            pad = 0.2 * (hi - lo) if hi > lo else 2.0
            self.figure.y_range.update(start=max(lo - pad, 0.0), end=min(hi + pad, 100.0 + pad))
        options = {}
        for i in front_rows + [r for r in allc["row"] if r not in front_rows]:
            row = df.loc[i]
            star = "★ " if i in front_rows else ""
            options[f"{star}row {i}: {row['accuracy'] * 100:.1f} %, "
                    f"{row['spikes_per_image']:,.0f} spikes"] = i
        self.choice.options = options
        self.apply.disabled = not options

    def _on_file(self, event: param.parameterized.Event) -> None:
        if event.new is None:
            return
        name = self.file.filename or "results.csv"
        try:
            df = load_results_bytes(event.new, name)
        except LoihiStudioError as exc:
            self.alert.object = str(exc)
            return
        self.alert.object = ""
        self.load(df, name)

    def _on_tap(self, attr: str, old: list, new: list) -> None:
        if new:
            row = self.points.data["row"][new[0]]
            if row in self.choice.options.values():
                self.choice.value = row

    def apply_row(self, row: int) -> bool:
        from loihi_core.sweep import config_of

        ok = self.state.apply_external(config_of(self.df.loc[row]), f"sweep row {row}", "sweep")
        problems = self.state.problems_for("sweep")
        self.alert.object = problems_markdown(problems)
        return ok

    def _on_apply(self, event: Any) -> None:
        if self.df is not None and self.choice.value is not None:
            self.apply_row(int(self.choice.value))

    def __panel__(self) -> pn.viewable.Viewable:
        return self.layout

