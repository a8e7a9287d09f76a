"""Staff accounts: users with argon2-hashed passwords, revocable dashboard sessions, invitations.

Plain functions that take a session and ``now`` and raise domain errors; the dashboard's door
(``doors``) and its team pages (``pages/team.py``) are their HTTP faces, the ``users`` command
their command-line one. Every random value a browser carries (a session id, an invitation
token) is kept only as its SHA-256: a database leak opens no session and accepts no invitation.
"""
from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import orm

from server.core.errors import ApiError, Invalid, NotFound
from server.core.models import DashboardSession, Invitation, Shop, StaffRole, User

ROLES = tuple(role.value for role in StaffRole)
ROLE_LABELS = {"owner": "Owner", "marketer": "Marketer"}
MIN_PASSWORD = 10
MAX_PASSWORD = 200
INVITATION_DAYS = 7
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+$")
# argon2id with the library's defaults (RFC 9106's second recommended set).
_HASHER = PasswordHasher()


@cache
def _unknown_user_hash() -> str:
    """Verified when the e-mail is unknown, so a wrong address costs as long as a wrong password.
    Made at the first such log-in, not at import: a hash takes argon2's 64 MiB and some 0.1 s,
    which every worker and command process would otherwise pay at start."""
    return _HASHER.hash(secrets.token_urlsafe(16))


def _digest(raw: str) -> str:
    """SHA-256 hex of a random value (a session id, an invitation token): random, so no salt is needed."""
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def normalize_email(raw: str) -> str:
    """The e-mail address as stored (trimmed, lower case); raises Invalid when it is none."""
    email = (raw or "").strip().lower()
    if len(email) > 254 or not _EMAIL.match(email):
        raise Invalid("enter an e-mail address such as ana@shop.example", code="invalid_email")
    return email


def check_role(role: str) -> str:
    """``role`` when it is one of ``ROLES``; raises Invalid."""
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}", code="invalid_role")
    return role


def hash_password(password: str) -> str:
    """The argon2id hash of a new password; raises Invalid when it is too short or too long."""
    if len(password) < MIN_PASSWORD:
        raise Invalid(f"a password has at least {MIN_PASSWORD} characters", code="weak_password")
    if len(password) > MAX_PASSWORD:
        raise Invalid(f"a password has at most {MAX_PASSWORD} characters", code="invalid_password")
    return _HASHER.hash(password)


def new_password() -> str:
    """A generated password (printed once by the ``users`` command)."""
    return secrets.token_urlsafe(15)


def user_by_email(session: orm.Session, email: str) -> User | None:
    """The account with this e-mail address, or None."""
    return session.scalars(sa.select(User).where(User.email == email)).one_or_none()


def create_user(session: orm.Session, shop: Shop, email: str, role: str, password: str, now: datetime) -> User:
    """A new account of ``shop``; raises Invalid for a bad address, role or password, and
    ApiError (409 ``email_taken``) when the address has an account already."""
    email = normalize_email(email)
    check_role(role)
    if user_by_email(session, email) is not None:
        raise ApiError(f"{email} already has an account", code="email_taken", status=409)
    user = User(shop_id=shop.id, email=email, password_hash=hash_password(password), role=role, created_at=now)
    session.add(user)
    session.flush()
    return user


def authenticate(session: orm.Session, email: str, password: str, now: datetime) -> User | None:
    """The account whose e-mail and password these are, or None. A hash made with weaker
    parameters than today's is replaced on the way."""
    user = user_by_email(session, (email or "").strip().lower()[:254])
    try:
        _HASHER.verify(user.password_hash if user else _unknown_user_hash(), password[:MAX_PASSWORD])
    except (VerificationError, InvalidHashError):
        return None
    if user is None:
        return None
    if _HASHER.check_needs_rehash(user.password_hash):
        user.password_hash = _HASHER.hash(password)
    user.last_login_at = now
    return user


# --- sessions -------------------------------------------------------------------------------

def open_session(session: orm.Session, shop_id: int, user_id: int | None, now: datetime,
                 lasts: timedelta) -> str:
    """Start a dashboard session and return its random id (for the cookie; only its hash is kept)."""
    raw = secrets.token_urlsafe(32)
    session.add(DashboardSession(shop_id=shop_id, user_id=user_id, id_hash=_digest(raw), created_at=now,
                                 last_seen_at=now, expires_at=now + lasts))
    session.flush()
    return raw


def find_session(session: orm.Session, raw: str, now: datetime) -> DashboardSession | None:
    """The live session with this id (its last use noted once a minute), or None: unknown,
    revoked or expired (an expired one is deleted)."""
    if not raw or len(raw) > 100:
        return None
    row = session.scalars(sa.select(DashboardSession).where(DashboardSession.id_hash == _digest(raw))).one_or_none()
    if row is None:
        return None
    if row.expires_at <= now:
        session.delete(row)
        return None
    if now - row.last_seen_at > timedelta(minutes=1):
        row.last_seen_at = now
    return row


def end_session(session: orm.Session, raw: str) -> None:
    """Log one session out (the browser's own log-out)."""
    if raw:
        session.execute(sa.delete(DashboardSession).where(DashboardSession.id_hash == _digest(raw)))


def end_user_sessions(session: orm.Session, shop_id: int, user_id: int | None) -> int:
    """Log every session of one user of ``shop_id`` out (``None``: the admin token's log-ins);
    return how many there were."""
    who = DashboardSession.user_id.is_(None) if user_id is None else DashboardSession.user_id == user_id
    result = session.execute(sa.delete(DashboardSession).where(DashboardSession.shop_id == shop_id, who))
    return int(result.rowcount or 0)


def session_counts(session: orm.Session, shop_id: int, now: datetime) -> dict[int | None, int]:
    """Live sessions per user of ``shop_id`` (``None``: admin token log-ins)."""
    rows = session.execute(sa.select(DashboardSession.user_id, sa.func.count())
                           .where(DashboardSession.shop_id == shop_id, DashboardSession.expires_at > now)
                           .group_by(DashboardSession.user_id))
    return {user_id: count for user_id, count in rows}


# --- the team -------------------------------------------------------------------------------

def member(session: orm.Session, shop_id: int, user_id: int) -> User:
    """The account ``user_id`` of ``shop_id``; raises NotFound (another shop's account too)."""
    user = session.scalars(sa.select(User).where(User.id == user_id, User.shop_id == shop_id)).one_or_none()
    if user is None:
        raise NotFound("no such team member", code="unknown_user")
    return user


def list_members(session: orm.Session, shop_id: int) -> list[User]:
    """The shop's accounts: owners first, then by e-mail."""
    return list(session.scalars(sa.select(User).where(User.shop_id == shop_id)
                                .order_by(sa.case((User.role == "owner", 0), else_=1), User.email)))


def _owners(session: orm.Session, shop_id: int) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(User)
                          .where(User.shop_id == shop_id, User.role == StaffRole.OWNER.value)) or 0


def change_role(session: orm.Session, shop_id: int, user_id: int, role: str) -> tuple[User, str]:
    """Give a member another role; return the member and the role before. Raises Invalid
    (``last_owner``) when that would leave the shop without an owner."""
    user, role = member(session, shop_id, user_id), check_role(role)
    before = user.role
    if before == "owner" and role != "owner" and _owners(session, shop_id) <= 1:
        raise Invalid("the shop's last owner stays an owner: make someone else an owner first", code="last_owner")
    user.role = role
    return user, before


def remove_member(session: orm.Session, shop_id: int, user_id: int) -> User:
    """Delete a member's account and with it every session it has; raises Invalid
    (``last_owner``) for the shop's last owner."""
    user = member(session, shop_id, user_id)
    if user.role == "owner" and _owners(session, shop_id) <= 1:
        raise Invalid("the shop's last owner cannot be removed", code="last_owner")
    end_user_sessions(session, shop_id, user.id)
    session.delete(user)
    session.flush()
    return user


# --- invitations ----------------------------------------------------------------------------

@dataclass(frozen=True)
class NewInvitation:
    """An invitation and its token (shown once, in the link the owner sends)."""

    invitation: Invitation
    token: str


def invite(session: orm.Session, shop: Shop, email: str, role: str, invited_by: str, now: datetime) -> NewInvitation:
    """Invite ``email`` to the shop's team with ``role``, valid ``INVITATION_DAYS``; an open
    invitation to the same address is replaced. Raises Invalid for a bad address or role and
    ApiError (409 ``email_taken``) when the address has an account already."""
    email, role = normalize_email(email), check_role(role)
    if user_by_email(session, email) is not None:
        raise ApiError(f"{email} already has an account", code="email_taken", status=409)
    session.execute(sa.update(Invitation)
                    .where(Invitation.shop_id == shop.id, Invitation.email == email,
                           Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None))
                    .values(revoked_at=now))
    token = secrets.token_urlsafe(32)
    invitation = Invitation(shop_id=shop.id, email=email, role=role, token_hash=_digest(token), invited_by=invited_by,
                            created_at=now, expires_at=now + timedelta(days=INVITATION_DAYS))
    session.add(invitation)
    session.flush()
    return NewInvitation(invitation, token)


def pending_invitations(session: orm.Session, shop_id: int, now: datetime) -> list[Invitation]:
    """The shop's invitations not accepted, revoked or expired, newest first."""
    return list(session.scalars(sa.select(Invitation)
                                .where(Invitation.shop_id == shop_id, Invitation.accepted_at.is_(None),
                                       Invitation.revoked_at.is_(None), Invitation.expires_at > now)
                                .order_by(Invitation.created_at.desc(), Invitation.id.desc())))


def open_invitation(session: orm.Session, token: str, now: datetime) -> Invitation:
    """The invitation this link's token names; raises NotFound (``invalid_invitation``) when
    it is unknown, used, revoked or expired (one message for all: the link is no good)."""
    row = None
    if token and len(token) <= 100:
        row = session.scalars(sa.select(Invitation).where(Invitation.token_hash == _digest(token))).one_or_none()
    if row is None or row.accepted_at is not None or row.revoked_at is not None or row.expires_at <= now:
        raise NotFound("this invitation link is not valid any more: ask the shop's owner for a new one",
                       code="invalid_invitation")
    return row


def accept_invitation(session: orm.Session, token: str, password: str, now: datetime) -> User:
    """Create the invitee's account with ``password`` and use the invitation up; raises
    NotFound for a link that is no good, Invalid for a weak password, ApiError (409) when the
    address got an account meanwhile."""
    invitation = open_invitation(session, token, now)
    # Used up in the same statement that checks it is open: two tabs accepting at once make one account.
    used = session.execute(sa.update(Invitation)
                           .where(Invitation.id == invitation.id, Invitation.accepted_at.is_(None))
                           .values(accepted_at=now))
    if not used.rowcount:
        raise NotFound("this invitation link is not valid any more", code="invalid_invitation")
    shop = session.get(Shop, invitation.shop_id)
    assert shop is not None
    user = create_user(session, shop, invitation.email, invitation.role, password, now)
    user.last_login_at = now
    return user


def revoke_invitation(session: orm.Session, shop_id: int, invitation_id: int, now: datetime) -> Invitation:
    """Revoke a pending invitation of ``shop_id``; raises NotFound."""
    row = session.scalars(sa.select(Invitation).where(Invitation.id == invitation_id, Invitation.shop_id == shop_id,
                                                      Invitation.accepted_at.is_(None),
                                                      Invitation.revoked_at.is_(None))).one_or_none()
    if row is None:
        raise NotFound("no such pending invitation", code="unknown_invitation")
    row.revoked_at = now
    return row
