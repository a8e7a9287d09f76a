"""Default timing and English texts of the five preset pushes and the two alerts, seeded for
every new shop, and ``get_setting``: a shop's settings of a kind, created from them when missing."""
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
        "body": "Thanks for subscribing{% if first_name %}, {{ first_name }}{% endif %}. "
                "We'll let you know about your cart, your orders and your deliveries.",
        "url": "{{ shop_url }}",
    },
    "browse_abandonment": {
        "delays": [DAY],
        # The cart variant names a product in the cart when one is known, else counts the items.
        "title": "{% if cart_total %}{% if product_title %}Your {{ product_title }} is waiting"
                 "{% else %}You left {{ item_count }} item(s) in your cart{% endif %}"
                 "{% else %}Still thinking about {{ product_title }}?{% endif %}",
        "body": "{% if cart_total %}{{ item_count }} item(s) are waiting for you: {{ cart_total }}.{% else %}{{ product_title }} is still available for {{ product_price }}.{% endif %}",
        "image": "{{ product_image }}",
        # The cart variant links to the cart (its checkout URL), the browse variant to the product.
        "url": "{% if cart_url %}{{ cart_url }}{% else %}{{ product_url }}{% endif %}",
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
        "body": "It is on its way{% if carrier %} with {{ carrier }}{% endif %}. Tap to track it.",
        "url": "{{ tracking_url }}",
    },
    # The alerts a visitor asks for with a "notify me" button (``server.planning.alerts``).
    "back_in_stock": {
        "delays": [0],
        "title": "{{ product_title }} is back in stock",
        "body": "The {{ product_title }} you asked about is available again{% if product_price %} "
                "for {{ product_price }}{% endif %}. Get it before it sells out.",
        "image": "{{ product_image }}",
        "url": "{{ product_url }}",
    },
    "price_drop": {
        "delays": [0],
        "title": "Price drop: {{ product_title }}",
        "body": "{{ product_title }} is now {{ product_price }}{% if old_price %} (was {{ old_price }}){% endif %}.",
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
