"""Many files through one engine, their windows decoded together.

A short file is one window; decoded alone, it leaves the batch that the decoder could fill
empty. ``transcribe_many`` keeps files open until it has a group of ``group`` windows (from
as many files as that takes), encodes each window (every file settles its own language on
its first window, as ``decode_windows`` does), decodes the group in one call, and yields each
file's transcription as soon as all of its windows are decoded, in completion order.

Memory stays bounded: at most ``group`` encoded windows, and the decoded audio of the files
those windows belong to (a file is read when the group needs its windows, and let go when
it is done). A file that cannot be read or planned is yielded as its exception; the others
go on.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import TypeVar

import numpy as np

from ..audio import SAMPLE_RATE
from .decode_loop import DirectDecoder, WindowResult, encode_window, transcription_info
from .engine import EncodedWindow, Engine
from .options import TranscribeOptions
from .result import Transcription
from .windows import Plan, assemble, plan

T = TypeVar("T")


@dataclass
class _File:
    index: int
    duration: float
    plan: Plan
    started: float
    results: dict[int, WindowResult] = field(default_factory=dict)
    next_window: int = 0
    language: str | None = None
    probability: float = 1.0

    @property
    def done(self) -> bool:
        return len(self.results) == len(self.plan.windows)


def transcribe_many(
    engine: Engine,
    inputs: Iterable[T],
    options: TranscribeOptions,
    *,
    group: int,
    read: Callable[[T], np.ndarray],
) -> Iterator[tuple[int, Transcription | Exception]]:
    """Yield ``(index, transcription or exception)`` for each input, as each completes.
    ``read`` turns an input into 16 kHz mono float32 audio; ``group``: windows per decode."""
    decoder = DirectDecoder(engine)
    pending = iter(enumerate(inputs))
    open_files: deque[_File] = deque()
    exhausted = False

    def finish(f: _File) -> tuple[int, Transcription]:
        per_window = [f.results[i] for i in range(len(f.plan.windows))]
        segments = assemble(per_window, f.plan, options)
        info = transcription_info(engine, options, duration=f.duration, speech_s=f.plan.speech_s,
                                  language=f.language or options.language or "en",
                                  language_probability=f.probability if f.plan.windows else 0.0,
                                  batch_size=group, decode_s=time.perf_counter() - f.started)
        return f.index, Transcription(tuple(segments), info)

    while True:
        # open files until the group can be filled (or there are no more)
        waiting = sum(len(f.plan.windows) - f.next_window for f in open_files)
        while waiting < group and not exhausted:
            try:
                index, source = next(pending)
            except StopIteration:
                exhausted = True
                break
            started = time.perf_counter()
            try:
                audio = read(source)
                p = plan(audio, options, engine.detect_speech_language)
            except Exception as exc:  # this file only
                yield index, exc
                continue
            f = _File(index, audio.shape[0] / SAMPLE_RATE, p, started, language=options.language)
            del audio  # the plan's windows hold what is needed
            if not p.windows:  # silence: nothing to decode
                yield finish(f)
                continue
            open_files.append(f)
            waiting += len(p.windows)
        if not open_files:
            return
        chosen: list[tuple[_File, int]] = []
        for f in open_files:
            while f.next_window < len(f.plan.windows) and len(chosen) < group:
                chosen.append((f, f.next_window))
                f.next_window += 1
            if len(chosen) >= group:
                break
        # one encoder length for the group (where the engine shortens it), so one decode call
        span = max(f.plan.windows[i].duration for f, i in chosen)
        items: list[tuple[_File, int, EncodedWindow]] = []
        for f, i in chosen:
            window = f.plan.windows[i]
            language = window.language or (None if options.multilingual else f.language)
            item = encode_window(engine, window, language, span)
            if f.language is None:
                f.language, f.probability = item.language, item.language_probability
            items.append((f, i, item))
        futures = decoder.submit([item for _, _, item in items], options)
        for (f, i, item), future in zip(items, futures, strict=True):
            f.results[i] = [replace(seg, language=item.language) for seg in future.result()]
        for f in [f for f in open_files if f.done]:
            open_files.remove(f)
            yield finish(f)
