"""Default timing and English texts of the five preset pushes and the two alerts, seeded for
every new shop, and ``get_setting``: a shop's settings of a kind, created from them when missing.

The texts are plain sentences a merchant can read and edit: a variable that may be empty has
a fallback (``{{ carrier | default("our carrier") }}``), never an ``{% if %}`` around it.
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from server.core.models import PresetSetting, Shop

HOUR = 3600
DAY = 24 * HOUR

DEFAULTS: dict[str, dict[str, Any]] = {
    "welcome": {
        "delays": [0],
        "title": "Welcome to {{ shop_name }}!",
        "body": 'Thanks for subscribing, {{ first_name | default("friend") }}. '
                "We'll let you know about your cart, your orders and your deliveries.",
        "url": "{{ shop_url }}",
    },
    "browse_abandonment": {
        "delays": [DAY],
        # One text for both variants: the product (viewed, or the one in the cart) when known,
        # else the cart; the link is the cart's checkout when there is a cart, else the product.
        "title": '{{ product_title | default("Your cart") }} is waiting for you',
        "body": "Pick up where you left off at {{ shop_name }}.",
        "image": "{{ product_image }}",
        "url": "{{ cart_url | default(product_url) }}",
    },
    "checkout_recovery": {
        "delays": [HOUR],
        "title": "Your order at {{ shop_name }} is almost done",
        "body": "Finish checking out your {{ item_count }} item(s) ({{ cart_total }}) before they sell out.",
        "url": "{{ checkout_url }}",
    },
    "repurchase": {
        "delays": [7 * DAY],
        "title": "Time for a refill?",
        "body": "Thanks again for order {{ order_id }}. Come back to {{ shop_name }} for more.",
        "url": "{{ shop_url }}",
    },
    "shipped": {
        "delays": [0],
        "title": "Your order {{ order_id }} has shipped",
        "body": 'It is on its way with {{ carrier | default("our carrier") }}. Tap to track it.',
        "url": "{{ tracking_url }}",
    },
    # The alerts a visitor asks for with a "notify me" button (``server.planning.alerts``).
    "back_in_stock": {
        "delays": [0],
        "title": "{{ product_title }} is back in stock",
        "body": "The {{ product_title }} you asked about is available again for "
                '{{ product_price | default("its usual price") }}. Get it before it sells out.',
        "image": "{{ product_image }}",
        "url": "{{ product_url }}",
    },
    "price_drop": {
        "delays": [0],
        "title": "Price drop: {{ product_title }}",
        "body": '{{ product_title }} is now {{ product_price }} (was {{ old_price | default("more") }}).',
        "image": "{{ product_image }}",
        "url": "{{ product_url }}",
    },
}


def get_setting(session: orm.Session, shop: Shop, kind: str) -> PresetSetting:
    """The shop's setting for ``kind``; a missing row is created from the defaults."""
    setting = session.scalars(
        sa.select(PresetSetting).where(PresetSetting.shop_id == shop.id, PresetSetting.kind == kind)
    ).one_or_none()
    if setting is None:
        spec = DEFAULTS[kind]
        setting = PresetSetting(
            shop_id=shop.id, kind=kind, enabled=True, delays=list(spec["delays"]),
            title=spec["title"], body=spec["body"], icon=spec.get("icon", ""),
            image=spec.get("image", ""), url=spec.get("url", ""), updated_at=shop.created_at,
        )
        session.add(setting)
        session.flush()
    return setting
