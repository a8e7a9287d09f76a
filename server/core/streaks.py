"""The unclicked streak: how many pushes a subscription got since it last clicked one.

``subscriptions.unclicked_streak`` is the number of the subscription's sent pushes after its
latest clicked one, in the order (``sent_at``, ``id``): all of its sent pushes when it never
clicked. Test pushes (kind ``test``) never count and are never the latest clicked one; a push
counts once it is ``sent`` with a ``sent_at``, as in the stats' rollups. A subscription that
received at least n pushes and clicked none of its last n (``server.delivery.engagement``) is
exactly one whose streak is at least n, so the guardrail and the send-time policy read one
column instead of ranking every sent push of the shop.

Triggers on ``pushes`` keep it, so every writer does (the dispatcher's outcome write, a click,
a test's own inserts, a deletion): an insert or delete of a push that counts, and an update of
``status``, ``sent_at``, ``clicked_at``, ``kind`` or ``subscription_id`` where the old or the
new row counts. They do not add or take back one: they recount the streak of each subscription
concerned from its pushes (``ix_pushes_subscription_sent`` finds them), so a click on an older
push, a push sent out of order or a deleted one come out right, as the rebuild does.

On PostgreSQL the triggers fire once per statement with the rows as transition tables (the
dispatcher writes a batch's outcomes in one UPDATE), gather the subscriptions concerned, lock
them in id order (two batches never wait on each other crosswise) and only then recount them
in a statement of its own: its snapshot sees every change committed by a transaction that held
one of those locks before, so concurrent batches to one subscription add up. A claim (pending
to sending) has no row that counts and stops at the first check. On SQLite every trigger is
per row (one writer at a time). The rollups' triggers on ``pushes`` write other tables and read
nothing these write, so the order they fire in (PostgreSQL: by name) does not matter; updating
only ``unclicked_streak`` fires none of the rollups' triggers on ``subscriptions``.

``rebuild`` recomputes the column from the pushes with one statement (the migration's backfill,
and ``stats rebuild``).
"""
from __future__ import annotations

import logging

import sqlalchemy as sa

from server.core.kinds import TEST_KIND

log = logging.getLogger(__name__)

# The columns whose change may move a streak (an update of any other fires nothing).
WATCHED = ("status", "sent_at", "clicked_at", "kind", "subscription_id")
EVENTS = ("insert", "delete", "update")


def counts(r: str) -> str:
    """Whether the push row ``r`` counts in its subscription's streak."""
    return (f"{r}.status = 'sent' AND {r}.sent_at IS NOT NULL AND {r}.kind <> '{TEST_KIND}' "
            f"AND {r}.subscription_id IS NOT NULL")


def _latest_clicked(sid: str) -> str:
    """The subscription ``sid``'s latest clicked push that counts (its ``sent_at`` and ``id``)."""
    return (f"SELECT c.sent_at, c.id FROM pushes AS c WHERE c.subscription_id = {sid} AND {counts('c')} "
            f"AND c.clicked_at IS NOT NULL ORDER BY c.sent_at DESC, c.id DESC LIMIT 1")


def _after(p: str, last: str, dialect: str) -> str:
    """The push ``p`` comes after ``last`` (a latest clicked push, all NULL when there is none).
    The bound on ``sent_at`` alone lets the index skip the pushes before the latest click."""
    floor = "'-infinity'::timestamptz" if dialect == "postgresql" else "''"  # SQLite stores times as text
    return (f"{p}.sent_at >= coalesce({last}.sent_at, {floor}) AND ({last}.id IS NULL OR {p}.sent_at > {last}.sent_at "
            f"OR ({p}.sent_at = {last}.sent_at AND {p}.id > {last}.id))")


def _recount_one(sid: str, also: str = "") -> str:
    """SQLite: set the streak of the subscription ``sid`` (an expression such as
    ``NEW.subscription_id``), when ``also`` (a condition) holds."""
    streak = (f"SELECT count(*) FROM pushes AS p LEFT JOIN ({_latest_clicked(sid)}) AS l ON 1 = 1 "
              f"WHERE p.subscription_id = {sid} AND {counts('p')} AND {_after('p', 'l', 'sqlite')}")
    return f"UPDATE subscriptions SET unclicked_streak = ({streak}) WHERE id = {sid}{also}"


def _recount_many(ids: str) -> str:
    """PostgreSQL: set the streak of the subscriptions of the array ``ids`` (locked already),
    writing only those that changed."""
    return (
        "UPDATE subscriptions AS s SET unclicked_streak = x.streak FROM ("
        f"SELECT k.sid, (SELECT count(*) FROM pushes AS p WHERE p.subscription_id = k.sid AND {counts('p')} "
        f"AND {_after('p', 'l', 'postgresql')}) AS streak "
        f"FROM unnest({ids}) AS k(sid) LEFT JOIN LATERAL ({_latest_clicked('k.sid')}) AS l ON true"
        ") AS x WHERE s.id = x.sid AND s.unclicked_streak <> x.streak"
    )


def _changed(old: str, new: str, dialect: str) -> str:
    op = "IS DISTINCT FROM" if dialect == "postgresql" else "IS NOT"
    moved = " OR ".join(f"{old}.{c} {op} {new}.{c}" for c in WATCHED)
    return f"({moved}) AND (({counts(old)}) OR ({counts(new)}))"


def trigger_sql(dialect: str) -> list[str]:
    """The statements that create the streak's triggers on ``pushes`` (and, on PostgreSQL, their functions)."""
    if dialect != "postgresql":
        recount_new, recount_old = _recount_one("NEW.subscription_id"), _recount_one("OLD.subscription_id")
        moved = _recount_one("NEW.subscription_id", " AND NEW.subscription_id IS NOT OLD.subscription_id")
        return [
            f"CREATE TRIGGER streak_pushes_insert AFTER INSERT ON pushes FOR EACH ROW WHEN {counts('NEW')}\n"
            f"BEGIN\n  {recount_new};\nEND",
            f"CREATE TRIGGER streak_pushes_delete AFTER DELETE ON pushes FOR EACH ROW WHEN {counts('OLD')}\n"
            f"BEGIN\n  {recount_old};\nEND",
            f"CREATE TRIGGER streak_pushes_update AFTER UPDATE OF {', '.join(WATCHED)} ON pushes FOR EACH ROW "
            f"WHEN {_changed('OLD', 'NEW', dialect)}\nBEGIN\n  {recount_old};\n  {moved};\nEND",
        ]
    gather = {
        "insert": f"SELECT array_agg(DISTINCT r.subscription_id ORDER BY r.subscription_id) INTO ids "
                  f"FROM new_rows AS r WHERE {counts('r')}",
        "delete": f"SELECT array_agg(DISTINCT r.subscription_id ORDER BY r.subscription_id) INTO ids "
                  f"FROM old_rows AS r WHERE {counts('r')}",
        # The claim's rows (pending to sending) count neither before nor after: stop at once.
        "update": f"IF NOT EXISTS (SELECT 1 FROM new_rows AS r WHERE {counts('r')}) "
                  f"AND NOT EXISTS (SELECT 1 FROM old_rows AS r WHERE {counts('r')}) THEN\n    RETURN NULL;\n  END IF;\n"
                  f"  SELECT array_agg(DISTINCT x.sid ORDER BY x.sid) INTO ids "
                  f"FROM old_rows AS o JOIN new_rows AS n ON n.id = o.id "
                  f"CROSS JOIN LATERAL (VALUES (o.subscription_id), (n.subscription_id)) AS x(sid) "
                  f"WHERE x.sid IS NOT NULL AND {_changed('o', 'n', dialect)}",
    }
    transition = {"insert": "NEW TABLE AS new_rows", "delete": "OLD TABLE AS old_rows",
                  "update": "OLD TABLE AS old_rows NEW TABLE AS new_rows"}
    statements = []
    for event in EVENTS:
        statements.append(
            f"CREATE OR REPLACE FUNCTION streak_pushes_{event}() RETURNS trigger LANGUAGE plpgsql AS $body$\n"
            f"DECLARE\n  ids bigint[];\nBEGIN\n"
            f"  {gather[event]};\n"
            f"  IF ids IS NULL THEN\n    RETURN NULL;\n  END IF;\n"
            # Locked first, in id order; the recount is a statement of its own, after the locks.
            f"  PERFORM 1 FROM subscriptions WHERE id = ANY(ids) ORDER BY id FOR NO KEY UPDATE;\n"
            f"  {_recount_many('ids')};\n"
            f"  RETURN NULL;\nEND\n$body$")
        statements.append(
            f"CREATE TRIGGER streak_pushes_{event} AFTER {event.upper()} ON pushes "
            f"REFERENCING {transition[event]} FOR EACH STATEMENT EXECUTE FUNCTION streak_pushes_{event}()")
    return statements


def drop_sql(dialect: str) -> list[str]:
    """The statements that drop the streak's triggers (and functions)."""
    statements = []
    for event in EVENTS:
        if dialect == "postgresql":
            statements += [f"DROP TRIGGER IF EXISTS streak_pushes_{event} ON pushes",
                           f"DROP FUNCTION IF EXISTS streak_pushes_{event}()"]
        else:
            statements.append(f"DROP TRIGGER IF EXISTS streak_pushes_{event}")
    return statements


def create_triggers(connection: sa.Connection) -> None:
    for statement in trigger_sql(connection.dialect.name):
        connection.exec_driver_sql(statement)


def rebuild(connection: sa.Connection, shop_id: int | None = None) -> int:
    """Recompute every subscription's streak from its pushes (or those of ``shop_id``'s), in one
    statement; return how many subscriptions it changed."""
    def scope(r: str) -> str:
        return f" AND {r}.shop_id = {int(shop_id)}" if shop_id is not None else ""

    # The latest clicked push per subscription: its time, then the highest id at that time.
    # Subqueries rather than a WITH: SQLite's driver reports no row count for a statement that
    # does not start with UPDATE.
    last_at = (f"SELECT c.subscription_id AS sid, max(c.sent_at) AS sent_at FROM pushes AS c "
               f"WHERE {counts('c')} AND c.clicked_at IS NOT NULL{scope('c')} GROUP BY c.subscription_id")
    last = (f"SELECT a.sid, a.sent_at, max(c.id) AS id FROM ({last_at}) AS a JOIN pushes AS c "
            f"ON c.subscription_id = a.sid AND c.sent_at = a.sent_at "
            f"WHERE {counts('c')} AND c.clicked_at IS NOT NULL GROUP BY a.sid, a.sent_at")
    streak = (f"SELECT p.subscription_id AS sid, count(*) AS n FROM pushes AS p "
              f"LEFT JOIN ({last}) AS l ON l.sid = p.subscription_id "
              f"WHERE {counts('p')}{scope('p')} AND {_after('p', 'l', connection.dialect.name)} "
              f"GROUP BY p.subscription_id")
    statement = (
        f"UPDATE subscriptions SET unclicked_streak = x.n FROM ("
        f"SELECT s.id, coalesce(st.n, 0) AS n FROM subscriptions AS s LEFT JOIN ({streak}) AS st ON st.sid = s.id "
        f"WHERE 1 = 1{scope('s')}) AS x "
        f"WHERE subscriptions.id = x.id AND subscriptions.unclicked_streak <> x.n"
    )
    changed = max(connection.exec_driver_sql(statement).rowcount or 0, 0)
    log.info("unclicked streaks rebuilt for %s: %d changed",
             f"shop {shop_id}" if shop_id is not None else "every shop", changed)
    return changed
