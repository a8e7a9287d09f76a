"""The Settings page's shop time zone and currency, and the soft-ask designer, through Flask's test client."""
from __future__ import annotations

import html

import pytest

from server.core.models import Shop
from tests.integration.merchant.test_dashboard import log_in

pytestmark = pytest.mark.shop(name="Acme")

FORM = {"name": "Acme", "origins": "https://acme.example", "sw_path": "/pushcart-sw.js", "prompt_text": "Notify me?",
        "prompt_color": "#112233", "after_pageviews": "2", "after_seconds": "0", "dismiss_days": "7",
        "frequency_cap_per_24h": "3", "attribution_hours": "72", "quiet_start": "22:00", "quiet_end": "08:00"}


def test_time_zone_and_currency_are_saved_and_label_the_quiet_hours(client, new_shop, session):
    csrf = log_in(client, new_shop.admin_token)
    page = client.get("/admin/settings").get_data(as_text=True)
    assert '<option selected>UTC</option>' in page and 'value="USD"' in page
    assert client.post("/admin/settings", data={**FORM, "csrf_token": csrf, "timezone": "Europe/Berlin",
                                                "currency": "eur"}).status_code == 302
    session.expire_all()
    saved = session.get(Shop, new_shop.shop.id)
    assert (saved.timezone, saved.currency) == ("Europe/Berlin", "EUR")
    page = client.get("/admin/settings").get_data(as_text=True)
    assert "<option selected>Europe/Berlin</option>" in page
    assert "in the shop's\n      (Europe/Berlin)" in page  # the quiet hours name their zone


@pytest.mark.parametrize("field, value, message", [
    ("timezone", "Mars/Olympus", "unknown time zone"),
    ("currency", "EURO", "three-letter currency"),
])
def test_a_bad_zone_or_currency_is_refused_and_nothing_is_saved(client, new_shop, session, field, value, message):
    csrf = log_in(client, new_shop.admin_token)
    client.post("/admin/settings", data={**FORM, "csrf_token": csrf, "name": "Changed", field: value})
    assert message in html.unescape(client.get("/admin/settings").get_data(as_text=True))
    session.expire_all()
    saved = session.get(Shop, new_shop.shop.id)
    assert (saved.name, saved.timezone, saved.currency) == ("Acme", "UTC", "USD")
