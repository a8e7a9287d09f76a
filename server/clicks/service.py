"""Click tracking: ``/c/{token}`` records a click on a push and names the page to open."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import sqlalchemy as sa
from sqlalchemy import orm

from server.core import fields
from server.core.errors import NotFound
from server.core.models import Click, Push, Shop
from server.core.tokens import read_click_token

log = logging.getLogger(__name__)

UTM_SOURCE = "pushcart"
UTM_MEDIUM = "web_push"


@dataclass(frozen=True)
class ClickResult:
    """A recorded click: where to send the visitor and whether it was the push's first."""

    push_id: int
    target: str
    first: bool


def is_http_url(value: str | None) -> bool:
    """Whether ``value`` is an absolute http(s) URL with a host (the only links we follow or show)."""
    return fields.http_url(value) is not None


def with_utm(url: str, kind: str) -> str:
    """``url`` with ``utm_source/medium/campaign`` set (replacing any already there)."""
    parts = urlsplit(url.strip())
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k not in ("utm_source", "utm_medium", "utm_campaign")]
    query += [("utm_source", UTM_SOURCE), ("utm_medium", UTM_MEDIUM), ("utm_campaign", kind)]
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", urlencode(query), parts.fragment))


def parse_action(raw: str | None) -> int | None:
    """The action button number of ``?a=`` (``1`` or ``2``), or None for anything else."""
    return int(raw) if raw in ("1", "2") else None


def _action_target(push: Push, action: int | None) -> str | None:
    """The stored target of button ``action`` of ``push``, when it has that button."""
    if action is None or not push.actions or len(push.actions) < action:
        return None
    target = push.actions[action - 1].get("url") if isinstance(push.actions[action - 1], dict) else None
    return target if is_http_url(target) else None


def record_click(session: orm.Session, secret_key: str, token: str, now: datetime,
                 action: int | None = None) -> ClickResult:
    """Record one click on the push a token names; raises NotFound for a forged or unknown token.

    Every click is a ``Click`` row; only the first sets ``Push.clicked_at`` (the clicker count).
    ``action`` (``?a=1``/``?a=2``) names the action button clicked: the click records it and the
    target is that button's stored link; a push without that button counts it as a click on the
    notification itself. The target is the push's stored http(s) URL, or else the shop's first
    registered origin: never anything taken from the request, so the link cannot become an
    open redirect.
    """
    push_id = read_click_token(secret_key, token)
    push = session.get(Push, push_id) if push_id is not None else None
    if push is None:
        raise NotFound("unknown link", code="unknown_link")
    action_target = _action_target(push, action)
    if action_target is None:
        action = None
    session.add(Click(shop_id=push.shop_id, push_id=push.id, visitor_id=push.visitor_id,
                      kind=push.kind, clicked_at=now, action=action))
    # A conditional update decides "first click" in the database, even for concurrent clicks.
    first = session.execute(
        sa.update(Push).where(Push.id == push.id, Push.clicked_at.is_(None)).values(clicked_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount == 1
    target = action_target or push.url
    if not is_http_url(target):
        shop = session.get(Shop, push.shop_id)
        target = (shop.origins[0] + "/") if shop and shop.origins else ""
        if not is_http_url(target):
            raise NotFound("this push has no page to open", code="no_target")
    log.info("click on push %s (action=%s, first=%s)", push.id, action, first)
    return ClickResult(push_id=push.id, target=with_utm(target, push.kind), first=first)
