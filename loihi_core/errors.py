"""Exceptions raised by :mod:`loihi_core`.

Every error names *what* is wrong (the layer, field or resource) and *what to do*, so
that the CLI and the app can show it to the user verbatim.
"""

from __future__ import annotations


class LoihiStudioError(Exception):
    """Base class of all errors raised on purpose by Loihi Studio."""


class ConfigError(LoihiStudioError, ValueError):
    """A tuned-config document is invalid.

    Parameters
    ----------
    problems
        One ``(json_path, message)`` pair per problem found; all are reported at once.
    """

    def __init__(self, problems: list[tuple[str, str]] | str):
        if isinstance(problems, str):
            problems = [("", problems)]
        self.problems = list(problems)
        lines = [f"{path}: {msg}" if path else msg for path, msg in self.problems]
        super().__init__("; ".join(lines) if len(lines) == 1 else
                         f"{len(lines)} problems in the tuned config:\n  " + "\n  ".join(lines))


class ModelLoadError(LoihiStudioError, ValueError):
    """A model file could not be read (missing, not a Keras 3 ``.keras`` zip, corrupt)."""


class ConversionError(LoihiStudioError, ValueError):
    """A Keras layer (or a combination of layers) cannot be converted to a spiking network."""

    def __init__(self, message: str, layer: str | None = None):
        self.layer = layer
        super().__init__(message)


class MappingError(LoihiStudioError, ValueError):
    """A layer does not fit on a Loihi core (or the network does not fit on the board).

    Attributes
    ----------
    layer, resource, used, limit
        What overflowed; ``suggestion`` is a block shape that fits, when one exists.
    """

    def __init__(self, message: str, layer: str | None = None, resource: str | None = None,
                 used: int | None = None, limit: int | None = None,
                 suggestion: tuple[int, ...] | None = None):
        self.layer = layer
        self.resource = resource
        self.used = used
        self.limit = limit
        self.suggestion = suggestion
        super().__init__(message)


class DiscretizationError(LoihiStudioError, ValueError):
    """Float parameters cannot be represented by Loihi's integer registers."""


class DataError(LoihiStudioError, ValueError):
    """An image/label data file or array is missing, malformed or does not fit the model."""


class ArgumentError(LoihiStudioError, ValueError):
    """A function argument has the wrong type or value (the message names the argument).

    Raised by the public API (``Emulator.run``, ``calibrate``, ``verify``, ``map_to_chip``
    ...) instead of the ``TypeError``/``AttributeError`` that would otherwise surface from
    deep inside, so that callers can catch every Loihi Studio error as
    :class:`LoihiStudioError`.

    Attributes
    ----------
    argument
        The argument's name, e.g. ``"presentation_steps"``.
    """

    def __init__(self, message: str, argument: str | None = None):
        self.argument = argument
        super().__init__(message)


class DataRangeWarning(UserWarning):
    """Input data whose value range looks wrong for the model (e.g. 0-255 floats).

    Issued (not raised) when the model's expected range is unknown and the data merely
    look suspicious; a range that contradicts the config's ``input_range`` is a
    :class:`DataError` instead.
    """
