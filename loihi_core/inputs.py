"""The one input policy: which image arrays are accepted and how they are scaled.

Every entry point that takes images goes through :func:`as_images` — the CLI (via
:func:`loihi_core.data.load_images_npz`), the API (``Emulator.run``, ``calibrate``,
``verify``, ``run_rates``, ``run_spiking``) and the app's data loading (via
:func:`loihi_core.data.check_images`) — so the same array gives the same numbers
everywhere. The rules:

* **dtypes**: float16/32/64 images are taken as they are (float16 widened to float32);
  ``uint8`` images are 8-bit pixels and scaled to ``[0, 1]`` (``x / 255`` in float32).
  Every other dtype (bool, complex, other integers, strings, objects) is refused:
  guessing the scale of an ``int64`` array would be a silent wrong answer.
* **shape**: a batch ``(n, *input_shape)``; a single image ``input_shape`` becomes a
  batch of one, ``(n, H, W)`` is accepted for an ``(H, W, 1)`` input and flattened
  images ``(n, H·W·C)`` for ``(H, W, C)``. Empty batches are refused.
* **values**: NaN and ±inf are refused.
* **range**: a tuned config may record the range the model was trained on
  (``"input_range": [0, 1]``; ``calibrate`` writes it from its calibration data, and the
  bundled example has it). Data outside that range (beyond 1 % of its span) are refused
  with a :class:`~loihi_core.errors.DataError` that says how to rescale; data that use
  only a sliver of it get a :class:`~loihi_core.errors.DataRangeWarning`. Without a
  recorded range, float data that look like 8-bit pixels (whole numbers up to 255) get a
  warning: on the bundled example such images drop the accuracy from 100 % to 87.5 %
  while every layer still fires, so they must never pass silently.

Every error is a :class:`~loihi_core.errors.DataError` naming the argument (or file) and
what was expected.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import DataError, DataRangeWarning

#: What the messages say is accepted.
ACCEPTED = "float images (float16/32/64) or uint8 pixels (0-255, scaled to [0, 1])"
#: Data may exceed the recorded input range by this fraction of its span (round-off,
#: resampling overshoot) before they are refused.
RANGE_SLACK = 0.01
#: Data whose values span less than this fraction of the recorded range get a warning.
RANGE_SLIVER = 0.05
#: Ranges :func:`infer_input_range` rounds to, in order of preference.
NICE_RANGES = ((0.0, 1.0), (-1.0, 1.0), (0.0, 255.0))


def _shape_text(shape: Sequence[int]) -> str:
    return "(n, " + ", ".join(str(int(d)) for d in shape) + ")"


def as_images(images: Any, input_shape: Sequence[int] | None = None, *, name: str = "images",
              input_range: Sequence[float] | None = None, float32: bool = False) -> np.ndarray:
    """Validate an image batch and scale it by the input policy (see the module doc).

    Parameters
    ----------
    images
        The batch (anything ``np.asarray`` reads).
    input_shape
        The model's input shape without the batch axis; ``None`` checks only that the
        array is a non-empty batch.
    name
        The argument or file the messages name (``"images"``, ``"'x.npz' images"``).
    input_range
        ``(low, high)`` the model expects (the tuned config's ``input_range``), or
        ``None`` when unknown (then only the 8-bit-pixel heuristic warns).
    float32
        Return float32 even for float64 input (files and the app use float32; the API
        keeps float64 so results do not depend on who rounded first).

    Returns
    -------
    numpy.ndarray
        ``(n, *input_shape)`` floats: uint8 scaled to ``[0, 1]``, float16 widened.

    Raises
    ------
    DataError
        Naming ``name``, what was found and what is expected.
    """
    if images is None or isinstance(images, (str, bytes, dict)):
        raise DataError(f"{name}: expected an array of {ACCEPTED}, got "
                        f"{type(images).__name__}")
    try:
        arr = np.asarray(images)
    except (ValueError, TypeError) as exc:  # ragged nested lists
        raise DataError(f"{name} cannot be read as an array ({exc}); expected an array of "
                        f"{ACCEPTED}") from None
    kind = arr.dtype.kind
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / np.float32(255)
    elif kind == "f":
        if arr.dtype == np.float16 or float32:
            arr = arr.astype(np.float32)
    elif kind == "b":
        raise DataError(f"{name} has dtype bool; expected {ACCEPTED} (convert a mask with "
                        f"images.astype(np.float32))")
    elif kind == "c":
        raise DataError(f"{name} has dtype {arr.dtype} (complex); expected {ACCEPTED}")
    elif kind in "iu":
        raise DataError(f"{name} has dtype {arr.dtype}; expected {ACCEPTED}: cast 8-bit "
                        f"pixels with images.astype(np.uint8), or give floats in the range "
                        f"the model was trained on")
    else:
        raise DataError(f"{name} has dtype {arr.dtype}; expected {ACCEPTED}")
    arr = _batch_shape(arr, input_shape, name)
    if arr.shape[0] == 0:
        raise DataError(f"{name}: the batch is empty (shape {arr.shape}); give at least one image")
    if arr.size == 0:
        raise DataError(f"{name}: the images are empty (shape {arr.shape})")
    finite = np.isfinite(arr)
    if not finite.all():
        bad = np.flatnonzero(~finite.reshape(arr.shape[0], -1).all(axis=1))
        n_nan = int(np.isnan(arr).sum())
        n_inf = int((~finite).sum()) - n_nan
        raise DataError(f"{name} contains {n_nan} NaN and {n_inf} infinite values (in "
                        f"{bad.size} image(s), the first is image {int(bad[0])}); every pixel "
                        f"must be a finite number")
    check_range(arr, input_range, name=name)
    return arr


def _batch_shape(arr: np.ndarray, input_shape: Sequence[int] | None, name: str) -> np.ndarray:
    if input_shape is None:
        if arr.ndim < 2:
            raise DataError(f"{name} has shape {arr.shape}; expected a batch (n, *input_shape), "
                            f"e.g. (n, 28, 28, 1)")
        return arr
    want = tuple(int(d) for d in input_shape)
    got = tuple(arr.shape)
    if got[1:] == want:
        return arr
    if got == want:  # one image
        return arr[None]
    if want[-1:] == (1,) and got[1:] == want[:-1]:  # (n, H, W) for (H, W, 1)
        return arr[..., None]
    if want[-1:] == (1,) and got == want[:-1] and len(want) > 1:  # one (H, W) image
        return arr[None, ..., None]
    size = int(np.prod(want))
    if len(want) > 1 and arr.ndim == 2 and got[1] == size:  # flattened images
        return arr.reshape(got[0], *want)
    raise DataError(f"{name} has shape {got}, but the model takes {_shape_text(want)} "
                    f"(a batch of n images of shape {want})")


def check_range(images: np.ndarray, input_range: Sequence[float] | None, *,
                name: str = "images") -> None:
    """Refuse data outside ``input_range``; warn about suspicious ranges (module doc)."""
    lo_d, hi_d = float(images.min()), float(images.max())
    if input_range is None:
        if (hi_d > 1.5 and hi_d <= 255 and lo_d >= 0
                and bool(np.all(images == np.round(images)))):
            warnings.warn(
                f"{name}: float values in [{lo_d:g}, {hi_d:g}] look like 8-bit pixels (0-255); "
                f"models usually take [0, 1] (uint8 arrays are scaled automatically). Divide "
                f"by 255, or record the model's range in the tuned config "
                f"(\"input_range\": [0, 255]) to silence this", DataRangeWarning, stacklevel=3)
        return
    lo, hi = float(input_range[0]), float(input_range[1])
    span = hi - lo
    slack = RANGE_SLACK * span
    if lo_d < lo - slack or hi_d > hi + slack:
        hint = ""
        if lo >= 0 and hi <= 1 and 1 < hi_d <= 255:
            hint = " (0-255 pixels? divide by 255 or pass uint8)"
        raise DataError(f"{name}: values span [{lo_d:g}, {hi_d:g}], but the model expects "
                        f"inputs in [{lo:g}, {hi:g}] (input_range in the tuned config){hint}; "
                        f"rescale the data, or set input_range to the range the model was "
                        f"trained on")
    if span > 0 and (hi_d - lo_d) < RANGE_SLIVER * span and hi_d < lo + RANGE_SLIVER * span:
        warnings.warn(f"{name}: values span only [{lo_d:g}, {hi_d:g}] of the expected input "
                      f"range [{lo:g}, {hi:g}]; were they scaled twice?", DataRangeWarning,
                      stacklevel=3)


def infer_input_range(images: np.ndarray) -> tuple[float, float]:
    """The range to record for a model calibrated on ``images`` (policy-scaled floats).

    The smallest of [0, 1], [-1, 1], [0, 255] that holds the data, else the data's own
    ``[min, max]``.
    """
    lo, hi = float(np.min(images)), float(np.max(images))
    for nice in NICE_RANGES:
        if lo >= nice[0] and hi <= nice[1]:
            return nice
    return (lo, hi)


def network_images(network: Any, images: Any, *, name: str = "images",
                   float32: bool = False) -> np.ndarray:
    """:func:`as_images` for a :class:`~loihi_core.network.SpikingNetwork`'s input
    (its shape and, when the config recorded one, its ``input_range``)."""
    return as_images(images, tuple(network.input_shape), name=name,
                     input_range=getattr(network, "input_range", None), float32=float32)


def check_labels(labels: Any, n_images: int, *, where: str = "labels",
                 n_classes: int | None = None) -> np.ndarray:
    """Validate class labels for ``n_images`` images; return them as int64 ``(n,)``.

    Integer arrays, and float arrays of whole numbers, are class indices; one-hot rows,
    negative values, NaN, bool and a length other than ``n_images`` are refused.
    """
    if labels is None or isinstance(labels, (str, bytes, dict)):
        raise DataError(f"{where}: expected integer class indices of shape ({n_images},), "
                        f"got {type(labels).__name__}")
    try:
        labels = np.asarray(labels)
    except (ValueError, TypeError) as exc:
        raise DataError(f"{where}: cannot be read as an array ({exc})") from None
    if labels.ndim == 2 and labels.shape[1] > 1:
        raise DataError(f"{where}: 'labels' has shape {labels.shape} (one-hot?); expected "
                        f"integer class indices of shape ({n_images},): use labels.argmax(axis=1)")
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise DataError(f"{where}: 'labels' has shape {labels.shape}; expected integer class "
                        f"indices of shape ({n_images},)")
    if labels.dtype.kind not in "iu":
        integral = (labels.dtype.kind == "f" and bool(np.all(np.isfinite(labels)))
                    and bool(np.all(labels == np.round(labels))))
        if integral:
            labels = labels.astype(np.int64)
        else:
            raise DataError(f"{where}: 'labels' has dtype {labels.dtype}; expected integer "
                            f"class indices")
    if labels.shape[0] != n_images:
        raise DataError(f"{where}: {labels.shape[0]} labels for {n_images} images; they must "
                        f"have the same length")
    labels = labels.astype(np.int64)
    if labels.size and labels.min() < 0:
        raise DataError(f"{where}: 'labels' has negative values (min {labels.min()}); "
                        f"expected class indices 0, 1, ...")
    if n_classes is not None and labels.size and labels.max() >= n_classes:
        raise DataError(f"{where}: label {labels.max()} is out of range: the model has "
                        f"{n_classes} outputs (classes 0 to {n_classes - 1})")
    return labels


def check_input_range(value: Any, path: str = "input_range") -> tuple[float, float]:
    """``(low, high)`` from a config or argument value, or :class:`DataError`."""
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                       and math.isfinite(v) for v in value) or not value[0] < value[1]):
        raise DataError(f"{path}: expected [low, high] with finite low < high, got {value!r}")
    return float(value[0]), float(value[1])
