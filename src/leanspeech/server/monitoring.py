"""``/health``, ``/config``, ``/info``, ``/memory`` and ``/metrics``."""

from __future__ import annotations

import asyncio
import time
from importlib.metadata import PackageNotFoundError, version

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from leanspeech.runtime import Runtime
from leanspeech.server.deps import metrics_of, runtime_of
from leanspeech.server.errors import documented

router = APIRouter(tags=["monitoring"])


@router.get("/health", responses={503: {"description": "Still loading the default model, or it failed to load",
                                        "content": {"application/json": {"schema": {
                                            "type": "object", "required": ["status"],
                                            "properties": {"status": {"enum": ["loading", "error"]},
                                                           "error": {"type": "string"}}}}}}})
async def health(request: Request):
    runtime = runtime_of(request)
    if runtime.load_error:  # why, only to a caller with the key (when there is one): it names paths and models
        shown = {"error": runtime.load_error} if request.scope.get("state", {}).get("authorized", True) else {}
        return JSONResponse({"status": "error", **shown}, status_code=503)
    if not runtime.ready:
        return JSONResponse({"status": "loading"}, status_code=503)
    return {"status": "ok", "uptime_s": round(time.time() - runtime.started_at, 1)}


def stt_resolution(state: Runtime) -> dict:
    """Requested and effective device/precision of the default STT model: from the loaded
    model when it is loaded (run-time fallbacks included), else as it would resolve now."""
    for m in state.manager.status():
        if m["kind"] == "stt" and m["name"] == state.settings.stt.model:
            return {
                "loaded": True,
                **{
                    k: m[k]
                    for k in (
                        "requested_device",
                        "requested_precision",
                        "device",
                        "precision",
                        "reason",
                        "fallback",
                        "failures",
                    )
                },
            }
    from leanspeech.precision import resolve

    try:
        res = resolve(state.settings.stt.device, state.settings.stt.precision)
    except Exception as exc:
        return {"loaded": False, "error": str(exc)}
    return {"loaded": False, **res.as_dict()}


def _tts_resolution(state: Runtime) -> dict:
    for m in state.manager.status():
        if m["kind"] == "tts":
            return {
                "voice": m["voice"],
                "loaded": True,
                "requested_precision": m["requested_precision"],
                "precision": m["precision"],
                "reason": m["reason"],
            }
    from leanspeech.tts.synthesizer import resolve_tts_precision

    res = resolve_tts_precision(state.settings.tts.precision)
    return {"voice": state.settings.tts.voice, "loaded": False, **res.as_dict()}


@router.get("/config", responses=documented(401))
async def config(request: Request):
    state = runtime_of(request)
    s = state.settings
    return {
        "settings": s.redacted(),
        "models": {"stt": {"model": s.stt.model, **stt_resolution(state)}, "tts": _tts_resolution(state)},
        "ttl_s": {"stt": s.stt.model_ttl, "tts": s.tts.model_ttl},
        "memory": {"budget": state.manager.budget, "cleanup_interval": s.memory.cleanup_interval},
        "limits": {
            "max_upload_size": s.server.max_upload_size,
            "max_queue": s.server.max_queue,
            "max_batch": s.server.max_batch,
            "batching": s.server.batching,
            "batch_window_ms": s.server.batch_window_ms,
        },
        "strict_precision": s.strict_precision,
    }


@router.get("/info", responses=documented(401))
async def info(request: Request):
    from leanspeech.devices import list_devices
    from leanspeech.precision import supported_precisions

    state = runtime_of(request)
    versions: dict[str, str | None] = {}
    for pkg in ("leanspeech", "ctranslate2", "faster-whisper", "onnxruntime", "piper-tts", "fastapi", "uvicorn"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = None
    return {
        "versions": versions,
        "devices": [{**d.as_dict(), "precisions": list(supported_precisions(d))} for d in list_devices()],
        "models": state.manager.status(),
        "protocols": state.protocols(),
        "uptime_s": round(time.time() - state.started_at, 1),
    }


@router.get("/memory", responses=documented(400, 401))
async def memory(request: Request):
    """Memory now: the process, the system, GPUs, each loaded model and the budget."""
    if "cleanup" in request.query_params:  # a GET changes nothing (a link or a page's <img> could send it)
        from leanspeech.errors import InvalidOptionError

        raise InvalidOptionError("GET /memory only reads; clean up with POST /memory/cleanup", "cleanup")
    return _memory_body(runtime_of(request))


@router.post("/memory/cleanup", responses=documented(401))
async def memory_cleanup(request: Request):
    """Unload every idle model and hand freed heap back to the OS; then the memory reading,
    with what the clean-up returned under ``cleanup``."""
    state = runtime_of(request)
    freed = await asyncio.to_thread(state.manager.cleanup)
    return {**_memory_body(state), "cleanup": freed}


def _memory_body(state: Runtime) -> dict:
    from leanspeech.memory import snapshot

    snap = snapshot()
    return {
        "process": snap["process"],
        "system": snap["system"],
        "gpus": snap["gpus"],
        "torch": snap["torch"],  # torch.cuda allocator figures; null when torch is not loaded
        "models": [
            {
                "name": m["name"],
                "kind": m["kind"],
                "bytes": m["bytes"],
                "load_rss": m["load_rss"],
                "precision": m.get("precision"),
                "refs": m["refs"],
                "idle_s": m["idle_s"],
            }
            for m in state.manager.status()
        ],
        "budget": {"limit": state.manager.budget, "used": state.manager.used(), "headroom": state.manager.headroom()},
        "recent_unloads": state.manager.unloads[-5:],
    }


@router.get("/metrics", response_class=Response, responses={
    200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text format"},
    **documented(401)})
async def metrics(request: Request):
    return Response(metrics_of(request).render(), media_type="text/plain; version=0.0.4; charset=utf-8")
