"""``leanspeech serve --ray``: the same FastAPI app (``create_app``) as a Ray Serve deployment.

Every replica builds its own app in its own process (``serve.ingress`` with a builder, run on
the replica), so each has its own runtime: model manager, memory budget, TTL and batcher. The
budget is per replica: on a node running N replicas, size it as (the node's memory minus
Ray's own) / N. Every HTTP response carries ``X-Leanspeech-Replica`` (the replica that served
it). Ray Serve's HTTP proxy carries the OpenAI routes, the WebSocket routes (``/v1/live``,
``/v1/realtime``), the page and ``/metrics`` (per replica: a scrape reaches one replica).
The WhisperLive port and the Wyoming TCP ports are not opened by replicas (several replicas
on a node would fight for them, and Ray's proxy carries HTTP only): clients use
``ws://HOST:PORT/v1/live``.

Ray is imported here only; the core never imports it (``pip install 'leanspeech[ray]'``).
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from leanspeech.config import Settings
from leanspeech.errors import OptionalDependencyError

logger = logging.getLogger(__name__)
APP_NAME = "leanspeech"
REPLICA_HEADER = b"x-leanspeech-replica"


def _ray() -> Any:
    try:
        import ray
        from ray import serve  # noqa: F401
    except ImportError:
        raise OptionalDependencyError("ray[serve]", "ray", "serving with Ray (--ray)") from None
    return ray


def replica_settings(settings: Settings) -> Settings:
    """A replica's settings: no WhisperLive or Wyoming port of its own (see the module doc)."""
    return settings.model_copy(update={
        "live": settings.live.model_copy(update={"port": -1}),
        "wyoming": settings.wyoming.model_copy(update={"stt_port": -1, "tts_port": -1}),
    })


class ReplicaHeader:
    """ASGI middleware: ``X-Leanspeech-Replica: <id>`` on every HTTP response."""

    def __init__(self, app: Any, replica: str):
        self.app = app
        self.replica = replica.encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def tagged(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (REPLICA_HEADER, self.replica)]}
            await send(message)

        return await self.app(scope, receive, tagged)


def _replica_id() -> str:
    from ray import serve

    ctx = serve.get_replica_context()
    rid = getattr(ctx, "replica_id", None)
    return str(getattr(rid, "unique_id", None) or rid or getattr(ctx, "replica_tag", "replica"))


def build_deployment(settings: Settings) -> Any:
    """The bound Ray Serve application for ``settings`` (``serve.run`` deploys it)."""
    _ray()
    from ray import serve

    r = settings.ray
    per_replica = replica_settings(settings)

    def build_app():  # runs on each replica, in its own process
        from leanspeech.logs import setup_logging
        from leanspeech.server.app import create_app

        setup_logging(per_replica.log_level)
        app = create_app(per_replica)
        app.add_middleware(ReplicaHeader, replica=_replica_id())
        return app

    options: dict[str, Any] = {
        "name": APP_NAME,
        "ray_actor_options": {"num_cpus": r.cpus_per_replica, "num_gpus": r.gpus_per_replica},
        "max_ongoing_requests": r.max_ongoing_requests,
        "graceful_shutdown_timeout_s": r.graceful_shutdown_s,
        "health_check_period_s": 5,
    }
    if r.min_replicas is not None or r.max_replicas is not None:
        low = r.min_replicas if r.min_replicas is not None else 1
        high = r.max_replicas if r.max_replicas is not None else max(low, 1)
        if high < low:
            from leanspeech.errors import InvalidOptionError

            raise InvalidOptionError(f"max_replicas ({high}) is below min_replicas ({low})", "max_replicas")
        options["autoscaling_config"] = {"min_replicas": low, "max_replicas": high,
                                         "target_ongoing_requests": r.target_ongoing_requests}
    else:
        options["num_replicas"] = r.replicas

    @serve.ingress(build_app)
    class Leanspeech:
        pass

    return serve.deployment(**options)(Leanspeech).bind()


def deploy(settings: Settings) -> None:
    """Deploy on the connected Ray cluster, Serve's proxy on ``server.host:server.port``."""
    from ray import serve

    serve.start(http_options={"host": settings.server.host, "port": settings.server.port})
    serve.run(build_deployment(settings), name=APP_NAME, route_prefix="/", blocking=False)


def run_ray_server(settings: Settings) -> None:
    """``leanspeech serve --ray``: join ``ray.address`` (or start a local cluster), deploy, and
    serve until SIGINT or SIGTERM; then Serve drains in-flight requests and stops."""
    ray = _ray()
    from ray import serve

    address = settings.ray.address
    ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING)
    logger.info("Ray cluster: %s (%s)", ray.get_runtime_context().gcs_address, "joined" if address else "local")
    deploy(settings)
    logger.info("leanspeech on Ray Serve: http://%s:%d/ (%s)", settings.server.host, settings.server.port,
                _describe(settings))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    logger.info("stopping: draining in-flight requests")
    serve.delete(APP_NAME)
    serve.shutdown()
    ray.shutdown()


def _describe(settings: Settings) -> str:
    r = settings.ray
    if r.min_replicas is not None or r.max_replicas is not None:
        return f"{r.min_replicas or 1}-{r.max_replicas} replicas, target {r.target_ongoing_requests:g} in flight"
    return f"{r.replicas} replica{'s' if r.replicas != 1 else ''}"
