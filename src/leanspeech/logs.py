"""Logging set-up for the CLI and the server (the library itself never adds handlers)."""

from __future__ import annotations

import logging
import sys


def setup_logging(level: str = "info") -> None:
    root = logging.getLogger()
    if getattr(root, "_leanspeech_configured", False):
        root.setLevel(level.upper())
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("faster_whisper").setLevel(max(logging.WARNING, root.level))
    root._leanspeech_configured = True  # type: ignore[attr-defined]
