"""``create_app(settings)``: the FastAPI application, a thin adapter over the ``Runtime``.

Routes parse their protocol, call the runtime and map its errors (``errors.py``); the
runtime owns the models, batching and memory. ``app.state.runtime`` is the runtime and
``app.state.metrics`` the Prometheus metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware

from leanspeech.config import Settings
from leanspeech.memory import parse_bytes
from leanspeech.runtime import Observers, Runtime
from leanspeech.server import (
    diarization_routes,
    errors,
    models_routes,
    monitoring,
    openai_stt,
    openai_tts,
    page_routes,
    realtime_ws,
    whisperlive_ws,
    wyoming_tcp,
)
from leanspeech.server.metrics import Metrics
from leanspeech.server.middleware import ApiKeyMiddleware, BodyLimitMiddleware, HostGuardMiddleware, allowed_hosts

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None, preload: bool = True) -> FastAPI:
    """The app for ``settings`` (or for a ``runtime`` built elsewhere, e.g. with fake
    engines in tests). ``preload``: load the default model at start-up, so that /health
    turns 200 when it is loaded."""
    metrics = Metrics()
    if runtime is None:
        settings = settings or Settings()
        runtime = Runtime(settings, observers=Observers(batch=metrics.observe_batch, audio=metrics.observe_audio,
                                                        live_audio=metrics.observe_live_audio))
    settings = runtime.settings
    metrics.bind(runtime)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if preload:
            threading.Thread(target=runtime.preload, name="leanspeech-preload", daemon=True).start()
        else:
            runtime.ready = True
        housekeeping = asyncio.create_task(runtime.housekeeping())
        wyoming = await wyoming_tcp.start_wyoming(runtime)
        try:
            yield
        finally:  # uvicorn lets in-flight requests finish before this runs
            await wyoming_tcp.stop_wyoming(wyoming)
            housekeeping.cancel()
            await asyncio.to_thread(runtime.close)
            logger.info("Models unloaded; bye")

    app = FastAPI(title="leanspeech", version=_version(), lifespan=lifespan)
    _document(app, settings)
    app.state.runtime = runtime
    app.state.metrics = metrics
    errors.install(app)
    for router in (
        openai_stt.router,
        diarization_routes.router,
        openai_tts.router,
        models_routes.router,
        monitoring.router,
        whisperlive_ws.router,
        realtime_ws.router,
    ):
        app.include_router(router)
    if settings.server.page:
        app.include_router(page_routes.router)
        page_routes.mount_page(app)

    @app.middleware("http")
    async def observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        start = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = request.scope.get("route")
            path = getattr(route, "path", "unmatched")
            metrics.observe_request(path, request.method, status, time.perf_counter() - start)  # labels bounded there
            if path.startswith("/v1/audio/") and request.method == "POST":
                runtime.count_request("openai")

    # Outermost last: the Host and Origin guard, CORS (a preflight is answered before the key
    # check), the live port's rewrite, then the key on the path that is served, then the body limit.
    app.add_middleware(
        BodyLimitMiddleware,
        limit=parse_bytes(settings.server.max_upload_size) or 2**62,
        label=settings.server.max_upload_size,
    )
    if settings.server.api_key is not None:
        app.add_middleware(ApiKeyMiddleware, key=settings.server.api_key.get_secret_value())
    if settings.live.port > 0:
        app.add_middleware(whisperlive_ws.LivePortMiddleware, port=settings.live.port)
    if settings.server.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.server.cors_origins, allow_methods=["*"], allow_headers=["*"]
        )
    app.add_middleware(HostGuardMiddleware, allowed=allowed_hosts(settings.server.host, settings.server.allowed_hosts),
                       origins=settings.server.cors_origins)
    return app


def _document(app: FastAPI, settings: Settings) -> None:
    """The OpenAPI document as the server behaves: validation errors are 400 (OpenAI's
    error shape), not FastAPI's 422, and the input limit is the configured one."""
    make = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = make()
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    operation.get("responses", {}).pop("422", None)
            components = schema.get("components", {}).get("schemas", {})
            for unused in ("HTTPValidationError", "ValidationError"):
                components.pop(unused, None)
            speech = components.get("SpeechRequest", {}).get("properties", {}).get("input")
            if speech is not None:
                speech["maxLength"] = settings.tts.max_total_length
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _version() -> str:
    from leanspeech import __version__

    return __version__
