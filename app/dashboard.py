"""The Loihi Studio dashboard: :func:`create_app` builds one per browser session.

``panel serve app`` (``app/main.py``), ``python launch.py`` and the tests all call
:func:`create_app`, so every session gets its own :class:`~app.state.StudioState`,
runner and widgets: two users never see each other's changes. Only read-only data (the
bundled example, cached reference outputs) is shared between sessions.
"""

from __future__ import annotations

import asyncio
from typing import Any

import panel as pn
import param
from panel.io.document import create_doc_if_none_exists
from panel.theme import Fast

from . import exporting, icons, lifecycle
from .actions import Actions
from .data import DEFAULT_EXAMPLE, EXAMPLES, ModelBundle, example_future
from .messages import BusyIndicator, ProgressBar, StaticHTML
from .runner import Runner
from .state import StudioState
from .sweep_view import SweepPanel
from .views import (CoresPanel, KpiStrip, LayerCard, RasterPanel, RatesPanel, _alert, _show,
                    network_table)
from .warmup import wait_warm

ACCENT = "#0071c5"
#: FilePond says "Upload complete" (in green) once the bytes arrived, before the app has
#: read them: a file the app then refuses would look accepted. The transfer status and
#: its colour are hidden, and so is FilePond's live region, which announces the same
#: "upload complete" to screen readers; the side bar's own message (and the banner) says
#: whether the file was used.
_DROPPER_CSS = """
.filepond--file-status, .filepond--assistant { display: none; }
.filepond--item-panel, [data-filepond-item-state='processing-complete'] .filepond--item-panel {
  background-color: #6b7785; }
"""
HEADER = "#0b2e4f"
#: Longest a page waits for the server's warm-up before opening with a placeholder.
WARM_UP_WAIT_S = 6.0


#: Problem areas of actions, repeated in the banner above the results.
BANNER_AREAS = ("model", "data", "import", "run", "calibration", "blocks", "export", "sweep")

SECTION = {"font-size": "0.95em", "font-weight": "600", "color": HEADER, "margin-top": "4px"}


def _section(title: str) -> pn.pane.HTML:
    return pn.pane.HTML(f"<div>{title}</div>", styles=SECTION, margin=(10, 8, 0, 8))


#: Panel's Fast design without its web font (Open Sans from Google's servers): the page
#: uses the system's sans-serif font and loads nothing from the internet (Panel and Bokeh
#: serve their scripts and styles from this server; the icons are inline SVG,
#: :mod:`app.icons`). Named ``Fast`` because Panel finds a design's bundled files by the
#: lower-cased class name.
OfflineFast = type("Fast", (Fast,), {"_resources": {**Fast._resources, "font": {}},
                                      "__module__": __name__})


class StudioTemplate(pn.template.FastListTemplate):
    """Panel's FastListTemplate, attached to a session's document in one go.

    The template adds its areas (side bar, main, header, modal, …) to the document one
    root at a time, and Bokeh re-walks every model of the document after each: with the
    document frozen meanwhile it walks them once (~0.3 s less per page load).
    """

    def _init_doc(self, doc: Any = None, *args: Any, **kwargs: Any) -> Any:
        document = create_doc_if_none_exists(doc or pn.state.curdoc)
        with document.models.freeze():
            return super()._init_doc(document, *args, **kwargs)


class Download(pn.widgets.FileDownload):
    """A FileDownload whose callback may decline (return ``None``) after explaining why.

    Panel's own raises ``ValueError: Cannot transfer unknown object of type NoneType`` on
    the server; here nothing is sent, and the message the callback set is what the user
    sees.
    """

    def _sync_data(self, fileobj: Any) -> None:
        if fileobj is None:
            return
        super()._sync_data(fileobj)


class Dashboard(Actions, pn.viewable.Viewer):
    """One session's dashboard: state, runner, widgets, plots and their wiring."""

    def __init__(self, bundle: ModelBundle | None = None, **params: Any):
        super().__init__(**params)
        self.state = StudioState()
        self.cards: dict[str, LayerCard] = {}
        self.kpi = KpiStrip(state=self.state)
        self.cores = CoresPanel(state=self.state)
        self.rates = RatesPanel(state=self.state)
        self.raster = RasterPanel(state=self.state)
        self.sweep = SweepPanel(state=self.state)
        self.runner = Runner(self.state, waiting=self._waiting_panes)
        self._seen_files: set[tuple[str, int]] = set()
        self._files_lock = asyncio.Lock()
        self._build_sidebar()
        self._build_main()
        self._wire()
        self.template = self._build_template()
        if bundle is None:
            # right after a server start: wait (briefly) for the warm-up, so this page
            # opens complete instead of in two steps, and its results are computed once
            wait_warm(WARM_UP_WAIT_S)
            future = example_future()
            if future.done() and future.exception() is None:
                bundle = future.result()  # the server is warm: build the page complete
        if bundle is not None:
            self.state.set_bundle(bundle)
        else:
            pn.state.onload(self._load_example)

    # ------------------------------------------------------------------------------------
    # layout
    # ------------------------------------------------------------------------------------
    def _build_sidebar(self) -> None:
        st = self.state
        self.model_info = StaticHTML("Loading the bundled example…", sizing_mode="stretch_width",
                                       margin=(2, 8), styles={"font-size": "0.9em"})
        # no accepted_filetypes: FilePond checks MIME types, and browsers give .npz files
        # various ones (zip, octet-stream); _on_files dispatches on the extension instead
        self.dropper = pn.widgets.FileDropper(
            multiple=True, max_file_size="200MB",
            layout="compact", sizing_mode="stretch_width", margin=(4, 8), css_classes=["upload"],
            stylesheets=[_DROPPER_CSS])
        self.example_button = pn.widgets.Button(label="Bundled example", icon=icons.HOME, color="primary",
                                                variant="outline", margin=(2, 8), width=160)
        self.example_choice = pn.widgets.Select(
            options=list(EXAMPLES), value=DEFAULT_EXAMPLE, width=190, margin=(2, 8),
            css_classes=["example-choice"],
            description="the tutorial's chain of layers, or a residual network (a merge of two "
                        "branches) on the same digits")
        self.file_alert = _alert()
        self.target = pn.widgets.FloatInput.from_param(st.param.target_rate, label="target rate (Hz)",
                                                       step=10, width=150, margin=(2, 8))
        self.dt = pn.widgets.FloatInput.from_param(st.param.dt, label="dt (s)", step=0.0005,
                                                   format="0.0000", width=150, margin=(2, 8))
        self.steps = pn.widgets.IntInput.from_param(st.param.presentation_steps,
                                                    label="presentation steps", width=150, margin=(2, 8))
        self.live = pn.widgets.IntInput.from_param(st.param.live_images, label="live images",
                                                   width=150, margin=(2, 8))
        self.n_images = pn.widgets.IntInput.from_param(st.param.n_images, label="images for Run",
                                                       width=150, margin=(2, 8))
        self.global_alert = _alert()
        self.autoscale = pn.widgets.Button(label="Auto-scale to target", color="primary",
                                           sizing_mode="stretch_width", margin=(4, 8))
        self.autoblocks = pn.widgets.Button(label="Auto block shapes", sizing_mode="stretch_width",
                                            margin=(4, 8))
        self.run_button = pn.widgets.Button(label="Run", color="success", sizing_mode="stretch_width",
                                            margin=(4, 8))
        self.undo = pn.widgets.Button(label="Undo", icon=icons.UNDO, width=95, margin=(4, 4, 4, 8),
                                      disabled=True)
        self.redo = pn.widgets.Button(label="Redo", icon=icons.REDO, width=95, margin=4,
                                      disabled=True)
        self.reset = pn.widgets.Button(label="Reset", icon=icons.RESET, width=95, margin=4)
        self.progress = ProgressBar(margin=(4, 8))
        self.action_alert = _alert()
        avail = exporting.available()
        self.export_format = pn.widgets.Select(
            label="export format", options=[f.label for f in exporting.FORMATS],
            disabled_options=[f.label for f in exporting.FORMATS if not avail[f.key]],
            sizing_mode="stretch_width", margin=(2, 8))
        self.download = Download(callback=self._export, filename="model.config.json",
                                 label="Download", color="primary", sizing_mode="stretch_width",
                                 margin=(4, 8))
        self.import_input = pn.widgets.FileInput(accept=".json", margin=(4, 8), css_classes=["import"],
                                                 sizing_mode="stretch_width")
        self.import_alert = _alert()
        self.export_alert = _alert()
        self.export_warning = _alert("warning", css_classes=["export-warning"])
        self.export_notes = _alert("info")
        self.headless = pn.pane.HTML(
            "<div style='font-size:0.8em;color:#5b6675'>Headless, the exported file gives the same "
            "mapping and results:<br><code>loihi-studio simulate MODEL.keras --config "
            "CFG.json --inputs X.npz --out out.npz</code></div>", margin=(2, 8), sizing_mode="stretch_width")
        self.sidebar = [
            _section("Model and data"), self.model_info,
            pn.pane.HTML("<div style='font-size:0.82em;color:#5b6675'>Drop your model (.keras), "
                         "data (.npz with <code>images</code>, optional <code>labels</code>) or a "
                         "tuned config (.json):</div>", margin=(6, 8, 0, 8)),
            self.dropper, pn.Row(self.example_button, self.example_choice), self.file_alert,
            _section("Simulation"),
            pn.Row(self.target, self.dt), pn.Row(self.steps, self.live), pn.Row(self.n_images),
            self.global_alert,
            _section("Tune"), self.autoscale, self.autoblocks, self.run_button,
            self.progress,
            pn.Row(self.undo, self.redo, self.reset), self.action_alert,
            _section("Export and import"), self.export_warning, self.export_format, self.download,
            self.export_alert, self.export_notes,
            pn.pane.HTML("<div style='font-size:0.85em'>Import a tuned config (.json):</div>",
                         margin=(6, 8, 0, 8)),
            self.import_input, self.import_alert, self.headless,
        ]

    def _build_main(self) -> None:
        self.cards_column = pn.Column(sizing_mode="stretch_width", margin=0)
        self.network_pane = StaticHTML("", sizing_mode="stretch_width")
        self.placeholder = pn.pane.HTML(
            "<div style='padding:40px;font-size:1.1em;color:#555'>Loading the bundled example "
            "(the first start of a server imports TensorFlow once, ~10 s)…</div>",
            sizing_mode="stretch_width")
        legend = pn.pane.HTML(
            "<div style='font-size:0.82em;color:#5b6675'>Activation profiles: the Loihi neuron's "
            "rate (blue staircase) and the ideal rate (dashed) at the layer's scale, over a "
            "histogram of the layer's inputs on the calibration images. Red: the saturated "
            "region (one spike per step). Green dashed: the target rate.</div>",
            margin=(0, 8), sizing_mode="stretch_width")
        left = pn.Column(_section("Layers"), legend, self.cards_column, sizing_mode="stretch_width",
                         styles={"flex": "1 1 560px", "min-width": "480px"})
        right = pn.Column(
            _section("Firing rates"), self.rates,
            _section("Cores"), self.cores,
            _section("Spikes"), self.raster,
            sizing_mode="stretch_width", styles={"flex": "1 1 460px", "min-width": "420px"})
        self.tune = pn.FlexBox(left, right, flex_wrap="wrap", align_items="flex-start",
                               sizing_mode="stretch_width")
        # the Network and Sweep tabs get their content when first selected: the page
        # opens on Tune, and the sweep's figure and widgets (~80 Bokeh models) would
        # otherwise be sent to, and rendered by, every browser that never looks at them.
        # Once shown, a tab keeps its content (Panel's dynamic tabs would detach the Tune
        # tab and re-send all its plots on every switch back).
        lazy = {"Network": self.network_pane, "Sweep": self.sweep}
        self._lazy_tabs = {i: (pn.Column(sizing_mode="stretch_width", margin=0), content)
                           for i, content in enumerate(lazy.values(), start=1)}
        self.tabs = pn.Tabs(("Tune", self.tune),
                            *((name, self._lazy_tabs[i][0]) for i, name in enumerate(lazy, start=1)),
                            sizing_mode="stretch_width", dynamic=False)
        self.tabs.param.watch(self._on_tab, "active")
        self.banner = _alert(css_classes=["problem-banner"])
        self.main = pn.Column(self.kpi, self.banner, self.placeholder, self.tabs,
                              sizing_mode="stretch_width")
        self.tabs.visible = False

    def _on_tab(self, event: param.parameterized.Event) -> None:
        holder, content = self._lazy_tabs.pop(event.new, (None, None))
        if holder is not None:
            holder.objects = [content]

    def _build_template(self) -> StudioTemplate:
        self.spinner = BusyIndicator(size=22, margin=(12, 6))
        self.runner.param.watch(lambda e: setattr(self.spinner, "value", e.new), "busy")
        status = pn.pane.HTML("<span style='color:#dbe7f3;font-size:0.9em'>Numba emulator · "
                              "bit-exact with NengoLoihi</span>", margin=(14, 10))
        # one root per template area: Bokeh re-walks every model of the document for each
        # root added, so 25 side-bar roots cost seconds per page load
        sidebar = pn.Column(*self.sidebar, sizing_mode="stretch_width", margin=0)
        return StudioTemplate(
            title="Loihi Studio", sidebar=[sidebar], main=[self.main],
            header=[pn.Row(pn.layout.HSpacer(), status, self.spinner, sizing_mode="stretch_width")],
            accent_base_color=ACCENT, header_background=HEADER, sidebar_width=370,
            main_layout=None, theme_toggle=False, main_max_width="1800px", busy_indicator=None,
            font_url="", design=OfflineFast, meta_description="Tune Keras models for Intel Loihi",
            font="system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif")

    def _waiting_panes(self) -> list:
        return [self.rates.pane, self.cores.pane, self.raster.plots]

    # ------------------------------------------------------------------------------------
    # wiring
    # ------------------------------------------------------------------------------------
    def _wire(self) -> None:
        st = self.state
        st.param.watch(self._on_layers, "layers")
        st.param.watch(self._on_network, "network_stage")
        st.param.watch(self._on_chip, "chip_stage")
        st.param.watch(self._on_emulation, "emulation")
        st.param.watch(lambda e: self.raster.refresh(), "image_index")
        st.param.watch(self._on_problems, "problems")
        st.param.watch(lambda *e: self.kpi.refresh(), ["evaluation", "current", "blocked"])
        st.param.watch(lambda *e: self._refresh_export(), ["blocked", "config"])
        st.param.watch(self._on_target, "target_rate")
        st.param.watch(self._on_history, ["can_undo", "can_redo"])
        st.param.watch(self._on_bundle, "bundle")
        st.param.watch(self._on_config, "config")
        self.autoscale.on_click(self._on_autoscale)
        self.autoblocks.on_click(self._on_autoblocks)
        self.run_button.on_click(self._on_run)
        self.undo.on_click(lambda e: st.undo())
        self.redo.on_click(lambda e: st.redo())
        self.reset.on_click(lambda e: st.reset())
        self.example_button.on_click(self._on_example)
        self.dropper.param.watch(self._on_files, "value")
        self.import_input.param.watch(self._on_import, "value")
        self.export_format.param.watch(self._on_export_format, "value")
        st.param.watch(lambda e: self._update_run_label(), "n_images")
        self._update_run_label()

    def _update_run_label(self) -> None:
        self.run_button.label = f"Run {self.state.n_images} images"

    def _on_layers(self, event: param.parameterized.Event) -> None:
        self.cards = {name: LayerCard(tuning=t, state=self.state) for name, t in event.new.items()}
        self.cards_column[:] = list(self.cards.values())

    def _on_bundle(self, event: param.parameterized.Event) -> None:
        b = event.new
        if b is None:
            return
        notes = "".join(f"<div style='color:#b26b00;margin-top:4px'>{n}</div>" for n in b.notes)
        labels = "with labels" if b.labels is not None else "no labels"
        self.model_info.object = (
            f"<div><b>{b.name}</b><br><span style='color:#555'>data: {b.data_name or '–'} · "
            f"{len(b.images):,} images {' × '.join(map(str, b.images.shape[1:]))} · {labels}</span>"
            f"{notes}</div>")
        self.download.filename = exporting.filename(exporting.BY_LABEL[self.export_format.value], b.name)
        self.placeholder.visible = False
        self.tabs.visible = True

    def _on_network(self, event: param.parameterized.Event) -> None:
        stage = event.new
        st = self.state
        if stage is None:  # a model or data switch: nothing of the old results stays
            for card in self.cards.values():
                card.clear(st.status_short())
            self.rates.refresh()
            return
        for name, card in self.cards.items():
            if name in stage.profiles:
                card.profile.update(stage.profiles[name], st.target_rate, stage.generation)
        self.rates.refresh()

    def _on_chip(self, event: param.parameterized.Event) -> None:
        self.cores.refresh()
        if event.new is None:
            self.network_pane.object = network_table(self.state)
        for card in self.cards.values():
            card.refresh_header()
        self.kpi.refresh()
        table = network_table(self.state)
        if table != self.network_pane.object:  # unchanged by most edits: send nothing
            self.network_pane.object = table

    def _on_emulation(self, event: param.parameterized.Event) -> None:
        self.cores.refresh_cost()
        self.raster.refresh()
        self.rates.refresh()
        for card in self.cards.values():
            card.refresh_header()
        self.kpi.refresh()

    def _on_target(self, event: param.parameterized.Event) -> None:
        stage = self.state.network_stage
        if stage is not None:
            for name, card in self.cards.items():
                if name in stage.profiles:
                    card.profile.update(stage.profiles[name], event.new, stage.generation)
        self.rates.refresh()
        for card in self.cards.values():
            card.refresh_header()
        self.kpi.refresh()

    def _on_problems(self, event: param.parameterized.Event) -> None:
        st = self.state
        for card in self.cards.values():
            card.show_problems()
        # empty views say why they are empty: the reason may have just arrived
        self.cores.refresh() if st.chip_stage is None else _show(self.cores.alert, st.problems_for("mapping"))
        if st.emulation is None:
            self.raster.refresh()
            self.rates.refresh()
        if st.network_stage is None:
            for card in self.cards.values():
                card.clear(st.status_short())
        _show(self.global_alert, st.problems_for("global"))
        _show(self.file_alert, st.problems_for("model") + st.problems_for("data"))
        _show(self.action_alert, st.problems_for("calibration") + st.problems_for("run")
              + st.problems_for("blocks"))
        _show(self.export_alert, st.problems_for("export"))
        _show(self.import_alert, st.problems_for("import"))
        # the side bar's messages sit next to their controls, possibly below its fold: the
        # banner over the results repeats those of actions (which the user just did)
        _show(self.banner, st.action_problems(BANNER_AREAS))
        self._refresh_export()

    def _on_history(self, *events: param.parameterized.Event) -> None:
        self.undo.disabled = not self.state.can_undo
        self.redo.disabled = not self.state.can_redo

    def __panel__(self) -> pn.viewable.Viewable:
        return self.template


def build_dashboard(bundle: ModelBundle | None = None) -> Dashboard:
    """A new dashboard (one per session); ``bundle`` skips loading the example.

    Its memory is given back when the page's session ends (:mod:`app.lifecycle`).
    """
    dash = Dashboard(bundle=bundle)
    lifecycle.register(dash)
    return dash


def configure_panel() -> None:
    """Panel extensions the dashboard uses (idempotent; called for every session)."""
    pn.extension("filedropper", notifications=True, sizing_mode="stretch_width")


def create_app() -> pn.template.FastListTemplate:
    """The servable page of one session (what ``panel serve``, launch.py and tests serve)."""
    configure_panel()
    return build_dashboard().template
