"""Long files in bounded memory: audio read piece by piece, planned in blocks, decoded as a
stream of windows, segments given out as each block completes.

A file is never held whole. Its pieces (``audio.AudioStream``) are gathered into a block
of ``TranscribeOptions.block_seconds`` (300 s by default, ``LEANSPEECH_STT__BLOCK_SECONDS``);
VAD runs on the block, and the block is cut before its last window: the speech chunks of the
last window (most often short) and any chunk that ends less than ``TAIL_S`` before the
block's end (it may go on in audio not yet read) are kept and start the next block, so that
windows stay full and no word is cut in two. The
windows of every block go into one decode loop (``decode_loop.iter_decoded``), so windows of
consecutive blocks share decode batches and the detected language holds for the whole file.
When a block's last window is decoded, its segments are put together (``windows.assemble``),
moved to the file's timeline and given out.

Memory is a block of samples, its windows and the loop's batch, whatever the file's length:
the pieces go once they are one array, the block's samples once it is planned (the windows
hold copies of its speech), and a window's audio once it is encoded (what waits for a
block's results, or for a decode, keeps only times). The cost: VAD runs again over what a
block keeps for the next (up to about 30 s of each block).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np

from leanspeech.audio import SAMPLE_RATE
from leanspeech.stt.decode_loop import CancelToken, Decoder, Language, iter_decoded, transcription_info
from leanspeech.stt.engine import Engine
from leanspeech.stt.options import TranscribeOptions
from leanspeech.stt.result import Segment, TranscriptionInfo, Word
from leanspeech.stt.windows import (
    WINDOW_S,
    DetectLanguage,
    Plan,
    Window,
    assemble,
    plan_chunks,
    plan_fixed,
    speech_chunks,
)

#: A speech chunk must end this long before the block's end to be planned in the block.
TAIL_S = 2.0


@dataclass(frozen=True)
class Block:
    """A stretch of the file: ``offset`` (seconds) is where it starts in the file."""

    offset: float
    plan: Plan


def blocks(pieces: Iterable[np.ndarray], options: TranscribeOptions,
           detect: DetectLanguage | None = None) -> Iterator[Block]:
    """Cut a stream of 16 kHz float32 pieces into planned blocks of about
    ``options.block_seconds`` (see the module docstring)."""
    limit = int(options.block_seconds * SAMPLE_RATE)
    held: list[np.ndarray] = []
    size = offset = 0
    for piece in pieces:
        held.append(piece)
        size += piece.shape[0]
        if size < limit:
            continue
        audio = np.concatenate(held)
        held = []  # the pieces go as soon as they are one array
        cut, plan = _cut(audio, options, detect, final=size >= 2 * limit)
        # the windows hold copies of the speech: the block's samples go before its windows are
        # decoded, all but what starts the next block (a copy, so that the rest can go)
        held, size = [audio[cut:].copy()], audio.shape[0] - cut
        one = [Block(offset / SAMPLE_RATE, plan)] if cut else []
        del audio, plan
        if one:
            yield _handed_over(one)
            offset += cut
    if size:
        audio = np.concatenate(held)
        del held
        last = [Block(offset / SAMPLE_RATE, _cut(audio, options, detect, final=True)[1])]
        del audio
        yield _handed_over(last)


def _handed_over(one: list[Block]) -> Block:
    """The block in ``one``, taken out of it. A suspended generator keeps its locals:
    ``blocks`` yields from a list that this empties, so that while a block is decoded its plan
    (the windows, with their audio) is held by the decode alone, and each window's audio goes
    once it is encoded."""
    return one.pop()


def _cut(audio: np.ndarray, options: TranscribeOptions, detect: DetectLanguage | None,
         final: bool) -> tuple[int, Plan]:
    """Where to cut ``audio`` (samples planned now) and the plan of ``audio[:cut]``."""
    size = audio.shape[0]
    window = int(WINDOW_S * SAMPLE_RATE)
    if not options.vad:
        cut = size if final else size - size % window
        return cut, plan_fixed(audio[:cut])
    chunks = speech_chunks(audio, options)
    if final:
        return size, plan_chunks(audio, chunks, options, detect)
    tail = size - int(TAIL_S * SAMPLE_RATE)
    done = [c for c in chunks if c["end"] <= tail]
    if not done:  # nothing finished: drop the silence before the first chunk (or all but the tail)
        return (chunks[0]["start"] if chunks else tail), Plan([], [], 0.0)
    last = _last_window(done)
    if last > 0:  # the chunks of the last window wait for the next block, which fills it
        cut = (done[last - 1]["end"] + done[last]["start"]) // 2
        done = done[:last]
    else:
        cut = done[-1]["end"]
    return cut, plan_chunks(audio[:cut], done, options, detect)


def _last_window(chunks: list[dict]) -> int:
    """The index of the first chunk of the last window ``windows._collect`` would make of
    ``chunks`` (by length): a block's last window is most often short, and carried over it
    shares a window with the next block's first speech (one encode fewer)."""
    limit = int(WINDOW_S * SAMPLE_RATE)
    first = length = 0
    for i, chunk in enumerate(chunks):
        size = chunk["end"] - chunk["start"]
        if length and length + size > limit:
            first, length = i, 0
        length += size
    return first


@dataclass
class _Pending:
    block: Block
    results: list = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return len(self.results) == len(self.block.plan.windows)


@dataclass(frozen=True)
class Feed:
    """How a ``SegmentStream`` hands its windows to its decoder, and whom it tells.

    ``group``: windows handed over together (the direct decoder's batch; 1 for the batcher,
    which groups callers itself); ``batch_size``: what the info reports; ``max_in_flight``:
    windows handed over and not yet decoded, at most; ``cancel``: stops the stream from
    another thread; ``duration``: the audio's, when known (for progress); ``progress(fraction)``
    and ``on_window(segments, fraction)``: called as windows complete."""

    group: int
    batch_size: int
    max_in_flight: int | None = None
    cancel: CancelToken | None = None
    duration: float | None = None
    progress: Callable[[float], None] | None = None
    on_window: Callable[[list, float], None] | None = None


class SegmentStream:
    """A file's segments, given out block by block as they are decoded; ``info`` once the
    iteration is over (the file's duration is known only then). Iterate once."""

    def __init__(self, engine: Engine, pieces: Iterable[np.ndarray], options: TranscribeOptions, decoder: Decoder,
                 feed: Feed):
        self.engine, self.options, self.decoder, self.feed = engine, options, decoder, feed
        self._pieces = pieces
        self.samples = 0
        self.speech_s = 0.0
        self._info: TranscriptionInfo | None = None
        self._count = 0

    @property
    def info(self) -> TranscriptionInfo:
        if self._info is None:
            raise RuntimeError("the transcription info is known once every segment has been read")
        return self._info

    def _counted(self) -> Iterator[np.ndarray]:
        for piece in self._pieces:
            self.samples += piece.shape[0]
            yield piece

    def __iter__(self) -> Iterator[Segment]:
        start = time.perf_counter()
        options, state = self.options, Language(self.options.language)
        queue: deque[_Pending] = deque()

        def windows() -> Iterator[Window]:
            for block in blocks(self._counted(), options, self.engine.detect_speech_language):
                todo = list(block.plan.windows)
                # what waits for the block's results needs the windows' times, not their audio
                light = [w.times_only() for w in todo]
                queue.append(_Pending(Block(block.offset, replace(block.plan, windows=light))))
                self.speech_s += block.plan.speech_s
                del block
                while todo:
                    yield todo.pop(0)  # from here the decode loop alone holds its audio

        self._count = 0
        # packed with other requests' windows where the decoder packs (the server's batcher)
        feed = self.feed
        decoded = iter_decoded(self.engine, windows(), options, self.decoder, group=feed.group,
                               max_in_flight=feed.max_in_flight, cancel=feed.cancel, state=state, pack=True)
        try:
            for result in decoded:
                while queue and queue[0].complete:  # blocks of silence before this window's
                    yield from self._give(queue.popleft())
                queue[0].results.append(result)
                self._report(queue[0], result)
                if queue[0].complete:
                    yield from self._give(queue.popleft())
            while queue:
                yield from self._give(queue.popleft())
        finally:
            decoded.close()
        self._info = transcription_info(
            self.engine, options, duration=self.samples / SAMPLE_RATE, speech_s=self.speech_s,
            language=state.language or "en", language_probability=state.probability if self.speech_s else 0.0,
            batch_size=self.feed.batch_size if self.speech_s else 0, decode_s=time.perf_counter() - start)

    def _report(self, pending: _Pending, result: list) -> None:
        window = pending.block.plan.windows[len(pending.results) - 1]
        chunks = pending.block.plan.chunks
        # where this window ends on the file's timeline: its last chunk's end, or its own end
        end = pending.block.offset + window.offset + window.duration
        if chunks:
            end = pending.block.offset + _chunk_end(chunks, window)
        if self.feed.on_window is not None:
            self.feed.on_window(result, self._fraction(end))
        if self.feed.progress is not None:
            self.feed.progress(self._fraction(end))

    def _fraction(self, at: float) -> float:
        total = self.feed.duration or 0.0
        return min(1.0, at / total) if total > 0 else 0.0

    def _give(self, pending: _Pending) -> Iterator[Segment]:
        block = pending.block
        for segment in assemble(pending.results, block.plan, self.options):
            self._count += 1
            yield shifted(segment, block.offset, self._count)


def _chunk_end(chunks: list[dict], window: Window) -> float:
    """The end (seconds, on the block's timeline) of the last speech chunk in ``window``."""
    collapsed = 0
    limit = int(round((window.offset + window.duration) * SAMPLE_RATE))
    for chunk in chunks:
        collapsed += chunk["end"] - chunk["start"]
        if collapsed >= limit:
            return chunk["end"] / SAMPLE_RATE
    return chunks[-1]["end"] / SAMPLE_RATE


def shifted(segment: Segment, offset: float, index: int) -> Segment:
    """``segment`` moved ``offset`` seconds later and numbered ``index``."""
    if offset == 0:
        return replace(segment, id=index)
    words = None if segment.words is None else tuple(
        Word(w.start + offset, w.end + offset, w.word, w.probability) for w in segment.words)
    return replace(segment, id=index, start=segment.start + offset, end=segment.end + offset, words=words,
                   seek=segment.seek + int(round(offset * 100)))
