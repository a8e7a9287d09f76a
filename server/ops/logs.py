"""Structured logs: one JSON object per line (``LOG_FORMAT=json``), a request id on each line.

Every request gets an id (``X-Request-ID`` from a trusted proxy when it is a short token,
otherwise a fresh one), echoed in the response and added to every log line written while
the request runs. Access-log lines (werkzeug's development server, gunicorn's access log)
carry the client address only truncated (``203.0.113.0``, ``2001:db8:1::``): addresses are
never stored whole. What the code logs is ids, never endpoints, keys, secrets or tokens.
"""
from __future__ import annotations

import ipaddress
import json
import logging
import random
import re
from datetime import datetime, timezone
from typing import Any

from flask import Flask, Response, g, has_request_context, request


REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
ACCESS_LOGGERS = ("werkzeug", "gunicorn.access")
_FORMATTER_MARK = "_pushcart_json"


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record (``-`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


class AddressMaskFilter(logging.Filter):
    """Truncates client addresses in access-log records (message start and arguments)."""

    def filter(self, record: logging.LogRecord) -> bool:
        # werkzeug puts the address at the start of the message; gunicorn passes it as an argument.
        if isinstance(record.msg, str):
            head, sep, rest = record.msg.partition(" ")
            masked = anonymize_ip(head) if sep else None
            if masked is not None:
                record.msg = masked + sep + rest
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(_mask(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _mask(v) for k, v in record.args.items()}
        return True


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        masked = anonymize_ip(value)
        return masked if masked is not None else value
    return value


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def init_app(app: Flask) -> None:
    """Configure the root handlers' format and filters, and the per-request id."""
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, RequestIdFilter) for f in handler.filters):
            handler.addFilter(RequestIdFilter())
        if app.config.get("LOG_FORMAT") == "json" and not getattr(handler.formatter, _FORMATTER_MARK, False):
            formatter = JsonFormatter()
            setattr(formatter, _FORMATTER_MARK, True)
            handler.setFormatter(formatter)
    for name in ACCESS_LOGGERS:
        access = logging.getLogger(name)
        if not any(isinstance(f, AddressMaskFilter) for f in access.filters):
            access.addFilter(AddressMaskFilter())

    @app.before_request
    def _request_id() -> None:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        # An id only tells one request's lines from another's: it need not be unguessable, and
        # ``random`` (reseeded in each forked worker) costs no system call, where ``secrets`` does.
        g.request_id = incoming if _REQUEST_ID_RE.match(incoming) else f"{random.getrandbits(64):016x}"

    @app.after_request
    def _echo_request_id(response: Response) -> Response:
        if "request_id" in g:
            response.headers[REQUEST_ID_HEADER] = g.request_id
        return response


# How much of an address is kept where one must be kept at all: a /24 or a /48 network.
IPV4_PREFIX = 24


IPV6_PREFIX = 48


def anonymize_ip(value: str) -> str | None:
    """``value`` truncated to its /24 (IPv4) or /48 (IPv6) network address; None if not an address."""
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = IPV4_PREFIX if address.version == 4 else IPV6_PREFIX
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)
