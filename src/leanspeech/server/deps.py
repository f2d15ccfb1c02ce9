"""What routes take from the app: the runtime and the metrics."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from leanspeech.runtime import Runtime
from leanspeech.server.metrics import Metrics


def runtime_of(conn: HTTPConnection) -> Runtime:
    """The app's runtime (``create_app``), from a request or a WebSocket."""
    return conn.app.state.runtime


def metrics_of(conn: HTTPConnection) -> Metrics:
    return conn.app.state.metrics
