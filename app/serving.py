"""Serving the dashboard from inside a Python process, on a local port.

``launch.py`` (the desktop window), the browser tests and ``bench/bench_ui.py`` all run
the Panel server in a thread of their own process; this module is the one way they start
it. (``panel serve app`` is the other way, and needs none of this.) Panel is imported only
when a server starts, so :func:`free_port` stays cheap for subprocess tests.
"""

from __future__ import annotations

import os
import socket
import time
import urllib.request
from typing import Any

#: Debian's Chromium and the flags the browser tests and benches drive it with (headless,
#: no sandbox inside containers, nothing fetched from the network).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--disable-quic"]
#: Largest websocket message the server accepts (a model upload arrives as one message).
MAX_MESSAGE_BYTES = 256 * 1024 * 1024


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_dashboard(port: int | None = None, *, sessions: list | None = None,
                    warm_up_first: bool = False, timeout: float = 60.0) -> tuple[Any, str]:
    """Start the dashboard's server in a daemon thread; return it once it answers.

    Parameters
    ----------
    port
        Port on 127.0.0.1 (default: a free one).
    sessions
        If given, every browser session's :class:`~app.dashboard.Dashboard` is appended,
        so tests and benchmarks can look at the Python state behind a page.
    warm_up_first
        Load the bundled example and compile the emulator before serving (tests, benches);
        otherwise that runs in the background while the first page loads.
    timeout
        Seconds to wait for the server's ``/liveness`` answer.

    Returns
    -------
    server, url
        The running server (``server.stop()`` ends it) and the page's URL.

    Raises
    ------
    RuntimeError
        When the server does not answer within ``timeout``.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import panel as pn

    from .dashboard import build_dashboard, configure_panel
    from .warmup import warm_up

    warm_up(background=not warm_up_first)

    def page():
        configure_panel()
        dash = build_dashboard()
        if sessions is not None:
            sessions.append(dash)
        return dash.template

    port = port or free_port()
    server = pn.serve({"app": page}, port=port, address="127.0.0.1", threaded=True, show=False,
                      liveness=True, websocket_origin=[f"127.0.0.1:{port}", f"localhost:{port}"],
                      title="Loihi Studio", websocket_max_message_size=MAX_MESSAGE_BYTES)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/liveness", timeout=2) as r:
                if r.status == 200:
                    return server, f"http://127.0.0.1:{port}/app"
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"the Loihi Studio server did not start on port {port} within {timeout:g} s")
