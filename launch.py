#!/usr/bin/env python
"""Loihi Studio as a desktop app: the Panel server in a thread, the page in a Qt window.

    python launch.py               # a desktop window (pywebview + Qt)
    python launch.py --browser     # the system's web browser instead
    python launch.py --no-window   # serve only (headless; Ctrl-C or SIGTERM to stop)
    python launch.py --port 5006   # a fixed port (default: a free one)

The server listens on 127.0.0.1 only. The window needs the optional ``desktop`` extra
(``pip install "loihi-studio[desktop]"``: pywebview with PySide6) and, on Linux, the
X11/xcb libraries Qt loads (``make system-deps``). Without them, or without a display,
the launcher says why and opens the browser instead. ``--close-when-ready`` closes the
window as soon as the page's Bokeh document is live (the desktop smoke test uses it with
``QT_QPA_PLATFORM=offscreen``).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
import webbrowser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="launch.py", description="Loihi Studio desktop launcher")
    p.add_argument("--port", type=int, default=None, help="port to serve on (default: a free one)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--browser", action="store_true", help="open the system browser, not a window")
    mode.add_argument("--no-window", action="store_true", help="serve only, open nothing")
    p.add_argument("--close-when-ready", type=float, default=None, metavar="SECONDS",
                   help="close the window once the app is live, or fail after SECONDS (tests)")
    return p.parse_args(argv)


def window_problem() -> str | None:
    """Why a Qt window cannot open here, or ``None`` if it can."""
    try:
        import webview  # noqa: F401
        import qtpy  # noqa: F401
    except ImportError as exc:
        return f"pywebview with Qt is not installed ({exc}); pip install \"loihi-studio[desktop]\""
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if sys.platform.startswith("linux") and not platform and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display (DISPLAY/WAYLAND_DISPLAY unset)"
    return None


#: Number of activation profiles the page shows with data (0 until the app has computed).
_READY_JS = """(function () {
  if (!window.Bokeh || !Bokeh.documents.length) { return 0; }
  return [...Bokeh.documents[0].all_models].filter(
    m => typeof m.name === 'string' && m.name.startsWith('profile-hist-') && m.get_length
         && (m.get_length() || 0) > 0).length;
})()"""


def preload_tensorflow() -> None:
    """Import TensorFlow before Qt: importing it once QtWebEngine is loaded segfaults
    (in ``pywrap_tensorflow``), and the dashboard imports it to read ``.keras`` files."""
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        pass


def run_window(url: str, close_when_ready: float | None) -> int:
    """Show ``url`` in a pywebview Qt window on the main thread until it is closed."""
    preload_tensorflow()
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # QtWebEngine refuses root without this
        os.environ.setdefault("QTWEBENGINE_DISABLE_SANDBOX", "1")
        flags = os.environ.get("QTWEBENGINE_CHROMIUM_FLAGS", "")
        if "--no-sandbox" not in flags:
            os.environ["QTWEBENGINE_CHROMIUM_FLAGS"] = f"{flags} --no-sandbox".strip()
    import webview

    window = webview.create_window("Loihi Studio", url, width=1500, height=950, min_size=(900, 600))
    outcome = {"ready": False}

    def close_when_live() -> None:
        deadline = time.monotonic() + float(close_when_ready)
        while time.monotonic() < deadline:
            try:
                n = window.evaluate_js(_READY_JS)
            except Exception:  # noqa: BLE001 - the page may not be loaded yet
                n = 0
            if n:
                outcome["ready"] = True
                print(f"window ready: the dashboard shows {n} activation profiles", flush=True)
                break
            time.sleep(0.25)
        window.destroy()

    if close_when_ready is not None:
        webview.start(close_when_live, gui="qt")
        return 0 if outcome["ready"] else 3
    webview.start(gui="qt")
    return 0


def wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.is_set():
        stop.wait(0.5)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from app.serving import serve_dashboard

    server, url = serve_dashboard(args.port)
    print(f"Loihi Studio is serving {url}", flush=True)
    try:
        if args.no_window:
            wait_for_signal()
            return 0
        problem = None if args.browser else window_problem()
        if problem and args.close_when_ready is not None:
            print(f"no desktop window: {problem}", flush=True)
            return 4
        if args.browser or problem:
            if problem:
                print(f"no desktop window: {problem}; opening the browser instead", flush=True)
            webbrowser.open(url)
            wait_for_signal()
            return 0
        code = run_window(url, args.close_when_ready)
        stop(server)
        # PySide6's QtWebEngine aborts in interpreter teardown ("free(): invalid pointer")
        # once its window has run; everything is already shut down, so leave right here.
        sys.stderr.flush()
        os._exit(code)
    finally:
        stop(server)


def stop(server) -> None:
    """Stop the server once (idempotent), after giving open sessions a moment to close."""
    if getattr(server, "_loihi_stopped", False):
        return
    server._loihi_stopped = True
    time.sleep(0.3)
    server.stop()
    print("Loihi Studio stopped", flush=True)


if __name__ == "__main__":
    sys.exit(main())
