"""Speakers of a live stream, labelled as its segments complete (online clustering).

Each completed segment's audio gives one voice print (CAM++, ``diarizer.voice_print``). It
joins the speaker whose running mean it is most like, if at least ``threshold`` alike; else
it starts a new speaker (up to ``max_speakers``; past that, the nearest). Known speakers
(name and reference clip) are speakers from the start, under their names.

A label may settle: when later speech pulls two speakers' means within ``FOLD_ABOVE`` more
than ``threshold`` of each other (one person first heard as two), the later one is folded
into the earlier, and every
segment is reported under the earlier label from then on, the completed segments a client
is sent again included. Memory: the last ``keep_s`` seconds of audio, and one 192-float mean
per speaker.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import numpy as np

from leanspeech.audio import SAMPLE_RATE

MIN_SEGMENT_S = 1.0  # shorter segments carry too little voice: they take the previous label
#: Two speakers' means fold into one at ``threshold`` plus this: means are smoother than one
#: segment's print (on the tests' four voices, different speakers' means reached 0.55 cosine
#: and one speaker's segments 0.63 to its others)
FOLD_ABOVE = 0.15
KEEP_LABELS = 1000  # segments whose labels are remembered (a client resends its last few)


class Timed(Protocol):
    """A live segment as far as labelling goes (``streaming.session.LiveSegment``)."""

    @property
    def start(self) -> float: ...
    @property
    def end(self) -> float: ...
    @property
    def completed(self) -> bool: ...


class OnlineSpeakers:
    """Running speaker means; ``add(print)`` gives the speaker id, ``label(id)`` its label."""

    def __init__(self, threshold: float = 0.5, max_speakers: int = 10, known: dict[str, np.ndarray] | None = None,
                 prefix: str = "SPEAKER_"):
        self.threshold = threshold
        self.max_speakers = max(max_speakers, len(known or {}))
        self.prefix = prefix
        self._means: list[np.ndarray] = []
        self._counts: list[int] = []
        self._names: list[str] = []
        self._into: dict[int, int] = {}  # folded speaker -> the one it became
        for name, vec in (known or {}).items():
            self._new(vec, name)

    def _new(self, vec: np.ndarray, name: str | None = None) -> int:
        self._means.append(vec.astype(np.float32))
        self._counts.append(1)
        unnamed = sum(1 for n in self._names if n.startswith(self.prefix))
        self._names.append(name or f"{self.prefix}{unnamed:02d}")
        return len(self._means) - 1

    def _live(self) -> list[int]:
        return [i for i in range(len(self._means)) if i not in self._into]

    def resolve(self, speaker: int) -> int:
        while speaker in self._into:
            speaker = self._into[speaker]
        return speaker

    def label(self, speaker: int) -> str:
        return self._names[self.resolve(speaker)]

    @property
    def labels(self) -> list[str]:
        return [self._names[i] for i in self._live()]

    def add(self, vec: np.ndarray) -> int:
        live = self._live()
        if live:
            sims = [float(vec @ self._unit(i)) for i in live]
            best = int(np.argmax(sims))
            if sims[best] >= self.threshold or len(live) >= self.max_speakers:
                speaker = live[best]
                self._means[speaker] = self._means[speaker] + (vec - self._means[speaker]) / (self._counts[speaker] + 1)
                self._counts[speaker] += 1
                self._fold(speaker)
                return self.resolve(speaker)
        return self._new(vec)

    def _known(self, i: int) -> bool:
        return not self._names[i].startswith(self.prefix)

    def _unit(self, i: int) -> np.ndarray:
        return self._means[i] / max(float(np.linalg.norm(self._means[i])), 1e-12)

    def _fold(self, moved: int) -> None:
        """``moved``'s mean changed: fold it into an earlier speaker it now matches, or a later
        one into it (the earlier label stays)."""
        for other in self._live():
            if other == moved or float(self._unit(moved) @ self._unit(other)) < self.threshold + FOLD_ABOVE:
                continue
            keep, gone = min(moved, other), max(moved, other)
            if self._known(keep) and self._known(gone):
                continue  # two known speakers stay two
            if self._known(gone):
                keep, gone = gone, keep  # a known speaker's name outlives a number
            total = self._counts[keep] + self._counts[gone]
            weighted = self._means[keep] * self._counts[keep] + self._means[gone] * self._counts[gone]
            self._means[keep] = weighted / total
            self._counts[keep] = total
            self._into[gone] = keep
            return


class LiveSpeakers:
    """The live side: the stream's recent audio, and the speaker of each completed segment
    (``labels``). ``embed`` gives a clip's voice print (through the model manager)."""

    def __init__(self, embed: Callable[[np.ndarray], Awaitable[np.ndarray]], clusters: OnlineSpeakers,
                 keep_s: float = 60.0):
        self.embed = embed
        self.clusters = clusters
        self.keep = int(keep_s * SAMPLE_RATE)
        self._audio = np.zeros(0, np.float32)
        self._start = 0  # stream sample of _audio[0]
        self._of: OrderedDict[tuple[float, float], int] = OrderedDict()  # segment -> speaker
        self._last: int | None = None

    def feed(self, samples: np.ndarray) -> None:
        self._audio = np.concatenate([self._audio, samples])
        extra = self._audio.shape[0] - self.keep
        if extra > 0:
            self._audio = self._audio[extra:].copy()
            self._start += extra

    def _clip(self, start: float, end: float) -> np.ndarray:
        a = max(0, int(start * SAMPLE_RATE) - self._start)
        b = max(0, int(end * SAMPLE_RATE) - self._start)
        return self._audio[a:b]

    async def labels(self, segments: Sequence[Timed]) -> list[str | None]:
        """Each segment's speaker label; None for the one in progress (not yet labelled)."""
        from leanspeech.errors import InvalidOptionError

        out: list[str | None] = []
        for seg in segments:
            key = (round(seg.start, 3), round(seg.end, 3))
            if not seg.completed:
                out.append(None)
                continue
            if key not in self._of:
                clip = self._clip(seg.start, seg.end)
                speaker = self._last
                if clip.shape[0] >= MIN_SEGMENT_S * SAMPLE_RATE or speaker is None:
                    try:
                        speaker = self.clusters.add(await self.embed(clip))
                    except InvalidOptionError:  # no speech in it (or no audio left): as the last
                        pass
                self._of[key] = speaker if speaker is not None else -1
                self._last = speaker
                while len(self._of) > KEEP_LABELS:
                    self._of.popitem(last=False)
            speaker = self._of[key]
            out.append(self.clusters.label(speaker) if speaker >= 0 else None)
        return out
