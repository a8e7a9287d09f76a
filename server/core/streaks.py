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
new row counts. Two ways:

- a send (a push that starts to count, unclicked) with no clicked push of its subscription
  sent at its time or later adds one: the check reads the subscription's index entries from
  that time on (``ix_pushes_subscription_sent``), a send's few newest pushes, so the send path
  does not grow with a subscription's history;
- anything else (a click, a push sent before the latest click, a failure after the fact, a
  deletion, a kind or subscription changed) recounts the subscription's streak from its pushes
  after its latest click, as the rebuild does.

On PostgreSQL the triggers fire once per statement with the rows as transition tables (the
dispatcher writes a batch's outcomes in one UPDATE), gather the subscriptions concerned, lock
them in id order (two batches never wait on each other crosswise) and only then read and write
them in a statement of its own: its snapshot sees every change committed by a transaction that
held one of those locks before, so concurrent batches to one subscription add up. A claim
(pending to sending) has no row that counts and stops at the first check. On SQLite every
trigger is per row (one writer at a time). The rollups' triggers on ``pushes`` write other tables and read
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


def _floor(dialect: str) -> str:
    """A time before any other (SQLite stores times as text)."""
    return "'-infinity'::timestamptz" if dialect == "postgresql" else "''"


def _pushes_of(sid: str, since: str, dialect: str) -> str:
    """The pushes of the subscription ``sid`` sent at ``since`` or later, a range of
    ``ix_pushes_subscription_sent``. On PostgreSQL behind ``OFFSET 0``, so the conditions on the
    rows found stay filters: with the statistics of a table just bulk-loaded, the planner ANDed
    the status index in, a scan of every sent push of the shop for each subscription."""
    fence = " OFFSET 0" if dialect == "postgresql" else ""
    return (f"(SELECT id, subscription_id, status, kind, sent_at, clicked_at FROM pushes "
            f"WHERE subscription_id = {sid} AND sent_at >= {since}{fence})")


def _latest_clicked(sid: str, dialect: str) -> str:
    """The subscription ``sid``'s latest clicked push that counts (its ``sent_at`` and ``id``)."""
    return (f"SELECT c.sent_at, c.id FROM {_pushes_of(sid, _floor(dialect), dialect)} AS c WHERE {counts('c')} "
            f"AND c.clicked_at IS NOT NULL ORDER BY c.sent_at DESC, c.id DESC LIMIT 1")


def _after(p: str, last: str) -> str:
    """The push ``p`` comes after ``last`` (a latest clicked push, all NULL when there is none)."""
    return f"({last}.id IS NULL OR {p}.sent_at > {last}.sent_at OR ({p}.sent_at = {last}.sent_at AND {p}.id > {last}.id))"


def _recount_one(sid: str, also: str = "") -> str:
    """SQLite: set the streak of the subscription ``sid`` (an expression such as
    ``NEW.subscription_id``), when ``also`` (a condition) holds."""
    streak = (f"SELECT count(*) FROM pushes AS p LEFT JOIN ({_latest_clicked(sid, 'sqlite')}) AS l ON 1 = 1 "
              f"WHERE p.subscription_id = {sid} AND p.sent_at >= coalesce(l.sent_at, '') AND {counts('p')} "
              f"AND {_after('p', 'l')}")
    return f"UPDATE subscriptions SET unclicked_streak = ({streak}) WHERE id = {sid}{also}"


def _recount(sid: str) -> str:
    """PostgreSQL: the streak of the subscription ``sid`` counted from its pushes after its latest
    click (a scalar)."""
    since = f"coalesce(l.sent_at, {_floor('postgresql')})"
    return (f"(SELECT count(*) FROM (SELECT 1) AS one "
            f"LEFT JOIN LATERAL ({_latest_clicked(sid, 'postgresql')}) AS l ON true "
            f"JOIN LATERAL {_pushes_of(sid, since, 'postgresql')} AS p ON {counts('p')} AND {_after('p', 'l')})")


def _changed(old: str, new: str, dialect: str) -> str:
    op = "IS DISTINCT FROM" if dialect == "postgresql" else "IS NOT"
    moved = " OR ".join(f"{old}.{c} {op} {new}.{c}" for c in WATCHED)
    return f"({moved}) AND (({counts(old)}) OR ({counts(new)}))"


def _appended(old: str | None, new: str) -> str:
    """The push ``new`` starts to count, unclicked: a send."""
    before = f"NOT ({counts(old)}) AND " if old else ""
    return f"({before}{counts(new)} AND {new}.clicked_at IS NULL)"


def _after_latest_click(sid: str, sent_at: str, dialect: str) -> str:
    """Whether no clicked push of ``sid`` that counts was sent at ``sent_at`` or later, so a push
    sent at ``sent_at`` comes after the latest click (a tie on the time says no, and recounts):
    read off the index from ``sent_at`` on, a send's few newest pushes."""
    return (f"NOT EXISTS (SELECT 1 FROM {_pushes_of(sid, sent_at, dialect)} AS p "
            f"WHERE {counts('p')} AND p.clicked_at IS NOT NULL)")


def _sqlite_triggers() -> list[str]:
    """Per row: a send after the subscription's latest click adds one; anything else recounts."""
    fits = _after_latest_click("NEW.subscription_id", "NEW.sent_at", "sqlite")
    add = "UPDATE subscriptions SET unclicked_streak = unclicked_streak + 1 WHERE id = NEW.subscription_id"
    sent, appended = _appended(None, "NEW"), _appended("OLD", "NEW")
    insert_slow = f" AND NOT ({sent} AND {fits})"
    old_slow = f" AND NOT {appended}"  # the old subscription lost (or changed) a push
    new_slow = (f" AND ((NOT {appended} AND NEW.subscription_id IS NOT OLD.subscription_id)"
                f" OR ({appended} AND NOT ({fits})))")  # moved here, or sent before a click
    return [
        f"CREATE TRIGGER streak_pushes_insert AFTER INSERT ON pushes FOR EACH ROW WHEN {counts('NEW')}\nBEGIN\n"
        f"  {add} AND {sent} AND {fits};\n  {_recount_one('NEW.subscription_id', insert_slow)};\nEND",
        f"CREATE TRIGGER streak_pushes_delete AFTER DELETE ON pushes FOR EACH ROW WHEN {counts('OLD')}\n"
        f"BEGIN\n  {_recount_one('OLD.subscription_id')};\nEND",
        f"CREATE TRIGGER streak_pushes_update AFTER UPDATE OF {', '.join(WATCHED)} ON pushes FOR EACH ROW "
        f"WHEN {_changed('OLD', 'NEW', 'sqlite')}\nBEGIN\n"
        f"  {add} AND {appended} AND {fits};\n"
        f"  {_recount_one('OLD.subscription_id', old_slow)};\n"
        f"  {_recount_one('NEW.subscription_id', new_slow)};\nEND",
    ]


def _pg_gather(rows: str) -> str:
    """Into ``ids`` (every subscription concerned, in id order) and, aligned with it, ``only_sends``
    (whether its only changes are sends), ``sends`` (how many) and ``firsts`` (the first one's
    time), in one pass over ``rows``: a query of ``sid``, ``sent`` (a send to ``sid``; any other
    change concerns both the old and the new subscription, a row each) and ``sent_at``."""
    return (
        "SELECT array_agg(g.sid ORDER BY g.sid), array_agg(g.only_sends ORDER BY g.sid), "
        "array_agg(g.n ORDER BY g.sid), array_agg(g.first_at ORDER BY g.sid) INTO ids, only_sends, sends, firsts "
        "FROM (SELECT x.sid, bool_and(x.sent) AS only_sends, count(*) AS n, min(x.sent_at) AS first_at "
        f"FROM ({rows}) AS x WHERE x.sid IS NOT NULL GROUP BY x.sid) AS g"
    )


def _pg_function(event: str, gather: str) -> str:
    """A PostgreSQL trigger function: gather the subscriptions concerned, lock them, then in a
    statement of its own add the sends to those whose only changes are sends after the latest
    click, and recount the others."""
    streak = (f"CASE WHEN f.only_sends AND {_after_latest_click('f.sid', 'f.first_at', 'postgresql')} "
              f"THEN s.unclicked_streak + f.n ELSE {_recount('f.sid')} END")
    return f"""CREATE OR REPLACE FUNCTION streak_pushes_{event}() RETURNS trigger LANGUAGE plpgsql AS $body$
DECLARE
  ids bigint[];
  only_sends boolean[];
  sends bigint[];
  firsts timestamptz[];
BEGIN
  {gather};
  IF ids IS NULL THEN
    RETURN NULL;
  END IF;
  -- Locked first, in id order; the update reads in a statement of its own, after the locks.
  PERFORM 1 FROM subscriptions WHERE id = ANY(ids) ORDER BY id FOR NO KEY UPDATE;
  UPDATE subscriptions AS s SET unclicked_streak = {streak}
  FROM unnest(ids, only_sends, sends, firsts) AS f(sid, only_sends, n, first_at) WHERE s.id = f.sid;
  RETURN NULL;
END
$body$"""


def trigger_sql(dialect: str) -> list[str]:
    """The statements that create the streak's triggers on ``pushes`` (and, on PostgreSQL, their functions)."""
    if dialect != "postgresql":
        return _sqlite_triggers()
    gather = {
        "insert": _pg_gather(f"SELECT r.subscription_id AS sid, r.clicked_at IS NULL AS sent, r.sent_at "
                             f"FROM new_rows AS r WHERE {counts('r')}"),
        "delete": _pg_gather(f"SELECT r.subscription_id AS sid, false AS sent, r.sent_at "
                             f"FROM old_rows AS r WHERE {counts('r')}"),
        # The claim's rows (pending to sending) count neither before nor after: stop at once.
        "update": f"IF NOT EXISTS (SELECT 1 FROM new_rows AS r WHERE {counts('r')}) "
                  f"AND NOT EXISTS (SELECT 1 FROM old_rows AS r WHERE {counts('r')}) THEN\n    RETURN NULL;\n  END IF;\n  "
                  + _pg_gather(f"SELECT c.sid, c.sent, n.sent_at FROM old_rows AS o JOIN new_rows AS n ON n.id = o.id "
                               f"CROSS JOIN LATERAL (SELECT {_appended('o', 'n')} AS sent) AS a "
                               f"CROSS JOIN LATERAL (VALUES (n.subscription_id, a.sent), (o.subscription_id, false)) "
                               f"AS c(sid, sent) "
                               f"WHERE {_changed('o', 'n', dialect)} AND (c.sent OR NOT a.sent)"),
    }
    transition = {"insert": "NEW TABLE AS new_rows", "delete": "OLD TABLE AS old_rows",
                  "update": "OLD TABLE AS old_rows NEW TABLE AS new_rows"}
    statements = []
    for event in EVENTS:
        statements.append(_pg_function(event, gather[event]))
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
              f"WHERE {counts('p')}{scope('p')} AND {_after('p', 'l')} "
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
