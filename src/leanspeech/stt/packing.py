"""Short windows of different files (or requests) packed into one 30-second window, and its
words given back to each.

On a CPU the encoder's cost is its 30-second input, whatever the speech in it: twenty short
clips cost twenty encodes though their speech would fill a few windows. Packing puts short
windows side by side (``GAP_S`` of silence between them) into one window of at most 30 s, so
that Whisper hears them as it hears any long file, one pause after another, and the encoder
runs once for all of them. The decode is aligned (word timestamps), and each word goes back
to the part whose audio it was heard in (``decode_packs``, for files and the server alike).

Nothing is given back on a guess. A part that got no words, the parts on both sides of a
word that spans a whole gap and a part whose text alone looks like a decoding loop come back
as failed; what happens to them is the caller's policy: decoded alone at once (files,
``many_files``), or packed again first (the server's batcher). Packing needs a known
language (one prompt for the whole window) and an engine with ``decode_parts``
(CTranslate2), so ``packable`` says when it applies. The gap and what packing gains: docs,
benchmark "Short files packed into shared 30 s windows"."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

import numpy as np

from leanspeech.audio import SAMPLE_RATE
from leanspeech.stt.engine import EncodedWindow, Engine
from leanspeech.stt.options import TranscribeOptions
from leanspeech.stt.segments import WindowSegment
from leanspeech.stt.windows import WINDOW_S, Window

K = TypeVar("K")

#: Silence between packed parts: a pause Whisper ends a sentence at, and room for the
#: aligner to put a word's edges without reaching the next part.
GAP_S = 1.0


def packable(options: TranscribeOptions, engine: object) -> bool:
    """Whether windows may be packed under ``options`` on ``engine``: the engine can decode
    packed parts (``decode_parts``: CTranslate2) and one language serves every part (given,
    or the model knows only one). A packed window is always aligned (its words tell the parts
    apart), even when ``without_timestamps`` asks for none: each part then comes back as
    unpacked decoding gives it, one segment without words."""
    language_known = options.language is not None or not getattr(engine, "multilingual", True)
    return hasattr(engine, "decode_parts") and language_known and not options.multilingual


@dataclass(frozen=True)
class Part(Generic[K]):
    key: K
    window: Window
    start: float  # where the part begins on the packed window's timeline

    @property
    def end(self) -> float:
        return self.start + self.window.duration


#: How many packed windows a part may be tried in before it is decoded alone.
PACKED_TRIES = 2


@dataclass(frozen=True)
class Unencoded:
    """A window handed to the server's batcher before its encode, so that the batcher may pack
    it with other requests' short windows (``Batcher(pack=True)``). ``language``: the one it
    is decoded in (packing needs it known). A part that packing could not give back is tried
    again: ``tries`` counts its packed windows so far, ``apart`` names the one it failed in (the
    parts of that window are never packed together again); after ``PACKED_TRIES`` it goes
    ``alone``, as without packing."""

    window: Window
    language: str
    tries: int = 0
    apart: int | None = None

    @property
    def alone(self) -> bool:
        return self.tries >= PACKED_TRIES


@dataclass
class Pack(Generic[K]):
    parts: list[Part[K]] = field(default_factory=list)
    #: holds one window that must be decoded alone (nothing is packed beside it)
    sealed: bool = False
    #: the ``apart`` tags of its parts (``Packer.add``)
    tags: set[object] = field(default_factory=set)

    @property
    def duration(self) -> float:
        return self.parts[-1].end if self.parts else 0.0

    def fits(self, window: Window, limit: float, apart: object = None) -> bool:
        if not self.parts:
            return True
        return (not self.sealed and (apart is None or apart not in self.tags)
                and self.duration + GAP_S + window.duration <= limit)

    def add(self, key: K, window: Window, apart: object = None) -> None:
        start = self.duration + GAP_S if self.parts else 0.0
        self.parts.append(Part(key, window, start))
        if apart is not None:
            self.tags.add(apart)

    def window(self) -> Window:
        """One part: its own window (nothing changes). Several: their audio, gaps between."""
        if len(self.parts) == 1:
            return self.parts[0].window
        gap = np.zeros(int(GAP_S * SAMPLE_RATE), np.float32)
        pieces: list[np.ndarray] = []
        for part in self.parts:
            if pieces:
                pieces.append(gap)
            pieces.append(part.window.audio)
        return Window.of(np.concatenate(pieces))


class Packer(Generic[K]):
    """First fit, in arrival order, into at most ``max_packs`` packs of at most ``limit`` s."""

    def __init__(self, max_packs: int, limit: float = WINDOW_S):
        self.max_packs, self.limit = max_packs, limit
        self.packs: list[Pack[K]] = []

    def add(self, key: K, window: Window, *, alone: bool = False, apart: object = None) -> bool:
        """Place ``window`` (``alone``: in a pack of its own that takes nothing more; ``apart``:
        never beside another window with the same tag); False (and nothing placed) when every
        pack is full."""
        for p in () if alone else self.packs:
            if p.fits(window, self.limit, apart):
                p.add(key, window, apart)
                return True
        if len(self.packs) >= self.max_packs:
            return False
        self.packs.append(Pack(sealed=alone))
        self.packs[-1].add(key, window, apart)
        return True


def assign(pieces: Sequence[tuple[float, float, list[int]]], spans: Sequence[tuple[float, float]]
           ) -> list[list[int] | None]:
    """Pieces of decoded text (start, end, tokens) on a packed window's timeline -> each
    part's tokens (``spans``: the parts' (start, end)), every piece to the part its middle
    falls in (or the half-gap around it). None for a part with no text, and for both parts
    on either side of a gap that a piece spans whole (their texts ran together)."""
    tokens: list[list[int]] = [[] for _ in spans]
    doubtful: set[int] = set()
    for start, end, text in pieces:
        j = _nearest(spans, (start + end) / 2)
        if j > 0 and start < spans[j - 1][1] and end > spans[j][0]:
            doubtful.update({j - 1, j})
        if j + 1 < len(spans) and start < spans[j][1] and end > spans[j + 1][0]:
            doubtful.update({j, j + 1})
        tokens[j].extend(text)
    return [None if j in doubtful or not t else t for j, t in enumerate(tokens)]


def unpack(pack: Pack[K], results: Sequence[WindowSegment | None]) -> list[list[WindowSegment] | None]:
    """Each part's segment from ``CT2Engine.decode_parts`` (on the part's timeline, from 0)
    -> on the part window's own timeline, as if it had been decoded alone; None stays None
    (decode that part again alone)."""
    out: list[list[WindowSegment] | None] = []
    for part, seg in zip(pack.parts, results, strict=True):
        if seg is None:
            out.append(None)
            continue
        shift, length = part.window.offset, part.window.duration

        def moved(t: float, shift: float = shift, length: float = length) -> float:
            return shift + min(max(t, 0.0), length)  # the aligner may place a last word past the audio

        words = None if seg.words is None else tuple(
            replace(w, start=moved(w.start), end=moved(w.end)) for w in seg.words)
        out.append([replace(seg, start=moved(seg.start), end=moved(seg.end), seek=round(shift * 100), words=words)])
    return out


@dataclass
class Decoded(Generic[K]):
    """What one decode of packs gave: each part given back, with its segments (in the
    window's language), and the parts that could not be given back, a list per packed window.
    What happens to those is the caller's policy: decoded alone now (files), or packed again
    beside other windows (the server's batcher)."""

    done: list[tuple[K, list[WindowSegment]]] = field(default_factory=list)
    failed: list[list[K]] = field(default_factory=list)


def decode_packs(engine: Engine, packs: Sequence[Pack[K]], encoded: Sequence[EncodedWindow],
                 options: TranscribeOptions) -> Decoded[K]:
    """Decode ``packs`` (``encoded``: each pack's window, encoded) in one engine call: packed
    windows through ``decode_parts`` and their parts given back (``unpack``), a window of one
    part as ``decode`` does. The one place packed windows are decoded, for files and the server."""
    layout = [spans(pack) if len(pack.parts) > 1 else None for pack in packs]
    if any(layout):
        results = engine.decode_parts(encoded, layout, options)  # type: ignore[attr-defined]
    else:
        results = engine.decode(encoded, options)
    out: Decoded[K] = Decoded()
    for pack, item, result in zip(packs, encoded, results, strict=True):
        if len(pack.parts) == 1:
            out.done.append((pack.parts[0].key, [replace(seg, language=item.language) for seg in result]))
            continue
        failed = []
        for part, segments in zip(pack.parts, unpack(pack, result), strict=True):
            if segments is None:
                failed.append(part.key)
            else:
                out.done.append((part.key, [replace(seg, language=item.language) for seg in segments]))
        if failed:
            out.failed.append(failed)
    return out


def spans(pack: Pack) -> list[tuple[float, float]]:
    return [(p.start, p.end) for p in pack.parts]


def _nearest(spans: Sequence[tuple[float, float]], t: float) -> int:
    """The part whose audio (or half of the gap around it) holds time ``t``."""
    for j, (_, end) in enumerate(spans):
        if t < end + GAP_S / 2:
            return j
    return len(spans) - 1
