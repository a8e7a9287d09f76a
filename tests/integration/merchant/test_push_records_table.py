"""Push records filtered by campaign, kind, status, days and a search, paged by cursor, and exported as
CSV, through the admin API and the dashboard (issue 24)."""
from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest

from server.core.models import Campaign
from server.reports import records
from tests.dashboard_seed import make_click, make_push
from tests.factories import make_shop, make_visitor
from tests.integration.merchant.test_dashboard import log_in


def _get(client, token, path):
    return client.get(path, headers={"Authorization": f"Bearer {token}"})


def _campaign(session, shop, now, name):
    campaign = Campaign(shop_id=shop.id, name=name, status="sent", title="t", created_at=now, updated_at=now)
    session.add(campaign)
    session.flush()
    return campaign


@pytest.fixture
def seeded(session, clock):
    """Two shops; the first with a campaign's pushes, preset pushes over three days and a formula title."""
    now = clock.now()
    new, other = make_shop(session, now, name="Acme"), make_shop(session, now, name="Other")
    alex = make_visitor(session, new.shop.id, now, visitor_key="v-alex-0001")
    sam = make_visitor(session, new.shop.id, now, visitor_key="v-sam-00002")
    sale = _campaign(session, new.shop, now, "Winter sale")
    for i, visitor in enumerate((alex, sam)):
        make_push(session, visitor, "campaign", now - timedelta(minutes=i), group_key=f"campaign:{sale.id}",
                  title="50% off the WINTER range", variant="A" if i == 0 else None)
    shipped = make_push(session, alex, "shipped", now - timedelta(days=1), title="Your order shipped")
    make_click(session, shipped, now)
    make_push(session, sam, "welcome", now - timedelta(days=2), title="=HYPERLINK(\"http://x.example\")",
              body="+1 -2 @me", status="failed", http_status=400, error="bad request")
    stranger = make_visitor(session, other.shop.id, now, visitor_key="v-alex-0001")
    make_push(session, stranger, "campaign", now, group_key=f"campaign:{sale.id}", title="50% off the WINTER range")
    session.commit()
    return new, sale


def _titles(page):
    return sorted(item["title"] for item in page["items"])


def test_the_api_filters_by_campaign_days_and_search_within_the_shop(client, seeded, clock):
    new, sale = seeded
    day, before = clock.now().date().isoformat(), (clock.now().date() - timedelta(days=1)).isoformat()
    token = new.admin_token
    by_campaign = _get(client, token, f"/v1/admin/pushes?campaign={sale.id}").get_json()
    assert by_campaign["total"] == 2, "the other shop's row of the same group key is not this shop's"
    assert all(item["campaign"] == {"id": sale.id, "name": "Winter sale"} for item in by_campaign["items"])
    assert sorted(str(item["variant"]) for item in by_campaign["items"]) == ["A", "None"]
    today = _get(client, token, f"/v1/admin/pushes?from={day}&to={day}").get_json()
    yesterday_on = _get(client, token, f"/v1/admin/pushes?from={before}").get_json()
    up_to_yesterday = _get(client, token, f"/v1/admin/pushes?to={before}").get_json()
    assert (today["total"], yesterday_on["total"], up_to_yesterday["total"]) == (2, 3, 2)
    assert _titles(_get(client, token, "/v1/admin/pushes?q=winter").get_json()) == ["50% off the WINTER range"] * 2
    assert _get(client, token, "/v1/admin/pushes?q=50%25").get_json()["total"] == 2
    assert _get(client, token, "/v1/admin/pushes?q=5_%25").get_json()["total"] == 0, "% and _ are plain text"
    by_visitor = _get(client, token, "/v1/admin/pushes?q=v-sam-00002").get_json()
    assert sorted(item["kind"] for item in by_visitor["items"]) == ["campaign", "welcome"]
    both = _get(client, token, f"/v1/admin/pushes?q=v-sam-00002&campaign={sale.id}&kind=campaign&status=sent")
    assert both.get_json()["total"] == 1


def test_filters_keep_the_keyset_pages(client, session, clock):
    new = make_shop(session, clock.now())
    visitor = make_visitor(session, new.shop.id, clock.now())
    made = [make_push(session, visitor, "welcome", clock.now() - timedelta(hours=i), title=f"Hello {i % 2}")
            for i in range(240)]
    session.commit()
    since = (clock.now() - timedelta(hours=100)).date()
    wanted = [p.id for p in made if p.title == "Hello 1" and p.due_at.date() >= since]
    query = f"/v1/admin/pushes?q=hello%201&from={since.isoformat()}"
    first = _get(client, new.admin_token, query).get_json()
    assert first["total"] == len(wanted) and len(first["items"]) == records.PER_PAGE and first["next"]
    seen = [item["id"] for item in first["items"]]
    cursor = first["next"]
    while cursor:
        following = _get(client, new.admin_token, f"{query}&cursor={cursor}").get_json()
        seen += [item["id"] for item in following["items"]]
        cursor = following["next"]
    assert seen == wanted


@pytest.mark.parametrize("query", ["from=2026-13-01", "to=yesterday", "from=2026-01-10&to=2026-01-09",
                                   "campaign=abc", "kind=nope", "q=" + "x" * 201])
def test_a_bad_filter_is_422(client, seeded, query):
    new, _ = seeded
    response = _get(client, new.admin_token, f"/v1/admin/pushes?{query}")
    assert response.status_code == 422 and response.get_json()["error"]["code"] == "invalid_field"
    assert _get(client, new.admin_token, f"/v1/admin/pushes.csv?{query}").status_code == 422


def _rows(response):
    """The CSV's rows; the response is closed as a WSGI server closes it (which ends the
    streamed request and its database session)."""
    try:
        assert response.status_code == 200 and response.mimetype == "text/csv"
        assert "attachment" in response.headers["Content-Disposition"]
        return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    finally:
        response.close()


def test_the_csv_export_is_the_filtered_set_and_safe_in_a_spreadsheet(client, seeded):
    new, sale = seeded
    everything = _rows(_get(client, new.admin_token, "/v1/admin/pushes.csv"))
    assert len(everything) == 4 and list(everything[0]) == list(records.CSV_COLUMNS)
    formula = next(row for row in everything if row["kind"] == "welcome")
    assert formula["title"] == "'=HYPERLINK(\"http://x.example\")" and formula["body"] == "'+1 -2 @me"
    assert (formula["status"], formula["http_status"], formula["error"]) == ("failed", "400", "bad request")
    shipped = next(row for row in everything if row["kind"] == "shipped")
    assert (shipped["clicked"], shipped["clicks"], shipped["visitor"]) == ("yes", "1", "v-alex-0001")
    campaign_rows = _rows(_get(client, new.admin_token, f"/v1/admin/pushes.csv?campaign={sale.id}"))
    assert [(row["campaign_id"], row["campaign"]) for row in campaign_rows] == [(str(sale.id), "Winter sale")] * 2
    assert _get(client, "adm_wrong", "/v1/admin/pushes.csv").status_code == 401


def test_the_csv_export_reads_every_row_in_batches(client, session, clock, monkeypatch):
    monkeypatch.setattr(records, "CSV_BATCH", 7)
    new = make_shop(session, clock.now())
    visitor = make_visitor(session, new.shop.id, clock.now())
    made = [make_push(session, visitor, "welcome", clock.now() - timedelta(minutes=i)).id for i in range(30)]
    session.commit()
    rows = _rows(_get(client, new.admin_token, "/v1/admin/pushes.csv"))
    assert [int(row["id"]) for row in rows] == made  # newest first, each once


def test_the_dashboard_table_filters_groups_by_campaign_and_exports(client, seeded):
    new, sale = seeded
    log_in(client, new.admin_token)
    page = client.get(f"/admin/pushes?campaign={sale.id}").get_data(as_text=True)
    assert page.count("<tr data-push=") == 2 and "Winter sale" in page and "matches the filters" not in page
    assert f'href="/admin/pushes.csv?campaign={sale.id}"' in page
    assert f'<option value="{sale.id}" selected>Winter sale</option>' in page
    searched = client.get("/admin/pushes?q=shipped").get_data(as_text=True)
    assert searched.count("<tr data-push=") == 1 and "Your order shipped" in searched
    refused = client.get("/admin/pushes?from=nope").get_data(as_text=True)
    assert "from must be a date" in refused
    rows = _rows(client.get(f"/admin/pushes.csv?campaign={sale.id}"))
    assert len(rows) == 2
