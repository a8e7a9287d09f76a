"""A push to a host of ``PUSH_DECLARATIVE_HOSTS`` (Apple's push service in production; the local
``web-push-testing`` here) arrives and decrypts to a Declarative Web Push message whose
``navigate`` links are the push's click links."""
from __future__ import annotations

import pytest

from server.core.tokens import read_click_token
from tests.factories import make_push
from tests.integration.delivery.test_webpush_testing import subscribe


@pytest.fixture
def app_config(app_config):
    app_config.update(PUSHCART_INSECURE_ENDPOINTS=True, PUSH_DECLARATIVE_HOSTS="localhost, 127.0.0.1")
    return app_config


def test_a_push_to_a_declarative_host_decrypts_to_a_declarative_message_that_navigates_to_the_click_link(
        app, session, clock, dispatcher, web_push_testing):
    sub, client_hash = subscribe(session, app, clock, web_push_testing)
    push = make_push(session, sub, clock.now(), kind="shipped", title="Your order is on its way 🚚",
                     body="Track it with UPS", icon="https://shop.example/icon.png", topic="order-1",
                     actions=[{"title": "Track", "url": "https://shop.example/track"}])
    session.commit()

    assert dispatcher.run_pass().sent == 1

    [message] = web_push_testing.notifications(client_hash)
    assert message["web_push"] == 8030
    assert (message["push_id"], message["kind"]) == (push.id, "shipped")
    notification = message["notification"]
    assert (notification["title"], notification["body"]) == ("Your order is on its way 🚚", "Track it with UPS")
    assert notification["navigate"] == message["url"]
    assert notification["tag"] == "order-1" and notification["icon"] == "https://shop.example/icon.png"
    assert notification["actions"] == [{"action": "a1", "title": "Track", "navigate": message["url"] + "?a=1"}]
    token = message["url"].removeprefix("http://pushcart.test/c/")
    assert read_click_token("test-secret-key", token) == push.id
