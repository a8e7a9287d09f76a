"""The WordPress plugin as the zip WordPress's "Upload Plugin" takes, built reproducibly.

One implementation for both doors to it: ``make plugin`` writes
``dist/pushcart-for-woocommerce-<version>.zip`` with ``python -m server.merchant.plugin_zip dist``,
and the dashboard's Install page serves the same bytes built from the source on the fly. The
same source gives the same bytes: entries sorted, one fixed timestamp, fixed permissions.
"""
from __future__ import annotations

import io
import re
import sys
import zipfile
from pathlib import Path

NAME = "pushcart-for-woocommerce"
SOURCE = Path(__file__).resolve().parents[2] / "integrations" / "woocommerce" / NAME
# The earliest time a zip entry can carry: no build date leaks into the bytes.
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_VERSION = re.compile(r"^ \* Version:\s+(\S+)\s*$", re.M)


class PluginSourceMissing(LookupError):
    """The plugin's source folder (or its main file) is not where this install expects it."""


def plugin_version(source: Path = SOURCE) -> str:
    """The ``Version:`` of the plugin's header; raises PluginSourceMissing without one."""
    main = source / f"{NAME}.php"
    if not main.is_file():
        raise PluginSourceMissing(f"no plugin source at {source}")
    match = _VERSION.search(main.read_text(encoding="utf-8"))
    if match is None:
        raise PluginSourceMissing(f"{main.name} has no Version header")
    return match.group(1)


def _members(source: Path) -> list[Path]:
    """Every folder and file to pack, sorted; hidden files and editor leftovers stay out."""
    return sorted(p for p in source.rglob("*")
                  if not any(part.startswith(".") or part == "__pycache__" for part in p.relative_to(source).parts)
                  and not p.name.endswith("~"))


def build_zip(source: Path = SOURCE) -> bytes:
    """The zip of ``source`` under one ``pushcart-for-woocommerce/`` folder, as bytes.

    Raises PluginSourceMissing when the source is not there.
    """
    plugin_version(source)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in [source, *_members(source)]:
            name = "/".join((NAME, *path.relative_to(source).parts)) + ("/" if path.is_dir() else "")
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.create_system = 3  # Unix, so the permission bits below mean the same everywhere
            if path.is_dir():
                info.external_attr = (0o40755 << 16) | 0x10
                archive.writestr(info, b"")
            else:
                info.external_attr = 0o100644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, path.read_bytes(), compresslevel=9)
    return buffer.getvalue()


def zip_name(source: Path = SOURCE) -> str:
    """The versioned file name, e.g. ``pushcart-for-woocommerce-0.3.0.zip``."""
    return f"{NAME}-{plugin_version(source)}.zip"


def write_zip(dest: Path, source: Path = SOURCE) -> Path:
    """Write the versioned zip into the folder ``dest`` (made if missing) and return its path."""
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / zip_name(source)
    target.write_bytes(build_zip(source))
    return target


if __name__ == "__main__":  # pragma: no cover - the Makefile's `plugin` target
    print(write_zip(Path(sys.argv[1] if len(sys.argv) > 1 else "dist")))
