"""Once per server process: load the bundled example and compile the emulator.

The first emulation of a process JIT-compiles (or loads from Numba's cache) its kernels,
and the first ``.keras`` load reads the example. Doing both at server start keeps them out
of the first user's first page, and computing the example's starting config fills the
shared result cache, so every new page on the example opens with its results already there.
``panel serve app`` starts it when the server loads (``app/app_hooks.py``), before the first
page is requested; the first page waits for it (:func:`wait_warm`, a second or two) rather
than computing the same results a second time next to it.

This lives apart from :mod:`app.data` so that the import order is one-way:
``data`` ← ``pipeline`` ← ``state`` ← ``warmup`` (data loading never needs the state).
"""

from __future__ import annotations

import threading

from .data import env_flag, load_example
from .state import StudioState

_warmed = threading.Event()
_done = threading.Event()


def warm_up(background: bool = True) -> None:
    """Load the example and compute its starting config once per process.

    ``LOIHI_STUDIO_NO_WARMUP=1`` turns it off (smoke tests that never open a session).
    With ``background`` it runs in a daemon thread while the server starts.
    """
    if _warmed.is_set() or env_flag("LOIHI_STUDIO_NO_WARMUP"):
        return
    _warmed.set()

    def work() -> None:
        try:
            StudioState(load_example(), auto_compute=True)
        finally:
            _done.set()

    if background:
        threading.Thread(target=work, name="loihi-studio-warm-up", daemon=True).start()
    else:
        work()


def wait_warm(timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for a running warm-up; whether none is running now.

    A page built while the warm-up runs would show a placeholder, then receive its layer
    cards and plots as a second, larger update, and compute the example's results a
    second time, in parallel with the warm-up (on a 2-core machine, about twice as long).
    """
    if not _warmed.is_set():
        return True
    return _done.wait(timeout)
