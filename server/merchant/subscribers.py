"""Portable subscribers: a shop's live subscriptions as JSON lines, out of one Pushcart and into
another (or in from another push service, given its VAPID key pair).

A subscriber line: ``{"endpoint", "keys": {"p256dh", "auth"}, "visitor", "locale", "zone",
"created", "last_seen", "vapid_public_key"}`` (``vapid_public_key``: the key the browser
subscribed with, which its pushes must be signed with). With the key pairs, the file starts
with one line per key those subscriptions use: ``{"vapid": {"public_key", "private_key",
"current"}}`` (``private_key`` as PEM; ``current``: the shop's current key).

Importing upserts by endpoint (running it twice changes nothing) and keeps each subscription's
key: the key pairs in the file (or the one given) become keys of the shop, the one marked
current (or given) its current key, so widgets need not re-subscribe. Nothing is announced to
the presets: an imported subscriber gets no welcome push.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import AwareDatetime, BaseModel, ConfigDict, StringConstraints, ValidationError
from sqlalchemy import orm

from server.collect.events import VisitorKey
from server.collect.subscriptions import KeysIn, check_keys, endpoint_hash
from server.core.fields import Locale, ReportedZone
from server.core.db import in_ids
from server.core.errors import Invalid
from server.core.models import Shop, Subscription, SubscriptionStatus, VapidKey, VapidKeyStatus, Visitor
from server.core.vapid_keys import adopt, current_key, key_by_public, pair_from_pem
from server.delivery.endpoints import MAX_ENDPOINT_LENGTH, check_endpoint

log = logging.getLogger(__name__)

LIVE = SubscriptionStatus.ACTIVE.value
PublicKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{80,100}$")]


class VapidIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    public_key: PublicKey
    private_key: Annotated[str, StringConstraints(min_length=1, max_length=10_000)]
    current: bool = False


class KeyLine(BaseModel):
    model_config = ConfigDict(extra="forbid")
    vapid: VapidIn


class SubscriberLine(BaseModel):
    model_config = ConfigDict(extra="ignore")
    endpoint: Annotated[str, StringConstraints(min_length=1, max_length=MAX_ENDPOINT_LENGTH)]
    keys: KeysIn
    visitor: VisitorKey
    locale: Locale | None = None
    zone: ReportedZone = None
    created: AwareDatetime | None = None
    last_seen: AwareDatetime | None = None
    vapid_public_key: PublicKey | None = None


def export_lines(session: orm.Session, shop: Shop, instance_pem: str, *, with_vapid: bool) -> Iterator[dict[str, Any]]:
    """The shop's live subscriptions as export lines, oldest first; with ``with_vapid`` first the
    key pairs they were made with and the shop's current one (``instance_pem``: the instance
    key's PEM, for those made with it)."""
    instance_public, instance_pkcs8 = pair_from_pem(instance_pem)
    current = current_key(session, shop.id)
    keys = {k.id: k for k in session.scalars(sa.select(VapidKey).where(VapidKey.shop_id == shop.id))}
    if with_vapid:
        used = set(session.scalars(sa.select(Subscription.vapid_key_id).where(
            Subscription.shop_id == shop.id, Subscription.status == LIVE).distinct()))
        used.add(current.id if current is not None else None)  # so the new instance keeps it current
        for key_id in sorted(used, key=lambda i: (i is not None, i or 0)):
            if key_id is None:
                yield {"vapid": {"public_key": instance_public, "private_key": instance_pkcs8, "current": current is None}}
            else:
                key = keys[key_id]
                yield {"vapid": {"public_key": key.public_key, "private_key": key.private_key_pem,
                                 "current": current is not None and current.id == key.id}}
    rows = session.execute(
        sa.select(Subscription, Visitor.visitor_key).join(Visitor, Visitor.id == Subscription.visitor_id)
        .where(Subscription.shop_id == shop.id, Subscription.status == LIVE).order_by(Subscription.id)
        .execution_options(yield_per=1000))
    for sub, visitor_key in rows:
        yield {"endpoint": sub.endpoint, "keys": {"p256dh": sub.p256dh, "auth": sub.auth}, "visitor": visitor_key,
               "locale": sub.locale, "zone": sub.timezone, "created": sub.created_at.isoformat(),
               "last_seen": sub.last_seen_at.isoformat(),
               "vapid_public_key": keys[sub.vapid_key_id].public_key if sub.vapid_key_id else instance_public}


@dataclass
class ImportCounts:
    """What an import did: subscriptions created and updated, key pairs added."""

    created: int = 0
    updated: int = 0
    keys: int = 0

    def as_json(self) -> dict[str, int]:
        """The counts as the command prints them."""
        return asdict(self)


def parse_line(number: int, text: str) -> KeyLine | SubscriberLine | None:
    """One line of an export file (None for a blank one); raises ``Invalid`` naming the line."""
    if not text.strip():
        return None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise Invalid(f"line {number}: not JSON ({exc.msg})", code="invalid_line") from None
    if not isinstance(data, dict):
        raise Invalid(f"line {number}: not a JSON object", code="invalid_line")
    try:
        return KeyLine.model_validate(data) if "vapid" in data else SubscriberLine.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "line"
        raise Invalid(f"line {number}: {where}: {first['msg']}", code="invalid_line") from None


class SubscriberImport:
    """Imports export lines into one shop: ``check`` every line first (nothing written), then
    ``apply`` them in order (the caller commits as it goes; an import run again changes nothing).

    ``instance_public``: this instance's key (subscriptions made with it need no key pair);
    ``given_pem``: a key pair from elsewhere (``--vapid-private-key``), for lines that name no key
    or name it; it becomes the shop's current key.
    """

    def __init__(self, shop: Shop, instance_public: str, config: Mapping[str, Any], now: datetime,
                 given_pem: str | None = None) -> None:
        self.shop = shop
        self.instance_public = instance_public
        self.config = config
        self.now = now
        self.given = pair_from_pem(given_pem) if given_pem is not None else None
        self.counts = ImportCounts()
        self._known: set[str] = {instance_public}  # keys a subscriber line may name
        self._key_ids: dict[str, int | None] = {instance_public: None}

    def check(self, session: orm.Session, number: int, text: str) -> None:
        """Validate one line (its endpoint against the push-host policy, its keys, its VAPID key); raises ``Invalid``."""
        line = parse_line(number, text)
        if line is None:
            return
        if isinstance(line, KeyLine):
            try:
                public, _ = pair_from_pem(line.vapid.private_key)
            except Invalid as exc:
                raise Invalid(f"line {number}: vapid.private_key: {exc.message}", code="invalid_line") from None
            if public != line.vapid.public_key:
                raise Invalid(f"line {number}: vapid.public_key is not the private key's", code="invalid_line")
            self._known.add(public)
            return
        try:
            check_endpoint(line.endpoint, self.config)
            check_keys(line.keys.p256dh, line.keys.auth)
        except Invalid as exc:
            raise Invalid(f"line {number}: {exc.message}", code="invalid_line") from None
        key = self._key_of(line)
        if key is None:
            raise Invalid(f"line {number}: no VAPID key: pass the key pair it was made with (--vapid-private-key)",
                          code="invalid_line")
        if key in self._known or (self.given and key == self.given[0]):
            return
        self._known.add(key)  # looked up (and reported) once
        if key_by_public(session, self.shop.id, key) is None:
            raise Invalid(f"line {number}: made with VAPID key {key[:12]}..., which this instance does not have: "
                          "export with --with-vapid or pass --vapid-private-key", code="invalid_line")

    def _key_of(self, line: SubscriberLine) -> str | None:
        return line.vapid_public_key or (self.given[0] if self.given else None)

    def start(self, session: orm.Session) -> None:
        """Add the given key pair (as the shop's current key) before any line."""
        if self.given is not None:
            self._adopt(session, self.given[1], current=True)

    def _adopt(self, session: orm.Session, pem: str, *, current: bool) -> int | None:
        public, _ = pair_from_pem(pem)
        if public == self.instance_public:
            return None
        before = key_by_public(session, self.shop.id, public)
        key = adopt(session, self.shop, pem, self.now,
                    status=VapidKeyStatus.ACTIVE.value if current else VapidKeyStatus.RETIRING.value)
        if before is None:
            self.counts.keys += 1
        if current and key.status != VapidKeyStatus.ACTIVE.value:
            key.status, key.retired_at = VapidKeyStatus.ACTIVE.value, None
        if current:  # the shop's only active key: its current one
            for other in session.scalars(sa.select(VapidKey).where(
                    VapidKey.shop_id == self.shop.id, VapidKey.status == VapidKeyStatus.ACTIVE.value,
                    VapidKey.id != key.id)):
                other.status = VapidKeyStatus.RETIRING.value
        self._key_ids[public] = key.id
        return key.id

    def _key_id(self, session: orm.Session, public: str) -> int | None:
        if public not in self._key_ids:
            found = key_by_public(session, self.shop.id, public)
            if found is None:
                raise Invalid(f"no key pair for VAPID key {public[:12]}...", code="invalid_line")
            self._key_ids[public] = found.id
        return self._key_ids[public]

    def apply(self, session: orm.Session, numbered: list[tuple[int, str]]) -> None:
        """Write a run of (checked) lines: key pairs, and subscriptions upserted by endpoint, with
        a few queries for the whole run (its visitors and known endpoints), not a few per line."""
        subs: list[SubscriberLine] = []
        for number, text in numbered:
            line = parse_line(number, text)
            if isinstance(line, KeyLine):
                self._adopt(session, line.vapid.private_key, current=line.vapid.current and self.given is None)
            elif line is not None:
                subs.append(line)
        if not subs:
            return
        visitors = self._visitors(session, {line.visitor for line in subs})
        endpoints = [check_endpoint(line.endpoint, self.config) for line in subs]
        known = {sub.endpoint_hash: sub for sub in session.scalars(sa.select(Subscription).where(
            Subscription.shop_id == self.shop.id,
            in_ids(Subscription.endpoint_hash, {endpoint_hash(e) for e in endpoints}, session, sa.String)))}
        for line, endpoint in zip(subs, endpoints):
            public = self._key_of(line)
            assert public is not None  # ``check`` refused such a line
            fields = dict(visitor_id=visitors[line.visitor], p256dh=line.keys.p256dh, auth=line.keys.auth,
                          locale=line.locale, timezone=line.zone, last_seen_at=line.last_seen or self.now,
                          vapid_key_id=self._key_id(session, public))
            digest = endpoint_hash(endpoint)
            sub = known.get(digest)
            if sub is None:
                sub = known[digest] = Subscription(shop_id=self.shop.id, endpoint=endpoint, endpoint_hash=digest,
                                                   status=LIVE, created_at=line.created or self.now, **fields)
                session.add(sub)
                self.counts.created += 1
                continue
            changed = sub.status != LIVE or any(getattr(sub, k) != v for k, v in fields.items() if k != "last_seen_at")
            for name, value in fields.items():
                setattr(sub, name, value)
            sub.status, sub.ended_at = LIVE, None
            if changed:
                self.counts.updated += 1
        session.flush()

    def _visitors(self, session: orm.Session, keys: set[str]) -> dict[str, int]:
        """The shop's visitor ids for these visitor keys, creating the missing visitors."""
        found = dict(session.execute(sa.select(Visitor.visitor_key, Visitor.id).where(
            Visitor.shop_id == self.shop.id, in_ids(Visitor.visitor_key, keys, session, sa.String))).all())
        missing = [Visitor(shop_id=self.shop.id, visitor_key=key, first_seen_at=self.now)
                   for key in sorted(keys - found.keys())]
        if missing:
            session.add_all(missing)
            session.flush()
            found.update((v.visitor_key, v.id) for v in missing)
        return found
