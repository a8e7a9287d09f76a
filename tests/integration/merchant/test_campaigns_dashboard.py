"""The dashboard's Campaigns pages through the test client: the segment builder's form fields
become the API's segment, every POST needs the CSRF token, errors are flashed, text is escaped."""
from __future__ import annotations

import sqlalchemy as sa

from server.core.models import Campaign, Order, Push
from server.merchant.pages.campaigns import segment_from_form, segment_to_form
from server.planning import campaigns as planner
from tests.factories import make_shop, make_subscription, make_visitor
from tests.integration.merchant.test_dashboard import log_in

FORM = {"name": "Sommer <b>sale</b>", "title": "Hallo {{ first_name }}", "body": "Neu", "url": "https://shop.example/sale",
        "icon": "", "image": "", "rate_per_minute": "60",
        "seg_locale": "1", "seg_locale_prefix": "de", "seg_bought": "1", "seg_bought_days": "",
        "seg_last_seen": "", "seg_last_seen_days": "7", "seg_browser_name": "chrome"}


def test_the_builder_reads_only_ticked_conditions_and_round_trips():
    segment = segment_from_form(FORM)
    assert segment == [{"type": "bought"}, {"type": "locale", "prefix": "de"}]
    assert segment_to_form(segment) == {"bought": {"type": "bought"}, "locale": {"type": "locale", "prefix": "de"}}


def test_create_preview_send_and_cancel_from_the_dashboard(client, session, clock):
    new = make_shop(session, clock.now(), origins=["https://shop.example"])
    jonas = make_visitor(session, new.shop.id, clock.now(), first_name="Jonas", locale="de-DE")
    make_subscription(session, jonas, clock.now())
    session.add(Order(
        shop_id=new.shop.id, order_ref="o-1", visitor_id=jonas.id, status="paid", total=5, currency="USD",
        paid_at=clock.now()))
    make_subscription(session, make_visitor(session, new.shop.id, clock.now(), locale="de-AT"), clock.now())
    session.commit()
    csrf = log_in(client, new.admin_token)
    assert client.post("/admin/campaigns/new", data=FORM).status_code == 400  # no CSRF token
    created = client.post("/admin/campaigns/new", data={**FORM, "csrf_token": csrf})
    assert created.status_code == 302
    campaign = session.scalars(sa.select(Campaign)).one()
    assert campaign.segment == [{"type": "bought"}, {"type": "locale", "prefix": "de"}] and campaign.rate_per_minute == 60

    listing = client.get("/admin/campaigns").get_data(as_text=True)
    assert "Sommer &lt;b&gt;sale&lt;/b&gt;" in listing and "<b>sale</b>" not in listing
    preview = client.post(f"/admin/campaigns/{campaign.id}/preview", data={**FORM, "csrf_token": csrf}).get_data(as_text=True)
    assert 'id="preview-audience">1<' in preview and "Hallo Jonas" in preview

    bad = client.post("/admin/campaigns/new", data={**FORM, "title": "{{ oops", "csrf_token": csrf}, follow_redirects=True)
    assert "Campaign not saved: title:" in bad.get_data(as_text=True)

    late = client.post(f"/admin/campaigns/{campaign.id}/send", data={"mode": "at", "send_at": "2020-01-01T09:00",
                                                                    "csrf_token": csrf}, follow_redirects=True)
    assert "Not sent: send_at: must not be in the past" in late.get_data(as_text=True)
    sent = client.post(f"/admin/campaigns/{campaign.id}/send", data={"mode": "now", "csrf_token": csrf},
                       follow_redirects=True)
    assert "Sending" in sent.get_data(as_text=True)
    session.expire_all()
    planner.sweep(session, clock.now())
    session.commit()
    assert session.scalar(sa.select(sa.func.count()).select_from(Push).where(Push.kind == "campaign")) == 1
    page = client.get(f"/admin/campaigns/{campaign.id}").get_data(as_text=True)
    assert 'data-figure="targeted">1<' in page and 'id="cancel-campaign"' in page
    cancelled = client.post(f"/admin/campaigns/{campaign.id}/cancel", data={"csrf_token": csrf}, follow_redirects=True)
    assert "Cancelled; 1 pending push will not be sent." in cancelled.get_data(as_text=True)
    session.expire_all()
    assert session.scalars(sa.select(Push.status)).all() == ["cancelled"]
