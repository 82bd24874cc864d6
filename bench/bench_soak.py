"""Soak: does a shared dashboard server give memory back when sessions close?

Starts ``panel serve app`` (a subprocess, as a lab runs it), and drives Debian's Chromium
with Playwright through ``--sessions`` sequential sessions. Each one opens a new page,
drops a *distinct* model on the upload box (the tutorial's architecture with a wider
``dense0`` and other random weights, saved by Keras 3 into a temporary folder: a few MB
each), makes three changes (two ``scale_firing_rates`` entries and an undo, waiting for
each result to reach the browser), and closes the page. After the server has destroyed
the session (its ``loihi_studio.memory`` log line), the server's resident memory (RSS,
psutil) is sampled.

It prints RSS after every session and compares the last one with the level after the
first session: the run passes when the growth is within ``--margin-mb`` (default: the
shared caches' total budget, which they may fill with the models of closed sessions, plus
64 MB of allocator slack; exit code 1 otherwise), and shows how flat the second half of
the run is. This is a measurement, not a timed test. Usage::

    .venv/bin/python bench/bench_soak.py [--sessions 30] [--quick] [--width 400] [--margin-mb MB]

``--quick`` runs 6 sessions. ``LOIHI_STUDIO_CACHE_MB`` is passed on to the server.
"""

from __future__ import annotations

import argparse
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CLOSED = "session closed ("

#: The raster source's generation tag in the page (or -1 before it exists).
RASTER_TAG_JS = """() => {
  if (!window.Bokeh || !Bokeh.documents.length) return -1;
  const m = [...Bokeh.documents[0].all_models].find(x => x.name === 'raster');
  return (m && m.tags.length) ? m.tags[0] : -1;
}"""


def make_models(folder: Path, n: int, width: int) -> list[Path]:
    """``n`` models of one architecture with distinct random weights (Keras 3 ``.keras``)."""
    import keras
    import numpy as np

    layers = keras.layers
    paths = []
    for seed in range(n):
        x = keras.Input((28, 28, 1), name="input")
        h = layers.Conv2D(3, 1, activation="relu", use_bias=False, name="to-spikes")(x)
        h = layers.Conv2D(32, 3, strides=2, activation="relu", use_bias=False, name="conv0")(h)
        h = layers.Conv2D(64, 3, strides=2, activation="relu", use_bias=False, name="conv1")(h)
        h = layers.Flatten(name="flatten")(h)
        h = layers.Dense(width, activation="relu", name="dense0")(h)
        h = layers.Dense(10, name="dense1")(h)
        model = keras.Model(x, h, name=f"soak_{seed}")
        rng = np.random.default_rng(seed)
        model.set_weights([rng.normal(0.0, np.sqrt(2.0 / max(1, int(np.prod(w.shape[:-1])))), w.shape)
                           .astype("float32") for w in model.get_weights()])
        path = folder / f"soak_{seed:02d}.keras"
        model.save(path)
        paths.append(path)
    return paths


class Server:
    """``panel serve app`` in a subprocess; its log lines are read in a thread."""

    def __init__(self, port: int):
        env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        panel = Path(sys.executable).with_name("panel")
        cmd = [str(panel) if panel.exists() else "panel", "serve", "app", "--address", "127.0.0.1",
               "--port", str(port), f"--allow-websocket-origin=127.0.0.1:{port}",
               "--unused-session-lifetime", "1000", "--check-unused-sessions", "500",
               "--websocket-max-message-size", str(256 * 1024 * 1024), "--liveness"] + os.environ.get("SOAK_EXTRA", "").split()
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.closed = 0
        self.last_closed = ""
        threading.Thread(target=self._read, daemon=True).start()
        self.url = f"http://127.0.0.1:{port}/app"

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip())

    def pump(self) -> None:
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                return
            if CLOSED in line:
                # Panel may build more than one dashboard for a page: the page is gone
                # once no session is open any more
                self.closed += "(0 open," in line
                self.last_closed = line
            elif "Traceback" in line or "Error" in line or "ERROR" in line:
                print(f"  server: {line}")

    def rss_mb(self) -> float:
        import psutil

        return psutil.Process(self.proc.pid).memory_info().rss / 2**20

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def wait_for(condition, page, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        page.wait_for_timeout(50)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")


def one_session(browser, server: Server, model: Path, timeout: float) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(timeout * 1000)
    try:
        page.goto(server.url)
        tag = lambda: page.evaluate(RASTER_TAG_JS)  # noqa: E731
        wait_for(lambda: tag() >= 0, page, timeout, "the example's first results")
        before = tag()
        page.locator(".upload input[type=file]").set_input_files(str(model))
        wait_for(lambda: page.get_by_text(f"Loaded {model.name}").count() > 0, page, timeout,
                 f"{model.name} to load")
        wait_for(lambda: tag() > before, page, timeout, f"{model.name}'s first results")
        changes = [("conv0", "150"), ("dense0", "250"), (None, None)]  # the last: undo
        for layer, value in changes:
            before = tag()
            if layer is None:
                page.get_by_role("button", name="Undo").click()
            else:
                entry = page.locator(f".layer-{layer} .scale-entry input")
                entry.fill(value)
                entry.press("Enter")
            wait_for(lambda: tag() > before, page, timeout, f"the result of change {layer}={value}")
    finally:
        page.close()
    closed = server.closed
    wait_for(lambda: (server.pump(), server.closed > closed)[1], _Idle(), timeout,
             "the server to destroy the session")


class _Idle:
    """Stands in for a page in :func:`wait_for` once the page is closed."""

    @staticmethod
    def wait_for_timeout(ms: float) -> None:
        time.sleep(ms / 1000)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=30, help="sequential sessions (distinct models)")
    parser.add_argument("--quick", action="store_true", help="6 sessions")
    parser.add_argument("--width", type=int, default=400,
                        help="units of dense0 (400: a 3.8 MB .keras file)")
    parser.add_argument("--margin-mb", type=float, default=None,
                        help="allowed RSS growth from after session 1 to after the last (default: "
                             "the shared caches' total budget + 64 MB of allocator slack)")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds per wait")
    args = parser.parse_args(argv)
    n = 6 if args.quick else args.sessions
    from loihi_core import memory

    budget = sum(memory.budget_bytes(name) for name in memory.DEFAULT_BUDGETS_MB) / 2**20
    margin = budget + 64 if args.margin_mb is None else args.margin_mb

    from playwright.sync_api import sync_playwright

    from app.serving import CHROMIUM, CHROMIUM_ARGS, free_port

    with tempfile.TemporaryDirectory(prefix="loihi-soak-") as tmp:
        t0 = time.perf_counter()
        models = make_models(Path(tmp), n, args.width)
        size = models[0].stat().st_size / 2**20
        print(f"{n} distinct models, {size:.1f} MB each ({time.perf_counter() - t0:.0f} s to build)")
        server = Server(free_port())
        try:
            import urllib.request

            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(server.url.rsplit("/", 1)[0] + "/liveness", timeout=2)
                    break
                except OSError:
                    if time.monotonic() > deadline or server.proc.poll() is not None:
                        raise RuntimeError("panel serve app did not start") from None
                    time.sleep(0.3)
            server.pump()
            idle = server.rss_mb()
            print(f"server idle: {idle:.0f} MB")
            rss = []
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                for i, model in enumerate(models):
                    t1 = time.perf_counter()
                    one_session(browser, server, model, args.timeout)
                    time.sleep(1.0)
                    rss.append(server.rss_mb())
                    print(f"after session {i + 1:2d} ({model.name}, {time.perf_counter() - t1:4.1f} s): "
                          f"{rss[-1]:6.0f} MB", flush=True)
                browser.close()
            print(f"server log: {server.last_closed.split('loihi_studio.memory')[-1].strip()}")
        finally:
            server.stop()
    growth = rss[-1] - rss[0]
    ok = growth <= margin
    half = rss[len(rss) // 2:]
    print(f"\nresident memory: idle {idle:.0f} MB, after 1 session {rss[0]:.0f} MB, after {n} "
          f"distinct-model sessions {rss[-1]:.0f} MB (peak {max(rss):.0f} MB): {growth:+.0f} MB; "
          f"margin {margin:.0f} MB (caches' budget {budget:.0f} MB + 64) -> {'PASS' if ok else 'FAIL'}")
    print(f"second half (sessions {n - len(half) + 1}..{n}): {min(half):.0f}..{max(half):.0f} MB, "
          f"last minus its first {half[-1] - half[0]:+.0f} MB")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
