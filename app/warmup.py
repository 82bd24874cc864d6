"""Once per server process: load the bundled example and compile the emulator.

The first emulation of a process JIT-compiles its Numba kernels (seconds), and the first
``.keras`` load imports TensorFlow. Doing both at server start keeps them out of the first
user's first page, and computing the example's starting config fills the shared result
cache, so every new page on the example opens with its results already there.

This lives apart from :mod:`app.data` so that the import order is one-way:
``data`` ← ``pipeline`` ← ``state`` ← ``warmup`` (data loading never needs the state).
"""

from __future__ import annotations

import threading

from .data import env_flag, load_example
from .state import StudioState

_warmed = threading.Event()


def warm_up(background: bool = True) -> None:
    """Load the example and compute its starting config once per process.

    ``LOIHI_STUDIO_NO_WARMUP=1`` turns it off (smoke tests that never open a session).
    With ``background`` it runs in a daemon thread while the server starts.
    """
    if _warmed.is_set() or env_flag("LOIHI_STUDIO_NO_WARMUP"):
        return
    _warmed.set()

    def work() -> None:
        StudioState(load_example(), auto_compute=True)

    if background:
        threading.Thread(target=work, name="loihi-studio-warm-up", daemon=True).start()
    else:
        work()
