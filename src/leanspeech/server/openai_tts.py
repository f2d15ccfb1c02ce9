"""``POST /v1/audio/speech`` and ``GET /v1/audio/voices``, as OpenAI serves them."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from leanspeech.errors import InvalidOptionError
from leanspeech.server.deps import runtime_of
from leanspeech.server.errors import documented
from leanspeech.tts.encode import MEDIA_TYPES
from leanspeech.tts.synthesizer import SPEEDS

router = APIRouter(tags=["text-to-speech"])
STREAM_FORMATS = ("audio", "sse")


#: Not empty: at least one character that is not white space (as str.split sees it, and
#: U+FEFF, so that the pattern means the same in JSON Schema's regex dialect and here).
NOT_BLANK = r"[^\s\x1c-\x1f\x85]"


class SpeechRequest(BaseModel):
    model: str = Field("tts-1", description="tts-1, tts-1-hd, gpt-4o-mini-tts (the voice asked for), or a voice.")
    # declared, not enforced here: check_text enforces both with a clearer message than pydantic's
    input: str = Field(..., json_schema_extra={"pattern": NOT_BLANK}, description="The text (its length limit is "
                       "LEANSPEECH_TTS__MAX_TOTAL_LENGTH, declared as maxLength).")
    voice: str = Field("alloy", description="A Piper voice, or an OpenAI voice name (the default voice).")
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = "mp3"
    speed: float = Field(1.0, ge=SPEEDS[0], le=SPEEDS[1])
    stream_format: Literal["audio", "sse"] = Field("audio", description="audio (chunked bytes) or sse")
    instructions: str | None = None  # accepted for compatibility; Piper has no instructions
    precision: Literal["auto", "float32", "float16", "int8"] | None = Field(
        None, description="The voice's ONNX variant for this request (leanspeech); omitted or auto: "
        "LEANSPEECH_TTS__PRECISION. Each variant asked for is loaded as a model of its own.")


@router.post("/v1/audio/speech", responses={200: {"content": {m: {} for m in dict.fromkeys(MEDIA_TYPES.values())}
                                                  | {"text/event-stream": {}},
                                                  "description": "The audio, streamed as it is made"},
                                            **documented(400, 401, 404, 413, 429, 503)})
async def speech(request: Request, body: SpeechRequest):
    runtime = runtime_of(request)
    if body.stream_format not in STREAM_FORMATS:
        raise InvalidOptionError(f"unknown stream_format {body.stream_format!r} (valid: {', '.join(STREAM_FORMATS)})",
                                 "stream_format")
    checked = runtime.voice.check(body.input, body.voice, speed=body.speed, fmt=body.response_format,
                                  model=body.model, precision=body.precision)
    ticket = runtime.syntheses.enter()  # 429 at once past the bound: no thread per request beyond it
    try:
        utterance = await runtime.voice.open(checked)  # 404 unknown voice, 503 over the budget: before streaming
    except BaseException:
        ticket.release()
        raise
    sse = body.stream_format == "sse"

    def done() -> None:
        utterance.close()
        ticket.release()

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
            done()

    media = "text/event-stream" if sse else MEDIA_TYPES[checked.fmt]
    # the background task lets the voice go if the stream never ran (the client left first)
    # the sample rate, for raw pcm (the voice's own rate, not OpenAI's fixed 24 kHz)
    return StreamingResponse(body_bytes(), media_type=media, background=BackgroundTask(done),
                             headers={"X-Sample-Rate": str(utterance.sample_rate)})


@router.get("/v1/audio/voices", responses=documented(401))
async def voices(request: Request):
    from leanspeech.tts.voices import OPENAI_VOICES, list_voices

    default = runtime_of(request).settings.tts.voice
    data = list_voices()
    # "voices" is the shape Open WebUI reads; OpenAI's names are listed as the voice they play
    voices = [{"id": v["id"], "name": v["name"]} for v in data if v.get("present")]
    voices += [{"id": alias, "name": f"{alias} ({default})"} for alias in OPENAI_VOICES]
    return {"object": "list", "data": data, "voices": voices, "aliases": {v: default for v in OPENAI_VOICES}}
