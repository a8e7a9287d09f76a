"""The delivery engine's small parts: payload caps, response classes, Retry-After, VAPID cache."""
from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone

import click
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from py_vapid import Vapid02

from server.delivery.commands import parse_at
from server.delivery.dispatcher import safe_topic
from server.delivery.payload import MAX_PLAINTEXT_BYTES, build_payload, truncate_utf8
from server.delivery.push.outcomes import FAILED, GONE, RETRY, SENT, classify, parse_retry_after
from server.delivery.push.transport import origin_of
from server.delivery.push.vapid import VapidCache


def claims_of(header: str) -> dict:
    token = header.split("t=", 1)[1].split(",", 1)[0]
    middle = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(middle + "=" * (-len(middle) % 4)))


def test_truncation_counts_utf8_bytes_and_never_splits_a_character():
    text = "é" * 10  # 20 bytes
    cut = truncate_utf8(text, 9)
    assert cut.endswith("…") and len(cut.encode()) <= 9
    assert truncate_utf8("short", 9) == "short"


@settings(max_examples=60, deadline=None)
@given(title=st.text(max_size=3000), body=st.text(max_size=6000),
       icon=st.one_of(st.none(), st.text(max_size=1500)), image=st.one_of(st.none(), st.text(max_size=1500)))
def test_any_texts_give_a_payload_under_the_cap(title, body, icon, image):
    raw = build_payload(push_id=123456789, kind="browse_abandonment", title=title, body=body,
                        url="https://push.example/c/75bcd15.AAAAAAAAAAAAAAAAAAAAAA", icon=icon, image=image,
                        tag="browse-1")
    assert len(raw) <= MAX_PLAINTEXT_BYTES
    payload = json.loads(raw.decode("utf-8"))
    assert payload["push_id"] == 123456789 and payload["url"].startswith("https://push.example/c/")
    assert set(payload) <= {"push_id", "kind", "title", "body", "icon", "image", "url", "tag"}


def test_short_payload_keeps_every_field():
    payload = json.loads(build_payload(push_id=1, kind="shipped", title="T", body="B", url="u",
                                       icon="i", image="m", tag="t"))
    assert payload == {"push_id": 1, "kind": "shipped", "title": "T", "body": "B", "url": "u",
                       "icon": "i", "image": "m", "tag": "t"}


@pytest.mark.parametrize(("status", "outcome"), [
    (201, SENT), (202, SENT), (404, GONE), (410, GONE), (413, FAILED), (429, RETRY), (500, RETRY),
    (503, RETRY), (301, FAILED), (307, FAILED), (400, FAILED), (401, FAILED), (403, FAILED), (418, FAILED)])
def test_each_status_has_its_outcome(status, outcome):
    assert classify(status, None, b"", 0.0).outcome == outcome


def test_retry_after_in_seconds_or_as_an_http_date():
    assert parse_retry_after("120", 0.0) == 120.0
    now = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)
    assert parse_retry_after("Mon, 05 Jan 2026 12:10:00 GMT", now.timestamp()) == 600.0
    assert parse_retry_after("Mon, 05 Jan 2026 11:00:00 GMT", now.timestamp()) == 0.0
    assert parse_retry_after("soon", 0.0) is None and parse_retry_after(None, 0.0) is None
    assert classify(429, "30", b"", 0.0).retry_after == 30.0


def test_vapid_jwt_is_cached_per_origin_and_renewed_before_it_expires():
    vapid = Vapid02()
    vapid.generate_keys()
    wall = [1_800_000_000.0]
    cache = VapidCache(vapid, "mailto:ops@pushcart.test", time_source=lambda: wall[0])
    first = cache.header("https://fcm.googleapis.com")
    assert cache.header("https://fcm.googleapis.com") == first
    other = cache.header("https://updates.push.services.mozilla.com")
    assert cache.signed == 2
    claims = claims_of(first)
    assert claims["aud"] == "https://fcm.googleapis.com" and claims_of(other)["aud"].endswith("mozilla.com")
    assert claims["sub"] == "mailto:ops@pushcart.test"
    assert 0 < claims["exp"] - wall[0] <= 24 * 3600
    assert Vapid02.verify(first)
    wall[0] += 10 * 3600  # two hours before expiry: still reused
    assert cache.header("https://fcm.googleapis.com") == first and cache.signed == 2
    wall[0] += 1.5 * 3600  # within the last hour: signed again
    renewed = cache.header("https://fcm.googleapis.com")
    assert renewed != first and claims_of(renewed)["exp"] > claims["exp"] and cache.signed == 3


def test_vapid_jwt_is_cached_per_key_and_origin():
    instance, shop_key = Vapid02(), Vapid02()
    instance.generate_keys()
    shop_key.generate_keys()
    cache = VapidCache(instance, "mailto:ops@pushcart.test")
    origin = "https://fcm.googleapis.com"
    by_instance, by_shop = cache.header(origin), cache.header(origin, shop_key)
    assert cache.header(origin, shop_key) == by_shop and cache.header(origin) == by_instance
    assert cache.signed == 2
    assert by_instance.split("k=")[1] != by_shop.split("k=")[1]  # each names (and is signed by) its key
    assert Vapid02.verify(by_shop)


def test_origin_is_scheme_host_and_port():
    assert origin_of("https://fcm.googleapis.com/fcm/send/abc") == "https://fcm.googleapis.com"
    assert origin_of("http://localhost:8090/notify/x") == "http://localhost:8090"


def test_topic_is_made_header_safe():
    assert safe_topic("checkout-abc_1") == "checkout-abc_1"
    unsafe = safe_topic("checkout:tok/with spaces and more than thirty-two characters")
    assert len(unsafe) == 32 and unsafe.isalnum()
    assert safe_topic(None) is None


def test_at_needs_z_or_an_offset():
    assert parse_at("2026-03-01T09:30:00Z") == datetime(2026, 3, 1, 9, 30, tzinfo=timezone.utc)
    assert parse_at("2026-03-01T11:30:00+02:00") == datetime(2026, 3, 1, 9, 30, tzinfo=timezone.utc)
    for bad in ("2026-03-01T09:30:00", "2026-03-01", "tomorrow", "2026-13-01T00:00:00Z"):
        with pytest.raises(click.BadParameter):
            parse_at(bad)
    assert parse_at("2026-03-01T09:30:00.5-05:00") - parse_at("2026-03-01T14:30:00Z") == timedelta(seconds=0.5)


def _receiver():
    """A browser's subscription keys: a P-256 key pair and a 16-byte auth secret."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key().public_bytes(serialization.Encoding.X962,
                                               serialization.PublicFormat.UncompressedPoint)
    auth = b"0123456789abcdef"
    b64 = lambda raw: base64.urlsafe_b64encode(raw).decode().rstrip("=")  # noqa: E731
    return private, auth, b64(public), b64(auth)


def test_encrypt_makes_what_pywebpush_makes_and_a_fresh_key_and_salt_each_time():
    """The sender calls http_ece as pywebpush's encoder does: same header layout, same plaintext back."""
    import http_ece
    from pywebpush import WebPusher

    from server.delivery.push import Message
    from server.delivery.push.crypto import encrypt

    private, auth, p256dh, auth_b64 = _receiver()
    payload = json.dumps({"push_id": 7, "title": "Still there?"}).encode()
    message = Message(push_id=7, endpoint="https://fcm.googleapis.com/fcm/send/x", p256dh=p256dh,
                      auth=auth_b64, payload=payload, ttl=60)
    ours, again = encrypt(message), encrypt(message)
    theirs = WebPusher({"endpoint": message.endpoint, "keys": {"p256dh": p256dh, "auth": auth_b64}}).encode(
        payload, "aes128gcm")["body"]
    for body in (ours, again, theirs):
        assert http_ece.decrypt(body, private_key=private, auth_secret=auth, version="aes128gcm") == payload
    # RFC 8188 header: salt (16), record size (4), key id length (1), key id (the sender's 65-byte key).
    def header(body):
        return body[:16], int.from_bytes(body[16:20], "big"), body[20], body[21:21 + body[20]]
    (salt1, rs1, idlen1, key1), (salt2, _, _, key2), (_, rs3, idlen3, _) = header(ours), header(again), header(theirs)
    assert (rs1, idlen1) == (rs3, idlen3) == (4096, 65)
    assert len(ours) == len(theirs)
    assert salt1 != salt2 and key1 != key2  # never reused between messages
