"""The registry of push kinds (``server/core/kinds.py``) is the one place a kind is described."""
from __future__ import annotations

from server.core import kinds
from server.core.models import ALERT_KINDS, ALL_KINDS, KINDS, TRANSACTIONAL_KINDS, PushKind
from server.planning.recipients import DELIVERY
from server.planning.defaults import DEFAULTS


def test_the_models_kinds_are_the_registrys():
    assert KINDS == tuple(k.value for k in PushKind)  # the preset kinds, in the enum's order
    assert ALL_KINDS == KINDS + ("campaign",)
    assert ALERT_KINDS == ("back_in_stock", "price_drop")
    assert TRANSACTIONAL_KINDS == {"shipped"}  # the only kind exempt from the cap and quiet hours


def test_every_kind_is_described_whole():
    for name, kind in kinds.REGISTRY.items():
        assert kind.name == name and kind.label
        assert kind.urgency in ("very-low", "low", "normal", "high")
        assert 0 < kind.ttl <= 28 * 86400  # push services keep a message four weeks at most
        assert DELIVERY[name] == (kind.ttl, kind.urgency)
        assert (name in DEFAULTS) == kind.preset, f"{name}: default texts exactly for the preset kinds"
