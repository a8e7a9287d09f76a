"""The delivery commands: ``worker`` (runs the dispatcher until stopped) and ``dispatch --once``."""
from __future__ import annotations

import json
import logging
import re
import signal
import threading
from datetime import datetime, timezone
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext

from server.core.clock import FrozenClock
from server.delivery.vapid import load_keys, subject_problem
from server.delivery.runtime import close_delivery, make_dispatcher

log = logging.getLogger(__name__)
_OFFSET = re.compile(r"(Z|z|[+-]\d{2}:\d{2})$")


def require_sending_setup(app: Any) -> None:
    """Stop a sending command at its start, with one clear line, when it could not send: no
    usable VAPID subject, or no VAPID key (never a traceback halfway through a pass)."""
    problem = subject_problem(app.config.get("VAPID_SUBJECT"))
    if problem:
        raise click.ClickException(problem)
    try:
        load_keys(app.config["VAPID_PRIVATE_KEY_FILE"])
    except (FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None


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


@click.command("worker")
@with_appcontext
@click.option("--interval", type=click.FloatRange(min=0.05), default=None,
              help="Seconds between dispatcher ticks (default DISPATCH_INTERVAL_SECONDS or 2).")
@click.option("--batch-size", type=click.IntRange(min=1, max=5000), default=None,
              help="Rows claimed per batch (default DISPATCH_BATCH_SIZE or 200).")
@click.option("--lease", type=click.FloatRange(min=0.5), default=None,
              help="Seconds a claim holds its rows before another worker may take them (default 60).")
@click.option("--concurrency", type=click.IntRange(min=1, max=1024), default=None,
              help="Pushes in flight at once (default PUSH_CONCURRENCY or 32).")
def worker_command(interval: float | None, batch_size: int | None, lease: float | None,
                   concurrency: int | None) -> None:
    """Run the dispatcher on APScheduler until SIGTERM or SIGINT (in-flight sends finish first)."""
    from server.delivery.scheduler import start_scheduler, stop_scheduler

    app: Any = current_app._get_current_object()  # type: ignore[attr-defined]
    require_sending_setup(app)
    for key, value in (("DISPATCH_INTERVAL_SECONDS", interval), ("DISPATCH_BATCH_SIZE", batch_size),
                       ("DISPATCH_LEASE_SECONDS", lease), ("PUSH_CONCURRENCY", concurrency)):
        if value is not None:
            app.config[key] = value
    stop = threading.Event()

    def _on_signal(signum: int, _frame: Any) -> None:
        log.info("signal %d: finishing the batch in flight, then stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    start_scheduler(app)
    click.echo("worker started", err=True)
    while not stop.wait(0.5):
        pass
    stop_scheduler(app, wait=True)
    click.echo("worker stopped", err=True)


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
    from server.delivery.scheduler import EXTENSION, stop_scheduler

    if EXTENSION in app.extensions:  # RUN_SCHEDULER set for a command: one pass means one pass
        stop_scheduler(app)
    dispatcher = make_dispatcher(app, clock)
    try:
        counts = dispatcher.run_pass()
    finally:
        close_delivery(app)
    click.echo(json.dumps(counts.as_json()))
