"""Conversations with an exact speaker reference by construction, for tests and the
diarization benchmark: turns of different voices (the JFK recording cut at its pauses, the
bundled Piper voice, espeak-ng voices) at different loudness, with pauses between turns.

Each turn's reference span is its clip's speech (leading and trailing silence trimmed), so
the reference says who spoke when to the sample. Sentences are made up from word lists,
so that a long conversation repeats no identical segment (looped copies have identical
embeddings and would flatter the clustering).
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from leanspeech.audio import SAMPLE_RATE, decode_audio, write_wav
from leanspeech.diarize.diarizer import Turn
from leanspeech.errors import OptionalDependencyError

#: espeak-ng voices that sound like different people: (voice+variant, pitch 0-99, words/min)
ESPEAK = {"espeak-f": ("en-us+f3", 65, 160), "espeak-m": ("en-gb-x-rp+m3", 30, 150),
          "espeak-k": ("en-us+klatt4", 50, 170), "espeak-s": ("en-gb-scotland+m7", 40, 140)}
#: JFK's inaugural line, cut at its pauses (seconds within jfk.flac)
JFK_PHRASES = ((0.3, 3.0), (3.3, 4.4), (4.9, 7.0), (7.6, 10.9))

_SUBJECTS = ("The river", "My neighbour", "The old train", "A small boat", "The teacher", "Our garden",
             "The red kite", "The market", "A quiet street", "The library", "The baker", "The new bridge",
             "A tall tree", "The village band", "The museum", "A grey cat", "The harbour", "The farmer")
_VERBS = ("opens", "waits", "turns", "moves", "shines", "rests", "leans", "sings", "grows", "closes", "wakes",
          "travels", "changes", "listens", "returns", "starts")
_PLACES = ("before breakfast", "near the station", "after the rain", "on Sunday morning", "by the lake",
           "under the clock tower", "at the end of the road", "in the early evening", "behind the school",
           "along the coast", "beside the hospital", "through the winter", "across the valley", "every Tuesday")
_TAILS = ("and nobody seems to mind.", "while the children play outside.", "as the lights come on.",
          "before the shops are open.", "and then it is quiet again.", "when the wind comes from the west.",
          "so we always bring an umbrella.", "and the whole town can hear it.", "for about an hour or so.",
          "which surprises most visitors.")


def sentences(count: int, seed: int) -> list[str]:
    """``count`` different made-up sentences (seeded)."""
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < count:
        s = f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_PLACES)} {rng.choice(_TAILS)}"
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def espeak_voice(text: str, speaker: str) -> np.ndarray:
    if shutil.which("espeak-ng") is None:
        raise OptionalDependencyError("espeak-ng", "test", "synthesized conversation voices")
    voice, pitch, speed = ESPEAK[speaker]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "say.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed), "-w", str(out), text],
                       check=True, capture_output=True)
        return decode_audio(out)


def trim(audio: np.ndarray, floor_db: float = -45.0) -> np.ndarray:
    """``audio`` without its leading and trailing silence (10 ms frames under ``floor_db``
    below the clip's peak)."""
    hop = SAMPLE_RATE // 100
    frames = audio[: audio.shape[0] // hop * hop].reshape(-1, hop)
    level = np.sqrt((frames ** 2).mean(axis=1) + 1e-12)
    loud = np.flatnonzero(20 * np.log10(level / max(float(level.max()), 1e-9)) > floor_db)
    if loud.size == 0:
        return audio[:0]
    return audio[loud[0] * hop : (loud[-1] + 1) * hop]


@dataclass
class Conversation:
    path: Path
    turns: list[Turn]  # the reference: who spoke when
    texts: list[str]  # what each turn says (JFK's: "")
    duration: float

    @property
    def speakers(self) -> list[str]:
        return list(dict.fromkeys(t.speaker for t in self.turns))


def speak(speaker: str, text: str, jfk: Path | None = None) -> np.ndarray:
    """One turn: ``speaker`` (``jfk``, ``piper`` or an ``ESPEAK`` key) saying ``text`` (for JFK, a phrase index)."""
    if speaker == "jfk":
        if jfk is None:
            raise ValueError("a JFK turn needs the path of jfk.flac")
        start, end = JFK_PHRASES[int(text)]
        return decode_audio(jfk)[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)]
    if speaker == "piper":
        from leanspeech.measure.corpus import synthesize

        return synthesize([text])[0]
    return espeak_voice(text, speaker)


def build(plan: list[tuple[str, str]], *, name: str, seed: int = 7, jfk: Path | None = None,
          gains: dict[str, float] | None = None, pauses: tuple[float, float] = (0.4, 1.5),
          cache: Path | None = None, until_s: float | None = None) -> Conversation:
    """A conversation of ``plan``'s turns in order: (speaker, text), where the speaker is
    ``jfk`` (text: the phrase's index), ``piper`` or an ``ESPEAK`` key; each turn is scaled
    by its speaker's gain and followed by a seeded pause; ``until_s``: no turn after the
    audio reaches that length. Written as WAV with its reference as JSON beside it, cached
    by content."""
    from leanspeech.measure.corpus import _cache_dir

    gains = gains or {}
    key = hashlib.sha256(json.dumps([plan, seed, sorted(gains.items()), pauses, str(jfk), until_s]).encode()
                         ).hexdigest()[:12]
    wav = (cache or _cache_dir()) / f"conv-{name}-{key}.wav"
    meta = wav.with_suffix(".json")
    if not (wav.exists() and meta.exists()):
        rng = random.Random(seed)
        parts: list[np.ndarray] = [np.zeros(int(0.5 * SAMPLE_RATE), np.float32)]
        at = parts[0].shape[0]
        spans: list[list] = []
        for speaker, text in plan:
            if until_s is not None and at >= until_s * SAMPLE_RATE:
                break
            clip = trim(speak(speaker, text, jfk)) * gains.get(speaker, 1.0)
            spans.append([at / SAMPLE_RATE, (at + clip.shape[0]) / SAMPLE_RATE, speaker])
            gap = np.zeros(int(rng.uniform(*pauses) * SAMPLE_RATE), np.float32)
            parts += [clip.astype(np.float32), gap]
            at += clip.shape[0] + gap.shape[0]
        tmp = wav.with_suffix(".tmp.wav")
        write_wav(tmp, np.clip(np.concatenate(parts), -1.0, 1.0))
        meta.write_text(json.dumps({"turns": spans, "texts": [t for _, t in plan[: len(spans)]],
                                    "duration": at / SAMPLE_RATE}))
        tmp.replace(wav)
    data = json.loads(meta.read_text())
    turns = [Turn(s, e, w) for s, e, w in data["turns"]]
    return Conversation(wav, turns, [t if w != "jfk" else "" for w, t in plan[: len(turns)]], data["duration"])


def long_plan(minutes: float, speakers: tuple[str, ...] = ("piper", "espeak-f", "espeak-m", "espeak-k"),
              seed: int = 11, words_per_min: float = 150.0) -> list[tuple[str, str]]:
    """At least ``minutes`` of turn-taking among ``speakers`` (a third more turns than the
    estimate: ``build(until_s=...)`` stops at the length): turns of one to three sentences,
    speakers in a seeded order (some back-and-forth of short turns), no sentence twice."""
    rng = random.Random(seed)
    per_sentence_s = 15 * 60 / words_per_min * 0.6 + 0.6  # ~15 words, and the pause (measured)
    pool = iter(sentences(int(minutes * 60 / per_sentence_s * 1.6) + 10, seed))
    plan: list[tuple[str, str]] = []
    spent, last = 0.0, None
    while spent < minutes * 60 * 1.33:
        who = rng.choice([s for s in speakers if s != last])
        count = rng.choice((1, 1, 2, 3))
        plan.append((who, " ".join(next(pool) for _ in range(count))))
        spent += count * per_sentence_s
        last = who
    return plan
