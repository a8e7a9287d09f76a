"""The scripts a shop embeds: the widget (``/widget.js``) and the service worker (``/sw.js``).

Both are plain files: ``widget/dist/pushcart.min.js`` (the minified build of
``widget/pushcart.js``, ``make widget``; committed, so serving needs no Node.js; beside it
``pushcart-onsite.min.js``, the on-site messages' script served as ``/onsite.js``) and
``service_worker/sw.js``. ``sw.js`` gets the service's
``PUBLIC_URL`` written in when served, because a script loaded with ``importScripts`` cannot
tell where it came from.
"""
from __future__ import annotations

import json
from pathlib import Path

from flask import Blueprint, Response, current_app, request

ROOT = Path(__file__).resolve().parent.parent.parent
WIDGET_FILE = ROOT / "widget" / "dist" / "pushcart.min.js"  # built from widget/pushcart.js
ONSITE_FILE = ROOT / "widget" / "dist" / "pushcart-onsite.min.js"  # built from widget/onsite.js
WORKER_FILE = ROOT / "service_worker" / "sw.js"
BASE_PLACEHOLDER = '"__PUSHCART_PUBLIC_URL__"'
MAX_AGE = 300  # short: a fixed widget reaches every shop within minutes

bp = Blueprint("assets", __name__)


def _script(source: str) -> Response:
    response = Response(source, mimetype="text/javascript")
    response.headers["Cache-Control"] = f"public, max-age={MAX_AGE}"
    response.headers["X-Content-Type-Options"] = "nosniff"
    # Shops load these from their own origins; the browser needs no CORS for a classic
    # script, but a shop that adds crossorigin="anonymous" (for error details) may.
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.add_etag()
    return response.make_conditional(request)


@bp.get("/widget.js")
def widget() -> Response:
    """The widget a shop embeds with ``<script src=".../widget.js" data-shop="KEY" async>``."""
    return _script(WIDGET_FILE.read_text(encoding="utf-8"))


@bp.get("/onsite.js")
def onsite() -> Response:
    """The on-site messages' script, which the widget loads where the shop's config names it."""
    return _script(ONSITE_FILE.read_text(encoding="utf-8"))


@bp.get("/sw.js")
def service_worker() -> Response:
    """The service worker code the shop's ``/pushcart-sw.js`` imports."""
    source = WORKER_FILE.read_text(encoding="utf-8")
    return _script(source.replace(BASE_PLACEHOLDER, json.dumps(current_app.config["PUBLIC_URL"]), 1))
