"""``POST /v1/audio/transcriptions`` and ``/v1/audio/translations``, as OpenAI serves them.

Beyond OpenAI's fields: ``multilingual`` (a language per segment), ``hotwords`` (words to
spell as given) and ``channels=split`` (each channel of a stereo file on its own, segments
labelled ``speaker: "channel N"``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from pydantic import BeforeValidator
from starlette.background import BackgroundTask

from leanspeech.audio import AudioStream, SplitChannels
from leanspeech.errors import InvalidAudioError, InvalidOptionError, LeanspeechError
from leanspeech.runtime import Runtime
from leanspeech.runtime.admission import Ticket
from leanspeech.server.deps import runtime_of
from leanspeech.server.errors import HTTPError, documented, error_body
from leanspeech.stt.formats import to_srt, to_txt, to_vtt
from leanspeech.stt.options import TranscribeOptions
from leanspeech.stt.result import Transcription

logger = logging.getLogger(__name__)
router = APIRouter(tags=["speech-to-text"])

RESPONSE_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
GRANULARITIES = ("segment", "word")
NOT_AUDIO_TYPES = ("text/", "image/", "application/json", "application/pdf", "application/zip")


@dataclass(frozen=True, kw_only=True)
class Fields:
    """A request's form fields, as sent (by name: translations send fewer)."""

    task: str
    model: str | None
    response_format: str
    temperature: float
    stream: bool
    language: str | None = None
    prompt: str | None = None
    granularities: list[str] | None = None
    multilingual: bool | None = None
    hotwords: str | None = None
    channels: str | None = None


def _check_format(response_format: str, granularities: list[str] | None, stream: bool) -> list[str]:
    if response_format not in RESPONSE_FORMATS:
        raise InvalidOptionError(
            f"unknown response_format {response_format!r} (valid: {', '.join(RESPONSE_FORMATS)})", "response_format"
        )
    grans = [g for g in (granularities or []) if g]
    bad = [g for g in grans if g not in GRANULARITIES]
    if bad:
        raise InvalidOptionError(
            f"unknown timestamp granularity {bad[0]!r} (valid: {', '.join(GRANULARITIES)})", "timestamp_granularities"
        )
    if grans and response_format != "verbose_json":
        raise InvalidOptionError("timestamp_granularities needs response_format=verbose_json",
                                 "timestamp_granularities")
    if stream and response_format not in ("json", "text", "verbose_json"):
        raise InvalidOptionError("stream=true works with response_format json, text or verbose_json", "stream")
    return grans


async def _read_audio(file: UploadFile, channels: str, max_seconds: float) -> AudioStream | SplitChannels:
    """The upload, opened for decoding piece by piece from its spooled file (``AudioStream``:
    a long upload is never held whole in memory); with ``split``, each channel read the same
    way, one after the other. Opening reads the first piece, so a non-audio upload is a 415
    (a corrupt or empty one a 400, one whose container says it is longer than
    ``max_seconds`` a 413) before any response starts; decoding past ``max_seconds`` stops
    there with a 413 too. The spooled file is closed with the request."""
    try:
        await file.seek(0)
        if channels == "split":
            return await asyncio.to_thread(SplitChannels, file.file, max_seconds=max_seconds)
        return await asyncio.to_thread(partial(AudioStream, file.file, max_seconds=max_seconds))
    except InvalidAudioError as exc:
        ctype = (file.content_type or "").lower()
        if ctype.startswith(NOT_AUDIO_TYPES) and exc.kind != "empty_audio":
            raise HTTPError(
                "unsupported_media",
                f"{file.filename or 'upload'}: content type {ctype!r} is not audio; send an audio or video file",
                "file",
            ) from None
        raise type(exc)(f"{file.filename or 'upload'}: {str(exc).split(': ', 1)[-1]}") from None


def verbose(result: Transcription, grans: list[str], task: str) -> dict:
    body: dict = {
        "task": task,
        "language": result.info.language,
        "duration": round(result.info.duration, 3),
        "text": result.text,
        "usage": {"type": "duration", "seconds": round(result.info.duration, 3)},
    }
    if not grans or "segment" in grans:
        body["segments"] = []
        for s in result.segments:
            seg = {"id": s.id - 1, "seek": s.seek, "start": round(s.start, 3), "end": round(s.end, 3),
                   "text": s.text, "tokens": list(s.tokens), "temperature": s.temperature,
                   "avg_logprob": s.avg_logprob, "compression_ratio": s.compression_ratio,
                   "no_speech_prob": s.no_speech_prob, "language": s.language or result.info.language}
            if s.speaker is not None:
                seg["speaker"] = s.speaker
            body["segments"].append(seg)
    if "word" in grans:
        body["words"] = [{"word": w.word.strip(), "start": round(w.start, 3), "end": round(w.end, 3)}
                         for s in result.segments for w in (s.words or ())]
    body["leanspeech"] = run_info(result)
    return body


def run_info(result: Transcription) -> dict:
    """What really ran (leanspeech's addition to verbose_json): the model, the device and
    precision after any fallback and why, the decode time and the real-time factor."""
    i = result.info
    return {"model": i.model, "device": i.device, "precision": i.precision,
            "requested_precision": i.requested_precision, "precision_reason": i.precision_reason,
            "decode_s": round(i.timings.decode_s, 3), "rtf": round(i.timings.rtf, 4),
            "speech_s": round(i.duration_after_vad, 3), "batch_size": i.batch_size}


def render(result: Transcription, response_format: str, grans: list[str], task: str) -> Response:
    usage = {"type": "duration", "seconds": round(result.info.duration, 3)}
    if response_format == "json":
        return JSONResponse({"text": result.text, "usage": usage})
    if response_format == "verbose_json":
        return JSONResponse(verbose(result, grans, task))
    if response_format == "srt":
        return PlainTextResponse(to_srt(result))
    if response_format == "vtt":
        return PlainTextResponse(to_vtt(result), media_type="text/vtt")
    if any(s.speaker for s in result.segments):
        return PlainTextResponse(to_txt(result))  # one labelled line per segment
    return PlainTextResponse(result.text + "\n")


async def _until_disconnected(request: Request) -> None:
    while not await request.is_disconnected():
        await asyncio.sleep(0.1)


#: Form fields that take one value: sent twice (an array), the request is refused, not guessed at.
SCALAR_FIELDS = ("file", "model", "language", "prompt", "response_format", "temperature", "stream", "multilingual",
                 "hotwords", "channels")


async def _run(request: Request, file: UploadFile, f: Fields) -> Response:
    runtime = runtime_of(request)
    form = await request.form()  # parsed already: FastAPI read the fields from it
    for name in SCALAR_FIELDS:
        if len(form.getlist(name)) > 1:
            raise InvalidOptionError(f"{name} was sent {len(form.getlist(name))} times; it takes one value", name)
    grans = _check_format(f.response_format, f.granularities, f.stream)
    name = runtime.stt_model(f.model)
    options = runtime.transcribe_options(
        language=f.language, prompt=f.prompt, temperature=f.temperature, task=f.task,
        word_timestamps="word" in grans, timestamps=f.response_format in ("srt", "vtt", "verbose_json"),
        multilingual=f.multilingual, hotwords=f.hotwords, channels=f.channels,
    )
    ticket = runtime.transcriptions.enter()  # 429 at once past the bound: nothing queues
    streaming = False
    try:
        audio = await _read_audio(file, options.channels, runtime.settings.server.max_audio_seconds)
        if f.stream:  # the stream gives the place back when it ends (or never starts: the background task)
            streaming = True
            return StreamingResponse(_sse(runtime, name, audio, options, f.response_format, grans, f.task, ticket),
                                     media_type="text/event-stream", headers={"Cache-Control": "no-cache"},
                                     background=BackgroundTask(ticket.release))
        return await _answer(request, runtime, name, audio, options, f, grans)
    finally:
        if not streaming:
            ticket.release()


async def _answer(request: Request, runtime: Runtime, name: str, audio: AudioStream | SplitChannels,
                  options: TranscribeOptions, f: Fields, grans: list[str]) -> Response:
    job = asyncio.ensure_future(runtime.speech.transcribe(name, audio, options))
    watcher = asyncio.ensure_future(_until_disconnected(request))
    done, _ = await asyncio.wait({job, watcher}, return_when=asyncio.FIRST_COMPLETED)
    if job not in done:  # the client went away: stop its work, keep everyone else's
        job.cancel()
        logger.info("client disconnected; cancelled its transcription")
        try:
            await job
        except (asyncio.CancelledError, Exception):
            pass
        return PlainTextResponse("", status_code=499)
    watcher.cancel()
    return render(job.result(), f.response_format, grans, f.task)


async def _sse(runtime: Runtime, name: str, audio: AudioStream | SplitChannels, options: TranscribeOptions,
               response_format: str, grans: list[str], task: str, ticket: Ticket) -> AsyncIterator[str]:
    """OpenAI's transcript.text.delta / .done events. leanspeech adds ``progress`` (the
    share of the audio decoded, 0-1) to each delta and, with verbose_json, the whole verbose
    body (segments, language, duration, what ran) to the done event."""
    queue: asyncio.Queue = asyncio.Queue()

    async def on_text(text: str, progress: float) -> None:
        await queue.put({"type": "transcript.text.delta", "delta": text, "progress": round(progress, 4)})

    async def work() -> None:
        try:
            result = await runtime.speech.transcribe(name, audio, options, on_text=on_text)
            usage = {"type": "duration", "seconds": round(result.info.duration, 3)}
            extra = verbose(result, grans, task) if response_format == "verbose_json" else {}
            await queue.put({**extra, "type": "transcript.text.done", "text": result.text, "usage": usage})
        except Exception as exc:
            message = str(exc) if isinstance(exc, LeanspeechError) else f"internal error: {type(exc).__name__}"
            await queue.put({"error": error_body(message, "server_error")["error"]})
        finally:
            await queue.put(None)

    job = asyncio.ensure_future(work())
    try:
        while True:
            event = await queue.get()
            if event is None:
                break
            name_line = "event: error\n" if "error" in event else ""
            yield f"{name_line}data: {json.dumps(event)}\n\n"
    finally:
        if not job.done():
            job.cancel()
        ticket.release()


def _granularities(with_brackets: Sequence[str] | None, without: Sequence[str] | None) -> list[str] | None:
    """OpenAI's SDK sends ``timestamp_granularities[]``; some clients (LiteLLM) send it bare."""
    both = [*(with_brackets or []), *(without or [])]
    return both or None


def _null(value: Any) -> Any:
    """A form field sent as null (a multipart field carries text: "null" or nothing) is absent."""
    return None if value is None or (isinstance(value, str) and value.strip().lower() in ("", "null")) else value


ResponseFormat = Literal["json", "text", "srt", "verbose_json", "vtt"]
Granularity = Literal["segment", "word"]
Channels = Annotated[Literal["mono", "split"] | None, BeforeValidator(_null)]
NullableBool = Annotated[bool | None, BeforeValidator(_null)]
STT_ERRORS = {200: {"description": "The transcript in the asked format (json and verbose_json, text, srt, vtt; "
                     "server-sent events with stream=true)",
                     "content": {t: {} for t in ("application/json", "text/plain", "text/vtt", "text/event-stream")}},
              **documented(400, 401, 404, 413, 415, 429, 503, 507)}


@router.post("/v1/audio/transcriptions", responses=STT_ERRORS)
async def transcriptions(
    request: Request,
    file: UploadFile = File(..., description="The audio: any format FFmpeg decodes."),
    model: str = Form("whisper-1", description="A catalog model, or whisper-1 / gpt-4o(-mini)-transcribe: "
                      "the default."),
    language: str | None = Form(None, description="ISO 639-1 code; empty = detect."),
    prompt: str | None = Form(None),
    response_format: ResponseFormat = Form("json"),
    temperature: float = Form(0.0, ge=0.0, le=1.0),
    timestamp_granularities: list[Granularity] | None = Form(None, alias="timestamp_granularities[]"),
    timestamp_granularities_bare: list[Granularity] | None = Form(None, alias="timestamp_granularities"),
    stream: bool = Form(False),
    multilingual: NullableBool = Form(None, description="Detect the language of every segment (leanspeech)."),
    hotwords: str | None = Form(None, description="Words to spell as given, e.g. product names (leanspeech)."),
    channels: Channels = Form(None, description="mono (default) or split: each stereo channel alone "
                                     "(leanspeech)."),
):
    fields = Fields(task="transcribe", model=model, language=language, prompt=prompt,
                    response_format=response_format, temperature=temperature,
                    granularities=_granularities(timestamp_granularities, timestamp_granularities_bare),
                    stream=stream, multilingual=multilingual, hotwords=hotwords, channels=channels)
    return await _run(request, file, fields)


@router.post("/v1/audio/translations", responses=STT_ERRORS)
async def translations(
    request: Request,
    file: UploadFile = File(..., description="The audio: any format FFmpeg decodes."),
    model: str = Form("whisper-1"),
    prompt: str | None = Form(None),
    response_format: ResponseFormat = Form("json"),
    temperature: float = Form(0.0, ge=0.0, le=1.0),
    hotwords: str | None = Form(None, description="Words to spell as given (leanspeech)."),
    channels: Channels = Form(None, description="mono (default) or split (leanspeech)."),
    stream: bool = Form(False, description="Server-sent events as for transcriptions (leanspeech)."),
):
    fields = Fields(task="translate", model=model, prompt=prompt, response_format=response_format,
                    temperature=temperature, stream=stream, hotwords=hotwords, channels=channels)
    return await _run(request, file, fields)
