"""Whatever arrives at the collect API, the answer is a clear 2xx/4xx in the one error shape, never a 500."""
from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.core.models import Event
from tests.factories import make_shop

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
event = st.fixed_dictionaries({"type": st.sampled_from(["page_view", "product_view", "add_to_cart", "leave",
                                                         "identify", "checkout_started", "bogus"])},
                              optional={"id": st.text(max_size=70), "url": st.text(max_size=60),
                                        "referrer": json_values, "product": json_values, "cart": json_values,
                                        "email": json_values})
bodies = st.one_of(
    json_values,
    st.fixed_dictionaries({"visitor_id": st.text(max_size=70) | json_values,
                           "events": st.lists(event, max_size=5) | json_values}),
)


@pytest.fixture
def app_config(app_config):
    # Many requests from one address: the rate limits would answer 429 long before the validation.
    return {**app_config, "RATELIMIT_ENABLED": False}


@pytest.fixture
def shop_key(session, clock):
    new = make_shop(session, clock.now())
    session.commit()
    return new.shop.public_key


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies, path=st.sampled_from(["events", "subscriptions"]))
def test_any_json_gets_a_clear_answer(client, session, shop_key, body, path):
    response = client.post(f"/v1/shops/{shop_key}/{path}", data=json.dumps(body), content_type="text/plain")
    assert response.status_code in (200, 201, 202, 400, 413, 422), (response.status_code, response.data[:300])
    if response.status_code >= 400:
        error = response.get_json()["error"]
        assert set(error) == {"code", "message"} and error["code"] and error["message"]
    elif path == "events":
        session.expire_all()
        assert session.scalar(sa.select(sa.func.count()).select_from(Event)) >= 1


onsite_bodies = st.one_of(
    json_values,
    st.fixed_dictionaries({"visitor_id": st.sampled_from(["visitor-fuzz-01"]) | json_values},
                          optional={"url": st.text(max_size=60) | json_values, "dwell": json_values,
                                    "product": json_values, "exit": json_values, "reply": json_values}),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=onsite_bodies, path=st.sampled_from(["onsite", "onsite/unknown-token/close", "onsite/t/reply"]))
def test_any_json_gets_a_clear_answer_from_the_onsite_calls(client, shop_key, body, path):
    response = client.post(f"/v1/shops/{shop_key}/{path}", data=json.dumps(body), content_type="text/plain")
    assert response.status_code in (200, 400, 404, 413, 422), (response.status_code, response.data[:300])
    if response.status_code >= 400:
        error = response.get_json()["error"]
        assert set(error) == {"code", "message"} and error["code"] and error["message"]
