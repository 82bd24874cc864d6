"""Loihi Studio core: Keras → spiking network → Loihi cores → bit-exact emulation.

Importing this package is cheap: it never imports TensorFlow, Keras, Panel or Bokeh.
Heavy dependencies are imported lazily by the functions that need them.
"""

from __future__ import annotations

__version__ = "0.1.0"

# The public API. These modules import only NumPy (TensorFlow, Keras and Numba are
# imported lazily by the functions that need them), so this stays cheap. Importing the
# functions here also keeps ``loihi_core.convert`` the function, not the submodule.
from .calibrate import calibrate, measure_rates  # noqa: E402
from .config import TunedConfig, load_config  # noqa: E402
from .convert import convert  # noqa: E402
from .emulator import Emulator, EmulatorResult  # noqa: E402
from .graph import load_model  # noqa: E402
from .mapping import auto_block_shapes, map_to_chip  # noqa: E402
from .simulate import run_rates, run_spiking  # noqa: E402
from .verify import verify  # noqa: E402

__all__ = ["__version__", "calibrate", "measure_rates", "TunedConfig", "load_config", "convert",
           "Emulator", "EmulatorResult", "load_model", "auto_block_shapes", "map_to_chip",
           "run_rates", "run_spiking", "verify"]
