"""A shop's preset settings: listing, changing, and template errors caught when saved."""
from __future__ import annotations

from datetime import timedelta

import pytest

from server.core.errors import Invalid, NotFound
from server.core.models import KINDS, Push, PushStatus
from server.outbox import plan as outbox
from server.merchant.presets import list_presets, update_preset
from tests.factories import make_subscription, make_visitor


def test_list_presets_gives_the_five_kinds_in_the_contract_shape(session, shop):
    presets = list_presets(session, shop)
    assert [p["kind"] for p in presets] == list(KINDS)
    for preset in presets:
        extra = {"steps"} if preset["kind"] == "checkout_recovery" else set()
        assert set(preset) == {"kind", "enabled", "delays", "title", "body", "icon", "image", "url",
                               "actions", "locales"} | extra
        assert preset["enabled"] is True
        assert preset["title"]
    by_kind = {p["kind"]: p for p in presets}
    assert by_kind["checkout_recovery"]["delays"] == [3600]
    assert by_kind["browse_abandonment"]["delays"] == [86400]
    assert by_kind["repurchase"]["delays"] == [7 * 86400]


def test_update_changes_only_the_given_fields(session, shop, clock):
    result = update_preset(session, shop, "checkout_recovery",
                           {"delays": [1800, 21600, 172800], "title": "Still there, {{ first_name }}?"},
                           clock.now())
    assert result["delays"] == [1800, 21600, 172800]
    assert result["title"] == "Still there, {{ first_name }}?"
    again = {p["kind"]: p for p in list_presets(session, shop)}["checkout_recovery"]
    assert again == result
    assert again["body"].startswith("Finish checking out")


@pytest.mark.parametrize("changes, fragment", [
    ({"title": "{{ shop_name "}, "title"),
    ({"body": "{% for %}"}, "body"),
    ({"url": "javascript:alert(1)"}, "url"),
    ({"image": "{{ product_title }}"}, "image"),
    ({"body": "{{ 'x' * 10**9 }}"}, "body: template limit"),
    ({"title": "{{ 2.0 ** 100000 }}"}, "title: OverflowError"),
    ({"url": "{{ range(10**9)|list }}"}, "url: template limit"),
    ({"body": "{% for a in range(100) %}{% for b in range(100) %}{% endfor %}{% endfor %}"}, "body: template limit"),
    ({"title": ""}, "title"),
    ({"delays": []}, "delays"),
    ({"delays": [3600, 1800]}, "delays"),
    ({"delays": [-1]}, "delays"),
    ({"delays": [1, 2, 3, 4, 5, 6]}, "delays"),
    ({"delays": ["3600"]}, "delays"),
    ({"enabled": "no"}, "enabled"),
    ({"colour": "red"}, "colour"),
])
def test_bad_changes_are_refused_and_nothing_changes(session, shop, clock, changes, fragment):
    before = {p["kind"]: p for p in list_presets(session, shop)}["checkout_recovery"]
    with pytest.raises(Invalid) as caught:
        update_preset(session, shop, "checkout_recovery", changes, clock.now())
    assert fragment in caught.value.message
    after = {p["kind"]: p for p in list_presets(session, shop)}["checkout_recovery"]
    assert after == before


def test_what_get_gave_can_be_put_back(session, shop, clock):
    preset = {p["kind"]: p for p in list_presets(session, shop)}["shipped"]
    assert update_preset(session, shop, "shipped", {**preset, "enabled": False}, clock.now())["enabled"] is False
    with pytest.raises(Invalid):
        update_preset(session, shop, "shipped", {**preset, "kind": "welcome"}, clock.now())


def test_single_push_kinds_take_one_delay(session, shop, clock):
    with pytest.raises(Invalid):
        update_preset(session, shop, "repurchase", {"delays": [86400, 2 * 86400]}, clock.now())
    assert update_preset(session, shop, "repurchase", {"delays": [3 * 86400]}, clock.now())["delays"] == [3 * 86400]


def test_unknown_kind_is_not_found(session, shop, clock):
    with pytest.raises(NotFound):
        update_preset(session, shop, "birthday", {"enabled": False}, clock.now())


def test_disabling_a_kind_cancels_its_pending_pushes_only(session, shop, clock):
    visitor = make_visitor(session, shop.id, clock.now())
    sub = make_subscription(session, visitor, clock.now())
    for kind in ("repurchase", "shipped"):
        outbox.plan(session, outbox.PlannedPush(
            shop_id=shop.id, kind=kind, subscription_id=sub.id, visitor_id=visitor.id,
            dedupe_key=f"{kind}:1:{sub.id}", group_key=f"{kind}:1", due_at=clock.now() + timedelta(days=1),
            rendered=outbox.Rendered(title="t", body="b", url="https://shop.example/")), clock.now())
    update_preset(session, shop, "repurchase", {"enabled": False}, clock.now())
    statuses = {p.kind: p.status for p in session.query(Push)}
    assert statuses == {"repurchase": PushStatus.CANCELLED.value, "shipped": PushStatus.PENDING.value}


def test_checkout_steps_round_trip_and_are_validated(session, shop, clock):
    assert {p["kind"]: p for p in list_presets(session, shop)}["checkout_recovery"]["steps"] == []
    steps = [{}, {"title": "Still there, {{ first_name }}?", "body": "Your {{ product_title }} is waiting"}]
    result = update_preset(session, shop, "checkout_recovery", {"delays": [1800, 86400], "steps": steps},
                           clock.now())
    assert result["steps"] == [{"title": "", "body": ""},
                               {"title": "Still there, {{ first_name }}?", "body": "Your {{ product_title }} is waiting"}]
    assert {p["kind"]: p for p in list_presets(session, shop)}["checkout_recovery"] == result
    for bad, fragment in [
        ([{"title": "{{ oops "}], "steps.0.title"),
        ([{}, {"body": "{{ 'x' * 10**9 }}"}], "steps.1.body: template limit"),
        ([{}] * 6, "steps"),
        ([{"url": "https://x.example/"}], "steps"),
        (["hello"], "steps"),
    ]:
        with pytest.raises(Invalid) as caught:
            update_preset(session, shop, "checkout_recovery", {"steps": bad}, clock.now())
        assert fragment in caught.value.message, bad
    with pytest.raises(Invalid) as caught:
        update_preset(session, shop, "repurchase", {"steps": [{}]}, clock.now())
    assert "steps" in caught.value.message
    with pytest.raises(Invalid) as caught:
        update_preset(session, shop, "checkout_recovery", {"steps": [{}, {}, {}]}, clock.now())
    assert "steps: at most one per delay" in caught.value.message
