"""What a browser session holds is given back when its page closes.

A lab runs one ``panel serve app`` for weeks; every page loads its own models, and without
this module a closed page's model stayed in memory through the results that sessions share
(``app.pipeline``'s caches) and through the session objects themselves (the dropped file's
bytes in the upload widget, the state's stages, undo history). :func:`register` (called by
:func:`app.dashboard.build_dashboard` for every page) hooks :func:`release` onto Panel's
session-destroyed callback; Bokeh destroys a session some seconds after its page closed
(``--unused-session-lifetime``, default 15 s, checked every ``--check-unused-sessions`` ms).

:func:`release`

1. stops the session's runner from accepting further results,
2. clears the state (bundle, stages, calibration, evaluation, undo/redo history, per-layer
   tunings and cards, the upload widget's bytes) without firing the page's watchers (there
   is no page any more),
3. drops from the shared caches the results of every model no open session uses (the
   bundled example is always kept: every new page starts on it), and
4. runs the garbage collector and returns freed heap pages to the system, then logs one
   line with the caches' sizes and the server's resident memory (logger
   ``loihi_studio.memory``, level INFO; :func:`health` gives the same as a dict).

Keras: an uploaded ``.keras`` file is turned into plain data (a ``LayerGraph``) by
:func:`loihi_core.load_model`; the ``keras.Model`` is a local of that call and is gone when it
returns (measured: 12 distinct 3.8 MB models loaded in a row leave the process's RSS flat to
the MB), so there is no TensorFlow state per session to clear — and ``keras.backend.
clear_session()`` is not called, as it would reset Keras' global state under another
session's load running in a worker thread.
"""

from __future__ import annotations

import gc
import logging
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import param

from loihi_core import memory

from . import data, pipeline

if TYPE_CHECKING:
    from .dashboard import Dashboard

LOG = logging.getLogger("loihi_studio.memory")
if LOG.level == logging.NOTSET:  # Bokeh sets INFO on its own logger only; show ours too
    LOG.setLevel(logging.INFO)

_live: "weakref.WeakSet[Dashboard]" = weakref.WeakSet()
_closed: "weakref.WeakSet[Dashboard]" = weakref.WeakSet()
_lock = threading.Lock()
_released = 0


def register(dash: "Dashboard") -> Callable[[Any], None]:
    """Track ``dash`` as an open session and release it when its Bokeh session ends.

    Outside a server session (unit tests, the headless check) nothing is hooked; the
    returned callback is what Panel calls (tests call it themselves).
    """
    import panel as pn  # noqa: PLC0415 (the module imports without Panel for its docs)

    with _lock:
        _live.add(dash)
    ref = weakref.ref(dash)  # the hook must not keep the page alive by itself

    def on_destroyed(session_context: Any) -> None:
        target = ref()
        if target is not None:
            release(target)

    doc = pn.state.curdoc
    if doc is not None and doc.session_context is not None:
        pn.state.on_session_destroyed(on_destroyed)
    return on_destroyed


def _example_tokens() -> set[str]:
    """Tokens of the bundled examples loaded so far (never starts loading one)."""
    with data._lock:
        futures = list(data._examples.values())
    return {f.result().token for f in futures if f.done() and f.exception() is None}


def open_tokens() -> set[str]:
    """Bundle tokens of every open session, plus the bundled examples'."""
    with _lock:
        dashes = list(_live)
    tokens = {d.state.bundle.token for d in dashes if d.state.bundle is not None}
    return tokens | _example_tokens()


def release(dash: "Dashboard") -> int:
    """Give back everything session ``dash`` holds (see the module docstring).

    Safe to call more than once. Returns the bytes (estimated) dropped from the shared caches.
    """
    global _released
    with _lock:
        if dash in _closed:  # Panel may call the hook more than once
            return 0
        _closed.add(dash)
        _live.discard(dash)
    st = dash.state
    st.on_request = None
    runner = dash.runner
    runner._dirty = False  # a computation in flight finishes its stage and stops
    with param.parameterized.discard_events(st):
        # a new generation: a stage still computing for the page is dropped, not shown
        st.param.update(generation=st.generation + 1, bundle=None, layers={}, config=None, network_stage=None, chip_stage=None,
                        emulation=None, evaluation=None, calibration=None, problems=[])
    st._undo.clear()
    st._redo.clear()
    st._edit.clear()
    st._compute.clear()
    st._action.clear()
    dash.cards.clear()
    dash._seen_files.clear()
    with param.parameterized.discard_events(dash.dropper):
        dash.dropper.value = {}
    keep = open_tokens()
    freed = pipeline.forget_models(lambda token: token in keep)
    gc.collect()
    memory.release_freed_memory()
    with _lock:
        _released += 1
    if LOG.isEnabledFor(logging.INFO):
        LOG.info("session closed (%d open, %d closed so far); freed %.1f MB of cached results; %s",
                 len(_live), _released, freed / memory.MIB, memory.summary_line())
    return freed


def health() -> dict[str, Any]:
    """Open and closed sessions, every shared cache's size and budget, resident memory."""
    with _lock:
        sessions = {"open": len(_live), "closed": _released}
    return {"sessions": sessions, **memory.summary()}
