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
    "subscriptions": ("shop_id", "status", "created_at", "ended_at"),
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


def _add(part: Part, r: str, dialect: str, from_rows: str | None) -> str:
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
    return (f"INSERT INTO {part.target} ({', '.join(cols)}) SELECT {', '.join(key_sql + aggs)}{source} "
            f"WHERE {part.where(r, dialect)} GROUP BY {group} ORDER BY {group} "
            f"ON CONFLICT ({', '.join(TARGET_KEYS[part.target])}) DO UPDATE SET {', '.join(sets)}")


def _take_back(part: Part, r: str, dialect: str, from_rows: str | None) -> str:
    """``UPDATE`` the rollup rows to take back the contribution of row ``r`` (or of ``from_rows``).
    Never an insert: a row that is gone (its visitor erased) has nothing to take back."""
    keys = list(part.keys)
    if from_rows is None:
        sets = [f"{c} = {c} - ({part.counters[c](r, dialect)})" for c in part.counters]
        match = " AND ".join(f"{k} = {part.keys[k](r, dialect)}" for k in keys)
        return f"UPDATE {part.target} SET {', '.join(sets)} WHERE {match} AND {part.where(r, dialect)}"
    key_sql = [f"{part.keys[k](r, dialect)} AS {k}" for k in keys]
    aggs = [f"sum({part.counters[c](r, dialect)}) AS {c}" for c in part.counters]
    sets = [f"{c} = {part.target}.{c} - gone.{c}" for c in part.counters]
    match = " AND ".join(f"{part.target}.{k} = gone.{k}" for k in keys)
    group = ", ".join(str(i + 1) for i in range(len(keys)))
    return (f"UPDATE {part.target} SET {', '.join(sets)} FROM (SELECT {', '.join(key_sql + aggs)} "
            f"FROM {from_rows} AS {r} WHERE {part.where(r, dialect)} GROUP BY {group}) AS gone WHERE {match}")


def _parts(source: str) -> list[Part]:
    return [p for p in PARTS if p.source == source]


def trigger_sql(dialect: str) -> list[str]:
    """The statements that create every rollup trigger (and, on PostgreSQL, their functions)."""
    statements: list[str] = []
    for source in SOURCES:
        parts = _parts(source)
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
            statements.append(function(f"rollup_{source}_update",
                                       [_take_back(p, "OLD", dialect, None) for p in counted]
                                       + [_add(p, "NEW", dialect, None) for p in parts]))
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
                                  [_take_back(p, "OLD", dialect, None) for p in counted]
                                  + [_add(p, "NEW", dialect, None) for p in parts], f" WHEN {changed}"))
    return statements


def drop_sql(dialect: str) -> list[str]:
    """The statements that drop every rollup trigger (and function)."""
    statements = []
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


def rebuild(connection: sa.Connection, shop_id: int | None = None, since: date | None = None) -> dict[str, int]:
    """Recompute the rollups from the source tables: every shop's, or ``shop_id``'s.

    ``stat_days`` is recomputed whole (its sources are kept forever). The visitor tables are
    recomputed from ``since`` on (a day), when given: the days before it keep what the triggers
    counted, because retention may have deleted the raw events they were counted from. Returns
    the rows written per table.
    """
    dialect = connection.dialect.name
    scope = f" WHERE r.shop_id = {int(shop_id)}" if shop_id is not None else ""
    written: dict[str, int] = {}
    day_from = f"'{since.isoformat()}'" if since is not None else None
    for target in TARGET_KEYS:
        where = [f"shop_id = {int(shop_id)}"] if shop_id is not None else []
        if target == "visitor_days" and day_from:
            where.append(f"day >= {day_from}")
        elif target != "stat_days" and day_from:
            continue  # latest times: only ever raised, never taken back
        connection.exec_driver_sql(f"DELETE FROM {target}" + (f" WHERE {' AND '.join(where)}" if where else ""))
        written[target] = 0
    for part in PARTS:
        if part.target not in written:
            continue
        rows = f"(SELECT * FROM {part.source} AS r{scope})"
        if part.target == "visitor_days" and day_from:
            key = part.keys["day"]("r", dialect)
            rows = f"(SELECT * FROM {part.source} AS r WHERE {key} >= {day_from}" + (
                f" AND r.shop_id = {int(shop_id)})" if shop_id is not None else ")")
        result = connection.exec_driver_sql(_add(part, "r", dialect, rows))
        written[part.target] += max(result.rowcount or 0, 0)
    log.info("rollups rebuilt for %s: %s", f"shop {shop_id}" if shop_id is not None else "every shop", written)
    return written
