"""Transport-level hardening: the client address behind proxies and the security headers.

- ``PROXY_FIX_HOPS=n`` trusts the last ``n`` entries of ``X-Forwarded-For`` / ``X-Forwarded-Proto``
  (werkzeug's ProxyFix); with the default 0 those headers are ignored, so a client cannot
  choose the address the rate limits count against.
- Every response gets ``X-Content-Type-Options: nosniff`` and a ``Referrer-Policy``; HTML pages
  get a Content-Security-Policy without ``'unsafe-inline'`` (scripts and styles only from our
  own origin, no framing) and ``X-Frame-Options``; merchant API and dashboard answers are not
  cached. JavaScript and JSON get no CSP: a CSP on a service worker script would bind the
  shop's worker, and JSON is never rendered.
- A body sent without ``Content-Length`` (chunked) is held to ``MAX_CONTENT_LENGTH`` too:
  werkzeug stops reading such a stream at the limit without an error, so a longer body would
  arrive cut short; it gets 413 instead.
"""
from __future__ import annotations

from flask import Flask, Request, Response, current_app, request
from flask.sessions import SecureCookieSessionInterface, SessionMixin
from werkzeug.middleware.proxy_fix import ProxyFix

from server.core.errors import JSON_PREFIXES, TooLarge

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    # Product images in the dashboard come from the shops' own hosts.
    "img-src 'self' data: https:",
    "font-src 'self'",
    "connect-src 'self'",
    "worker-src 'self'",
    "manifest-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))
REFERRER_POLICY = "same-origin"
NO_STORE_PREFIXES = ("/v1/admin", "/admin")
HSTS = "max-age=31536000"


def init_app(app: Flask) -> None:
    """Install ProxyFix (when configured) and the security-headers hook."""
    hops = int(app.config.get("PROXY_FIX_HOPS") or 0)
    if hops > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    https = app.config["PUBLIC_URL"].startswith("https://")
    app.session_interface = PageSessionInterface()
    app.before_request(refuse_cut_streams)

    @app.after_request
    def _security_headers(response: Response) -> Response:
        return add_security_headers(response, https=https)


class PageSessionInterface(SecureCookieSessionInterface):
    """The signed session cookie, for the dashboard's pages only.

    The JSON APIs never read or set it (they go by public key, token or signature), so their
    requests skip the cookie's parsing and signing: a null session, never saved.
    """

    def open_session(self, app: Flask, request: Request) -> SessionMixin | None:
        if request.path.startswith(JSON_PREFIXES):
            return self.make_null_session(app)
        return super().open_session(app, request)


def refuse_cut_streams() -> None:
    """413 for a body without ``Content-Length`` that reaches ``MAX_CONTENT_LENGTH``."""
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if not limit or request.content_length is not None or request.method in ("GET", "HEAD", "OPTIONS"):
        return
    if len(request.get_data(cache=True)) >= limit:
        raise TooLarge(f"the body is larger than {limit} bytes")


def add_security_headers(response: Response, *, https: bool) -> Response:
    """Set the headers described in the module docstring (a view's own values win)."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", REFERRER_POLICY)
    if response.mimetype == "text/html":
        headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        headers.setdefault("X-Frame-Options", "DENY")
    if request.path.startswith(NO_STORE_PREFIXES):
        headers.setdefault("Cache-Control", "no-store")
    if https:
        headers.setdefault("Strict-Transport-Security", HSTS)
    return response
