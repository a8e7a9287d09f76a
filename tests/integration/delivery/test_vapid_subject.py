"""A missing VAPID subject stops every sending process at its start with one clear line.

Run as an operator runs them: real ``flask --app wsgi ...`` processes with the subject unset.
An https ``PUBLIC_URL`` is a valid contact (RFC 8292 §2.1) and stands in for it.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from server import create_app
from server.core.db import get_db
from tests.factories import cli_env

ROOT = Path(__file__).resolve().parents[3]


def env_without_subject(app, **extra: str) -> dict[str, str]:
    env = cli_env(app, **extra)
    env.pop("VAPID_SUBJECT", None)
    return env


def flask(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("command", [["dispatch", "--once"], ["worker"]])
def test_a_sending_command_without_a_subject_stops_with_one_clear_line(app, command):
    done = flask(env_without_subject(app), *command, timeout=30)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "VAPID_SUBJECT" in lines[0] and "mailto:" in lines[0]  # what to set, and an example
    assert done.stdout == ""


def test_an_https_public_url_stands_in_for_the_subject(app):
    done = flask(env_without_subject(app, PUBLIC_URL="https://push.shop.example"), "dispatch", "--once")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"planned": 0, "sent": 0, "failed": 0, "expired": 0, "skipped": 0}


def test_a_subject_that_is_no_contact_url_is_refused(app):
    done = flask(cli_env(app, VAPID_SUBJECT="ops@shop.example"), "dispatch", "--once")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "mailto:" in done.stderr


def test_a_ca_bundle_that_is_no_file_stops_the_command_with_one_line(app, tmp_path):
    done = flask(cli_env(app, SSL_CERT_FILE=str(tmp_path / "missing.pem")), "dispatch", "--once")
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "SSL_CERT_FILE" in lines[0] and "missing.pem" in lines[0], done.stderr
    assert done.stdout == ""


def test_the_worker_starts_with_a_subject(app, tmp_path):
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        worker = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "worker"], cwd=ROOT,
                                  env=cli_env(app), stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while b"worker started" not in log_path.read_bytes():
            assert worker.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.05)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()


def test_healthz_shows_why_nothing_can_be_sent(app_config, make_app):
    app_config.update(VAPID_SUBJECT=None, PUBLIC_URL="http://127.0.0.1:5000", RUN_SCHEDULER=True)
    served = make_app(app_config)  # the web process with a scheduler: it must not start one
    assert "pushcart.scheduler" not in served.extensions
    body = served.test_client().get("/healthz").get_json()
    assert body["status"] == "degraded"
    assert body["delivery"]["vapid_subject"] is None
    assert "VAPID_SUBJECT" in body["delivery"]["problem"]


def test_healthz_reports_no_problem_with_a_subject(client):
    body = client.get("/healthz").get_json()
    assert body["delivery"] == {"vapid_subject": "mailto:ops@pushcart.test", "problem": None}
    assert body["status"] == "ok"


def test_the_app_config_falls_back_to_an_https_public_url(app_config):
    app_config.update(VAPID_SUBJECT=None, PUBLIC_URL="https://push.shop.example/")
    fallback = create_app(app_config)
    try:
        assert fallback.config["VAPID_SUBJECT"] == "https://push.shop.example"
    finally:
        get_db(fallback).dispose()
