"""``POST /v1/audio/speech`` and ``GET /v1/audio/voices``, as OpenAI serves them."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from ..errors import InvalidOptionError
from ..tts.encode import MEDIA_TYPES
from .deps import runtime_of

router = APIRouter(tags=["text-to-speech"])
STREAM_FORMATS = ("audio", "sse")


class SpeechRequest(BaseModel):
    model: str = "tts-1"
    input: str
    voice: str = "alloy"
    response_format: str = "mp3"
    speed: float = 1.0
    stream_format: str = Field("audio", description="audio (chunked bytes) or sse")
    instructions: str | None = None  # accepted for compatibility; Piper has no instructions


@router.post("/v1/audio/speech")
async def speech(request: Request, body: SpeechRequest):
    runtime = runtime_of(request)
    if body.stream_format not in STREAM_FORMATS:
        raise InvalidOptionError(f"unknown stream_format {body.stream_format!r} (valid: {', '.join(STREAM_FORMATS)})",
                                 "stream_format")
    checked = runtime.voice.check(body.input, body.voice, speed=body.speed, fmt=body.response_format,
                                  model=body.model)
    utterance = await runtime.voice.open(checked)  # 404 unknown voice, 503 over the budget: before streaming
    sse = body.stream_format == "sse"

    async def body_bytes() -> AsyncIterator[bytes]:
        try:
            async for data in utterance.encoded():
                if sse:
                    event = {"type": "speech.audio.delta", "audio": base64.b64encode(data).decode()}
                    yield f"data: {json.dumps(event)}\n\n".encode()
                else:
                    yield data
            if sse:
                usage = {"input_tokens": len(checked.text), "output_tokens": 0, "total_tokens": len(checked.text)}
                yield f"data: {json.dumps({'type': 'speech.audio.done', 'usage': usage})}\n\n".encode()
        finally:
            utterance.close()

    media = "text/event-stream" if sse else MEDIA_TYPES[checked.fmt]
    # the background task lets the voice go if the stream never ran (the client left first)
    return StreamingResponse(body_bytes(), media_type=media, background=BackgroundTask(utterance.close))


@router.get("/v1/audio/voices")
async def voices(request: Request):
    from ..tts.voices import OPENAI_VOICES, list_voices

    default = runtime_of(request).settings.tts.voice
    data = list_voices()
    # "voices" is the shape Open WebUI reads; OpenAI's names are listed as the voice they play
    voices = [{"id": v["id"], "name": v["name"]} for v in data if v.get("present")]
    voices += [{"id": alias, "name": f"{alias} ({default})"} for alias in OPENAI_VOICES]
    return {"object": "list", "data": data, "voices": voices, "aliases": {v: default for v in OPENAI_VOICES}}
