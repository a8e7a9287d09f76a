"""Live campaign progress on the dashboard: a JSON read behind the log-in guard, counts that move as the
dispatcher works, time left at the set pace; a sent campaign's page is read-only."""
from __future__ import annotations

import sqlalchemy as sa

from server.core.models import Push
from server.planning import campaigns as planner
from tests.factories import make_shop, make_subscription, make_visitor
from tests.integration.merchant.test_dashboard import log_in

FORM = {"name": "Sale", "title": "Sale at {{ shop_name }}", "body": "", "url": "", "icon": "", "image": "",
        "rate_per_minute": "2"}


def start_campaign(client, session, clock, subscribers: int) -> tuple[int, object]:
    new = make_shop(session, clock.now(), origins=["https://shop.example"])
    for _ in range(subscribers):
        make_subscription(session, make_visitor(session, new.shop.id, clock.now()), clock.now())
    session.commit()
    csrf = log_in(client, new.admin_token)
    created = client.post("/admin/campaigns/new", data={**FORM, "csrf_token": csrf})
    cid = int(created.headers["Location"].rsplit("/", 1)[1])
    assert client.post(f"/admin/campaigns/{cid}/send", data={"mode": "now", "csrf_token": csrf}).status_code == 302
    return cid, new


def test_progress_needs_a_log_in(client, session, clock):
    new = make_shop(session, clock.now())
    session.commit()
    response = client.get("/admin/campaigns/1/progress")
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/login")


def test_progress_counts_move_as_pushes_go_out_with_time_left_at_the_pace(client, session, clock):
    cid, _ = start_campaign(client, session, clock, subscribers=6)
    before = client.get(f"/admin/campaigns/{cid}/progress").get_json()
    assert before["status"] == "sending" and before["sent"] == 0 and before["percent"] == 0
    session.expire_all()
    planner.sweep(session, clock.now())
    rows = session.scalars(sa.select(Push).order_by(Push.id)).all()
    for row in rows[:2]:
        row.status, row.sent_at = "sent", clock.now()
    session.commit()
    now = client.get(f"/admin/campaigns/{cid}/progress").get_json()
    assert (now["targeted"], now["planned"], now["sent"], now["pending"]) == (6, 6, 2, 4)
    assert now["percent"] == 33
    assert now["seconds_left"] == 120, "4 to go at 2 a minute"
    response = client.get(f"/admin/campaigns/{cid}/progress")
    assert response.headers["Cache-Control"] == "no-store"


def test_another_shops_campaign_progress_is_a_404(app, client, session, clock):
    cid, _ = start_campaign(client, session, clock, subscribers=1)
    other = make_shop(session, clock.now(), name="Other")
    session.commit()
    stranger = app.test_client()
    log_in(stranger, other.admin_token)
    assert stranger.get(f"/admin/campaigns/{cid}/progress").status_code == 404


def test_a_running_campaign_page_carries_the_bar_and_a_sent_one_is_read_only(client, session, clock):
    cid, _ = start_campaign(client, session, clock, subscribers=2)
    page = client.get(f"/admin/campaigns/{cid}").get_data(as_text=True)
    assert 'id="campaign-live"' in page and f'data-progress-url="/admin/campaigns/{cid}/progress"' in page
    assert "<progress" in page
    session.expire_all()
    planner.sweep(session, clock.now())
    session.execute(sa.update(Push).values(status="sent", sent_at=clock.now()))
    planner.finish_sent(session, clock.now())
    session.commit()
    page = client.get(f"/admin/campaigns/{cid}").get_data(as_text=True)
    assert 'id="campaign-live"' not in page
    assert 'id="campaign-readonly"' in page and "can no longer be changed" in page
    assert 'id="save-campaign"' not in page and 'id="merge-tags"' not in page
