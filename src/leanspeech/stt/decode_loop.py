"""The windowed decode loop, the one every path runs: files (the library and the CLI), the
server's requests and each decode of a live session.

For each window: ``encode`` it, detect its language (unless the options give one; see
``encode_checked``), and hand it to a ``Decoder``: ``DirectDecoder`` decodes a group of
windows in the calling thread (files), the ``Batcher`` queues them with other callers'
windows (the server). Results come back in window order; ``on_window`` sees each as soon
as it and every window before it are decoded.

The loop is synchronous and runs in one thread. Async callers run it in a worker thread
and cancel it with a ``CancelToken``: the windows it queued are dropped from their batches
and the loop stops before it encodes another window.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass, replace
from typing import Protocol, TypeVar

from leanspeech.audio import SAMPLE_RATE
from leanspeech.stt.engine import EncodedWindow, Engine
from leanspeech.stt.options import TranscribeOptions
from leanspeech.stt.packing import Decoded as PacksDecoded
from leanspeech.stt.packing import Pack, Unencoded, decode_packs, packable
from leanspeech.stt.result import Timings, TranscriptionInfo
from leanspeech.stt.segments import WindowSegment
from leanspeech.stt.windows import Window, chunk_spans, heard_with, split_by_language
from leanspeech.tuning.malloc import trim_heap

WindowResult = list[WindowSegment]
K = TypeVar("K")


class Decoder(Protocol):
    #: takes ``Unencoded`` windows and packs them with other callers' (the server's batcher)
    packing: bool

    def submit(self, items: Sequence[EncodedWindow | Unencoded], options: TranscribeOptions
               ) -> list[Future[WindowResult]]:
        """Decode ``items`` (``Unencoded`` ones only where ``packing``); one future per item,
        in order."""
        ...

    def encoding(self, options: TranscribeOptions) -> contextlib.AbstractContextManager[None]:
        """Held while the loop encodes windows and submits them (the batcher waits for them)."""
        ...


class DirectDecoder:
    """Decodes in the calling thread (files): the futures it returns are already done.

    ``trim``: hand the heap's free pages back to the OS (``tuning.malloc.trim_heap``) before each
    group's encodes and before its decode, the two steps that make a file's peak: glibc reuses
    freed space only for what fits in it, so without the trim the free space stays resident and
    grows with the file (docs, "Long files and batching"). The server trims on its own clock."""

    packing = False

    def __init__(self, engine: Engine, *, trim: bool = False):
        self.engine = engine
        self.trim = trim

    def encoding(self, options: TranscribeOptions) -> contextlib.AbstractContextManager[None]:
        if self.trim:
            trim_heap()
        return contextlib.nullcontext()

    def submit(self, items: Sequence[EncodedWindow | Unencoded], options: TranscribeOptions
               ) -> list[Future[WindowResult]]:
        if self.trim:
            trim_heap()
        futures: list[Future[WindowResult]] = []
        encoded = [it for it in items if isinstance(it, EncodedWindow)]
        if len(encoded) < len(items):
            raise ValueError("the direct decoder does not pack: submit encoded windows")
        for result in self.engine.decode(encoded, options):
            future: Future[WindowResult] = Future()
            future.set_result(result)
            futures.append(future)
        return futures

    def decode_packs(self, packs: Sequence[Pack[K]], encoded: Sequence[EncodedWindow],
                     options: TranscribeOptions) -> PacksDecoded[K]:
        """Packed windows (``packing.decode_packs``), in this thread."""
        if self.trim:
            trim_heap()
        return decode_packs(self.engine, packs, encoded, options)


class CancelToken:
    """Cancels a running loop from another thread: pending windows are dropped."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._futures: list[Future] = []

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def track(self, futures: Sequence[Future]) -> None:
        with self._lock:
            self._futures.extend(futures)
            if self._event.is_set():
                for f in futures:
                    f.cancel()

    def cancel(self) -> None:
        with self._lock:
            self._event.set()
            for f in self._futures:
                f.cancel()


@dataclass(frozen=True)
class Decoded:
    per_window: list[WindowResult]
    language: str
    language_probability: float


def encode_window(engine: Engine, window: Window, language: str | None, span_s: float | None = None,
                  pad_s: float | None = None) -> EncodedWindow:
    """Encode one window and settle its language (detected when ``language`` is None)."""
    encoded = engine.encode(window, span_s, pad_s)
    probability = window.language_probability if window.language == language else 1.0
    if language is None:
        language, probability = engine.detect_language(encoded)
    # the decode needs the window's times, not its samples: a window's audio goes once it is
    # encoded, not when its batch is decoded (a long file's peak: docs, "Long files and batching")
    return EncodedWindow(window.times_only(), encoded, language, probability)


#: Most of a window's end heard again by ``encode_checked``, seconds
TAIL_S = 8.0
#: A window's end heard as another language with this probability or more is checked chunk by chunk
SURE_SWITCH = 0.5


def checks_language(engine: Engine, options: TranscribeOptions) -> bool:
    """No language given, a multilingual CTranslate2 model, and no per-chunk plan
    (``multilingual``): each window's chunks are checked (``encode_checked``)."""
    return (options.language is None and not options.multilingual and getattr(engine, "multilingual", False)
            and getattr(engine, "backend", "") == "ctranslate2")


def encode_checked(engine: Engine, window: Window, state: Language, pad_s: float | None) -> list[EncodedWindow]:
    """Encode ``window`` in the language heard so far (the first window's detected on its
    encoding) after checking its end: its last speech (at least 4 s, at most ``TAIL_S``) is
    heard on its own, a short encode. Where the end is another language, each speech chunk's
    language is detected (as ``multilingual`` plans do) and the window is cut where it
    changes, each part encoded and decoded in its own language; the language heard so far
    becomes the end's.

    Why the end: Whisper tells a window's language from its start. A window of English then
    German was English with 0.96, and its German half was dropped; keeping the first window's
    language for the file, a later German window was translated. Told on slices of the
    window's own encoder output instead (no second encode), the last chunks of English
    windows came back Thai and Finnish: Whisper's language token expects the audio's start.
    What the check costs on English-only audio: docs, "Languages"."""
    item = encode_window(engine, window, state.current or state.language, pad_s=pad_s)
    spans = chunk_spans(window)
    if not spans or not hasattr(engine, "detect_speech_language"):
        return [item]
    last = heard_with(spans[::-1], reverse=True)[0][0]
    tail = max(last, window.audio.shape[0] - int(TAIL_S * SAMPLE_RATE), 0)
    language, probability = engine.detect_speech_language(window.audio[tail:], min_s=TAIL_S)
    if language == item.language or probability < SURE_SWITCH:
        return [item]
    languages = [engine.detect_speech_language(window.audio[a:b]) for a, b in heard_with(spans)]
    state.current = languages[-1][0]
    parts = split_by_language(window, languages)
    if len(parts) == 1:
        return [encode_window(engine, parts[0], parts[0].language, pad_s=pad_s) if parts[0].language != item.language
                else item]
    return [encode_window(engine, part, part.language, pad_s=pad_s) for part in parts]


@dataclass
class Language:
    """The language a loop decodes in: the options' (or None, to detect it on the first
    window), and how sure the detection was; ``current``: the language heard last, where
    ``encode_checked`` found a switch. One loop updates it as it goes."""

    language: str | None
    probability: float = 1.0
    current: str | None = None


def decode_windows(
    engine: Engine,
    windows: Sequence[Window],
    options: TranscribeOptions,
    decoder: Decoder,
    *,
    group: int = 1,
    max_in_flight: int | None = None,
    on_window: Callable[[int, WindowResult], None] | None = None,
    cancel: CancelToken | None = None,
) -> Decoded:
    """Encode and decode ``windows`` in order; see the module docstring and ``iter_decoded``."""
    state = Language(options.language)
    results: list[WindowResult] = []
    for result in iter_decoded(engine, windows, options, decoder, group=group, max_in_flight=max_in_flight,
                               cancel=cancel, state=state):
        if on_window is not None:
            on_window(len(results), result)
        results.append(result)
    return Decoded(results, state.language or "en", state.probability if windows else 0.0)


def iter_decoded(
    engine: Engine,
    windows: Iterable[Window],
    options: TranscribeOptions,
    decoder: Decoder,
    *,
    group: int = 1,
    max_in_flight: int | None = None,
    cancel: CancelToken | None = None,
    state: Language | None = None,
    pack: bool = False,
) -> Generator[WindowResult, None, None]:
    """Each window's result, in window order, as soon as it and every window before it are
    decoded. ``windows`` may be lazy (a long file's, read as they are needed): at most
    ``group`` are taken before they are handed to the decoder together (the direct decoder's
    batch). ``max_in_flight``: most windows handed over and not yet decoded (bounds the
    encoder outputs a long request holds while it waits for the batcher). ``state``: the
    language, read and updated (detected on the first window when it is None). ``pack``:
    hand the windows over unencoded where the decoder packs them (``Decoder.packing``) and
    ``options`` allow it (``packing.packable``: a known language). Closing the iterator
    early cancels the windows still queued.
    """
    state = state if state is not None else Language(options.language)
    # per window: its parts' decodes (one part unless ``encode_checked`` cut it) and languages
    pending: deque[list[tuple[Future[WindowResult], str]]] = deque()
    source = iter(windows)
    size = max(1, group)
    # packable: the options' language, or the only one the model knows
    unencoded = (options.language or "en") if pack and decoder.packing and packable(options, engine) else None
    checked = checks_language(engine, options)

    def ready(block: bool) -> Iterator[WindowResult]:
        while pending and (block or all(future.done() for future, _ in pending[0])):
            parts = pending.popleft()  # CancelledError below if cancelled
            yield [replace(seg, language=language) for future, language in parts for seg in future.result()]

    try:
        while True:
            items: list[EncodedWindow | Unencoded] = []
            sizes: list[int] = []  # items per window
            # held from the first encode until the windows are queued (not while a lazy source
            # reads and plans the next block: that is no call into the model)
            with contextlib.ExitStack() as encoding:
                for window in itertools.islice(source, size):
                    if cancel is not None and cancel.cancelled:
                        raise CancelledError()
                    if unencoded is not None:  # the decoder encodes it, packed with others
                        if state.language is None:
                            state.language, state.probability = unencoded, 1.0
                        items.append(Unencoded(window, unencoded))
                        sizes.append(1)
                        continue
                    if not items:
                        encoding.enter_context(decoder.encoding(options))
                    if checked:  # no language given: each window's checked (encode_checked)
                        encoded = encode_checked(engine, window, state, options.encoder_padding)
                    else:  # multilingual: each window's own language (planned, or detected here)
                        encoded = [encode_window(engine, window, window.language or (
                            None if options.multilingual else state.language), pad_s=options.encoder_padding)]
                    if state.language is None:
                        state.language, state.probability = encoded[0].language, encoded[0].language_probability
                    items.extend(encoded)
                    sizes.append(len(encoded))
                if not items:
                    break
                futures = decoder.submit(items, options)
            if cancel is not None:
                cancel.track(futures)
            decodes = list(zip(futures, (it.language for it in items), strict=True))
            for size_of in sizes:
                pending.append(decodes[:size_of])
                decodes = decodes[size_of:]
            yield from ready(block=False)
            while max_in_flight is not None and len(pending) > max_in_flight:
                for future, _ in pending[0]:
                    future.result()
                yield from ready(block=False)
        yield from ready(block=True)
    finally:
        for parts in pending:
            for future, _ in parts:
                future.cancel()


def transcription_info(engine: Engine, options: TranscribeOptions, *, duration: float, speech_s: float,
                       language: str, language_probability: float, batch_size: int, decode_s: float,
                       peak_rss: int = 0) -> TranscriptionInfo:
    """What every transcription reports about itself (the only place it is built)."""
    res = engine.resolution
    return TranscriptionInfo(
        duration=duration, duration_after_vad=speech_s, language=language,
        language_probability=language_probability, task=options.task, model=engine.name, device=res.device_id,
        precision=res.compute_type, requested_precision=res.requested_precision, precision_reason=res.reason,
        batch_size=batch_size, timings=Timings(engine.load_s, decode_s, duration), peak_rss=peak_rss,
    )
