#!/usr/bin/env python
"""Loihi Studio as a desktop app: the Panel server here, the page in a Qt window.

    python launch.py                        # a desktop window (pywebview + Qt)
    python launch.py --rendering software   # force software rendering (no GPU)
    python launch.py --browser              # the system's web browser instead
    python launch.py --no-window            # serve only (headless; Ctrl-C or SIGTERM to stop)
    python launch.py --port 5006            # a fixed port (default: a free one)

The server listens on 127.0.0.1 only. The window needs the optional ``desktop`` extra
(``pip install "loihi-studio[desktop]"``: pywebview with PySide6) and, on Linux, the
X11/xcb libraries Qt loads (``make system-deps``). Without them, or without a display,
the launcher says why and opens the browser instead.

**Rendering.** QtWebEngine crashes (segmentation fault) on X displays without GPU
acceleration, e.g. Xvfb or a remote desktop with Mesa's llvmpipe. The window therefore
runs in a child process: with ``--rendering auto`` (the default) it first starts with
GPU rendering, and if that child dies before the page is live it is started again with
software rendering (``LIBGL_ALWAYS_SOFTWARE=1``, ``QT_QUICK_BACKEND=software``,
Chromium's ``--disable-gpu --disable-software-rasterizer``). The launcher prints which
mode the window uses. A separate process also keeps Qt away from TensorFlow, which the
server imports to read ``.keras`` files (the two in one process crash as well).

``--close-when-ready`` closes the window as soon as the dashboard shows its first results
(the desktop tests use it).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
import webbrowser

#: Environment of a window drawn without the GPU.
SOFTWARE_ENV = {"LIBGL_ALWAYS_SOFTWARE": "1", "QT_QUICK_BACKEND": "software"}
SOFTWARE_FLAGS = ("--disable-gpu", "--disable-software-rasterizer")
READY_LINE = "window ready"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="launch.py", description="Loihi Studio desktop launcher")
    p.add_argument("--port", type=int, default=None, help="port to serve on (default: a free one)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--browser", action="store_true", help="open the system browser, not a window")
    mode.add_argument("--no-window", action="store_true", help="serve only, open nothing")
    p.add_argument("--rendering", choices=("auto", "gpu", "software"),
                   default=os.environ.get("LOIHI_STUDIO_RENDERING", "auto"),
                   help="how the window draws: auto (GPU, software if that crashes), gpu, "
                        "software (default: $LOIHI_STUDIO_RENDERING or auto)")
    p.add_argument("--close-when-ready", type=float, default=None, metavar="SECONDS",
                   help="close the window once the app is live, or fail after SECONDS (tests)")
    p.add_argument("--window", metavar="URL", help=argparse.SUPPRESS)  # the child process
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


# ---------------------------------------------------------------------------------------
# the window (child process)
# ---------------------------------------------------------------------------------------

def window_env(software: bool) -> dict[str, str]:
    """The child's environment: sandbox off as root (QtWebEngine refuses otherwise), and
    the software-rendering switches when asked."""
    env = dict(os.environ)
    flags = env.get("QTWEBENGINE_CHROMIUM_FLAGS", "").split()
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        env.setdefault("QTWEBENGINE_DISABLE_SANDBOX", "1")
        flags.append("--no-sandbox")
    if software:
        env.update(SOFTWARE_ENV)
        flags.extend(SOFTWARE_FLAGS)
    env["QTWEBENGINE_CHROMIUM_FLAGS"] = " ".join(dict.fromkeys(f for f in flags if f))
    return env


def run_window(url: str, close_when_ready: float | None) -> int:
    """Show ``url`` in a pywebview Qt window on this process's main thread until closed.

    Prints :data:`READY_LINE` once the dashboard shows results (the parent waits for it
    to know that this rendering mode works).
    """
    if os.environ.get("LOIHI_STUDIO_FAIL_GPU_WINDOW") and not os.environ.get("LIBGL_ALWAYS_SOFTWARE"):
        # test hook: die as QtWebEngine's GPU rendering does on a display without GPU
        # acceleration (where it depends on the driver, so a test cannot count on it)
        os.kill(os.getpid(), signal.SIGSEGV)
    import webview

    window = webview.create_window("Loihi Studio", url, width=1500, height=950, min_size=(900, 600))
    outcome = {"ready": False}

    def watch() -> None:
        deadline = time.monotonic() + (close_when_ready if close_when_ready is not None else 600.0)
        while time.monotonic() < deadline:
            try:
                n = window.evaluate_js(_READY_JS)
            except Exception:  # noqa: BLE001 - the page may not be loaded yet
                n = 0
            if n:
                outcome["ready"] = True
                print(f"{READY_LINE}: the dashboard shows {n} activation profiles", flush=True)
                break
            time.sleep(0.25)
        if close_when_ready is not None:
            window.destroy()

    webview.start(watch, gui="qt")
    if close_when_ready is not None and not outcome["ready"]:
        return 3
    return 0


# ---------------------------------------------------------------------------------------
# the launcher (parent process)
# ---------------------------------------------------------------------------------------

def _describe(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _crashed(code: int) -> bool:
    """A window process that died (a signal, or the shell's 128 + signal), not one closed."""
    return code < 0 or code in (134, 139) or code >= 128


class WindowProcess:
    """The window child: started, watched for the ready line, stopped."""

    def __init__(self, url: str, software: bool, close_when_ready: float | None):
        cmd = [sys.executable, os.path.abspath(__file__), "--window", url]
        if close_when_ready is not None:
            cmd += ["--close-when-ready", str(close_when_ready)]
        self.ready = threading.Event()
        self.proc = subprocess.Popen(cmd, env=window_env(software), stdout=subprocess.PIPE,
                                     stderr=None, text=True, bufsize=1)
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.proc.stdout:
            if line.startswith(READY_LINE):
                self.ready.set()
            sys.stdout.write(line)
            sys.stdout.flush()

    def wait(self) -> int:
        return self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def open_window(url: str, rendering: str, close_when_ready: float | None,
                stop_event: threading.Event) -> int:
    """Run the window child, falling back to software rendering if GPU rendering dies
    before the page is live. Returns the window's exit code."""
    software = rendering == "software"
    print(f"window: {'software' if software else 'GPU'} rendering"
          + (" (asked for)" if rendering != "auto" else ""), flush=True)
    while True:
        child = WindowProcess(url, software, close_when_ready)
        while child.proc.poll() is None and not stop_event.is_set():
            time.sleep(0.2)
        if stop_event.is_set():
            child.stop()
            return 0
        code = child.wait()
        if _crashed(code) and not child.ready.is_set() and rendering == "auto" and not software:
            print(f"window: GPU rendering failed ({_describe(code)}); "
                  "restarting with software rendering", flush=True)
            software = True
            continue
        if _crashed(code):
            print(f"window: the window process died ({_describe(code)})", flush=True)
        return code


def wait_for_signal(stop_event: threading.Event) -> None:
    while not stop_event.is_set():
        stop_event.wait(0.5)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.window:  # the child: only Qt, no server, no TensorFlow
        code = run_window(args.window, args.close_when_ready)
        # PySide6's QtWebEngine aborts in interpreter teardown ("free(): invalid pointer")
        # once its window has run; everything is done, so leave right here
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    stop_event = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop_event.set())
    from app.serving import serve_dashboard

    server, url = serve_dashboard(args.port)
    print(f"Loihi Studio is serving {url}", flush=True)
    try:
        if args.no_window:
            wait_for_signal(stop_event)
            return 0
        problem = None if args.browser else window_problem()
        if problem and args.close_when_ready is not None:
            print(f"no desktop window: {problem}", flush=True)
            return 4
        if args.browser or problem:
            if problem:
                print(f"no desktop window: {problem}; opening the browser instead", flush=True)
            webbrowser.open(url)
            wait_for_signal(stop_event)
            return 0
        code = open_window(url, args.rendering, args.close_when_ready, stop_event)
        return 0 if code == 0 else (3 if code == 3 else 5)
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
