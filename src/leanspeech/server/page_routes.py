"""The page (``/`` and its files under ``/ui/``) and the routes only it needs: ``GET /plan``
(the measured plan and charts shipped with the package, and the last quick plan),
``POST /plan`` (a quick plan of one model on this machine, in a worker process) and
``POST /transcript/{format}`` (a transcript the page holds, written by the server's own
writers, ``stt/formats``: the page has no subtitle writer of its own to drift).

The quick plan runs ``leanspeech plan --json`` in a child process, so that nothing it loads
counts against the server's memory, with a time limit (``server.plan_timeout``, killed past
it: 504) and one run at a time (a second while one runs: 409).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import time
from typing import TYPE_CHECKING, Literal

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, PlainTextResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from leanspeech.errors import InvalidOptionError, UnknownModelError
from leanspeech.precision import PRECISIONS
from leanspeech.server.deps import runtime_of
from leanspeech.server.errors import HTTPError, documented
from leanspeech.server.monitoring import stt_resolution
from leanspeech.web import STATIC

logger = logging.getLogger(__name__)
router = APIRouter()
MEASURED = STATIC / "measured"
CHARTS = {  # the committed charts the page shows, with what each measures
    "plan_cpu.png": "leanspeech plan on this project's CPU: peak memory and speed per model and precision",
    "plan_base_cpu.png": "leanspeech plan for Whisper base (multilingual)",
    "precision_memory_vs_wer.png": "Peak memory against word error rate, per precision",
    "precision_speed_vs_memory.png": "Speed against peak memory, per precision",
    "multilingual_memory_vs_wer.png": "Memory against word error rate, English, German, Spanish",
}


def mount_page(app) -> None:
    """Serve the page's files under ``/ui`` (from the package: works offline)."""
    app.mount("/ui", StaticFiles(directory=STATIC), name="ui")


@router.get("/", include_in_schema=False)
async def page():
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


@router.get("/favicon.ico", include_in_schema=False)
async def favicon():
    return RedirectResponse("/ui/favicon.svg")


if TYPE_CHECKING:
    PlanPrecision = str
else:  # an enum in the OpenAPI schema, from the one list of precisions
    PlanPrecision = Literal[tuple(p for p in PRECISIONS if p != "auto")]


class PlanRequest(BaseModel):
    model: str = Field("tiny.en", max_length=64, description="A catalog model.")
    precision: PlanPrecision | None = Field(None, description="One precision (default: the server's effective one).")
    batch: int = Field(1, ge=1, le=16, description="Windows decoded at once.")


class PlanJob:
    """At most one quick plan at a time, and the last result."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.started_at: float | None = None
        self.last: dict | None = None


def _job(request: Request) -> PlanJob:
    state = request.app.state
    if getattr(state, "plan_job", None) is None:
        state.plan_job = PlanJob()
    return state.plan_job


@router.get("/plan", tags=["page"], responses=documented(401))
async def plan_results(request: Request):
    """The committed plan measurements and charts, and the last quick plan on this server."""
    job = _job(request)
    try:
        measured = json.loads(await asyncio.to_thread((MEASURED / "plan_cpu.json").read_text))
    except (OSError, ValueError):
        measured = None
    charts = [{"url": f"/ui/measured/{name}", "title": title} for name, title in CHARTS.items()
              if (MEASURED / name).is_file()]
    running = None if job.started_at is None else round(time.monotonic() - job.started_at, 1)
    return {"measured": measured, "charts": charts, "running_s": running, "last": job.last,
            "timeout_s": runtime_of(request).settings.server.plan_timeout}


@router.post("/plan", tags=["page"], responses=documented(400, 401, 404, 409, 502, 504))
async def quick_plan(request: Request, body: PlanRequest):
    """Measure one model at one precision and batch on this machine (a fresh process)."""
    from leanspeech.models.catalog import CATALOG
    from leanspeech.models.store import check_model_name

    runtime = runtime_of(request)
    settings = runtime.settings
    check_model_name(body.model)
    if body.model not in CATALOG:
        raise UnknownModelError(body.model, CATALOG)
    precision = body.precision or stt_resolution(runtime).get("precision") or ""
    if precision not in PRECISIONS or precision == "auto":
        raise InvalidOptionError(f"unknown precision {precision!r} (valid: {', '.join(PRECISIONS[1:])})",
                                 "precision")
    job = _job(request)
    if job.lock.locked():
        raise HTTPError("busy", f"a quick plan has been running for {time.monotonic() - (job.started_at or 0):.0f} s;"
                        " one at a time", "model")
    async with job.lock:
        job.started_at = time.monotonic()
        try:
            report = await _run_plan(body.model, precision, body.batch, settings)
        finally:
            job.started_at = None
        job.last = {**report, "finished_at": time.time()}
        return job.last


async def _run_plan(model: str, precision: str, batch: int, settings) -> dict:
    cmd = [sys.executable, "-m", "leanspeech", "plan", "--json", "--models", model, "--precisions", precision,
           "--batch-sizes", str(batch), "--device", settings.stt.device if settings.stt.device != "auto" else "cpu"]
    if settings.memory.budget:
        cmd += ["--budget", str(settings.memory.budget)]
    env = {**os.environ, "LEANSPEECH_MODEL_DIR": str(settings.model_dir)}
    if not settings.server.allow_downloads:  # the child measures models on disk, never fetches one
        env.update(HF_HUB_OFFLINE="1", LEANSPEECH_OFFLINE="true")
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                                                env=env, start_new_session=True)
    timeout = settings.server.plan_timeout
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except (asyncio.TimeoutError, asyncio.CancelledError) as exc:
        os.killpg(proc.pid, signal.SIGKILL)  # the plan's own measuring child too
        await proc.wait()
        if isinstance(exc, asyncio.CancelledError):
            raise
        raise HTTPError("timeout", f"the quick plan ran past {timeout:g} s and was stopped "
                        "(LEANSPEECH_SERVER__PLAN_TIMEOUT)") from None
    if proc.returncode != 0:
        lines = [line for line in err.decode(errors="replace").splitlines() if line.strip()]
        why = lines[-1] if lines else f"exit code {proc.returncode}"
        if proc.returncode == 2:  # the CLI's "bad argument" (e.g. a precision this device cannot run)
            raise HTTPError("invalid_option", why, "precision")
        raise HTTPError("job_failed", f"leanspeech plan failed: {why}")
    return json.loads(out)


class TranscriptSegment(BaseModel):
    start: float = Field(ge=0, le=1e7)
    end: float = Field(ge=0, le=1e7)
    text: str = Field(max_length=100_000)
    speaker: str | None = Field(None, max_length=200)


class TranscriptBody(BaseModel):
    """A transcript as ``verbose_json`` gives it; only its segments are read."""

    segments: list[TranscriptSegment] = Field(default_factory=list, max_length=100_000)


MEDIA_TYPES = {"txt": "text/plain", "srt": "application/x-subrip", "vtt": "text/vtt",
               "tsv": "text/tab-separated-values"}


@router.post("/transcript/{fmt}", tags=["page"],
             responses={200: {"description": "The transcript in the format asked for",
                              "content": {media: {} for media in MEDIA_TYPES.values()}},
                        **documented(400, 401, 413)})
async def write_transcript(fmt: Literal["txt", "srt", "vtt", "tsv"], body: TranscriptBody) -> PlainTextResponse:
    """The segments of a transcript in a subtitle or text format, as ``response_format`` writes it."""
    from leanspeech.stt.formats import pieces
    from leanspeech.stt.result import Segment

    segments = [Segment(i + 1, s.start, s.end, s.text, speaker=s.speaker) for i, s in enumerate(body.segments)]
    return PlainTextResponse("".join(pieces(segments, fmt)), media_type=MEDIA_TYPES[fmt])
