"""What the unclicked streak's triggers and the guardrail's index add to the send path.

    .venv/bin/python bench/streak_triggers.py [--subscriptions 2000] [--history 30] [--rounds 24]

On a fresh SQLite file and a fresh PostgreSQL schema (``BENCH_DATABASE_URL`` or
``TEST_DATABASE_URL``): subscriptions with ``--history`` sent pushes each (one in five clicked
somewhere), then rounds of the dispatcher's two writes of a batch of 200 pushes (two to each of
100 subscriptions): the claim (``outbox.claim.claim_due``, pending to sending) and the outcome
write (``outbox.claim.record_outcomes``, sending to sent), the rounds taking turns between four
set-ups: neither, the streak's triggers (``server.core.streaks``), the partial index
``ix_pushes_shop_sent``, both. The rollups' triggers are on throughout, as in production. Prints
the medians per push of each write in each set-up (the first round of each left out).
"""
import argparse
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402

from bench.rollup_triggers import on_both_databases  # noqa: E402
from server.core import streaks  # noqa: E402
from server.core.models import Base, Push  # noqa: E402
from server.merchant.shop_admin import create_shop  # noqa: E402
from server.outbox.claim import Outcome, claim_due, record_outcomes  # noqa: E402

BATCH = 200
SETUPS = ("neither", "triggers", "index", "both")


def index_sql(engine: sa.Engine, on: bool) -> list[str]:
    index = next(i for i in Push.__table__.indexes if i.name == "ix_pushes_shop_sent")
    if on:
        return [str(sa.schema.CreateIndex(index).compile(dialect=engine.dialect))]
    return ["DROP INDEX IF EXISTS ix_pushes_shop_sent"]


def run(url: str, dialect: str, subscriptions: int, history: int, rounds: int) -> None:
    engine = sa.create_engine(url)
    Base.metadata.create_all(engine)
    now = datetime(2026, 6, 1, tzinfo=timezone.utc)
    stamp = (lambda t: t) if dialect == "postgresql" else (lambda t: t.replace(tzinfo=None))
    with sa.orm.Session(engine) as s:
        shop_id = create_shop(s, "S", ["https://shop.example"], now).shop.id
        s.commit()
    with engine.begin() as c:
        for statement in streaks.drop_sql(dialect) + index_sql(engine, False):
            c.exec_driver_sql(statement)
        c.execute(sa.text("INSERT INTO visitors (shop_id, visitor_key, first_seen_at) "
                          "SELECT :s, 'v' || g.i, :t FROM (WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL "
                          "SELECT i + 1 FROM g WHERE i < :n) SELECT i FROM g) AS g"),
                  {"s": shop_id, "t": stamp(now), "n": subscriptions})
        c.execute(sa.text("INSERT INTO subscriptions (shop_id, visitor_id, endpoint, endpoint_hash, p256dh, auth, "
                          "status, created_at, last_seen_at) SELECT shop_id, id, 'https://push.example/' || id, "
                          "'h' || id, 'p', 'a', 'active', :t, :t FROM visitors"), {"t": stamp(now)})
        subs = [r[0] for r in c.execute(sa.text("SELECT id FROM subscriptions ORDER BY id"))]
        visitor_of = dict(c.execute(sa.text("SELECT id, visitor_id FROM subscriptions")).all())
        rows = []
        for sid in subs:
            for h in range(history):
                at = now - timedelta(days=history - h)
                rows.append({"s": shop_id, "v": visitor_of[sid], "sub": sid, "k": f"h{sid}:{h}", "t": stamp(at),
                             "c": stamp(at + timedelta(minutes=5)) if (sid + h) % (5 * history) == 0 else None})
        c.execute(sa.text("INSERT INTO pushes (shop_id, kind, dedupe_key, step, visitor_id, subscription_id, status, "
                          "due_at, attempts, title, body, url, ttl, urgency, created_at, sent_at, clicked_at) "
                          "VALUES (:s, 'welcome', :k, 0, :v, :sub, 'sent', :t, 1, 't', 'b', 'u', 60, 'normal', :t, "
                          ":t, :c)"), rows)
        streaks.rebuild(c)
    if dialect == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("VACUUM ANALYZE")
    state = {"triggers": False, "index": False}
    times: dict[str, dict[str, list[float]]] = {s: {"claim": [], "outcome": []} for s in SETUPS}
    for round_ in range(rounds):
        setup = SETUPS[round_ % len(SETUPS)]
        want = {"triggers": setup in ("triggers", "both"), "index": setup in ("index", "both")}
        with engine.begin() as c:
            if want["triggers"] != state["triggers"]:
                for statement in (streaks.trigger_sql if want["triggers"] else streaks.drop_sql)(dialect):
                    c.exec_driver_sql(statement)
            if want["index"] != state["index"]:
                for statement in index_sql(engine, want["index"]):
                    c.exec_driver_sql(statement)
        state = want
        due = now + timedelta(minutes=round_)
        chosen = [subs[(round_ * 100 + i) % len(subs)] for i in range(100)]
        with engine.begin() as c:
            c.execute(sa.text("INSERT INTO pushes (shop_id, kind, dedupe_key, step, visitor_id, subscription_id, "
                              "status, due_at, attempts, title, body, url, ttl, urgency, created_at) VALUES "
                              "(:s, 'welcome', :k, 0, :v, :sub, 'pending', :t, 0, 't', 'b', 'u', 86400, 'normal', :t)"),
                      [{"s": shop_id, "v": visitor_of[sid], "sub": sid, "k": f"r{round_}:{sid}:{j}", "t": stamp(due)}
                       for sid in chosen for j in range(2)])
        with sa.orm.Session(engine) as session:
            began = time.perf_counter()
            claimed = claim_due(session, due, BATCH, timedelta(minutes=5))
            session.commit()
            times[setup]["claim"].append((time.perf_counter() - began) / len(claimed))
        assert len(claimed) == BATCH, len(claimed)
        sent_at = due + timedelta(seconds=1)
        outcomes = [Outcome(push_id=p.id, claimed_attempts=p.attempts, status="sent", attempts=p.attempts,
                            due_at=p.due_at, http_status=201, sent_at=sent_at) for p in claimed]
        with sa.orm.Session(engine) as session:
            began = time.perf_counter()
            record_outcomes(session, outcomes)
            session.commit()
            times[setup]["outcome"].append((time.perf_counter() - began) / len(outcomes))
    engine.dispose()
    print(f"{dialect}: {subscriptions} subscriptions with {history} sent pushes each; a batch of {BATCH}, "
          f"µs a push (median of {rounds // len(SETUPS) - 1} rounds each):")
    base = {w: statistics.median(times["neither"][w][1:]) for w in ("claim", "outcome")}
    for setup in SETUPS:
        cells = []
        for write in ("claim", "outcome"):
            value = statistics.median(times[setup][write][1:])
            cells.append(f"{write} {value * 1e6:.1f} (x{value / base[write]:.2f})")
        print(f"  {setup:<9} " + ", ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscriptions", type=int, default=2000)
    parser.add_argument("--history", type=int, default=30, help="sent pushes a subscription has already had")
    parser.add_argument("--rounds", type=int, default=24)
    args = parser.parse_args()
    on_both_databases(run, "streaks", args.subscriptions, args.history, args.rounds)


if __name__ == "__main__":
    main()
