"""ASGI middleware: request-size limit (without reading an oversized body) and the API key."""

from __future__ import annotations

import hmac
import json

from ..memory import format_bytes


async def _send_json(send, status: int, body: dict, headers: list | None = None) -> None:
    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": payload})


class BodyLimitMiddleware:
    """413 for bodies over ``limit`` bytes. A declared Content-Length over the limit is
    refused before any byte is read; a chunked body is counted as it arrives and cut off at
    the limit, so an oversized upload is never held whole."""

    def __init__(self, app, limit: int, label: str | None = None):
        self.app = app
        self.limit = limit
        self.label = f"{label} ({self.limit} bytes)" if label else format_bytes(limit)

    def _error(self) -> dict:
        return {"error": {"message": f"request body is larger than the upload limit of {self.label} "
                                     f"(LEANSPEECH_SERVER__MAX_UPLOAD_SIZE)",
                          "type": "invalid_request_error", "param": "file", "code": "payload_too_large"}}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            # Say no at once; the connection is closed so the body is never read.
            return await _send_json(send, 413, self._error(), [(b"connection", b"close")])
        seen = 0
        too_large = False
        replaced = False

        async def counted_receive():
            nonlocal seen, too_large
            if too_large:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    # Stop reading here: the app sees a disconnect, never the rest of the body.
                    too_large = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message):
            nonlocal replaced
            if too_large:
                if message["type"] == "http.response.start" and not replaced:
                    replaced = True
                    await _send_json(send, 413, self._error(), [(b"connection", b"close")])
                return  # whatever the app answered to the cut-off body is replaced by the 413
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not too_large:
                raise
        if too_large and not replaced:
            await _send_json(send, 413, self._error(), [(b"connection", b"close")])


class ApiKeyMiddleware:
    """``Authorization: Bearer <key>`` on every route but /health (and ``?token=`` for
    WebSockets, which browsers cannot give headers)."""

    OPEN = ("/health",)

    def __init__(self, app, key: str):
        self.app = app
        self.key = key.encode()

    def _ok(self, scope) -> bool:
        headers = dict(scope.get("headers") or [])
        auth = headers.get(b"authorization", b"")
        if auth[:7].lower() == b"bearer " and hmac.compare_digest(auth[7:].strip(), self.key):
            return True
        if scope["type"] == "websocket":
            from urllib.parse import parse_qs

            token = parse_qs(scope.get("query_string", b"").decode()).get("token", [""])[0]
            return hmac.compare_digest(token.encode(), self.key)
        return False

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket") or scope["path"] in self.OPEN or self._ok(scope):
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            await receive()  # the connect message
            await send({"type": "websocket.close", "code": 1008, "reason": "invalid or missing API key"})
            return
        await _send_json(
            send,
            401,
            {
                "error": {
                    "message": "invalid or missing API key (Authorization: Bearer <key>)",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "invalid_api_key",
                }
            },
            [(b"www-authenticate", b"Bearer")],
        )
