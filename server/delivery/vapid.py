"""The service's VAPID key pair (P-256), kept in a PEM file under ``instance/``."""
from __future__ import annotations

import base64
import logging
import os
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from flask import Flask, current_app
from py_vapid import Vapid02

log = logging.getLogger(__name__)
EXTENSION = "pushcart.vapid"


def b64url(data: bytes) -> str:
    """Base64url without padding, as the Push API wants keys."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


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
    return b64url(vapid.public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint))


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
