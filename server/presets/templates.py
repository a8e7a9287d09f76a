"""Push templates: Jinja in a sandbox, checked when the merchant saves them."""
from __future__ import annotations

import functools
from typing import Any

from jinja2 import TemplateError
from jinja2.sandbox import SandboxedEnvironment

from ..errors import Invalid

# Texts a template may use; the preview and the save-time check render with these.
SAMPLE_CONTEXT: dict[str, Any] = {
    "shop_name": "Demo Shop",
    "shop_url": "https://shop.example/",
    "first_name": "Alex",
    "product_title": "Linen Shirt",
    "product_price": "$49.00",
    "product_url": "https://shop.example/products/linen-shirt",
    "product_image": "https://shop.example/img/linen-shirt.jpg",
    "cart_total": "$98.00",
    "item_count": 2,
    "checkout_url": "https://shop.example/checkout/abc",
    "cart_url": "https://shop.example/checkout/abc",
    "currency": "USD",
    "order_id": "1001",
    "order_total": "$98.00",
    "tracking_url": "https://carrier.example/track/1Z999",
    "carrier": "UPS",
}
MAX_TEMPLATE_CHARS = 2000


@functools.lru_cache(maxsize=1)
def _env() -> SandboxedEnvironment:
    # Push texts are plain text (the service worker shows them as text), so no HTML escaping;
    # the sandbox stops templates from reaching Python internals.
    return SandboxedEnvironment(autoescape=False, trim_blocks=True, lstrip_blocks=True)


@functools.lru_cache(maxsize=512)
def _compile(source: str) -> Any:
    return _env().from_string(source)


def render(source: str, context: dict[str, Any]) -> str:
    """Render one template with ``context``; missing variables render empty."""
    if not source:
        return ""
    return " ".join(_compile(source).render(**context).split())


def validate(field: str, source: str) -> None:
    """Compile and render ``source`` with sample data; raises Invalid naming the field."""
    if len(source) > MAX_TEMPLATE_CHARS:
        raise Invalid(f"{field}: the template is longer than {MAX_TEMPLATE_CHARS} characters",
                      code="invalid_template")
    try:
        render(source, SAMPLE_CONTEXT)
    except TemplateError as exc:
        raise Invalid(f"{field}: {exc}", code="invalid_template") from None
