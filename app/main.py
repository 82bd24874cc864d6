"""Entry point of ``panel serve app``: Bokeh runs this file once per browser session.

Everything lives in :mod:`app.dashboard` (imported as the installed ``app`` package, so
``panel serve app``, ``launch.py`` and the tests share one copy of the code); this file
only builds the session's page and starts the once-per-process warm-up (example model
and Numba JIT) in the background.
"""

from app.dashboard import create_app
from app.warmup import warm_up

warm_up()
create_app().servable(title="Loihi Studio")
