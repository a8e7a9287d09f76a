"""The soft-ask designer: the design's validation (admin API and dashboard), the markup and style the
config hands the widget (escaped, no inline style, the readable text colour, the four positions, the
phone variant, the visitor's language), the designer's preview and save, per shop."""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from server.collect import softask
from server.core.models import AuditEntry, Shop
from tests.factories import make_shop
from tests.integration.merchant.test_dashboard import log_in

DESIGN = {"title": "Never miss a restock", "text": "We'll tell you when your size is back.", "yes": "Tell me",
          "no": "No thanks", "color": "#0B6E4F", "position": "bottom-right", "icon": "https://cdn.example/logo.png",
          "phone": {"position": "top", "title": "", "text": "Back-in-size alerts?"}}


def auth(new):
    return {"Authorization": f"Bearer {new.admin_token}"}


def put_prompt(client, new, **changes):
    prompt = {**client.get("/v1/admin/settings", headers=auth(new)).get_json()["prompt"], **changes}
    return client.put("/v1/admin/settings", json={"prompt": prompt}, headers=auth(new))


def config(client, new, locale: str = "en-US") -> dict:
    response = client.get(f"/v1/shops/{new.shop.public_key}/config?locale={locale}",
                          headers={"Origin": "https://shop.example"})
    assert response.status_code == 200
    return response.get_json()["prompt"]


def test_the_admin_api_stores_the_design_and_the_config_hands_its_markup(client, new_shop):
    assert put_prompt(client, new_shop, **DESIGN).status_code == 200
    stored = client.get("/v1/admin/settings", headers=auth(new_shop)).get_json()["prompt"]
    assert {k: stored[k] for k in DESIGN} == {**DESIGN, "color": "#0B6E4F"}
    prompt = config(client, new_shop)
    assert prompt["title"] == DESIGN["title"] and prompt["yes"] == "Tell me"
    html, css = prompt["html"], prompt["css"]
    assert html.startswith('<div class="box" role="dialog" aria-modal="false" aria-labelledby="pc-title" '
                           'aria-describedby="pc-text">')
    assert '<img class="icon" src="https://cdn.example/logo.png" alt="" width="40" height="40">' in html
    assert ('<span class="d">We&#39;ll tell you when your size is back.</span>'
            '<span class="m">Back-in-size alerts?</span>') in html
    assert '<button type="button" class="no">No thanks</button><button type="button" class="yes">Tell me</button>' in html
    assert ".yes{background:#0b6e4f;color:#ffffff}" in css
    assert ".box{position:absolute;right:16px;left:auto;top:auto;bottom:16px;" in css
    assert "@container (max-width:480px){.box{top:8px;left:0;right:0;" in css


@pytest.mark.parametrize("changes, field", [
    ({"color": "#12345"}, "color"), ({"color": "red"}, "color"), ({"color": "#12345g"}, "color"),
    ({"position": "middle"}, "position"), ({"icon": "javascript:alert(1)"}, "icon"),
    ({"icon": "ftp://cdn.example/i.png"}, "icon"), ({"title": "x" * 81}, "title"), ({"yes": "x" * 41}, "yes"),
    ({"no": "x" * 41}, "no"), ({"text": ""}, "text"), ({"phone": {"position": "left"}}, "phone.position"),
    ({"phone": {"text": "x" * 161}}, "phone.text"), ({"phone": {"title": "x" * 61}}, "phone.title"),
    ({"phone": {"colour": "#000000"}}, "phone.colour"),
])
def test_a_bad_design_is_refused_with_its_field(client, new_shop, changes, field):
    response = put_prompt(client, new_shop, **changes)
    assert response.status_code == 422
    assert response.get_json()["error"]["message"].startswith(f"prompt.{field}:")


def test_a_shop_saved_before_the_designer_gets_the_default_design(client, new_shop, session):
    shop = session.get(Shop, new_shop.shop.id)
    shop.prompt = {"text": "Deals?", "color": "#ffcc00", "after_pageviews": 1, "after_seconds": 0, "dismiss_days": 3}
    session.commit()
    prompt = config(client, new_shop)
    assert prompt["html"].startswith('<div class="box" role="dialog" aria-modal="false" aria-labelledby="pc-text">')
    assert '<svg class="icon bell"' in prompt["html"] and '<p class="text" id="pc-text">Deals?</p>' in prompt["html"]
    assert "left:16px;right:auto;top:auto;bottom:16px" in prompt["css"]
    assert ".yes{background:#ffcc00;color:#000000}" in prompt["css"]
    settings = client.get("/v1/admin/settings", headers=auth(new_shop)).get_json()["prompt"]
    assert (settings["position"], settings["icon"], settings["phone"]) == ("bottom-left", "", {"position": "", "title": "", "text": ""})


def test_a_locale_text_replaces_the_title_and_the_phone_text_of_the_default_language(client, new_shop):
    assert put_prompt(client, new_shop, **DESIGN, locales={"de": {"text": "Benachrichtigung?"}}).status_code == 200
    german = config(client, new_shop, "de-DE")
    assert "title" not in german and '<p class="text" id="pc-text">Benachrichtigung?</p>' in german["html"]
    assert 'id="pc-title"' not in german["html"] and "Back-in-size" not in german["html"]
    assert '<button type="button" class="yes">Ja, gerne</button>' in german["html"]  # built in for a written locale
    french = config(client, new_shop, "fr-FR")  # no French texts: the shop's default texts and labels
    assert 'class="yes">Tell me<' in french["html"] and "Never miss a restock" in french["html"]


def test_the_markup_escapes_texts_and_carries_no_inline_style():
    html = softask.render({"title": "<script>alert(1)</script>", "text": 'a "b" & <i>c</i>', "yes": "<b>y</b>",
                           "icon": 'https://x.example/i.png?a=1&b="2'})["html"]
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "a &#34;b&#34; &amp; &lt;i&gt;c&lt;/i&gt;" in html and "&lt;b&gt;y&lt;/b&gt;" in html
    assert 'src="https://x.example/i.png?a=1&amp;b=&#34;2"' in html
    assert not re.search(r"\sstyle=|\son\w+=", html)  # a shop's CSP without 'unsafe-inline' allows it


@pytest.mark.parametrize("position, rule", [
    ("bottom-left", "left:16px;right:auto;top:auto;bottom:16px;"),
    ("bottom-right", "right:16px;left:auto;top:auto;bottom:16px;"),
    ("top", "top:16px;left:0;right:0;bottom:auto;margin:0 auto;"),
    ("center", "top:0;bottom:0;left:0;right:0;margin:auto;height:fit-content;"),
])
def test_each_position_places_the_box(position, rule):
    assert ".box{position:absolute;" + rule in softask.render({"position": position})["css"]


def test_a_malformed_stored_value_falls_back_instead_of_reaching_the_css():
    css = softask.render({"color": "red;}body{visibility:hidden", "position": "x}{", "phone": {"position": "}"}})["css"]
    assert "body{" not in css and "visibility" not in css and "x}{" not in css and ".yes{background:#1f6feb;" in css


@pytest.mark.parametrize("accent", ["#ffcc00", "#1f6feb", "#0b6e4f", "#777777", "#ff0000", "#00ff00", "#000000",
                                    "#ffffff", "#e91e63", "#3f51b5", "#8bc34a", "#808080"])
def test_the_accept_buttons_text_is_the_more_readable_of_black_and_white(accent):
    chosen = softask.text_on(accent)
    other = softask.LIGHT if chosen == softask.DARK else softask.DARK
    assert softask.contrast(accent, chosen) >= softask.contrast(accent, other)
    assert softask.contrast(accent, chosen) >= 4.5  # WCAG AA for text: always reachable with one of the two


def test_contrast_is_wcags_ratio():
    assert softask.contrast("#000000", "#ffffff") == pytest.approx(21)
    assert softask.contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)
    assert (softask.text_on("#ffcc00"), softask.text_on("#1f6feb")) == (softask.DARK, softask.LIGHT)


def test_the_designer_previews_and_saves_for_its_shop_only(client, new_shop, session, clock):
    other = make_shop(session, clock.now(), name="Other")
    session.commit()
    csrf = log_in(client, new_shop.admin_token)
    page = client.get("/admin/settings/soft-ask").get_data(as_text=True)
    assert 'id="softask-first"' in page and "Get a note when your cart is waiting" in page
    # The preview: JSON with the CSRF header; a bad field is named and previewed as stored.
    headers = {"X-CSRFToken": csrf}
    assert client.post("/admin/settings/soft-ask/preview", json={"title": "x"}).status_code == 400  # no token
    shown = client.post("/admin/settings/soft-ask/preview", headers=headers,
                        json={"title": "Hi <there>", "text": "Short", "color": "#00000", "icon": "nope",
                              "phone_text": "Tiny"}).get_json()
    assert shown["errors"] == {"color": "String should match pattern '^#[0-9a-fA-F]{6}$'",
                               "icon": "must be empty or an absolute http(s) URL of at most 2048 characters"}
    assert '<p class="title" id="pc-title">Hi &lt;there&gt;</p>' in shown["html"] and "<img" not in shown["html"]
    assert "#1f6feb" in shown["css"] and '<span class="m">Tiny</span>' in shown["html"]
    assert client.post("/admin/settings/soft-ask/preview", headers=headers, data="[]",
                       content_type="application/json").status_code == 400
    # The save: a bad field is named and nothing is kept; a good one is the shop's alone.
    form = {"csrf_token": csrf, "title": "T", "text": "Body", "yes": "", "no": "", "color": "#00000",
            "position": "top", "icon": "", "phone_position": "", "phone_title": "", "phone_text": ""}
    refused = client.post("/admin/settings/soft-ask", data=form, follow_redirects=True).get_data(as_text=True)
    assert "Soft-ask not saved: color:" in refused
    session.expire_all()
    assert "title" not in (session.get(Shop, new_shop.shop.id).prompt or {})
    saved = client.post("/admin/settings/soft-ask", data={**form, "color": "#aa0000", "phone_position": "center"},
                        follow_redirects=True)
    assert "Soft-ask saved" in saved.get_data(as_text=True)
    assert client.post("/admin/settings/soft-ask", data={**form, "csrf_token": "forged"}).status_code == 400
    session.expire_all()
    prompt = session.get(Shop, new_shop.shop.id).prompt
    assert (prompt["title"], prompt["text"], prompt["color"], prompt["position"], prompt["phone"]["position"]) == (
        "T", "Body", "#aa0000", "top", "center")
    assert "title" not in (session.get(Shop, other.shop.id).prompt or {})
    # The audit log has the saved design's fields, by the log-in that saved them; the refused save left none.
    logged = {(e.actor, e.subject, e.after) for e in session.scalars(
        sa.select(AuditEntry).where(AuditEntry.shop_id == new_shop.shop.id, AuditEntry.area == "settings"))}
    assert {("admin token", "prompt.title", "T"), ("admin token", "prompt.color", "#aa0000")} <= logged
    assert not any(after == "#00000" for _, _, after in logged)
    # The Settings form keeps the design (its timing fields change, the texts stay).
    client.post("/admin/settings", data={
        "csrf_token": csrf, "name": "Shop", "origins": "https://shop.example", "sw_path": "/pushcart-sw.js",
        "after_pageviews": "4", "after_seconds": "0", "dismiss_days": "5", "frequency_cap_per_24h": "3",
        "attribution_hours": "72", "alert_min_drop_percent": "10", "alert_window_days": "7",
        "pause_unengaged_after": "0"})
    session.expire_all()
    after = session.get(Shop, new_shop.shop.id).prompt
    assert (after["after_pageviews"], after["title"], after["color"], after["phone"]["position"]) == (4, "T", "#aa0000", "center")
