"""The dashboard off the main path, in a real browser (issue 15's numbered problems).

Each test drives one way the old dashboard showed something untrue (a model that cannot
run, a data set smaller than the live images, a message that outlived its cause, an
invalid entry, an export of a config that cannot run, a confusing message) and checks
what the page and the session's state show instead. Server-side errors are caught from
the log: any ERROR record during a test fails it (a browser test alone would not see a
traceback the server printed).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from test_app_browser import (app_page, browser_source, browser_type_launch_args,  # noqa: F401
                              served, settled, shows_generation, wait_until)

pytestmark = pytest.mark.browser


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(self.format(record))


@pytest.fixture()
def server_errors():
    """ERROR records logged by the server (Bokeh, Tornado, Panel, the app) during a test."""
    handler = _Collect()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler.records
    finally:
        root.removeHandler(handler)
    assert not handler.records, "\n".join(handler.records)


@pytest.fixture()
def page(app_page, server_errors):
    return app_page


@pytest.fixture(scope="module")
def one_layer_model(tmp_path_factory) -> tuple[Path, Path]:
    """A Conv2D → AveragePooling → Flatten → Dense model (one neuron layer) with 5 images."""
    import keras

    out = tmp_path_factory.mktemp("one_layer")
    keras.utils.set_random_seed(3)
    model = keras.Sequential([
        keras.Input((12, 12, 1)),
        keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
        keras.layers.AveragePooling2D(2, name="pool"),
        keras.layers.Flatten(name="flat"),
        keras.layers.Dense(3, name="out"),
    ])
    path = out / "one_layer.keras"
    model.save(path)
    data = out / "one_layer_data.npz"
    rng = np.random.default_rng(0)
    np.savez(data, images=rng.uniform(0, 1, (5, 12, 12, 1)).astype(np.float32),
             labels=np.arange(5) % 3)
    return path, data


def card_alert(page, layer: str):
    return page.locator(f".layer-{layer} .alert")


def alert_texts(locator) -> str:
    return " ".join(locator.locator("li").all_inner_texts()) if locator.is_visible() else ""


def overflow_a_core(page, dash) -> str:
    """Type a block shape as large as a big on-chip layer (one core cannot hold it) and wait
    for the over-limit mapping; return the layer."""
    st = dash.state
    layer = next(n for n, t in st.layers.items() if t.on_chip and t.n_neurons > 1024)
    entry = page.locator(f".layer-{layer} .block-entry input")
    entry.fill(", ".join(str(s) for s in st.layers[layer].shape))
    entry.press("Enter")
    wait_until(lambda: st.blocked and not dash.runner.busy, page, what="the over-limit mapping")
    return layer


def in_viewport(page, locator) -> bool:
    box = locator.bounding_box()
    size = page.viewport_size
    return bool(box) and box["y"] >= 0 and box["y"] + min(box["height"], 40) <= size["height"]


def kpi_text(page) -> str:
    return page.locator(".kpi-row").first.inner_text()


# ---------------------------------------------------------------------------------------

def test_a_model_that_cannot_run_replaces_every_view(page, one_layer_model):
    """Problem 2: no view keeps the previous model's results; the reason is followable."""
    page, dash = page
    st = dash.state
    model, data = one_layer_model
    page.locator(".upload input[type=file]").set_input_files([str(model), str(data)])
    wait_until(lambda: st.bundle.name == "one_layer.keras" and st.bundle.data_name == data.name
               and st.blocked and not dash.runner.busy, page, what="the new model")
    assert list(st.layers) == ["conv"]
    # every result view is empty, in the browser too
    wait_until(lambda: browser_source(page, "core-heatmap")["length"] == 0, page, what="empty heatmap")
    assert browser_source(page, "raster")["length"] == 0
    assert browser_source(page, "raster-output")["length"] == 0
    assert browser_source(page, "rates")["data"]["layer"] == ["conv"]
    # the KPI strip says why, instead of "computing" for ever
    text = wait_until(lambda: "cannot run" in kpi_text(page) and kpi_text(page), page,
                      what="the KPI reason")
    assert "computing" not in text and "one neuron layer" in text
    # the layer header agrees with the checkbox, which cannot be switched on
    header = page.locator(".layer-conv").first
    wait_until(lambda: "host" in header.locator("b").first.locator("xpath=..").inner_text(), page,
               what="the header")
    assert "chip" not in header.locator("b").first.locator("xpath=..").inner_text().split("·")[-1]
    assert not st.layers["conv"].on_chip
    # the message says what can be done with this model, and it can be done: ticking
    # "on chip" puts the only layer on Loihi behind NengoLoihi's on/off input encoding
    msg = " ".join(p.message for p in st.problems)
    assert "one neuron layer" in msg and 'Tick "on chip"' in msg
    box = page.locator(".layer-conv input[type=checkbox]")
    assert not box.is_disabled()
    box.check()
    wait_until(lambda: st.layers["conv"].on_chip and not st.blocked and settled(dash)
               and st.emulation is not None, page, what="the model on chip")
    assert [h.endswith("_encoder") for h in st.chip_stage.chip.host_layers] == [True]
    page.get_by_role("button", name="Auto-scale to target").click()
    wait_until(lambda: settled(dash) and st.emulation is not None
               and st.emulation.result.spike_counts["conv"].sum() > 0, page, what="spikes",
               timeout=90)
    wait_until(lambda: "cannot run" not in kpi_text(page), page, what="results in the KPIs")
    # the bundled example comes back complete
    page.get_by_role("button", name="Bundled example").click()
    wait_until(lambda: st.bundle.name != "one_layer.keras" and settled(dash), page, what="the example")
    assert list(st.layers) == ["to-spikes", "conv0", "conv1", "dense0"]
    wait_until(lambda: shows_generation(page, "raster", st.generation), page, what="the raster")
    assert browser_source(page, "core-heatmap")["length"] == 4 * st.chip_stage.chip.n_cores
    assert "cannot run" not in kpi_text(page)


def test_fewer_images_than_live_images(page, tmp_path):
    """Problem 3: no IndexError; the KPIs count the new images; the notice appears."""
    page, dash = page
    st = dash.state
    assert st.live_images > 3
    small = tmp_path / "three.npz"
    np.savez(small, images=(st.bundle.images[:3] * 255).round().astype(np.uint8),
             labels=st.bundle.labels[:3])
    page.locator(".upload input[type=file]").set_input_files(str(small))
    wait_until(lambda: st.bundle.data_name == "three.npz" and settled(dash), page, what="new data")
    wait_until(lambda: shows_generation(page, "raster", st.generation), page, what="the raster")
    assert len(st.emulation.image_ids) == 3
    wait_until(lambda: "/3 live images" in kpi_text(page), page, what="the KPIs of 3 images")
    wait_until(lambda: page.get_by_text("Loaded 3 images from three.npz").count() > 0, page,
               what="the notice")


def test_messages_disappear_with_their_cause(page, tmp_path):
    """Problem 4: a Run error goes with Undo, an import error with the next good edit, the
    export notes with the format they belong to."""
    page, dash = page
    st = dash.state
    layer = overflow_a_core(page, dash)
    page.get_by_role("button", name="Run 200 images").click()
    wait_until(lambda: st.problems_for("run"), page, what="the Run error")
    page.get_by_role("button", name="Undo").click()
    wait_until(lambda: settled(dash) and st.chip_stage.ok, page, what="undo")
    assert st.problems_for("run") == []
    wait_until(lambda: page.get_by_text("cannot run", exact=False).count() == 0
               or not page.get_by_text("exceed the per-core").first.is_visible(), page,
               what="the Run error to go")
    # a failed import, then a good edit
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema_version": 1, "layers": {"no_such_layer": {"scale_firing_rates": 3}}}')
    page.locator(".import input[type=file]").set_input_files(str(bad))
    wait_until(lambda: st.problems_for("import"), page, what="the import error")
    assert "no_such_layer" in " ".join(p.message for p in st.problems_for("import"))
    shown = page.locator(".problem-banner").get_by_text("bad.json")
    wait_until(lambda: shown.count() and shown.first.is_visible(), page, what="shown")
    scale = page.locator(f".layer-{layer} .scale-entry input")
    scale.fill("66")
    scale.press("Enter")
    wait_until(lambda: settled(dash) and st.config.for_layer(layer).scale_firing_rates == 66, page,
               what="the edit")
    assert st.problems_for("import") == []
    wait_until(lambda: shown.count() == 0 or not shown.first.is_visible(), page, what="it to go")
    # export notes belong to their format
    fmt = page.locator("select").filter(has_text="Tuned config")
    fmt.select_option(label="NengoLoihi script (.zip)")
    wait_until(lambda: dash.export_format.value.startswith("NengoLoihi"), page, what="the format")
    with page.expect_download():
        page.get_by_role("button", name="Download").click()
    wait_until(lambda: dash.export_notes.visible, page, what="the export notes")
    fmt.select_option(label="Tuned config (.json)")
    wait_until(lambda: not dash.export_notes.visible, page, what="the notes to go")


def test_invalid_entries_are_explained_in_place(page):
    """Problem 5: scale 0 and -5, a block shape larger than the layer."""
    page, dash = page
    st = dash.state
    layer = next(n for n, t in st.layers.items() if t.on_chip and len(t.shape) == 3)
    before = st.config.to_json()
    scale = page.locator(f".layer-{layer} .scale-entry input")
    alert = card_alert(page, layer)
    for bad in ("0", "-5"):
        scale.fill(bad)
        scale.press("Enter")
        wait_until(lambda: "scale" in alert_texts(alert), page, what=f"the error for {bad}")
        assert "must be" in alert_texts(alert) and st.config.to_json() == before
        assert scale.input_value() == bad  # what was typed stays, next to the reason
    scale.fill("50")
    scale.press("Enter")
    wait_until(lambda: st.config.for_layer(layer).scale_firing_rates == 50 and settled(dash), page,
               what="the valid scale")
    wait_until(lambda: not alert.is_visible(), page, what="the error to go")
    # a block shape larger than the layer is clipped to it, and the card says so
    shape = st.layers[layer].shape
    too_big = (shape[0] + 7, shape[1] + 7, 4)
    block = page.locator(f".layer-{layer} .block-entry input")
    block.fill(", ".join(map(str, too_big)))
    block.press("Enter")
    note = page.locator(f".layer-{layer}").get_by_text(
        f"is larger than the {shape[0]} × {shape[1]} × {shape[2]} layer: clipped to")
    wait_until(lambda: note.count() and note.first.is_visible(), page, what="the clipping note")
    wait_until(lambda: st.config.for_layer(layer).block_shape == (shape[0], shape[1], 4)
               and settled(dash), page, what="the clipped block shape")
    assert block.input_value() == f"{shape[0]}, {shape[1]}, 4"


def test_exports_of_a_config_that_cannot_run_say_so(page):
    """Problem 6: a warning before downloading; no server traceback on any format."""
    page, dash = page
    st = dash.state
    overflow_a_core(page, dash)
    warning = page.locator(".export-warning").get_by_text("cannot run on the chip")
    wait_until(lambda: warning.count() and warning.first.is_visible(), page, what="the export warning")
    fmt = page.locator("select").filter(has_text="Tuned config")
    button = page.get_by_role("button", name="Download")
    assert button.is_enabled()  # the JSON still saves the config, with the warning above
    for label in ("Lava-dl NetX (.net, HDF5)", "NengoLoihi script (.zip)"):
        fmt.select_option(label=label)
        wait_until(lambda: dash.export_format.value == label, page, what=label)
        wait_until(lambda: button.is_disabled(), page, what=f"{label} disabled")
    fmt.select_option(label="Tuned config (.json)")
    page.get_by_role("button", name="Undo").click()
    wait_until(lambda: settled(dash) and st.chip_stage.ok, page, what="undo")
    wait_until(lambda: warning.count() == 0 or not warning.first.is_visible(), page,
               what="the warning to go")


def test_messages_say_what_happened(page, tmp_path):
    """Problem 7: a binary file as config, a failed upload, errors in view."""
    page, dash = page
    st = dash.state
    binary = tmp_path / "weights.json"
    binary.write_bytes(bytes(range(256)) * 4)
    page.locator(".import input[type=file]").set_input_files(str(binary))
    wait_until(lambda: st.problems_for("import"), page, what="the import error")
    message = " ".join(p.message for p in st.problems_for("import"))
    assert "codec" not in message and "not a text file" in message
    # the error is in view without scrolling the side bar
    shown = page.locator(".problem-banner").get_by_text("weights.json")
    # (polled: the banner's text node is replaced when another message arrives meanwhile)
    wait_until(lambda: shown.count() and shown.first.is_visible() and in_viewport(page, shown.first),
               page, what="the banner, in view")
    # a failed upload is not announced as complete
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    page.locator(".upload input[type=file]").set_input_files(str(bad))
    wait_until(lambda: st.problems_for("data"), page, what="the data error")
    # FilePond has finished (and announced) the transfer: nothing may say "complete" now
    done = page.locator("[data-filepond-item-state='processing-complete']")
    wait_until(lambda: done.count() > 0, page, what="FilePond to finish the transfer")
    page.wait_for_timeout(300)
    completes = page.get_by_text("Upload complete")
    assert all(not completes.nth(i).is_visible() for i in range(completes.count()))


def test_the_page_needs_no_network(browser, served):
    """Problem 8: with every non-loopback request blocked, nothing fails to load, every
    icon is drawn, and Bokeh does not complain about ranges."""
    from test_app_browser import open_session

    url, sessions = served
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    blocked, failed, console = [], [], []

    def route(r):
        host = r.request.url.split("/")[2] if "://" in r.request.url else ""
        if r.request.url.startswith(("data:", "blob:")) or host.split(":")[0] in ("127.0.0.1", "localhost"):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.on("requestfailed", lambda req: failed.append(req.url))
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    try:
        dash = open_session(page, url, sessions)
        page.locator(".bk-tab").filter(has_text="Sweep").click()
        page.locator(".bk-tab").filter(has_text="Tune").click()
        page.wait_for_timeout(500)
        assert blocked == [] and failed == [], (blocked, failed)
        assert not [c for c in console if c.startswith("error")], console
        assert not [c for c in console if "could not set initial ranges" in c], console
        # icons are inline SVG, drawn with a size; the labels have no stray separators
        assert page.get_by_role("button", name="Download").inner_text() == "Download"
        for name in ("Undo", "Redo", "Reset", "Bundled example"):
            icon = page.get_by_role("button", name=name).locator("svg")
            assert icon.count() == 1 and icon.bounding_box()["width"] > 8, name
        assert dash.state.emulation is not None
    finally:
        context.close()


def test_the_residual_example_shows_its_merge(page):
    """The second bundled example: a layer fed by two branches says so in its card."""
    page, dash = page
    st = dash.state
    page.locator(".example-choice select").select_option("MNIST residual (graph)")
    page.get_by_role("button", name="Bundled example").click()
    wait_until(lambda: st.bundle.name == "mnist_residual.keras" and settled(dash)
               and st.emulation is not None, page, what="the residual example")
    assert list(st.layers) == ["to-spikes", "conv0", "conv_a", "res", "dense0"]
    assert st.layers["res"].inputs == ["conv0", "conv_a"]
    header = page.locator(".layer-res").first.locator("b").first.locator("xpath=..")
    wait_until(lambda: "from conv0, conv_a" in header.inner_text(), page, what="the res header")
    rates = st.emulation.result.rates()
    assert all(rates[name] > 50 for name in ("conv0", "conv_a", "res", "dense0")), rates
    wait_until(lambda: browser_source(page, "core-heatmap")["length"]
               == 4 * st.chip_stage.chip.n_cores, page, what="the heatmap")



def test_network_and_sweep_tabs_are_filled_when_first_selected(page):
    """The page opens without the Network and Sweep tabs' content (fewer models to send
    and render); selecting a tab shows it, and it stays when the user switches back."""
    page, dash = page
    st = dash.state
    assert browser_source(page, "sweep-points") is None
    assert page.locator(".net-table").count() == 0
    page.locator(".bk-tab").filter(has_text="Network").click()
    table = page.locator(".net-table").first
    wait_until(lambda: table.count() and table.is_visible(), page, what="the network table")
    for name in st.layers:
        assert name in table.inner_text(), name
    page.locator(".bk-tab").filter(has_text="Sweep").click()
    wait_until(lambda: browser_source(page, "sweep-points") is not None, page, what="the sweep plot")
    assert page.locator(".sweep-file input[type=file]").count() == 1
    page.locator(".bk-tab").filter(has_text="Tune").click()
    page.locator(".bk-tab").filter(has_text="Sweep").click()
    shown = dash.tabs[2].objects
    assert len(shown) == 1 and shown[0] is dash.sweep.layout  # built once, kept
    # the Tune tab's plots stayed in the page meanwhile: a change still reaches them
    page.locator(".bk-tab").filter(has_text="Tune").click()
    layer = next(n for n, t in st.layers.items() if t.on_chip)
    before = st.generation
    entry = page.locator(f".layer-{layer} .scale-entry input")
    entry.fill(f"{st.layers[layer].scale_firing_rates * 1.5:.4g}")
    entry.press("Enter")
    wait_until(lambda: settled(dash) and st.generation > before
               and shows_generation(page, "raster", st.generation), page, what="the raster update")
