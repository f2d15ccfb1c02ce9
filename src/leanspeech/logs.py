"""Logging set-up for the CLI and the server (the library itself never adds handlers)."""

from __future__ import annotations

import logging
import re
import sys

_TOKEN = re.compile(r"((?:^|[?&;])(?:token|api_key|key)=)[^&\s\"']+", re.IGNORECASE)


class RedactTokens(logging.Filter):
    """Replaces ``?token=<key>`` (and ``api_key=``, ``key=``) in every logged line with
    ``token=***``: uvicorn logs each request's and WebSocket's URL with its query string."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "=" in message:
            redacted = _TOKEN.sub(r"\1***", message)
            if redacted != message:
                record.msg, record.args = redacted, None
        return True


def setup_logging(level: str = "info") -> None:
    root = logging.getLogger()
    if getattr(root, "_leanspeech_configured", False):
        root.setLevel(level.upper())
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    handler.addFilter(RedactTokens())
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("faster_whisper").setLevel(max(logging.WARNING, root.level))
    root._leanspeech_configured = True  # type: ignore[attr-defined]
