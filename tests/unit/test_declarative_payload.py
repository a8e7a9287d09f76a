"""The Declarative Web Push form of the payload (Apple's push service), checked against the
shape WebKit documents ("Meet Declarative Web Push", Safari 18.4; the WHATWG Notifications
standard's declarative push message), and held under the same cap as today's form."""
from __future__ import annotations

import json
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import AnyUrl, BaseModel, ConfigDict, ValidationError

from server.delivery.payload import MAX_PLAINTEXT_BYTES, action_links, build_payload
from server.delivery.endpoints import declarative_endpoint

CLICK = "https://push.example/c/75bcd15.AAAAAAAAAAAAAAAAAAAAAA"


class DeclarativeAction(BaseModel):
    """An action of a declarative notification: its own ``navigate`` URL."""
    model_config = ConfigDict(extra="forbid", strict=True)
    action: str
    title: str
    navigate: AnyUrl
    icon: AnyUrl | None = None


class DeclarativeNotification(BaseModel):
    """The members WebKit reads from ``notification`` (anything else is not the standard's)."""
    model_config = ConfigDict(extra="forbid", strict=True)
    title: str
    navigate: AnyUrl
    body: str | None = None
    lang: str | None = None
    dir: Literal["auto", "ltr", "rtl"] | None = None
    tag: str | None = None
    icon: AnyUrl | None = None
    image: AnyUrl | None = None
    silent: bool | None = None
    require_interaction: bool | None = None
    actions: list[DeclarativeAction] | None = None


class DeclarativeMessage(BaseModel):
    """A declarative push message: ``web_push`` is 8030, ``notification`` required; other top-level
    members (Pushcart's own) are allowed and ignored by the browser."""
    model_config = ConfigDict(extra="allow", strict=True)
    web_push: Literal[8030]
    notification: DeclarativeNotification
    app_badge: int | None = None
    mutable: bool | None = None


def declarative(**overrides) -> dict:
    fields = dict(push_id=42, kind="checkout_recovery", title="Forgot something?", body="2 items in your cart",
                  url=CLICK, declarative=True)
    fields.update(overrides)
    return json.loads(build_payload(**fields))


def test_the_declarative_form_matches_webkits_schema_and_navigates_through_the_click_link():
    payload = declarative(icon="https://shop.example/i.png", image="https://shop.example/m.jpg", tag="cart-1",
                          actions=action_links(CLICK, [{"title": "See the cart"}, {"title": "Later"}]))

    message = DeclarativeMessage.model_validate(payload)

    assert str(message.notification.navigate) == CLICK
    assert (message.notification.title, message.notification.body) == ("Forgot something?", "2 items in your cart")
    assert [str(a.navigate) for a in message.notification.actions] == [f"{CLICK}?a=1", f"{CLICK}?a=2"]
    # Pushcart's own fields stay beside it, for a Safari that hands the message to the worker.
    assert (payload["push_id"], payload["kind"], payload["url"]) == (42, "checkout_recovery", CLICK)
    assert "title" not in payload  # the texts are sent once, in the notification


def test_todays_form_is_not_a_declarative_message():
    payload = json.loads(build_payload(push_id=1, kind="shipped", title="T", body="B", url=CLICK))
    with pytest.raises(ValidationError):
        DeclarativeMessage.model_validate(payload)
    assert payload == {"push_id": 1, "kind": "shipped", "title": "T", "body": "B", "url": CLICK}


@settings(max_examples=60, deadline=None)
@given(title=st.text(max_size=3000), body=st.text(max_size=6000),
       icon=st.one_of(st.none(), st.just("https://shop.example/" + "i" * 990)),
       image=st.one_of(st.none(), st.just("https://shop.example/" + "m" * 990)), buttons=st.booleans())
def test_the_declarative_form_stays_under_the_cap(title, body, icon, image, buttons):
    actions = action_links(CLICK, [{"title": "x" * 200}, {"title": "y" * 200}]) if buttons else None
    raw = build_payload(push_id=123456789, kind="browse_abandonment", title=title, body=body, url=CLICK,
                        icon=icon, image=image, tag="browse-1", actions=actions, declarative=True)
    assert len(raw) <= MAX_PLAINTEXT_BYTES
    payload = json.loads(raw.decode("utf-8"))
    assert payload["web_push"] == 8030 and payload["notification"]["navigate"] == CLICK


def test_the_cap_cuts_the_declarative_texts_last():
    payload = declarative(title="T" * 150, body="ü" * 5000, icon="https://shop.example/i.png",
                          actions=action_links(CLICK, [{"title": "Go"}]))
    raw = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    assert len(raw) <= MAX_PLAINTEXT_BYTES
    assert payload["notification"]["title"] == "T" * 150 and payload["notification"]["body"].endswith("…")
    assert "actions" in payload["notification"] and "icon" in payload["notification"]


@pytest.mark.parametrize(("endpoint", "expected"), [
    ("https://web.push.apple.com/QGZ4o7Bx", True),
    ("https://api.push.apple.com/3/device/x", True),
    ("https://fcm.googleapis.com/fcm/send/abc", False),
    ("https://updates.push.services.mozilla.com/wpush/v2/x", False),
    ("https://push.apple.com.evil.example/x", False),
    ("not a url", False),
])
def test_only_apples_push_service_gets_the_declarative_form_by_default(endpoint, expected):
    assert declarative_endpoint(endpoint, ("*.push.apple.com",)) is expected


def test_the_hosts_are_a_setting_tests_can_point_at_a_local_push_service():
    assert declarative_endpoint("http://localhost:8090/notify/abc", ("localhost",))
    assert not declarative_endpoint("https://web.push.apple.com/x", ())
