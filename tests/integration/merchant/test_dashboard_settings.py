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


DESIGN = {"prompt_yes": "Sure!", "prompt_no": "Later", "prompt_position": "top",
          "prompt_icon": "https://cdn.example/bell(1).png?v=\"2\"", "prompt_phone_text": "Cart alerts?",
          "prompt_phone_position": "bottom-right"}


def _config(client, shop, locale=""):
    return client.get(f"/v1/shops/{shop.public_key}/config" + (f"?locale={locale}" if locale else "")).get_json()["prompt"]


def test_the_soft_ask_designer_is_saved_and_served_in_the_widgets_config(client, new_shop, session):
    csrf = log_in(client, new_shop.admin_token)
    assert client.post("/admin/settings", data={**FORM, **DESIGN, "csrf_token": csrf}).status_code == 302
    session.expire_all()
    prompt = session.get(Shop, new_shop.shop.id).prompt
    assert {k: prompt[k] for k in ("yes", "no", "position", "phone_text", "phone_position")} == {
        "yes": "Sure!", "no": "Later", "position": "top", "phone_text": "Cart alerts?", "phone_position": "bottom-right"}
    served = _config(client, new_shop.shop)
    assert (served["text"], served["yes"], served["no"], served["phone_text"]) == ("Notify me?", "Sure!", "Later",
                                                                                 "Cart alerts?")
    assert served["css"].startswith(".box{top:16px;left:50%;transform:translateX(-50%)}@media (max-width:480px)")
    assert "bottom:8px;top:auto" in served["css"]
    # The icon's URL cannot end the CSS string or rule: quotes and parentheses are percent-encoded.
    assert 'url("https://cdn.example/bell%281%29.png?v=%222%22")' in served["css"]
    assert "position" not in served and "icon" not in served
    # A visitor in German: the shop's labels stay (no German ones set), the built-in ones are not used.
    german = _config(client, new_shop.shop, "de-DE")
    assert (german["yes"], german["no"]) == ("Sure!", "Later")
    page = client.get("/admin/settings").get_data(as_text=True)
    assert 'value="Cart alerts?"' in page and '<option value="top" selected>Top</option>' in page
    assert 'data-position="top"' in page  # the preview starts where the box stands


def test_an_unset_designer_serves_the_built_in_labels_and_the_bottom_left_box(client, new_shop):
    served = _config(client, new_shop.shop, "de")
    assert (served["yes"], served["no"]) == ("Ja, gerne", "Jetzt nicht")
    assert served["css"] == (".box{left:16px;bottom:16px}@media (max-width:480px){.box{left:8px;right:8px;"
                             "max-width:none;bottom:8px;top:auto;transform:none}}")
    assert "phone_text" not in _config(client, new_shop.shop)


@pytest.mark.parametrize("field, value, message", [
    ("prompt_color", "red", "prompt.color"),
    ("prompt_icon", "javascript:alert(1)", "prompt.icon"),
    ("prompt_yes", "y" * 41, "prompt.yes"),
    ("prompt_position", "left", "prompt.position"),
    ("prompt_phone_text", "p" * 301, "prompt.phone_text"),
])
def test_the_designer_refuses_a_bad_colour_icon_label_or_position(client, new_shop, session, field, value, message):
    csrf = log_in(client, new_shop.admin_token)
    client.post("/admin/settings", data={**FORM, **DESIGN, "csrf_token": csrf, field: value})
    assert message in html.unescape(client.get("/admin/settings").get_data(as_text=True))
    session.expire_all()
    assert session.get(Shop, new_shop.shop.id).prompt["yes"] == "", "nothing of the form was saved"


def test_the_admin_api_sets_the_designer_too(client, new_shop):
    auth = {"Authorization": f"Bearer {new_shop.admin_token}"}
    current = client.get("/v1/admin/settings", headers=auth).get_json()
    current["prompt"].update(position="center", phone_position="", icon="", yes="OK")
    saved = client.put("/v1/admin/settings", headers=auth, json=current)
    assert saved.status_code == 200 and saved.get_json()["prompt"]["position"] == "center"
    assert _config(client, new_shop.shop)["css"].startswith(".box{top:50%;left:50%")
    bad = client.put("/v1/admin/settings", headers=auth, json={"prompt": {**current["prompt"], "icon": "ftp://x"}})
    assert bad.status_code == 422
