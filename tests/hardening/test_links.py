"""Links and notification URLs are http(s) only, after control characters are taken out."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from server.core.models import PresetSetting
from tests.hardening.conftest import assert_json_error

NOT_LINKS = ["java\tscript:alert(1)", "javascript:alert(1)", " javascript:alert(1)", "\x01javascript:x",
             "java\nscript:alert(1)", "{{ 'javas' ~ 'cript:alert(1)' }}", "data:text/html,<b>x</b>",
             "vbscript:msgbox(1)", "//evil.example/path"]


@pytest.mark.parametrize("url", NOT_LINKS)
def test_a_preset_url_that_is_not_http_is_refused_and_not_saved(client, session, new_shop, url):
    before = session.scalars(sa.select(PresetSetting.url).where(PresetSetting.shop_id == new_shop.shop.id,
                                                                PresetSetting.kind == "welcome")).one()
    response = client.put("/v1/admin/events/welcome", json={"url": url},
                          headers={"Authorization": f"Bearer {new_shop.admin_token}"})
    assert_json_error(response, 422)
    session.expire_all()
    after = session.scalars(sa.select(PresetSetting.url).where(PresetSetting.shop_id == new_shop.shop.id,
                                                               PresetSetting.kind == "welcome")).one()
    assert after == before


@pytest.mark.parametrize("url", NOT_LINKS[:5])
def test_event_urls_that_are_not_http_are_refused(client, shop, url):
    body = {"visitor_id": "visitor_links_1", "events": [{"type": "page_view", "url": url}]}
    assert_json_error(client.post(f"/v1/shops/{shop.public_key}/events", json=body), 422)
