"""``create_app(settings)``: the FastAPI application. A thin adapter over the core."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware

from ..config import Settings
from ..memory import parse_bytes
from . import errors, models_routes, monitoring, openai_stt, openai_tts, whisperlive_ws
from .middleware import ApiKeyMiddleware, BodyLimitMiddleware
from .state import ServerState, build_state

logger = logging.getLogger(__name__)


def _preload(state: ServerState) -> None:
    """Load the default model so /health turns 200; the handle is released at once, so
    the idle TTL applies from here."""
    try:
        with state.manager.acquire("stt", state.settings.stt.model, counted=False):
            pass
        state.ready = True
        logger.info("Ready: %s loaded", state.settings.stt.model)
    except Exception as exc:
        state.load_error = str(exc)
        logger.error("Could not load the default model %s: %s", state.settings.stt.model, exc)


async def _reaper(state: ServerState) -> None:
    from ..memory import release_memory

    interval = state.settings.memory.trim_interval
    last_trim, last_work = time.monotonic(), state.metrics.work_seconds
    while True:
        await asyncio.sleep(1.0)
        freed = await asyncio.to_thread(state.manager.reap)
        for record in freed:
            state.metrics.unloads.inc()
            logger.info("TTL unload of %s returned %d bytes of RSS", record["key"], record["rss_freed"])
        # glibc keeps freed pages inside its heap, and with the varying sizes of decode
        # buffers RSS crept up ~6 MB a minute in a 10-minute live session; a periodic trim
        # (only after work, a few ms) kept it flat. See README, "Memory over time".
        work = state.metrics.work_seconds
        if interval and work != last_work and time.monotonic() - last_trim >= interval:
            last_trim, last_work = time.monotonic(), work
            await asyncio.to_thread(release_memory)  # gc first: cycles can hold decode buffers



def create_app(settings: Settings | None = None, *, preload: bool = True) -> FastAPI:
    settings = settings or Settings()
    state = build_state(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        if preload:
            threading.Thread(target=_preload, args=(state,), name="leanspeech-preload", daemon=True).start()
        else:
            state.ready = True
        reaper = asyncio.create_task(_reaper(state))
        try:
            yield
        finally:  # uvicorn lets in-flight requests finish before this runs
            reaper.cancel()
            await asyncio.to_thread(state.manager.close)
            logger.info("Models unloaded; bye")

    app = FastAPI(title="leanspeech", version=_version(), lifespan=lifespan)
    app.state.leanspeech = state
    errors.install(app)
    for router in (openai_stt.router, openai_tts.router, models_routes.router, monitoring.router, whisperlive_ws.router):
        app.include_router(router)

    @app.middleware("http")
    async def observe(request: Request, call_next):
        start = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = request.scope.get("route")
            path = getattr(route, "path", "unmatched")
            state.metrics.observe_request(path, request.method, status, time.perf_counter() - start)

    app.add_middleware(BodyLimitMiddleware, limit=parse_bytes(settings.server.max_upload_size) or 2**62,
                       label=settings.server.max_upload_size)
    if settings.server.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.server.cors_origins, allow_methods=["*"],
                           allow_headers=["*"])
    if settings.live.port > 0:
        app.add_middleware(whisperlive_ws.LivePortMiddleware, port=settings.live.port)
    if settings.server.api_key is not None:
        app.add_middleware(ApiKeyMiddleware, key=settings.server.api_key.get_secret_value())
    return app


def _version() -> str:
    from .. import __version__

    return __version__
