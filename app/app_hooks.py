"""Bokeh's server hooks for ``panel serve app``: run once when the server loads.

The example model and the emulator's kernels (:mod:`app.warmup`) start loading when the
server starts rather than when the first page is requested, and the dashboard's modules
are imported once here instead of inside the first page's request.
"""

from typing import Any


def on_server_loaded(server_context: Any) -> None:
    import app.dashboard  # noqa: F401 - imported once, before the first page asks for it
    from app.warmup import warm_up

    warm_up()
