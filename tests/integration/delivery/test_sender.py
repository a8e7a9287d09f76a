"""The real sender (libcurl through pycurl) on real sockets: where it connects, what it keeps,
how it stops. The push service is ``tests/fakepush.py`` on this machine's loopback."""
from __future__ import annotations

import json
import socket
import threading

import pytest

from server.delivery.push import Message
from server.delivery.push.outcomes import FAILED, RETRY, SENT
from server.delivery.push.transport import MAX_BODY_KEPT, WebPushSender, _Exchange
from server.delivery.push.vapid import load_keys
from tests.fakepush import FakePushService, Reply

SUBJECT = "mailto:ops@pushcart.test"


@pytest.fixture
def make_sender(vapid_key_file):
    made = []

    def make(**options):
        options.setdefault("allow_loopback", True)
        options.setdefault("read_timeout", 5.0)
        sender = WebPushSender(load_keys(vapid_key_file), SUBJECT, **options)
        made.append(sender)
        return sender

    yield make
    for sender in made:
        sender.close()


def message(service, name="a", push_id=1):
    payload = json.dumps({"push_id": push_id, "kind": "shipped", "title": "T", "body": "B", "url": "u"}).encode()
    return Message(push_id=push_id, endpoint=service.endpoint(name), p256dh=service.p256dh, auth=service.auth,
                   payload=payload, ttl=60)


def send(sender, *messages):
    return sender.start(sender.prepare(list(messages))).result(timeout=30)


def test_a_batch_arrives_in_order_with_one_result_per_message(make_sender, fake):
    fake.script("b", Reply(410))
    results = send(make_sender(), message(fake, "a", 1), message(fake, "b", 2), message(fake, "c", 3))
    assert [(r.outcome, r.http_status) for r in results] == [(SENT, 201), ("gone", 410), (SENT, 201)]
    assert fake.violations == [] and sorted(fake.push_id_counts()) == [1, 3]


def test_loopback_is_refused_at_connect_time_without_the_insecure_flag(make_sender, fake):
    # The endpoint check would refuse this URL earlier; this is the last line: the socket.
    (result,) = send(make_sender(allow_loopback=False), message(fake))
    assert result.outcome == RETRY and result.error == "connection error: could not connect"
    assert fake.requests == []


def test_a_proxy_named_in_the_environment_is_not_used(make_sender, fake, monkeypatch):
    # A listener that would see the request if libcurl went through the proxy.
    proxy = socket.socket()
    proxy.bind(("127.0.0.1", 0))
    proxy.listen(8)
    proxy.settimeout(0.2)
    url = f"http://127.0.0.1:{proxy.getsockname()[1]}"
    for name in ("http_proxy", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    try:
        (result,) = send(make_sender(), message(fake))
        with pytest.raises(TimeoutError):
            proxy.accept()
    finally:
        proxy.close()
    assert result.outcome == SENT and len(fake.requests) == 1


def test_only_the_first_kilobyte_of_an_answer_is_kept(make_sender, fake):
    fake.script("a", Reply(400, body=b"x" * (2 * 1024 * 1024)))
    (result,) = send(make_sender(), message(fake))
    assert result.outcome == FAILED and result.http_status == 400
    assert "x" * 100 in result.error and len(result.error) <= 300
    # What an exchange keeps of the chunks libcurl hands it: up to the first one past the cap.
    exchange = _Exchange({}, allow_loopback=False)
    for _ in range(5):
        exchange._write(b"y" * 1000)
    assert len(b"".join(exchange.body)) == 2000 and MAX_BODY_KEPT < 2000
    exchange.curl.close()


def test_a_batch_answered_by_a_hold_is_let_go(make_sender, fake):
    fake.script("a", Reply(429, {"Retry-After": "120"}))
    sender = make_sender()
    (limited,) = send(sender, message(fake, "a", 1))
    (held,) = send(sender, message(fake, "a", 2))  # never sent: the origin asked us to wait
    assert (limited.outcome, limited.http_status, held.outcome) == (RETRY, 429, "held")
    assert len(fake.requests) == 1
    assert sender._open == set()  # no answered batch is kept by the sender's thread


def test_a_stalled_answer_times_out_after_the_read_timeout(make_sender, fake):
    fake.script("a", Reply(stall=True))
    sender = make_sender(read_timeout=1.0)
    try:
        (result,) = send(sender, message(fake))
    finally:
        fake.release_stalled()
    assert (result.outcome, result.error) == (RETRY, "timeout")


def test_close_fails_the_batches_it_did_not_send(make_sender, fake):
    fake.default = Reply(stall=True)
    sender = make_sender(concurrency=1)
    first = sender.start(sender.prepare([message(fake, "a", 1)]))
    second = sender.start(sender.prepare([message(fake, "b", 2)]))
    closer = threading.Thread(target=sender.close)
    closer.start()
    closer.join(timeout=20)
    fake.release_stalled()
    for future in (first, second):
        with pytest.raises(RuntimeError, match="sender closed"):
            future.result(timeout=5)
    with pytest.raises(RuntimeError, match="sender is closed"):
        sender.start(sender.prepare([message(fake)]))


def test_at_most_concurrency_exchanges_are_open_at_once(make_sender):
    with FakePushService() as slow:
        slow.default = Reply(delay=0.2)
        open_now, most = [0], [0]
        lock = threading.Lock()
        handle = slow._handle

        def counting(handler):
            with lock:
                open_now[0] += 1
                most[0] = max(most[0], open_now[0])
            try:
                handle(handler)
            finally:
                with lock:
                    open_now[0] -= 1

        slow._handle = counting
        results = send(make_sender(concurrency=4), *(message(slow, str(i), i) for i in range(12)))
    assert [r.outcome for r in results] == [SENT] * 12
    assert most[0] == 4
