"""``welcome``: once per new subscription, at once (or after the shop's delay)."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import orm

from server.core.models import Shop, Subscription, SubscriptionStatus, Visitor
from server.planning import defaults, recipients, rendering

KIND = "welcome"


def plan(session: orm.Session, shop: Shop, visitor: Visitor, subscription: Subscription,
         now: datetime) -> int:
    """Plan the welcome push of a new subscription; return rows planned (0 or 1)."""
    setting = defaults.get_setting(session, shop, KIND)
    if not setting.enabled or subscription.status != SubscriptionStatus.ACTIVE.value:
        return 0
    context = rendering.base_context(shop, visitor)
    rendered = rendering.render(setting, context, fallback_url=context["shop_url"])
    delay = setting.delays[0] if setting.delays else 0
    return recipients.plan_rows(
        session, shop=shop, kind=KIND, subscriptions=[subscription], key=KIND,
        group_key=f"{KIND}:{subscription.id}", due_at=now + timedelta(seconds=delay),
        rendered=rendered, now=now,
    )
