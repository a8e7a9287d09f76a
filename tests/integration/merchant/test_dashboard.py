"""The dashboard at /admin/ through Flask's test client: log-in, CSRF, escaping, forms, install check."""
from __future__ import annotations

import html
import re
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa

from server.core.models import PresetSetting, Push, Shop
from tests.dashboard_seed import make_click, make_event, make_push
from tests.factories import make_shop, make_subscription, make_visitor

pytestmark = pytest.mark.shop(name="Acme")

XSS = "<img src=x onerror=alert(1)>"
PAGES = ["/admin/", "/admin/events", "/admin/pushes", "/admin/visitors", "/admin/install", "/admin/settings"]


def csrf_from(page_html: str) -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', page_html).group(1)


def log_in(client, token: str) -> str:
    """Log in through the form; return a CSRF token valid for the new session."""
    form = client.get("/admin/login").get_data(as_text=True)
    response = client.post("/admin/login", data={"token": token, "csrf_token": csrf_from(form)})
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/")
    return csrf_from(client.get("/admin/events").get_data(as_text=True))


def test_pages_need_a_log_in(client, new_shop):
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"].endswith("/admin/login"), path


def test_a_wrong_token_is_refused_and_a_right_one_logs_in_and_out(client, new_shop):
    form = client.get("/admin/login").get_data(as_text=True)
    refused = client.post("/admin/login", data={"token": "adm_wrong", "csrf_token": csrf_from(form)})
    assert refused.status_code == 401 and "not valid" in refused.get_data(as_text=True)
    csrf = log_in(client, new_shop.admin_token)
    page = client.get("/admin/")
    assert page.status_code == 200 and "Acme" in page.get_data(as_text=True)
    assert client.post("/admin/logout", data={"csrf_token": csrf}).status_code == 302
    assert client.get("/admin/").status_code == 302


def test_a_reissued_token_logs_old_sessions_out_and_the_old_token_stops(client, runner, new_shop):
    import json

    log_in(client, new_shop.admin_token)
    assert client.get("/admin/").status_code == 200
    result = runner.invoke(args=["shop", "token", "--shop", new_shop.shop.public_key])
    assert result.exit_code == 0, result.output
    new_token = json.loads(result.output)["admin_token"]
    assert new_token != new_shop.admin_token
    page = client.get("/admin/")  # the session opened with the old token is over
    assert page.status_code == 302 and page.headers["Location"].endswith("/admin/login")
    api = client.get("/v1/admin/settings", headers={"Authorization": f"Bearer {new_shop.admin_token}"})
    assert api.status_code == 401
    assert client.get("/v1/admin/settings", headers={"Authorization": f"Bearer {new_token}"}).status_code == 200
    log_in(client, new_token)
    assert client.get("/admin/").status_code == 200
    unknown = runner.invoke(args=["shop", "token", "--shop", "pk_nope"])
    assert unknown.exit_code != 0 and "unknown shop" in unknown.output


def test_the_session_cookie_is_httponly_and_lax(client, new_shop):
    form = client.get("/admin/login").get_data(as_text=True)
    response = client.post("/admin/login", data={"token": new_shop.admin_token, "csrf_token": csrf_from(form)})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_every_form_needs_the_csrf_token(client, new_shop, session):
    assert client.post("/admin/login", data={"token": new_shop.admin_token}).status_code == 400
    log_in(client, new_shop.admin_token)
    posts = [("/admin/logout", {}), ("/admin/events/welcome", {"action": "toggle", "enabled": "0"}),
             ("/admin/events/welcome", {"title": "x", "delays": "0"}),
             ("/admin/test-devices/send/preset/welcome", {}),
             ("/admin/install/check", {"origin": "https://shop.example"}),
             ("/admin/settings", {"name": "Changed"})]
    for path, data in posts:
        assert client.post(path, data=data).status_code == 400, path
        assert client.post(path, data={**data, "csrf_token": "forged"}).status_code == 400, path
    assert client.post("/admin/preview", json={"title": "x"}).status_code == 400
    session.expire_all()
    assert session.get(Shop, new_shop.shop.id).name == "Acme"
    welcome = session.scalars(sa.select(PresetSetting).where(PresetSetting.kind == "welcome")).one()
    assert welcome.enabled is True


def test_pages_send_a_strict_content_security_policy(client, new_shop):
    log_in(client, new_shop.admin_token)
    for path in PAGES:
        response = client.get(path)
        policy = response.headers["Content-Security-Policy"]
        assert "unsafe-inline" not in policy and "script-src 'self'" in policy, path
        body = response.get_data(as_text=True)
        assert not re.search(r"<script(?![^>]*\b(src=|type=\"application/json\"))", body), path
        assert " style=" not in body and "<style" not in body, path


def test_visitor_text_is_escaped_on_every_page(client, session, clock):
    new = make_shop(session, clock.now(), name=XSS)
    visitor = make_visitor(session, new.shop.id, clock.now(), referrer=XSS, utm_source=XSS)
    make_subscription(session, visitor, clock.now())
    make_event(session, visitor, "product_view", clock.now(), product={"title": XSS, "url": "javascript:alert(1)"})
    make_push(session, visitor, "browse_abandonment", clock.now(), title=f"Still thinking about {XSS}?",
              body=XSS, url="javascript:alert(1)")
    session.commit()
    log_in(client, new.admin_token)
    escaped = html.escape(XSS, quote=False)
    for path in PAGES:
        body = client.get(path).get_data(as_text=True)
        assert XSS not in body, path
        assert escaped in body, path
        assert "javascript:" not in body.replace("javascript:alert(1)</", ""), path
    assert client.get("/admin/visitors").get_data(as_text=True).count(escaped) >= 3
    assert 'href="javascript' not in client.get("/admin/pushes").get_data(as_text=True)


def test_switching_a_preset_off_and_on(client, new_shop, session):
    csrf = log_in(client, new_shop.admin_token)
    off = client.post("/admin/events/shipped", data={"csrf_token": csrf, "action": "toggle", "enabled": "0"})
    assert off.status_code == 302
    page = client.get("/admin/events").get_data(as_text=True)
    assert "Shipped is now off." in page
    session.expire_all()
    setting = session.scalars(sa.select(PresetSetting).where(PresetSetting.kind == "shipped")).one()
    assert setting.enabled is False
    client.post("/admin/events/shipped", data={"csrf_token": csrf, "action": "toggle", "enabled": "1"})
    session.expire_all()
    assert session.get(PresetSetting, setting.id).enabled is True


def test_editing_a_template_and_timing(client, new_shop, session):
    csrf = log_in(client, new_shop.admin_token)
    data = {"csrf_token": csrf, "delays": "30m, 6h, 2d", "title": "Still there, {{ first_name }}?",
            "body": "{{ item_count }} items", "url": "{{ checkout_url }}", "icon": "", "image": ""}
    assert client.post("/admin/events/checkout_recovery", data=data).status_code == 302
    session.expire_all()
    setting = session.scalars(sa.select(PresetSetting).where(PresetSetting.kind == "checkout_recovery")).one()
    assert setting.delays == [1800, 21600, 172800] and setting.title == "Still there, {{ first_name }}?"
    page = client.get("/admin/events").get_data(as_text=True)
    assert delay_fields(page, "checkout_recovery") == [("30", "minutes"), ("6", "hours"), ("2", "days"), ("", "hours"),
                                                       ("", "hours")]
    broken = client.post("/admin/events/checkout_recovery", data={**data, "title": "{% if %}", "delays": "1h"})
    assert broken.status_code == 302
    assert "Checkout recovery: title:" in client.get("/admin/events").get_data(as_text=True)
    session.expire_all()
    kept = session.get(PresetSetting, setting.id)
    assert kept.title == "Still there, {{ first_name }}?" and kept.delays == [1800, 21600, 172800], \
        "a refused save changes nothing"
    bad_delay = client.post("/admin/events/welcome", data={**data, "delays": "soon"})
    assert bad_delay.status_code == 302
    assert "write a number" in client.get("/admin/events").get_data(as_text=True)


def delay_fields(page: str, kind: str) -> list[tuple[str, str]]:
    """The (number, selected unit) of each delay row of ``kind``'s card."""
    card = re.search(rf'<section class="card preset[^"]*" id="{kind}".*?</section>', page, re.S).group(0)
    values = re.findall(r'name="delay_value_\d" value="([^"]*)"', card)
    units = re.findall(r'<select[^>]*name="delay_unit_\d"[^>]*>.*?<option value="(\w+)" selected', card, re.S)
    return list(zip(values, units))


def test_delays_are_chosen_as_a_number_and_a_unit(client, new_shop, session):
    csrf = log_in(client, new_shop.admin_token)
    page = client.get("/admin/events").get_data(as_text=True)
    assert delay_fields(page, "welcome") == [("0", "minutes")]
    assert delay_fields(page, "browse_abandonment") == [("1", "days")]
    assert len(delay_fields(page, "checkout_recovery")) == 5, "one row per possible step"
    assert 'name="delays"' not in page, "no free-text delays"
    data = {"csrf_token": csrf, "title": "Almost done", "body": "", "url": "", "icon": "", "image": "",
            "delay_value_0": "45", "delay_unit_0": "minutes", "delay_value_1": "3", "delay_unit_1": "hours",
            "delay_value_2": "", "delay_unit_2": "hours"}
    assert client.post("/admin/events/checkout_recovery", data=data).status_code == 302
    session.expire_all()
    setting = session.scalars(sa.select(PresetSetting).where(PresetSetting.kind == "checkout_recovery")).one()
    assert setting.delays == [2700, 10800]
    for bad in ("-3", "²", "3.5"):  # "²" passes str.isdigit() but is no number int() reads
        refused = client.post("/admin/events/checkout_recovery", data={**data, "delay_value_1": bad})
        assert refused.status_code == 302, bad
        assert "delay 2: a whole number of minutes, hours or days" in client.get("/admin/events").get_data(as_text=True)
    session.expire_all()
    assert session.get(PresetSetting, setting.id).delays == [2700, 10800]


def test_the_preview_shows_a_bundled_sample_image_the_app_serves(client, new_shop):
    csrf = log_in(client, new_shop.admin_token)
    result = client.post("/admin/preview", headers={"X-CSRFToken": csrf},
                         json={"title": "x", "image": "{{ product_image }}"}).get_json()
    assert result["image"].startswith("http://pushcart.test/static/"), result["image"]
    served = client.get(result["image"].removeprefix("http://pushcart.test"))
    try:
        assert served.status_code == 200 and served.mimetype.startswith("image/")
    finally:
        served.close()  # a static file streams from disk


def test_live_preview_renders_sample_data_and_refuses_unsafe_links(client, new_shop):
    csrf = log_in(client, new_shop.admin_token)
    response = client.post("/admin/preview", headers={"X-CSRFToken": csrf},
                           json={"title": "Hi {{ first_name }} from {{ shop_name }}", "body": "{{ product_title }}",
                                 "url": "javascript:alert(1)", "icon": "https://cdn.example/i.png", "image": "{% if %}"})
    result = response.get_json()
    assert result["title"] == "Hi Alex from Acme" and result["body"] == "Linen Shirt"
    assert result["icon"] == "https://cdn.example/i.png"
    assert result["url"] == "" and "http(s)" in result["errors"]["url"]
    assert result["image"] == "" and "image" in result["errors"]


def test_the_checkout_card_saves_texts_per_step(client, new_shop, session):
    csrf = log_in(client, new_shop.admin_token)
    page = client.get("/admin/events").get_data(as_text=True)
    assert 'name="step_title_4"' in page and page.count('name="step_title_') == 5
    response = client.post("/admin/events/checkout_recovery", data={
        "csrf_token": csrf, "delays": "30m, 6h", "title": "Almost done", "body": "Finish it",
        "step_title_0": "", "step_body_0": "", "step_title_1": "Second, {{ first_name }}", "step_body_1": "",
        "step_title_2": "no delay for this one"})
    assert response.status_code == 302
    session.expire_all()
    setting = session.scalars(sa.select(PresetSetting).where(PresetSetting.kind == "checkout_recovery")).one()
    assert setting.steps == [{"title": "", "body": ""}, {"title": "Second, {{ first_name }}", "body": ""}]
    assert 'value="Second, {{ first_name }}"' in html.unescape(client.get("/admin/events").get_data(as_text=True))
    bad = client.post("/admin/events/checkout_recovery", data={
        "csrf_token": csrf, "delays": "30m, 6h", "title": "Almost done", "body": "", "step_body_1": "{% for %}"})
    assert bad.status_code == 302
    assert "steps.1.body" in client.get("/admin/events").get_data(as_text=True)


def test_push_records_page_shows_the_first_checkout_step_as_step_1(client, new_shop, session, clock):
    visitor = make_visitor(session, new_shop.shop.id, clock.now())
    first = make_push(session, visitor, "checkout_recovery", clock.now() - timedelta(hours=2), step=1)
    second = make_push(session, visitor, "checkout_recovery", clock.now() - timedelta(hours=1), step=2)
    single = make_push(session, visitor, "shipped", clock.now())
    session.commit()
    log_in(client, new_shop.admin_token)
    page = client.get("/admin/pushes").get_data(as_text=True)

    def event_of(push):
        row = page.split(f'data-push="{push.id}"', 1)[1].split("</tr>", 1)[0]
        return re.search(r'<span class="event-name">(.*?)</span>', row).group(1)

    assert event_of(first) == "Checkout recovery (step 1)"
    assert event_of(second) == "Checkout recovery (step 2)"
    assert event_of(single) == "Shipped"


def test_live_preview_reports_templates_past_the_limits_per_field(client, new_shop):
    csrf = log_in(client, new_shop.admin_token)
    response = client.post("/admin/preview", headers={"X-CSRFToken": csrf},
                           json={"title": "{{ 2.0 ** 100000 }}", "body": "{{ 'x' * 10**9 }}",
                                 "url": "{{ range(10**9)|list }}", "icon": "{{ 1 / 0 }}", "image": ""})
    assert response.status_code == 200
    result = response.get_json()
    assert (result["title"], result["body"], result["url"], result["icon"]) == ("", "", "", "")
    assert "OverflowError" in result["errors"]["title"]
    assert "template limit" in result["errors"]["body"] and "template limit" in result["errors"]["url"]
    assert "ZeroDivisionError" in result["errors"]["icon"] and "image" not in result["errors"]


def test_send_a_test_to_my_devices_plans_a_test_push_due_now_per_device(client, new_shop, session, clock):
    from tests.factories import make_test_device
    csrf = log_in(client, new_shop.admin_token)
    client.post("/admin/test-devices/send/preset/shipped", data={"csrf_token": csrf})
    assert "no test device to send to" in client.get("/admin/events").get_data(as_text=True)
    phone = make_test_device(session, new_shop.shop.id, clock.now(), name="Phone")
    visitor = make_visitor(session, new_shop.shop.id, clock.now())
    make_subscription(session, visitor, clock.now())  # a subscriber: gets no test
    session.commit()
    response = client.post("/admin/test-devices/send/preset/shipped", data={"csrf_token": csrf})
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/events#shipped")
    assert "Test push on its way to 1 test device." in client.get("/admin/events").get_data(as_text=True)
    session.expire_all()
    push = session.scalars(sa.select(Push)).one()
    assert (push.kind, push.subscription_id, push.status, push.due_at) == ("test", phone.subscription_id, "pending",
                                                                           clock.now())
    assert push.title == "Your order 1001 has shipped" and push.url.startswith("https://")
    client.post("/admin/test-devices/send/preset/nope", data={"csrf_token": csrf})
    assert "unknown kind" in client.get("/admin/events").get_data(as_text=True)
    assert session.scalar(sa.select(sa.func.count()).select_from(Push)) == 1


def test_record_pages_go_on_to_older_ones_by_cursor(client, new_shop, session, clock):
    visitor = make_visitor(session, new_shop.shop.id, clock.now())
    for i in range(52):
        make_push(session, visitor, "welcome", clock.now() - timedelta(minutes=i), title=f"Push number {i:02d}")
    session.commit()
    log_in(client, new_shop.admin_token)
    first = client.get("/admin/pushes?kind=welcome").get_data(as_text=True)
    assert "Push number 00" in first and "Push number 50" not in first
    older = re.search(r'href="([^"]*cursor=[^"]*)">Older', first)
    assert older, "page 1 links to the older pushes by cursor"
    second = client.get(html.unescape(older.group(1))).get_data(as_text=True)
    assert "Push number 50" in second and "Push number 51" in second and "Push number 49" not in second
    assert "Older" not in second and "Newest" in second


def test_pages_show_records_and_figures(client, new_shop, session, clock):
    visitor = make_visitor(session, new_shop.shop.id, clock.now(), visitor_key="vis-records")
    push = make_push(session, visitor, "welcome", clock.now(), title="Welcome aboard")
    make_click(session, push, clock.now())
    session.commit()
    log_in(client, new_shop.admin_token)
    pushes = client.get("/admin/pushes?kind=welcome").get_data(as_text=True)
    assert "Welcome aboard" in pushes and "vis-records" in pushes and "HTTP 201" in pushes
    assert "Welcome aboard" not in client.get("/admin/pushes?kind=shipped").get_data(as_text=True)
    assert "vis-records" in client.get("/admin/visitors").get_data(as_text=True)
    overview = client.get("/admin/?from=2026-01-05&to=2026-01-05").get_data(as_text=True)
    assert re.search(r'data-figure="pushes_sent">1<', overview)
    assert re.search(r'data-figure="clicks">1<', overview)
    assert "100.0 %" in overview
    assert "must not be after" in client.get("/admin/?from=2026-01-06&to=2026-01-05").get_data(as_text=True)


def test_another_shops_session_sees_only_its_own(client, new_shop, session, clock):
    other = make_shop(session, clock.now(), name="Other")
    visitor = make_visitor(session, other.shop.id, clock.now(), visitor_key="other-visitor")
    make_push(session, visitor, "welcome", clock.now(), title="Other shop push")
    session.commit()
    log_in(client, new_shop.admin_token)
    assert "Other shop push" not in client.get("/admin/pushes").get_data(as_text=True)
    assert "other-visitor" not in client.get("/admin/visitors").get_data(as_text=True)


class _ShopOrigin(BaseHTTPRequestHandler):
    requests: list[str] = []
    body = b""
    status = 200
    content_type = "text/javascript"

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.requests.append(self.path)
        self.send_response(self.status)
        self.send_header("Content-Type", self.content_type)
        if self.status == 302:
            self.send_header("Location", "https://elsewhere.example/sw.js")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def shop_origin():
    """A real local web server playing the shop's origin (bound to a free port)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ShopOrigin)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("status, body, content_type, ok, message", [
    (200, b'importScripts("http://pushcart.test/sw.js");\n', "text/javascript", True, "in place"),
    (200, b"// nothing here", "text/javascript", False, "does not import"),
    (200, b'importScripts("http://pushcart.test/sw.js");', "text/html", False, "JavaScript type"),
    (404, b"not found", "text/html", False, "HTTP 404"),
    (302, b"", "text/html", False, "redirects"),
])
def test_install_check_fetches_the_shops_own_worker_file(client, session, clock, shop_origin,
                                                         status, body, content_type, ok, message, monkeypatch):
    monkeypatch.setattr(_ShopOrigin, "requests", [])
    monkeypatch.setattr(_ShopOrigin, "status", status)
    monkeypatch.setattr(_ShopOrigin, "body", body)
    monkeypatch.setattr(_ShopOrigin, "content_type", content_type)
    new = make_shop(session, clock.now(), origins=[shop_origin])
    session.commit()
    csrf = log_in(client, new.admin_token)
    page = client.post("/admin/install/check", data={"csrf_token": csrf, "origin": shop_origin}).get_data(as_text=True)
    result = re.search(r'id="check-result"[^>]*>(.*?)</p>', page, re.S).group(1)
    assert message in result and (("✓" in result) == ok)
    assert _ShopOrigin.requests == ["/pushcart-sw.js"], "one request, redirects not followed"


def test_install_check_reaches_only_registered_origins(client, new_shop, shop_origin, monkeypatch):
    monkeypatch.setattr(_ShopOrigin, "requests", [])
    csrf = log_in(client, new_shop.admin_token)
    page = client.post("/admin/install/check", data={"csrf_token": csrf, "origin": shop_origin}).get_data(as_text=True)
    assert "only reaches your shop&#39;s registered origins" in page
    assert _ShopOrigin.requests == [], "no request may leave for an origin the shop did not register"


def test_install_page_gives_script_tag_worker_file_and_webhooks(client, new_shop):
    log_in(client, new_shop.admin_token)
    page = client.get("/admin/install").get_data(as_text=True)
    key = new_shop.shop.public_key
    shown = re.search(r'id="script-tag">(.*?)</pre>', page).group(1)
    assert "<script" not in shown, "shown as text, not as a tag"
    assert html.unescape(shown) == f'<script src="http://pushcart.test/widget.js" data-shop="{key}" async></script>'
    for topic in ("checkouts", "orders", "shipments"):
        assert f"http://pushcart.test/v1/webhooks/{key}/{topic}" in page
    download = client.get("/admin/install/pushcart-sw.js")
    assert download.get_data(as_text=True) == 'importScripts("http://pushcart.test/sw.js");\n'
    assert "attachment" in download.headers["Content-Disposition"]


def test_install_page_offers_the_wordpress_plugin_zip_to_logged_in_merchants(client, new_shop):
    from server.merchant import plugin_zip

    assert client.get("/admin/install/pushcart-for-woocommerce.zip").status_code == 302, "behind the log-in"
    log_in(client, new_shop.admin_token)
    page = client.get("/admin/install").get_data(as_text=True)
    assert 'href="/admin/install/pushcart-for-woocommerce.zip"' in page
    download = client.get("/admin/install/pushcart-for-woocommerce.zip")
    assert download.status_code == 200 and download.mimetype == "application/zip"
    assert download.headers["Content-Disposition"] == f'attachment; filename="{plugin_zip.zip_name()}"'
    assert download.get_data() == plugin_zip.build_zip()


def test_settings_form_saves_and_refuses_bad_input(client, new_shop, session):
    csrf = log_in(client, new_shop.admin_token)
    form = {"csrf_token": csrf, "name": "Acme Two", "origins": "https://acme.example\nhttps://www.acme.example",
            "sw_path": "/pushcart-sw.js", "prompt_text": "Notify me?", "prompt_color": "#112233",
            "after_pageviews": "3", "after_seconds": "0", "dismiss_days": "7", "frequency_cap_per_24h": "2",
            "attribution_hours": "48", "quiet_start": "22:00", "quiet_end": "08:00"}
    assert client.post("/admin/settings", data=form).status_code == 302
    session.expire_all()
    saved = session.get(Shop, new_shop.shop.id)
    assert (saved.name, saved.frequency_cap_per_24h, saved.attribution_hours) == ("Acme Two", 2, 48)
    assert saved.origins == ["https://acme.example", "https://www.acme.example"]
    assert (saved.quiet_hours_start, saved.quiet_hours_end) == ("22:00", "08:00")
    client.post("/admin/settings", data={**form, "name": "Half saved", "origins": "ftp://nope"})
    assert "Settings not saved" in client.get("/admin/settings").get_data(as_text=True)
    session.expire_all()
    assert session.get(Shop, new_shop.shop.id).name == "Acme Two"
