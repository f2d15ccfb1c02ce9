"""Decode windows from concurrent requests together: the server's decoder.

Callers encode their own windows (``decode_loop``) and submit them here. One worker thread
per model takes the oldest window, waits up to ``window_ms`` for more windows that can share
a decode call (the same decoding options; languages may differ), and decodes up to
``max_batch`` of them at once. It also waits, up to ``ENCODE_WAIT_S``, for the windows that
were being encoded when it took the oldest one: the model runs its calls in order, so a
decode started now would run after those encodes anyway, and waiting puts them in the batch.

With ``pack`` (``LEANSPEECH_SERVER__PACK_REQUESTS``) callers hand over windows before their
encode (``packing.Unencoded``) and the worker packs short windows of different requests into
shared 30-second windows (``packing.decode_packs``). A part that cannot be given back goes
back to the front of the queue, to be packed beside other windows, and after
``packing.PACKED_TRIES`` it is decoded alone. What packing and batching gain on a CPU: docs,
"Long files and batching" and the server's benchmark pages.

The queue is bounded (``QueueFullError``, 429); live windows are urgent (decoded first, outside
the bound) unless a window has waited ``AGED_S``; a cancelled request's windows are skipped.
No asyncio and no web imports: futures are ``concurrent.futures.Future``."""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace

from leanspeech.errors import LeanspeechError
from leanspeech.stt.decode_loop import encode_window
from leanspeech.stt.engine import EncodedWindow, Engine
from leanspeech.stt.options import TranscribeOptions
from leanspeech.stt.packing import Pack, Packer, Unencoded, decode_packs
from leanspeech.stt.segments import WindowSegment
from leanspeech.stt.windows import WINDOW_S

logger = logging.getLogger(__name__)

#: Most seconds a batch waits for the encodes that were running when its first window came.
ENCODE_WAIT_S = 2.0
#: A window that has waited this long is decoded next, urgent ones or not.
AGED_S = 1.0


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
    item: EncodedWindow | Unencoded
    options: TranscribeOptions
    future: Future[list[WindowSegment]]
    key: tuple
    enqueued: float
    running: bool = False  # its future is running (a packed part queued again)
    urgent: bool = False  # a live window: decoded before the files and requests queued ahead of it

    def place(self, packer: Packer[_Item]) -> bool:
        """Into ``packer``: alone when its caller encoded it or packing failed it too often."""
        if isinstance(self.item, Unencoded):
            return packer.add(self, self.item.window, alone=self.item.alone, apart=self.item.apart)
        return packer.add(self, self.item.window, alone=True)


class Batcher:
    def __init__(
        self,
        engine: Engine,
        *,
        window_ms: float = 10.0,
        max_batch: int = 8,
        max_queue: int = 64,
        enabled: bool = True,
        pack: bool = False,
        on_batch: Callable[[int, float], None] | None = None,
    ):
        self.engine = engine
        self.window_s = window_ms / 1000.0
        self.max_batch = max_batch if enabled else 1
        #: short windows of different requests packed into shared windows (module docstring);
        #: needs batching and an engine that decodes packed parts (CTranslate2)
        self.packing = pack and enabled and hasattr(engine, "decode_parts")
        self.packed = 0  # windows given back from a window they shared with others
        self.sent_back = 0  # packed windows that could not be given back and were queued again
        self.max_queue = max_queue
        self.on_batch = on_batch
        self._queue: deque[_Item] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._busy_s = 0.5  # running estimate of one decode call, for Retry-After
        self._encoding: dict[int, tuple] = {}  # ticket -> group key of a window being encoded
        self._tickets = itertools.count()
        self._packs = itertools.count()  # names a packed window whose parts failed (``Unencoded.apart``)
        self._thread = threading.Thread(target=self._run, name=f"leanspeech-batcher-{engine.name}", daemon=True)
        self._thread.start()

    @property
    def depth(self) -> int:
        return len(self._queue)

    @property
    def busy(self) -> bool:
        """Windows are queued or being encoded for it."""
        return bool(self._queue) or bool(self._encoding)

    @property
    def urgent(self) -> Urgent:
        """This batcher as the decoder of live windows (``Urgent``)."""
        return Urgent(self)

    def submit(self, items: Sequence[EncodedWindow | Unencoded], options: TranscribeOptions, *,
               urgent: bool = False) -> list[Future[list[WindowSegment]]]:
        """Queue windows (the ``decode_loop.Decoder`` protocol): encoded, or ``Unencoded``
        where ``packing``; each future resolves to that window's segments.
        ``QueueFullError`` when they do not all fit. ``urgent`` windows (live sessions, one
        window each at a time, so bounded by the live slots) skip the bound and are decoded
        first: an HTTP burst does not delay live text."""
        key = _group_key(options)
        if not self.packing and any(isinstance(it, Unencoded) for it in items):
            raise ValueError("this batcher does not pack: submit encoded windows")
        with self._cond:
            if self._closed:
                raise LeanspeechError("the model is being unloaded")
            if not urgent:
                self._check_room(len(items))
            futures: list[Future[list[WindowSegment]]] = []
            for item in items:
                future: Future[list[WindowSegment]] = Future()
                self._queue.append(_Item(item, options, future, key, time.monotonic(), urgent=urgent))
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
            # urgent (live) windows first, unless the oldest window has waited AGED_S: a steady
            # stream of live windows must not starve a request
            oldest = self._queue[0]
            aged = time.monotonic() - oldest.enqueued >= AGED_S
            first = oldest if aged else next((it for it in self._queue if it.urgent), oldest)
            deadline = first.enqueued + self.window_s
            # the encodes of windows like these running now: the model runs them first anyway
            awaited = {t for t, key in self._encoding.items() if key == first.key}
            hold = time.monotonic() + ENCODE_WAIT_S
            while self.max_batch > 1 and not self._closed:
                _, full = self._chosen(first.key)
                now = time.monotonic()
                encoding = bool(awaited.intersection(self._encoding)) and now < hold
                if full or (now >= deadline and not encoding):
                    break
                self._cond.wait((hold if encoding else deadline) - now)  # woken by submits and encodes' ends
            batch, _ = self._chosen(first.key)
            taken = {id(it) for it in batch}
            # the client went away: drop it, harm no one
            self._queue = deque(it for it in self._queue if id(it) not in taken and not it.future.cancelled())
            return batch

    def _chosen(self, key: tuple) -> tuple[list[_Item], bool]:
        """The queued windows with ``key`` that one decode takes, in arrival order, and
        whether they fill it (a window was left out)."""
        packer = self._packer()
        chosen: list[_Item] = []
        full = False
        aged = time.monotonic() - AGED_S
        # aged windows first, then urgent ones, each kind in arrival order
        for it in sorted(self._queue, key=lambda it: (it.enqueued > aged, not it.urgent)):
            if it.key != key or it.future.cancelled():
                continue
            if it.place(packer):
                chosen.append(it)
            else:
                full = True
        return chosen, full or len(packer.packs) >= self.max_batch

    def _packer(self) -> Packer[_Item]:
        """At most ``max_batch`` windows a decode; with packing, windows of up to 30 s."""
        return Packer(self.max_batch, WINDOW_S if self.packing else 0.0)

    def _run(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            live = [it for it in batch if it.running or it.future.set_running_or_notify_cancel()]
            if not live:
                continue
            for it in live:
                it.running = True
            start = time.perf_counter()
            try:
                done = self._decode(live)
            except BaseException as exc:  # hand the error to every waiting request
                logger.exception("batched decode failed")
                for it in live:
                    it.future.set_exception(exc)
                continue
            elapsed = time.perf_counter() - start
            self._busy_s = 0.8 * self._busy_s + 0.2 * elapsed
            if self.on_batch is not None:  # the windows it gave back (a part queued again counts when it is)
                self.on_batch(len(done), elapsed)
            for it, result in done:
                it.future.set_result(result)

    def _decode(self, items: list[_Item]) -> list[tuple[_Item, list[WindowSegment]]]:
        """One decode call for ``items`` (packed first where ``packing``): each item's
        segments; a packed part that cannot be given back is queued again (``Unencoded.tries``)."""
        packer = self._packer()
        for it in items:
            it.place(packer)
        packs: list[Pack[_Item]] = packer.packs
        decoded = decode_packs(self.engine, packs, [self._encoded(pack) for pack in packs], items[0].options)
        again = [it for window in decoded.failed for it in window]
        self.packed += sum(len(pack.parts) for pack in packs if len(pack.parts) > 1) - len(again)
        # this batcher's policy for a part packing could not give back: queued again, to be
        # packed beside other windows than those it failed beside, then alone after ``PACKED_TRIES``
        for window in decoded.failed:
            tag = next(self._packs)
            for it in window:
                assert isinstance(it.item, Unencoded)
                it.item = replace(it.item, tries=it.item.tries + 1, apart=tag)
        done = decoded.done
        self.sent_back += len(again)
        if again:
            logger.debug("%d of %d packed windows go back to the queue", len(again), len(items))
            with self._cond:
                for it in reversed(again):  # at the front, in their order: the oldest windows
                    self._queue.appendleft(it)
                self._cond.notify()
        return done

    def _encoded(self, pack: Pack[_Item]) -> EncodedWindow:
        """A window ready to decode: the caller's encode, or the pack's (its parts side by
        side, ``GAP_S`` of silence between them)."""
        first = pack.parts[0].key
        if isinstance(first.item, EncodedWindow):
            return first.item
        return encode_window(self.engine, pack.window(), first.item.language, pad_s=first.options.encoder_padding)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            for it in self._queue:
                if it.running:  # a packed part queued again: its caller waits on it
                    it.future.set_exception(LeanspeechError("the model is being unloaded"))
                else:
                    it.future.cancel()
            self._queue.clear()
            self._cond.notify_all()
        self._thread.join(timeout=30)


class Urgent:
    """A ``Batcher`` seen as a ``decode_loop.Decoder`` whose windows are urgent (live)."""

    packing = False

    def __init__(self, batcher: Batcher):
        self.batcher = batcher

    def submit(self, items: Sequence[EncodedWindow | Unencoded], options: TranscribeOptions
               ) -> list[Future[list[WindowSegment]]]:
        return self.batcher.submit(items, options, urgent=True)

    def encoding(self, options: TranscribeOptions) -> contextlib.AbstractContextManager[None]:
        return self.batcher.encoding(options)
