"""UI latency: from a scale-slider change in a real browser to the updated plots.

Serves the dashboard in-process on the bundled example, drives Debian's Chromium with
Playwright, and moves one layer's ``scale_firing_rates`` slider with the keyboard (each
key press is one throttled change, as a mouse release is). For every change it measures,
in the browser (``requestAnimationFrame`` polling of the Bokeh document), until

* **profiles** — the layer's activation profile shows the new scale (first stage:
  conversion and rate estimates), and
* **all plots** — the spike raster, rate bars and core heatmap show the new emulation
  (mapping and the bit-exact emulator on the live images),

and prints p50/p95 over the changes after the first ``--warmup`` ones (the first
updates after a page load also pay for one-time work in the browser and the server: they
are printed on their own). Usage::

    .venv/bin/python bench/bench_ui.py [--changes 25] [--warmup 2] [--layer conv0]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--disable-quic"]

#: Resolves once every named source carries a generation >= g in its tags.
WAIT_JS = """([names, g]) => {
  if (!window.Bokeh || !Bokeh.documents.length) return false;
  const models = [...Bokeh.documents[0].all_models];
  return names.every(n => models.some(m => m.name === n && m.tags.length && m.tags[0] >= g));
}"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=25, help="timed changes (after the warm-up)")
    parser.add_argument("--warmup", type=int, default=2, help="changes before the timed ones")
    parser.add_argument("--layer", default=None, help="layer whose slider moves (default: first on chip)")
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    from app.serving import serve_dashboard

    t0 = time.perf_counter()
    sessions = []
    server, url = serve_dashboard(sessions=sessions, warm_up_first=True)
    print(f"warm-up (example + JIT) and server start: {time.perf_counter() - t0:.1f} s")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            t0 = time.perf_counter()
            page.goto(url)
            while not sessions:
                page.wait_for_timeout(20)
            dash = sessions[-1]
            st = dash.state
            page.wait_for_function(WAIT_JS, arg=[["raster"], 1], polling="raf", timeout=120_000)
            print(f"page load to first results in the browser: {time.perf_counter() - t0:.2f} s "
                  f"({st.bundle.name}, {st.n_live} live images x {st.presentation_steps} steps, "
                  f"{st.chip_stage.chip.n_cores} cores)")
            layer = args.layer or next(n for n, t in st.layers.items() if t.on_chip)
            handle = page.locator(f".layer-{layer} .noUi-handle").first
            handle.focus()
            first, full, server_side = [], [], []
            for i in range(args.warmup + args.changes):
                page.wait_for_timeout(150)  # let the previous update settle (one change at a time)
                g = st.generation + 1
                key = "ArrowRight"  # always a new scale: results are cached per config
                t0 = time.perf_counter()
                handle.press(key)
                page.wait_for_function(WAIT_JS, arg=[[f"profile-{layer}"], g], polling="raf")
                t1 = time.perf_counter()
                page.wait_for_function(WAIT_JS, arg=[["raster", "rates", "core-heatmap"], g],
                                       polling="raf")
                t2 = time.perf_counter()
                first.append((t1 - t0) * 1000)
                full.append((t2 - t0) * 1000)
                if st.emulation is not None and st.network_stage is not None and st.chip_stage is not None:
                    server_side.append((st.network_stage.seconds + st.chip_stage.seconds
                                        + st.emulation.seconds) * 1000)
            browser.close()
    finally:
        server.stop()

    warm = args.warmup
    if warm:
        print(f"\nfirst {warm} change(s) after the page load, all plots updated: "
              + ", ".join(f"{v:.0f} ms" for v in full[:warm]))
    first, full, server_side = first[warm:], full[warm:], server_side[warm:]
    print(f"\n{args.changes} slider changes of {layer!r} (one key press each, throttled):")
    for label, values in (("profiles updated", first), ("all plots updated", full),
                          ("server compute only", server_side)):
        print(f"  {label:<22} p50 {percentile(values, 0.5):7.0f} ms   p95 {percentile(values, 0.95):7.0f} ms"
              f"   max {max(values):7.0f} ms")
    print(f"  (mean of all plots: {statistics.mean(full):.0f} ms; target p95 < 250 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
