"""The Install page's live check: does the shop's origin serve the service worker file?

It makes one outbound request, and only to an origin the shop registered: a short timeout,
no redirects followed, no proxy from the environment, and at most 64 KB read.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from server.core.errors import Invalid
from server.core.models import Shop

log = logging.getLogger(__name__)

TIMEOUT = (3.0, 3.0)  # connect, read (seconds)
MAX_BYTES = 64 * 1024


@dataclass(frozen=True)
class CheckResult:
    """What the check found, in words the merchant can act on."""

    ok: bool
    url: str
    status: int | None
    message: str


def check_service_worker(shop: Shop, origin: str, public_url: str) -> CheckResult:
    """Fetch ``origin + shop.sw_path`` and say whether it loads Pushcart's worker; raises Invalid."""
    if origin not in (shop.origins or []):
        raise Invalid("the check only reaches your shop's registered origins", code="invalid_origin")
    import requests  # only here: importing it costs every command about 50 ms of start-up

    url = origin + shop.sw_path
    http = requests.Session()
    http.trust_env = False
    try:
        with http.get(url, timeout=TIMEOUT, allow_redirects=False, stream=True,
                      headers={"User-Agent": "Pushcart install check"}) as response:
            body = response.raw.read(MAX_BYTES, decode_content=True) or b""
            status = response.status_code
            content_type = response.headers.get("Content-Type", "")
    except requests.RequestException as exc:
        log.info("install check for shop %s: %s", shop.id, type(exc).__name__)
        return CheckResult(False, url, None, f"could not fetch the file ({type(exc).__name__})")
    finally:
        http.close()
    if 300 <= status < 400:
        return CheckResult(False, url, status, "the file redirects: a service worker must be served directly")
    if status != 200:
        return CheckResult(False, url, status, f"the shop answered HTTP {status}")
    text = body.decode("utf-8", "replace")
    if f"{public_url}/sw.js" not in text or "importScripts" not in text:
        return CheckResult(False, url, status, "the file is there but does not import Pushcart's sw.js")
    if "javascript" not in content_type.lower():
        return CheckResult(False, url, status, f"browsers need a JavaScript type, not {content_type or 'none'!r}")
    return CheckResult(True, url, status, "the service worker file is in place")
