"""The Install page's live checks: does the shop's origin serve the service worker file, and
does its home page link a web app manifest an iPhone can make a Home Screen app of?

Each request goes only to an origin the shop registered: a short timeout, no redirects
followed, no proxy from the environment, and at most 64 KB read.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

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
    try:
        status, content_type, body = _fetch(url)
    except requests.RequestException as exc:
        log.info("install check for shop %s: %s", shop.id, type(exc).__name__)
        return CheckResult(False, url, None, f"could not fetch the file ({type(exc).__name__})")
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


# iOS/iPadOS makes a Home Screen web app (the only place Safari there delivers web push) of a
# site whose manifest asks for its own window.
HOME_SCREEN_DISPLAYS = ("standalone", "fullscreen")


class _ManifestLink(HTMLParser):
    """The first ``<link rel="manifest" href>`` of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if (tag == "link" and self.href is None and "manifest" in (values.get("rel") or "").lower().split()
                and values.get("href")):
            self.href = values["href"]


def _fetch(url: str) -> tuple[int, str, bytes]:
    """GET ``url`` without redirects or proxies: its status, Content-Type and first 64 KB."""
    import requests

    http = requests.Session()
    http.trust_env = False
    try:
        with http.get(url, timeout=TIMEOUT, allow_redirects=False, stream=True,
                      headers={"User-Agent": "Pushcart install check"}) as response:
            return response.status_code, response.headers.get("Content-Type", ""), \
                response.raw.read(MAX_BYTES, decode_content=True) or b""
    finally:
        http.close()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


# The WordPress plugin's first version that serves and links a manifest.
MANIFEST_PLUGIN_VERSION = "0.3.0"
SHOPIFY_MANIFEST_PATH = "/apps/pushcart/manifest.webmanifest"


def no_manifest_message(shop: Shop, *, shopify_app: bool) -> str:
    """What to do when the home page links no manifest: what the shop's platform integration
    offers (the WordPress plugin's setting, the Shopify app embed's option, the app proxy's
    manifest for a Shopify app made by hand), else what to add by hand."""
    found = "the home page links no web app manifest"
    if shop.platform == "woocommerce":
        return (f"{found}. The Pushcart plugin for WordPress links one from version {MANIFEST_PLUGIN_VERSION}: update "
                'the plugin (download it under "WooCommerce" above, then Plugins → Add New → Upload Plugin), and on its '
                'page (WooCommerce → Pushcart) tick "Web app manifest" and save. Its Home Screen icon is the Site Icon '
                "(Settings → General)")
    if shop.platform == "shopify" and shopify_app:
        return (f"{found}. The Pushcart app embed links one: in Shopify admin, Online Store → Themes → Customize → "
                'App embeds → Pushcart, turn on "Link a web app manifest", choose a Home Screen icon, then Save')
    if shop.platform == "shopify":
        return (f"{found}. Your app proxy serves one at {SHOPIFY_MANIFEST_PATH}: add <link rel=\"manifest\" "
                f'href="{SHOPIFY_MANIFEST_PATH}"> inside <head> of layout/theme.liquid')
    return (f'{found}: add <link rel="manifest" href="/manifest.json"> and a manifest with "name" and "display": '
            '"standalone", so iPhone and iPad visitors can add the shop to their Home Screen and get notifications')


def check_manifest(shop: Shop, origin: str, *, shopify_app: bool = False) -> CheckResult:
    """Fetch the home page of ``origin``, then the manifest it links, and say whether iPhone and
    iPad visitors can add the shop to their Home Screen (and so get notifications); when it links
    none, say what the shop's platform integration offers (``shopify_app``: the service has the
    Shopify app, whose embed links one). Raises Invalid."""
    import requests

    if origin not in (shop.origins or []):
        raise Invalid("the check only reaches your shop's registered origins", code="invalid_origin")
    page = origin + "/"
    try:
        status, _, body = _fetch(page)
        if status != 200:
            return CheckResult(False, page, status, f"the home page answered HTTP {status}"
                               + (" (a redirect: the check follows none)" if 300 <= status < 400 else ""))
        finder = _ManifestLink()
        finder.feed(body.decode("utf-8", "replace"))
        if finder.href is None:
            return CheckResult(False, page, status, no_manifest_message(shop, shopify_app=shopify_app))
        url = urljoin(page, finder.href)
        if _origin(url) not in (shop.origins or []):
            return CheckResult(False, url, None, "the manifest is on another origin than your shop's: serve it from "
                               "your shop's own origin")
        status, _, body = _fetch(url)
    except requests.RequestException as exc:
        log.info("manifest check for shop %s: %s", shop.id, type(exc).__name__)
        return CheckResult(False, page, None, f"could not fetch the page ({type(exc).__name__})")
    if status != 200:
        return CheckResult(False, url, status, f"the manifest answered HTTP {status}")
    try:
        manifest = json.loads(body.decode("utf-8-sig"))
    except ValueError:
        manifest = None
    if not isinstance(manifest, dict):
        return CheckResult(False, url, status, "the manifest is not a JSON object")
    if manifest.get("display") not in HOME_SCREEN_DISPLAYS:
        return CheckResult(False, url, status, f'the manifest\'s "display" is {manifest.get("display")!r}: set '
                           '"display": "standalone" (iPhone and iPad deliver notifications only to a Home Screen app)')
    if not (manifest.get("name") or manifest.get("short_name")):
        return CheckResult(False, url, status, 'the manifest has no "name": add one (the Home Screen shows it)')
    if not manifest.get("icons"):
        return CheckResult(True, url, status, "iPhone and iPad visitors can add the shop to their Home Screen; "
                           'add "icons" (192 and 512 px) for a proper Home Screen icon')
    return CheckResult(True, url, status, "iPhone and iPad visitors can add the shop to their Home Screen")
