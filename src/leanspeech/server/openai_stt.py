"""``POST /v1/audio/transcriptions`` and ``/v1/audio/translations``, as OpenAI serves them.

Beyond OpenAI's fields: ``multilingual`` (a language per segment), ``hotwords`` (words to
spell as given), ``channels=split`` (each channel of a stereo file on its own, segments
labelled ``speaker: "channel N"``), and ``diarize`` with ``num_speakers`` /
``min_speakers`` / ``max_speakers`` (speakers on any model's segments). OpenAI's own
diarization: model ``gpt-4o-transcribe-diarize``, ``response_format=diarized_json``,
``known_speaker_names[]`` / ``known_speaker_references[]`` and ``chunking_strategy``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from pydantic import BeforeValidator
from starlette.background import BackgroundTask

from leanspeech.audio import AudioStream, SplitChannels
from leanspeech.errors import InvalidAudioError, InvalidOptionError, LeanspeechError
from leanspeech.runtime.admission import Ticket
from leanspeech.server.deps import runtime_of
from leanspeech.server.diarize_fields import DIARIZE_MODEL, check_chunking, chunking_from_form, diarize_request
from leanspeech.server.errors import HTTPError, documented, error_body
from leanspeech.stt.formats import to_srt, to_txt, to_vtt
from leanspeech.stt.result import Transcription

logger = logging.getLogger(__name__)
router = APIRouter(tags=["speech-to-text"])

RESPONSE_FORMATS = ("json", "text", "srt", "verbose_json", "vtt", "diarized_json")
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
    diarize: bool | None = None
    num_speakers: int | None = None
    min_speakers: int | None = None
    max_speakers: int | None = None
    known_names: list[str] | None = None
    known_references: list[str] | None = None
    chunking_strategy: str | dict | None = None

    @property
    def diarizing(self) -> bool:
        return self.model == DIARIZE_MODEL or bool(self.diarize)


def _check_diarize(f: Fields) -> None:
    """What a diarizing request may not ask, and diarize-only fields on one that does not."""
    if not f.diarizing:
        if f.response_format == "diarized_json":
            raise InvalidOptionError(f"response_format diarized_json needs model {DIARIZE_MODEL} (or diarize=true)",
                                     "response_format")
        if f.known_names or f.known_references or any(
                v is not None for v in (f.num_speakers, f.min_speakers, f.max_speakers)):
            raise InvalidOptionError(f"speaker fields need model {DIARIZE_MODEL} (or diarize=true)", "model")
        return
    if f.task != "transcribe":
        raise InvalidOptionError("translations cannot diarize; use /v1/audio/transcriptions", "model")
    if f.model == DIARIZE_MODEL and f.prompt:
        raise InvalidOptionError(f"prompt is not supported with {DIARIZE_MODEL}", "prompt")
    if f.channels == "split":
        raise InvalidOptionError("channels=split labels each channel as a speaker; it cannot be combined with "
                                 "diarization", "channels")
    check_chunking(f.chunking_strategy)


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
    if stream and response_format not in ("json", "text", "verbose_json", "diarized_json"):
        raise InvalidOptionError("stream=true works with response_format json, text, verbose_json or "
                                 "diarized_json", "stream")
    return grans


async def read_upload(file: UploadFile, channels: str, max_seconds: float) -> AudioStream | SplitChannels:
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


async def reopenable_upload(file: UploadFile, max_seconds: float) -> Callable[[], AudioStream]:
    """For work that reads an upload more than once (diarization, then its transcript): the
    upload checked as audio now (``read_upload``: a 415, 400 or 413 before any work), and a
    function that opens it again from its spooled file, piece by piece, for each pass."""
    first = await read_upload(file, "mono", max_seconds)
    if isinstance(first, AudioStream):
        first.close()

    def reopen() -> AudioStream:
        file.file.seek(0)
        return AudioStream(file.file, max_seconds=max_seconds)

    return reopen


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
        body["words"] = [{"word": w.word.strip(), "start": round(w.start, 3), "end": round(w.end, 3),
                          **({"speaker": s.speaker} if s.speaker is not None else {})}
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


def diarized_segments(result: Transcription) -> list[dict]:
    """OpenAI's ``diarized_json`` segments (also the streamed ``transcript.text.segment`` events)."""
    return [{"type": "transcript.text.segment", "id": f"seg_{i}", "start": round(s.start, 3), "end": round(s.end, 3),
             "text": s.text.strip(), "speaker": s.speaker or "A"} for i, s in enumerate(result.segments)]


def diarized(result: Transcription, task: str) -> dict:
    seconds = round(result.info.duration, 3)
    return {"task": task, "duration": seconds, "text": result.text, "segments": diarized_segments(result),
            "usage": {"type": "duration", "seconds": seconds}, "leanspeech": run_info(result)}


def render(result: Transcription, response_format: str, grans: list[str], task: str) -> Response:
    usage = {"type": "duration", "seconds": round(result.info.duration, 3)}
    if response_format == "diarized_json":
        return JSONResponse(diarized(result, task))
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
                 "hotwords", "channels", "diarize", "num_speakers", "min_speakers", "max_speakers", "chunking_strategy")


async def check_scalar_fields(request: Request, names: Sequence[str]) -> None:
    """A field that takes one value, sent twice (an array), is refused, not guessed at."""
    form = await request.form()  # parsed already: FastAPI read the fields from it
    for name in names:
        if len(form.getlist(name)) > 1:
            raise InvalidOptionError(f"{name} was sent {len(form.getlist(name))} times; it takes one value", name)


async def _run(request: Request, file: UploadFile, f: Fields) -> Response:
    runtime = runtime_of(request)
    await check_scalar_fields(request, SCALAR_FIELDS)
    grans = _check_format(f.response_format, f.granularities, f.stream)
    f = replace(f, chunking_strategy=chunking_from_form(f.chunking_strategy, await request.form()))  # type: ignore[arg-type]
    _check_diarize(f)
    name = runtime.model_for(f.model, task=f.task, language=f.language)
    options = runtime.transcribe_options(
        language=f.language, prompt=f.prompt, temperature=f.temperature, task=f.task,
        word_timestamps="word" in grans, timestamps=f.response_format in ("srt", "vtt", "verbose_json"),
        multilingual=f.multilingual, hotwords=f.hotwords, channels=f.channels,
    )
    speakers = None
    if f.diarizing:
        speakers = await diarize_request(num=f.num_speakers, low=f.min_speakers, high=f.max_speakers,
                                         names=f.known_names or [], references=f.known_references or [],
                                         max_known=runtime.settings.diarize.max_known_speakers)
    ticket = runtime.transcriptions.enter()  # 429 at once past the bound: nothing queues
    streaming = False
    try:
        max_s = runtime.settings.server.max_audio_seconds
        job: Job
        if speakers is not None:
            request_speakers, reopen = speakers, await reopenable_upload(file, max_s)

            def job(on_text: OnText | None) -> Awaitable[Transcription]:
                return runtime.transcribe_diarized(name, reopen, options, request_speakers, on_text)
        else:
            opened = await read_upload(file, options.channels, max_s)

            def job(on_text: OnText | None) -> Awaitable[Transcription]:
                return runtime.speech.transcribe(name, opened, options, on_text=on_text)
        if f.stream:  # the stream gives the place back when it ends (or never starts: the background task)
            streaming = True
            return StreamingResponse(_sse(job, f.response_format, grans, f.task, ticket),
                                     media_type="text/event-stream", headers={"Cache-Control": "no-cache"},
                                     background=BackgroundTask(ticket.release))
        return await _answer(request, job(None), f, grans)
    finally:
        if not streaming:
            ticket.release()


OnText = Callable[[str, float], Awaitable[None]]
Job = Callable[[OnText | None], Awaitable[Transcription]]


async def _answer(request: Request, work: Awaitable[Transcription], f: Fields, grans: list[str]) -> Response:
    job = asyncio.ensure_future(work)
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


async def _sse(transcribe: Job, response_format: str, grans: list[str], task: str, ticket: Ticket
               ) -> AsyncIterator[str]:
    """OpenAI's transcript.text.delta / .done events (and, diarizing, a
    ``transcript.text.segment`` event per labelled segment before the done event).
    leanspeech adds ``progress`` (the share of the audio decoded, 0-1) to each delta and,
    with verbose_json, the whole verbose body (segments, language, duration, what ran) to the
    done event."""
    queue: asyncio.Queue = asyncio.Queue()

    async def on_text(text: str, progress: float) -> None:
        await queue.put({"type": "transcript.text.delta", "delta": text, "progress": round(progress, 4)})

    async def work() -> None:
        try:
            result = await transcribe(on_text)
            if response_format == "diarized_json" or any(s.speaker for s in result.segments):
                for segment in diarized_segments(result):
                    await queue.put(segment)
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


def null_field(value: Any) -> Any:
    """A form field sent as null (a multipart field carries text: "null" or nothing) is absent."""
    return None if value is None or (isinstance(value, str) and value.strip().lower() in ("", "null")) else value


ResponseFormat = Literal["json", "text", "srt", "verbose_json", "vtt", "diarized_json"]
TranslationFormat = Literal["json", "text", "srt", "verbose_json", "vtt"]
OptionalInt = Annotated[int | None, BeforeValidator(null_field)]
Granularity = Literal["segment", "word"]
Channels = Annotated[Literal["mono", "split"] | None, BeforeValidator(null_field)]
NullableBool = Annotated[bool | None, BeforeValidator(null_field)]
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
    chunking_strategy: str | None = Form(None, description="auto, or a server_vad JSON object (OpenAI's; "
                                         "leanspeech always cuts at Silero VAD's pauses)."),
    known_speaker_names: list[str] | None = Form(None, alias="known_speaker_names[]", description="Names of known "
                                                 "speakers (with known_speaker_references[], up to 4)."),
    known_speaker_references: list[str] | None = Form(None, alias="known_speaker_references[]", description="A "
                                                      "2-10 s clip of each known speaker, as a data URL."),
    diarize: NullableBool = Form(None, description="Label segments (and words) with speakers on any model "
                                 "(leanspeech; needs leanspeech[diarize])."),
    num_speakers: OptionalInt = Form(None, ge=1, le=30, description="Exactly this many speakers (leanspeech)."),
    min_speakers: OptionalInt = Form(None, ge=1, le=30, description="At least this many speakers (leanspeech)."),
    max_speakers: OptionalInt = Form(None, ge=1, le=30, description="At most this many speakers (leanspeech)."),
):
    fields = Fields(task="transcribe", model=model, language=language, prompt=prompt,
                    response_format=response_format, temperature=temperature,
                    granularities=_granularities(timestamp_granularities, timestamp_granularities_bare),
                    stream=stream, multilingual=multilingual, hotwords=hotwords, channels=channels,
                    diarize=diarize, num_speakers=num_speakers, min_speakers=min_speakers, max_speakers=max_speakers,
                    known_names=known_speaker_names, known_references=known_speaker_references,
                    chunking_strategy=chunking_strategy)
    return await _run(request, file, fields)


@router.post("/v1/audio/translations", responses=STT_ERRORS)
async def translations(
    request: Request,
    file: UploadFile = File(..., description="The audio: any format FFmpeg decodes."),
    model: str = Form("whisper-1"),
    prompt: str | None = Form(None),
    response_format: TranslationFormat = Form("json"),
    temperature: float = Form(0.0, ge=0.0, le=1.0),
    hotwords: str | None = Form(None, description="Words to spell as given (leanspeech)."),
    channels: Channels = Form(None, description="mono (default) or split (leanspeech)."),
    stream: bool = Form(False, description="Server-sent events as for transcriptions (leanspeech)."),
):
    fields = Fields(task="translate", model=model, prompt=prompt, response_format=response_format,
                    temperature=temperature, stream=stream, hotwords=hotwords, channels=channels)
    return await _run(request, file, fields)
