""""Send a test push to me": a push of one kind to the merchant's own browser, due now.

The merchant names their own visitor id (the widget's ``pushcart.status()`` shows it on the
shop); the push is rendered from the kind's current templates with sample data and stored as
an ordinary pending outbox row, so the dispatcher sends it like any other.
"""
from __future__ import annotations

import re
import secrets
from datetime import datetime

from sqlalchemy import orm

from server.core.errors import Invalid, NotFound
from server.core.models import KINDS, Shop, Visitor
from server.delivery import policy
from server.planning import defaults, recipients, rendering, templates
from server.core import visitors

VISITOR_KEY = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


def find_visitor(session: orm.Session, shop: Shop, visitor_key: str) -> Visitor:
    """The shop's visitor with this widget id; raises Invalid (malformed) or NotFound."""
    visitor_key = visitor_key.strip()
    if not VISITOR_KEY.match(visitor_key):
        raise Invalid("a visitor id is 8 to 64 letters, digits, '-' or '_'", code="invalid_field")
    return visitors.find_visitor(session, shop, visitor_key)


def send_test_push(session: orm.Session, shop: Shop, kind: str, visitor_key: str, now: datetime) -> int:
    """Plan one ``kind`` push, due now, to each active subscription of the visitor; return how many.

    Raises NotFound (unknown kind or visitor) or Invalid (no active subscription).
    """
    if kind not in KINDS:
        raise NotFound(f"unknown kind {kind!r}", code="unknown_kind")
    visitor = find_visitor(session, shop, visitor_key)
    subscriptions = recipients.active_subscriptions(session, visitor.id)
    if not subscriptions:
        raise Invalid("this visitor has no active push subscription: allow notifications on your shop first",
                      code="not_subscribed")
    context = {**templates.SAMPLE_CONTEXT, **rendering.base_context(shop, visitor)}
    context["first_name"] = context["first_name"] or templates.SAMPLE_CONTEXT["first_name"]
    rendered = rendering.render(defaults.get_setting(session, shop, kind), context, rendering.shop_url(shop))
    nonce = secrets.token_hex(6)
    return recipients.plan_rows(
        session, shop=shop, kind=kind, subscriptions=subscriptions, key=f"test:{kind}:{nonce}",
        group_key=f"{policy.TEST_GROUP_PREFIX}{visitor.id}", due_at=now, rendered=rendered, now=now,
        context={"test": True},
    )
