"""Run the app on uvicorn: the HTTP port and, unless turned off, the WhisperLive port.

One uvicorn server listens on both sockets, so both share one event loop, one lifespan and
one set of loaded models; ``LivePortMiddleware`` sends WebSockets on the live port to the
live route.
"""

from __future__ import annotations

import logging
import socket

from leanspeech.config import Settings

logger = logging.getLogger(__name__)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


#: WebSocket messages read ahead of the handler, per connection (uvicorn's default is 32).
WS_MAX_QUEUE = 4


def ws_message_limit(settings: Settings) -> int:
    """Largest WebSocket message: ``live.max_message_bytes``, or a Realtime append's base64 if larger."""
    from leanspeech.memory import parse_bytes

    append = (parse_bytes(settings.realtime.max_append_bytes) or 0) * 4 // 3 + 2**16
    return max(parse_bytes(settings.live.max_message_bytes) or 2**20, append)


def run_server(settings: Settings) -> None:
    import uvicorn

    from leanspeech.server.app import create_app
    from leanspeech.tuning import configure
    from leanspeech.tuning.malloc import mmap_threshold

    # Before uvicorn and the worker threads start: arenas are created per thread.
    configure(malloc_arenas=settings.memory.malloc_arenas,
              malloc_mmap_threshold=mmap_threshold(settings.memory.malloc_mmap_threshold, server=True),
              blas_threads=settings.stt.blas_threads)
    srv, live = settings.server, settings.live
    try:
        sockets = [_bind(srv.host, srv.port)]
    except OSError as exc:
        raise SystemExit(f"error: cannot listen on {srv.host}:{srv.port}: {exc.strerror} "
                         "(choose another with --port or LEANSPEECH_SERVER__PORT)") from None
    if live.port > 0 and live.port != srv.port:
        try:
            sockets.append(_bind(srv.host, live.port))
            logger.info(
                "WhisperLive WebSocket on ws://%s:%d (and ws://%s:%d/v1/live)", srv.host, live.port, srv.host, srv.port
            )
        except OSError as exc:
            # The HTTP server is the main job; live clients can still use /v1/live.
            logger.error(
                "cannot listen on the live port %s:%d (%s); WhisperLive clients can use ws://%s:%d/v1/live. "
                "Set LEANSPEECH_LIVE__PORT to another port, or -1 to not open one.",
                srv.host,
                live.port,
                exc.strerror,
                srv.host,
                srv.port,
            )
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host=srv.host,
            port=srv.port,
            log_config=None,
            timeout_graceful_shutdown=30,
            # every WebSocket message bounded (a Realtime append carries base64 audio: room for the
            # largest one allowed), and few held per connection: at most ws_max_queue of them
            ws_max_size=ws_message_limit(settings),
            ws_max_queue=WS_MAX_QUEUE,
            limit_concurrency=1024,  # connections at once; more get 503 (each holds a socket and buffers)
            timeout_keep_alive=5,
            lifespan="on",
        )
    )
    server.run(sockets=sockets)
