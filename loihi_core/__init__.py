"""Loihi Studio core: Keras → spiking network → Loihi cores → bit-exact emulation.

Importing this package is cheap: it never imports TensorFlow, Keras, Panel or Bokeh.
Heavy dependencies are imported lazily by the functions that need them.
"""

from __future__ import annotations

__version__ = "0.1.0"

# The public API. These modules import only NumPy (TensorFlow, Keras and Numba are
# imported lazily by the functions that need them), so this stays cheap. Importing the
# functions here also keeps ``loihi_core.convert`` the function, not the submodule.
from .calibrate import calibrate, evaluate, measure_rates  # noqa: E402
from .config import TunedConfig, load_config  # noqa: E402
from .convert import convert  # noqa: E402
from .emulator import Emulator, EmulatorResult  # noqa: E402
from .errors import (ArgumentError, ConfigError, ConversionError, DataError,  # noqa: E402
                     DataRangeWarning, DiscretizationError, LoihiStudioError, MappingError,
                     ModelLoadError)
from .graph import load_model  # noqa: E402
from .mapping import auto_block_shapes, map_to_chip  # noqa: E402
from .simulate import run_rates, run_spiking  # noqa: E402
from .verify import verify  # noqa: E402

__all__ = ["__version__", "calibrate", "evaluate", "measure_rates", "TunedConfig", "load_config",
           "convert", "Emulator", "EmulatorResult", "load_model", "auto_block_shapes",
           "map_to_chip", "run_rates", "run_spiking", "verify",
           # errors (every one a LoihiStudioError; ExportError and SweepError load lazily)
           "LoihiStudioError", "ArgumentError", "ConfigError", "ConversionError", "DataError",
           "DiscretizationError", "MappingError", "ModelLoadError", "ExportError", "SweepError",
           "DataRangeWarning"]

#: Errors defined next to the code that raises them, imported on first access so that
#: ``import loihi_core`` stays cheap: name -> (module, attribute).
_LAZY = {"ExportError": ("loihi_core.export.common", "ExportError"),
         "SweepError": ("loihi_core.sweep", "SweepError")}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'loihi_core' has no attribute {name!r}")
