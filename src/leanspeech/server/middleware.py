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
    """``Authorization: Bearer <key>`` on every route but /health and the page's files.

    WebSockets, which browsers cannot give headers, may instead offer the key as a
    subprotocol: ``openai-insecure-api-key.<key>`` (OpenAI's Realtime convention) or
    ``leanspeech.key.<base64url of the key>`` (any key, and what the page sends), beside the
    protocol they speak; or, for older clients, ``?token=<key>`` in the URL."""

    OPEN = ("/health", "/", "/favicon.ico")
    OPEN_PREFIXES = ("/ui/",)

    def __init__(self, app, key: str):
        self.app = app
        self.key = key.encode()

    def _match(self, candidate: bytes) -> bool:
        return hmac.compare_digest(candidate, self.key)

    def _ok(self, scope) -> bool:
        headers = dict(scope.get("headers") or [])
        auth = headers.get(b"authorization", b"")
        if auth[:7].lower() == b"bearer " and self._match(auth[7:].strip()):
            return True
        if scope["type"] == "websocket":
            from urllib.parse import parse_qs

            if any(self._match(k) for k in subprotocol_keys(scope)):
                return True
            token = parse_qs(scope.get("query_string", b"").decode()).get("token", [""])[0]
            return self._match(token.encode())
        return False

    def _open(self, path: str) -> bool:
        return path in self.OPEN or path.startswith(self.OPEN_PREFIXES)

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket") or self._open(scope["path"]) or self._ok(scope):
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


KEY_PROTOCOLS = ("openai-insecure-api-key.", "leanspeech.key.")


def subprotocol_keys(scope) -> list[bytes]:
    """The API keys a WebSocket handshake offers as subprotocols (see ``ApiKeyMiddleware``)."""
    import base64
    import binascii

    keys = []
    for proto in scope.get("subprotocols") or ():
        if proto.startswith(KEY_PROTOCOLS[0]):
            keys.append(proto[len(KEY_PROTOCOLS[0]):].encode())
        elif proto.startswith(KEY_PROTOCOLS[1]):
            raw = proto[len(KEY_PROTOCOLS[1]):]
            try:
                keys.append(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
            except (binascii.Error, ValueError):
                pass
    return keys


def chosen_subprotocol(scope, preferred: tuple[str, ...]) -> str | None:
    """The subprotocol to accept a WebSocket with: the first offered one in ``preferred``,
    else the first offered that carries no key (a browser that offered subprotocols drops
    a connection accepted with none), else none."""
    offered = [p for p in (scope.get("subprotocols") or ()) if not p.startswith(KEY_PROTOCOLS)]
    for proto in preferred:
        if proto in offered:
            return proto
    return offered[0] if offered else None
