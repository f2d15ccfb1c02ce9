"""The diarization fields of OpenAI's transcription request, checked: the diarizing model's
name, ``chunking_strategy``, ``known_speaker_names[]`` with ``known_speaker_references[]``
(audio clips as data URLs), and leanspeech's speaker bounds."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from typing import Any

from leanspeech.diarize.cluster import SpeakerBounds
from leanspeech.diarize.request import DiarizeRequest, known_speakers_from
from leanspeech.errors import InvalidOptionError

DIARIZE_MODEL = "gpt-4o-transcribe-diarize"
VAD_FIELDS = {"prefix_padding_ms": (0, 10_000), "silence_duration_ms": (0, 10_000), "threshold": (0.0, 1.0)}


def chunking_from_form(value: str | None, form: Mapping[str, Any]) -> str | dict | None:
    """``chunking_strategy`` as sent: a string (``auto`` or JSON), or the object as the openai
    SDK sends it in a multipart form, one ``chunking_strategy[field]`` per field."""
    nested = {k[len("chunking_strategy["):-1]: v for k, v in form.items()
              if k.startswith("chunking_strategy[") and k.endswith("]")}
    if nested:
        if value is not None:
            raise InvalidOptionError("chunking_strategy was sent twice (as a value and as fields)", "chunking_strategy")
        return {k: v if k == "type" else _number(v, k) for k, v in nested.items()}
    return value


def _number(text: str, key: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        raise InvalidOptionError(f"chunking_strategy.{key} must be a number", "chunking_strategy") from None


def check_chunking(value: str | dict | None) -> None:
    """``auto`` or a ``server_vad`` object (OpenAI's two forms). leanspeech always cuts at
    Silero VAD's pauses, so the object's numbers are checked, not used."""
    if value is None or (isinstance(value, str) and value.strip() in ("", "auto")):
        return
    try:
        data = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        raise InvalidOptionError("chunking_strategy must be \"auto\" or a JSON object with type \"server_vad\"",
                                 "chunking_strategy") from None
    if not isinstance(data, dict) or data.get("type") != "server_vad":
        raise InvalidOptionError("chunking_strategy's type must be \"server_vad\"", "chunking_strategy")
    for key, number in data.items():
        if key == "type":
            continue
        if key not in VAD_FIELDS:
            raise InvalidOptionError(f"chunking_strategy has no field {key!r} (valid: type, "
                                     f"{', '.join(VAD_FIELDS)})", "chunking_strategy")
        low, high = VAD_FIELDS[key]
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not low <= number <= high:
            raise InvalidOptionError(f"chunking_strategy.{key} must be a number from {low} to {high}",
                                     "chunking_strategy")


def data_url_bytes(value: str, index: int) -> bytes:
    """The bytes of a ``data:audio/...;base64,...`` URL (OpenAI's form for a reference clip)."""
    head, sep, payload = value.partition(",")
    if not sep or not head.startswith("data:") or not head.endswith(";base64"):
        raise InvalidOptionError(f"known_speaker_references[{index}] must be a data URL "
                                 "(data:audio/wav;base64,...)", "known_speaker_references")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidOptionError(f"known_speaker_references[{index}] is not valid base64",
                                 "known_speaker_references") from None


async def diarize_request(*, num: int | None, low: int | None, high: int | None, names: Sequence[str],
                          references: Sequence[str], max_known: int) -> DiarizeRequest:
    """The checked request (reference clips decoded in a thread)."""
    bounds = SpeakerBounds(num=num, min=low, max=high)
    clips = [data_url_bytes(r, i) for i, r in enumerate(references[: max_known + 1])]
    if len(references) > max_known + 1:  # counted as sent, decoded no further than the limit
        clips += [b""] * (len(references) - len(clips))
    known = await asyncio.to_thread(known_speakers_from, list(names), clips, max_known) if names or clips else {}
    return DiarizeRequest(bounds, known)
