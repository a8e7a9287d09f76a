"""An on-site message's preview link (the test push of "Send a test to my devices"): with a valid
token of the shop the config loads the on-site script and the ask shows that message at once,
whatever its rule, status and caps, with a sample code and counted nowhere; an expired, forged or
other shop's token changes nothing. On SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from server.collect import onsite
from server.core.models import CouponCode, OnsiteImpression, VisitorTag
from tests.factories import make_shop
from tests.integration.collect.test_onsite import ORIGIN, admin, ask, codes, events, seed


@pytest.fixture
def shop(session, clock):
    new = make_shop(session, clock.now(), name="Linen & Co", origins=[ORIGIN])
    session.commit()
    return new


def config(client, shop, page):
    response = client.get(f"/v1/shops/{shop.shop.public_key}/config", query_string={"page": page},
                          headers={"Origin": ORIGIN})
    assert response.status_code == 200
    return response.json


def link(app, shop, message_id, now):
    return onsite.preview_token(app.secret_key, shop.shop.public_key, message_id, now)


def count(session, model):
    session.expire_all()
    return session.scalar(sa.select(sa.func.count()).select_from(model))


def test_a_valid_preview_shows_the_message_at_once_with_a_sample_code_and_counts_nowhere(
        app, client, shop, session, clock):
    codes(client, shop, "CART-AAA1", "CART-BBB2")
    message = seed(client, shop, replies=[{"label": "A gift", "tag": "gift"}])  # the cart, 3rd visit, 11 s
    assert admin(client, shop, "POST", f"/onsite/messages/{message['id']}/pause").status_code == 200
    token = link(app, shop, message["id"], clock.now())

    assert "onsite" not in config(client, shop, "/"), "a paused message loads nothing without a preview"
    assert "onsite" in config(client, shop, f"/?pushcart_preview={token}")
    assert "onsite" in config(client, shop, f"/&pushcart_preview={token}"), "the marker after another parameter"

    # A visitor the server has never seen, on the home page, on their first visit, at once
    answer = ask(client, shop, "visitor-new-0001", f"/?utm_source=test&pushcart_preview={token}", dwell=0)
    shown = answer["message"]
    assert answer["preview"] is True
    assert shown["title"] == "Still thinking it over?" and shown["code"] == "TEST-COUPON"
    assert shown["token"] == onsite.PREVIEW_SHOWING and shown["replies"] == ["A gift"]
    again = ask(client, shop, "visitor-new-0001", f"/?pushcart_preview={token}", dwell=0)["message"]
    assert again["title"] == "Still thinking it over?", "no once-per-days nor daily cap for a preview"

    # The reports the script makes for a preview find no showing: nothing is recorded, no tag given
    for what, body in (("close", {}), ("click", {}), ("reply", {"reply": 0})):
        response = client.post(f"/v1/shops/{shop.shop.public_key}/onsite/{shown['token']}/{what}",
                               headers={"Origin": ORIGIN}, json={"visitor_id": "visitor-new-0001", **body})
        assert response.status_code == 404, what
    assert count(session, OnsiteImpression) == 0 and count(session, VisitorTag) == 0
    assert session.scalar(sa.select(sa.func.count()).select_from(CouponCode)
                          .where(CouponCode.assigned_at.is_not(None))) == 0, "no code taken"
    report = admin(client, shop, "GET", f"/onsite/messages/{message['id']}").json["report"]
    assert (report["impressions"], report["clicks"], report["codes"]) == (0, 0, 0)

    # The message still shows for real under its own rule afterwards, with a real code
    assert admin(client, shop, "POST", f"/onsite/messages/{message['id']}/activate").status_code == 200
    for _ in range(3):
        clock.advance(minutes=1)
        events(client, shop, "visitor-one-0001", "/cart")
    assert ask(client, shop, "visitor-one-0001")["message"]["code"] == "CART-AAA1"
    assert count(session, OnsiteImpression) == 1


def test_a_fixed_code_previews_as_itself_and_a_message_without_coupon_shows_none(app, client, shop, clock):
    assert admin(client, shop, "PUT", "/coupons/onsite", {"mode": "fixed", "code": "WELCOME10"}).status_code == 200
    fixed = seed(client, shop)
    plain = admin(client, shop, "POST", "/onsite/messages", {
        "name": "Plain", "status": "paused", "rule": {"page": "prefix", "path_prefix": "/sale"},
        "content": {"title": "Sale today"}}).json
    shown = ask(client, shop, "visitor-new-0001", f"/cart?pushcart_preview={link(app, shop, fixed['id'], clock.now())}",
                dwell=0)["message"]
    assert shown["code"] == "WELCOME10"
    shown = ask(client, shop, "visitor-new-0001", f"/sale?pushcart_preview={link(app, shop, plain['id'], clock.now())}",
                dwell=0)["message"]
    assert shown["title"] == "Sale today" and shown["code"] is None


def test_an_expired_forged_or_other_shops_token_is_ignored(app, client, shop, session, clock):
    message = admin(client, shop, "POST", "/onsite/messages", {
        "name": "Cart only", "status": "active", "rule": {"page": "cart"}, "content": {"title": "Hello"}}).json
    other = make_shop(session, clock.now(), name="Other", origins=["https://other.example"])
    session.commit()
    theirs = onsite.preview_token(app.secret_key, other.shop.public_key, message["id"], clock.now())
    forged = onsite.preview_token("not the app's secret", shop.shop.public_key, message["id"], clock.now())
    expired = link(app, shop, message["id"], clock.now() - timedelta(seconds=onsite.PREVIEW_SECONDS + 1))
    almost = link(app, shop, message["id"], clock.now() - timedelta(seconds=onsite.PREVIEW_SECONDS - 60))
    events(client, shop, "visitor-one-0001", "/")
    for token in (theirs, forged, expired, "garbage", almost[:-3] + "AAA"):
        assert "onsite" not in config(client, shop, f"/?pushcart_preview={token}"), token
        answer = ask(client, shop, "visitor-one-0001", f"/?pushcart_preview={token}", dwell=0)
        assert answer == {"message": None}, token
    assert "onsite" in config(client, shop, f"/?pushcart_preview={almost}"), "valid until its hour is over"
    assert ask(client, shop, "visitor-one-0001", f"/?pushcart_preview={almost}", dwell=0)["message"]["title"] == "Hello"

    # Another shop's message named by a token of this shop shows nothing here
    elsewhere = admin(client, other, "POST", "/onsite/messages", {
        "name": "Theirs", "status": "active", "rule": {"page": "any"}, "content": {"title": "Not yours"}}).json
    crossed = link(app, shop, elsewhere["id"], clock.now())
    assert ask(client, shop, "visitor-one-0001", f"/?pushcart_preview={crossed}", dwell=0) == {"message": None}
    assert ask(client, shop, "visitor-one-0001", f"/checkout?pushcart_preview={almost}", dwell=0) == {"message": None}
