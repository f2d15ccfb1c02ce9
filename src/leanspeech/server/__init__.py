"""The HTTP (and WebSocket) server: a thin adapter over the core."""

from leanspeech.server.app import create_app

__all__ = ["create_app"]
