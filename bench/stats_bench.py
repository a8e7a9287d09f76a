"""How long the dashboard's stats take as a shop grows (aggregate SQL, no rows loaded).

    .venv/bin/python bench/stats_bench.py [--visitors 20000] [--database-url URL]

Seeds one shop with N visitors (each with events, a subscription for half, a sent push for
half, clicks and orders for some) through bulk inserts, then times ``compute_stats`` over a
30-day range (median of 5). Prints one JSON object. Without ``--database-url`` it uses a
temporary SQLite file; pass a PostgreSQL URL (an empty database) to measure there.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402

from server.core.db import Database
from server.core.models import Base, Click, Event, Order, Push, Subscription, Visitor
from server.merchant.shop_admin import create_shop
from server.reports.stats import DateRange, compute_stats

START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def seed(database: Database, visitors: int) -> int:
    """Bulk-insert a shop's worth of rows; return the shop id."""
    rng = random.Random(7)
    with database.sessionmaker() as session:
        shop = create_shop(session, "Bench", ["https://bench.example"], START).shop
        session.commit()
        shop_id = shop.id
    with database.engine.begin() as conn:
        conn.execute(sa.insert(Visitor), [
            {"shop_id": shop_id, "visitor_key": f"v{i:08d}", "first_seen_at": START + timedelta(minutes=2 * i % 43200)}
            for i in range(visitors)])
        ids = [row[0] for row in conn.execute(sa.select(Visitor.id).where(Visitor.shop_id == shop_id))]
        events, subs, pushes = [], [], []
        for n, vid in enumerate(ids):
            when = START + timedelta(minutes=rng.randrange(43200))
            for k, kind in enumerate(("page_view", "product_view", "add_to_cart", "page_view", "leave")):
                if kind == "add_to_cart" and n % 3:
                    continue
                events.append({"shop_id": shop_id, "visitor_id": vid, "type": kind,
                               "occurred_at": when + timedelta(minutes=k)})
            if n % 2 == 0:
                subs.append({"shop_id": shop_id, "visitor_id": vid, "endpoint": f"https://fcm.googleapis.com/{n}",
                             "endpoint_hash": f"{n:064d}", "p256dh": "x", "auth": "y", "status": "active",
                             "created_at": when, "last_seen_at": when})
                pushes.append({"shop_id": shop_id, "kind": "browse_abandonment", "dedupe_key": f"b:{n}",
                               "visitor_id": vid, "status": "sent", "due_at": when, "sent_at": when + timedelta(hours=24),
                               "title": "t", "body": "b", "url": "https://bench.example/", "created_at": when,
                               "clicked_at": when + timedelta(hours=25) if n % 10 == 0 else None})
        conn.execute(sa.insert(Event), events)
        conn.execute(sa.insert(Subscription), subs)
        conn.execute(sa.insert(Push), pushes)
        clicked = conn.execute(sa.select(Push.id, Push.visitor_id, Push.clicked_at)
                               .where(Push.shop_id == shop_id, Push.clicked_at.is_not(None))).all()
        conn.execute(sa.insert(Click), [{"shop_id": shop_id, "push_id": p, "visitor_id": v, "kind": "browse_abandonment",
                                         "clicked_at": c} for p, v, c in clicked])
        conn.execute(sa.insert(Order), [
            {"shop_id": shop_id, "order_ref": f"o{p}", "visitor_id": v, "status": "paid", "total": Decimal("49.90"),
             "currency": "USD", "paid_at": c + timedelta(hours=1), "attributed_push_id": p,
             "attributed_kind": "browse_abandonment"} for p, v, c in clicked])
    return shop_id


def main() -> None:
    """Seed, then time the stats."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visitors", type=int, default=20000)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    database = Database(url)
    Base.metadata.create_all(database.engine)
    began = time.perf_counter()
    shop_id = seed(database, args.visitors)
    seeded = time.perf_counter() - began
    rng = DateRange(START.date(), (START + timedelta(days=29)).date())
    timings = []
    for _ in range(5):
        with database.sessionmaker() as session:
            t0 = time.perf_counter()
            stats = compute_stats(session, shop_id, rng)
            timings.append(time.perf_counter() - t0)
    with database.engine.connect() as conn:
        rows = {t.name: conn.scalar(sa.select(sa.func.count()).select_from(t)) for t in
                (Visitor.__table__, Event.__table__, Push.__table__, Click.__table__, Order.__table__)}
    print(json.dumps({"database": database.dialect, "rows": rows, "seed_s": round(seeded, 1),
                      "stats_median_ms": round(statistics.median(timings) * 1000, 1),
                      "funnel": stats["funnel"], "pushes_sent": stats["pushes_sent"]}))
    if not args.database_url:
        database.dispose()


if __name__ == "__main__":
    main()
