"""Content of pushes: ``{{ coupon }}`` (fixed and single-use list codes, also under concurrent
planners), per-locale texts, the coupon and preset APIs, and the soft-ask in the visitor's language."""
from __future__ import annotations

import logging
import threading

import pytest
import sqlalchemy as sa

from server.core.db import get_db
from server.core.models import CouponCode, Push, Shop, Subscription, Visitor
from server.planning import content, coupons, welcome
from tests.factories import make_shop, make_subscription, make_visitor


def auth(new):
    return {"Authorization": f"Bearer {new.admin_token}"}


@pytest.fixture
def new(session, clock):
    shop = make_shop(session, clock.now())
    session.commit()
    return shop


def subscribers(session, new, clock, count, **overrides):
    """``count`` visitors with one active subscription each."""
    subs = []
    for _ in range(count):
        visitor = make_visitor(session, new.shop.id, clock.now())
        subs.append(make_subscription(session, visitor, clock.now(), **overrides))
    session.commit()
    return subs


def plan_welcome(session, new, subs, clock):
    shop = session.get(Shop, new.shop.id)
    planned = 0
    for sub in subs:
        planned += welcome.plan(session, shop, session.get(Visitor, sub.visitor_id), sub, clock.now())
    session.commit()
    return planned


def welcome_titles(session):
    session.expire_all()
    return {p.subscription_id: p.title for p in session.scalars(sa.select(Push).where(Push.kind == "welcome"))}


def set_welcome(client, new, **changes):
    response = client.put("/v1/admin/events/welcome", json=changes, headers=auth(new))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


# -- coupons ---------------------------------------------------------------------------------

def test_a_fixed_coupon_is_in_every_push_of_the_kind(client, session, clock, new):
    assert client.put("/v1/admin/coupons/welcome", json={"mode": "fixed", "code": "WELCOME10"},
                      headers=auth(new)).get_json() == {"kind": "welcome", "mode": "fixed", "code": "WELCOME10",
                                                        "remaining": 0, "assigned": 0}
    set_welcome(client, new, title="Hi! Use {{ coupon }}")
    subs = subscribers(session, new, clock, 2)

    assert plan_welcome(session, new, subs, clock) == 2
    assert set(welcome_titles(session).values()) == {"Hi! Use WELCOME10"}


def test_without_a_coupon_source_the_coupon_renders_empty(client, session, clock, new):
    set_welcome(client, new, title="Hello{% if coupon %}, use {{ coupon }}{% endif %}")
    subs = subscribers(session, new, clock, 1)
    assert plan_welcome(session, new, subs, clock) == 1
    assert list(welcome_titles(session).values()) == ["Hello"]


def test_list_codes_go_to_one_push_each_then_the_text_without_a_coupon(client, session, clock, new, caplog):
    upload = client.post("/v1/admin/coupons/welcome/codes", data="AAA-1\n\nBBB_2\nAAA-1\n",
                         headers={**auth(new), "Content-Type": "text/plain"})
    assert upload.status_code == 201
    assert upload.get_json() == {"added": 2, "skipped": 0, "remaining": 2, "assigned": 0}
    again = client.post("/v1/admin/coupons/welcome/codes", json={"codes": ["BBB_2", "CCC"]}, headers=auth(new))
    assert again.get_json() == {"added": 1, "skipped": 1, "remaining": 3, "assigned": 0}
    client.put("/v1/admin/coupons/welcome", json={"mode": "list"}, headers=auth(new))
    set_welcome(client, new, title="{% if coupon %}Your code: {{ coupon }}{% else %}Welcome!{% endif %}")
    subs = subscribers(session, new, clock, 4)

    with caplog.at_level(logging.WARNING, logger="server.planning.coupons"):
        assert plan_welcome(session, new, subs, clock) == 4
    titles = welcome_titles(session)
    assert sorted(titles.values()) == ["Welcome!", "Your code: AAA-1", "Your code: BBB_2", "Your code: CCC"]
    assert "coupon list used up" in caplog.text
    rows = {c.code: c for c in session.scalars(sa.select(CouponCode))}
    pushes = {p.id: p for p in session.scalars(sa.select(Push))}
    for code, row in rows.items():
        assert row.assigned_at == clock.now()
        assert pushes[row.push_id].subscription_id == row.subscription_id
        assert pushes[row.push_id].title == f"Your code: {code}"
    # Planning the same pushes again stores nothing and takes no code.
    client.post("/v1/admin/coupons/welcome/codes", data="DDD\n", headers={**auth(new), "Content-Type": "text/plain"})
    assert plan_welcome(session, new, subs, clock) == 0
    assert client.get("/v1/admin/coupons/welcome", headers=auth(new)).get_json() == {
        "kind": "welcome", "mode": "list", "code": None, "remaining": 1, "assigned": 3}


def test_a_test_push_shows_a_sample_code_and_takes_none_from_the_list(client, session, clock, new):
    from server.merchant import test_devices
    from tests.factories import make_test_device
    client.post("/v1/admin/coupons/welcome/codes", data="REAL-1", headers={**auth(new), "Content-Type": "text/plain"})
    client.put("/v1/admin/coupons/welcome", json={"mode": "list"}, headers=auth(new))
    set_welcome(client, new, title="Code {{ coupon }}")
    make_test_device(session, new.shop.id, clock.now())
    shop = session.get(Shop, new.shop.id)

    content = test_devices.preset_content(session, shop, "welcome")
    assert test_devices.send_to_test_devices(session, shop, content, clock.now()) == 1
    session.commit()
    assert [p.title for p in session.scalars(sa.select(Push).where(Push.kind == "test"))] == ["Code TEST-COUPON"]
    assert client.get("/v1/admin/coupons/welcome", headers=auth(new)).get_json()["remaining"] == 1


def test_a_push_not_stored_gives_its_code_back(session, clock, new):
    session.add(CouponCode(shop_id=new.shop.id, kind="welcome", code="ONLY", created_at=clock.now()))
    session.commit()
    taken = coupons.take_code(session, new.shop.id, "welcome", None, clock.now())
    assert taken.code == "ONLY"
    assert coupons.take_code(session, new.shop.id, "welcome", None, clock.now()) is None
    coupons.attach(session, taken, None)  # its push was a duplicate
    assert coupons.take_code(session, new.shop.id, "welcome", None, clock.now()).code == "ONLY"


def test_two_planners_at_once_never_give_out_the_same_code(app, client, session, clock, new):
    codes = [f"CODE-{i:03d}" for i in range(30)]
    client.post("/v1/admin/coupons/welcome/codes", data="\n".join(codes), headers={**auth(new), "Content-Type": "text/plain"})
    client.put("/v1/admin/coupons/welcome", json={"mode": "list"}, headers=auth(new))
    set_welcome(client, new, title="Code {{ coupon }}")
    subs = subscribers(session, new, clock, 40)
    ids = [s.id for s in subs]
    halves = [ids[0::2], ids[1::2]]
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def planner(sub_ids):
        # Its own connection, as another worker process has; one transaction per plan.
        own = get_db(app).sessionmaker()
        try:
            start.wait()
            shop = own.get(Shop, new.shop.id)
            for sub_id in sub_ids:
                sub = own.get(Subscription, sub_id)
                welcome.plan(own, shop, own.get(Visitor, sub.visitor_id), sub, clock.now())
                own.commit()
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            own.close()

    threads = [threading.Thread(target=planner, args=(half,)) for half in halves]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors
    titles = list(welcome_titles(session).values())
    assert len(titles) == 40
    given = [t.removeprefix("Code ") for t in titles if t != "Code"]
    assert len(given) == 30 and len(set(given)) == 30 and set(given) == set(codes)
    assert titles.count("Code") == 10


def test_on_postgresql_an_open_claim_is_skipped_not_waited_for(app, session, clock, new):
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("SKIP LOCKED is PostgreSQL's; SQLite serialises writers with its one write lock")
    for code in ("P1", "P2"):
        session.add(CouponCode(shop_id=new.shop.id, kind="welcome", code=code, created_at=clock.now()))
    session.commit()
    first, second = get_db(app).sessionmaker(), get_db(app).sessionmaker()
    try:
        a = coupons.take_code(first, new.shop.id, "welcome", None, clock.now())  # its transaction stays open
        b = coupons.take_code(second, new.shop.id, "welcome", None, clock.now())
        assert {a.code, b.code} == {"P1", "P2"}
        assert coupons.take_code(second, new.shop.id, "welcome", None, clock.now()) is None
        first.commit()
        second.commit()
    finally:
        first.close()
        second.close()


@pytest.mark.parametrize("body, code, message", [
    ("ok\nnot a code!\n", "invalid_code", "line 2"),
    ("x" * 65, "invalid_code", "line 1"),
    ("\n\n", "invalid_code", "no code"),
    ("\n".join(f"C{i}" for i in range(10_001)), "too_many_codes", "10000"),
])
def test_uploads_are_checked(client, new, body, code, message):
    response = client.post("/v1/admin/coupons/welcome/codes", data=body,
                           headers={**auth(new), "Content-Type": "text/plain"})
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == code and message in error["message"]


def test_ten_thousand_codes_fit_in_one_upload(client, new):
    body = "\n".join(f"CODE-{i:05d}-{'x' * 50}" for i in range(10_000))
    response = client.post("/v1/admin/coupons/welcome/codes", data=body,
                           headers={**auth(new), "Content-Type": "text/plain"})
    assert response.status_code == 201 and response.get_json()["added"] == 10_000


@pytest.mark.parametrize("body", [{"mode": "fixed"}, {"mode": "fixed", "code": "no spaces"}, {"mode": "some"}, {}])
def test_coupon_settings_are_checked(client, new, body):
    response = client.put("/v1/admin/coupons/welcome", json=body, headers=auth(new))
    assert response.status_code == 422 and "error" in response.get_json()


def test_coupon_api_needs_the_admin_token_and_stays_in_its_shop(client, session, clock, new):
    assert client.get("/v1/admin/coupons/welcome").status_code == 401
    other = make_shop(session, clock.now(), name="Other")
    session.commit()
    client.post("/v1/admin/coupons/welcome/codes", data="MINE", headers={**auth(new), "Content-Type": "text/plain"})
    assert client.get("/v1/admin/coupons/welcome", headers=auth(other)).get_json()["remaining"] == 0
    assert client.get("/v1/admin/coupons/Bad-Kind", headers=auth(new)).status_code == 404


# -- per-locale texts ------------------------------------------------------------------------

@pytest.mark.parametrize("wanted, chosen", [
    ("fr-CA", "fr-CA"), ("FR-ca", "fr-CA"), ("de-DE", "de"), ("de", "de"), ("fr-BE", None),
    ("es", None), (None, None), ("", None),
])
def test_the_best_locale_is_exact_then_language_then_default(wanted, chosen):
    assert content.pick_locale(["de", "fr-CA"], wanted) == chosen


def test_each_subscriber_gets_the_texts_of_their_locale(client, session, clock, new):
    saved = set_welcome(client, new, title="Welcome", body="Thanks", url="https://shop.example/en",
                        locales={"de": {"title": "Willkommen {{ first_name }}", "body": "Danke"},
                                 "fr-ca": {"title": "Bienvenue", "url": "https://shop.example/fr"}})
    assert saved["locales"] == {"de": {"title": "Willkommen {{ first_name }}", "body": "Danke", "url": ""},
                                "fr-CA": {"title": "Bienvenue", "body": "", "url": "https://shop.example/fr"}}
    german = subscribers(session, new, clock, 1, locale="de-AT")[0]
    canadian = subscribers(session, new, clock, 1, locale="fr-CA")[0]
    spanish = subscribers(session, new, clock, 1, locale="es-ES")[0]
    visitor = make_visitor(session, new.shop.id, clock.now(), locale="de-CH")
    by_visitor = make_subscription(session, visitor, clock.now())  # no locale of its own
    session.commit()

    plan_welcome(session, new, [german, canadian, spanish, by_visitor], clock)

    session.expire_all()
    rows = {p.subscription_id: p for p in session.scalars(sa.select(Push))}
    assert (rows[german.id].title, rows[german.id].body, rows[german.id].url) == (
        "Willkommen", "Danke", "https://shop.example/en")
    assert (rows[canadian.id].title, rows[canadian.id].body, rows[canadian.id].url) == (
        "Bienvenue", "Thanks", "https://shop.example/fr")
    assert (rows[spanish.id].title, rows[spanish.id].body) == ("Welcome", "Thanks")
    assert rows[by_visitor.id].title == "Willkommen"


@pytest.mark.parametrize("locales, where", [
    ({"deutsch!": {"title": "x"}}, "locales"),
    ({"de": {"title": "{{ oops"}}, "locales.de.title"),
    ({"de": {"title": "x", "url": "javascript:alert(1)"}}, "locales.de.url"),
    ({"de": {"body": "no title"}}, "locales.de.title"),
])
def test_locale_texts_are_checked_like_the_other_templates(client, new, locales, where):
    response = client.put("/v1/admin/events/welcome", json={"locales": locales}, headers=auth(new))
    assert response.status_code == 422
    assert response.get_json()["error"]["message"].startswith(where)


@pytest.mark.parametrize("actions, where", [
    ([{"title": "Shop", "url": "javascript:alert(1)"}], "actions.0.url"),
    ([{"title": "", "url": "https://shop.example/"}], "actions.0.title"),
    ([{"title": "a", "url": "https://a.example/"}] * 3, "actions"),
])
def test_action_buttons_are_checked(client, new, actions, where):
    response = client.put("/v1/admin/events/welcome", json={"actions": actions}, headers=auth(new))
    assert response.status_code == 422
    assert response.get_json()["error"]["message"].startswith(where)


# -- the soft-ask in the visitor's language --------------------------------------------------

def test_the_config_serves_the_prompt_in_the_visitors_language(client, new):
    settings = client.get("/v1/admin/settings", headers=auth(new)).get_json()
    settings["prompt"]["locales"] = {"de": {"text": "Benachrichtigung, wenn der Warenkorb wartet?", "yes": "", "no": ""},
                                     "fr-CA": {"text": "", "yes": "Oui!", "no": "Non"}}
    saved = client.put("/v1/admin/settings", json=settings, headers=auth(new))
    assert saved.status_code == 200, saved.get_json()
    assert saved.get_json()["prompt"]["locales"] == {"de": {"text": "Benachrichtigung, wenn der Warenkorb wartet?"},
                                                     "fr-CA": {"yes": "Oui!", "no": "Non"}}
    key = new.shop.public_key

    def prompt(locale=None):
        return client.get(f"/v1/shops/{key}/config" + (f"?locale={locale}" if locale else "")).get_json()["prompt"]

    german = prompt("de-DE")
    assert (german["text"], german["yes"], german["no"]) == (
        "Benachrichtigung, wenn der Warenkorb wartet?", "Ja, gerne", "Jetzt nicht")
    canadian = prompt("fr-CA")
    assert (canadian["yes"], canadian["no"], canadian["text"]) == ("Oui!", "Non", settings["prompt"]["text"])
    assert (prompt("fr-FR")["yes"], prompt("it")["no"], prompt("nl-BE")["yes"]) == (
        "Oui, volontiers", "Non ora", "Ja, graag")
    for plain in (prompt(), prompt("ja-JP")):
        assert "yes" not in plain and "locales" not in plain and plain["text"] == settings["prompt"]["text"]


def test_prompt_locales_are_checked(client, new):
    response = client.put("/v1/admin/settings", json={"prompt": {"locales": {"x y": {"yes": "Ja"}}}}, headers=auth(new))
    assert response.status_code == 422 and "prompt.locales" in response.get_json()["error"]["message"]
