"""Every error as OpenAI's JSON shape, ``{"error": {"message", "type", "param", "code"}}``,
with the mapping from leanspeech's exceptions to HTTP statuses in this one place."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from leanspeech.errors import LeanspeechError

logger = logging.getLogger(__name__)

# exception kind -> (status, OpenAI error type)
STATUS: dict[str, tuple[int, str]] = {
    "invalid_audio": (400, "invalid_request_error"),
    "empty_audio": (400, "invalid_request_error"),
    "file_not_found": (400, "invalid_request_error"),
    "unsupported_media": (415, "invalid_request_error"),
    "model_not_found": (404, "invalid_request_error"),
    "voice_not_found": (404, "invalid_request_error"),
    "invalid_model_name": (400, "invalid_request_error"),
    "model_not_available": (503, "server_error"),
    "invalid_precision": (400, "invalid_request_error"),
    "invalid_device": (400, "invalid_request_error"),
    "precision_unsupported": (400, "invalid_request_error"),
    "invalid_option": (400, "invalid_request_error"),
    "memory_budget_exceeded": (503, "server_error"),
    "missing_dependency": (501, "server_error"),
    "queue_full": (429, "rate_limit_error"),
    "too_many_requests": (429, "rate_limit_error"),
    "audio_too_long": (413, "invalid_request_error"),
    "buffer_full": (413, "invalid_request_error"),
    "text_too_long": (400, "invalid_request_error"),
    "leanspeech_error": (400, "invalid_request_error"),
    "disk_full": (507, "server_error"),
    "export_exists": (409, "invalid_request_error"),
    "live_error": (502, "server_error"),
    "corrupt_model": (503, "server_error"),
    "payload_too_large": (413, "invalid_request_error"),
    "unauthorized": (401, "invalid_request_error"),
    "busy": (409, "invalid_request_error"),
    "timeout": (504, "server_error"),
    "job_failed": (502, "server_error"),  # a child process (the quick plan) failed: not this server's fault
}


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """OpenAI's error shape, for every status below 200's."""

    error: ErrorDetail


WHY = {
    400: "Invalid field, option, language or audio (the message says which)",
    401: "Missing or wrong API key (when the server has one)",
    404: "Unknown model or voice",
    405: "Method not allowed (the Allow header lists the allowed ones)",
    409: "The same kind of job is already running (one at a time)",
    413: "Upload larger than the limit (LEANSPEECH_SERVER__MAX_UPLOAD_SIZE), or audio longer than "
         "LEANSPEECH_SERVER__MAX_AUDIO_SECONDS",
    415: "Not an audio upload",
    429: "Too many requests in flight, or the decode queue is full; Retry-After says when to try again",
    500: "Internal error (a bug: every error leanspeech raises on purpose has its own status)",
    502: "A worker process (the quick plan) failed",
    507: "The disk is full",
    501: "An optional dependency is not installed",
    503: "Over the memory budget, the model is not available, or still loading",
    504: "The job ran past its time limit and was stopped",
}


def documented(*statuses: int) -> dict[int | str, dict]:
    """``responses=`` for a route: each status with the error schema and why it happens."""
    return {status: {"model": ErrorResponse, "description": WHY[status]} for status in statuses}


class HTTPError(LeanspeechError):
    """An error raised by a route with an explicit kind (and so status)."""

    def __init__(self, kind: str, message: str, param: str | None = None):
        self.kind = kind
        self.param = param
        super().__init__(message)


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def error_response(
    status: int, message: str, type_: str = "invalid_request_error", param=None, code=None, headers=None
):
    return JSONResponse(error_body(message, type_, param, code), status_code=status, headers=headers)


def for_exception(exc: LeanspeechError) -> JSONResponse:
    status, type_ = STATUS.get(exc.kind, (500, "server_error"))
    headers = None
    if status == 429:
        headers = {"Retry-After": str(max(1, round(getattr(exc, "retry_after", 1))))}
    return error_response(status, str(exc), type_, exc.param, exc.kind, headers)


def _allowed_methods(request: Request) -> list[str]:
    from starlette.routing import Match

    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches({**request.scope, "method": "GET", "type": "http"})
        if match != Match.NONE and getattr(route, "methods", None):
            methods.update(route.methods)
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


def install(app: FastAPI) -> None:
    @app.exception_handler(LeanspeechError)
    async def _domain(request: Request, exc: LeanspeechError):
        return for_exception(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        param = ".".join(loc) or None
        message = f"{param}: {first.get('msg', 'invalid value')}" if param else first.get("msg", "invalid request")
        if first.get("type") == "missing":  # a required field is absent
            return error_response(400, message, "invalid_request_error", param, "invalid_value")
        if "input" in first:
            message += f" (got {str(first['input'])[:60]!r})"
        return error_response(400, message, "invalid_request_error", param, "invalid_option")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        message = exc.detail if isinstance(exc.detail, str) else "error"
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route {request.method} {request.url.path}"
        if exc.status_code == 405:  # Starlette names the first matching route's methods; list them all
            allowed = _allowed_methods(request)
            headers["Allow"] = ", ".join(allowed)
            message = f"{request.method} is not allowed on {request.url.path} (allowed: {', '.join(allowed)})"
        return error_response(exc.status_code, message, "invalid_request_error", None, None, headers or None)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, f"internal error: {type(exc).__name__}", "server_error", None, "internal_error")
