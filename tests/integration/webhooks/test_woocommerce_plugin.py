"""The WooCommerce plugin (integrations/woocommerce): every PHP file lints, the PHP harness on
WordPress/WooCommerce stand-ins passes, and the plugin agrees with the widget it embeds.

The PHP tests are skipped when `php` is not installed (Debian: `apt-get install php-cli`).
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
INTEGRATION = ROOT / "integrations" / "woocommerce"
PLUGIN = INTEGRATION / "pushcart-for-woocommerce"
HARNESS = INTEGRATION / "tests"
PHP = shutil.which("php")
NODE = shutil.which("node")
PHP_FILES = sorted(p for p in INTEGRATION.rglob("*.php"))

needs_php = pytest.mark.skipif(PHP is None, reason="php is not installed (Debian package php-cli)")


def test_the_plugin_has_php_files_to_check():
    assert PLUGIN / "pushcart-for-woocommerce.php" in PHP_FILES
    assert HARNESS / "run.php" in PHP_FILES


@needs_php
@pytest.mark.parametrize("path", PHP_FILES, ids=lambda p: str(p.relative_to(INTEGRATION)))
def test_php_file_passes_php_lint(path: Path):
    result = subprocess.run([PHP, "-l", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", sorted(PLUGIN.rglob("*.php")), ids=lambda p: str(p.relative_to(PLUGIN)))
def test_plugin_php_file_stops_when_loaded_outside_wordpress(path: Path):
    head = path.read_text(encoding="utf-8")[:2000]
    assert re.search(r"defined\( 'ABSPATH' \) \|\| exit;", head), f"{path.name} has no ABSPATH guard"


@needs_php
def test_php_harness_passes():
    result = subprocess.run([PHP, str(HARNESS / "run.php")], capture_output=True, text=True, timeout=120, cwd=INTEGRATION)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert re.search(r"^\d+ passed, 0 failed$", result.stdout, re.M), output
    assert "Warning" not in output and "Deprecated" not in output and "Notice" not in output, output


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_helper_script_parses():
    result = subprocess.run([NODE, "--check", str(PLUGIN / "assets" / "pushcart-wc.js")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_helper_script_links_the_visitor_and_hands_over_ajax_cart_events():
    result = subprocess.run([NODE, "--test", str(HARNESS / "helper.test.js")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^# fail 0$", result.stdout, re.M), result.stdout


def test_plugin_header_and_readme_agree_on_version():
    main = (PLUGIN / "pushcart-for-woocommerce.php").read_text(encoding="utf-8")
    readme = (PLUGIN / "readme.txt").read_text(encoding="utf-8")
    header = dict(re.findall(r"^ \* ([A-Za-z ]+):\s+(.+)$", main, re.M))
    assert header["Plugin Name"] == "Pushcart for WooCommerce"
    assert readme.startswith("=== Pushcart for WooCommerce ===\n")
    assert re.search(rf"^Stable tag: {re.escape(header['Version'])}$", readme, re.M)
    assert f"define( 'PUSHCART_WC_VERSION', '{header['Version']}' );" in main


def test_plugin_installs_on_wordpress_6_1_with_or_without_woocommerce():
    """Debian 12 ships WordPress 6.1, and a "Requires Plugins" header blocks activation on 6.5+
    when WooCommerce is missing, although the plugin runs without it (with a notice)."""
    main = (PLUGIN / "pushcart-for-woocommerce.php").read_text(encoding="utf-8")
    readme = (PLUGIN / "readme.txt").read_text(encoding="utf-8")
    header = dict(re.findall(r"^ \* ([A-Za-z ]+):\s+(.+)$", main, re.M))
    assert header["Requires at least"] == "6.1"
    assert re.search(r"^Requires at least: 6\.1$", readme, re.M)
    assert "Requires Plugins" not in main and "Requires Plugins" not in readme


def test_plugin_reads_the_visitor_id_the_widget_keeps():
    """The helper falls back to the widget's localStorage key, and the server side checks ids
    with the widget's own pattern: a change in the widget must show up here."""
    widget = (ROOT / "widget" / "pushcart.js").read_text(encoding="utf-8")
    helper = (PLUGIN / "assets" / "pushcart-wc.js").read_text(encoding="utf-8")
    events = (PLUGIN / "includes" / "class-pushcart-wc-cart-events.php").read_text(encoding="utf-8")
    assert 'localStorage.getItem("pushcart_" + k)' in widget and 'get("vid")' in widget
    assert 'var COOKIE = "pushcart_vid";' in helper
    assert "/^[\\w-]{8,64}$/" in widget  # \w is [A-Za-z0-9_] in JavaScript
    assert "var VISITOR = /^[A-Za-z0-9_-]{8,64}$/;" in helper
    assert "const VISITOR_PATTERN = '/^[A-Za-z0-9_-]{8,64}$/';" in events
    assert "/^[\\w-]{1,64}$/" in widget  # the shop key rule the settings page applies
    assert "const KEY_PATTERN = '/^[A-Za-z0-9_-]{1,64}$/';" in (PLUGIN / "includes" / "class-pushcart-wc-settings.php").read_text(encoding="utf-8")
