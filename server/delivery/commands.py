"""The delivery commands: ``worker`` (runs the dispatcher until stopped), ``dispatch --once``,
and ``subscriptions suspect|restore|confirm`` (the subscriptions a push service storm holds)."""
from __future__ import annotations

import json
import logging
import os
import re
import signal
import sys
import threading
import time
from datetime import datetime, timezone
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from server.core.clock import FrozenClock, get_clock
from server.delivery.push.vapid import load_keys, subject_problem
from server.core.db import session_scope
from server.delivery import storm
from server.delivery.runtime import close_delivery, make_dispatcher

log = logging.getLogger(__name__)
_OFFSET = re.compile(r"(Z|z|[+-]\d{2}:\d{2})$")


def require_sending_setup(app: Any) -> None:
    """Stop a sending command at its start, with one clear line, when it could not send: no
    usable VAPID subject, no VAPID key, or an ``SSL_CERT_FILE`` that is no file (never a
    traceback, nor every push failing its TLS, halfway through a pass)."""
    problem = subject_problem(app.config.get("VAPID_SUBJECT"))
    if problem:
        raise click.ClickException(problem)
    try:
        load_keys(app.config["VAPID_PRIVATE_KEY_FILE"])
    except (FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    cafile = os.environ.get("SSL_CERT_FILE")
    if cafile and not os.path.isfile(cafile):
        raise click.ClickException(f"SSL_CERT_FILE is {cafile}, which is not a file: name the CA bundle push "
                                   "services are verified against, or unset it for the system's")


def parse_at(value: str) -> datetime:
    """An ISO 8601 time with ``Z`` or a ``±hh:mm`` offset, as UTC; a naive time is an error."""
    text = value.strip()
    if not _OFFSET.search(text):
        raise click.BadParameter("needs a time zone: end it with Z or an offset like +02:00",
                                 param_hint="--at")
    try:
        when = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1] in "Zz" else text)
    except ValueError:
        raise click.BadParameter(f"not an ISO 8601 time: {value!r}", param_hint="--at") from None
    if when.tzinfo is None:  # pragma: no cover - the pattern above already demands an offset
        raise click.BadParameter("needs a time zone", param_hint="--at")
    return when.astimezone(timezone.utc)


def default_processes(dialect: str) -> int:
    """``worker --processes`` when not given: one per core this process may run on.

    On SQLite too, because claiming is safe there: a claim is one ``UPDATE .. RETURNING``, the
    first statement of its transaction, so it takes the database's write lock before it reads
    (no stale snapshot, no row claimed twice), and every outcome is written with
    ``status = 'sending' AND attempts = <the claim's>``. Three processes on one SQLite file
    deliver every push exactly once (tests/integration/delivery/test_workers.py). Only the first
    process runs the sweeps (they read, then write). What a second process gains depends on
    free cores: docs/performance-delivery.md has the figures.
    """
    del dialect  # the same rule on both databases (see above)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@click.command("worker")
@with_appcontext
@click.option("--interval", type=click.FloatRange(min=0.05), default=None,
              help="Seconds between dispatcher ticks (default DISPATCH_INTERVAL_SECONDS or 2).")
@click.option("--batch-size", type=click.IntRange(min=1, max=5000), default=None,
              help="Rows claimed per batch (default DISPATCH_BATCH_SIZE or 200).")
@click.option("--lease", type=click.FloatRange(min=0.5), default=None,
              help="Seconds a claim holds its rows before another worker may take them "
                   "(default DISPATCH_LEASE_SECONDS or 300).")
@click.option("--concurrency", type=click.IntRange(min=1, max=1024), default=None,
              help="Pushes in flight at once, per process (default PUSH_CONCURRENCY or 32).")
@click.option("--processes", type=click.IntRange(min=1, max=256), default=None,
              help="Worker processes sharing the outbox (default: the number of cores).")
def worker_command(interval: float | None, batch_size: int | None, lease: float | None,
                   concurrency: int | None, processes: int | None) -> None:
    """Run the dispatcher on APScheduler until SIGTERM or SIGINT (in-flight sends finish first).

    With several processes this one forks them (after the app is built: no thread nor
    connection exists yet), passes SIGTERM/SIGINT on, waits for each to finish and record its
    batch in flight, and exits 0 when all did. A child that dies (SIGKILL) is started again; the
    rows it held come back when their lease runs out. Only the first child runs the sweeps.
    """
    app: Any = current_app._get_current_object()  # type: ignore[attr-defined]
    require_sending_setup(app)
    for key, value in (("DISPATCH_INTERVAL_SECONDS", interval), ("DISPATCH_BATCH_SIZE", batch_size),
                       ("DISPATCH_LEASE_SECONDS", lease), ("PUSH_CONCURRENCY", concurrency)):
        if value is not None:
            app.config[key] = value
    from server.core.db import get_db

    count = processes or default_processes(get_db(app).dialect)
    if count == 1:
        _run_worker(app)
        return
    sys.exit(_supervise(app, count))


def _stop_on_signals() -> threading.Event:
    """An event SIGTERM and SIGINT set (the batch in flight is finished, then the worker stops)."""
    stop = threading.Event()

    def _on_signal(signum: int, _frame: Any) -> None:
        log.info("signal %d: finishing the batch in flight, then stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    return stop


def _run_worker(app: Any, stop: threading.Event | None = None) -> None:
    """One worker: tick the dispatcher until SIGTERM or SIGINT, then finish the batch in flight."""
    from server.delivery.scheduler import start_scheduler, stop_scheduler

    stop = stop or _stop_on_signals()
    start_scheduler(app)
    click.echo("worker started", err=True)
    while not stop.wait(0.5):
        pass
    stop_scheduler(app, wait=True)
    click.echo("worker stopped", err=True)


def _stop_with_parent(parent: int) -> None:
    """Linux: SIGTERM this process when its parent dies (a SIGKILLed supervisor leaves no
    orphans sending on their own); the child then finishes its batch like any stop."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _child(app: Any, index: int, parent: int, mask: set[signal.Signals]) -> None:
    """In a forked child: its own connections, sweeps in the first child only; never returns."""
    from server.core.db import get_db

    code = 1
    try:
        # The child's own handlers first: a SIGTERM from the parent at any moment from here on
        # (even before the scheduler runs) stops it cleanly, never by the default action.
        stop = _stop_on_signals()
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a SIGTERM sent meanwhile arrives now
        _stop_with_parent(parent)
        get_db(app).engine.dispose(close=False)  # the parent's pool (empty) is not ours to use
        if index > 0:
            app.config["DISPATCH_SWEEPS"] = False  # one process plans; all of them send
        _run_worker(app, stop)
        code = 0
    except BaseException:  # noqa: BLE001 - the child must exit here, never return into the parent's CLI
        log.exception("worker process %d failed", index)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _supervise(app: Any, count: int) -> int:
    """Fork ``count`` workers, restart any that dies, stop them all on SIGTERM/SIGINT."""
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    children: dict[int, int] = {}  # pid -> index
    parent = os.getpid()

    def spawn(index: int) -> None:
        # Signals wait (blocked) across the fork until the child has its own handlers.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
        pid = os.fork()
        if pid == 0:
            _child(app, index, parent, blocked)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        children[pid] = index

    for index in range(count):
        spawn(index)
    click.echo(f"worker: {count} processes", err=True)
    failed = False
    while not stopping.is_set():
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            stopping.wait(0.2)
            continue
        index = children.pop(pid, None)
        if index is None:
            continue
        log.error("worker process %d (pid %d) ended (%s); starting another", index, pid,
                  _describe(status))
        time.sleep(0.5)
        if not stopping.is_set():
            spawn(index)
    for pid in children:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for pid in list(children):
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            log.error("worker process %d (pid %d) ended (%s) while stopping", children[pid], pid,
                      _describe(status))
            failed = True
    click.echo("worker stopped", err=True)
    return 1 if failed else 0


def _describe(status: int) -> str:
    code = os.waitstatus_to_exitcode(status)
    return f"signal {-code}" if code < 0 else f"exit {code}"


@click.command("dispatch")
@with_appcontext
@click.option("--once", is_flag=True, help="Run one pass and exit (required; `worker` runs continuously).")
@click.option("--at", "at", default=None, metavar="ISO8601",
              help="Run the pass as if the time were this (with Z or a ±hh:mm offset).")
def dispatch_command(once: bool, at: str | None) -> None:
    """One pass: plan due presets, send due pushes; print {"planned", "sent", "failed", "expired", "skipped"}."""
    from server.core.clock import get_clock

    if not once:
        raise click.UsageError("use `dispatch --once` for one pass, or `worker` to keep sending")
    app: Any = current_app._get_current_object()  # type: ignore[attr-defined]
    require_sending_setup(app)
    clock = FrozenClock(parse_at(at)) if at else get_clock(app)
    if app.config.get("RUN_SCHEDULER"):  # set for a command: one pass means one pass
        from server.delivery.scheduler import EXTENSION, stop_scheduler

        if EXTENSION in app.extensions:
            stop_scheduler(app)
    dispatcher = make_dispatcher(app, clock)
    try:
        counts = dispatcher.run_pass()
    finally:
        close_delivery(app)
    click.echo(json.dumps(counts.as_json()))


subscriptions_cli = AppGroup("subscriptions", help="Subscriptions held as suspect during a push service storm.")


def _states_json(session: Any, now: datetime) -> list[dict[str, Any]]:
    """The push services with a storm or suspect subscriptions, as the commands print them."""
    return [{"host": s.host, "storm_since": s.storm_since.isoformat() if s.storm_since else None,
             "suspect_subscriptions": s.suspects,
             "suspect_since": s.suspect_since.isoformat() if s.suspect_since else None,
             "window_answers": round(s.answers, 1),
             "window_gone_share": round(s.gone / s.answers, 3) if s.answers else None}
            for s in storm.host_states(session, now, storm.StormSettings.from_config(current_app.config))
            if s.storm_since is not None or s.suspects]


@subscriptions_cli.command("suspect")
def subscriptions_suspect() -> None:
    """List, per push service host, the storm and the subscriptions held as suspect (JSON)."""
    with session_scope() as session:
        click.echo(json.dumps({"hosts": _states_json(session, get_clock().now())}))


def _settle(host: str | None, confirm: bool) -> None:
    """Restore (or confirm as gone) the suspect subscriptions of ``host``, or of every host, and
    end those hosts' storms."""
    now = get_clock().now()
    with session_scope() as session:
        hosts = [s["host"] for s in _states_json(session, now) if host is None or s["host"] == host]
        if host is not None and not hosts:
            raise click.ClickException(f"no storm and no suspect subscriptions for {host}")
        done = {}
        for name in hosts:
            done[name] = storm.confirm(session, name, now) if confirm else storm.restore(session, name, now)
            storm.end_storm(session, name, now)
            log.warning("push service %s: %d suspect subscriptions %s by the operator", name, done[name],
                        "expired" if confirm else "restored")
    click.echo(json.dumps({"expired" if confirm else "restored": sum(done.values()), "hosts": done}))


@subscriptions_cli.command("restore")
@click.option("--host", default=None, help="One push service, as listed by `subscriptions suspect`.")
def subscriptions_restore(host: str | None) -> None:
    """Make suspect subscriptions active again (their held pushes due now) and end the storm."""
    _settle(host, confirm=False)


@subscriptions_cli.command("confirm")
@click.option("--host", default=None, help="One push service, as listed by `subscriptions suspect`.")
def subscriptions_confirm(host: str | None) -> None:
    """They really are gone: expire the suspect subscriptions (pending pushes cancelled) and end the storm."""
    _settle(host, confirm=True)
