"""Coupons for ``{{ coupon }}``: a fixed code, or single-use codes taken one per push at plan time.

A shop sets a source per kind (``coupon_sources``): ``none``, ``fixed`` (one code for all) or
``list`` (merchant-uploaded codes in ``coupon_codes``, each given to one push only). Taking a
code is one statement that marks the oldest free code as assigned and returns it:

* PostgreSQL: ``UPDATE .. WHERE id = (SELECT id .. FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING``,
  so planners in several processes each lock a different free row and never wait on, or
  take, another's code;
* SQLite: the same UPDATE (without the lock clause) runs under the database's single write
  lock, so two processes are serialised there.

The assignment belongs to the planner's transaction: if the push is not stored (its dedupe
key exists already) the planner gives the code back (``release``), and a rolled back plan
gives it back by itself. When the list is used up the push goes out without a code
(``coupon`` renders empty, so a template may say ``{% if coupon %}``), and that is logged.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import orm

from server.core.models import CouponCode, CouponSource

log = logging.getLogger(__name__)

MODES = ("none", "fixed", "list")


@dataclass(frozen=True)
class Coupon:
    """The code a push gets (``""`` for none) and, for a list code, its row id."""

    code: str
    code_id: int | None = None


NO_COUPON = Coupon("")
# What a preview or a test push shows for a list: they never take one of its single-use codes.
SAMPLE_LIST_CODE = "TEST-COUPON"


def get_source(session: orm.Session, shop_id: int, kind: str) -> CouponSource | None:
    """The shop's coupon source for ``kind``, or None (no coupon)."""
    return session.scalars(sa.select(CouponSource).where(
        CouponSource.shop_id == shop_id, CouponSource.kind == kind)).one_or_none()


def _take_statement(session: orm.Session, shop_id: int, kind: str, subscription_id: int | None,
                    now: datetime) -> sa.Update:
    pick = (sa.select(CouponCode.id)
            .where(CouponCode.shop_id == shop_id, CouponCode.kind == kind, CouponCode.assigned_at.is_(None))
            .order_by(CouponCode.id).limit(1))
    if session.get_bind().dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    return (sa.update(CouponCode)
            .where(CouponCode.id == pick.scalar_subquery(), CouponCode.assigned_at.is_(None))
            .values(assigned_at=now, subscription_id=subscription_id)
            .returning(CouponCode.id, CouponCode.code)
            .execution_options(synchronize_session=False))


def take_code(session: orm.Session, shop_id: int, kind: str, subscription_id: int | None,
              now: datetime) -> Coupon | None:
    """Assign the oldest free list code of ``kind`` to ``subscription_id``; None when none is left."""
    row = session.execute(_take_statement(session, shop_id, kind, subscription_id, now)).first()
    if row is None:
        return None
    return Coupon(code=row.code, code_id=row.id)


def coupon_for(session: orm.Session, shop_id: int, kind: str, subscription_id: int | None,
               now: datetime, source: CouponSource | None = None) -> Coupon:
    """The coupon one push of ``kind`` carries: the fixed code, a fresh list code, or none.

    ``source`` may be passed when the caller already read it (one read per plan). A used-up
    list gives ``NO_COUPON`` and a warning in the log (the dashboard shows what is left).
    """
    if source is None:
        source = get_source(session, shop_id, kind)
    if source is None or source.mode == "none":
        return NO_COUPON
    if source.mode == "fixed":
        return Coupon(source.code or "")
    coupon = take_code(session, shop_id, kind, subscription_id, now)
    if coupon is None:
        log.warning("coupon list used up (shop %s, kind %s): push for subscription %s goes without a code",
                    shop_id, kind, subscription_id)
        return NO_COUPON
    return coupon


def sample_code(source: CouponSource | None) -> str:
    """The code a preview shows for ``source``: the fixed code, ``SAMPLE_LIST_CODE`` for a list
    (nothing is taken), ``""`` for none."""
    if source is None or source.mode == "none":
        return ""
    if source.mode == "fixed":
        return source.code or ""
    return SAMPLE_LIST_CODE


def attach(session: orm.Session, coupon: Coupon, push_id: int | None) -> None:
    """Record which push took a list code, or give the code back when the push was not stored."""
    if coupon.code_id is None:
        return
    if push_id is None:
        release(session, coupon)
        return
    session.execute(sa.update(CouponCode).where(CouponCode.id == coupon.code_id).values(push_id=push_id)
                    .execution_options(synchronize_session=False))


def release(session: orm.Session, coupon: Coupon) -> None:
    """Make a list code free again (its push was never stored)."""
    if coupon.code_id is not None:
        session.execute(sa.update(CouponCode).where(CouponCode.id == coupon.code_id)
                        .values(assigned_at=None, subscription_id=None, push_id=None)
                        .execution_options(synchronize_session=False))


def counts(session: orm.Session, shop_id: int, kind: str) -> dict[str, int]:
    """``{"remaining", "assigned"}`` list codes of one kind."""
    rows = dict(session.execute(
        sa.select(CouponCode.assigned_at.is_(None), sa.func.count())
        .where(CouponCode.shop_id == shop_id, CouponCode.kind == kind)
        .group_by(CouponCode.assigned_at.is_(None))).all())
    return {"remaining": int(rows.get(True, 0)), "assigned": int(rows.get(False, 0))}
