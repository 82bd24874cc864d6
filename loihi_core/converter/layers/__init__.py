"""Layer families: importing this package registers every converter (one module each)."""

from . import (activations, convolution, core, dense, merging, normalization,  # noqa: F401
               pooling, reshaping)
