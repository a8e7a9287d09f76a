"""gunicorn settings for Pushcart's web processes: ``gunicorn -c gunicorn.conf.py wsgi:app``.

Several sync workers (about one per core) serve the web; ``RUN_SCHEDULER`` stays off and
``flask --app wsgi worker`` sends. Each worker keeps its own events journal. ``/metrics`` must
tell the whole service's counts whichever worker answers: prometheus_client's multiprocess mode
keeps every worker's counters in files under ``PROMETHEUS_MULTIPROC_DIR`` (set here, emptied at
each start) and sums them at scrape time; a worker that exits is marked dead there.
"""
import multiprocessing
import os
import shutil
from pathlib import Path

bind = os.environ.get("PUSHCART_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("PUSHCART_WEB_WORKERS", multiprocessing.cpu_count()))
worker_class = "sync"

_metrics_dir = Path(os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR", str(Path(__file__).resolve().parent / "instance" / "metrics")))


def on_starting(server):
    """A fresh metrics folder: counts of an earlier run must not be added to this one's."""
    shutil.rmtree(_metrics_dir, ignore_errors=True)
    _metrics_dir.mkdir(parents=True, mode=0o700)


def child_exit(server, worker):
    """A worker that exits keeps its counts (they happened) but no live gauges."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
