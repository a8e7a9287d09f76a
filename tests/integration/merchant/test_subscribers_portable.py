"""Portable subscribers: ``subscribers export`` on one instance and ``subscribers import`` on
another (its own database and instance key) deliver to the same ``web-push-testing``
subscriptions, each push signed with the key its subscription was made with."""
from __future__ import annotations

import json
import os
import stat

import pytest
import sqlalchemy as sa

from server.core.db import Base, session_scope
from server.core.models import Shop, Subscription, VapidKey
from server.core.vapid_keys import current_key, new_pair, rotate
from server.delivery.push.vapid import get_vapid, init_keys, public_key_b64
from server.delivery.runtime import close_delivery, get_dispatcher
from server.merchant.shop_admin import create_shop
from tests.factories import browser_keys, make_push, make_shop, make_subscription, make_visitor


@pytest.fixture
def app_config(app_config):
    app_config.update(PUSHCART_INSECURE_ENDPOINTS=True)
    return app_config


@pytest.fixture
def other(make_app, app_config, tmp_path, clock):
    """A second instance: its own SQLite database and its own instance key, and a shop there."""
    url = f"sqlite:///{tmp_path / 'other.db'}"
    engine = sa.create_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()
    key_file = tmp_path / "other_vapid.pem"
    init_keys(key_file)
    application = make_app({**app_config, "DATABASE_URL": url, "VAPID_PRIVATE_KEY_FILE": str(key_file),
                            "INSTANCE_PATH": str(tmp_path / "other_instance")})
    with application.app_context(), session_scope() as session:
        application.config["TEST_SHOP"] = create_shop(session, "Moved Shop", ["https://shop.example"], clock.now()).shop.public_key
    yield application
    close_delivery(application)


def subscriber(session, shop, clock, web_push_testing, public_key, vapid_key_id, visitor_key):
    data = web_push_testing.subscribe(public_key)
    visitor = make_visitor(session, shop.id, clock.now(), visitor_key=visitor_key)
    make_subscription(session, visitor, clock.now(), endpoint=data["endpoint"], keys=data["keys"],
                      vapid_key_id=vapid_key_id, locale="de-DE", timezone="Europe/Berlin")
    return data["clientHash"]


def test_a_round_trip_between_two_instances_delivers_to_the_same_subscriptions(
        app, runner, session, clock, web_push_testing, other, tmp_path):
    shop = make_shop(session, clock.now()).shop
    on_instance = subscriber(session, shop, clock, web_push_testing, public_key_b64(get_vapid(app)), None, "visitor_a")
    key = rotate(session, shop, clock.now())
    on_shop_key = subscriber(session, shop, clock, web_push_testing, key.public_key, key.id, "visitor_b")
    gone = make_subscription(session, make_visitor(session, shop.id, clock.now()), clock.now(), status="expired")
    session.commit()
    path = tmp_path / "export.jsonl"

    exported = runner.invoke(args=["subscribers", "export", "--shop", shop.public_key, "--with-vapid", "-o", str(path)])

    assert exported.exit_code == 0, exported.output
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [("vapid" in line) for line in lines] == [True, True, False, False]  # the keys first; live ones only
    assert gone.endpoint not in path.read_text()
    assert {line["visitor"] for line in lines[2:]} == {"visitor_a", "visitor_b"}
    assert set(lines[3]) == {"endpoint", "keys", "visitor", "locale", "zone", "created", "last_seen", "vapid_public_key"}

    target = other.config["TEST_SHOP"]
    imported = other.test_cli_runner().invoke(args=["subscribers", "import", "--shop", target, str(path)])
    assert imported.exit_code == 0, imported.output
    assert json.loads(imported.output) == {"created": 2, "updated": 0, "keys": 2}
    again = other.test_cli_runner().invoke(args=["subscribers", "import", "--shop", target, str(path)])
    assert json.loads(again.output) == {"created": 0, "updated": 0, "keys": 0}  # idempotent

    with other.app_context(), session_scope() as there:
        moved = there.scalars(sa.select(Shop).where(Shop.public_key == target)).one()
        assert current_key(there, moved.id).public_key == key.public_key  # widgets need not re-subscribe
        subs = list(there.scalars(sa.select(Subscription)))
        assert {(s.locale, s.timezone) for s in subs} == {("de-DE", "Europe/Berlin")}
        for sub in subs:
            make_push(there, sub, clock.now(), kind="shipped")
    counts = get_dispatcher(other).run_pass()
    assert counts.sent == 2
    assert len(web_push_testing.notifications(on_instance)) == 1
    assert len(web_push_testing.notifications(on_shop_key)) == 1


def test_an_import_from_another_service_takes_its_key_pair(app, session, clock, web_push_testing, runner, tmp_path):
    public, pem = new_pair()  # the other service's VAPID key
    data = web_push_testing.subscribe(public)
    pem_file = tmp_path / "their_key.pem"
    pem_file.write_text(pem)
    path = tmp_path / "theirs.jsonl"
    path.write_text(json.dumps({"endpoint": data["endpoint"], "keys": data["keys"], "visitor": "their_visitor_1"}) + "\n")
    shop = make_shop(session, clock.now()).shop
    session.commit()

    result = runner.invoke(args=["subscribers", "import", "--shop", shop.public_key,
                                 "--vapid-private-key", str(pem_file), str(path)])

    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"created": 1, "updated": 0, "keys": 1}
    session.expire_all()
    [sub] = session.scalars(sa.select(Subscription))
    assert session.get(VapidKey, sub.vapid_key_id).public_key == public == current_key(session, shop.id).public_key
    make_push(session, sub, clock.now(), kind="shipped")
    session.commit()
    assert get_dispatcher(app).run_pass().sent == 1
    close_delivery(app)
    assert len(web_push_testing.notifications(data["clientHash"])) == 1


def test_malformed_lines_are_named_and_nothing_is_imported(app, session, clock, runner, tmp_path):
    shop = make_shop(session, clock.now()).shop
    session.commit()
    good = {"endpoint": "https://fcm.googleapis.com/fcm/send/ok", "visitor": "visitor_0001",
            "keys": browser_keys(), "vapid_public_key": public_key_b64(get_vapid(app))}
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join([json.dumps(good), "{not json", json.dumps({**good, "visitor": None}), "",
                               json.dumps({**good, "endpoint": "http://10.0.0.1/push"}),
                               json.dumps({**good, "vapid_public_key": "B" + "x" * 86})]) + "\n")

    result = runner.invoke(args=["subscribers", "import", "--shop", shop.public_key, str(path)])

    assert result.exit_code != 0
    assert "line 2: not JSON" in result.output and "line 3: visitor" in result.output
    assert "line 5:" in result.output and "line 6: made with VAPID key" in result.output
    assert "line 1" not in result.output and "line 4" not in result.output
    session.expire_all()
    assert session.scalar(sa.select(sa.func.count()).select_from(Subscription)) == 0


def test_private_keys_go_to_a_file_only(app, session, clock, runner, tmp_path):
    shop = make_shop(session, clock.now()).shop
    session.commit()
    refused = runner.invoke(args=["subscribers", "export", "--shop", shop.public_key, "--with-vapid"])
    assert refused.exit_code != 0 and "-o" in refused.output
    path = tmp_path / "lax.jsonl"
    path.write_text("")
    os.chmod(path, 0o644)  # an existing file is made private too
    assert runner.invoke(args=["subscribers", "export", "--shop", shop.public_key, "-o", str(path)]).exit_code == 0
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_the_shops_current_key_is_exported_even_before_anyone_uses_it(app, session, clock, runner, tmp_path):
    shop = make_shop(session, clock.now()).shop
    make_subscription(session, make_visitor(session, shop.id, clock.now()), clock.now())  # on the instance key
    key = rotate(session, shop, clock.now())
    session.commit()
    path = tmp_path / "export.jsonl"
    assert runner.invoke(args=["subscribers", "export", "--shop", shop.public_key, "--with-vapid",
                               "-o", str(path)]).exit_code == 0
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    keys = [line["vapid"] for line in lines if "vapid" in line]
    assert [(k["public_key"], k["current"]) for k in keys] == [(public_key_b64(get_vapid(app)), False),
                                                              (key.public_key, True)]


def test_an_import_reuses_known_visitors_and_takes_a_repeated_endpoints_last_line(app, session, clock, runner, tmp_path):
    from server.core.models import Visitor

    shop = make_shop(session, clock.now()).shop
    known = make_visitor(session, shop.id, clock.now(), visitor_key="visitor_known")
    session.commit()
    instance = public_key_b64(get_vapid(app))
    line = {"endpoint": "https://fcm.googleapis.com/fcm/send/twice", "keys": browser_keys(), "visitor": "visitor_known",
            "locale": "de-DE", "vapid_public_key": instance}
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in [
        line, {**line, "locale": "fr-FR"},
        {**line, "endpoint": "https://fcm.googleapis.com/fcm/send/other", "visitor": "visitor_new"}]) + "\n")

    result = runner.invoke(args=["subscribers", "import", "--shop", shop.public_key, str(path)])

    assert json.loads(result.output) == {"created": 2, "updated": 1, "keys": 0}
    session.expire_all()
    subs = {s.endpoint.rsplit("/", 1)[1]: s for s in session.scalars(sa.select(Subscription))}
    assert subs["twice"].visitor_id == known.id and subs["twice"].locale == "fr-FR"
    assert sorted(session.scalars(sa.select(Visitor.visitor_key))) == ["visitor_known", "visitor_new"]


def test_an_unreadable_key_is_named_not_a_traceback(app, session, clock, runner, tmp_path):
    shop = make_shop(session, clock.now()).shop
    session.commit()
    path = tmp_path / "subs.jsonl"
    path.write_text("")
    not_p256 = tmp_path / "rsa.pem"
    not_p256.write_text("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    given = runner.invoke(args=["subscribers", "import", "--shop", shop.public_key, "--vapid-private-key",
                                str(not_p256), str(path)])
    assert given.exit_code != 0 and isinstance(given.exception, SystemExit), given.exception
    assert "Traceback" not in given.output and "Error:" in given.output
    app.config["VAPID_PRIVATE_KEY_FILE"] = str(not_p256)  # the instance's own key file, damaged
    instance = runner.invoke(args=["subscribers", "import", "--shop", shop.public_key, str(path)])
    assert instance.exit_code != 0 and isinstance(instance.exception, SystemExit), instance.exception
    assert "the instance's VAPID key" in instance.output and "cannot be read" in instance.output
