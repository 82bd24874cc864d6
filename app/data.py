"""Models and data sets the dashboard works on: the bundled example, uploads, a shared cache.

A :class:`ModelBundle` is everything a session needs that does not change while tuning:
the model's layer graph (plain data from :func:`loihi_core.load_model`), its starting
config, the images and labels. Bundles are read-only, so the bundled example is loaded
once per server process and shared by every browser session; uploads belong to the
session that made them.

Loading a ``.keras`` file imports TensorFlow (seconds), so every loader here is meant to
run in a worker thread; :func:`app.warmup.warm_up` does the example load and the Numba JIT
once at server start, so that the first user does not wait for either. This module needs
nothing of the session state (:mod:`app.state` builds on it, never the other way round).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

import loihi_core
from loihi_core import TunedConfig
from loihi_core.errors import LoihiStudioError

T = TypeVar("T")

#: The repository root (``app/`` lives directly under it).
ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = ROOT / "assets" / "examples"
EXAMPLE_MODEL = EXAMPLES_DIR / "mnist_tutorial.keras"
EXAMPLE_DATA = EXAMPLES_DIR / "mnist_test.npz"
EXAMPLE_CONFIG = EXAMPLES_DIR / "mnist_tutorial.config.json"
#: Used while the bundled example is missing (a checkout before ``make assets``).
FALLBACK_MODEL = ROOT / "tests" / "data" / "reference" / "tutorial_random.keras"

#: Largest upload accepted (bytes); a Loihi-sized network is far smaller.
MAX_UPLOAD_BYTES = 200 * 1024 * 1024
#: Most images kept from an uploaded data set (the dashboard never needs more).
MAX_IMAGES = 10_000


class DataError(ValueError):
    """An uploaded file is not usable; the message says what is wrong and what to do."""


@dataclass(frozen=True)
class ModelBundle:
    """A loaded model with its starting config and data (read-only, shareable).

    Attributes
    ----------
    graph
        The model as :class:`loihi_core.graph.LayerGraph` (no TensorFlow objects).
    name
        What the UI calls the model (the file name).
    config
        The config the model starts with (and returns to on *Reset*).
    images, labels
        The data set: ``(n, *input_shape)`` float32 and ``(n,)`` int64 or ``None``.
    data_name
        What the UI calls the data set.
    notes
        Remarks shown next to the model (e.g. that a stand-in example is used).
    """

    graph: Any
    name: str
    config: TunedConfig
    images: np.ndarray
    labels: np.ndarray | None
    data_name: str
    notes: tuple[str, ...] = ()
    token: str = field(default="")

    def with_data(self, images: np.ndarray, labels: np.ndarray | None, data_name: str) -> "ModelBundle":
        """The same model with another data set (validated against the model's input)."""
        images, labels = check_images(images, labels, input_shape(self.graph))
        return ModelBundle(graph=self.graph, name=self.name, config=self.config, images=images,
                           labels=labels, data_name=data_name, notes=self.notes,
                           token=_token(self.token, images, labels))

    def with_config(self, config: TunedConfig) -> "ModelBundle":
        return ModelBundle(graph=self.graph, name=self.name, config=config, images=self.images,
                           labels=self.labels, data_name=self.data_name, notes=self.notes,
                           token=self.token)


def input_shape(graph: Any) -> tuple[int, ...]:
    """The model's input shape (without batch axis), from the layer graph."""
    return tuple(graph[graph.input_names[0]].output_shape)


def _token(*parts: Any) -> str:
    """A short identity for caches: hashes arrays by content, other parts by ``str``."""
    h = hashlib.sha1()
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(str((part.shape, part.dtype)).encode())
            h.update(np.ascontiguousarray(part).tobytes())
        else:
            h.update(str(part).encode())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------------------------------
# data sets
# ---------------------------------------------------------------------------------------

def check_images(images: Any, labels: Any, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray | None]:
    """Validate an image batch (and labels) for a model with input ``shape``.

    Follows the core's rules (``loihi_core.data``: uint8 pixels are scaled to [0, 1], float
    images kept as they are, ``(n, H, W)`` accepted for an ``(H, W, 1)`` input) so that the
    app and ``loihi-studio simulate`` see the same numbers for the same file. Keeps at most
    :data:`MAX_IMAGES` images.

    Raises
    ------
    DataError
        Naming the array, what was found and what the model expects.
    """
    try:
        from loihi_core.data import check_images as core_images, check_labels as core_labels
    except ImportError:  # an older core: the same rules, checked here
        core_images = core_labels = None
    try:
        if core_images is not None:
            images = core_images(images, where="images", input_shape=shape)
            labels = None if labels is None else core_labels(labels, len(images), where="labels")
        else:
            images, labels = _check_images_here(images, labels, shape)
    except LoihiStudioError as exc:
        raise DataError(str(exc)) from None
    images = images[:MAX_IMAGES]
    return images, None if labels is None else labels[:MAX_IMAGES]


def _check_images_here(images: Any, labels: Any, shape: tuple[int, ...]):
    images = np.asarray(images)
    if images.dtype == np.uint8:
        images = images.astype(np.float32) / np.float32(255)
    elif images.dtype.kind != "f":
        raise DataError(f"'images' has dtype {images.dtype}; expected float images or uint8 pixels")
    if images.ndim == len(shape) and shape[-1:] == (1,):
        images = images[..., None]
    if images.ndim != len(shape) + 1 or tuple(images.shape[1:]) != tuple(shape) or not len(images):
        raise DataError(f"'images' has shape {images.shape}, but the model takes "
                        f"(n, {', '.join(map(str, shape))}) inputs")
    if not np.isfinite(images).all():
        raise DataError("'images' contains NaN or infinite values")
    if labels is None:
        return images.astype(np.float32), None
    labels = np.asarray(labels).reshape(-1)
    if labels.dtype.kind not in "iu" or labels.shape[0] != images.shape[0]:
        raise DataError(f"'labels' must be {images.shape[0]} integer class ids")
    return images.astype(np.float32), labels.astype(np.int64)


def read_npz(source: str | Path | bytes, filename: str | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """``(images, labels or None)`` from an ``.npz`` file or its bytes, never unpickling.

    Reads with ``loihi_core.data.load_images_npz`` (``allow_pickle=False``, the CLI's
    rules); uploaded bytes go through a temporary file. Raises :class:`DataError`.
    """
    if isinstance(source, (bytes, bytearray)):
        if len(source) > MAX_UPLOAD_BYTES:
            raise DataError(f"the file is {len(source) / 1e6:.0f} MB; the limit is "
                            f"{MAX_UPLOAD_BYTES / 1e6:.0f} MB")
        return read_upload(source, filename or "the .npz", "upload.npz", _read_npz_path,
                           errors=DataError, raise_as=DataError)
    return _read_npz_path(Path(source))


def read_upload(data: bytes, shown_name: str, temp_name: str, read: Callable[[Path], T],
                errors: type[Exception] | tuple = LoihiStudioError,
                raise_as: type[Exception] = DataError) -> T:
    """``read(path)`` of uploaded bytes, written to a temporary file for the core's readers.

    Errors of type ``errors`` come back as ``raise_as`` with the temporary path in the
    message replaced by ``shown_name`` (the user's file name, not ours).
    """
    with tempfile.TemporaryDirectory(prefix="loihi-studio-") as tmp:
        path = Path(tmp) / temp_name
        path.write_bytes(data)
        try:
            return read(path)
        except errors as exc:
            raise raise_as(str(exc).replace(str(path), shown_name)) from None


def _read_npz_path(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        from loihi_core.data import load_images_npz
    except ImportError:
        load_images_npz = None
    if load_images_npz is not None:
        try:
            return load_images_npz(path)
        except LoihiStudioError as exc:
            raise DataError(str(exc)) from None
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "images" not in archive.files:
                raise DataError(f"the .npz has no 'images' array (it has: {', '.join(archive.files)})")
            return archive["images"], archive["labels"] if "labels" in archive.files else None
    except DataError:
        raise
    except Exception as exc:  # pickled objects, not a zip, corrupt
        raise DataError(f"not a readable .npz of plain arrays ({type(exc).__name__}: {exc})") from None


def synthetic_images(shape: tuple[int, ...], n: int = 64, seed: int = 0) -> np.ndarray:
    """Smooth random images in [0, 1] for a model that comes without data."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, (n, *shape)).astype(np.float32)


# ---------------------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------------------

def load_model_bytes(data: bytes, filename: str) -> Any:
    """Load an uploaded ``.keras`` file: written to a temporary file, read by the core.

    The core reads it with Keras' ``safe_mode`` (no code, no pickles). Returns the layer
    graph. Raises :class:`DataError` for files that are not ``.keras`` archives.
    """
    if not filename.lower().endswith(".keras"):
        raise DataError(f"{filename!r} is not a .keras file; save the model with "
                        f"model.save('model.keras') in Keras 3")
    if len(data) > MAX_UPLOAD_BYTES:
        raise DataError(f"{filename!r} is {len(data) / 1e6:.0f} MB; the limit is "
                        f"{MAX_UPLOAD_BYTES / 1e6:.0f} MB")
    graph = read_upload(data, filename, "uploaded.keras", loihi_core.load_model)
    graph.source = filename
    return graph


def bundle_for_graph(graph: Any, name: str, images: np.ndarray | None = None,
                     labels: np.ndarray | None = None, data_name: str = "",
                     config: TunedConfig | None = None, notes: tuple[str, ...] = ()) -> ModelBundle:
    """A bundle for a freshly loaded model; checks that it converts at all.

    Without data, synthetic images of the model's input shape are used (and said so).
    Raises :class:`loihi_core.errors.ConversionError` for unsupported models.
    """
    cfg = config or TunedConfig()
    loihi_core.convert(graph, cfg)  # raises ConversionError / ConfigError for the caller
    shape = input_shape(graph)
    if images is None:
        images, labels = synthetic_images(shape), None
        data_name = "random images (no data set loaded)"
    images, labels = check_images(images, labels, shape)
    token = _token(graph.sha256 or name, images, labels)
    return ModelBundle(graph=graph, name=name, config=cfg, images=images, labels=labels,
                       data_name=data_name, notes=notes, token=token)


#: The bundled examples: the shown name → (model, tuned config) files in assets/examples.
#: Both use the same held-out digits (EXAMPLE_DATA).
EXAMPLES = {
    "MNIST tutorial (chain)": (EXAMPLE_MODEL, EXAMPLE_CONFIG),
    "MNIST residual (graph)": (EXAMPLES_DIR / "mnist_residual.keras",
                               EXAMPLES_DIR / "mnist_residual.config.json"),
}
DEFAULT_EXAMPLE = "MNIST tutorial (chain)"


def _load_example(name: str = DEFAULT_EXAMPLE) -> ModelBundle:
    model, config_path = EXAMPLES[name]
    if model.exists():
        graph = loihi_core.load_model(model)
        config = loihi_core.load_config(config_path) if config_path.exists() else None
        images = labels = None
        data_name = ""
        if EXAMPLE_DATA.exists():
            images, labels = read_npz(EXAMPLE_DATA)
            data_name = EXAMPLE_DATA.name
        return bundle_for_graph(graph, model.name, images, labels, data_name, config)
    graph = loihi_core.load_model(FALLBACK_MODEL)
    config = TunedConfig().with_defaults(scale_firing_rates=100.0, synapse=0.005)
    note = ("The bundled MNIST example (assets/examples) is missing, so the reference test "
            "network with random weights and random inputs is shown; run `make assets`.")
    return bundle_for_graph(graph, FALLBACK_MODEL.name, config=config, notes=(note,))


_executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="loihi-studio-load")
_lock = threading.Lock()
_examples: dict[str, Future] = {}


def example_future(name: str = DEFAULT_EXAMPLE) -> Future:
    """A bundled example, loaded once per process in a worker thread (shared)."""
    if name not in EXAMPLES:
        raise KeyError(f"no bundled example {name!r}; they are: {', '.join(EXAMPLES)}")
    with _lock:
        future = _examples.get(name)
        if future is None or (future.done() and future.exception() is not None):
            future = _examples[name] = _executor.submit(_load_example, name)
        return future


def load_example(name: str = DEFAULT_EXAMPLE) -> ModelBundle:
    """A bundled example (blocks until loaded; cached for the process)."""
    return example_future(name).result()


def example_available() -> bool:
    return EXAMPLE_MODEL.exists()


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")
