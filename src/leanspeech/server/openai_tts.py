"""``POST /v1/audio/speech`` and ``GET /v1/audio/voices``, as OpenAI serves them."""

from __future__ import annotations

import asyncio
import base64
import json
import threading

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask
from pydantic import BaseModel, Field

from ..errors import InvalidOptionError
from ..tts.chunking import check_text
from ..tts.encode import MEDIA_TYPES, check_format, encode_stream

router = APIRouter(tags=["text-to-speech"])


class SpeechRequest(BaseModel):
    model: str = "tts-1"
    input: str
    voice: str = "alloy"
    response_format: str = "mp3"
    speed: float = 1.0
    stream_format: str = Field("audio", description="audio (chunked bytes) or sse")
    instructions: str | None = None  # accepted for compatibility; Piper has no instructions


async def _iterate_in_thread(make_iter, cancel: threading.Event):
    """Run a blocking generator in a worker thread; yield its items on the event loop."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue(maxsize=4)
    done = object()

    def send(item) -> bool:
        """Hand one item to the event loop; False once the response has gone away."""
        future = asyncio.run_coroutine_threadsafe(queue.put(item), loop)
        while True:
            try:
                future.result(timeout=0.25)
                return True
            except TimeoutError:
                if cancel.is_set():  # nobody reads any more: stop instead of blocking forever
                    future.cancel()
                    return False
            except Exception:
                return False

    def worker():
        try:
            for item in make_iter():
                if cancel.is_set() or not send(item):
                    return
        except BaseException as exc:  # surfaced to the response
            send(exc)
        finally:
            send(done)

    thread = threading.Thread(target=worker, name="leanspeech-tts", daemon=True)
    thread.start()
    while True:
        item = await queue.get()
        if item is done:
            return
        if isinstance(item, BaseException):
            raise item
        yield item


@router.post("/v1/audio/speech")
async def speech(request: Request, body: SpeechRequest):
    state = request.app.state.leanspeech
    cfg = state.settings.tts
    fmt = check_format(body.response_format)
    if body.stream_format not in ("audio", "sse"):
        raise InvalidOptionError(f"unknown stream_format {body.stream_format!r} (valid: audio, sse)", "stream_format")
    if not 0.25 <= body.speed <= 4.0:
        raise InvalidOptionError(f"speed must be between 0.25 and 4.0, got {body.speed}", "speed")
    text = check_text(body.input, cfg.max_total_length)
    voice = state.tts_voice(body.voice)  # 404 for an unknown voice
    entry = await asyncio.to_thread(state.manager.checkout, "tts", voice)
    cancel = threading.Event()
    synth = entry.obj
    released = threading.Lock()

    def release() -> None:
        """Idempotent: from the stream's end or, if the stream never ran, the background task.
        Never awaits: when the client vanishes, the stream is cancelled, and an await in its
        ``finally`` would be cancelled too, leaving the voice checked out for ever."""
        cancel.set()
        if released.acquire(blocking=False):
            try:
                asyncio.get_running_loop().run_in_executor(None, state.manager.checkin, entry)
            except RuntimeError:  # no event loop here: already on a worker thread
                state.manager.checkin(entry)

    def produce():
        return encode_stream(synth.stream(text, speed=body.speed), fmt, synth.sample_rate)

    async def body_bytes():
        try:
            async for data in _iterate_in_thread(produce, cancel):
                if body.stream_format == "sse":
                    event = {"type": "speech.audio.delta", "audio": base64.b64encode(data).decode()}
                    yield f"data: {json.dumps(event)}\n\n".encode()
                else:
                    yield data
            if body.stream_format == "sse":
                yield f"data: {json.dumps({'type': 'speech.audio.done', 'usage': {'input_tokens': len(text), 'output_tokens': 0, 'total_tokens': len(text)}})}\n\n".encode()
        finally:
            release()

    media = "text/event-stream" if body.stream_format == "sse" else MEDIA_TYPES[fmt]
    return StreamingResponse(body_bytes(), media_type=media, background=BackgroundTask(release))


@router.get("/v1/audio/voices")
async def voices(request: Request):
    from ..tts.voices import OPENAI_VOICES, list_voices

    return {"object": "list", "data": list_voices(), "aliases": {v: "en_US-joe-medium" for v in OPENAI_VOICES}}
