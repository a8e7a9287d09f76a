"""The endpoint policy: only https push services on public addresses receive Pushcart's requests."""
from __future__ import annotations

import socket

import pytest

from server.config import DEFAULT_PUSH_ENDPOINT_ALLOW
from server.delivery import endpoints
from server.delivery.endpoints import check_endpoint, host_allowed
from server.errors import Invalid

CONFIG = {"PUSH_ENDPOINT_ALLOW": DEFAULT_PUSH_ENDPOINT_ALLOW, "PUSHCART_INSECURE_ENDPOINTS": False}
INSECURE = {**CONFIG, "PUSHCART_INSECURE_ENDPOINTS": True}


def dns(*addresses: str):
    """A stand-in for DNS answering ``addresses`` for every host."""
    return lambda host, port: list(addresses)


@pytest.mark.parametrize("url", [
    "https://fcm.googleapis.com/fcm/send/abc:def",
    "https://updates.push.services.mozilla.com/wpush/v2/gAAAA",
    "https://web.push.apple.com/QGx3",
    "https://wns2-par02p.notify.windows.com/w/?token=BQYAAA",
    "https://fcm.googleapis.com:443/fcm/send/x",
])
def test_known_push_services_on_public_addresses_are_accepted(url):
    assert check_endpoint(url, CONFIG, resolve=dns("142.250.74.10", "2a00:1450:4001:80b::200a")) == url


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
        check_endpoint(url, CONFIG, resolve=dns("142.250.74.10"))
    assert caught.value.code == code
    assert caught.value.status == 422


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "192.168.0.10", "172.16.5.4", "169.254.169.254",
                                     "100.64.0.1", "0.0.0.0", "::1", "fd00::1", "fe80::1%eth0",
                                     "::ffff:10.0.0.1", "224.0.0.1"])
def test_an_allowed_host_resolving_to_a_private_address_is_refused(address):
    with pytest.raises(Invalid) as caught:
        check_endpoint("https://fcm.googleapis.com/fcm/send/x", CONFIG, resolve=dns("142.250.74.10", address))
    assert caught.value.code == "endpoint_private"


def test_an_unresolvable_host_is_refused():
    def no_answer(host, port):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(Invalid) as caught:
        check_endpoint("https://fcm.googleapis.com/fcm/send/x", CONFIG, resolve=no_answer)
    assert caught.value.code == "endpoint_unresolvable"


def test_the_system_resolver_is_used_by_default(monkeypatch):
    asked = []

    def fake_getaddrinfo(host, port, *args, **kwargs):
        asked.append((host, port))
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port))]

    monkeypatch.setattr(endpoints.socket, "getaddrinfo", fake_getaddrinfo)
    with pytest.raises(Invalid):
        check_endpoint("https://fcm.googleapis.com/fcm/send/x", CONFIG)
    assert asked == [("fcm.googleapis.com", 443)]
    # resolve=False checks syntax and host only (no DNS at all).
    assert check_endpoint("https://fcm.googleapis.com/fcm/send/x", CONFIG, resolve=False)
    assert len(asked) == 1


@pytest.mark.parametrize("url", ["http://127.0.0.1:8090/notify/abc", "http://localhost:41234/notify/abc",
                                 "https://localhost:9443/x"])
def test_insecure_flag_alone_opens_local_mock_push_services(url):
    assert check_endpoint(url, INSECURE, resolve=dns("203.0.113.1")) == url
    with pytest.raises(Invalid):
        check_endpoint(url, CONFIG, resolve=dns("203.0.113.1"))


@pytest.mark.parametrize("url", ["http://10.0.0.5:8080/x", "http://127.0.0.2/x", "http://[::1]:8080/x",
                                 "http://localhost.evil.example/x", "http://fcm.googleapis.com/x"])
def test_insecure_flag_opens_nothing_but_loopback_names(url):
    with pytest.raises(Invalid):
        check_endpoint(url, INSECURE, resolve=dns("142.250.74.10"))


def test_host_patterns():
    assert host_allowed("a.b.example", ["*.b.example"])
    assert host_allowed("FCM.googleapis.com.", ["fcm.googleapis.com"])
    assert not host_allowed("b.example", ["*.b.example"])
    assert not host_allowed("ab.example", ["*.b.example"])
    assert not host_allowed("anything.example", [])
