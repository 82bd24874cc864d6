"""Caches that a long-running process can keep for weeks: bounded by bytes, visible, tunable.

A dashboard server (``panel serve app``) sees hundreds of models over its life, and every
cache keyed by a model (the mapper's layer blocks, the app's computed results) would keep
each of them unless it is bounded. A bound by *entry count* is not enough: one entry of a
25 MB model weighs a hundred times one of the bundled example. So every cache shared
between sessions is a :class:`ByteLRU`: it estimates each entry's size
(:func:`deep_nbytes`, the NumPy buffers it holds) and drops the least recently used entries
once the sum passes its budget.

Budgets
-------
Each cache registers under a name with a default budget (:data:`DEFAULT_BUDGETS_MB`). The
environment variable ``LOIHI_STUDIO_CACHE_MB`` changes them when a cache is created:

* a number (``LOIHI_STUDIO_CACHE_MB=256``) is a total, shared by the caches in proportion
  to their defaults;
* ``name=MB`` pairs (``LOIHI_STUDIO_CACHE_MB=app.results=300,mapping.layers=64``) set
  single caches; the others keep their defaults.

:func:`set_budget` changes a budget at run time; :func:`summary` (entries, bytes, budget,
hits, misses, evictions per cache, and the process's resident memory) makes them visible.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
import types
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np

from .errors import ConfigError

#: Environment variable with the cache budgets (see the module docstring).
ENV_VAR = "LOIHI_STUDIO_CACHE_MB"

#: Default budget of every named cache, in MiB.
DEFAULT_BUDGETS_MB: dict[str, float] = {
    "mapping.layers": 128.0,   # discretized blocks of recently mapped layers (loihi_core.mapping)
    "app.results": 192.0,      # the dashboard's computed stages per (model, config)
    "app.inputs": 48.0,        # sampled layer inputs per (model, images) for the profiles
    "app.reference": 16.0,     # ideal-network outputs per (model, images)
    "app.profiles": 32.0,      # activation profiles per (model, layer, gain)
}

MIB = 1024 * 1024

#: Objects :func:`deep_nbytes` does not look into (shared code, not data an entry owns).
_OPAQUE = (type, types.ModuleType, types.FunctionType, types.MethodType, types.BuiltinFunctionType)


def deep_nbytes(obj: Any, _seen: set[int] | None = None) -> int:
    """Estimate the memory ``obj`` keeps alive: its NumPy buffers plus small-object overhead.

    Walks containers, dataclasses and plain objects' ``__dict__``; each NumPy buffer is
    counted once (views count their base). Python objects count ``sys.getsizeof`` — the
    estimate is for budgeting caches, not an exact heap size.
    """
    seen: set[int] = set() if _seen is None else _seen
    total = 0
    stack = [obj]
    while stack:
        o = stack.pop()
        if o is None or isinstance(o, (bool, int, float)) or id(o) in seen:
            continue
        seen.add(id(o))
        if isinstance(o, np.ndarray):
            base = o
            while isinstance(base.base, np.ndarray):
                base = base.base
            if base is not o:
                if id(base) in seen:
                    continue
                seen.add(id(base))
            total += int(base.nbytes) + 112
            continue
        if isinstance(o, (str, bytes, bytearray, memoryview)):
            total += sys.getsizeof(o)
            continue
        total += sys.getsizeof(o, 64)
        if isinstance(o, dict):
            stack.extend(o.keys())
            stack.extend(o.values())
        elif isinstance(o, (list, tuple, set, frozenset)):
            stack.extend(o)
        elif isinstance(o, _OPAQUE):
            continue
        else:
            fields = getattr(o, "__dict__", None)
            if fields is not None:
                stack.extend(fields.values())
            elif dataclasses.is_dataclass(o):
                stack.extend(getattr(o, f.name) for f in dataclasses.fields(o))
            for slot in getattr(type(o), "__slots__", ()):
                if isinstance(slot, str) and hasattr(o, slot):
                    stack.append(getattr(o, slot))
    return total


def _parse_env(text: str | None) -> dict[str, float]:
    """Budgets from ``LOIHI_STUDIO_CACHE_MB`` (see the module docstring); {} when unset."""
    text = (text or "").strip()
    if not text:
        return {}
    try:
        total = float(text)
    except ValueError:
        total = None
    if total is not None:
        if total < 0:
            raise ConfigError(f"{ENV_VAR}={text!r}: the total budget must be >= 0 MB")
        scale = total / sum(DEFAULT_BUDGETS_MB.values())
        return {name: mb * scale for name, mb in DEFAULT_BUDGETS_MB.items()}
    budgets = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        name = name.strip()
        try:
            mb = float(value) if sep else -1.0
        except ValueError:
            mb = -1.0
        if name not in DEFAULT_BUDGETS_MB or mb < 0:
            raise ConfigError(f"{ENV_VAR}={text!r}: {part.strip()!r} is not NAME=MB with NAME one of "
                              f"{', '.join(DEFAULT_BUDGETS_MB)} and MB >= 0 (or give one total in MB)")
        budgets[name] = mb
    return budgets


def budget_bytes(name: str) -> int:
    """The budget of cache ``name`` in bytes: ``LOIHI_STUDIO_CACHE_MB`` or the default."""
    mb = _parse_env(os.environ.get(ENV_VAR)).get(name, DEFAULT_BUDGETS_MB.get(name, 64.0))
    return int(mb * MIB)


class ByteLRU:
    """A thread-safe least-recently-used cache bounded by the bytes its entries hold.

    Parameters
    ----------
    name
        Registry name (shown by :func:`summary`, used by ``LOIHI_STUDIO_CACHE_MB``).
    max_bytes
        Budget; ``None`` reads it from :func:`budget_bytes`. An entry larger than a
        quarter of the budget is not stored (it would evict everything else for one use).
    sizeof
        How an entry's bytes are estimated (default :func:`deep_nbytes`).
    """

    def __init__(self, name: str, max_bytes: int | None = None,
                 sizeof: Callable[[Any], int] = deep_nbytes):
        self.name = name
        self.max_bytes = budget_bytes(name) if max_bytes is None else int(max_bytes)
        self._sizeof = sizeof
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = self.evictions = 0
        with _REGISTRY_LOCK:
            _REGISTRY[name] = self

    # ------------------------------------------------------------------------------------
    def get(self, key: Hashable, default: Any = None) -> Any:
        """The value under ``key`` (now the most recently used), or ``default``."""
        with self._lock:
            entry = self._items.get(key)
            if entry is None:
                self.misses += 1
                return default
            self.hits += 1
            self._items.move_to_end(key)
            return entry[0]

    def put(self, key: Hashable, value: Any, nbytes: int | None = None) -> bool:
        """Store ``value`` (unless already there or too large); returns whether it is cached."""
        size = self._sizeof(value) if nbytes is None else int(nbytes)
        if size > self.max_bytes // 4:
            return False
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return True
            self._items[key] = (value, size)
            self._bytes += size
            self._evict()
            return True

    def get_or_make(self, key: Hashable, make: Callable[[], Any]) -> Any:
        """The cached value, or ``make()`` (computed outside the lock, then stored)."""
        sentinel = _MISSING
        value = self.get(key, sentinel)
        if value is sentinel:
            value = make()
            self.put(key, value)
        return value

    def discard(self, keep: Callable[[Hashable], bool]) -> int:
        """Drop every entry whose key ``keep`` rejects; returns the bytes released."""
        with self._lock:
            drop = [k for k in self._items if not keep(k)]
            freed = 0
            for k in drop:
                freed += self._items.pop(k)[1]
            self._bytes -= freed
            return freed

    def set_budget(self, max_bytes: int) -> None:
        with self._lock:
            self.max_bytes = int(max_bytes)
            self._evict()

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def _evict(self) -> None:
        while self._bytes > self.max_bytes and self._items:
            _, (_, size) = self._items.popitem(last=False)
            self._bytes -= size
            self.evictions += 1

    # ------------------------------------------------------------------------------------
    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def keys(self) -> list[Hashable]:
        with self._lock:
            return list(self._items)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"entries": len(self._items), "bytes": self._bytes, "max_bytes": self.max_bytes,
                    "hits": self.hits, "misses": self.misses, "evictions": self.evictions}


_MISSING = object()
_REGISTRY: dict[str, ByteLRU] = {}
_REGISTRY_LOCK = threading.Lock()


def caches() -> dict[str, ByteLRU]:
    """Every registered cache by name."""
    with _REGISTRY_LOCK:
        return dict(_REGISTRY)


def set_budget(name: str, megabytes: float) -> None:
    """Change the budget of cache ``name`` now (evicting down to it)."""
    found = caches().get(name)
    if found is None:
        raise ConfigError(f"no cache named {name!r}; the caches are {', '.join(sorted(caches()))}")
    found.set_budget(int(megabytes * MIB))


def resident_bytes() -> int | None:
    """This process's resident memory (RSS) in bytes, or ``None`` where it cannot be read."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        pass
    try:
        import psutil  # noqa: PLC0415 (optional, only off Linux)
    except ImportError:
        return None
    return int(psutil.Process().memory_info().rss)


def summary() -> dict[str, Any]:
    """Every cache's :meth:`ByteLRU.stats` and the process's resident bytes (JSON-ready)."""
    out = {name: cache.stats() for name, cache in sorted(caches().items())}
    return {"caches": out, "cached_bytes": sum(c["bytes"] for c in out.values()),
            "rss_bytes": resident_bytes()}


def summary_line() -> str:
    """:func:`summary` as one log line (MB)."""
    s = summary()
    parts = [f"{name} {c['entries']} entries {c['bytes'] / MIB:.1f}/{c['max_bytes'] / MIB:.0f} MB"
             for name, c in s["caches"].items()]
    rss = s["rss_bytes"]
    head = f"rss {rss / MIB:.0f} MB" if rss is not None else "rss n/a"
    return f"{head}; caches {s['cached_bytes'] / MIB:.1f} MB: " + ", ".join(parts)


def release_freed_memory() -> None:
    """Ask the C allocator to give freed heap pages back to the system (glibc only).

    Freed NumPy buffers of a closed session sit in malloc arenas (one per worker thread)
    and still count as resident; ``malloc_trim`` returns them, so the server's RSS
    reflects what it really holds. A no-op elsewhere.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes  # noqa: PLC0415

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
