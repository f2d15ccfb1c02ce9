"""Speech in several languages for tests and benchmarks, made offline: German, Spanish and
French with espeak-ng (Debian's ``espeak-ng`` package; a formant synthesizer, so harder to
hear than a person), English with the bundled Piper voice. Cached on disk by content.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from leanspeech.audio import SAMPLE_RATE, decode_audio, write_wav
from leanspeech.errors import OptionalDependencyError
from leanspeech.measure.corpus import SENTENCES, _cache_dir, synthesize

# Original plain sentences written for this corpus (no copyrighted text).
LANGUAGE_SENTENCES: dict[str, tuple[str, ...]] = {
    "de": (
        "Guten Morgen. Heute ist das Wetter schön, und wir gehen in den Park.",
        "Der Hund schläft unter dem Baum im Garten.",
        "Am Wochenende fahren wir mit dem Fahrrad in die Stadt.",
        "Meine Mutter kocht heute Abend Suppe.",
        "Das Buch liegt auf dem Tisch in der Küche.",
        "Der Zug nach Berlin fährt um acht Uhr ab.",
        "Wir wohnen in einem kleinen Haus am See.",
        "Ich trinke jeden Morgen eine Tasse Kaffee.",
    ),
    "es": (
        "Buenos días. Hoy hace buen tiempo y vamos al parque con los niños.",
        "Mi casa está cerca del mar.",
        "Mañana vamos a visitar a mis abuelos.",
        "Me gusta leer un libro por la noche.",
        "El perro duerme debajo de la mesa.",
        "El tren a Madrid sale a las ocho de la mañana.",
        "Mi hermana trabaja en un hospital muy grande.",
        "En verano comemos en el jardín con la familia.",
    ),
    "fr": (
        "Bonjour à tous. Aujourd'hui il fait beau et nous allons au parc.",
        "Ma maison est près de la mer.",
        "Nous allons au marché le samedi matin.",
        "J'aime lire un livre le soir.",
        "Le chien dort sous la table.",
        "Le train pour Paris part à huit heures du matin.",
        "Ma sœur travaille dans un grand hôpital.",
        "En été, nous mangeons dans le jardin avec la famille.",
    ),
}
ESPEAK_VOICES = {"de": "de", "es": "es", "fr": "fr-fr"}


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def espeak(text: str, language: str) -> np.ndarray:
    """``text`` spoken by espeak-ng in ``language``, 16 kHz mono float32."""
    if not espeak_available():
        raise OptionalDependencyError("espeak-ng", "multilingual", f"synthesized {language} speech")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "say.wav"
        subprocess.run(["espeak-ng", "-v", ESPEAK_VOICES[language], "-w", str(out), text],
                       check=True, capture_output=True)
        return decode_audio(out)


def speak(sentences: list[str], language: str) -> list[np.ndarray]:
    return synthesize(sentences) if language == "en" else [espeak(s, language) for s in sentences]


def clip(parts: list[tuple[str, list[str]]], pause: float = 0.8, name: str = "lang") -> tuple[Path, str]:
    """Speech in order: each (language, sentences) spoken in its language, ``pause`` seconds
    after every sentence. Returns (wav path, reference text); the text's ``.json`` beside it
    lists (language, sentence) pairs."""
    key = hashlib.sha256(json.dumps([parts, pause]).encode()).hexdigest()[:12]
    wav = _cache_dir() / f"{name}-{key}.wav"
    text = " ".join(s for _, sentences in parts for s in sentences)
    if not wav.exists():
        audio: list[np.ndarray] = []
        for language, sentences in parts:
            for said in speak(list(sentences), language):
                audio += [said, np.zeros(int(pause * SAMPLE_RATE), np.float32)]
        tmp = wav.with_suffix(".tmp.wav")
        write_wav(tmp, np.concatenate(audio))
        tmp.replace(wav)
        wav.with_suffix(".txt").write_text(text + "\n", encoding="utf-8")
        pairs = [[language, s] for language, sentences in parts for s in sentences]
        wav.with_suffix(".json").write_text(json.dumps(pairs, ensure_ascii=False) + "\n", encoding="utf-8")
    return wav, text


def language_clip(language: str, count: int = 3, start: int = 0) -> tuple[Path, str]:
    """``count`` sentences in ``language`` (en: the Piper corpus)."""
    pool = SENTENCES if language == "en" else LANGUAGE_SENTENCES[language]
    return clip([(language, list(pool[start : start + count]))], name=f"lang-{language}")
