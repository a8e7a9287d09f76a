"""With ``RATELIMIT_STORAGE_URI=redis://...`` two web processes share one budget.

Runs against a throwaway ``redis-server`` on a free port; skipped where Redis is not installed.
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest
import redis

from tests.hardening.conftest import ORIGIN, assert_json_error, events_body

REDIS = shutil.which("redis-server")
pytestmark = pytest.mark.skipif(REDIS is None, reason="redis-server is not installed")


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    workdir = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen([REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", str(workdir)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(timeout=10)


def test_two_processes_share_the_counters(app_config, make_app, redis_url, shop):
    config = {**app_config, "RATELIMIT_STORAGE_URI": redis_url, "RATELIMIT_COLLECT_PER_IP": "3/hour"}
    first, second = make_app(config), make_app(config)
    with redis.Redis.from_url(redis_url) as store:
        store.flushdb()  # the server outlives one test (both backends use it)
    env = {"REMOTE_ADDR": "203.0.113.50"}
    url = f"/v1/shops/{shop.public_key}/events"
    statuses = [app.test_client().post(url, json=events_body(), headers={"Origin": ORIGIN}, environ_base=env)
                .status_code for app in (first, second, first)]
    assert statuses == [202, 202, 202]
    refused = second.test_client().post(url, json=events_body(), headers={"Origin": ORIGIN}, environ_base=env)
    assert_json_error(refused, 429, "rate_limited")
    assert int(refused.headers["Retry-After"]) >= 1
