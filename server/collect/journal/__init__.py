"""The events journal: the collect API's batches on the web host's disk until the database has them.

An events request is the hottest call of the service: every page view of every shop. Its batch
is validated, appended as one line to this process's journal (``file.Journal``) and answered;
a thread of the same process (``drainer.Drainer``) stores the journal in the database in
groups (``store_batches``: a handful of statements and one commit for up to ``DRAIN_GROUP``
requests). This one path serves SQLite and PostgreSQL alike.

This module is the wiring: where journals live (``COLLECT_JOURNAL_DIR``, one folder per
database inside it, one journal per process), whose they are (``database_owner``), how each process gets its own (created with its drainer on the first events request,
in the process that serves it, so a forked web worker never shares its parent's), and the
limits: past ``COLLECT_JOURNAL_MAX_PENDING`` undrained batches, or when the disk refuses the
write, the API answers 503 with ``Retry-After``.

A journal belongs to one database: instances started from the same folder (staging beside
production) share ``instance/journal``, so each keeps its journals in ``db-<hash>/`` named by its
database (the URL without its password, schema options included), and each lock file names the
database too; a drainer adopts only its own database's journals. Journals left in the shared
folder itself by a release before this one are adopted only by the instance whose database holds
their mark (``drainer.Drainer.adopt_orphans``).

Durability: with ``COLLECT_JOURNAL_SYNC=normal`` (the default) an answered batch is in the
kernel's page cache, so it survives the process dying; a power cut may lose the batches of the
last moments. ``full`` syncs each append to disk before the answer.
"""
from __future__ import annotations

import atexit
import hashlib
import logging
import os
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask

from server.core.clock import get_clock
from server.collect.events import EventBatch
from server.collect.journal.drainer import Drainer
from server.collect.journal.file import Journal

log = logging.getLogger(__name__)

EXTENSION = "pushcart.journal"


class JournalFull(Exception):
    """This process's journal holds ``COLLECT_JOURNAL_MAX_PENDING`` batches not yet drained, or
    its disk refuses the write (full, or a file size limit): the batch was not kept."""


@dataclass(frozen=True)
class JournalSettings:
    """``directory`` is this database's folder (``db-<hash>`` in ``root``, the configured folder)."""

    directory: Path
    sync: str
    max_pending: int
    root: Path
    owner: str  # ``database_owner``: written in each journal's lock file
    database: str  # the database's identity, without its password (for the operator)


def database_identity(url: str) -> str:
    """The database a URL names, as text without its password: backend, user, host, port,
    database and options (a PostgreSQL ``search_path`` is another database here)."""
    parsed = sa.engine.make_url(url)
    return sa.engine.URL.create(parsed.get_backend_name(), username=parsed.username, host=parsed.host,
                                port=parsed.port, database=parsed.database,
                                query=parsed.query).render_as_string(hide_password=False)


def database_owner(url: str) -> str:
    """``db-<hash>``: the name of the folder, and the owner written in the lock files, of the
    journals of the database ``url`` names."""
    return "db-" + hashlib.sha256(database_identity(url).encode()).hexdigest()[:16]


def journal_settings(app: Flask) -> JournalSettings:
    """Where and how events are journaled."""
    root = Path(app.config["COLLECT_JOURNAL_DIR"] or os.path.join(app.instance_path, "journal"))
    owner = database_owner(app.config["DATABASE_URL"])
    return JournalSettings(root / owner, app.config["COLLECT_JOURNAL_SYNC"], app.config["COLLECT_JOURNAL_MAX_PENDING"],
                           root=root, owner=owner, database=database_identity(app.config["DATABASE_URL"]))


def check_journal(app: Flask) -> None:
    """At start: ``COLLECT_JOURNAL_DIR`` and this database's folder in it must be (or become)
    writable folders; raises ValueError otherwise, instead of failing every events request.
    The folder gets a ``DATABASE`` file naming its database (without the password) for operators."""
    settings = journal_settings(app)
    directory = settings.directory
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)  # the batches hold personal data
    except OSError as exc:
        raise ValueError(f"COLLECT_JOURNAL_DIR {directory} cannot be created: {exc.strerror}") from None
    if not directory.is_dir() or not os.access(directory, os.W_OK | os.X_OK):
        raise ValueError(f"COLLECT_JOURNAL_DIR {directory} is not a folder this process can write to")
    label = directory / "DATABASE"
    if not label.exists():
        label.write_text(settings.database + "\n")


class EventJournal:
    """The app's journal in this process: created with its drainer on first use, after a fork too."""

    def __init__(self, app: Flask, settings: JournalSettings) -> None:
        self.app = app
        self.settings = settings
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._drainer: Drainer | None = None

    @property
    def drainer(self) -> Drainer:
        pid = os.getpid()  # a forked worker (gunicorn) makes its own journal on its first request
        if self._pid != pid:
            with self._lock:
                if self._pid != pid:
                    journal = Journal.create(self.settings.directory, self.settings.sync, owner=self.settings.owner)
                    drainer = Drainer(self.app, journal, self.settings.sync, now=get_clock(self.app).now,
                                      owner=self.settings.owner, legacy=self.settings.root)
                    drainer.start()
                    atexit.register(drainer.stop)
                    self._drainer, self._pid = drainer, pid
        assert self._drainer is not None
        return self._drainer

    def started(self) -> Drainer | None:
        """This process's drainer if it has started (no journal is created by asking)."""
        return self._drainer if self._pid == os.getpid() else None

    def append(self, shop_id: int, received_at: datetime, batch: EventBatch) -> None:
        """Journal one request's batch, or raise ``JournalFull``."""
        drainer = self.drainer
        if drainer.journal.pending >= self.settings.max_pending:
            drainer.wake()
            raise JournalFull(f"{drainer.journal.pending} batches wait for the database")
        try:
            drainer.journal.append(shop_id, received_at, len(batch.events), batch.model_dump_json(exclude_none=True))
        except OSError as exc:
            log.error("journal %s cannot be written: %s", drainer.journal.name, exc.strerror or exc)
            raise JournalFull(f"the journal cannot be written ({exc.strerror or exc})") from None
        drainer.wake()

    def close(self) -> None:
        """Stop this process's drainer (draining what it can) and remove its journal if empty."""
        drainer = self.started()
        if drainer is not None:
            drainer.stop()
            atexit.unregister(drainer.stop)

    def status(self) -> dict[str, Any]:
        """For ``/healthz``: this process's batches waiting, their age, those refused, and the
        drain's last error (all empty before this process journaled anything)."""
        drainer = self.started()
        if drainer is None:
            return {"pending": 0, "oldest_age_seconds": None, "rejected": 0, "last_error": None}
        oldest = drainer.journal.oldest()
        age = (drainer.now() - oldest).total_seconds() if oldest else None
        return {"pending": drainer.journal.pending, "oldest_age_seconds": round(age, 3) if age is not None else None,
                "rejected": drainer.journal.rejected(), "last_error": drainer.last_error}


def event_journal(app: Flask) -> EventJournal:
    """The app's ``EventJournal``."""
    app = getattr(app, "_get_current_object", lambda: app)()  # the app itself, not current_app
    if EXTENSION not in app.extensions:
        app.extensions.setdefault(EXTENSION, EventJournal(app, journal_settings(app)))
    return app.extensions[EXTENSION]
