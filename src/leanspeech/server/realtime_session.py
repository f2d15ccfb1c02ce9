"""A Realtime API transcription session's configuration: ``session.update`` (and the beta
``transcription_session.update``) checked whole into a ``SessionConfig``, and the session
object the server sends back. No I/O; ``realtime_ws`` speaks the protocol."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from leanspeech.errors import LeanspeechError
from leanspeech.runtime import Runtime
from leanspeech.streaming.options import LiveOptions

#: format name -> (wire object, input sample rate, G.711 law)
FORMATS: dict[str, tuple[dict, int, str | None]] = {
    "pcm16": ({"type": "audio/pcm", "rate": 24000}, 24000, None),
    "g711_ulaw": ({"type": "audio/pcmu"}, 8000, "ulaw"),
    "g711_alaw": ({"type": "audio/pcma"}, 8000, "alaw"),
}
WIRE_FORMATS = {"audio/pcm": "pcm16", "audio/pcmu": "g711_ulaw", "audio/pcma": "g711_alaw"}

class RealtimeError(Exception):
    def __init__(self, code: str, message: str, param: str | None = None, type_: str = "invalid_request_error"):
        super().__init__(message)
        self.code, self.message, self.param, self.type = code, message, param, type_


@dataclass(frozen=True)
class TurnDetection:
    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500

    def wire(self) -> dict:
        return {"type": "server_vad", "threshold": self.threshold, "prefix_padding_ms": self.prefix_padding_ms,
                "silence_duration_ms": self.silence_duration_ms}


@dataclass(frozen=True)
class SessionConfig:
    format: str = "pcm16"
    model: str = ""  # the catalog model that serves the session
    language: str | None = None
    prompt: str | None = None
    turn_detection: TurnDetection | None = field(default_factory=TurnDetection)


def _get(obj: dict, key: str, kinds: tuple[type, ...], where: str) -> Any:
    """``obj[key]`` when it is None or of one of ``kinds`` (a bool is not a number here)."""
    value = obj[key]
    if value is None or (isinstance(value, kinds) and (bool in kinds or not isinstance(value, bool))):
        return value
    names = " or ".join({int: "an integer", float: "a number", str: "a string"}.get(k, k.__name__) for k in kinds)
    raise RealtimeError("invalid_type", f"{where}.{key} must be {names}, got {json.dumps(value)[:40]}",
                        f"{where}.{key}")


def shape_object(value: Any, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RealtimeError("invalid_type", f"{where} must be an object", where)
    return value


def beta_to_ga(session: dict) -> dict:
    """``transcription_session.update``'s flat fields, in the GA nesting."""
    out: dict = {"type": "transcription", "audio": {"input": {}}}
    keys = {"input_audio_format": "format", "input_audio_transcription": "transcription",
            "turn_detection": "turn_detection", "input_audio_noise_reduction": "noise_reduction"}
    for beta, ga in keys.items():
        if beta in session:
            out["audio"]["input"][ga] = session[beta]
    if "include" in session:
        out["include"] = session["include"]
    return out


def apply_update(cfg: SessionConfig, session: Any, runtime: Runtime) -> SessionConfig:
    """The session after a ``session.update``; nothing changes when any field is bad."""
    session = shape_object(session, "session")
    kind = session.get("type", "transcription")
    if kind == "realtime":
        raise RealtimeError("unsupported_session_type",
                            "conversation (LLM) sessions are not supported: leanspeech serves transcription sessions "
                            "(session.type 'transcription', or connect with ?intent=transcription)", "session.type")
    if kind != "transcription":
        raise RealtimeError("invalid_value", f"unknown session.type {kind!r} (leanspeech serves 'transcription')",
                            "session.type")
    audio_in = shape_object(shape_object(session.get("audio"), "session.audio").get("input"), "session.audio.input")
    new = cfg
    where = "session.audio.input"
    if "format" in audio_in:
        fmt = audio_in["format"]
        if isinstance(fmt, str) and fmt in FORMATS:
            new = replace(new, format=fmt)
        elif isinstance(fmt, dict) and fmt.get("type", "audio/pcm") in WIRE_FORMATS:
            name = WIRE_FORMATS[fmt.get("type", "audio/pcm")]
            rate = fmt.get("rate", FORMATS[name][1])
            if rate != FORMATS[name][1]:
                raise RealtimeError("invalid_value", f"{fmt.get('type', 'audio/pcm')} is {FORMATS[name][1]} Hz here; "
                                    f"got rate {rate}", f"{where}.format.rate")
            new = replace(new, format=name)
        else:
            raise RealtimeError("invalid_value", f"unknown audio format {json.dumps(fmt)[:60]} (valid: audio/pcm at "
                                "24000 Hz, audio/pcmu, audio/pcma; or pcm16, g711_ulaw, g711_alaw)", f"{where}.format")
    if "transcription" in audio_in and audio_in["transcription"] is not None:
        t = shape_object(audio_in["transcription"], f"{where}.transcription")
        tw = f"{where}.transcription"
        if "model" in t:
            model = _get(t, "model", (str,), tw)
            try:
                name, _ = runtime.live_model(model)
            except LeanspeechError as exc:
                raise RealtimeError(exc.kind, str(exc), f"{tw}.model") from None
            new = replace(new, model=name)
        if "language" in t:
            new = replace(new, language=_get(t, "language", (str,), tw) or None)
        if "prompt" in t:
            new = replace(new, prompt=_get(t, "prompt", (str,), tw) or None)
    if "turn_detection" in audio_in:
        td = audio_in["turn_detection"]
        if td is None:
            new = replace(new, turn_detection=None)
        else:
            td = shape_object(td, f"{where}.turn_detection")
            tdw = f"{where}.turn_detection"
            if td.get("type", "server_vad") != "server_vad":
                raise RealtimeError("invalid_value", f"turn detection {td.get('type')!r} is not supported here "
                                    "(server_vad, or null to commit by hand)", f"{tdw}.type")
            base = new.turn_detection or TurnDetection()
            values = {k: _get(td, k, (int, float) if k == "threshold" else (int,), tdw)
                      for k in ("threshold", "prefix_padding_ms", "silence_duration_ms") if td.get(k) is not None}
            merged = replace(base, **values)
            if not 0.0 < merged.threshold < 1.0:
                raise RealtimeError("invalid_value", "threshold must be between 0 and 1", f"{tdw}.threshold")
            if not 0 <= merged.prefix_padding_ms <= 5000:
                raise RealtimeError("invalid_value", "prefix_padding_ms must be 0..5000", f"{tdw}.prefix_padding_ms")
            if not 100 <= merged.silence_duration_ms <= 10000:
                raise RealtimeError("invalid_value", "silence_duration_ms must be 100..10000",
                                    f"{tdw}.silence_duration_ms")
            new = replace(new, turn_detection=merged)
    live_options(new, runtime)  # an unknown language, or one the model cannot do, fails here
    return new


def live_options(cfg: SessionConfig, runtime: Runtime) -> LiveOptions:
    try:
        options = runtime.live_options(language=cfg.language, initial_prompt=cfg.prompt)
        runtime.check_live(cfg.model, options)
    except LeanspeechError as exc:
        param = "session.audio.input.transcription." + (exc.param if exc.param in ("language", "prompt") else "model")
        raise RealtimeError(exc.kind, str(exc), param) from None
    return options


def session_object(cfg: SessionConfig, session_id: str) -> dict:
    return {
        "type": "transcription", "id": session_id, "object": "realtime.transcription_session",
        "audio": {"input": {
            "format": FORMATS[cfg.format][0],
            "transcription": {"model": cfg.model, "language": cfg.language, "prompt": cfg.prompt or ""},
            "turn_detection": cfg.turn_detection.wire() if cfg.turn_detection else None,
            "noise_reduction": None,
        }},
        "include": None,
    }
