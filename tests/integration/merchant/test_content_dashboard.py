"""The dashboard's content forms: the Coupons page, action buttons and per-locale texts on the
Events page, the soft-ask's languages in Settings; CSRF on each form and escaping of what they show."""
from __future__ import annotations

import io

import pytest

from server.core.models import PresetSetting, Shop
from tests.integration.merchant.test_dashboard import log_in

XSS = '"><script>alert(1)</script>'


def test_coupon_forms_need_the_csrf_token(client, new_shop):
    log_in(client, new_shop.admin_token)
    for path, data in (("/admin/coupons/welcome", {"mode": "fixed", "code": "X1"}),
                       ("/admin/coupons/welcome/codes", {"codes": "A1"})):
        assert client.post(path, data=data).status_code == 400, path
        assert client.post(path, data={**data, "csrf_token": "forged"}).status_code == 400, path
    assert client.get("/v1/admin/coupons/welcome", headers={"Authorization": f"Bearer {new_shop.admin_token}"}
                      ).get_json() == {"kind": "welcome", "mode": "none", "code": None, "remaining": 0, "assigned": 0}


def test_the_coupons_page_sets_a_mode_and_uploads_codes(client, new_shop):
    csrf = log_in(client, new_shop.admin_token)
    page = client.get("/admin/coupons").get_data(as_text=True)
    assert 'id="coupon-welcome"' in page and 'href="/admin/coupons"' in page
    saved = client.post("/admin/coupons/repurchase", data={"csrf_token": csrf, "mode": "list", "code": ""},
                        follow_redirects=True).get_data(as_text=True)
    assert "Repurchase coupon saved." in saved
    added = client.post("/admin/coupons/repurchase/codes", content_type="multipart/form-data", data={
        "csrf_token": csrf, "codes": "R-1\nR-2\nR-1",
        "codes_file": (io.BytesIO(b"R-3\r\nR-4\n"), "codes.txt")}, follow_redirects=True).get_data(as_text=True)
    assert "4 code(s) added, 0 already there; 4 left." in added
    assert 'data-remaining="4"' in added
    events = client.get("/admin/events").get_data(as_text=True)
    assert "single-use codes, <strong>4</strong> left" in events
    bad = client.post("/admin/coupons/repurchase/codes", data={"csrf_token": csrf, "codes": "ok\n<b>bad</b>"},
                      follow_redirects=True).get_data(as_text=True)
    assert "codes not added: codes: line 2 is not a code" in bad and "<b>bad</b>" not in bad
    refused = client.post("/admin/coupons/welcome", data={"csrf_token": csrf, "mode": "fixed", "code": XSS},
                          follow_redirects=True).get_data(as_text=True)
    assert "Welcome coupon:" in refused and "<script>alert(1)</script>" not in refused


def test_a_big_code_list_goes_through_the_form(client, new_shop):
    csrf = log_in(client, new_shop.admin_token)
    codes = "\n".join(f"BIG-{i:05d}-{'y' * 50}" for i in range(10_000))
    page = client.post("/admin/coupons/welcome/codes", data={"csrf_token": csrf, "codes": codes},
                       follow_redirects=True).get_data(as_text=True)
    assert "10000 code(s) added" in page


def test_the_events_card_saves_buttons_and_locale_texts(client, new_shop, session):
    csrf = log_in(client, new_shop.admin_token)
    response = client.post("/admin/events/welcome", data={
        "csrf_token": csrf, "delays": "0", "title": "Welcome", "body": "Hi", "url": "", "icon": "", "image": "",
        "action_title_1": "See the sale", "action_url_1": "https://shop.example/sale",
        "action_title_2": "", "action_url_2": "",
        "locale_code_0": "de", "locale_title_0": "Willkommen " + XSS, "locale_body_0": "Hallo", "locale_url_0": "",
        "locale_code_1": "", "locale_title_1": "ignored"})
    assert response.status_code == 302
    session.expire_all()
    setting = session.query(PresetSetting).filter_by(shop_id=new_shop.shop.id, kind="welcome").one()
    assert setting.actions == [{"title": "See the sale", "url": "https://shop.example/sale"}]
    assert setting.locales == {"de": {"title": "Willkommen " + XSS, "body": "Hallo", "url": ""}}
    page = client.get("/admin/events").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page and "Willkommen &#34;&gt;&lt;script&gt;" in page
    assert 'value="See the sale"' in page and 'name="locale_code_0" value="de"' in page
    refused = client.post("/admin/events/welcome", data={
        "csrf_token": csrf, "delays": "0", "title": "Welcome", "action_title_1": "Go",
        "action_url_1": "javascript:alert(1)"}, follow_redirects=True).get_data(as_text=True)
    assert "actions.0.url: must render to an http(s) URL" in refused


def test_the_settings_page_saves_the_prompt_in_other_languages(client, new_shop, session):
    csrf = log_in(client, new_shop.admin_token)
    form = {"csrf_token": csrf, "name": "Test Shop", "origins": "https://shop.example", "sw_path": "/pushcart-sw.js",
            "prompt_text": "Get a note?", "prompt_color": "#1f6feb", "after_pageviews": "2", "after_seconds": "0",
            "dismiss_days": "14", "frequency_cap_per_24h": "3", "attribution_hours": "72",
            "prompt_locale_0": "de", "prompt_locale_text_0": "Hinweis? " + XSS, "prompt_locale_yes_0": "",
            "prompt_locale_no_0": "Nein danke"}
    assert client.post("/admin/settings", data={**form, "csrf_token": "forged"}).status_code == 400
    assert client.post("/admin/settings", data=form).status_code == 302
    session.expire_all()
    assert session.get(Shop, new_shop.shop.id).prompt["locales"] == {"de": {"text": "Hinweis? " + XSS, "no": "Nein danke"}}
    page = client.get("/admin/settings").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page and 'value="Nein danke"' in page
    prompt = client.get(f"/v1/shops/{new_shop.shop.public_key}/config?locale=de-DE").get_json()["prompt"]
    assert (prompt["text"], prompt["yes"], prompt["no"]) == ("Hinweis? " + XSS, "Ja, gerne", "Nein danke")


def test_the_coupons_page_sets_the_campaigns_coupon(client, new_shop):
    csrf = log_in(client, new_shop.admin_token)
    assert 'id="coupon-campaign"' in client.get("/admin/coupons").get_data(as_text=True)
    saved = client.post("/admin/coupons/campaign", data={"csrf_token": csrf, "mode": "fixed", "code": "CAMP10"})
    assert saved.status_code == 302
    assert client.get("/v1/admin/coupons/campaign", headers={"Authorization": f"Bearer {new_shop.admin_token}"}
                      ).json["code"] == "CAMP10"
    added = client.post("/admin/coupons/campaign/codes", data={"csrf_token": csrf, "codes": "C-1\nC-2"})
    assert added.status_code == 302
    assert client.get("/v1/admin/coupons/campaign", headers={"Authorization": f"Bearer {new_shop.admin_token}"}
                      ).json["remaining"] == 2
