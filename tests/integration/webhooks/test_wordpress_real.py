"""The WordPress plugin on real WordPress: Debian's ``wordpress`` package (6.1 on Debian 12)
with MariaDB, served by ``php -S``, installed and driven over HTTP as a merchant would, the
plugin unpacked from the zip the Install page serves, connected to a live Pushcart.

Without WooCommerce (Debian has no package of it): the plugin must then activate, say what is
missing and still add the widget and the worker. Skipped with the reason when WordPress,
php-mysql or MariaDB (127.0.0.1:3306, root, no password) is missing: ``make test`` installs the
Debian packages as root.
"""
from __future__ import annotations

import html
import io
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from server.core.db import get_session
from server.core.models import Shop
from server.merchant import plugin_zip
from server.merchant.connect import issue_token
from tests.browser.chromium import LiveServer
from tests.factories import make_shop

WORDPRESS = Path("/usr/share/wordpress")
PHP = shutil.which("php")
DB_HOST, DB_PORT = "127.0.0.1", 3306
PLUGIN_FILE = "pushcart-for-woocommerce/pushcart-for-woocommerce.php"
ADMIN_PASSWORD = secrets.token_urlsafe(16)

# The minimal theme WordPress needs to render a front page: only the hooks a theme must call.
THEME_CSS = "/*\nTheme Name: Pushcart Test\n*/\n"
THEME_INDEX = ("<?php defined( 'ABSPATH' ) || exit; ?><!doctype html><html><head><?php wp_head(); ?></head>"
               "<body><p>shop</p><?php wp_footer(); ?></body></html>\n")

# php -S as nginx's `try_files $uri $uri/ /index.php?$args` would serve WordPress: files and
# folders as they are, every other address to index.php (so /pushcart-sw.js reaches WordPress).
ROUTER = """<?php
$path = parse_url( $_SERVER['REQUEST_URI'], PHP_URL_PATH );
$file = $_SERVER['DOCUMENT_ROOT'] . $path;
if ( '/' !== $path && ( is_file( $file ) || is_dir( $file ) ) ) {
	return false;
}
$_SERVER['SCRIPT_NAME']     = '/index.php';
$_SERVER['SCRIPT_FILENAME'] = $_SERVER['DOCUMENT_ROOT'] . '/index.php';
require $_SERVER['DOCUMENT_ROOT'] . '/index.php';
"""


# What some SEO and redirect plugins do to unknown addresses, before the plugin's parse_request.
REDIRECTING_PLUGIN = """<?php
add_action( 'parse_request', function () {
	if ( false !== strpos( $_SERVER['REQUEST_URI'], '.js' ) ) {
		wp_redirect( home_url( '/elsewhere/' ), 301 );
		exit;
	}
}, -1 );
"""


def _php_sql(sql: str, database: str = "") -> str:
    """Run one SQL statement on MariaDB through PHP's mysqli (the driver WordPress uses)."""
    code = ("$db = new mysqli($argv[1], 'root', '', $argv[2], (int) $argv[3]);"
            "$r = $db->query($argv[4]); if ($r === false) { fwrite(STDERR, $db->error); exit(1); }"
            "if ($r instanceof mysqli_result) { foreach ($r->fetch_all() as $row) echo implode(\"\\t\", $row), \"\\n\"; }")
    result = subprocess.run([PHP, "-r", code, DB_HOST, database, str(DB_PORT), sql],
                            capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise RuntimeError(result.stderr.strip() or result.stdout.strip())
    return result.stdout


def _skip_reason() -> str | None:
    """Why this machine cannot run real WordPress, or None."""
    if PHP is None:
        return "php is not installed (Debian package php-cli)"
    if not (WORDPRESS / "wp-settings.php").is_file():
        return "WordPress is not installed (Debian package wordpress; make test installs it as root)"
    modules = subprocess.run([PHP, "-m"], capture_output=True, text=True, timeout=30).stdout.split()
    if "mysqli" not in modules:
        return "PHP has no mysqli (Debian package php-mysql)"
    try:
        _php_sql("SELECT 1")
    except RuntimeError as exc:
        return f"MariaDB is not reachable at {DB_HOST}:{DB_PORT} as root: {exc}"
    return None


def _free_port() -> int:
    """A port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wordpress_tree(root: Path, database: str) -> Path:
    """A WordPress of its own under ``root``: Debian's files hard-linked (copied across file
    systems), its own wp-config.php, wp-content and theme."""
    site = root / "wordpress"

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(WORDPRESS, site, symlinks=True, copy_function=link)
    # Debian's wp-config.php reads /etc/wordpress; a new file, not a write through the link.
    (site / "wp-config.php").unlink()
    keys = "\n".join(f"define( '{name}', '{secrets.token_hex(32)}' );" for name in (
        "AUTH_KEY", "SECURE_AUTH_KEY", "LOGGED_IN_KEY", "NONCE_KEY",
        "AUTH_SALT", "SECURE_AUTH_SALT", "LOGGED_IN_SALT", "NONCE_SALT"))
    (site / "wp-config.php").write_text(f"""<?php
define( 'DB_NAME', '{database}' );
define( 'DB_USER', 'root' );
define( 'DB_PASSWORD', '' );
define( 'DB_HOST', '{DB_HOST}:{DB_PORT}' );
define( 'DB_CHARSET', 'utf8mb4' );
define( 'DB_COLLATE', '' );
{keys}
$table_prefix = 'wp_';
define( 'WP_DEBUG', true );
define( 'WP_DEBUG_DISPLAY', false );
define( 'WP_DEBUG_LOG', '{root / "debug.log"}' );
define( 'WP_DEFAULT_THEME', 'pushcart-test' );
define( 'WP_HTTP_BLOCK_EXTERNAL', true );
define( 'DISABLE_WP_CRON', true );
define( 'AUTOMATIC_UPDATER_DISABLED', true );
define( 'WP_AUTO_UPDATE_CORE', false );
define( 'FS_METHOD', 'direct' );
define( 'ABSPATH', __DIR__ . '/' );
require_once ABSPATH . 'wp-settings.php';
""", encoding="utf-8")
    theme = site / "wp-content" / "themes" / "pushcart-test"
    theme.mkdir(parents=True)
    (theme / "style.css").write_text(THEME_CSS, encoding="utf-8")
    (theme / "index.php").write_text(THEME_INDEX, encoding="utf-8")
    (root / "router.php").write_text(ROUTER, encoding="utf-8")
    return site


@pytest.fixture
def wordpress(tmp_path) -> Iterator[dict[str, Any]]:
    """A fresh WordPress on its own MariaDB database and port; both gone afterwards."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    database = f"pushcart_wp_{secrets.token_hex(6)}"
    _php_sql(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
    site = _wordpress_tree(tmp_path, database)
    port = _free_port()
    log = (tmp_path / "php-server.log").open("wb")
    # Several workers: the plugin's page fetches the site's own worker file while it renders.
    # They are forked children: a session of their own lets the end stop them all.
    server = subprocess.Popen([PHP, "-S", f"127.0.0.1:{port}", "-t", str(site), str(tmp_path / "router.php")],
                              cwd=site, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                              env={**os.environ, "PHP_CLI_SERVER_WORKERS": "4"})
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield {"base": base, "site": site, "database": database, "debug_log": tmp_path / "debug.log"}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)
        log.close()
        _php_sql(f"DROP DATABASE IF EXISTS `{database}`")


def _form(page: str, form_id: str | None = None, action: str | None = None) -> dict[str, str]:
    """The hidden and text inputs of one form of ``page`` (by id or by action), as a dict."""
    forms = re.findall(r"<form\b([^>]*)>(.*?)</form>", page, re.S)
    for attrs, body in forms:
        if (form_id and f'id="{form_id}"' in attrs) or (action and action in html.unescape(attrs)):
            return {html.unescape(n): html.unescape(v) for n, v in
                    re.findall(r"<input[^>]*?name=[\"']([^\"']+)[\"'][^>]*?value=[\"']([^\"']*)[\"']", body)}
    raise AssertionError(f"no form {form_id or action} in the page")


def _link(page: str, pattern: str) -> str:
    """The first href of ``page`` matching ``pattern``, unescaped."""
    match = re.search(r'href="([^"]*' + pattern + r'[^"]*)"', page)
    assert match, f"no link matching {pattern}"
    return html.unescape(match.group(1))


def _options(wordpress: dict[str, Any], like: str) -> list[str]:
    """Names of WordPress options matching the SQL pattern ``like``."""
    rows = _php_sql(f"SELECT option_name FROM wp_options WHERE option_name LIKE '{like}'", wordpress["database"])
    return rows.split()


def _install(wp: requests.Session, base: str) -> None:
    """WordPress's own installer, as a person fills it in, then a log-in."""
    done = wp.post(f"{base}/wp-admin/install.php?step=2", data={
        "weblog_title": "Pushcart Test Shop", "user_name": "admin", "admin_password": ADMIN_PASSWORD,
        "admin_password2": ADMIN_PASSWORD, "pw_weak": "1", "admin_email": "admin@shop.test",
        "blog_public": "0", "language": ""}, timeout=60)
    assert done.status_code == 200 and "Success!" in done.text, done.text[:2000]
    wp.cookies.set("wordpress_test_cookie", "WP Cookie check")
    login = wp.post(f"{base}/wp-login.php", data={"log": "admin", "pwd": ADMIN_PASSWORD, "testcookie": "1",
                                                  "redirect_to": f"{base}/wp-admin/"}, timeout=30)
    assert login.status_code == 200 and "Dashboard" in login.text, login.text[:2000]


def _permalinks(wordpress: dict[str, Any]) -> str:
    """The stored permalink structure ('' is "Plain")."""
    rows = _php_sql("SELECT option_value FROM wp_options WHERE option_name = 'permalink_structure'",
                    wordpress["database"])
    return rows.strip()


def _set_permalinks(wp: requests.Session, wordpress: dict[str, Any], structure: str) -> None:
    """Settings → Permalinks, through its form ('' for "Plain")."""
    base = wordpress["base"]
    page = wp.get(f"{base}/wp-admin/options-permalink.php", timeout=30).text
    fields = _form(page, action="options-permalink.php")
    fields.update({"selection": structure, "permalink_structure": structure, "category_base": "", "tag_base": ""})
    saved = wp.post(f"{base}/wp-admin/options-permalink.php", data=fields, timeout=30)
    assert saved.status_code == 200
    assert _permalinks(wordpress) == structure


def _fetch_worker(base: str, key: str) -> requests.Response:
    """The worker file as the widget registers it, redirects not followed (browsers refuse them)."""
    return requests.get(f"{base}/pushcart-sw.js?shop={key}&v=1", allow_redirects=False, timeout=30)


def _deactivate_and_delete(wp: requests.Session, wordpress: dict[str, Any], options: list[str]) -> None:
    """Plugins → Deactivate (the ``options`` stay), then Delete: WordPress runs uninstall.php,
    and no option of the plugin's is left."""
    base = wordpress["base"]
    plugins = wp.get(f"{base}/wp-admin/plugins.php", timeout=30).text
    deactivated = wp.get(base + "/wp-admin/" + _link(plugins, r"action=deactivate&amp;plugin=pushcart"), timeout=30)
    assert "Plugin deactivated." in deactivated.text
    assert _options(wordpress, "pushcart_wc%") == options
    confirm = wp.get(base + "/wp-admin/" + _link(deactivated.text, r"action=delete-selected&amp;checked%5B0%5D=pushcart"),
                     timeout=30).text
    fields = _form(confirm, action="plugins.php")
    fields["checked[]"] = PLUGIN_FILE
    deleted = wp.post(f"{base}/wp-admin/plugins.php", data=fields, timeout=60)
    assert deleted.status_code == 200
    assert not (wordpress["site"] / "wp-content" / "plugins" / "pushcart-for-woocommerce").exists()
    assert _options(wordpress, "pushcart_wc%") == []


PAGE = "/wp-admin/options-general.php?page=pushcart-wc"  # Settings → Pushcart (no WooCommerce menu)


def _install_and_connect(app, wordpress, clock, pushcart: LiveServer) -> tuple[requests.Session, Any, Any]:
    """WordPress installed, the plugin uploaded and activated, a connect value pasted and saved:
    the logged-in session, the Pushcart shop and the saved page's response."""
    base = wordpress["base"]
    app.config["PUBLIC_URL"] = pushcart.base
    with app.app_context():
        session = get_session()
        made = make_shop(session, clock.now(), name="WordPress shop")
        connect_value = issue_token(session.get(Shop, made.shop.id), clock.now(), pushcart.base).value
        session.commit()

    wp = requests.Session()
    _install(wp, base)

    # The plugin from the zip the Install page serves, unpacked as "Upload Plugin" does.
    zipfile.ZipFile(io.BytesIO(plugin_zip.build_zip())).extractall(wordpress["site"] / "wp-content" / "plugins")
    plugins = wp.get(f"{base}/wp-admin/plugins.php", timeout=30).text
    activated = wp.get(base + "/wp-admin/" + _link(plugins, r"action=activate&amp;plugin=pushcart"), timeout=30)
    assert "Plugin activated." in activated.text, activated.text[:3000]
    assert 'id="pushcart-wc-no-woocommerce"' in activated.text and "WooCommerce is not active" in activated.text

    # Settings → Pushcart: paste the connect value and save.
    page = wp.get(base + PAGE, timeout=30).text
    assert "The checks run once the Pushcart URL and the shop public key are saved." in page
    fields = _form(page, action="options.php")
    fields["pushcart_wc_settings[connect]"] = connect_value
    saved = wp.post(f"{base}/wp-admin/options.php", data=fields, timeout=60)
    assert saved.status_code == 200 and "Connected to Pushcart" in saved.text, saved.text[:3000]
    return wp, made, saved


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # Pushcart's side is not the subject
def test_plugin_on_real_wordpress_without_woocommerce(app, wordpress, clock):
    base = wordpress["base"]
    pushcart = LiveServer(app).start()
    try:
        wp, made, saved = _install_and_connect(app, wordpress, clock, pushcart)
        key = made.shop.public_key
        page_url = base + PAGE
        assert f'value="{pushcart.base}"' in saved.text and f'value="{key}"' in saved.text
        assert "A secret is stored, ending in" in saved.text

        # Pushcart's side: the site's origin is allowed, the platform is WooCommerce.
        with app.app_context():
            shop = get_session().get(Shop, made.shop.id)
            assert base in shop.origins and shop.platform == "woocommerce"

        # The webhook button says what really blocks it; the worker check passes.
        blocker = re.search(r'id="pushcart-wc-webhook-blocker">([^<]*)<', saved.text)
        assert blocker and blocker.group(1).startswith("WooCommerce is not active"), saved.text[-4000:]
        assert re.search(r'id="pushcart-wc-check-worker" class="pushcart-wc-check-ok"', saved.text), saved.text[-4000:]

        # The front page carries the widget's tag as CONTRACT §4 has it.
        front = requests.get(f"{base}/", timeout=30).text
        tag = re.search(r"<script[^>]*widget\.js[^>]*>", front)
        assert tag, front[:3000]
        assert f"{pushcart.base}/widget.js" in tag.group(0)
        assert f'data-shop="{key}"' in tag.group(0) and " async" in tag.group(0)

        # The worker file with pretty, then plain permalinks: 200, JavaScript, no redirect.
        for structure in ("/%postname%/", ""):
            _set_permalinks(wp, wordpress, structure)
            worker = _fetch_worker(base, key)
            assert worker.status_code == 200, (structure, worker.status_code, worker.headers.get("Location"))
            assert worker.headers["Content-Type"].startswith("application/javascript")
            assert worker.text == f'importScripts("{pushcart.base}/sw.js");'
            page = wp.get(page_url, timeout=30).text
            assert 'class="pushcart-wc-check-ok"' in page, structure

        # A plugin that redirects .js addresses (here a must-use plugin): the check names it.
        must_use = wordpress["site"] / "wp-content" / "mu-plugins"
        must_use.mkdir()
        (must_use / "redirect-js.php").write_text(REDIRECTING_PLUGIN, encoding="utf-8")
        page = wp.get(page_url, timeout=30).text
        check = re.search(r'id="pushcart-wc-check-worker" class="pushcart-wc-check-failed">(.*?)</p>', page, re.S)
        assert check and f"answers a redirect (301 to {base}/elsewhere/)" in html.unescape(check.group(1)), page[-4000:]
        shutil.rmtree(must_use)

        # Deactivate, then delete (WordPress runs uninstall.php): the options are gone.
        _deactivate_and_delete(wp, wordpress, ["pushcart_wc_settings"])

        log = wordpress["debug_log"]
        problems = log.read_text(encoding="utf-8") if log.exists() else ""
        assert "pushcart" not in problems.lower(), problems
    finally:
        pushcart.stop()


# What the Customizer's Site Icon crop does (WordPress's own JavaScript calls it): a 512 px square
# image as an attachment, with the Site Icon's extra sizes, set as the site_icon option.
SITE_ICON = """<?php
define( 'WP_USE_THEMES', false );
require getcwd() . '/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/image.php';
require_once ABSPATH . 'wp-admin/includes/class-wp-site-icon.php';
$uploads = wp_upload_dir();
$file    = $uploads['path'] . '/site-icon.png';
$image   = imagecreatetruecolor( 512, 512 );
imagefill( $image, 0, 0, imagecolorallocate( $image, 10, 124, 102 ) );
imagepng( $image, $file );
$id = wp_insert_attachment( array( 'post_mime_type' => 'image/png', 'post_title' => 'Site icon', 'post_status' => 'inherit' ), $file );
add_filter( 'intermediate_image_sizes_advanced', array( new WP_Site_Icon(), 'additional_sizes' ) );
wp_update_attachment_metadata( $id, wp_generate_attachment_metadata( $id, $file ) );
update_option( 'site_icon', $id );
"""

# A theme (here a must-use plugin) that links a manifest of its own in the head.
THEME_MANIFEST = """<?php
add_action( 'wp_head', function () {
	echo '<link rel="manifest" href="/theme.webmanifest">' . "\\n";
} );
"""

MANIFEST_LINK = re.compile(r"<link\b[^>]*\brel=[\"']manifest[\"'][^>]*>")


def _head(base: str) -> str:
    """The front page's head, as a visitor gets it."""
    page = requests.get(f"{base}/", timeout=30).text
    return page[:page.index("</head>")]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_plugin_serves_and_links_a_manifest_where_the_site_has_none(app, wordpress, clock):
    from server.merchant import install_check

    base = wordpress["base"]
    pushcart = LiveServer(app).start()
    try:
        wp, made, saved = _install_and_connect(app, wordpress, clock, pushcart)
        # The Home Screen section: on by default; a theme colour chosen and saved.
        assert re.search(r'<input type="checkbox" id="pushcart_wc_manifest" name="pushcart_wc_manifest\[enabled\]" '
                         r"value=\"1\" checked='checked' />", saved.text), saved.text[-6000:]
        fields = _form(saved.text, action="options.php")
        fields["pushcart_wc_manifest[theme_color]"] = "#0A7C66"
        assert wp.post(f"{base}/wp-admin/options.php", data=fields, timeout=60).status_code == 200
        done = subprocess.run([PHP, "-r", "eval(substr(file_get_contents('php://stdin'), 5));"], input=SITE_ICON,
                              cwd=wordpress["site"], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr

        for structure, url in (("/%postname%/", f"{base}/pushcart-manifest.webmanifest"),
                               ("", f"{base}/?pushcart_manifest=1")):
            _set_permalinks(wp, wordpress, structure)
            links = MANIFEST_LINK.findall(_head(base))
            assert links == [f'<link rel="manifest" href="{html.escape(url)}" id="pushcart-wc-manifest" />'], links
            served = requests.get(url, allow_redirects=False, timeout=30)
            assert served.status_code == 200, (structure, served.status_code, served.headers.get("Location"))
            assert served.headers["Content-Type"] == "application/manifest+json; charset=utf-8"
            manifest = served.json()
            icons = manifest.pop("icons")
            assert manifest == {"name": "Pushcart Test Shop", "short_name": "Pushcart", "start_url": f"{base}/",
                                "scope": "/", "display": "standalone", "background_color": "#ffffff",
                                "theme_color": "#0a7c66"}
            assert [(icon["sizes"], icon["type"]) for icon in icons] == [("192x192", "image/png"),
                                                                         ("512x512", "image/png")]
            assert icons[0]["src"].endswith("-192x192.png"), icons
            for icon in icons:
                image = requests.get(icon["src"], timeout=30)
                assert image.status_code == 200 and image.content.startswith(b"\x89PNG"), icon

        # Pushcart's Install page check, on this very site: a manifest iPhones can use.
        with app.app_context():
            shop = get_session().get(Shop, made.shop.id)
            found = install_check.check_manifest(shop, base)
        assert found.ok and found.url == f"{base}/?pushcart_manifest=1", found

        # A theme that links its own manifest in wp_head: the plugin adds none.
        must_use = wordpress["site"] / "wp-content" / "mu-plugins"
        must_use.mkdir()
        (must_use / "theme-manifest.php").write_text(THEME_MANIFEST, encoding="utf-8")
        assert MANIFEST_LINK.findall(_head(base)) == ['<link rel="manifest" href="/theme.webmanifest">']
        shutil.rmtree(must_use)

        # Turned off on the plugin's page: no link, the address answers 404.
        page = wp.get(base + PAGE, timeout=30).text
        fields = _form(page, action="options.php")
        del fields["pushcart_wc_manifest[enabled]"]  # an unticked box is not sent
        assert wp.post(f"{base}/wp-admin/options.php", data=fields, timeout=60).status_code == 200
        assert MANIFEST_LINK.findall(_head(base)) == []
        assert requests.get(f"{base}/?pushcart_manifest=1", timeout=30).status_code == 404
        with app.app_context():
            missing = install_check.check_manifest(get_session().get(Shop, made.shop.id), base)
        assert not missing.ok and 'update the plugin' in missing.message and 'tick "Web app manifest"' in missing.message, missing

        _deactivate_and_delete(wp, wordpress, ["pushcart_wc_manifest", "pushcart_wc_settings"])
        log = wordpress["debug_log"]
        problems = log.read_text(encoding="utf-8") if log.exists() else ""
        assert "pushcart" not in problems.lower(), problems
    finally:
        pushcart.stop()
