"""pytest fixtures for ``web-push-testing`` (npm), an independent mock push service.

It decrypts aes128gcm and verifies the VAPID signature, so a push it accepts is one a browser's
push service would accept. The server runs once per test process on a free port; tests get a
``WebPushTesting`` client to subscribe, read the notifications it decrypted and expire
subscriptions (later sends then get 410).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
SERVER_JS = ROOT / "node_modules" / "web-push-testing" / "src" / "bin" / "server.js"


def free_port() -> int:
    """A TCP port nobody listens on right now (bind to port 0, read it, release it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class WebPushTesting:
    """A client of a running ``web-push-testing`` server."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.base = f"http://localhost:{port}"
        self._http = requests.Session()
        self._http.trust_env = False

    def _post(self, path: str, body: dict[str, Any] | None = None) -> requests.Response:
        return self._http.post(self.base + path, json=body or {}, timeout=10)

    def ready(self) -> bool:
        """Whether the server answers ``POST /status``."""
        try:
            return self._post("/status").status_code == 200
        except requests.RequestException:
            return False

    def subscribe(self, application_server_key: str) -> dict[str, Any]:
        """A new subscription: ``{"endpoint", "keys": {"p256dh", "auth"}, "clientHash"}``."""
        response = self._post("/subscribe", {"applicationServerKey": application_server_key,
                                             "userVisibleOnly": "true"})
        response.raise_for_status()
        return response.json()["data"]

    def notifications(self, client_hash: str) -> list[Any]:
        """The payloads the server received and decrypted for this subscription (JSON parsed), so far."""
        response = self._post("/get-notifications", {"clientHash": client_hash})
        response.raise_for_status()
        return [json.loads(m) if isinstance(m, str) else m for m in response.json()["data"]["messages"]]

    def expire(self, client_hash: str) -> None:
        """Make later pushes to this subscription answer 410."""
        self._post(f"/expire-subscription/{client_hash}").raise_for_status()

    def close(self) -> None:
        """Close the HTTP session."""
        self._http.close()


@pytest.fixture(scope="session")
def web_push_testing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebPushTesting]:
    """A ``web-push-testing`` server for this test process (skips when node or the package is missing)."""
    node = shutil.which("node")
    if node is None or not SERVER_JS.exists():
        pytest.skip("node or node_modules/web-push-testing missing: run `make node-deps`")
    port = free_port()
    log_path = tmp_path_factory.mktemp("web-push-testing") / "server.log"
    with open(log_path, "wb") as log:  # it prints a stack trace per refused token: keep it out of the way
        process = subprocess.Popen([node, str(SERVER_JS), str(port)], stdout=log, stderr=subprocess.STDOUT,
                                   cwd=ROOT, env={**os.environ, "NO_PROXY": "*"})
    client = WebPushTesting(port)
    try:
        deadline = time.monotonic() + 20
        while not client.ready():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"web-push-testing did not start: {log_path.read_text()[-2000:]}")
            time.sleep(0.05)
        yield client
    finally:
        client.close()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
