"""What the rollups' triggers add to the collect's insert: the same statement with and without them.

    .venv/bin/python bench/rollup_triggers.py

On a fresh SQLite file and a fresh PostgreSQL schema (``BENCH_DATABASE_URL`` or
``TEST_DATABASE_URL``), groups of 300 events (100 requests of 3: a page view, a product view, a
cart, as ``collect_load.py`` posts them) are inserted with the collect's own statement
(``collect.events._INSERT_EVENTS``), alternately with the triggers (``server.core.rollups``) and
without them; the medians of each are printed: once from 300 returning visitors, once with each
request from a visitor not yet seen that day (every request opens a visitor-day, which the
funnel's trigger works on). Then the same for the dispatcher's outcome write
(``outbox.claim.record_outcomes``) of 500 sent pushes.
"""
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402

from server.collect.events import _INSERT_EVENTS, _time_text  # noqa: E402
from server.core import rollups  # noqa: E402
from server.core.models import Base  # noqa: E402
from server.outbox.claim import Outcome, record_outcomes  # noqa: E402
from server.merchant.shop_admin import create_shop  # noqa: E402


def run(url: str, dialect: str) -> None:
    engine = sa.create_engine(url)
    Base.metadata.create_all(engine)
    now = datetime(2026, 6, 1, tzinfo=timezone.utc)
    with sa.orm.Session(engine) as s:
        shop = create_shop(s, "S", ["https://shop.example"], now).shop
        s.commit(); shop_id = shop.id
    with engine.begin() as c:
        for i in range(2000):
            c.execute(sa.text("INSERT INTO visitors (shop_id, visitor_key, first_seen_at) VALUES (:s, :k, :t)"),
                      {"s": shop_id, "k": f"v{i}", "t": now if dialect == "postgresql" else now.replace(tzinfo=None)})
        vids = [r[0] for r in c.execute(sa.text("SELECT id FROM visitors"))]
    n = 0
    fresh = iter(vids[300:])

    def group(size=100, new_visitors=False):  # a drain group: 100 requests of 3 events, as collect_load posts them
        nonlocal n
        parts = []
        for j in range(size):
            evs = []
            for k, t in enumerate(("page_view", "product_view", "add_to_cart")):
                n += 1
                e = {"type": t, "id": f"e{n}", "url": f"https://shop.example/products/p{n % 50}?x=1"}
                if t == "product_view": e["product"] = {"id": f"p{n % 50}"}
                evs.append(e)
            visitor = next(fresh) if new_visitors else vids[(n // 3) % 300]
            parts.append(json.dumps({"shop_id": shop_id, "visitor_id": visitor,
                                     "received_at": _time_text(dialect, now + timedelta(seconds=n)), "batch": {"events": evs}}))
        return "[" + ",".join(parts) + "]", size * 3
    def switch(have: bool, want: bool) -> bool:
        """Create or drop the triggers so that they are there exactly when ``want``."""
        if want != have:
            with engine.begin() as c:
                for st in (rollups.trigger_sql if want else rollups.drop_sql)(dialect):
                    c.exec_driver_sql(st)
        return want

    triggers = True
    for new_visitors in (False, True):
        times = {True: [], False: []}
        for round_ in range(8 if new_visitors else 16):
            triggers = switch(triggers, round_ % 2 == 0)
            batches, rows = group(new_visitors=new_visitors)
            began = time.perf_counter()
            with engine.begin() as c:
                r = c.execute(_INSERT_EVENTS[dialect], {"batches": batches, "rows": rows})
                list(r)
            times[triggers].append(time.perf_counter() - began)
        with_t, without = statistics.median(times[True][1:]), statistics.median(times[False][1:])
        who = "each request a visitor's first of the day" if new_visitors else "returning visitors"
        print(f"{dialect}: a group of 300 events (100 requests of 3, {who}): {without*1000:.1f} ms without "
              f"triggers, {with_t*1000:.1f} ms with (x{with_t/without:.2f}); per event {without/300*1e6:.0f} us "
              f"-> {with_t/300*1e6:.0f} us")

    # The dispatcher's outcome write (``outbox.claim.record_outcomes``) of 500 sent pushes.
    stamp = now if dialect == "postgresql" else now.replace(tzinfo=None)
    with engine.begin() as c:
        c.execute(sa.text(
            "INSERT INTO pushes (shop_id, kind, dedupe_key, step, visitor_id, status, due_at, attempts, title, body, "
            "url, ttl, urgency, created_at) SELECT :s, 'welcome', 'k' || g.i, 0, :v, 'sending', :t, 1, 't', 'b', "
            "'u', 60, 'normal', :t FROM (WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g "
            "WHERE i < 10000) SELECT i FROM g) AS g"), {"s": shop_id, "v": vids[0], "t": stamp})
        ids = [r[0] for r in c.execute(sa.text("SELECT id FROM pushes ORDER BY id"))]
    times = {True: [], False: []}
    for round_ in range(20):
        triggers = switch(triggers, round_ % 2 == 0)
        outcomes = [Outcome(push_id=i, claimed_attempts=1, status="sent", attempts=1, due_at=now, http_status=201,
                            sent_at=now) for i in ids[round_ * 500:(round_ + 1) * 500]]
        began = time.perf_counter()
        with sa.orm.Session(engine) as session:
            record_outcomes(session, outcomes)
            session.commit()
        times[triggers].append(time.perf_counter() - began)
    engine.dispose()
    with_t, without = statistics.median(times[True][1:]), statistics.median(times[False][1:])
    print(f"{dialect}: the outcome write of 500 sent pushes: {without*1000:.1f} ms without triggers, "
          f"{with_t*1000:.1f} ms with; per push {without/500*1e6:.0f} us -> {with_t/500*1e6:.0f} us")

def on_both_databases(run: Callable[..., None], name: str, *args: Any) -> None:
    """``run(url, dialect, *args)`` on a fresh SQLite file, then on a fresh PostgreSQL schema
    (``BENCH_DATABASE_URL`` or ``TEST_DATABASE_URL``; skipped without one), dropped afterwards."""
    run(f"sqlite:///{tempfile.mkdtemp()}/{name}.db", "sqlite", *args)
    base = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    if not base:
        print("postgresql: skipped (no BENCH_DATABASE_URL or TEST_DATABASE_URL)")
        return
    schema = f"{name}_{os.getpid()}"
    admin = sa.create_engine(base, poolclass=sa.pool.NullPool)
    with admin.begin() as c:
        c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        run(f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}", "postgresql", *args)
    finally:
        with admin.begin() as c:
            c.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main() -> None:
    on_both_databases(run, "rollups")


if __name__ == "__main__":
    main()
