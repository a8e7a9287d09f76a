"""``subscriptions.unclicked_streak`` (``server.core.streaks``): the triggers on pushes keep, for
every writer, the number of sent pushes after the latest clicked one (test pushes aside), and a
streak of at least n is exactly "received at least n pushes and clicked none of the last n"."""
from __future__ import annotations

import json
import random
import threading
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from server.core import streaks
from server.core.models import Push, Subscription
from server.core.tokens import make_click_token
from server.delivery.engagement import unengaged_count, unengaged_subscriptions
from tests.factories import dispatch, make_push, make_shop, make_subscription, make_visitor
from tests.fakepush import Reply


def streak(session, sub) -> int:
    session.expire_all()
    return session.scalar(sa.select(Subscription.unclicked_streak).where(Subscription.id == sub.id))


def expected_streaks(session) -> dict[int, int]:
    """Each subscription's streak counted in Python from its pushes (the definition)."""
    rows = session.execute(sa.select(Push.subscription_id, Push.sent_at, Push.id, Push.clicked_at)
                           .where(Push.status == "sent", Push.sent_at.is_not(None), Push.kind != "test",
                                  Push.subscription_id.is_not(None))).all()
    by_sub: dict[int, list] = {}
    for sid, sent_at, push_id, clicked_at in rows:
        by_sub.setdefault(sid, []).append((sent_at, push_id, clicked_at is not None))
    found = {sid: 0 for sid in session.scalars(sa.select(Subscription.id))}
    for sid, pushes in by_sub.items():
        pushes.sort()
        clicked = [i for i, (_, _, was_clicked) in enumerate(pushes) if was_clicked]
        found[sid] = len(pushes) - (clicked[-1] + 1 if clicked else 0)
    return found


def ranked_unengaged(session, n: int) -> set[int]:
    """The subscriptions that received at least n pushes and clicked none of their last n, by
    ranking every sent push, as the engagement code did before the streak."""
    ranked: dict[int, list] = {}
    for sid, clicked_at in session.execute(
            sa.select(Push.subscription_id, Push.clicked_at)
            .where(Push.status == "sent", Push.sent_at.is_not(None), Push.kind != "test",
                   Push.subscription_id.is_not(None))
            .order_by(Push.subscription_id, Push.sent_at.desc(), Push.id.desc())).all():
        ranked.setdefault(sid, []).append(clicked_at)
    return {sid for sid, clicks in ranked.items() if len(clicks) >= n and all(c is None for c in clicks[:n])}


@pytest.fixture
def sub(session, clock):
    shop = make_shop(session, clock.now()).shop
    return make_subscription(session, make_visitor(session, shop.id, clock.now()), clock.now())


def send(session, sub, at: datetime, **extra) -> Push:
    """A push planned, claimed and sent at ``at`` (three writes, as the dispatcher makes them)."""
    push = make_push(session, sub, at, **extra)
    push.status = "sending"
    session.flush()
    push.status, push.sent_at = "sent", at
    session.flush()
    return push


def test_the_streak_follows_sends_clicks_test_pushes_and_deletions(session, sub, clock):
    t = clock.now()
    pushes = [send(session, sub, t + timedelta(minutes=i)) for i in range(5)]
    assert streak(session, sub) == 5  # a send: +1 each
    pushes[4].clicked_at = t + timedelta(hours=1)
    session.flush()
    assert streak(session, sub) == 0  # a click on the latest
    for push in pushes:
        push.clicked_at = None
    session.flush()
    assert streak(session, sub) == 5
    pushes[1].clicked_at = t + timedelta(hours=1)
    session.flush()
    assert streak(session, sub) == 3  # a click on an older push: the three sent after it

    test_push = send(session, sub, t + timedelta(minutes=10), kind="test")
    assert streak(session, sub) == 3  # a test push: no change
    test_push.clicked_at = t + timedelta(minutes=11)
    session.flush()
    assert streak(session, sub) == 3  # nor its click

    session.delete(pushes[4])
    session.flush()
    assert streak(session, sub) == 2  # a deleted push
    session.delete(pushes[1])
    session.flush()
    assert streak(session, sub) == 3  # the clicked one deleted: all of the rest
    pending = make_push(session, sub, t + timedelta(hours=2))
    session.delete(pending)
    session.flush()
    assert streak(session, sub) == 3  # a push never sent counts for nothing
    session.commit()
    assert expected_streaks(session)[sub.id] == 3


def test_other_changes_move_the_streak_too(session, sub, clock):
    """An insert already sent, a push that failed after all, a kind changed to ``test``, a push moved
    to another subscription, two sent at the same instant (the later id comes after)."""
    t = clock.now()
    other = make_subscription(session, make_visitor(session, sub.shop_id, t), t)
    inserted = make_push(session, sub, t, status="sent", sent_at=t)
    second = make_push(session, sub, t, status="sent", sent_at=t, clicked_at=t + timedelta(minutes=1))
    assert (inserted.id < second.id, streak(session, sub)) == (True, 0)
    second.clicked_at, inserted.clicked_at = None, t + timedelta(minutes=1)
    session.flush()
    assert streak(session, sub) == 1  # the same sent_at: the higher id is the later push
    third = send(session, sub, t + timedelta(minutes=5))
    assert streak(session, sub) == 2
    third.status = "failed"
    session.flush()
    assert streak(session, sub) == 1
    second.kind = "test"
    session.flush()
    assert streak(session, sub) == 0
    inserted.subscription_id = other.id
    session.flush()
    assert (streak(session, sub), streak(session, other)) == (0, 0)
    second.kind, second.subscription_id = "welcome", other.id
    session.flush()
    assert (streak(session, sub), streak(session, other)) == (0, 1)
    session.commit()
    assert expected_streaks(session) == {sub.id: 0, other.id: 1}


def test_a_send_after_the_latest_click_adds_one_any_other_change_recounts(session, sub, clock):
    """The triggers' two ways, told apart by a stored streak gone wrong: a push sent after the
    subscription's latest click adds one to what is stored (in order or not); a push sent before
    that click recounts from the rows."""
    t = clock.now()
    send(session, sub, t)
    send(session, sub, t + timedelta(minutes=10)).clicked_at = t + timedelta(minutes=11)
    session.flush()
    session.execute(sa.update(Subscription).where(Subscription.id == sub.id).values(unclicked_streak=99))
    send(session, sub, t + timedelta(minutes=20))
    assert streak(session, sub) == 100
    send(session, sub, t + timedelta(minutes=5))  # before the click: recounted (the one at 20)
    assert streak(session, sub) == 1
    send(session, sub, t + timedelta(minutes=15))  # out of order, but after the click: one more
    assert streak(session, sub) == 2


def test_the_streak_means_what_the_ranking_meant_on_random_histories(session, clock):
    """Random sends, clicks, test pushes, failures and deletions, many rows a statement (the
    dispatcher's batch write): after each round every streak is the count from the rows, and the
    policy's and the guardrail's answers are the ranking's for every n."""
    rng = random.Random(25)
    t = clock.now()
    shop = make_shop(session, t).shop
    subs = [make_subscription(session, make_visitor(session, shop.id, t), t) for _ in range(12)]
    session.commit()
    step, seen = 0, set()
    for _ in range(12):
        planned = []
        for _ in range(rng.randint(3, 15)):
            step += 1
            sub = rng.choice(subs)
            kind = rng.choice(["welcome", "shipped", "browse_abandonment", "test"])
            at = t + timedelta(minutes=rng.choice([step, step, step - 3, step - 3]))  # ties, out of order
            planned.append(make_push(session, sub, at, kind=kind, dedupe_key=f"r:{step}").id)
        session.commit()
        # One statement sends them, another fails some: the set-based triggers see several rows a subscription.
        session.execute(sa.update(Push).where(Push.id.in_(planned)).values(status="sent", sent_at=Push.due_at))
        failed = rng.sample(planned, k=len(planned) // 4)
        session.execute(sa.update(Push).where(Push.id.in_(failed)).values(status="failed"))
        sent_ids = list(session.scalars(sa.select(Push.id).where(Push.status == "sent")))
        just_sent = [i for i in planned if i not in failed]
        clicked = rng.sample(sent_ids, k=min(len(sent_ids), rng.randint(0, 3))) + rng.sample(just_sent, k=1)
        session.execute(sa.update(Push).where(Push.id.in_(clicked), Push.clicked_at.is_(None))
                        .values(clicked_at=t + timedelta(days=1)))
        if rng.random() < 0.4:
            session.execute(sa.delete(Push).where(Push.id.in_(rng.sample(sent_ids, k=min(2, len(sent_ids))))))
        session.commit()
        stored = dict(session.execute(sa.select(Subscription.id, Subscription.unclicked_streak)).all())
        assert stored == expected_streaks(session)
        seen |= set(stored.values())
        for n in range(1, 7):
            ranked = ranked_unengaged(session, n)
            assert unengaged_subscriptions(session, {s.id: n for s in subs}) == ranked
            assert unengaged_count(session, shop.id, n) == (len(subs), len(ranked))
    assert 0 in seen and max(seen) >= 4  # the histories reached both ends


def test_a_rebuild_gives_back_what_the_triggers_keep(session, runner, clock):
    """``stats rebuild`` recomputes the streaks (of one shop, or every shop) from the pushes."""
    t = clock.now()
    shops = [make_shop(session, t, name=name) for name in ("A", "B")]
    subs = [make_subscription(session, make_visitor(session, s.shop.id, t), t) for s in shops for _ in range(2)]
    for i, sub in enumerate(subs):
        for minute in range(i + 2):
            make_push(session, sub, t, status="sent", sent_at=t + timedelta(minutes=minute),
                      clicked_at=t if minute == 1 and i % 2 else None)
    session.commit()
    kept = expected_streaks(session)
    assert sorted(kept.values()) == [1, 2, 3, 4]
    session.execute(sa.update(Subscription).values(unclicked_streak=99))  # a column gone wrong
    session.commit()
    result = runner.invoke(args=["stats", "rebuild", "--shop", shops[0].shop.public_key])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["streaks_changed"] == 2
    stored = dict(session.execute(sa.select(Subscription.id, Subscription.unclicked_streak)).all())
    assert stored == {**kept, subs[2].id: 99, subs[3].id: 99}  # shop B's left alone
    assert streaks.rebuild(session.connection()) == 2
    session.commit()
    assert dict(session.execute(sa.select(Subscription.id, Subscription.unclicked_streak)).all()) == kept


# -- through the dispatcher and the click link -------------------------------------------------------


@pytest.fixture
def app_config(app_config):
    app_config.update(PUSHCART_INSECURE_ENDPOINTS=True)
    return app_config




def test_the_dispatchers_batch_and_a_click_keep_the_streaks(app, client, session, clock, fake):
    """One batch sends three pushes to a, one to b (which had two unclicked), a test push to c;
    d's push service answers 410 (expired: not sent). The click link on one of a's resets it."""
    now = clock.now()
    shop = make_shop(session, now).shop
    subs = {name: make_subscription(session, make_visitor(session, shop.id, now), now,
                                    endpoint=fake.endpoint(name), keys=fake.keys()) for name in "abcd"}
    for minute in (1, 2):
        at = now - timedelta(days=1, minutes=minute)
        make_push(session, subs["b"], at, kind="shipped", status="sent", sent_at=at)
    due = [make_push(session, subs["a"], now, kind="shipped") for _ in range(3)]
    make_push(session, subs["b"], now, kind="shipped")
    make_push(session, subs["c"], now, kind="test")
    make_push(session, subs["d"], now, kind="shipped")
    fake.script("d", Reply(410))
    session.commit()
    assert {name: streak(session, sub) for name, sub in subs.items()} == {"a": 0, "b": 2, "c": 0, "d": 0}

    counts = dispatch(app, now)
    assert (counts["sent"], counts["expired"]) == (5, 1)
    assert {name: streak(session, sub) for name, sub in subs.items()} == {"a": 3, "b": 3, "c": 0, "d": 0}

    assert client.get(f"/c/{make_click_token(app.config['SECRET_KEY'], due[1].id)}").status_code == 302
    assert streak(session, subs["a"]) == 1  # the one sent after the clicked one
    assert expected_streaks(session) == {sub.id: streak(session, sub) for sub in subs.values()}


# -- PostgreSQL: two transactions at once ---------------------------------------------------------------


def test_concurrent_sends_to_one_subscription_both_count(session, sub, clock, database_url):
    """Two transactions send a push each to one subscription: the second's trigger waits for the
    first's lock and then counts its committed push as well as its own (PostgreSQL, where
    writers run at once)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer at a time")
    t = clock.now()
    # Of two kinds: the rollups' rows they add to differ, so only the streak's lock makes one wait.
    first, second = (make_push(session, sub, t, kind=kind).id for kind in ("shipped", "welcome"))
    session.commit()
    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    sent = sa.text("UPDATE pushes SET status = 'sent', sent_at = due_at WHERE id = :id")
    one, two = engine.connect(), engine.connect()
    try:
        tx_one = one.begin()
        one.execute(sent, {"id": first})  # holds the subscription's row until it commits
        tx_two = two.begin()
        done = threading.Event()

        def send_second():
            two.execute(sent, {"id": second})
            done.set()

        worker = threading.Thread(target=send_second)
        worker.start()
        assert not done.wait(0.5), "the second transaction's trigger should wait for the first's lock"
        tx_one.commit()
        worker.join(10)
        assert done.is_set()
        tx_two.commit()
    finally:
        one.close()
        two.close()
        engine.dispose()
    assert streak(session, sub) == 2


def test_the_guardrail_and_the_pause_read_the_streak_not_the_pushes(session, sub, clock):
    """One statement each, on subscriptions alone: no ranking of the shop's sent pushes."""
    t = clock.now()
    for minute in range(4):
        send(session, sub, t + timedelta(minutes=minute))
    session.commit()
    statements = []

    def seen(conn, cursor, statement, *args):
        statements.append(statement)

    engine = session.get_bind()
    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        assert unengaged_count(session, sub.shop_id, 4) == (1, 1)
        assert unengaged_subscriptions(session, {sub.id: 4}) == {sub.id}
        assert unengaged_subscriptions(session, {sub.id: 5}) == set()
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)
    assert len(statements) == 3
    assert not [s for s in statements if "pushes" in s], statements
