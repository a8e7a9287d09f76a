"""Operations endpoints: /healthz (database, scheduler, outbox backlog) and /metrics (Prometheus)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from server.core import metrics
from server.ops.health_routes import SCHEDULER_LAST_TICK
from server.core.db import get_db
from tests.factories import make_subscription, make_visitor
from tests.hardening.conftest import ORIGIN, events_body


def add_push(session, sub, now, **values):
    from server.core.models import Push

    import secrets

    push = Push(shop_id=sub.shop_id, visitor_id=sub.visitor_id, subscription_id=sub.id,
                kind=values.pop("kind", "welcome"), dedupe_key=f"t:{secrets.token_hex(6)}", title="Hi",
                body="Welcome", url="https://shop.example/", due_at=values.pop("due_at", now),
                created_at=now, **values)
    session.add(push)
    session.flush()
    return push


def scrape(client, **headers) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_healthz_reports_database_backlog_and_oldest_due_age(client, session, shop, clock):
    now = clock.now()
    sub = make_subscription(session, make_visitor(session, shop.id, now), now)
    add_push(session, sub, now, due_at=now - timedelta(minutes=7))
    add_push(session, sub, now, due_at=now - timedelta(minutes=1))
    add_push(session, sub, now, due_at=now + timedelta(hours=1))
    add_push(session, sub, now, status="sending", due_at=now - timedelta(minutes=2))
    add_push(session, sub, now, status="sent", due_at=now - timedelta(days=1))
    session.commit()
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert body["outbox"] == {"due": 2, "scheduled": 1, "sending": 1, "oldest_due_age_seconds": 420.0}
    assert body["scheduler"] == {"last_tick": None, "last_tick_age_seconds": None, "ticking": None}
    # Due work waiting longer than ten minutes makes the service "degraded" (still 200).
    clock.advance(minutes=10)
    later = client.get("/healthz").get_json()
    assert later["status"] == "degraded" and later["outbox"]["oldest_due_age_seconds"] == 1020.0


def test_healthz_reports_the_scheduler_tick(app, client, clock):
    app.extensions[SCHEDULER_LAST_TICK] = clock.now() - timedelta(seconds=5)
    body = client.get("/healthz").get_json()
    assert body["scheduler"]["ticking"] is True and body["scheduler"]["last_tick_age_seconds"] == 5.0
    app.extensions[SCHEDULER_LAST_TICK] = (clock.now() - timedelta(minutes=10)).timestamp()
    body = client.get("/healthz").get_json()
    assert body["scheduler"]["ticking"] is False and body["status"] == "degraded"


def test_healthz_is_503_when_the_database_is_unreachable(app_config, tmp_path, make_app):
    # A database that cannot be opened: a SQLite file inside a directory that does not exist.
    app = make_app({**app_config, "DATABASE_URL": f"sqlite:///{tmp_path}/missing/dir/x.db"})
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "down" and body["database"] == "unreachable" and body["outbox"] is None
    assert app.test_client().get("/metrics").status_code == 200


def test_metrics_count_pushes_by_kind_and_outcome_and_the_backlog(client, session, shop, clock):
    now = clock.now()
    sub = make_subscription(session, make_visitor(session, shop.id, now), now)
    for status in ("sent", "sent", "failed"):
        add_push(session, sub, now, kind="welcome", status=status)
    add_push(session, sub, now, kind="shipped", status="missed")
    add_push(session, sub, now, kind="repurchase", due_at=now - timedelta(seconds=30))
    session.commit()
    samples = scrape(client)
    assert samples[("pushcart_pushes", (("kind", "welcome"), ("status", "sent")))] == 2
    assert samples[("pushcart_pushes", (("kind", "welcome"), ("status", "failed")))] == 1
    assert samples[("pushcart_pushes", (("kind", "shipped"), ("status", "missed")))] == 1
    assert samples[("pushcart_outbox", (("state", "due"),))] == 1
    assert samples[("pushcart_outbox_oldest_due_age_seconds", ())] == 30
    assert samples[("pushcart_subscriptions", (("status", "active"),))] == 1
    assert samples[("pushcart_database_up", ())] == 1


def test_metrics_count_events_accepted_and_rejected(client, shop):
    url = f"/v1/shops/{shop.public_key}/events"
    assert client.post(url, json=events_body(3), headers={"Origin": ORIGIN}).status_code == 202
    assert client.post(url, json=events_body(2), headers={"Origin": ORIGIN}).status_code == 202
    assert client.post(url, json={"visitor_id": "bad"}, headers={"Origin": ORIGIN}).status_code == 422
    assert client.post(url, data="{not json", content_type="application/json").status_code == 400
    samples = scrape(client)
    assert samples[("pushcart_events_accepted_total", ())] == 5
    rejected = {labels: v for (name, labels), v in samples.items() if name == "pushcart_events_rejected_total"}
    assert sum(rejected.values()) == 2
    assert samples[("pushcart_request_latency_seconds_count", (("group", "events"),))] == 4


def test_other_areas_can_count_and_time(app, client):
    with app.app_context():
        metrics.observe("send_latency", 0.02, {"outcome": "sent"})
        metrics.observe("send_latency", 0.2, {"outcome": "sent"})
        metrics.inc("pushes_planned", {"kind": "welcome"}, amount=3)
        metrics.inc("pushes_planned", {"wrong": "labels"})  # dropped with a warning, never raises
    metrics.inc("pushes_planned", {"kind": "welcome"})  # outside an app: dropped, never raises
    samples = scrape(client)
    assert samples[("pushcart_send_latency_seconds_count", (("outcome", "sent"),))] == 2
    assert samples[("pushcart_send_latency_seconds_bucket", (("le", "0.025"), ("outcome", "sent")))] == 1
    assert samples[("pushcart_pushes_planned_total", (("kind", "welcome"),))] == 3


@pytest.fixture
def token_config(app_config):
    return {**app_config, "METRICS_TOKEN": "m-token-123"}


def test_metrics_token_when_configured(token_config, make_app):
    app = make_app(token_config)
    client = app.test_client()
    refused = client.get("/metrics")
    assert refused.status_code == 401 and refused.get_json()["error"]["code"] == "unauthorized"
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer m-token-123"}).status_code == 200


def test_a_running_scheduler_reports_its_ticks(app, client):
    from server.delivery.scheduler import dispatch_tick

    assert client.get("/healthz").get_json()["scheduler"]["last_tick"] is None
    dispatch_tick(app)
    try:
        body = client.get("/healthz").get_json()
        assert body["scheduler"]["last_tick"] is not None
    finally:
        from server.delivery.runtime import close_delivery

        close_delivery(app)


@pytest.fixture
def delivery_config(app_config):
    return {**app_config, "PUSHCART_INSECURE_ENDPOINTS": True, "PUSH_READ_TIMEOUT": 10.0}


def test_send_latency_is_measured_per_push_service_exchange(delivery_config, make_app):
    from server.delivery.runtime import close_delivery, get_dispatcher
    from tests.fakepush import FakePushService, Reply
    from tests.factories import make_shop

    clock = delivery_config["CLOCK"]
    app = make_app(delivery_config)
    with FakePushService() as fake, get_db(app).sessionmaker() as session:
        fake.script("gone", Reply(status=410))
        shop = make_shop(session, clock.now()).shop
        for name in ("ok1", "ok2", "gone"):
            sub = make_subscription(session, make_visitor(session, shop.id, clock.now()), clock.now(),
                                    endpoint=fake.endpoint(name), keys=fake.keys())
            add_push(session, sub, clock.now(), kind="shipped")
        session.commit()
        try:
            get_dispatcher(app).run_pass()
        finally:
            close_delivery(app)
    samples = scrape(app.test_client())
    assert samples[("pushcart_send_latency_seconds_count", (("outcome", "sent"),))] == 2
    assert samples[("pushcart_send_latency_seconds_count", (("outcome", "gone"),))] == 1
    assert samples[("pushcart_send_latency_seconds_sum", (("outcome", "sent"),))] > 0
