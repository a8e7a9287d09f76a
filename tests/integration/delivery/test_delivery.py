"""The delivery engine against a programmable fake push service: outcomes, retries, leases.

Each test plans rows directly in the outbox, runs dispatcher passes on the frozen clock and
looks at what the push service received and what the rows say.
"""
from __future__ import annotations

import email.utils
import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from server.outbox import claim as outbox
from server.delivery.runtime import SENDER, get_dispatcher, get_sender
from server.core.models import Push, Subscription
from server.delivery import policy
from server.core.tokens import read_click_token
from tests.factories import make_push, make_subscription, make_visitor
from tests.fakepush import FakePushService, Reply


@pytest.fixture
def app_config(app_config, request):
    # A loaded CI machine can take longer than half a second to answer a healthy send; only the
    # test that stalls a socket on purpose asks for a short read timeout.
    marker = request.node.get_closest_marker("read_timeout")
    app_config.update(PUSHCART_INSECURE_ENDPOINTS=True, PUSH_READ_TIMEOUT=marker.args[0] if marker else 10.0,
                      PUSH_CONNECT_TIMEOUT=5.0, DISPATCH_BATCH_SIZE=50, DISPATCH_MAX_ATTEMPTS=3)
    return app_config


def subscribe(session, shop, clock, service, name="a", **overrides):
    visitor = make_visitor(session, shop.id, clock.now())
    sub = make_subscription(session, visitor, clock.now(), endpoint=service.endpoint(name),
                            keys=service.keys(), **overrides)
    return sub


def plan(session, sub, clock, n=1, **overrides):
    # Transactional by default, so the policy's marketing frequency cap stays out of the way.
    overrides.setdefault("kind", "shipped")
    rows = [make_push(session, sub, clock.now(), **overrides) for _ in range(n)]
    session.commit()
    return rows


def reload(session, row):
    session.expire_all()
    return session.get(type(row), row.id)


def test_due_push_arrives_encrypted_with_the_contract_payload(app, session, clock, fake, dispatcher, shop):
    sub = subscribe(session, shop, clock, fake)
    (push,) = plan(session, sub, clock, kind="checkout_recovery", title="Still there?", body="Your cart",
                   icon="https://shop.example/i.png", topic="checkout-abc", ttl=3600, urgency="high")

    counts = dispatcher.run_pass()

    assert counts.as_json() == {"planned": 0, "sent": 1, "failed": 0, "expired": 0, "skipped": 0}
    assert fake.violations == []
    (received,) = fake.requests
    payload = received.payload
    assert set(payload) == {"push_id", "kind", "title", "body", "icon", "url", "tag"}
    assert payload["push_id"] == push.id and payload["kind"] == "checkout_recovery"
    assert payload["title"] == "Still there?" and payload["body"] == "Your cart"
    assert payload["url"].startswith("http://pushcart.test/c/")
    assert read_click_token("test-secret-key", payload["url"].rsplit("/", 1)[1]) == push.id
    assert received.headers["ttl"] == "3600"
    assert received.headers["urgency"] == "high"
    assert received.headers["topic"] == "checkout-abc"
    assert received.claims["aud"] == fake.origin and received.claims["sub"] == "mailto:ops@pushcart.test"
    row = reload(session, push)
    assert (row.status, row.http_status, row.attempts, row.sent_at, row.lease_until) == (
        "sent", 201, 1, clock.now(), None)


def test_push_not_yet_due_waits(session, clock, fake, dispatcher, shop):
    sub = subscribe(session, shop, clock, fake)
    (push,) = plan(session, sub, clock, due_at=clock.now() + timedelta(hours=1))
    assert dispatcher.run_pass().sent == 0
    clock.advance(hours=1)
    assert dispatcher.run_pass().sent == 1
    assert reload(session, push).status == "sent"


def test_vapid_jwt_is_signed_once_per_origin(app, session, clock, dispatcher, shop):
    with FakePushService() as one, FakePushService() as two:
        plan(session, subscribe(session, shop, clock, one, "x"), clock, n=5)
        plan(session, subscribe(session, shop, clock, two, "y"), clock, n=5)
        assert dispatcher.run_pass().sent == 10
        assert get_sender(app).vapid_cache.signed == 2
        assert one.violations == [] and two.violations == []
        assert {r.claims["aud"] for r in one.requests} == {one.origin}
        assert {r.claims["aud"] for r in two.requests} == {two.origin}


def test_gone_subscription_is_expired_and_its_pending_pushes_cancelled(session, clock, fake, dispatcher, shop):
    gone = subscribe(session, shop, clock, fake, "gone")
    kept = subscribe(session, shop, clock, fake, "kept")
    fake.script("gone", Reply(410))
    (first,) = plan(session, gone, clock)
    (later,) = plan(session, gone, clock, due_at=clock.now() + timedelta(days=1))
    (other,) = plan(session, kept, clock)

    counts = dispatcher.run_pass()

    assert (counts.sent, counts.expired) == (1, 1)
    assert reload(session, first).status == "expired"
    assert reload(session, first).http_status == 410
    assert reload(session, later).status == "cancelled"
    sub = reload(session, gone)
    assert sub.status == "expired" and sub.ended_at == clock.now()
    assert reload(session, kept).status == "active" and reload(session, other).status == "sent"


@pytest.mark.parametrize("status", [404, 410])
def test_404_and_410_both_mean_gone(session, clock, fake, dispatcher, shop, status):
    sub = subscribe(session, shop, clock, fake)
    fake.script("a", Reply(status))
    plan(session, sub, clock)
    assert dispatcher.run_pass().expired == 1
    assert reload(session, sub).status == "expired"


def test_413_fails_and_is_never_resent(session, clock, fake, dispatcher, shop):
    sub = subscribe(session, shop, clock, fake)
    fake.script("a", Reply(413))
    (push,) = plan(session, sub, clock)
    assert dispatcher.run_pass().failed == 1
    clock.advance(hours=2)
    dispatcher.run_pass()
    assert len(fake.requests) == 1
    row = reload(session, push)
    assert (row.status, row.http_status, row.error) == ("failed", 413, "payload too large")


@pytest.mark.parametrize("status", [400, 401, 403])
def test_our_fault_fails_and_keeps_the_subscription(session, clock, fake, dispatcher, shop, status, caplog):
    sub = subscribe(session, shop, clock, fake)
    fake.script("a", Reply(status, body=b"bad jwt"))
    (push,) = plan(session, sub, clock)
    assert dispatcher.run_pass().failed == 1
    row = reload(session, push)
    assert row.status == "failed" and row.http_status == status and "VAPID" in row.error
    assert reload(session, sub).status == "active"
    assert any("VAPID" in r.getMessage() for r in caplog.records if r.levelname == "ERROR")
    assert not any(fake.endpoint("a") in r.getMessage() for r in caplog.records)


def test_429_honours_retry_after_seconds_and_spares_other_origins(session, clock, fake, dispatcher, shop):
    with FakePushService() as other:
        limited = subscribe(session, shop, clock, fake)
        fake.script("a", Reply(429, {"Retry-After": "120"}))
        (first,) = plan(session, limited, clock)
        (elsewhere,) = plan(session, subscribe(session, shop, clock, other, "b"), clock)

        counts = dispatcher.run_pass()

        assert counts.sent == 1 and reload(session, elsewhere).status == "sent"
        row = reload(session, first)
        assert (row.status, row.http_status, row.attempts) == ("pending", 429, 1)
        assert row.lease_until == clock.now() + timedelta(seconds=120) and row.due_at == clock.now()
        # While the origin's Retry-After runs, the next push to it is held back unsent, attempt kept.
        (second,) = plan(session, limited, clock)
        (again,) = plan(session, subscribe(session, shop, clock, other, "c"), clock)
        assert dispatcher.run_pass().sent == 1 and reload(session, again).status == "sent"
        held = reload(session, second)
        assert (held.status, held.attempts, held.http_status) == ("pending", 0, None)
        assert held.lease_until >= clock.now() + timedelta(seconds=100)
        assert len(fake.requests) == 1


def test_429_with_an_http_date(app, session, clock, fake, dispatcher, shop):
    sub = subscribe(session, shop, clock, fake)
    when = email.utils.format_datetime(clock.now() + timedelta(minutes=10), usegmt=True)
    fake.script("a", Reply(429, {"Retry-After": when}))
    (push,) = plan(session, sub, clock)
    # The sender compares an HTTP date with the wall clock; give it the frozen one.
    get_sender(app)._time = lambda: clock.now().timestamp()
    dispatcher.run_pass()
    row = reload(session, push)
    assert row.status == "pending" and row.lease_until == clock.now() + timedelta(minutes=10)


def test_5xx_backs_off_exponentially_with_jitter_then_fails(session, clock, fake, dispatcher, shop):
    sub = subscribe(session, shop, clock, fake)
    fake.default = Reply(503)
    (push,) = plan(session, sub, clock, ttl=7 * 86400)
    delays = []
    for attempt in (1, 2):
        start = clock.now()
        assert dispatcher.run_pass().failed == 0
        row = reload(session, push)
        assert (row.status, row.attempts, row.http_status) == ("pending", attempt, 503)
        delays.append((row.lease_until - start).total_seconds())
        assert dispatcher.run_pass().as_json()["failed"] == 0 and len(fake.requests) == attempt  # not yet
        clock.set(row.lease_until)
    assert 15 <= delays[0] <= 30 and 30 <= delays[1] <= 60  # base 30 s, doubling, jitter in [½, 1]
    assert dispatcher.run_pass().failed == 1
    row = reload(session, push)
    assert row.status == "failed" and row.attempts == 3 and "gave up after 3 attempts" in row.error
    assert len(fake.requests) == 3


@pytest.mark.read_timeout(0.5)
def test_a_stalled_socket_times_out_and_is_retried(session, clock, fake, dispatcher, shop):
    sub = subscribe(session, shop, clock, fake)
    fake.script("a", Reply(stall=True))
    (push,) = plan(session, sub, clock)
    dispatcher.run_pass()
    fake.release_stalled()
    row = reload(session, push)
    assert (row.status, row.error, row.attempts) == ("pending", "timeout", 1)
    clock.set(row.lease_until)
    assert dispatcher.run_pass().sent == 1


def test_a_redirect_is_never_followed(session, clock, fake, dispatcher, shop):
    with FakePushService() as inside:
        sub = subscribe(session, shop, clock, fake)
        fake.script("a", Reply(307, {"Location": inside.endpoint("internal")}))
        (push,) = plan(session, sub, clock)
        assert dispatcher.run_pass().failed == 1
        assert inside.requests == []
        row = reload(session, push)
        assert row.status == "failed" and row.http_status == 307 and "not followed" in row.error


def test_a_push_whose_ttl_passed_is_missed_not_sent_late(session, clock, fake, dispatcher, shop):
    sub = subscribe(session, shop, clock, fake)
    (push,) = plan(session, sub, clock, due_at=clock.now() - timedelta(hours=2), ttl=3600)
    assert dispatcher.run_pass().skipped == 1
    assert fake.requests == [] and reload(session, push).status == "missed"


def test_a_retried_push_is_missed_once_its_ttl_from_the_planned_time_passes(session, clock, fake, dispatcher,
                                                                            shop):
    sub = subscribe(session, shop, clock, fake)
    fake.default = Reply(503)
    (push,) = plan(session, sub, clock, ttl=45)
    dispatcher.run_pass()
    row = reload(session, push)
    assert row.status == "pending" and row.due_at == clock.now() and row.lease_until > clock.now()
    clock.set(row.lease_until)  # 15-30 s later: still within the TTL, sent again
    dispatcher.run_pass()
    row = reload(session, push)
    clock.set(row.lease_until)  # 30-60 s more: past due_at + 45 s
    assert dispatcher.run_pass().skipped == 1
    assert reload(session, push).status == "missed" and len(fake.requests) == 2


def test_endpoint_refused_at_send_time_is_failed_and_never_contacted(app, session, clock, fake, dispatcher, shop):
    sub = subscribe(session, shop, clock, fake)
    (push,) = plan(session, sub, clock)
    app.config["PUSHCART_INSECURE_ENDPOINTS"] = False  # the loopback mock is no longer allowed
    assert dispatcher.run_pass().failed == 1
    assert fake.requests == []
    row = reload(session, push)
    assert row.status == "failed" and row.error.startswith("endpoint not allowed")


def test_inactive_subscription_is_skipped_by_the_policy(session, clock, fake, dispatcher, shop):
    sub = subscribe(session, shop, clock, fake, status="unsubscribed")
    (push,) = plan(session, sub, clock)
    assert dispatcher.run_pass().skipped == 1
    row = reload(session, push)
    assert row.status == "skipped" and row.error and fake.requests == []


def test_deferral_by_the_policy_gives_the_attempt_back(session, clock, fake, dispatcher, shop, monkeypatch):
    sub = subscribe(session, shop, clock, fake)
    (push,) = plan(session, sub, clock)
    until = clock.now() + timedelta(hours=8)
    monkeypatch.setattr(policy, "gate_many", lambda s, rows, now, **_: [policy.Decision("defer", "quiet_hours", until)] * len(rows))
    assert dispatcher.run_pass().as_json() == {"planned": 0, "sent": 0, "failed": 0, "expired": 0, "skipped": 0}
    row = reload(session, push)
    assert (row.status, row.due_at, row.attempts) == ("pending", until, 0)
    assert fake.requests == []


def test_oversized_texts_are_cut_to_fit_under_3_kb(session, clock, fake, dispatcher, shop):
    sub = subscribe(session, shop, clock, fake)
    plan(session, sub, clock, title="Ünïcödé " * 200, body="😀 " * 2000,
         icon="https://shop.example/" + "i" * 900, image="https://shop.example/" + "m" * 900)
    assert dispatcher.run_pass().sent == 1
    assert fake.violations == []
    (received,) = fake.requests
    assert received.body_length < 3000
    assert received.payload["body"].endswith("…") and len(received.payload["title"].encode()) <= 200


def test_a_killed_workers_rows_are_reclaimed_after_the_lease(session, clock, fake, dispatcher, shop):
    sub = subscribe(session, shop, clock, fake)
    rows = plan(session, sub, clock, n=3)
    # A worker claims them and dies before recording anything.
    outbox.claim_due(session, clock.now(), 10, timedelta(seconds=60))
    session.commit()
    clock.advance(seconds=59)
    assert dispatcher.run_pass().sent == 0
    clock.advance(seconds=2)
    assert dispatcher.run_pass().sent == 3
    assert [reload(session, r).attempts for r in rows] == [2, 2, 2]


def test_a_stale_worker_cannot_overwrite_a_newer_claim(session, clock, fake, dispatcher, shop):
    sub = subscribe(session, shop, clock, fake)
    (push,) = plan(session, sub, clock)
    (stale,) = outbox.claim_due(session, clock.now(), 10, timedelta(seconds=1))
    session.commit()
    clock.advance(seconds=5)
    assert dispatcher.run_pass().sent == 1
    outbox.record_outcomes(session, [outbox.Outcome(stale.id, 1, "failed", 1, stale.due_at, 500, "late")])
    session.commit()
    assert reload(session, push).status == "sent"


def test_claims_skip_rows_locked_by_another_worker(app, session, clock, fake, shop):
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("SKIP LOCKED is PostgreSQL's; SQLite runs one worker")
    sub = subscribe(session, shop, clock, fake)
    plan(session, sub, clock, n=6)
    from server.core.db import get_db
    other = get_db(app).sessionmaker()
    try:
        mine = outbox.claim_due(session, clock.now(), 4, timedelta(seconds=60))  # not committed yet
        theirs = outbox.claim_due(other, clock.now(), 4, timedelta(seconds=60))
        assert len(mine) == 4 and len(theirs) == 2
        assert not {p.id for p in mine} & {p.id for p in theirs}
    finally:
        other.rollback()
        other.close()


def test_sweeps_run_first_and_count_as_planned(session, clock, fake, dispatcher, shop, monkeypatch):
    from server.planning import hooks

    sub = subscribe(session, shop, clock, fake)
    session.commit()
    seen = []

    def sweeps(s, now, config=None):
        seen.append(now)
        make_push(s, s.get(Subscription, sub.id), now, kind="shipped")
        return 1

    monkeypatch.setattr(hooks, "run_sweeps", sweeps)
    counts = dispatcher.run_pass()
    assert seen == [clock.now()] and (counts.planned, counts.sent) == (1, 1)


def test_a_fake_sender_can_stand_in(app, session, clock, fake, shop):
    from tests.fakesender import FakeSender

    sub = subscribe(session, shop, clock, fake)
    plan(session, sub, clock, n=3)
    recorder = FakeSender()
    app.extensions[SENDER] = recorder
    try:
        assert get_dispatcher(app).run_pass().sent == 3
    finally:
        app.extensions.pop(SENDER)
    assert fake.requests == []
    (batch,) = recorder.batches
    assert [m.push_id for m in batch] == sorted(session.scalars(sa.select(Push.id)).all())
    assert all(json.loads(m.payload)["push_id"] == m.push_id for m in batch)


def test_the_dispatcher_records_what_the_sender_answers(app, session, clock, fake, shop):
    # Each outcome of the protocol, through the one fake: sent, gone (the subscription expires),
    # retry (back to pending), failed.
    from server.delivery.push.outcomes import SendResult
    from tests.fakesender import FakeSender

    subs = [subscribe(session, shop, clock, fake, name=f"s{i}") for i in range(4)]
    pushes = [make_push(session, sub, clock.now(), kind="shipped") for sub in subs]
    session.commit()
    answers = dict(zip((p.id for p in pushes), [SendResult("sent", 201), SendResult("gone", 410, "gone"),
                                                 SendResult("retry", 503, "busy"), SendResult("failed", 400, "bad")]))
    app.extensions[SENDER] = FakeSender(lambda message: answers[message.push_id])
    try:
        counts = get_dispatcher(app).run_pass()
    finally:
        app.extensions.pop(SENDER)
    assert (counts.sent, counts.expired, counts.failed) == (1, 1, 1)
    session.expire_all()
    assert [session.get(Push, p.id).status for p in pushes] == ["sent", "expired", "pending", "failed"]
    assert session.get(Subscription, subs[1].id).status == "expired"
