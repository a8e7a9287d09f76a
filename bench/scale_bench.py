"""The product's own operations at two instance sizes, and how their times grow (issue 25).

    .venv/bin/python bench/scale_bench.py [--sizes 20000,400000] [--backends postgresql,sqlite]
                                          [--runs 3] [--database-url URL]

For each backend and size: a fresh database (a private PostgreSQL schema, or a SQLite file) is
seeded with set-based SQL (``INSERT ... SELECT`` over ``generate_series`` on PostgreSQL, a
recursive CTE on SQLite): three shops (the big one has 80 % of the visitors), 90 days of
history with ~half the visitors subscribed, ``--events`` events a visitor, four pushes of
history a subscription, clicks and paid orders (the funnel's counts computed once at the end,
as ``stats rebuild`` does; every other rollup by its triggers as the rows go in). Then it times, through the app (the admin API
with the test client, the dispatcher's pass, the sweeps the dispatcher runs):

- ``dispatch``: one dispatcher pass (sweeps included) with the same 1,000 pushes due, sent to a
  local HTTP sink answering 201 (``send_bench.sink_main``);
- ``leave sweep``: the dispatcher's sweeps with the same 1,000 engaged subscribers silent for an
  hour (their browse reminders planned);
- ``stats``: ``GET /v1/admin/stats`` for 30 days, the big shop (the guardrails included);
- ``guardrails``: the guardrails' figures alone (the 7 days' sends by kind from ``stat_days``,
  the unengaged count over the last 3 pushes from ``subscriptions.unclicked_streak``), and ``(previous code)``: the
  sends counted from the pushes and the unengaged count by ranking every sent push
  (``bench/scale_baseline.py``), checked to give the same figures;
- ``stats figures``: ``reports.stats.compute_stats`` for the same 30 days (the rollups), and
  ``(previous code)``: the Overview's previous aggregates over raw rows (``bench/scale_baseline.py``),
  checked to give the same figures;
- ``push records`` / ``visitor records``: page 1 of ``GET /v1/admin/pushes`` and ``/visitors``;
- ``preview``: ``POST /v1/admin/campaigns/{id}/preview`` of a campaign to "viewed a product page
  in 30 days" (``viewed_collection`` on ``/products/``);
- ``segment viewed_product`` / ``segment viewed_collection``: ``planning.segments.count`` of
  "viewed product p7 in 30 days" and of the preview's condition (from the visitor summaries), and
  their ``(previous code)``: the same counts as probes of the events, checked to be equal;
- ``campaign``: a campaign to every subscriber of the big shop, from ``send`` until every row is
  planned by the dispatcher's sweeps (rows/s; one run).

Each figure is the median of ``--runs``; the table gives both sizes and the ratio, and for the
operations with a baseline how many times faster than their previous code at each size. The PostgreSQL
URL comes from ``--database-url``, ``BENCH_DATABASE_URL`` or ``TEST_DATABASE_URL``.
"""
from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import secrets
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from bench import scale_baseline  # noqa: E402
from bench.send_bench import sink_main  # noqa: E402
from server import create_app  # noqa: E402
from server.core import rollups  # noqa: E402
from server.core.clock import FrozenClock  # noqa: E402
from server.core.db import get_db  # noqa: E402
from server.core.models import Base, Shop  # noqa: E402
from server.delivery.push.vapid import init_keys  # noqa: E402
from server.delivery.runtime import close_delivery, get_dispatcher  # noqa: E402
from server.merchant.shop_admin import create_shop  # noqa: E402
from server.planning import hooks, segments  # noqa: E402
from server.delivery.engagement import unengaged_count  # noqa: E402
from server.reports import stats  # noqa: E402
from server.reports.guardrails import WINDOW_DAYS, sent_by_kind  # noqa: E402
from server.reports.stats import parse_range  # noqa: E402

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
DAYS = 90
SPAN = DAYS * 86400
PUSHES_PER_SUBSCRIPTION = 4
DUE = 1000
OPERATIONS = ("dispatch", "leave sweep", "stats", "stats figures", "stats figures (previous code)", "guardrails",
              "guardrails (previous code)", "push records",
              "visitor records", "preview", "segment viewed_product", "segment viewed_product (previous code)",
              "segment viewed_collection", "segment viewed_collection (previous code)", "campaign")
# Each of these against its previous code in the same run (``bench/scale_baseline.py``).
BASELINES = {op: f"{op} (previous code)" for op in ("stats figures", "guardrails", "segment viewed_product",
                                                     "segment viewed_collection")}
PRODUCT = "p7"  # a product the seed's product views name (p0 .. p199)
GUARD_LAST_N = 3  # the guardrails' unengaged count over the last 3 pushes (the seed has 4 a subscription)


class Sql:
    """The few expressions that differ between the two databases."""

    def __init__(self, dialect: str) -> None:
        self.pg = dialect == "postgresql"

    def series(self, n: int, name: str = "g") -> str:
        """A FROM item yielding ``{name}.i`` from 1 to n."""
        if self.pg:
            return f"generate_series(1, {int(n)}) AS {name}(i)"
        return (f"(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {int(n)}) "
                f"SELECT i FROM s) AS {name}")

    @staticmethod
    def h(expr: str, salt: int, mod: int) -> str:
        """A deterministic pseudo-random integer in [0, mod) from an integer expression."""
        multipliers = (2654435761, 2246822519, 3266489917, 668265263, 374761393, 1103515245, 1664525, 22695477)
        return f"((CAST({expr} AS BIGINT) * {multipliers[salt % len(multipliers)]} + {salt * 7919}) % 2147483647 % {int(mod)})"

    def ts(self, seconds: str) -> str:
        """``NOW - 90 days + seconds`` as the column's stored value."""
        base = NOW - timedelta(days=DAYS)
        if self.pg:
            return f"(TIMESTAMPTZ '{base.isoformat()}' + make_interval(secs => ({seconds})))"
        return f"(strftime('%Y-%m-%d %H:%M:%S', {int(base.timestamp())} + ({seconds}), 'unixepoch') || '.000000')"

    def seconds_of(self, column: str) -> str:
        """A stored timestamp back as seconds after ``NOW - 90 days``."""
        base = NOW - timedelta(days=DAYS)
        if self.pg:
            return f"(CAST(EXTRACT(EPOCH FROM {column}) AS BIGINT) - {int(base.timestamp())})"
        return f"(CAST(strftime('%s', {column}) AS INTEGER) - {int(base.timestamp())})"

    def product(self, product_id: str) -> str:
        """A product_view's ``product`` JSON."""
        fn = "jsonb_build_object" if self.pg else "json_object"
        return f"{fn}('id', {product_id}, 'title', 'Product ' || {product_id}, 'url', 'https://shop.example/products/' || {product_id})"


def seed(engine: sa.Engine, visitors: int, events_per_visitor: int, sink: str) -> dict[str, Any]:
    """Three shops and their 90 days of history, in a handful of statements; returns the big shop's
    id and admin token."""
    sql = Sql(engine.dialect.name)
    with sa.orm.Session(engine) as session:
        made = [create_shop(session, f"Shop {n}", [f"https://shop{n}.example"], NOW - timedelta(days=DAYS))
                for n in range(3)]
        session.commit()
        shop_ids = [m.shop.id for m in made]
        big = {"shop_id": made[0].shop.id, "token": made[0].admin_token}
    from tests.factories import browser_keys
    keys = browser_keys()
    first = sql.h("g.i", 1, SPAN)
    # The last event: some time between the first one and now.
    last = f"({first} + {sql.h('g.i', 2, 2**30)} % ({SPAN} - {first}))"
    shop_of = (f"CASE WHEN g.i % 10 < 8 THEN {shop_ids[0]} WHEN g.i % 10 = 8 THEN {shop_ids[1]} "
               f"ELSE {shop_ids[2]} END")
    origin_of = (f"CASE v.shop_id WHEN {shop_ids[0]} THEN 'https://shop0.example' WHEN {shop_ids[1]} "
                 f"THEN 'https://shop1.example' ELSE 'https://shop2.example' END")
    zone = f"CASE {sql.h('g.i', 3, 4)} WHEN 0 THEN 'Europe/Berlin' WHEN 1 THEN 'America/New_York' WHEN 2 THEN NULL ELSE 'Europe/London' END"
    statements = [
        f"INSERT INTO visitors (shop_id, visitor_key, first_seen_at, last_event_at, timezone, first_name, locale) "
        f"SELECT {shop_of}, 'v' || g.i, {sql.ts(first)}, {sql.ts(last)}, {zone}, "
        f"CASE WHEN g.i % 3 = 0 THEN 'Ann' END, CASE WHEN g.i % 2 = 0 THEN 'de-DE' ELSE 'en-US' END "
        f"FROM {sql.series(visitors)}",
        # About half the visitors subscribed; a tenth of those since gone (expired or unsubscribed).
        f"INSERT INTO subscriptions (shop_id, visitor_id, endpoint, endpoint_hash, p256dh, auth, status, "
        f"created_at, last_seen_at, ended_at) "
        f"SELECT v.shop_id, v.id, '{sink}/push/' || v.id, 'e' || v.id, '{keys['p256dh']}', '{keys['auth']}', "
        f"CASE {sql.h('v.id', 5, 20)} WHEN 0 THEN 'expired' WHEN 1 THEN 'unsubscribed' ELSE 'active' END, "
        f"v.first_seen_at, v.last_event_at, CASE WHEN {sql.h('v.id', 5, 20)} < 2 THEN v.last_event_at END "
        f"FROM visitors v WHERE {sql.h('v.id', 4, 100)} < 52",
        # Events spread between the visitor's first and last event: mostly page views, a third
        # product views, some carts and checkouts, a leave at the end.
        f"INSERT INTO events (shop_id, visitor_id, type, occurred_at, url, product) "
        f"SELECT v.shop_id, v.id, CASE WHEN k.i = {events_per_visitor} THEN 'leave' "
        f"WHEN k.i % 3 = 1 THEN 'product_view' WHEN {sql.h('v.id + k.i', 6, 40)} = 0 THEN 'add_to_cart' "
        f"WHEN {sql.h('v.id + k.i', 7, 200)} = 0 THEN 'checkout_started' ELSE 'page_view' END, "
        f"{sql.ts(sql.seconds_of('v.first_seen_at') + ' + (' + sql.seconds_of('v.last_event_at') + ' - ' + sql.seconds_of('v.first_seen_at') + f') * k.i / {events_per_visitor}')}, "
        f"{origin_of} || CASE WHEN k.i % 3 = 1 THEN '/products/p' || {sql.h('v.id * 7 + k.i', 1, 200)} "
        f"ELSE '/' END, "
        f"CASE WHEN k.i % 3 = 1 THEN {sql.product(chr(39) + 'p' + chr(39) + ' || ' + sql.h('v.id * 7 + k.i', 1, 200))} END "
        f"FROM visitors v CROSS JOIN {sql.series(events_per_visitor, 'k')}",
        # Four pushes of history a subscription over the 90 days: mostly sent, some clicked.
        f"INSERT INTO pushes (shop_id, kind, dedupe_key, group_key, step, visitor_id, subscription_id, status, "
        f"due_at, sent_at, clicked_at, attempts, title, body, url, ttl, urgency, created_at) "
        f"SELECT s.shop_id, CASE k.i WHEN 1 THEN 'welcome' WHEN 2 THEN 'browse_abandonment' "
        f"WHEN 3 THEN 'checkout_recovery' ELSE 'campaign' END, 'h:' || s.id || ':' || k.i, 'h:' || s.id, 0, "
        f"s.visitor_id, s.id, CASE WHEN {sql.h('s.id * 4 + k.i', 2, 20)} = 0 THEN 'failed' "
        f"WHEN {sql.h('s.id * 4 + k.i', 2, 20)} < 3 THEN 'cancelled' ELSE 'sent' END, "
        f"{sql.ts(sql.h('s.id * 4 + k.i', 3, SPAN))}, "
        f"CASE WHEN {sql.h('s.id * 4 + k.i', 2, 20)} >= 3 THEN {sql.ts(sql.h('s.id * 4 + k.i', 3, SPAN) + ' + 5')} END, "
        f"CASE WHEN {sql.h('s.id * 4 + k.i', 2, 20)} >= 18 THEN {sql.ts(sql.h('s.id * 4 + k.i', 3, SPAN) + ' + 600')} END, "
        f"1, 'Still thinking about it?', 'Your cart is waiting', 'https://shop.example/cart', 86400, 'normal', "
        f"{sql.ts(sql.h('s.id * 4 + k.i', 3, SPAN))} "
        f"FROM subscriptions s CROSS JOIN {sql.series(PUSHES_PER_SUBSCRIPTION, 'k')}",
        "INSERT INTO clicks (shop_id, push_id, visitor_id, kind, clicked_at) "
        "SELECT shop_id, id, visitor_id, kind, clicked_at FROM pushes WHERE clicked_at IS NOT NULL",
        # A paid order for one visitor in fifty, a few of them after a click.
        f"INSERT INTO orders (shop_id, order_ref, visitor_id, status, total, currency, paid_at) "
        f"SELECT v.shop_id, 'o' || v.id, v.id, 'paid', 49.90, 'EUR', v.last_event_at "
        f"FROM visitors v WHERE {sql.h('v.id', 7, 50)} = 0",
    ]
    with engine.begin() as conn:
        # The funnel's counts are computed once at the end, as ``stats rebuild`` does: its
        # per-row triggers on SQLite would make a million visitors' seed take hours (a visitor-day
        # written by the collect costs them some 0.2-0.7 ms there, ``bench/rollup_triggers.py``).
        for statement in rollups.funnel_drop_sql(engine.dialect.name):
            conn.exec_driver_sql(statement)
        for statement in statements:
            conn.execute(sa.text(statement))
        rollups.rebuild_funnel(conn)
        for statement in rollups.funnel_trigger_sql(engine.dialect.name):
            conn.exec_driver_sql(statement)
    with engine.connect() as conn:
        if sql.pg:
            auto = conn.execution_options(isolation_level="AUTOCOMMIT")
            for table in ("visitors", "subscriptions", "events", "pushes", "clicks", "orders", "stat_days",
                          "visitor_days", "funnel_days", "visitor_products", "visitor_summaries"):
                auto.execute(sa.text(f"VACUUM ANALYZE {table}"))  # this schema's tables only
        else:
            conn.execute(sa.text("ANALYZE"))
            conn.commit()
        big["rows"] = {t: conn.scalar(sa.text(f"SELECT count(*) FROM {t}"))
                       for t in ("visitors", "subscriptions", "events", "pushes", "clicks", "orders")}
    return big


def median_time(fn: Callable[[], Any], runs: int) -> float:
    """The median of ``runs`` timed calls, in seconds."""
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def measure(url: str, size: int, args: argparse.Namespace, sink: str, key_file: str) -> dict[str, Any]:
    """Seed one database and time every operation on it."""
    engine = sa.create_engine(url)
    Base.metadata.create_all(engine)
    began = time.perf_counter()
    big = seed(engine, size, args.events, sink)
    seeded = time.perf_counter() - began
    engine.dispose()
    clock = FrozenClock(NOW)
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench-secret", "VAPID_PRIVATE_KEY_FILE": key_file,
                      "VAPID_SUBJECT": "mailto:ops@pushcart.test", "PUBLIC_URL": "https://push.shop.example",
                      "PUSHCART_INSECURE_ENDPOINTS": True, "RUN_SCHEDULER": False, "CLOCK": clock,
                      "INSTANCE_PATH": tempfile.mkdtemp(), "RATELIMIT_ENABLED": False, "LOG_LEVEL": "WARNING"})
    client = app.test_client()
    auth = {"Authorization": f"Bearer {big['token']}"}
    shop_id = big["shop_id"]
    database = get_db(app)

    def get(path: str) -> Any:
        response = client.get(path, headers=auth)
        assert response.status_code == 200, response.get_data(as_text=True)[:500]
        return response.get_json()

    results: dict[str, Any] = {"seed_s": seeded, "rows": big["rows"]}
    dispatcher = get_dispatcher(app)
    round_ = iter(range(1000))

    def stored(value: datetime) -> datetime:
        return value if database.dialect == "postgresql" else value.replace(tzinfo=None)

    def dispatch() -> None:
        tag = next(round_)
        with database.engine.begin() as conn:
            due = conn.execute(sa.text(
                "INSERT INTO pushes (shop_id, kind, dedupe_key, step, visitor_id, subscription_id, status, due_at, "
                "attempts, title, body, url, ttl, urgency, created_at) "
                "SELECT shop_id, 'shipped', :tag || id, 0, visitor_id, id, 'pending', :due, 0, 'Shipped', "
                "'On its way', 'https://shop.example/orders/1', 86400, 'normal', :due FROM subscriptions "
                "WHERE shop_id = :shop AND status = 'active' AND last_seen_at >= :recent "
                "ORDER BY id LIMIT :n"),
                {"tag": f"d{tag}:", "due": stored(NOW - timedelta(seconds=1)), "recent": stored(NOW - timedelta(days=30)),
                 "shop": shop_id, "n": DUE}).rowcount
        began = time.perf_counter()
        counts = dispatcher.run_pass()
        results.setdefault("dispatch_runs", []).append(time.perf_counter() - began)
        assert counts.sent == due, counts.as_json()

    median_time(dispatch, args.runs)
    results["dispatch"] = statistics.median(results.pop("dispatch_runs"))

    def leave() -> None:
        tag = next(round_)
        with database.engine.begin() as conn:  # the same 1,000 subscribers engaged, then silent for an hour
            conn.execute(sa.text(
                "UPDATE visitors SET engaged_since = :engaged, last_event_at = :last, left_at = NULL WHERE id IN "
                "(SELECT visitor_id FROM subscriptions WHERE shop_id = :shop AND status = 'active' "
                "AND last_seen_at >= :recent ORDER BY id LIMIT :n)"),
                {"engaged": stored(NOW - timedelta(hours=2, seconds=tag)), "last": stored(NOW - timedelta(hours=1)),
                 "recent": stored(NOW - timedelta(days=30)), "shop": shop_id, "n": DUE})
        began = time.perf_counter()
        with database.sessionmaker() as session:
            planned = hooks.run_sweeps(session, clock.now(), app.config)
            session.commit()
        results.setdefault("sweep_runs", []).append(time.perf_counter() - began)
        assert planned > DUE // 2, planned

    median_time(leave, args.runs)
    results["leave sweep"] = statistics.median(results.pop("sweep_runs"))
    results["stats"] = median_time(lambda: get("/v1/admin/stats"), args.runs)
    rng = parse_range(None, None, NOW)
    figures: dict[str, Any] = {}

    def stats_with(module: Any, name: str) -> None:
        with database.sessionmaker() as session:
            figures[name] = module.compute_stats(session, shop_id, rng)

    results["stats figures"] = median_time(lambda: stats_with(stats, "rollups"), args.runs)
    results["stats figures (previous code)"] = median_time(lambda: stats_with(scale_baseline, "rows"), args.runs)
    assert figures["rollups"] == figures["rows"], (figures["rollups"], figures["rows"])

    def guardrail_figures() -> None:
        with database.sessionmaker() as session:
            active, unengaged = unengaged_count(session, shop_id, GUARD_LAST_N)
            figures["guardrails"] = {"sent": sent_by_kind(session, shop_id, clock.now() - timedelta(days=WINDOW_DAYS)),
                                     "active": active, "unengaged": unengaged}

    def guardrail_figures_before() -> None:
        with database.sessionmaker() as session:
            figures["guardrails before"] = scale_baseline.guardrail_figures(
                session, session.get(Shop, shop_id), clock.now(), GUARD_LAST_N)

    results["guardrails"] = median_time(guardrail_figures, args.runs)
    results["guardrails (previous code)"] = median_time(guardrail_figures_before, args.runs)
    assert figures["guardrails"] == figures["guardrails before"], (figures["guardrails"], figures["guardrails before"])
    assert figures["guardrails"]["unengaged"] > 0 and figures["guardrails"]["sent"], figures["guardrails"]
    results["push records"] = median_time(lambda: get("/v1/admin/pushes"), args.runs)
    results["visitor records"] = median_time(lambda: get("/v1/admin/visitors"), args.runs)
    made = client.post("/v1/admin/campaigns", headers=auth, json={
        "name": "Viewed", "title": "New in", "segment": [{"type": "viewed_collection", "path_prefix": "/products/",
                                                          "days": 30}]})
    assert made.status_code == 201, made.get_data(as_text=True)
    preview = f"/v1/admin/campaigns/{made.get_json()['id']}/preview"

    def preview_audience() -> None:
        response = client.post(preview, headers=auth)
        assert response.status_code == 200 and response.get_json()["audience"] > 0, response.get_data(as_text=True)

    results["preview"] = median_time(preview_audience, args.runs)
    # The two "viewed" conditions counted directly, against their previous code: the same audience.
    audience: dict[str, int] = {}
    conditions = {
        "segment viewed_product": ({"type": "viewed_product", "product_id": PRODUCT, "days": 30},
                                   lambda session, shop: scale_baseline.viewed_product_count(
                                       session, shop, PRODUCT, 30, clock.now())),
        "segment viewed_collection": ({"type": "viewed_collection", "path_prefix": "/products/", "days": 30},
                                      lambda session, shop: scale_baseline.viewed_collection_count(
                                          session, shop, "/products/", 30, clock.now())),
    }
    for name, (condition, before) in conditions.items():
        parsed = segments.parse_segment([condition])

        def count(name: str = name, parsed: Any = parsed) -> None:
            with database.sessionmaker() as session:
                audience[name] = segments.count(session, session.get(Shop, shop_id), parsed, clock.now())

        def count_before(name: str = name, before: Any = before) -> None:
            with database.sessionmaker() as session:
                audience[f"{name} before"] = before(session, session.get(Shop, shop_id))

        results[name] = median_time(count, args.runs)
        results[f"{name} (previous code)"] = median_time(count_before, args.runs)
        assert audience[name] == audience[f"{name} before"] > 0, audience
    results["campaign"] = plan_campaign(app, client, auth, database, clock)
    close_delivery(app)
    database.dispose()
    return results


def plan_campaign(app: Any, client: Any, auth: dict[str, str], database: Any, clock: FrozenClock) -> dict[str, Any]:
    """A campaign to every subscriber, from ``send`` until planned by the dispatcher's sweeps."""
    made = client.post("/v1/admin/campaigns", headers=auth, json={"name": "All", "title": "Sale",
                                                                   "segment": [{"type": "all"}]})
    campaign_id = made.get_json()["id"]
    began = time.perf_counter()
    sent = client.post(f"/v1/admin/campaigns/{campaign_id}/send", headers=auth, json={"mode": "now"})
    assert sent.status_code in (200, 202), sent.get_data(as_text=True)
    passes = 0
    while True:
        with database.sessionmaker() as session:
            hooks.run_sweeps(session, clock.now(), app.config)
            session.commit()
        passes += 1
        with database.engine.connect() as conn:  # the API's answer carries the campaign's stats: not timed
            if conn.scalar(sa.text("SELECT planned_at FROM campaigns WHERE id = :id"), {"id": campaign_id}):
                break
    seconds = time.perf_counter() - began
    progress = client.get(f"/v1/admin/campaigns/{campaign_id}", headers=auth).get_json()["progress"]
    return {"rows": progress["planned"], "seconds": seconds, "rate": progress["planned"] / seconds, "passes": passes}


def pg_schema_url(base: str) -> tuple[str, str]:
    """A fresh schema on the PostgreSQL server, and a URL whose connections use it."""
    schema = f"scale_{os.getpid()}_{secrets.token_hex(3)}"
    admin = sa.create_engine(base, poolclass=sa.pool.NullPool)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    sep = "&" if "?" in base else "?"
    return schema, f"{base}{sep}options=-csearch_path%3D{schema}"


def drop_schema(base: str, schema: str) -> None:
    admin = sa.create_engine(base, poolclass=sa.pool.NullPool)
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def fmt(value: Any) -> str:
    if isinstance(value, dict):
        return f"{value['rows']:,} rows at {value['rate']:,.0f}/s ({value['seconds']:.1f} s)"
    return f"{value * 1000:,.0f} ms"


def ratio(small: Any, large: Any) -> str:
    if isinstance(small, dict):
        return f"throughput {large['rate'] / small['rate']:.2f}x"
    return f"{large / small:.1f}"


def main() -> None:
    """Run every size on every backend and print one table per backend."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20000,400000", help="visitors, two sizes, comma-separated")
    parser.add_argument("--backends", default="postgresql,sqlite")
    parser.add_argument("--events", type=int, default=10, help="events a visitor")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL")
                        or os.environ.get("TEST_DATABASE_URL", ""))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    sizes = [int(s) for s in args.sizes.split(",")]
    folder = Path(tempfile.mkdtemp())
    key_file = str(folder / "vapid.pem")
    init_keys(Path(key_file))
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Queue()
    sink_process = ctx.Process(target=sink_main, args=(None, None, ready), daemon=True)
    sink_process.start()
    sink = f"http://127.0.0.1:{ready.get(timeout=30)}"
    try:
        for backend in args.backends.split(","):
            if backend == "postgresql" and not args.database_url:
                print("postgresql: skipped (no --database-url, BENCH_DATABASE_URL or TEST_DATABASE_URL)")
                continue
            figures = []
            for size in sizes:
                if backend == "postgresql":
                    schema, url = pg_schema_url(args.database_url)
                else:
                    schema, url = "", f"sqlite:///{folder / f'scale_{size}.db'}"
                try:
                    figures.append(measure(url, size, args, sink, key_file))
                finally:
                    if schema:
                        drop_schema(args.database_url, schema)
                print(f"{backend} {size:,} visitors: seeded in {figures[-1]['seed_s']:.0f} s, rows {figures[-1]['rows']}",
                      flush=True)
            print(f"\n{backend} (median of {args.runs}; campaign: one run)\n")
            print(f"| operation | {' | '.join(f'{s:,} visitors' for s in sizes)} | ratio |")
            print(f"| --- | {' | '.join('---:' for _ in sizes)} | ---: |")
            for op in OPERATIONS:
                print(f"| {op} | {' | '.join(fmt(f[op]) for f in figures)} | {ratio(figures[0][op], figures[-1][op])} |")
            print()
            print(f"| previous code / this code, same run | {' | '.join(f'{s:,} visitors' for s in sizes)} |")
            print(f"| --- | {' | '.join('---:' for _ in sizes)} |")
            for op, before in BASELINES.items():
                print(f"| {op} | {' | '.join(f'{f[before] / f[op]:.1f}' for f in figures)} |")
            print(flush=True)
    finally:
        sink_process.terminate()


if __name__ == "__main__":
    main()
