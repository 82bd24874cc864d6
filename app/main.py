"""Entry point of ``panel serve app``: Bokeh runs this file once per browser session.

Everything lives in :mod:`app.dashboard` (imported as the installed ``app`` package, so
``panel serve app``, ``launch.py`` and the tests share one copy of the code); this file
only builds the session's page. The once-per-process warm-up (example model and Numba
JIT) starts when the server loads (``app_hooks.py``); the call here is a no-op then, and
starts it for a server that skipped the hooks.
"""

from app.dashboard import create_app
from app.warmup import warm_up

warm_up()
create_app().servable(title="Loihi Studio")
