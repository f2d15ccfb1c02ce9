"""ASGI middleware: request-size limit (without reading an oversized body) and the API key."""

from __future__ import annotations

import hmac
import json

from leanspeech.memory import format_bytes


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
    """``Authorization: Bearer <key>`` on every route but ``GET /health`` and the page's files.

    The check runs on the path that is served (after the live port's rewrite), and every
    WebSocket needs the key whatever its path. WebSockets, which browsers cannot give
    headers, may instead offer the key as a subprotocol: ``openai-insecure-api-key.<key>``
    (OpenAI's Realtime convention) or ``leanspeech.key.<base64url of the key>`` (any key,
    and what the page sends), beside the protocol they speak; or, for older clients,
    ``?token=<key>`` (the access log never shows it: ``logs.RedactTokens``).

    ``scope["state"]["authorized"]`` tells the routes whether the caller gave the key (on the
    open paths too: /health shows its details only then)."""

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
            token = parse_qs(scope.get("query_string", b"").decode(errors="replace")).get("token", [""])[0]
            return self._match(token.encode())
        return False

    def _open(self, scope) -> bool:
        path = scope["path"]
        return (scope["type"] == "http" and scope["method"] in ("GET", "HEAD")
                and (path in self.OPEN or path.startswith(self.OPEN_PREFIXES)))

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        authorized = self._ok(scope)
        scope.setdefault("state", {})["authorized"] = authorized
        if authorized or self._open(scope):
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            return await _refuse_websocket(receive, send, "invalid or missing API key")
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


async def _refuse_websocket(receive, send, reason: str) -> None:
    """Close a WebSocket before accepting it (the client sees HTTP 403)."""
    await receive()  # the connect message
    await send({"type": "websocket.close", "code": 1008, "reason": reason[:120]})


class HostGuardMiddleware:
    """Only the Host names the server answers to (``allowed``; None: any), and WebSocket
    Origins of the server itself or of ``origins`` (the CORS list).

    Bound to loopback, a server answers only to loopback names, so a web page that rebinds
    its own DNS name to 127.0.0.1 cannot reach it; and a page from another origin cannot
    open a WebSocket to it (browsers send Origin on every WebSocket handshake; other
    clients send none and are not checked)."""

    def __init__(self, app, allowed: list[str] | None, origins: list[str]):
        self.app = app
        self.allowed = None if allowed is None or "*" in allowed else {h.lower() for h in allowed}
        self.origins = {o.rstrip("/").lower() for o in origins}

    def _host_ok(self, host: str) -> bool:
        return self.allowed is None or _hostname(host) in self.allowed

    def _origin_ok(self, origin: str, host: str) -> bool:
        if "*" in self.origins or origin.rstrip("/").lower() in self.origins:
            return True
        from urllib.parse import urlsplit

        return urlsplit(origin).netloc.lower() == host.lower()

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        host = headers.get(b"host", b"").decode("latin-1")
        if not self._host_ok(host):
            if scope["type"] == "websocket":
                return await _refuse_websocket(receive, send, "this Host is not served here")
            return await _send_json(send, 400, {"error": {
                "message": f"Host {host[:80]!r} is not served here (LEANSPEECH_SERVER__ALLOWED_HOSTS)",
                "type": "invalid_request_error", "param": None, "code": "invalid_host"}})
        origin = headers.get(b"origin")
        if scope["type"] == "websocket" and origin is not None and not self._origin_ok(origin.decode("latin-1"), host):
            return await _refuse_websocket(receive, send, "cross-origin WebSocket refused "
                                           "(LEANSPEECH_SERVER__CORS_ORIGINS)")
        return await self.app(scope, receive, send)


def _hostname(host: str) -> str:
    """``host[:port]`` or ``[v6]:port`` -> the name alone, lower case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host[1:]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


LOOPBACK_NAMES = ["localhost", "127.0.0.1", "::1"]


def allowed_hosts(bind_host: str, configured: list[str]) -> list[str] | None:
    """The Host names to answer to: the configured ones; else loopback names on a loopback
    bind (and any 127.x address, the bind's own); else any (None)."""
    from leanspeech.config import is_loopback

    if configured:
        return configured
    if is_loopback(bind_host):
        return [*LOOPBACK_NAMES, bind_host.strip("[]").lower()]
    return None


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
