"""APScheduler as the clock that ticks the dispatcher; the outbox is the queue.

One job, every ``DISPATCH_INTERVAL_SECONDS`` (default 2 s), ``max_instances=1`` and
``coalesce=True``: a slow pass is never overlapped by the next tick, and missed ticks collapse
into one. Each tick runs inside ``with app.app_context():``. Correctness never depends on one
scheduler only: claims (``SKIP LOCKED`` and leases) keep several workers from sending a row twice.

The web process starts it only when ``RUN_SCHEDULER`` is true (``make run``); under gunicorn it
stays off and ``flask --app wsgi worker`` processes do the sending.
"""
from __future__ import annotations

import atexit
import logging
from datetime import timezone

from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask

from server.core.clock import utcnow
from server.delivery.dispatcher import OutcomesNotWritten
from server.delivery.runtime import DISPATCHER, close_delivery, get_dispatcher

log = logging.getLogger(__name__)

EXTENSION = "pushcart.scheduler"
LAST_TICK = "pushcart.scheduler_last_tick"
JOB_ID = "pushcart-dispatch"


def dispatch_tick(app: Flask) -> None:
    """One scheduled pass of the dispatcher, inside an app context."""
    with app.app_context():
        app.extensions[LAST_TICK] = utcnow()  # read by /healthz ("scheduler ticking")
        dispatcher = get_dispatcher(app)
        if dispatcher.stopping:
            return
        try:
            counts = dispatcher.run_pass()
        except OutcomesNotWritten:
            return  # stopping while the database was away: logged once by the dispatcher
        except Exception:
            log.exception("dispatch pass failed; the next tick retries")
            return
        if any(counts.as_json().values()):
            log.info("dispatch pass: %s", counts.as_json())


def start_scheduler(app: Flask, interval: float | None = None) -> BackgroundScheduler:
    """Start ticking the dispatcher in a background thread; the handle goes on ``app.extensions``."""
    scheduler = app.extensions.get(EXTENSION)
    if scheduler is not None:
        return scheduler
    seconds = float(interval or app.config["DISPATCH_INTERVAL_SECONDS"])
    scheduler = BackgroundScheduler(timezone=timezone.utc)
    scheduler.add_job(dispatch_tick, "interval", seconds=seconds, args=[app], id=JOB_ID,
                      max_instances=1, coalesce=True, next_run_time=utcnow())
    scheduler.start()
    app.extensions[EXTENSION] = scheduler
    atexit.register(stop_scheduler, app)
    log.info("dispatcher scheduled every %.1f s", seconds)
    return scheduler


def stop_scheduler(app: Flask, wait: bool = True) -> None:
    """Stop ticking: the pass in flight finishes its batch (sends and records it), then we close."""
    scheduler = app.extensions.pop(EXTENSION, None)
    dispatcher = app.extensions.get(DISPATCHER)
    if dispatcher is not None:
        dispatcher.request_stop()
    if scheduler is not None and scheduler.running:
        scheduler.shutdown(wait=wait)
    close_delivery(app)
