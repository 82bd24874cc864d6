"""Loihi Studio core: Keras → spiking network → Loihi cores → bit-exact emulation.

Importing this package is cheap: it never imports TensorFlow, Keras, Panel or Bokeh.
Heavy dependencies are imported lazily by the functions that need them.
"""

from __future__ import annotations

__version__ = "0.1.0"
