"""The audit log: who changed which setting, preset or team member, when, before and after.

The code that changes a shop's settings, presets, secrets or team writes the entries; each
names its actor (a user's e-mail, "API token", or "admin token" for a dashboard log-in with
it). Secret values are never stored: an entry says only that one was set, changed or removed.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from server.core.models import KINDS, AuditEntry, Shop
from server.merchant.presets import preset_as_json, update_preset
from server.planning.defaults import get_setting
from server.merchant.shop_admin import settings_as_json

API_TOKEN = "API token"
ADMIN_TOKEN = "admin token"
COMMAND_LINE = "command line"
PLUGIN = "plugin (connect value)"
MASK = "••••••"
MAX_VALUE = 2000
PER_PAGE = 50
# The shop's values that are secrets: the audit log records that they changed, never what to.
SECRET_SETTINGS = ("platform_secret", "secret", "admin_token")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= MAX_VALUE else text[:MAX_VALUE - 1] + "…"


def masked(name: str, value: Any) -> Any:
    """``value`` as the log shows it: a secret as ``MASK`` when set, None when not."""
    if name in SECRET_SETTINGS:
        return MASK if value else None
    return value


def record(session: orm.Session, shop_id: int, actor: str, now: datetime, area: str, subject: str,
           before: Any, after: Any) -> AuditEntry:
    """Write one entry (values masked when ``subject`` is a secret, stored as text)."""
    entry = AuditEntry(shop_id=shop_id, at=now, actor=actor[:254], area=area[:32], subject=subject[:120],
                       before=_text(masked(subject, before)), after=_text(masked(subject, after)))
    session.add(entry)
    return entry


def record_changes(session: orm.Session, shop_id: int, actor: str, now: datetime, area: str,
                   before: dict[str, Any], after: dict[str, Any]) -> int:
    """One entry per key whose value differs between the two snapshots; return how many."""
    changed = 0
    for name in sorted(set(before) | set(after)):
        if before.get(name) != after.get(name):
            record(session, shop_id, actor, now, area, name, before.get(name), after.get(name))
            changed += 1
    return changed


def shop_snapshot(shop: Shop) -> dict[str, Any]:
    """The shop's settings as the audit log compares them (secrets included, masked when written)."""
    snapshot: dict[str, Any] = {}
    for name, value in settings_as_json(shop).items():
        if isinstance(value, dict):  # the prompt, quiet hours: one entry per field changed
            snapshot.update({f"{name}.{field}": inner for field, inner in value.items()})
        elif name != "platform_secret_set":
            snapshot[name] = value
    snapshot["platform_secret"] = shop.platform_secret
    snapshot["secret"] = shop.secret
    return snapshot


@contextmanager
def settings_change(session: orm.Session, shop: Shop, actor: str, now: datetime) -> Iterator[None]:
    """Log what the block changes in the shop's settings (nothing when it raises)."""
    before = shop_snapshot(shop)
    yield
    record_changes(session, shop.id, actor, now, "settings", before, shop_snapshot(shop))


def preset_change(session: orm.Session, shop: Shop, kind: str, changes: dict[str, Any], actor: str,
                  now: datetime) -> dict[str, Any]:
    """``presets.update_preset`` with an entry per field it changed (its errors pass through)."""
    before = preset_as_json(get_setting(session, shop, kind)) if kind in KINDS else {}
    after = update_preset(session, shop, kind, changes, now)
    record_changes(session, shop.id, actor, now, f"preset:{kind}", before, after)
    return after


@dataclass(frozen=True)
class AuditPage:
    """One page of entries, newest first."""

    entries: list[AuditEntry]
    page: int
    has_next: bool


def list_entries(session: orm.Session, shop_id: int, page: int = 1, per_page: int = PER_PAGE) -> AuditPage:
    """The shop's entries, newest first, ``per_page`` a page (``page`` from 1)."""
    page = max(1, min(page, 100_000))
    rows = list(session.scalars(sa.select(AuditEntry).where(AuditEntry.shop_id == shop_id)
                                .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
                                .offset((page - 1) * per_page).limit(per_page + 1)))
    return AuditPage(rows[:per_page], page, len(rows) > per_page)
