"""The endpoint policy: only https push services on public addresses receive Pushcart's requests.

The URL and its host are checked when a browser subscribes and again at send time; the
address libcurl is about to connect to is checked by the sender (``may_connect``); the
wiring of that check is tested against a real socket in tests/integration/delivery/test_sender.py.
"""
from __future__ import annotations

import socket

import pytest

from server.core.config import DEFAULT_PUSH_ENDPOINT_ALLOW
from server.delivery.endpoints import check_endpoint, host_allowed, public_address
from server.delivery.push.transport import may_connect
from server.core.errors import Invalid

CONFIG = {"PUSH_ENDPOINT_ALLOW": DEFAULT_PUSH_ENDPOINT_ALLOW, "PUSHCART_INSECURE_ENDPOINTS": False}
INSECURE = {**CONFIG, "PUSHCART_INSECURE_ENDPOINTS": True}


@pytest.mark.parametrize("url", [
    "https://fcm.googleapis.com/fcm/send/abc:def",
    "https://updates.push.services.mozilla.com/wpush/v2/gAAAA",
    "https://web.push.apple.com/QGx3",
    "https://wns2-par02p.notify.windows.com/w/?token=BQYAAA",
    "https://fcm.googleapis.com:443/fcm/send/x",
])
def test_known_push_services_on_public_addresses_are_accepted(url):
    assert check_endpoint(url, CONFIG) == url


@pytest.mark.parametrize("url, code", [
    ("http://fcm.googleapis.com/fcm/send/x", "invalid_endpoint"),
    ("https://fcm.googleapis.com:8443/fcm/send/x", "invalid_endpoint"),
    ("https://user:pw@fcm.googleapis.com/x", "invalid_endpoint"),
    ("ftp://fcm.googleapis.com/x", "invalid_endpoint"),
    ("https://evil.example/fcm/send/x", "endpoint_not_allowed"),
    ("https://fcm.googleapis.com.evil.example/x", "endpoint_not_allowed"),
    ("https://evilgoogleapis.com/x", "endpoint_not_allowed"),
    ("https://googleapis.com/x", "endpoint_not_allowed"),
    ("https://127.0.0.1/x", "endpoint_not_allowed"),
    ("https://localhost/x", "endpoint_not_allowed"),
    ("http://localhost:9000/notify/x", "invalid_endpoint"),
    ("https://fcm.googleapis.com/x y", "invalid_endpoint"),
    ("https://[::1/x", "invalid_endpoint"),
    ("/relative/path", "invalid_endpoint"),
    ("", "invalid_endpoint"),
    ("https://fcm.googleapis.com/" + "a" * 3000, "invalid_endpoint"),
    (42, "invalid_endpoint"),
])
def test_non_https_or_unlisted_endpoints_are_refused(url, code):
    with pytest.raises(Invalid) as caught:
        check_endpoint(url, CONFIG)
    assert caught.value.code == code
    assert caught.value.status == 422


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "192.168.0.10", "172.16.5.4", "169.254.169.254",
                                     "100.64.0.1", "0.0.0.0", "::1", "fd00::1", "fe80::1%eth0",
                                     "::ffff:10.0.0.1", "224.0.0.1", "ff02::1", "not an address"])
def test_a_private_or_reserved_address_is_never_connected_to(address):
    assert not public_address(address)
    assert not may_connect("fcm.googleapis.com", address)
    assert not may_connect("fcm.googleapis.com", address, allow_loopback=True)


@pytest.mark.parametrize("address", ["142.250.74.10", "2a00:1450:4001:80b::200a", "::ffff:142.250.74.10"])
def test_a_public_address_is_connected_to(address):
    assert may_connect("fcm.googleapis.com", address)


def test_loopback_is_connected_to_only_by_name_and_only_in_the_insecure_mode():
    assert may_connect("localhost", "127.0.0.1", allow_loopback=True)
    assert may_connect("127.0.0.1", "127.0.0.1", allow_loopback=True)
    assert not may_connect("localhost", "127.0.0.1")
    # The flag opens loopback names, not any name that answers loopback.
    assert not may_connect("fcm.googleapis.com", "127.0.0.1", allow_loopback=True)


def test_an_allowed_host_is_accepted_without_a_lookup(monkeypatch):
    # A DNS hiccup when a browser subscribes must not lose the subscriber: no lookup at all.
    def no_dns(*args, **kwargs):
        raise AssertionError("check_endpoint must not resolve")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    assert check_endpoint("https://fcm.googleapis.com/fcm/send/x", CONFIG)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8090/notify/abc", "http://localhost:41234/notify/abc"])
def test_insecure_flag_alone_opens_local_mock_push_services(url):
    assert check_endpoint(url, INSECURE) == url
    with pytest.raises(Invalid):
        check_endpoint(url, CONFIG)


@pytest.mark.parametrize("url", ["http://10.0.0.5:8080/x", "http://127.0.0.2/x", "http://[::1]:8080/x",
                                 "http://localhost.evil.example/x", "http://fcm.googleapis.com/x",
                                 # what the contract's test mode names: http on a port, nothing else
                                 "https://127.0.0.1/x", "https://127.0.0.1:443/x", "https://localhost:9443/x",
                                 "http://127.0.0.1/x", "http://localhost/x"])
def test_insecure_flag_opens_nothing_but_http_loopback_ports(url):
    with pytest.raises(Invalid):
        check_endpoint(url, INSECURE)


def test_host_patterns():
    assert host_allowed("a.b.example", ["*.b.example"])
    assert host_allowed("FCM.googleapis.com.", ["fcm.googleapis.com"])
    assert not host_allowed("b.example", ["*.b.example"])
    assert not host_allowed("ab.example", ["*.b.example"])
    assert not host_allowed("anything.example", [])
