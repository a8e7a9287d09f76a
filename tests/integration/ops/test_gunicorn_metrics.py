"""``/metrics`` behind several gunicorn workers tells the whole service's counts.

A real gunicorn with ``gunicorn.conf.py`` and two sync workers: events go to whichever worker
accepts the connection, and every scrape, whichever worker answers it, counts them all.
"""
from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.factories import cli_env, make_shop
from tests.pushservice import free_port

ROOT = Path(__file__).resolve().parents[3]
ORIGIN = "https://shop.example"
pytestmark = pytest.mark.slow


def accepted_total(text: str) -> float:
    found = re.search(r"^pushcart_events_accepted_total (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def test_every_scrape_counts_the_events_of_every_worker(app, session, clock, tmp_path):
    shop = make_shop(session, clock.now(), origins=[ORIGIN]).shop
    session.commit()
    port = free_port()
    env = cli_env(app, PUSHCART_BIND=f"127.0.0.1:{port}", PUSHCART_WEB_WORKERS="2",
                  PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
                  PUSHCART_COLLECT_JOURNAL_DIR=str(tmp_path / "journal"), RATELIMIT_ENABLED="0")
    with open(tmp_path / "gunicorn.log", "wb") as log:
        server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
                                  cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "gunicorn.log").read_text()
            time.sleep(0.1)
        for n in range(40):  # a new connection each: the workers take turns as the kernel gives them
            body = {"visitor_id": f"visitor_{n:04d}", "events": [{"type": "page_view", "id": f"m{n}"}]}
            answer = requests.post(f"{base}/v1/shops/{shop.public_key}/events", json=body, timeout=5,
                                   headers={"Origin": ORIGIN, "Connection": "close"})
            assert answer.status_code == 202
        for _ in range(8):
            scrape = requests.get(f"{base}/metrics", timeout=5, headers={"Connection": "close"})
            assert scrape.status_code == 200
            assert accepted_total(scrape.text) == 40, scrape.text[:2000]
    finally:
        server.terminate()
        assert server.wait(timeout=30) == 0
    assert len(list((tmp_path / "metrics").glob("*.db"))) >= 2, "both workers counted into the shared folder"
