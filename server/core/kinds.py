"""What the merchant calls each push kind (the dashboard's and reports' labels)."""
from __future__ import annotations

KIND_LABELS: dict[str, str] = {
    "welcome": "Welcome",
    "browse_abandonment": "Browse & cart abandonment",
    "checkout_recovery": "Checkout recovery",
    "repurchase": "Repurchase",
    "shipped": "Shipped",
    "back_in_stock": "Back in stock",
    "price_drop": "Price drop",
    "campaign": "Campaign",
}
