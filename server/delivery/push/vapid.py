"""VAPID (RFC 8292): the instance's key pair (P-256, a PEM file under ``instance/``), the ``sub``
contact, and the signed ``Authorization`` headers, one per (key, push-service origin) (py-vapid).

Shops may have keys of their own (``server.core.vapid_keys``): a push is signed with the key its
subscription was made with (``Message.vapid``; None: the instance key)."""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from flask import Flask, current_app
from py_vapid import Vapid02

from server.core.vapid_keys import b64url, public_b64

log = logging.getLogger(__name__)
EXTENSION = "pushcart.vapid"


__all__ = ["b64url", "init_keys", "load_keys", "public_key_b64", "vapid_from_pem", "get_vapid", "VapidCache"]


def init_keys(path: str | os.PathLike[str]) -> bool:
    """Create the key pair at ``path`` (mode 0600) unless it exists; return True if created."""
    target = Path(path)
    if target.exists():
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    vapid = Vapid02()
    vapid.generate_keys()
    tmp = target.with_suffix(".tmp")
    vapid.save_key(str(tmp))
    os.chmod(tmp, 0o600)
    os.replace(tmp, target)  # atomic: two racing `vapid init` never leave a half-written key
    log.info("generated a VAPID key pair")
    return True


def load_keys(path: str | os.PathLike[str]) -> Vapid02:
    """Load the key pair; raises FileNotFoundError with a hint when it is missing."""
    if not Path(path).exists():
        raise FileNotFoundError(f"no VAPID key at {path}: run `flask --app wsgi vapid init`")
    return Vapid02.from_file(str(path))


def public_key_b64(vapid: Vapid02) -> str:
    """The public key as the browser's ``applicationServerKey``: base64url of the 65-byte point."""
    return public_b64(vapid.public_key)


def vapid_from_pem(pem: str) -> Vapid02:
    """A shop key's pair (``VapidKey.private_key_pem``) as py-vapid signs with it."""
    return Vapid02.from_pem(pem.encode("ascii"))


def get_vapid(app: Flask | None = None) -> Vapid02:
    """The app's key pair, loaded once and cached on ``app.extensions``."""
    app = app or current_app
    vapid = app.extensions.get(EXTENSION)
    if vapid is None:
        vapid = load_keys(app.config["VAPID_PRIVATE_KEY_FILE"])
        app.extensions[EXTENSION] = vapid
    return vapid


SUBJECT_HELP = "set VAPID_SUBJECT to a contact push services can reach, e.g. VAPID_SUBJECT=mailto:ops@yourshop.example"


def subject_problem(subject: str | None) -> str | None:
    """Why pushes cannot be sent with this VAPID ``sub`` (one line: what to set, an example), or None."""
    if not subject:
        return f"VAPID_SUBJECT is not set (and PUBLIC_URL is not https): {SUBJECT_HELP}"
    if not subject.startswith(("mailto:", "https:")):
        return f"VAPID_SUBJECT must be a mailto: or https: URL, not {subject[:80]!r}: {SUBJECT_HELP}"
    return None


def check_subject(subject: str | None) -> str | None:
    """Return a warning for a VAPID ``sub`` that push services may refuse, or None."""
    problem = subject_problem(subject)
    if problem:
        return problem
    assert subject is not None
    if "localhost" in subject or subject.endswith(".local"):
        return "VAPID_SUBJECT points at localhost: Apple's push service rejects it"
    return None


VAPID_LIFETIME = 12 * 3600  # RFC 8292 allows 24 h; half leaves room for clock skew


VAPID_RENEW_BEFORE = 3600  # re-sign an hour before expiry, so no request carries a stale JWT


class VapidCache:
    """VAPID ``Authorization`` headers, one per (key, push-service origin), reused until near expiry.

    Each origin gets a fresh claims dict (py-vapid and pywebpush mutate the dict they are
    given); ``exp`` is wall-clock time because the push service checks it against its clock.
    """

    def __init__(self, vapid: Vapid02, subject: str, *, lifetime: int = VAPID_LIFETIME,
                 renew_before: int = VAPID_RENEW_BEFORE, time_source: Callable[[], float] = time.time) -> None:
        if not subject:
            raise ValueError("VAPID_SUBJECT is required to send pushes")
        self._vapid = vapid
        self._subject = subject
        self._lifetime = lifetime
        self._renew_before = renew_before
        self._time = time_source
        # (id of the key, origin) -> (the key, header, exp); the key is kept so its id is not reused
        self._headers: dict[tuple[int, str], tuple[Vapid02, str, float]] = {}
        self._lock = threading.Lock()
        self.signed = 0  # how many JWTs were signed (the tests check it stays small)

    def header(self, origin: str, vapid: Vapid02 | None = None) -> str:
        """The ``Authorization: vapid t=...,k=...`` value for ``origin``, signed with ``vapid``
        (a shop's key) or the instance key."""
        now = self._time()
        key = vapid or self._vapid
        slot = (id(key), origin)
        with self._lock:
            cached = self._headers.get(slot)
            if cached is not None and cached[0] is key and cached[2] - self._renew_before > now:
                return cached[1]
            exp = int(now) + self._lifetime
            claims = {"aud": origin, "sub": self._subject, "exp": exp}
            value = key.sign(claims)["Authorization"]
            self._headers[slot] = (key, value, exp)
            self.signed += 1
            return value
