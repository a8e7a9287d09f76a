"""Support for the browser tests: the app on a real port, headless Chromium, and a DevTools client.

- ``LiveServer``: the Flask app under werkzeug's threaded server on 127.0.0.1 and a free port.
- ``start_chromium``: Debian's chromium + chromedriver through Selenium, with a fresh profile;
  the test is skipped (not failed) when either is absent.
- ``DevTools``: a second DevTools connection to the page (Chrome accepts several). Selenium's
  ``execute_cdp_cmd`` returns command results but no events, and the service-worker
  registration id that ``ServiceWorker.deliverPushMessage`` needs arrives only as an event
  (``ServiceWorker.workerRegistrationUpdated``).
"""
from __future__ import annotations

import itertools
import json
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
import websocket
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from flask import Flask
from werkzeug.serving import make_server

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_ARGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--disable-quic", "--window-size=1280,860",
                 "--disable-features=NativeNotifications,SystemNotifications")


class LiveServer:
    """The app served on a free port of 127.0.0.1 by werkzeug's threaded server."""

    def __init__(self, app: Flask) -> None:
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.base = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> LiveServer:
        """Start serving in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def chromium_present() -> bool:
    """Whether Debian's chromium and chromedriver are installed."""
    return all(shutil.which(p) or Path(p).exists() for p in (CHROMIUM, CHROMEDRIVER))


def start_chromium(profile_dir: Path, language: str | None = None) -> Any:
    """A headless Chromium with a fresh profile (skips the test when Chromium is missing), in
    ``language`` (e.g. ``de-DE``: ``navigator.language`` and Accept-Language) when given."""
    if not chromium_present():
        pytest.skip("chromium/chromedriver not installed (make test installs them as root)")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for arg in CHROMIUM_ARGS:
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={profile_dir}")
    if language:
        options.add_argument(f"--lang={language}")
        options.add_experimental_option("prefs", {"intl.accept_languages": f"{language},{language.split('-')[0]}"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_script_timeout(20)
    driver.set_page_load_timeout(30)
    return driver


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05,
             message: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout`` seconds.

    An element that vanished or went stale counts as "not yet": a form post reloads the page
    between two polls.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except (StaleElementReferenceException, NoSuchElementException):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


class DevTools:
    """A DevTools (CDP) connection to the driver's current page, keeping the events it receives.

    A reader thread drains the socket all the time: Chrome stalls a service worker's push
    handling while the DevTools client that enabled the ServiceWorker domain leaves messages unread.
    """

    def __init__(self, driver: Any, target_type: str = "page", url_prefix: str = "") -> None:
        def target() -> dict[str, Any] | None:
            address = driver.capabilities["goog:chromeOptions"]["debuggerAddress"]
            http = requests.Session()
            http.trust_env = False
            targets = http.get(f"http://{address}/json/list", timeout=10).json()
            http.close()
            return next((t for t in targets if t.get("type") == target_type
                         and t.get("url", "").startswith(url_prefix)), None)

        found = wait_for(target, message=f"a DevTools target {target_type} {url_prefix}")
        # No Origin header: Chrome refuses DevTools websockets from web origins it was not told about.
        self._ws = websocket.create_connection(found["webSocketDebuggerUrl"], timeout=None, suppress_origin=True,
                                                enable_multithread=True)
        self._ids = itertools.count(1)
        self._lock = threading.Condition()
        self._results: dict[int, dict[str, Any]] = {}
        self._closed = False
        self.events: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                message = json.loads(self._ws.recv())
            except (websocket.WebSocketException, OSError, ValueError):
                with self._lock:
                    self._closed = True
                    self._lock.notify_all()
                return
            with self._lock:
                if "id" in message:
                    self._results[message["id"]] = message
                elif "method" in message:
                    self.events.append(message)
                self._lock.notify_all()

    def send(self, method: str, params: dict[str, Any] | None = None, timeout: float = 10.0) -> dict[str, Any]:
        """Run one command and return its result."""
        call_id = next(self._ids)
        self._ws.send(json.dumps({"id": call_id, "method": method, "params": params or {}}))
        with self._lock:
            if not self._lock.wait_for(lambda: call_id in self._results or self._closed, timeout):
                pytest.fail(f"DevTools {method}: no answer within {timeout}s")
            message = self._results.pop(call_id, None)
        if message is None:
            pytest.fail(f"DevTools {method}: the connection closed")
        if "error" in message:
            raise RuntimeError(f"{method}: {message['error']}")
        return message.get("result", {})

    def wait_event(self, method: str, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0) -> dict[str, Any]:
        """The first event ``method`` whose params satisfy ``predicate`` (received before or within ``timeout``)."""
        def find() -> dict[str, Any] | None:
            for event in self.events:
                if event["method"] == method and predicate(event.get("params", {})):
                    return event.get("params", {})
            return None

        with self._lock:
            if not self._lock.wait_for(lambda: find() is not None, timeout):
                pytest.fail(f"no DevTools event {method} within {timeout}s")
            return find() or {}

    def evaluate(self, expression: str) -> Any:
        """Evaluate ``expression`` in the target (awaiting a promise) and return its JSON value."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"evaluate failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def close(self) -> None:
        """Close the connection (the browser stays up)."""
        self._ws.close()
        self._reader.join(timeout=5)
