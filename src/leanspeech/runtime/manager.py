"""Model lifetime: load on first use, ref-counted handles, idle TTL, and a memory budget.

No web code here: the server (and anything else) asks ``ModelManager.acquire`` for a model
and gets a handle that keeps it loaded until released. Unloading calls the model's
``close()`` and hands the freed heap back to the OS, and the manager records how much
RSS (and GPU memory) that really returned.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from leanspeech.errors import MemoryBudgetError
from leanspeech.memory import format_bytes, gpu_memory, release_memory, rss

logger = logging.getLogger(__name__)


T = TypeVar("T")


@dataclass
class Loaded(Generic[T]):
    """A loaded model and its bookkeeping. ``obj`` is what the kind's ``LoaderSpec.load``
    returned (for speech-to-text a ``ServedModel``, for text-to-speech a ``Synthesizer``)."""

    key: str
    kind: str  # "stt" | "tts"
    name: str
    obj: T
    estimate: int  # bytes the budget counts for it
    load_rss: int  # RSS the load added, measured
    ttl: int
    loaded_at: float = field(default_factory=time.time)
    last_used: float = field(default_factory=time.time)
    refs: int = 0
    uses: int = 0


def _no_description(obj: Any) -> dict:
    return {}


def _no_candidates() -> list[str]:
    return []


@dataclass(frozen=True)
class LoaderSpec(Generic[T]):
    """How to load, size and describe one kind of model.

    ``load(name)`` returns the object the manager holds (it must have ``close()``);
    ``estimate(name)`` is the bytes the budget counts for it, known before loading;
    ``candidates()`` are the names that could be loaded instead (on disk here), offered
    when a model does not fit the budget.
    """

    load: Callable[[str], T]
    estimate: Callable[[str], int]
    ttl: int  # -1 never, 0 at once, else seconds idle
    describe: Callable[[T], dict] = _no_description
    candidates: Callable[[], list[str]] = _no_candidates


class ModelManager:
    def __init__(self, types: dict[str, LoaderSpec[Any]], budget: int | None = None, cleanup_interval: int = 0,
                 budget_label: str | None = None):
        self.types = types
        self.budget = budget
        self.budget_label = budget_label
        self.cleanup_interval = cleanup_interval
        self._loaded: dict[str, Loaded[Any]] = {}
        self._lock = threading.RLock()
        self._key_locks: dict[str, threading.Lock] = {}
        self._loading: set[str] = set()
        #: bytes reserved by loads in progress: two models loading at once count both
        self._reserved: dict[str, int] = {}
        self._room = threading.Lock()  # one room check (and reservation) at a time
        self._requests = 0
        self.unloads: list[dict] = []  # recent unloads with measured memory returned
        self.unload_count = 0

    # ---- queries --------------------------------------------------------------------

    @property
    def loading(self) -> bool:
        return bool(self._loading)

    def used(self) -> int:
        """Bytes counted against the budget: the loaded models and the loads in progress."""
        with self._lock:
            return sum(m.estimate for m in self._loaded.values()) + sum(self._reserved.values())

    def headroom(self) -> int | None:
        return None if self.budget is None else self.budget - self.used()

    def status(self) -> list[dict]:
        with self._lock:
            items = list(self._loaded.values())
        now = time.time()
        return [
            {
                "key": m.key, "kind": m.kind, "name": m.name, "bytes": m.estimate, "load_rss": m.load_rss,
                "refs": m.refs, "uses": m.uses, "ttl": m.ttl, "loaded_at": m.loaded_at, "last_used": m.last_used,
                "idle_s": round(now - m.last_used, 3) if m.refs == 0 else 0.0,
                **self.types[m.kind].describe(m.obj),
            }
            for m in items
        ]

    def is_loaded(self, kind: str, name: str) -> bool:
        return f"{kind}:{name}" in self._loaded

    # ---- acquire / release ----------------------------------------------------------

    @contextmanager
    def acquire(self, kind: str, name: str, *, counted: bool = True) -> Iterator[Any]:
        """Yield the loaded model, loading it first if needed; it is not unloaded while held.
        ``counted=False`` (a preload) does not count towards ``cleanup_interval``."""
        entry = self._get(kind, name)
        try:
            yield entry.obj
        finally:
            self._release(entry, counted=counted)

    def checkout(self, kind: str, name: str) -> Loaded[Any]:
        """Take a handle (loading if needed); pair with ``checkin``."""
        return self._get(kind, name)

    def checkin(self, entry: Loaded[Any]) -> None:
        self._release(entry)

    def _get(self, kind: str, name: str) -> Loaded[Any]:
        key = f"{kind}:{name}"
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:  # one load per model, however many requests want it at once
            with self._lock:
                entry = self._loaded.get(key)
                if entry is not None:
                    entry.refs += 1
                    entry.uses += 1
                    return entry
            mtype = self.types[kind]
            need = mtype.estimate(name)
            self._reserve(key, need, name)
            self._loading.add(key)
            try:
                before = rss()
                obj = mtype.load(name)
                load_rss = max(0, rss() - before)
                entry = Loaded(key, kind, name, obj, need, load_rss, mtype.ttl, refs=1, uses=1)
                with self._lock:
                    self._loaded[key] = entry
            finally:
                self._loading.discard(key)
                with self._lock:
                    self._reserved.pop(key, None)
            logger.info("Loaded %s (%s counted, RSS +%s)", key, format_bytes(need), format_bytes(load_rss))
            return entry

    def _release(self, entry: Loaded[Any], counted: bool = True) -> None:
        with self._lock:
            entry.refs -= 1
            entry.last_used = time.time()
            self._requests += int(counted)
            unload_now = entry.refs == 0 and entry.ttl == 0
            periodic = counted and self.cleanup_interval and self._requests % self.cleanup_interval == 0
        if unload_now:
            self.unload(entry.key)
        if periodic:
            self.cleanup()

    # ---- budget ---------------------------------------------------------------------

    def _reserve(self, key: str, need: int, name: str) -> None:
        """Make room for ``need`` bytes and hold them for ``key`` until its load ends, so
        that loads in progress are counted by the next room check."""
        with self._room:
            self._make_room(need, name)
            with self._lock:
                self._reserved[key] = need

    def _make_room(self, need: int, name: str) -> None:
        if self.budget is None:
            return
        if need > self.budget:
            raise MemoryBudgetError(self._budget_message(name, need))
        while self.used() + need > self.budget:
            with self._lock:
                idle = sorted((m for m in self._loaded.values() if m.refs == 0), key=lambda m: m.last_used)
            if not idle:
                raise MemoryBudgetError(self._budget_message(name, need))
            logger.info("Unloading idle %s to make room for %s", idle[0].key, name)
            self.unload(idle[0].key)

    def _budget_message(self, name: str, need: int) -> str:
        assert self.budget is not None
        in_use = [m for m in self._loaded.values() if m.refs > 0]
        loading = sorted(self._reserved)
        free = self.budget - sum(m.estimate for m in in_use) - sum(self._reserved.values())
        fits = []
        for mtype in self.types.values():
            for candidate in mtype.candidates():
                try:
                    if mtype.estimate(candidate) <= free:
                        fits.append(candidate)
                except Exception:
                    continue
        text = (
            f"model {name!r} needs about {format_bytes(need)} but the memory budget is "
            f"{self.budget_label + ' = ' if self.budget_label else ''}{format_bytes(self.budget)} "
            f"({format_bytes(max(free, 0))} free"
            + (f"; in use: {', '.join(m.name for m in in_use)}" if in_use else "")
            + (f"; loading: {', '.join(k.split(':', 1)[1] for k in loading)}" if loading else "") + ")"
        )
        if fits:
            text += f"; models that would fit now: {', '.join(fits)}"
        else:
            text += "; nothing else fits either: raise LEANSPEECH_MEMORY__BUDGET or use a lower precision"
        return text

    # ---- unloading ------------------------------------------------------------------

    def unload(self, key: str) -> dict | None:
        """Unload one idle model now; returns what memory it gave back (measured)."""
        with self._lock:
            entry = self._loaded.get(key)
            if entry is None or entry.refs > 0:
                return None
            del self._loaded[key]
        before, gpu_before = rss(), _gpu_used()
        close = getattr(entry.obj, "close", None)
        if close is not None:
            close()
        entry.obj = None
        release_memory()
        after, gpu_after = rss(), _gpu_used()
        gpu_freed = gpu_before - gpu_after if gpu_before is not None and gpu_after is not None else None
        record = {"key": key, "rss_before": before, "rss_after": after, "rss_freed": before - after,
                  "gpu_freed": gpu_freed, "time": time.time()}
        self.unloads = [*self.unloads[-19:], record]
        self.unload_count += 1
        logger.info("Unloaded %s: RSS %s -> %s", key, format_bytes(before), format_bytes(after))
        return record

    def reap(self, now: float | None = None) -> list[dict]:
        """Unload every model idle for longer than its TTL."""
        now = time.time() if now is None else now
        with self._lock:
            due = [m.key for m in self._loaded.values() if m.refs == 0 and m.ttl >= 0 and now - m.last_used >= m.ttl]
        return [r for r in (self.unload(k) for k in due) if r]

    def cleanup(self) -> dict:
        """Garbage-collect and unload every idle model (the periodic clean-up)."""
        before = rss()
        with self._lock:
            idle = [m.key for m in self._loaded.values() if m.refs == 0]
        unloaded = [r for r in (self.unload(k) for k in idle) if r]
        release_memory()
        after = rss()
        return {"rss_before": before, "rss_after": after, "freed": before - after,
                "unloaded": [u["key"] for u in unloaded]}

    def close(self) -> None:
        """Unload everything (waits for nothing: call after in-flight work has finished)."""
        with self._lock:
            keys = list(self._loaded)
            for m in self._loaded.values():
                m.refs = 0
        for key in keys:
            self.unload(key)


def _gpu_used() -> int | None:
    gpus = gpu_memory()
    if not gpus:
        return None
    return sum((g.process_used if g.process_used is not None else g.used) for g in gpus)
