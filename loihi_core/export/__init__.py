"""Deployment exports: take a tuned network to Lava-dl NetX, to NengoLoihi, or to JSON.

>>> export("model.keras", "tuned.json", "net.net", "lava-hdf5")          # doctest: +SKIP
>>> export("model.keras", "tuned.json", "deploy/", "nengo-loihi")        # doctest: +SKIP
>>> export(None, "tuned.json", "copy.json", "json")                       # doctest: +SKIP

Three formats (``loihi-studio export MODEL.keras --config CFG.json --format F --out PATH``):

``lava-hdf5`` (:func:`export_lava_hdf5`, :mod:`.lava`)
    The **on-chip part** as a Lava-dl NetX HDF5 network: an ``input`` layer (the host
    layer's spike train), then ``conv``/``flatten``/``dense`` layers with CUBA neurons and
    the integers of our discretization (each layer discretized as one block). Where the
    neuron models coincide (relu or LIF with ``tau_ref = 0``, voltages that stay
    non-negative, no overflow, biases that are multiples of 64, weight exponent 0) it is
    the same integer computation as our emulator; ``tests/test_export.py`` checks this
    spike for spike with an independent reader. Differences that cannot be expressed are
    listed in :data:`NETX_DIFFERENCES`.
``nengo-loihi`` (:func:`export_nengo_loihi`, :mod:`.nengo_loihi`)
    A standalone script plus ``.npz`` that rebuilds the tuned network with NengoDL's
    Converter and NengoLoihi and prints its accuracy on the user's Loihi host.
``json`` (:func:`export_json`)
    The tuned config alone: the bytes of :meth:`TunedConfig.to_json` (what the app writes).

Errors are :class:`ExportError` (a :class:`~loihi_core.errors.LoihiStudioError`): unknown
format, an on-chip layer the format cannot express, a refused approximation
(``exact=True``), an output path that cannot be written.

Output paths are checked before anything is computed, and exports create or replace
**regular files only**: a folder, a device node (``/dev/full``), a named pipe or a socket at
the destination is refused, and so is a **symbolic link**, whatever it points to (replacing
it would cut the link, writing through it would change a file the command did not name:
give the target itself). A folder reached through a link is fine, and a parent that is a
file gets its own message. Approximations that are made
are reported as :class:`ExportWarning` and in :attr:`ExportResult.notes`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .common import FORMATS, ExportError, ExportResult, check_format, check_output_file, write_bytes
from .lava import NETX_DIFFERENCES, ExportWarning, export_lava_hdf5
from .nengo_loihi import export_nengo_loihi

__all__ = ["FORMATS", "NETX_DIFFERENCES", "ExportError", "ExportResult", "ExportWarning",
           "export", "export_json", "export_lava_hdf5", "export_nengo_loihi"]


def export_json(config: Any, path: Any) -> ExportResult:
    """Write the tuned config alone: exactly the bytes of ``TunedConfig.to_json()``.

    ``config`` is a :class:`~loihi_core.config.TunedConfig`, a dict, a JSON string or a
    path (loaded and validated with :func:`~loihi_core.config.load_config`).
    """
    from ..config import load_config

    cfg = load_config(config)
    path = check_output_file(path)
    write_bytes(path, cfg.to_json().encode("utf-8"))
    return ExportResult("json", [path])


def export(model: Any, config: Any, path: Any, format: str, *, exact: bool = False,
           images: Any = None, labels: Any = None) -> ExportResult:
    """Export ``model`` tuned by ``config`` to ``path`` in ``format``.

    Parameters
    ----------
    model
        A ``.keras`` path, a ``keras.Model`` or a :class:`~loihi_core.graph.LayerGraph`.
        For ``"json"`` it may be ``None``; when given, the config is first checked
        against it (a config that names layers the model lacks is refused).
    config
        The tuned config (object, dict, JSON path) or ``None`` for the defaults.
    path
        ``lava-hdf5``/``json``: the file to write. ``nengo-loihi``: a ``.py`` file or a folder.
    format
        One of :data:`FORMATS`.
    exact
        ``lava-hdf5`` only: refuse to round biases or weights netx cannot hold exactly.
    images, labels
        ``nengo-loihi`` only: test data stored beside the weights for the script.

    Raises
    ------
    ExportError
        Unknown format, an inexpressible layer, a refused approximation, a bad path.
    ConversionError, ConfigError, ModelLoadError
        When the model or config themselves are invalid.
    """
    check_format(format)
    if format == "json":
        check_output_file(path)  # fail before the (slow) conversion
        if model is not None:
            from ..convert import convert

            convert(model, config)  # validates the config against the model
        return export_json(config, path)
    if format == "nengo-loihi":
        return export_nengo_loihi(model, config, path, images=images, labels=labels)
    from ..convert import convert

    check_output_file(path)  # fail before the (slow) conversion
    return export_lava_hdf5(convert(model, config), Path(path), exact=exact)
