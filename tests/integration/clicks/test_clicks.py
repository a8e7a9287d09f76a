"""Click tracking (CONTRACT section 5): ``/c/{token}`` records clicks and never redirects elsewhere."""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import sqlalchemy as sa

from server.core.models import Click, Push
from server.core.tokens import make_click_token
from tests.dashboard_seed import make_push
from tests.factories import make_shop, make_visitor


def _push(session, clock, **overrides):
    shop = make_shop(session, clock.now()).shop
    visitor = make_visitor(session, shop.id, clock.now())
    push = make_push(session, visitor, "browse_abandonment", clock.now(), **overrides)
    session.commit()
    return push


def test_click_records_and_redirects_with_utm(app, client, session, clock):
    push = _push(session, clock, url="https://shop.example/p/linen?color=blue&utm_source=old#top")
    clock.advance(minutes=5)
    response = client.get(f"/c/{make_click_token(app.config['SECRET_KEY'], push.id)}")
    assert response.status_code == 302
    target = urlsplit(response.headers["Location"])
    assert (target.scheme, target.netloc, target.path, target.fragment) == ("https", "shop.example", "/p/linen", "top")
    assert parse_qs(target.query) == {"color": ["blue"], "utm_source": ["pushcart"],
                                      "utm_medium": ["web_push"], "utm_campaign": ["browse_abandonment"]}
    session.expire_all()
    click = session.scalars(sa.select(Click)).one()
    assert (click.push_id, click.visitor_id, click.kind) == (push.id, push.visitor_id, "browse_abandonment")
    assert click.clicked_at == clock.now()
    assert session.get(Push, push.id).clicked_at == clock.now()


def test_repeat_clicks_count_as_clicks_but_keep_first_click_time(app, client, session, clock):
    push = _push(session, clock)
    token = make_click_token(app.config["SECRET_KEY"], push.id)
    first_time = clock.advance(minutes=1)
    assert client.get(f"/c/{token}").status_code == 302
    clock.advance(hours=2)
    assert client.get(f"/c/{token}").status_code == 302
    session.expire_all()
    assert session.scalar(sa.select(sa.func.count()).select_from(Click)) == 2
    assert session.get(Push, push.id).clicked_at == first_time


def test_forged_and_unknown_tokens_get_json_404_and_no_redirect(app, client, session, clock):
    push = _push(session, clock)
    good = make_click_token(app.config["SECRET_KEY"], push.id)
    forged = make_click_token("another-secret", push.id)
    unknown = make_click_token(app.config["SECRET_KEY"], push.id + 1000)
    for token in (forged, unknown, good[:-2], "zz.abc", "1", good + "x"):
        response = client.get(f"/c/{token}")
        assert response.status_code == 404, token
        assert "Location" not in response.headers
        assert response.get_json()["error"]["code"] in ("unknown_link", "not_found")
    session.expire_all()
    assert session.scalar(sa.select(sa.func.count()).select_from(Click)) == 0


def test_query_parameters_cannot_steer_the_redirect(app, client, session, clock):
    push = _push(session, clock, url="https://shop.example/cart")
    token = make_click_token(app.config["SECRET_KEY"], push.id)
    response = client.get(f"/c/{token}?url=https://evil.example/&next=//evil.example")
    assert urlsplit(response.headers["Location"]).netloc == "shop.example"


def test_a_stored_non_http_target_falls_back_to_the_shop_origin(app, client, session, clock):
    push = _push(session, clock, url="javascript:alert(1)")
    response = client.get(f"/c/{make_click_token(app.config['SECRET_KEY'], push.id)}")
    assert response.status_code == 302
    target = urlsplit(response.headers["Location"])
    assert (target.scheme, target.netloc, target.path) == ("https", "shop.example", "/")
    assert "utm_campaign=browse_abandonment" in target.query


def test_click_time_comes_from_the_clock(app, client, session, clock):
    push = _push(session, clock)
    clock.advance(timedelta(days=1))
    client.get(f"/c/{make_click_token(app.config['SECRET_KEY'], push.id)}")
    session.expire_all()
    assert session.get(Push, push.id).clicked_at == clock.now()
