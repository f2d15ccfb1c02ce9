"""Many files through one engine, their windows decoded together.

A short file is one window; decoded alone, it leaves the batch empty and, on a CPU, pays for
a whole 30-second encode. ``transcribe_many`` keeps files open until it has a group:
``group`` windows (from as many files as that takes), or with packing (``options.pack_files``,
where ``packing.packable``) windows enough to fill ``group`` packed windows. It encodes each
(every file settles its own language on its first window), decodes the group in one call
(``DirectDecoder.decode_packs``), decodes what packing could not give back alone, and yields
each file's transcription as soon as all of its windows are decoded, in completion order.

Memory stays bounded: at most ``group`` encoded windows, and the decoded audio of the files
those windows belong to. A file that cannot be read or planned is yielded as its exception;
the others go on."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import TypeVar

import numpy as np

from leanspeech.audio import SAMPLE_RATE
from leanspeech.stt.decode_loop import DirectDecoder, WindowResult, encode_window, transcription_info
from leanspeech.stt.engine import EncodedWindow, Engine
from leanspeech.stt.options import TranscribeOptions
from leanspeech.stt.packing import GAP_S, Packer, packable
from leanspeech.stt.result import Transcription
from leanspeech.stt.windows import WINDOW_S, Plan, assemble, plan

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
    decoder: DirectDecoder | None = None,
) -> Iterator[tuple[int, Transcription | Exception]]:
    """Yield ``(index, transcription or exception)`` for each input, as each completes.
    ``read`` turns an input into 16 kHz mono float32 audio; ``group``: windows per decode;
    ``decoder``: the one to decode with (a ``DirectDecoder`` of ``engine`` unless given)."""
    decoder = decoder or DirectDecoder(engine)
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

    packing = options.pack_files and packable(options, engine)
    while True:
        # open files until the group can be filled (or there are no more): ``group`` windows,
        # or when packing, windows enough to fill ``group`` packed windows of 30 s
        while not exhausted and not _enough(open_files, group, packing):
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
        if not open_files:
            return
        packer: Packer[tuple[_File, int]] = Packer(group, WINDOW_S if packing else 0.0)
        for f in open_files:
            while f.next_window < len(f.plan.windows) and packer.add((f, f.next_window), f.plan.windows[f.next_window]):
                f.next_window += 1
            if f.next_window < len(f.plan.windows):
                break
        packs = packer.packs
        # one encoder length for the group (where the engine shortens it), so one decode call
        span = max(pk.duration for pk in packs)
        items: list[EncodedWindow] = []
        for pk in packs:
            f, i = pk.parts[0].key
            window = pk.window()
            language = window.language or (None if options.multilingual else f.language)
            item = encode_window(engine, window, language, span, options.encoder_padding)
            for part in pk.parts:
                if part.key[0].language is None:
                    part.key[0].language, part.key[0].probability = item.language, item.language_probability
            items.append(item)
        decoded = decoder.decode_packs(packs, items, options)
        for (f, i), segments in decoded.done:
            f.results[i] = segments
        failed = [key for window in decoded.failed for key in window]
        if failed:  # files' policy: what packing could not give back is decoded alone now
            alone = [encode_window(engine, f.plan.windows[i], f.language, None, options.encoder_padding)
                     for f, i in failed]
            for (f, i), item, future in zip(failed, alone, decoder.submit(alone, options), strict=True):
                f.results[i] = [replace(seg, language=item.language) for seg in future.result()]
        for f in [f for f in open_files if f.done]:
            open_files.remove(f)
            yield finish(f)


def _enough(open_files: deque[_File], group: int, packing: bool) -> bool:
    waiting = [w for f in open_files for w in f.plan.windows[f.next_window:]]
    if packing:
        return sum(w.duration + GAP_S for w in waiting) >= group * WINDOW_S
    return len(waiting) >= group
