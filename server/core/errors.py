"""One error shape for every JSON API: ``{"error": {"code", "message"}}``."""
from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

JSON_PREFIXES = ("/v1/", "/c/")


class ApiError(Exception):
    """A domain error that maps to an HTTP status and a stable machine code."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, code: str | None = None, status: int | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status:
            self.status = status
        self.headers = headers or {}


class Malformed(ApiError):
    status, code = 400, "malformed"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class NotFound(ApiError):
    status, code = 404, "not_found"


class TooLarge(ApiError):
    status, code = 413, "too_large"


class Invalid(ApiError):
    status, code = 422, "invalid"


class RateLimited(ApiError):
    status, code = 429, "rate_limited"


def error_response(status: int, code: str, message: str, headers: dict[str, Any] | None = None) -> Response:
    """Build the JSON error response."""
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


_HTTP_CODES = {400: "malformed", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type",
               422: "invalid", 429: "rate_limited"}


def wants_json() -> bool:
    """Whether the current request is to a JSON API (as opposed to a page)."""
    return request.path.startswith(JSON_PREFIXES)


def register_error_handlers(app: Flask) -> None:
    """Map domain errors and HTTP errors on API paths to the JSON shape."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response | HTTPException:
        if not wants_json():
            return exc
        status = exc.code or 500
        headers = {}
        retry_after = getattr(exc, "retry_after", None)
        if exc.response is not None and exc.response.headers.get("Retry-After"):
            headers["Retry-After"] = exc.response.headers["Retry-After"]
        elif retry_after:
            headers["Retry-After"] = str(retry_after)
        return error_response(status, _HTTP_CODES.get(status, "error"), exc.description or exc.name, headers)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response | tuple[str, int]:
        log.exception("unhandled error on %s %s", request.method, request.path)
        if wants_json():
            return error_response(500, "internal", "internal error")
        return "Internal error", 500
