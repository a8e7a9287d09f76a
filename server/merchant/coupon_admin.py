"""A shop's coupon sources: which code ``{{ coupon }}`` gives per kind, and uploads of code lists.

The merchant API (``GET/PUT /v1/admin/coupons/{kind}``, ``POST /v1/admin/coupons/{kind}/codes``)
and the dashboard's Coupons page call these. Taking a code at plan time is
``server.planning.coupons``.
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import orm
from sqlalchemy.dialects import postgresql, sqlite

from server.core.errors import Invalid, NotFound
from server.core.models import CouponCode, CouponSource, Shop
from server.planning import coupons

CODE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
KIND = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MAX_CODES_PER_UPLOAD = 10_000
MAX_UPLOAD_BYTES = 1024 * 1024  # 10,000 codes of 64 characters and their line ends, with room


class CouponUpdate(BaseModel):
    """``mode`` and, for ``fixed``, the code; ``remaining``/``assigned`` as GET gave them are ignored."""

    model_config = ConfigDict(extra="forbid")
    kind: str | None = None
    mode: Literal["none", "fixed", "list"]
    code: str | None = Field(default=None, max_length=64)
    remaining: int | None = None
    assigned: int | None = None


def check_kind(kind: str) -> str:
    """``kind`` when it may name a coupon source (a preset kind, or another planner's); raises NotFound."""
    if not KIND.match(kind):
        raise NotFound(f"unknown kind {kind[:40]!r}", code="unknown_kind")
    return kind


def coupon_as_json(session: orm.Session, shop: Shop, kind: str) -> dict[str, Any]:
    """``{"kind", "mode", "code", "remaining", "assigned"}`` for one kind of ``shop``."""
    source = coupons.get_source(session, shop.id, check_kind(kind))
    return {"kind": kind, "mode": source.mode if source else "none",
            "code": source.code if source else None, **coupons.counts(session, shop.id, kind)}


def update_coupon(session: orm.Session, shop: Shop, kind: str, update: CouponUpdate,
                  now: datetime) -> dict[str, Any]:
    """Set the coupon source of ``kind``; raises Invalid for a missing or malformed fixed code."""
    check_kind(kind)
    if update.kind is not None and update.kind != kind:
        raise Invalid(f"kind: the body names another kind than {kind!r}", code="invalid_field")
    code = (update.code or "").strip() or None
    if update.mode == "fixed":
        if code is None or not CODE.match(code):
            raise Invalid("code: a fixed code is 1 to 64 characters of A-Z, a-z, 0-9, _ and -",
                          code="invalid_field")
    source = coupons.get_source(session, shop.id, kind)
    if source is None:
        source = CouponSource(shop_id=shop.id, kind=kind)
        session.add(source)
    source.mode = update.mode
    source.code = code if update.mode == "fixed" else (code if code and CODE.match(code) else source.code)
    source.updated_at = now
    session.flush()
    return coupon_as_json(session, shop, kind)


def parse_codes(lines: list[str]) -> list[str]:
    """The codes of an upload, blank lines skipped, repeats dropped, in order; raises Invalid
    naming the first bad line, or when there are more than ``MAX_CODES_PER_UPLOAD``."""
    seen: dict[str, None] = {}
    for number, line in enumerate(lines, start=1):
        code = line.strip()
        if not code:
            continue
        if not CODE.match(code):
            raise Invalid(f"codes: line {number} is not a code (1 to 64 characters of A-Z, a-z, 0-9, _ and -)",
                          code="invalid_code")
        seen[code] = None
        if len(seen) > MAX_CODES_PER_UPLOAD:
            raise Invalid(f"codes: at most {MAX_CODES_PER_UPLOAD} codes per upload", code="too_many_codes")
    if not seen:
        raise Invalid("codes: the upload holds no code", code="invalid_code")
    return list(seen)


def upload_codes(session: orm.Session, shop: Shop, kind: str, lines: list[str],
                 now: datetime) -> dict[str, Any]:
    """Add single-use codes to ``kind``'s list (a code already in it, used or not, is skipped);
    return ``{"added", "skipped", "remaining", "assigned"}``. Uploading does not change the mode."""
    check_kind(kind)
    codes = parse_codes(lines)
    before = coupons.counts(session, shop.id, kind)
    insert = (postgresql.insert(CouponCode) if session.get_bind().dialect.name == "postgresql"
              else sqlite.insert(CouponCode))
    rows = [{"shop_id": shop.id, "kind": kind, "code": code, "created_at": now} for code in codes]
    for start in range(0, len(rows), 1000):
        session.execute(insert.on_conflict_do_nothing(index_elements=["shop_id", "kind", "code"]),
                        rows[start:start + 1000])
    after = coupons.counts(session, shop.id, kind)
    added = after["remaining"] + after["assigned"] - before["remaining"] - before["assigned"]
    return {"added": added, "skipped": len(codes) - added, **after}
