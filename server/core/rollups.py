"""Rollups kept by the database itself: per-day figures the Overview and segments read instead of rows.

Three tables, maintained by triggers on the tables they summarize (so every writer keeps them,
the set-based planners and the tests' own inserts included), on SQLite and PostgreSQL alike:

- ``stat_days`` (shop, UTC day, kind): pushes sent, unique clicks (a push's first click),
  failed pushes, clicks and action clicks, paid orders and their GMV in cents (kind ``''``:
  unattributed orders), new subscriptions, subscriptions opened and closed (their running sum
  is the active count at a day's end). ``reports.stats`` sums days, not rows.
- ``visitor_days`` (shop, visitor, UTC day): the visitor's events, shopping events, checkouts
  started, paid orders, and whether it was first seen that day: the funnel's distinct counts
  are one pass over the range's visitor-days.
- ``visitor_products``, ``visitor_pages`` and ``visitor_summaries``: when a visitor last viewed
  a product, last viewed a page (its URL without query or fragment) and last carted, for the
  segment conditions (``planning.segments``).

Each source row adds its contribution when inserted and takes it back when deleted; an update of
a column that matters takes back the old row's and adds the new one's. Raw events are the one
exception: deleting them (retention, ``planning.retention``) leaves the rollups as they are, so
the figures outlive the rows; a visitor's erasure removes its visitor rows by cascade.

On PostgreSQL inserts and deletes fire once per statement with the rows as a transition table
(a collect batch of a thousand events is one grouped upsert), and so do the pushes' updates (the
dispatcher writes a batch's outcomes in one statement); other updates fire once per row whose
columns changed and that counts somewhere. On SQLite every trigger is per row.

``rebuild`` computes the same rows from the source tables (the migration's backfill, and the
``stats rebuild`` command).
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa

log = logging.getLogger(__name__)

SHOPPING_EVENTS = ("add_to_cart", "checkout_started")
CART_EVENTS = ("add_to_cart", "cart_update", "checkout_started")
VIEW_EVENTS = ("page_view", "product_view")
FAILED_STATUSES = ("failed", "expired")
# A test device (the dashboard's "subscribe this browser") is a subscription under a visitor of its
# own whose key starts with this: neither counts in any figure.
TEST_DEVICE_PREFIX = "device:"

Expr = Callable[[str, str], str]  # (row alias, dialect) -> SQL


def day(expr: str, dialect: str) -> str:
    """The UTC calendar day of a timestamp expression."""
    if dialect == "postgresql":
        return f"CAST(({expr}) AT TIME ZONE 'UTC' AS date)"
    return f"date({expr})"  # SQLite stores naive UTC text


def _quoted(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


@dataclass(frozen=True)
class Part:
    """One contribution of a source row to a rollup table: its key, its counters (summed, or the
    latest time when ``latest``) and when the row contributes at all."""

    source: str
    target: str
    keys: dict[str, Expr]
    counters: dict[str, Expr]
    where: Expr
    latest: bool = False  # counters are times kept at their maximum (never taken back)
    funnel: bool = False  # added with the funnel's table (migration 0072)


def _col(name: str) -> Expr:
    return lambda r, d: f"{r}.{name}"


def _const(value: str) -> Expr:
    return lambda r, d: value


def _day_of(expr: Expr) -> Expr:
    return lambda r, d: day(expr(r, d), d)


def _case(cond: Expr) -> Expr:
    return lambda r, d: f"CASE WHEN {cond(r, d)} THEN 1 ELSE 0 END"


PAGE_CHARS = 800  # a shop origin and the longest path prefix a segment takes fit within it


def _page(r: str, d: str) -> str:
    """An event's URL up to its query or fragment (a segment's path prefix has neither, so it
    starts a URL exactly when it starts this), its first ``PAGE_CHARS`` characters."""
    if d == "postgresql":
        return f"left(split_part(split_part({r}.url, '?', 1), '#', 1), {PAGE_CHARS})"
    path = f"substr({r}.url, 1, instr({r}.url || '?', '?') - 1)"
    return f"substr({path}, 1, min(instr({path} || '#', '#') - 1, {PAGE_CHARS}))"


def _product_id(r: str, d: str) -> str:
    return f"{r}.product ->> 'id'" if d == "postgresql" else f"json_extract({r}.product, '$.id')"


def _not_a_test_device(r: str) -> str:
    """The subscription row ``r`` is not a test device's: a test device's subscription keeps the
    status ``test`` for its whole life (``ended_at`` says when its push service forgot it)."""
    return f"{r}.status <> 'test'"


_SHOP_DAY_KIND = {"shop_id": _col("shop_id")}
PARTS: tuple[Part, ...] = (
    Part("pushes", "stat_days",
         {"shop_id": _col("shop_id"), "day": _day_of(_col("sent_at")), "kind": _col("kind")},
         {"sent": _const("1")}, lambda r, d: f"{r}.status = 'sent' AND {r}.sent_at IS NOT NULL"),
    Part("pushes", "stat_days",
         {"shop_id": _col("shop_id"), "day": _day_of(_col("clicked_at")), "kind": _col("kind")},
         {"unique_clicks": _const("1")}, lambda r, d: f"{r}.clicked_at IS NOT NULL"),
    Part("pushes", "stat_days",
         {"shop_id": _col("shop_id"), "day": _day_of(lambda r, d: f"coalesce({r}.sent_at, {r}.due_at)"),
          "kind": _col("kind")},
         {"failed": _const("1")}, lambda r, d: f"{r}.status IN ({_quoted(FAILED_STATUSES)})"),
    Part("clicks", "stat_days",
         {"shop_id": _col("shop_id"), "day": _day_of(_col("clicked_at")), "kind": _col("kind")},
         {"clicks": _const("1"), "clicks_a1": _case(lambda r, d: f"{r}.action = 1"),
          "clicks_a2": _case(lambda r, d: f"{r}.action = 2")}, lambda r, d: "1 = 1"),
    Part("orders", "stat_days",
         {"shop_id": _col("shop_id"), "day": _day_of(_col("paid_at")),
          "kind": lambda r, d: f"coalesce({r}.attributed_kind, '')"},
         {"orders": _const("1"), "gmv_cents": lambda r, d: f"CAST(round({r}.total * 100) AS BIGINT)"},
         lambda r, d: f"{r}.status = 'paid'"),
    Part("subscriptions", "stat_days",
         {"shop_id": _col("shop_id"), "day": _day_of(_col("created_at")), "kind": _const("''")},
         {"new_subs": _const("1"),
          "subs_opened": _case(lambda r, d: f"{r}.ended_at IS NOT NULL OR {r}.status = 'active'")},
         lambda r, d: _not_a_test_device(r)),
    Part("subscriptions", "stat_days",
         {"shop_id": _col("shop_id"), "day": _day_of(_col("ended_at")), "kind": _const("''")},
         {"subs_closed": _const("1")}, lambda r, d: f"{r}.ended_at IS NOT NULL AND {_not_a_test_device(r)}"),
    Part("visitors", "visitor_days",
         {"shop_id": _col("shop_id"), "visitor_id": _col("id"), "day": _day_of(_col("first_seen_at"))},
         {"first_seen": _const("1")}, lambda r, d: f"substr({r}.visitor_key, 1, {len(TEST_DEVICE_PREFIX)}) <> '{TEST_DEVICE_PREFIX}'"),  # no % (psycopg)
    Part("events", "visitor_days",
         {"shop_id": _col("shop_id"), "visitor_id": _col("visitor_id"), "day": _day_of(_col("occurred_at"))},
         {"events": _const("1"), "shopping": _case(lambda r, d: f"{r}.type IN ({_quoted(SHOPPING_EVENTS)})")},
         lambda r, d: "1 = 1"),
    Part("checkouts", "visitor_days",
         {"shop_id": _col("shop_id"), "visitor_id": _col("visitor_id"), "day": _day_of(_col("started_at"))},
         {"checkouts": _const("1")}, lambda r, d: f"{r}.visitor_id IS NOT NULL"),
    Part("subscriptions", "visitor_days",
         {"shop_id": _col("shop_id"), "visitor_id": _col("visitor_id"), "day": _day_of(_col("created_at"))},
         {"subscribed": _const("1")}, lambda r, d: f"{r}.visitor_id IS NOT NULL AND {_not_a_test_device(r)}",
         funnel=True),
    Part("orders", "visitor_days",
         {"shop_id": _col("shop_id"), "visitor_id": _col("visitor_id"), "day": _day_of(_col("paid_at"))},
         {"paid": _const("1")}, lambda r, d: f"{r}.status = 'paid' AND {r}.visitor_id IS NOT NULL"),
    Part("events", "visitor_products",
         {"visitor_id": _col("visitor_id"), "product_ref": _product_id, "shop_id": _col("shop_id")},
         {"last_viewed_at": _col("occurred_at")},
         lambda r, d: f"{r}.type = 'product_view' AND {_product_id(r, d)} IS NOT NULL", latest=True),
    Part("events", "visitor_pages",
         {"visitor_id": _col("visitor_id"), "page": _page, "shop_id": _col("shop_id")},
         {"last_viewed_at": _col("occurred_at")},
         lambda r, d: f"{r}.type IN ({_quoted(VIEW_EVENTS)}) AND {r}.url IS NOT NULL", latest=True),
    Part("events", "visitor_summaries",
         {"visitor_id": _col("visitor_id"), "shop_id": _col("shop_id")},
         {"last_carted_at": _col("occurred_at")}, lambda r, d: f"{r}.type IN ({_quoted(CART_EVENTS)})",
         latest=True),
)

# The rollup tables' conflict keys (their primary keys).
TARGET_KEYS = {"stat_days": ("shop_id", "day", "kind"), "visitor_days": ("visitor_id", "day"),
               "visitor_products": ("visitor_id", "product_ref"), "visitor_pages": ("visitor_id", "page"),
               "visitor_summaries": ("visitor_id",)}
# The columns whose change moves a row's contribution (an update of any other fires nothing).
WATCHED = {
    "pushes": ("shop_id", "kind", "status", "sent_at", "clicked_at", "due_at"),
    "clicks": ("shop_id", "kind", "clicked_at", "action"),
    "orders": ("shop_id", "visitor_id", "status", "paid_at", "attributed_kind", "total"),
    "subscriptions": ("shop_id", "visitor_id", "status", "created_at", "ended_at"),
    "visitors": ("shop_id", "first_seen_at"),
    "events": ("shop_id", "visitor_id", "type", "occurred_at"),
    "checkouts": ("shop_id", "visitor_id", "started_at"),
}
# Updated a batch per statement (the dispatcher's outcome write): on PostgreSQL their update
# trigger fires once per statement with the old and new rows as transition tables (a row trigger
# cost some 80 µs a sent push), at the price of firing for every update of the table (a claim's
# rows count nowhere, so its aggregates find nothing).
STATEMENT_UPDATES = ("pushes",)
# Deleting these rows leaves the rollups alone: raw events age out (their figures stay), and a
# visitor's deletion removes its visitor rows by cascade.
KEEP_ON_DELETE = ("events", "visitors")
SOURCES = tuple(WATCHED)


def _unchanged(part: Part, dialect: str) -> str:
    """In a row's update trigger: the row's contribution to ``part`` is what it was (same key, same
    counters, counted or not as before), so neither taking back nor adding is needed. An expiry
    sweep's status change, say, moves a subscription's counts on no visitor-day."""
    same = "IS NOT DISTINCT FROM" if dialect == "postgresql" else "IS"
    exprs = [lambda r, d: f"({part.where(r, d)})", *part.keys.values(), *part.counters.values()]
    return "(" + " AND ".join(f"({e('OLD', dialect)}) {same} ({e('NEW', dialect)})" for e in exprs) + ")"


def _add(part: Part, r: str, dialect: str, from_rows: str | None, unless: str | None = None) -> str:
    """``INSERT ... SELECT`` the contribution of row ``r`` (or of the rows of ``from_rows``, grouped)
    and add it to what is there (or keep the later time)."""
    keys = list(part.keys)
    key_sql = [part.keys[k](r, dialect) for k in keys]
    cols = keys + list(part.counters)
    if part.latest:
        aggs = [f"max({part.counters[c](r, dialect)})" for c in part.counters]
        merge = "GREATEST" if dialect == "postgresql" else "max"
        sets = [f"{c} = {merge}({part.target}.{c}, excluded.{c})" for c in part.counters]
    else:
        aggs = [f"sum({part.counters[c](r, dialect)})" for c in part.counters]
        sets = [f"{c} = {part.target}.{c} + excluded.{c}" for c in part.counters]
    source = f" FROM {from_rows} AS {r}" if from_rows else ""
    group = ", ".join(str(i + 1) for i in range(len(keys)))  # by position: a key may be a constant
    skip = f" AND NOT {unless}" if unless else ""
    return (f"INSERT INTO {part.target} ({', '.join(cols)}) SELECT {', '.join(key_sql + aggs)}{source} "
            f"WHERE {part.where(r, dialect)}{skip} GROUP BY {group} ORDER BY {group} "
            f"ON CONFLICT ({', '.join(TARGET_KEYS[part.target])}) DO UPDATE SET {', '.join(sets)}")


def _take_back(part: Part, r: str, dialect: str, from_rows: str | None, unless: str | None = None) -> str:
    """``UPDATE`` the rollup rows to take back the contribution of row ``r`` (or of ``from_rows``).
    Never an insert: a row that is gone (its visitor erased) has nothing to take back."""
    keys = list(part.keys)
    if from_rows is None:
        sets = [f"{c} = {c} - ({part.counters[c](r, dialect)})" for c in part.counters]
        match = " AND ".join(f"{k} = {part.keys[k](r, dialect)}" for k in keys)
        skip = f" AND NOT {unless}" if unless else ""
        return f"UPDATE {part.target} SET {', '.join(sets)} WHERE {match} AND {part.where(r, dialect)}{skip}"
    key_sql = [f"{part.keys[k](r, dialect)} AS {k}" for k in keys]
    aggs = [f"sum({part.counters[c](r, dialect)}) AS {c}" for c in part.counters]
    sets = [f"{c} = {part.target}.{c} - gone.{c}" for c in part.counters]
    match = " AND ".join(f"{part.target}.{k} = gone.{k}" for k in keys)
    group = ", ".join(str(i + 1) for i in range(len(keys)))
    return (f"UPDATE {part.target} SET {', '.join(sets)} FROM (SELECT {', '.join(key_sql + aggs)} "
            f"FROM {from_rows} AS {r} WHERE {part.where(r, dialect)} GROUP BY {group}) AS gone WHERE {match}")


def _parts(source: str, funnel: bool = True) -> list[Part]:
    return [p for p in PARTS if p.source == source and (funnel or not p.funnel)]


def trigger_sql(dialect: str, funnel: bool = True) -> list[str]:
    """The statements that create every rollup trigger (and, on PostgreSQL, their functions);
    without the funnel's (``funnel=False``), as migration 0069 made them."""
    statements: list[str] = []
    for source in SOURCES:
        parts = _parts(source, funnel)
        counted = [p for p in parts if not p.latest]
        moved = " OR ".join(
            f"OLD.{c} IS DISTINCT FROM NEW.{c}" if dialect == "postgresql" else f"OLD.{c} IS NOT NEW.{c}"
            for c in WATCHED[source])
        # Only when the old or the new row counts somewhere: a push claimed (pending to sending)
        # fires nothing.
        counts = " OR ".join(sorted({f"({p.where(r, dialect)})" for p in parts for r in ("OLD", "NEW")}))
        changed = f"({moved}) AND ({counts})"
        if dialect == "postgresql":
            def function(name: str, body: list[str]) -> str:
                lines = "".join(f"  {s};\n" for s in body)
                return (f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $body$\n"
                        f"BEGIN\n{lines}  RETURN NULL;\nEND\n$body$")
            statements.append(function(f"rollup_{source}_insert", [_add(p, "r", dialect, "new_rows") for p in parts]))
            statements.append(f"CREATE TRIGGER rollup_{source}_insert AFTER INSERT ON {source} "
                              f"REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
                              f"EXECUTE FUNCTION rollup_{source}_insert()")
            if source not in KEEP_ON_DELETE:
                statements.append(function(f"rollup_{source}_delete",
                                           [_take_back(p, "r", dialect, "old_rows") for p in counted]))
                statements.append(f"CREATE TRIGGER rollup_{source}_delete AFTER DELETE ON {source} "
                                  f"REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT "
                                  f"EXECUTE FUNCTION rollup_{source}_delete()")
            if source in STATEMENT_UPDATES:
                # Nothing to do unless an old or a new row counts somewhere (a claim, a cancel).
                relevant = " OR ".join(sorted({f"({p.where('r', dialect)})" for p in parts}))
                work = ([_take_back(p, "r", dialect, "old_rows") for p in counted]
                        + [_add(p, "r", dialect, "new_rows") for p in parts])
                statements.append(function(f"rollup_{source}_update", [
                    f"IF EXISTS (SELECT 1 FROM old_rows AS r WHERE {relevant}) "
                    f"OR EXISTS (SELECT 1 FROM new_rows AS r WHERE {relevant}) THEN\n"
                    + "".join(f"    {w};\n" for w in work) + "  END IF"]))
                statements.append(f"CREATE TRIGGER rollup_{source}_update AFTER UPDATE ON {source} "
                                  f"REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
                                  f"EXECUTE FUNCTION rollup_{source}_update()")
                continue
            statements.append(function(f"rollup_{source}_update", _row_update(source, dialect, funnel)))
            statements.append(f"CREATE TRIGGER rollup_{source}_update AFTER UPDATE OF {', '.join(WATCHED[source])} "
                              f"ON {source} FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION rollup_{source}_update()")
            continue

        def trigger(name: str, event: str, body: list[str], when: str = "") -> str:
            lines = "".join(f"  {s};\n" for s in body)
            return f"CREATE TRIGGER {name} AFTER {event} ON {source} FOR EACH ROW{when}\nBEGIN\n{lines}END"
        statements.append(trigger(f"rollup_{source}_insert", "INSERT", [_add(p, "NEW", dialect, None) for p in parts]))
        if source not in KEEP_ON_DELETE:
            statements.append(trigger(f"rollup_{source}_delete", "DELETE",
                                      [_take_back(p, "OLD", dialect, None) for p in counted]))
        statements.append(trigger(f"rollup_{source}_update", f"UPDATE OF {', '.join(WATCHED[source])}",
                                  _row_update(source, dialect, funnel), f" WHEN {changed}"))
    return statements + (funnel_trigger_sql(dialect) if funnel else [])


def _row_update(source: str, dialect: str, funnel: bool) -> list[str]:
    """A row's update trigger: each contribution that moved is taken back and added anew."""
    parts = _parts(source, funnel)
    return ([_take_back(p, "OLD", dialect, None, unless=_unchanged(p, dialect)) for p in parts if not p.latest]
            + [_add(p, "NEW", dialect, None, unless=_unchanged(p, dialect)) for p in parts])


# --- The funnel: how many visitors of a range reached each stage, without reading the range's rows.
#
# A visitor reached a stage in a range when one of its visitor-days in the range reached it. Each
# such day stores the gap back to the visitor's previous day of the same stage (``FAR`` when there
# is none, or none within a range's reach), and ``funnel_days`` counts the days per (shop, stage,
# day, gap). A visitor is then counted once, at its first day of the stage inside the range: the
# days in the range whose gap reaches back before the range's first day. The count of a range is a
# sum over its days' few rows, however many visitors the shop has. Repeat buyers: a paid day also
# stores the gap forward to the next paid day (0 when that day holds two orders), and a buyer is a
# repeat buyer when that next one falls inside the range too.
FAR = 367  # more than a range's days (``reports.stats.MAX_DAYS``): "none before within any range"
# Which visitor-days reach each stage (their counters; ``u`` also needs the subscription so far).
STAGE_FLAGS = {
    "a": "(r.first_seen + r.events + r.checkouts + r.paid + r.subscribed) > 0",  # a visitor of the day
    "s": "(r.shopping + r.checkouts + r.paid) > 0",  # a shopper: carted, started a checkout or paid
    "p": "r.paid > 0",  # a buyer
}
STAGES = ("a", "s", "u", "p")  # visitor, shopper, subscriber (a shopper, or subscribed by then), buyer
GAP_COLUMNS = ("a_gap", "s_gap", "u_gap", "p_gap", "p_next")
FLAG_COLUMNS = ("first_seen", "events", "shopping", "checkouts", "paid", "subscribed")


def _days_between(later: str, earlier: str, dialect: str) -> str:
    if dialect == "postgresql":
        return f"({later} - {earlier})"
    return f"CAST(julianday({later}) - julianday({earlier}) AS INTEGER)"


def _gap(later: str, earlier: str, dialect: str) -> str:
    between = _days_between(later, earlier, dialect)
    return f"CASE WHEN {between} IS NULL OR {between} >= {FAR} THEN {FAR} ELSE {between} END"


def _flag_code(r: str) -> str:
    """One number that changes exactly when a visitor-day's stages may change."""
    flags = [STAGE_FLAGS["a"], STAGE_FLAGS["s"], "r.paid > 0", "r.paid > 1", "r.subscribed > 0"]
    return " + ".join(f"{1 << i} * (CASE WHEN {f.replace('r.', r + '.')} THEN 1 ELSE 0 END)"
                      for i, f in enumerate(flags))


def funnel_gaps(visitors: str, dialect: str) -> str:
    """A derived table: every visitor-day of the visitors ``visitors`` (a SELECT of ids) with the
    gaps it counts with (``GAP_COLUMNS``; NULL where the day does not reach the stage)."""
    flags = ", ".join(f"CASE WHEN {sql} THEN 1 ELSE 0 END AS {stage}" for stage, sql in STAGE_FLAGS.items())
    base = (f"SELECT r.visitor_id, r.day, r.shop_id, {flags}, CASE WHEN r.paid > 1 THEN 1 ELSE 0 END AS p2, "
            f"CASE WHEN r.subscribed > 0 THEN 1 ELSE 0 END AS sub FROM visitor_days AS r "
            f"WHERE r.visitor_id IN ({visitors})")
    with_u = (f"SELECT f0.*, CASE WHEN s = 1 OR (a = 1 AND max(sub) OVER (PARTITION BY visitor_id ORDER BY day "
              f"ROWS UNBOUNDED PRECEDING) = 1) THEN 1 ELSE 0 END AS u FROM ({base}) AS f0")
    before = "PARTITION BY visitor_id ORDER BY day ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING"
    after = "PARTITION BY visitor_id ORDER BY day ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING"
    neighbours = ", ".join(f"max(CASE WHEN {stage} = 1 THEN day END) OVER ({before}) AS {stage}_prev"
                           for stage in STAGES)
    linked = (f"SELECT f1.*, {neighbours}, min(CASE WHEN p = 1 THEN day END) OVER ({after}) AS p_next_day "
              f"FROM ({with_u}) AS f1")
    gaps = ", ".join(f"CASE WHEN {stage} = 1 THEN {_gap('day', f'{stage}_prev', dialect)} END AS {stage}_gap"
                     for stage in STAGES)
    return (f"(SELECT visitor_id, day, shop_id, {gaps}, CASE WHEN p = 1 THEN CASE WHEN p2 = 1 THEN 0 ELSE "
            f"{_gap('p_next_day', 'day', dialect)} END END AS p_next FROM ({linked}) AS f2)")


def _differs(a: str, b: str, dialect: str) -> str:
    op = "IS DISTINCT FROM" if dialect == "postgresql" else "IS NOT"
    return " OR ".join(f"{a}.{c} {op} {b}.{c}" for c in GAP_COLUMNS)


def funnel_sync(visitors: str, dialect: str, gone: str | None = None) -> list[str]:
    """The statements that bring the funnel counts of ``visitors`` (a SELECT of ids) up to date:
    each visitor-day whose gaps changed takes back what it counted and adds what it counts now,
    and so does each removed visitor-day of ``gone`` (a table of deleted ``visitor_days`` rows)."""
    calc = funnel_gaps(visitors, dialect)
    old = ", ".join(f"r.{c} AS old_{c}" for c in GAP_COLUMNS)
    new = ", ".join(f"c.{c} AS new_{c}" for c in GAP_COLUMNS)
    changed = (f"SELECT r.shop_id, r.day, {old}, {new} FROM visitor_days AS r JOIN {calc} AS c "
               f"ON c.visitor_id = r.visitor_id AND c.day = r.day "
               f"WHERE r.visitor_id IN ({visitors}) AND ({_differs('r', 'c', dialect)})")
    if gone is not None:
        nothing = ", ".join(f"NULL AS new_{c}" for c in GAP_COLUMNS)
        changed += (f" UNION ALL SELECT g.shop_id, g.day, {old.replace('r.', 'g.')}, {nothing} FROM {gone} AS g")
    sides = " UNION ALL ".join(f"SELECT '{stage}' AS stage, {sign} AS sign" for stage in STAGES for sign in (1, -1))
    prev = " ".join(f"WHEN '{stage}' THEN CASE WHEN k.sign = 1 THEN ch.new_{stage}_gap ELSE ch.old_{stage}_gap END"
                    for stage in STAGES)
    contributions = (
        f"SELECT ch.shop_id, k.stage, ch.day, CASE k.stage {prev} END AS prev_gap, "
        f"CASE WHEN k.stage = 'p' THEN CASE WHEN k.sign = 1 THEN ch.new_p_next ELSE ch.old_p_next END ELSE -1 END "
        f"AS next_gap, k.sign FROM ({changed}) AS ch CROSS JOIN ({sides}) AS k")
    upsert = (f"INSERT INTO funnel_days (shop_id, stage, day, prev_gap, next_gap, n) "
              f"SELECT shop_id, stage, day, prev_gap, next_gap, sum(sign) FROM ({contributions}) AS x "
              f"WHERE prev_gap IS NOT NULL GROUP BY 1, 2, 3, 4, 5 HAVING sum(sign) <> 0 ORDER BY 1, 2, 3, 4, 5 "
              f"ON CONFLICT (shop_id, stage, day, prev_gap, next_gap) DO UPDATE SET n = funnel_days.n + excluded.n")
    sets = ", ".join(f"{c} = c.{c}" for c in GAP_COLUMNS)
    update = (f"UPDATE visitor_days SET {sets} FROM {calc} AS c WHERE visitor_days.visitor_id IN ({visitors}) "
              f"AND visitor_days.visitor_id = c.visitor_id AND visitor_days.day = c.day "
              f"AND ({_differs('visitor_days', 'c', dialect)})")
    return [upsert, update]


def funnel_trigger_sql(dialect: str) -> list[str]:
    """The triggers on ``visitor_days`` that keep ``funnel_days`` and the days' gaps."""
    if dialect == "postgresql":
        def function(name: str, body: list[str], guard: str | None = None) -> str:
            lines = "".join(f"    {s};\n" for s in body)
            if guard:
                lines = f"  IF EXISTS ({guard}) THEN\n{lines}  END IF;\n"
            return (f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $body$\n"
                    f"BEGIN\n{lines}  RETURN NULL;\nEND\n$body$")
        # The days whose stages may have moved (a set difference: hashed, never a nested loop).
        moved = (f"SELECT m.visitor_id FROM (SELECT n.visitor_id, n.day, {_flag_code('n')} FROM new_rows AS n "
                 f"EXCEPT SELECT o.visitor_id, o.day, {_flag_code('o')} FROM old_rows AS o) AS m")
        return [
            function("funnel_visitor_days_insert", funnel_sync("SELECT visitor_id FROM new_rows", dialect)),
            "CREATE TRIGGER funnel_visitor_days_insert AFTER INSERT ON visitor_days REFERENCING NEW TABLE AS "
            "new_rows FOR EACH STATEMENT EXECUTE FUNCTION funnel_visitor_days_insert()",
            # Fires for its own update of the gaps too (a trigger with transition tables takes no
            # column list): then no day's stages moved, and the guard stops there.
            function("funnel_visitor_days_update", funnel_sync(moved, dialect), guard=moved),
            "CREATE TRIGGER funnel_visitor_days_update AFTER UPDATE ON visitor_days REFERENCING OLD TABLE AS "
            "old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION funnel_visitor_days_update()",
            function("funnel_visitor_days_delete",
                     funnel_sync("SELECT visitor_id FROM old_rows", dialect, gone="old_rows")),
            "CREATE TRIGGER funnel_visitor_days_delete AFTER DELETE ON visitor_days REFERENCING OLD TABLE AS "
            "old_rows FOR EACH STATEMENT EXECUTE FUNCTION funnel_visitor_days_delete()",
        ]

    def trigger(name: str, event: str, body: list[str], when: str = "") -> str:
        lines = "".join(f"  {s};\n" for s in body)
        return f"CREATE TRIGGER {name} AFTER {event} ON visitor_days FOR EACH ROW{when}\nBEGIN\n{lines}END"
    gone = "(SELECT OLD.shop_id AS shop_id, OLD.day AS day, " + ", ".join(f"OLD.{c} AS {c}" for c in GAP_COLUMNS) + ")"
    return [
        trigger("funnel_visitor_days_insert", "INSERT", funnel_sync("SELECT NEW.visitor_id", dialect)),
        trigger("funnel_visitor_days_update", f"UPDATE OF {', '.join(FLAG_COLUMNS)}",
                funnel_sync("SELECT NEW.visitor_id", dialect), f" WHEN {_flag_code('OLD')} <> {_flag_code('NEW')}"),
        trigger("funnel_visitor_days_delete", "DELETE", funnel_sync("SELECT OLD.visitor_id", dialect, gone=gone)),
    ]


def add_rows(part: Part, rows: str, dialect: str) -> str:
    """``INSERT ... SELECT`` adding the contributions of ``rows`` (a derived table) to ``part``'s table."""
    return _add(part, "r", dialect, rows)


def rebuild_funnel(connection: sa.Connection, shop_id: int | None = None) -> None:
    """Recompute ``funnel_days`` and the visitor-days' gaps from the visitor-days: every shop's,
    or ``shop_id``'s."""
    dialect = connection.dialect.name
    scope = f" WHERE shop_id = {int(shop_id)}" if shop_id is not None else ""
    nulls = ", ".join(f"{c} = NULL" for c in GAP_COLUMNS)
    connection.exec_driver_sql(f"UPDATE visitor_days SET {nulls}{scope}")
    connection.exec_driver_sql(f"DELETE FROM funnel_days{scope}")
    for statement in funnel_sync(f"SELECT id FROM visitors{scope}", dialect):
        connection.exec_driver_sql(statement)

def funnel_drop_sql(dialect: str) -> list[str]:
    """The statements that drop the funnel's triggers (and functions)."""
    statements = []
    for op in ("insert", "delete", "update"):
        statements.append(f"DROP TRIGGER IF EXISTS funnel_visitor_days_{op}"
                          + (" ON visitor_days" if dialect == "postgresql" else ""))
        if dialect == "postgresql":
            statements.append(f"DROP FUNCTION IF EXISTS funnel_visitor_days_{op}()")
    return statements


def drop_sql(dialect: str) -> list[str]:
    """The statements that drop every rollup trigger (and function)."""
    statements = funnel_drop_sql(dialect)
    for source in SOURCES:
        for op in ("insert", "delete", "update"):
            statements.append(f"DROP TRIGGER IF EXISTS rollup_{source}_{op}"
                              + (f" ON {source}" if dialect == "postgresql" else ""))
            if dialect == "postgresql":
                statements.append(f"DROP FUNCTION IF EXISTS rollup_{source}_{op}()")
    return statements


def create_triggers(connection: sa.Connection) -> None:
    for statement in trigger_sql(connection.dialect.name):
        connection.exec_driver_sql(statement)


def rebuild(connection: sa.Connection, shop_id: int | None = None, since: date | None = None,
            funnel: bool = True) -> dict[str, int]:
    """Recompute the rollups from the source tables: every shop's, or ``shop_id``'s.

    ``stat_days`` is recomputed whole (its sources are kept forever). The visitor tables are
    recomputed from ``since`` on (a day), when given: the days before it keep what the triggers
    counted, because retention may have deleted the raw events they were counted from. The
    funnel's counts are then recomputed from the visitor-days. Returns the rows written per table.
    """
    dialect = connection.dialect.name
    scope = f" WHERE r.shop_id = {int(shop_id)}" if shop_id is not None else ""
    written: dict[str, int] = {}
    day_from = f"'{since.isoformat()}'" if since is not None else None
    if funnel:
        # The funnel is recomputed whole at the end: its triggers would redo it row by row as the
        # visitor-days are deleted and written again (in this transaction, so no writer sees
        # them gone).
        for statement in funnel_drop_sql(dialect):
            connection.exec_driver_sql(statement)
    for target in TARGET_KEYS:
        where = [f"shop_id = {int(shop_id)}"] if shop_id is not None else []
        if target == "visitor_days" and day_from:
            where.append(f"day >= {day_from}")
        elif target != "stat_days" and day_from:
            continue  # latest times: only ever raised, never taken back
        connection.exec_driver_sql(f"DELETE FROM {target}" + (f" WHERE {' AND '.join(where)}" if where else ""))
        written[target] = 0
    for part in PARTS:
        if part.target not in written or (part.funnel and not funnel):
            continue
        rows = f"(SELECT * FROM {part.source} AS r{scope})"
        if part.target == "visitor_days" and day_from:
            key = part.keys["day"]("r", dialect)
            rows = f"(SELECT * FROM {part.source} AS r WHERE {key} >= {day_from}" + (
                f" AND r.shop_id = {int(shop_id)})" if shop_id is not None else ")")
        result = connection.exec_driver_sql(_add(part, "r", dialect, rows))
        written[part.target] += max(result.rowcount or 0, 0)
    if not funnel:  # migration 0069, before the funnel's table
        return written
    rebuild_funnel(connection, shop_id)
    for statement in funnel_trigger_sql(dialect):
        connection.exec_driver_sql(statement)
    written["funnel_days"] = int(connection.exec_driver_sql(
        "SELECT count(*) FROM funnel_days" + (f" WHERE shop_id = {int(shop_id)}" if shop_id is not None else "")
    ).scalar() or 0)
    log.info("rollups rebuilt for %s: %s", f"shop {shop_id}" if shop_id is not None else "every shop", written)
    return written
