"""Runs a session's computations off the Bokeh event loop, latest request wins.

The state calls :meth:`Runner.request` on every change. At most one computation runs per
session: while it runs, further requests only mark the state dirty, and when the running
stage finishes the runner drops what it computed for the old generation and starts again
with the newest config. A fast user therefore never queues ten emulator runs, and the
event loop (shared by every session of the server) stays free while the worker thread
computes: the Numba kernels release the GIL.

Stages are shown as they finish (profiles first, then the heatmap, then rasters and
rates). While anything runs, ``busy`` drives the spinner in the page header; panes that
wait longer than :data:`LOADING_DELAY` also get Panel's loading overlay. The overlay is
kept for slow computations only: switching it on and off costs the browser a relayout of
every plot (measured: ~1 s of a 2-core machine's browser time per update), several
times what a live update itself costs.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Callable, Iterable
from typing import Any

import panel as pn
import param

from . import pipeline
from .state import StudioState

#: Seconds before a pane that waits for a result shows the loading overlay.
LOADING_DELAY = 1.0


async def _flush_writes(timeout: float = 0.1) -> None:
    """Wait (at most ``timeout`` s) until the session's pending websocket writes are done.

    Panel writes the messages of an ``unlocked()`` block in tasks on the event loop; a
    worker thread started right after them holds the GIL for most of each switch interval
    and delayed them by 100–300 ms under load. Uses Panel's record of those tasks
    (``panel.io.document._write_tasks``); without it, yields to the loop once.
    """
    try:
        from panel.io.document import _write_tasks
        tasks = [t for t in _write_tasks.get(pn.state.curdoc, []) if not t.done()]
    except (ImportError, TypeError, AttributeError):
        tasks = []
    if tasks:
        await asyncio.wait(tasks, timeout=timeout)
    else:
        await asyncio.sleep(0)


def _in_server() -> bool:
    doc = pn.state.curdoc
    return bool(doc is not None and doc.session_context is not None)


class Runner(param.Parameterized):
    """Latest-wins background execution of :func:`app.pipeline.run_stages` for one session."""

    busy = param.Boolean(default=False, doc="whether a computation or an action is running")
    computing = param.Boolean(default=False)
    runs = param.Integer(default=0, doc="computations completed (for tests and the benchmark)")
    dropped = param.Integer(default=0, doc="stale computations abandoned")

    def __init__(self, state: StudioState, waiting: Callable[[], Iterable[Any]] | None = None,
                 **params: Any):
        super().__init__(**params)
        self.state = state
        self._waiting = waiting or (lambda: [])
        self._dirty = False
        self._overlay = False
        self._actions = 0
        state.on_request = self.request

    # ------------------------------------------------------------------------------------
    def request(self) -> None:
        """Compute the state's current config (now, or after the running stage)."""
        self._dirty = True
        if self.computing:
            return
        cached = pipeline.cached_stages(self.state.job())
        if cached is not None:  # seen before (undo, the example's defaults): show it now
            self._dirty = False
            with pn.io.unlocked():
                for stage in cached:
                    self.state.accept(stage)
            self.runs += 1
            return
        if _in_server():
            self.computing = True
            self._sync_busy()
            # before the page has loaded, results could not be sent yet: start on load
            # (``onload`` runs the callback at once when the page is already live)
            pn.state.onload(self._drain)
        else:
            self._dirty = False
            self.state.compute_now()
            self.runs += 1

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._dirty:
                self._dirty = False
                job = self.state.job()
                stages = pipeline.run_stages(job)
                timer = loop.call_later(LOADING_DELAY, self._loading, True)
                self._overlay = False
                try:
                    finished = True
                    while True:
                        stage = await asyncio.to_thread(next, stages, None)
                        if stage is None:
                            break
                        if self._dirty or job.generation != self.state.generation:
                            finished = False
                            self.dropped += 1
                            break
                        with pn.io.unlocked():
                            self.state.accept(stage)
                        # write this stage's messages before the next stage's thread
                        # competes with the event loop for the GIL (the mapper is mostly
                        # Python): the profile then reaches the page first
                        await _flush_writes()
                    if finished:
                        self.runs += 1
                finally:
                    timer.cancel()
                    if self._overlay:
                        self._loading(False)
        except Exception:  # never leave the session stuck in "computing"
            traceback.print_exc()
            with pn.io.unlocked():
                self.state.set_action_problem("run", "internal error while computing; see the server log")
        finally:
            self.computing = False
            self._sync_busy()

    def _loading(self, on: bool) -> None:
        self._overlay = on
        with pn.io.unlocked():
            for pane in self._waiting():
                pane.loading = on

    # ------------------------------------------------------------------------------------
    async def run_action(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a slow action (auto-scale, Run, loading a model) in a worker thread.

        Returns its result, or raises its exception in the caller (the event loop).
        """
        self._actions += 1
        self._sync_busy()
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        finally:
            self._actions -= 1
            self._sync_busy()

    def _sync_busy(self) -> None:
        self.busy = bool(self.computing or self._actions)
