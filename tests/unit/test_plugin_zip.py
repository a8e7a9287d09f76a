"""The WordPress plugin's zip: what WordPress's "Upload Plugin" expects, and the same bytes from
the same source whenever and wherever it is built."""
from __future__ import annotations

import io
import os
import shutil
import zipfile

import pytest

from server.merchant import plugin_zip


@pytest.fixture
def source(tmp_path):
    """A copy of the plugin's source that a test may touch."""
    copy = tmp_path / plugin_zip.NAME
    shutil.copytree(plugin_zip.SOURCE, copy)
    return copy


def test_zip_holds_the_plugin_under_its_folder_in_sorted_order(source):
    names = zipfile.ZipFile(io.BytesIO(plugin_zip.build_zip(source))).namelist()
    assert names[0] == "pushcart-for-woocommerce/"
    assert "pushcart-for-woocommerce/pushcart-for-woocommerce.php" in names
    assert "pushcart-for-woocommerce/includes/class-pushcart-wc-admin.php" in names
    assert all(name.startswith("pushcart-for-woocommerce/") for name in names)
    files = [n for n in names if not n.endswith("/")]
    assert files == sorted(files, key=lambda n: n.split("/"))


def test_zip_is_the_same_bytes_after_the_files_are_touched(source):
    first = plugin_zip.build_zip(source)
    for path in source.rglob("*"):
        os.utime(path, (1_900_000_000, 1_900_000_000))
    (source / "includes" / "index.php").chmod(0o600)
    assert plugin_zip.build_zip(source) == first
    entries = zipfile.ZipFile(io.BytesIO(first)).infolist()
    assert {e.date_time for e in entries} == {plugin_zip.FIXED_TIME}


def test_zip_leaves_hidden_files_out_and_follows_content_changes(source):
    first = plugin_zip.build_zip(source)
    (source / ".DS_Store").write_bytes(b"junk")
    (source / "includes" / "notes.php~").write_text("backup", encoding="utf-8")
    assert plugin_zip.build_zip(source) == first
    (source / "readme.txt").write_text("changed", encoding="utf-8")
    assert plugin_zip.build_zip(source) != first


def test_zip_is_named_after_the_plugin_header_version(source, tmp_path):
    main = source / "pushcart-for-woocommerce.php"
    main.write_text(main.read_text(encoding="utf-8").replace(
        f" * Version:           {plugin_zip.plugin_version(source)}", " * Version:           9.8.7"), encoding="utf-8")
    written = plugin_zip.write_zip(tmp_path / "dist", source)
    assert written.name == "pushcart-for-woocommerce-9.8.7.zip"
    assert written.read_bytes() == plugin_zip.build_zip(source)


def test_a_missing_source_says_so(tmp_path):
    with pytest.raises(plugin_zip.PluginSourceMissing):
        plugin_zip.build_zip(tmp_path / "nowhere")
