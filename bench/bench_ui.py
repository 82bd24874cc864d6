"""UI latency, every row of issue 16's table, in a real browser on the bundled example.

Serves the dashboard in-process (and once as ``panel serve app`` in a fresh process, for
the cold start), drives Debian's Chromium with Playwright and measures, in the browser
(``requestAnimationFrame`` polling of the Bokeh document, every plot's data source carries
the generation of the result it shows in its tags), from the user's action until the
plots show its result:

* **page load, warm** — a new page on a running server until every plot (activation
  profiles, rate bars, core heatmap, spike raster) shows the first result;
* **page load, cold** — the same on a ``panel serve app`` process that was just started
  (measured from the page request; the process start is printed on its own);
* **first change** — the first scale change on a freshly loaded page, all plots;
* **scale change** — a layer's ``scale_firing_rates`` slider moved with the keyboard
  (one key press is one throttled change, as a mouse release is): until the layer's
  profile shows it, and until all plots do;
* **undo / redo** — the toolbar buttons, until all plots show the restored config;
* **on/off chip** — ticking a layer's *on chip* box, until all plots show it;
* **over-limit block shape** — typing a block shape that overflows a core, until the
  heatmap marks it red (the chip cannot run, so nothing is emulated), and back;
* **auto-scale** — the button, until every plot shows the calibrated config.

Each row prints p50/p95 (and max) over several repetitions after warm-up, in milliseconds
measured in the page: from the input event (key or mouse press, seen by a capture listener)
or the navigation start to the animation frame that shows the result. (Playwright's own
dispatch of the key or click, ~20–50 ms, is not part of it.) Nothing here is
asserted: compare the rows with the targets printed next to them. Usage::

    .venv/bin/python bench/bench_ui.py [--changes 25] [--pages 5] [--repeats 6] [--no-cold]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


#: Resolves (to the latency in ms, measured in the page) once every named source carries a
#: generation >= g in its tags. ``"profiles"`` stands for every activation-profile source of
#: the page (there must be one at least). The latency runs from the user's last input event
#: in the page (key or mouse button, recorded by :data:`INPUT_JS`) or, for a page load, from
#: the navigation start, to the animation frame in which the condition holds.
WAIT_JS = """([names, g, fromLoad]) => {
  if (!window.Bokeh || !Bokeh.documents.length) return false;
  const models = [...Bokeh.documents[0].all_models];
  const ok = m => m.tags.length && m.tags[0] >= g;
  const done = names.every(n => {
    if (n === "profiles") {
      const ps = models.filter(m => typeof m.name === "string" && m.name.startsWith("profile-"));
      return ps.length > 0 && ps.every(ok);
    }
    return models.some(m => m.name === n && ok(m));
  });
  if (!done) return false;
  const t0 = fromLoad ? 0 : window.__lastInput;
  return t0 === null || t0 === undefined ? false : Math.max(performance.now() - t0, 0.001);
}"""
#: Records the time of the user's last key press or mouse press, wherever in the page
#: (keyboard and mouse events cross shadow roots, so a capture listener on window sees all).
INPUT_JS = """
window.__lastInput = null;
for (const kind of ["keydown", "mousedown"])
  window.addEventListener(kind, () => { window.__lastInput = performance.now(); }, true);
"""
ALL_PLOTS = ["raster", "rates", "core-heatmap", "profiles"]
#: What a change redraws: the results (a profile is redrawn only when its layer changed).
RESULTS = ["raster", "rates", "core-heatmap"]

TARGETS = {
    "page load, server warm": "< 2 s",
    "page load, server just started": "< 4 s",
    "first change after a page load": "< 400 ms",
    "scale change -> its profile": "p95 < 100 ms",
    "scale change -> all plots": "p95 < 250 ms",
    "undo": "< 250 ms",
    "redo": "< 250 ms",
    "on/off chip": "< 500 ms",
    "over-limit block shape": "< 500 ms",
    "auto-scale": "< 3 s",
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def report(rows: dict[str, list[float]], wall: dict[str, list[float]]) -> None:
    """In-page latencies, and next to them the wall time seen by the script (which adds
    Playwright's dispatch of the input and its polling round trip)."""
    print(f"\n{'what':<34} {'n':>3} {'p50':>8} {'p95':>8} {'max':>8}   {'wall p50':>8} {'p95':>7}   target")
    for label, values in rows.items():
        if not values:
            continue
        w = wall.get(label) or [float("nan")]
        print(f"{label:<34} {len(values):>3} {percentile(values, .5):6.0f}ms {percentile(values, .95):6.0f}ms "
              f"{max(values):6.0f}ms   {percentile(w, .5):6.0f}ms {percentile(w, .95):5.0f}ms   "
              f"{TARGETS.get(label, '')}")


class Session:
    """One page and the Python dashboard behind it (same process)."""

    def __init__(self, browser, url: str, sessions: list):
        self.page = browser.new_page(viewport={"width": 1500, "height": 1000})
        self.page.add_init_script(INPUT_JS)
        n = len(sessions)
        t0 = time.perf_counter()
        self.page.goto(url)
        while len(sessions) == n:
            self.page.wait_for_timeout(5)
        self.dash = sessions[-1]
        self.st = self.dash.state
        self.load_ms = self.wait(ALL_PLOTS, 1, from_load=True)
        self.load_wall = self.last_wall = (time.perf_counter() - t0) * 1000

    def wait(self, names: list[str], g: int, from_load: bool = False, timeout: float = 120_000) -> float:
        """Until the plots ``names`` show generation ``g``; the in-page latency (ms)."""
        handle = self.page.wait_for_function(WAIT_JS, arg=[names, g, from_load], polling="raf",
                                             timeout=timeout)
        return float(handle.json_value())

    def settle(self) -> None:
        """Until the runner is idle (one action at a time)."""
        while self.dash.runner.busy:
            self.page.wait_for_timeout(10)
        self.page.wait_for_timeout(150)

    def timed(self, act, names: list[str] = RESULTS) -> float:
        self.settle()
        g = self.st.generation + 1
        self.page.evaluate("() => { window.__lastInput = null; }")
        t0 = time.perf_counter()
        act()
        latency = self.wait(names, g)
        self.last_wall = (time.perf_counter() - t0) * 1000
        return latency


def cold_start(browser) -> tuple[float, float]:
    """``panel serve app`` in a fresh process: (process start to listening, page load) ms."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    panel = Path(sys.executable).with_name("panel")
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(panel), "serve", "app", "--address", "127.0.0.1", "--port", str(port),
                             f"--allow-websocket-origin=127.0.0.1:{port}"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.02)
        listening = (time.perf_counter() - t0) * 1000
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        page.goto(f"http://127.0.0.1:{port}/app")
        loaded = float(page.wait_for_function(WAIT_JS, arg=[ALL_PLOTS, 1, True], polling="raf",
                                              timeout=120_000).json_value())
        page.close()
        return listening, loaded
    finally:
        proc.terminate()
        proc.wait(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=25, help="timed scale changes (after the warm-up)")
    parser.add_argument("--warmup", type=int, default=2, help="scale changes before the timed ones")
    parser.add_argument("--pages", type=int, default=5, help="warm page loads (each with a first change)")
    parser.add_argument("--repeats", type=int, default=6, help="undo/redo, on/off chip and block-shape repeats")
    parser.add_argument("--autoscale", type=int, default=3, help="auto-scale repeats")
    parser.add_argument("--layer", default=None, help="layer whose controls move (default: first on chip)")
    parser.add_argument("--no-cold", action="store_true", help="skip the cold start of `panel serve app`")
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    from app.serving import CHROMIUM, CHROMIUM_ARGS, serve_dashboard

    rows: dict[str, list[float]] = {k: [] for k in TARGETS}
    wall: dict[str, list[float]] = {k: [] for k in TARGETS}

    def timed(label: str, s: Session, act, names: list[str] = RESULTS) -> None:
        rows[label].append(s.timed(act, names))
        wall[label].append(s.last_wall)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        if not args.no_cold:
            listening, loaded = cold_start(browser)
            print(f"cold: `panel serve app` listening after {listening / 1000:.1f} s; "
                  f"page load to all plots {loaded / 1000:.2f} s")
            rows["page load, server just started"].append(loaded)

        t0 = time.perf_counter()
        sessions: list = []
        server, url = serve_dashboard(sessions=sessions, warm_up_first=True)
        print(f"in-process server: warm-up (example + JIT) and start {time.perf_counter() - t0:.1f} s")
        try:
            # a throw-away page: the server's first page pays one-time imports and caches
            s = Session(browser, url, sessions)
            layer = args.layer or next(n for n, t in s.st.layers.items() if t.on_chip)
            s.page.close()

            for _ in range(args.pages):
                s = Session(browser, url, sessions)
                rows["page load, server warm"].append(s.load_ms)
                wall["page load, server warm"].append(s.load_wall)
                handle = s.page.locator(f".layer-{layer} .noUi-handle").first
                handle.focus()
                timed("first change after a page load", s, lambda: handle.press("ArrowRight"),
                      RESULTS + [f"profile-{layer}"])
                s.page.close()

            s = Session(browser, url, sessions)
            st = s.st
            print(f"{st.bundle.name}: {st.n_live} live images x {st.presentation_steps} steps, "
                  f"{st.chip_stage.chip.n_cores} cores; moving layer {layer!r}")
            handle = s.page.locator(f".layer-{layer} .noUi-handle").first
            handle.focus()
            for i in range(args.warmup + args.changes):
                s.settle()
                g = st.generation + 1
                s.page.evaluate("() => { window.__lastInput = null; }")
                t0 = time.perf_counter()
                handle.press("ArrowRight")  # always a new scale: results are cached per config
                profile = s.wait([f"profile-{layer}"], g)
                t1 = time.perf_counter()
                full = s.wait(RESULTS, g)
                t2 = time.perf_counter()
                if i >= args.warmup:
                    rows["scale change -> its profile"].append(profile)
                    rows["scale change -> all plots"].append(full)
                    wall["scale change -> its profile"].append((t1 - t0) * 1000)
                    wall["scale change -> all plots"].append((t2 - t0) * 1000)

            undo = s.page.get_by_role("button", name="Undo")
            redo = s.page.get_by_role("button", name="Redo")
            for _ in range(args.repeats):
                timed("undo", s, undo.click, RESULTS + [f"profile-{layer}"])
                timed("redo", s, redo.click, RESULTS + [f"profile-{layer}"])

            box = s.page.locator(f".layer-{layer} input[type=checkbox]")
            for _ in range(args.repeats):  # off the chip and back
                timed("on/off chip", s, box.click)
                timed("on/off chip", s, box.click)

            entry = s.page.locator(f".layer-{layer} .block-entry input")
            big = ", ".join(str(v) for v in st.layers[layer].shape)
            for _ in range(args.repeats):
                def type_shape(text: str) -> None:
                    entry.fill(text)
                    entry.press("Enter")
                timed("over-limit block shape", s, lambda: type_shape(big), ["core-heatmap"])
                if not st.blocked:
                    print(f"  note: block shape {big} of {layer} fits a core; the row times a re-map")
                s.timed(lambda: type_shape(""))

            button = s.page.get_by_role("button", name="Auto-scale to target")
            for i in range(args.autoscale):
                s.settle()
                # a different starting point each time (results are cached per config)
                scale_entry = s.page.locator(f".layer-{layer} .scale-entry input")
                scale_entry.fill(f"{st.layers[layer].scale_firing_rates * 1.3:.4g}")
                scale_entry.press("Enter")
                s.settle()
                before = st.calibration
                s.page.evaluate("() => { window.__lastInput = null; }")
                t0 = time.perf_counter()
                button.click()
                while st.calibration is before:
                    s.page.wait_for_timeout(10)
                rows["auto-scale"].append(s.wait(RESULTS, st.generation))
                wall["auto-scale"].append((time.perf_counter() - t0) * 1000)
            s.page.close()
        finally:
            server.stop()
        browser.close()

    report(rows, wall)
    return 0


if __name__ == "__main__":
    sys.exit(main())
