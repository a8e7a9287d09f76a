"""RFC 8291 message encryption (aes128gcm), made by ``http_ece`` exactly as pywebpush calls it."""
from __future__ import annotations

import base64
import functools

import http_ece
from cryptography.hazmat.primitives.asymmetric import ec

from server.delivery.push import Message


def _b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


@functools.lru_cache(maxsize=4096)
def receiver_keys(p256dh: str, auth: str) -> tuple[ec.EllipticCurvePublicKey, bytes]:
    """A subscription's static keys, decoded and the point checked once (it is on P-256)."""
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), _b64url_decode(p256dh)), _b64url_decode(auth)


def encrypt(message: Message) -> bytes:
    """The aes128gcm body of ``message`` (RFC 8291), with a fresh ephemeral ECDH key per message.

    The same ``http_ece.encrypt`` call pywebpush's ``WebPusher.encode(data, "aes128gcm")``
    makes (random salt, 4096-byte record, the ephemeral public key as key id), minus that
    class's per-message copy and parse of the subscription's keys: ``receiver_keys`` decodes
    them once per subscription. Only the receiver's static key is reused, never ours.
    """
    receiver, auth_secret = receiver_keys(message.p256dh, message.auth)
    return http_ece.encrypt(message.payload, private_key=ec.generate_private_key(ec.SECP256R1()),
                            dh=receiver, auth_secret=auth_secret, version="aes128gcm")
