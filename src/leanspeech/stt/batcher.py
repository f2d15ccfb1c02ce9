"""Decode windows from concurrent requests together.

Callers encode their own windows (``decode_loop``) and submit them here. One worker thread
per model takes the oldest window, waits up to ``window_ms`` for more windows that can share
a decode call (the same decoding options; languages may differ), and decodes up to
``max_batch`` of them at once with the engine's ``decode``.

It also waits for the windows that were being encoded when it took the oldest one
(``encoding``; bounded by ``ENCODE_WAIT_S``). A model runs its calls one at a time, in the
order they came (CTranslate2's one replica), so a decode started now would run after those
encodes anyway: waiting for them costs the batch nothing and puts their windows in it.
Without it, with 8 clients the first window encoded went alone while the seven encodes
queued before its decode made the next batch (batches of 1, 4, 3 instead of 4, 4).

The queue is bounded: a full queue raises ``QueueFullError`` at submit time (the server
answers 429). A request that is cancelled (its client went away) has its windows skipped
without touching anyone else's.

No asyncio and no web imports: futures are ``concurrent.futures.Future``; async callers wrap
them with ``asyncio.wrap_future``.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from ..errors import LeanspeechError
from .engine import EncodedWindow, Engine
from .options import TranscribeOptions
from .segments import WindowSegment

logger = logging.getLogger(__name__)

#: Most seconds a batch waits for the encodes that were running when its first window came.
ENCODE_WAIT_S = 2.0


class QueueFullError(LeanspeechError):
    kind = "queue_full"

    def __init__(self, depth: int, retry_after: float):
        self.retry_after = retry_after
        super().__init__(f"the decode queue is full ({depth} windows waiting); retry in {retry_after:.0f} s")


def _group_key(options: TranscribeOptions) -> tuple:
    """Windows decoded together share these options (the decode reads nothing else)."""
    return (
        options.task, options.beam_size, options.temperature, options.initial_prompt, options.hotwords,
        options.no_speech_threshold, options.log_prob_threshold, options.compression_ratio_threshold,
        options.without_timestamps,
    )


@dataclass
class _Item:
    item: EncodedWindow
    options: TranscribeOptions
    future: Future[list[WindowSegment]]
    key: tuple
    enqueued: float


class Batcher:
    def __init__(
        self,
        engine: Engine,
        *,
        window_ms: float = 10.0,
        max_batch: int = 8,
        max_queue: int = 64,
        enabled: bool = True,
        on_batch: Callable[[int, float], None] | None = None,
    ):
        self.engine = engine
        self.window_s = window_ms / 1000.0
        self.max_batch = max_batch if enabled else 1
        self.max_queue = max_queue
        self.on_batch = on_batch
        self._queue: deque[_Item] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._busy_s = 0.5  # running estimate of one decode call, for Retry-After
        self._encoding: dict[int, tuple] = {}  # ticket -> group key of a window being encoded
        self._tickets = itertools.count()
        self._thread = threading.Thread(target=self._run, name=f"leanspeech-batcher-{engine.name}", daemon=True)
        self._thread.start()

    @property
    def depth(self) -> int:
        return len(self._queue)

    def submit(self, items: Sequence[EncodedWindow], options: TranscribeOptions) -> list[Future[list[WindowSegment]]]:
        """Queue encoded windows (the ``decode_loop.Decoder`` protocol); each future resolves
        to that window's segments. ``QueueFullError`` when they do not all fit."""
        key = _group_key(options)
        with self._cond:
            if self._closed:
                raise LeanspeechError("the model is being unloaded")
            self._check_room(len(items))
            futures: list[Future[list[WindowSegment]]] = []
            for item in items:
                future: Future[list[WindowSegment]] = Future()
                self._queue.append(_Item(item, options, future, key, time.monotonic()))
                futures.append(future)
            self._cond.notify()
        return futures

    @contextlib.contextmanager
    def encoding(self, options: TranscribeOptions) -> Iterator[None]:
        """Around a caller's encode and ``submit`` of windows decoded with ``options``: a
        batch taken meanwhile waits for them (see the module docstring)."""
        ticket = next(self._tickets)
        with self._cond:
            self._encoding[ticket] = _group_key(options)
        try:
            yield
        finally:
            with self._cond:
                del self._encoding[ticket]
                self._cond.notify_all()

    def reserve(self, count: int) -> None:
        """Fail fast (before any encoding) when ``count`` more windows would not fit."""
        with self._cond:
            self._check_room(count)

    def _check_room(self, count: int) -> None:
        if len(self._queue) + count > self.max_queue:
            waits = len(self._queue) / max(1, self.max_batch)
            raise QueueFullError(len(self._queue), max(1.0, waits * self._busy_s))

    def _take(self) -> list[_Item] | None:
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if self._closed and not self._queue:
                return None
            first = self._queue[0]
            deadline = first.enqueued + self.window_s
            # the encodes of windows like these running now: the model runs them first anyway
            awaited = {t for t, key in self._encoding.items() if key == first.key}
            hold = time.monotonic() + ENCODE_WAIT_S
            while self.max_batch > 1 and not self._closed:
                same = sum(1 for it in self._queue if it.key == first.key and not it.future.cancelled())
                now = time.monotonic()
                encoding = bool(awaited.intersection(self._encoding)) and now < hold
                if same >= self.max_batch or (now >= deadline and not encoding):
                    break
                self._cond.wait((hold if encoding else deadline) - now)  # woken by submits and encodes' ends
            batch: list[_Item] = []
            keep: deque[_Item] = deque()
            for item in self._queue:
                if item.future.cancelled():
                    continue  # the client went away: drop it, harm no one
                if item.key == first.key and len(batch) < self.max_batch:
                    batch.append(item)
                else:
                    keep.append(item)
            self._queue = keep
            return batch

    def _run(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            if not batch:
                continue
            live = [it for it in batch if it.future.set_running_or_notify_cancel()]
            if not live:
                continue
            start = time.perf_counter()
            try:
                results = self.engine.decode([it.item for it in live], live[0].options)
            except BaseException as exc:  # hand the error to every waiting request
                logger.exception("batched decode failed")
                for it in live:
                    it.future.set_exception(exc)
                continue
            elapsed = time.perf_counter() - start
            self._busy_s = 0.8 * self._busy_s + 0.2 * elapsed
            if self.on_batch is not None:
                self.on_batch(len(live), elapsed)
            for it, result in zip(live, results, strict=True):
                it.future.set_result(result)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            for it in self._queue:
                it.future.cancel()
            self._queue.clear()
            self._cond.notify_all()
        self._thread.join(timeout=30)
