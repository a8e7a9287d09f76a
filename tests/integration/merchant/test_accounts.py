"""Staff accounts on both databases: password hashing, log-in limits, revocable sessions,
invitations (single use, 7 days), the team's rules, the audit log, the ``users`` command."""
from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

from server.core.models import AuditEntry, DashboardSession, Invitation, PresetSetting, Shop, User
from server.core.shops import DEFAULT_PROMPT
from server.merchant import accounts, audit
from tests.accounts_support import PASSWORD, csrf_of, log_in, logged_in, make_user


@pytest.fixture
def app_config(app_config):
    # Day-long windows: the limiter's sliding window weighs the window before by the time left, so
    # tries that straddle a minute's end (a loaded machine hashing slowly) would count less than 8.
    return {**app_config, "RATELIMIT_LOGIN_PER_IP": "8/day", "RATELIMIT_LOGIN_PER_EMAIL": "3/day"}


@pytest.fixture
def owner(session, new_shop, clock) -> User:
    return make_user(session, new_shop.shop, clock.now(), "olga@shop.example", "owner")


@pytest.fixture
def marketer(session, new_shop, clock) -> User:
    return make_user(session, new_shop.shop, clock.now(), "mark@shop.example", "marketer")


def rows(session, model, **where):
    session.expire_all()
    return list(session.scalars(sa.select(model).filter_by(**where)))


def post(client, path, data=None, page="/admin/"):
    return client.post(path, data={"csrf_token": csrf_of(client, page), **(data or {})})


def goes_to_login(response) -> bool:
    return response.status_code == 302 and response.headers["Location"].endswith("/admin/login")


# --- hashing and log-in ---------------------------------------------------------------------

def test_the_password_is_kept_as_an_argon2id_hash_only(session, owner):
    stored = rows(session, User, id=owner.id)[0].password_hash
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert PasswordHasher().verify(stored, PASSWORD)


def test_log_in_with_email_and_password_any_case(app, owner, session, clock):
    client = app.test_client()
    response = log_in(client, "  Olga@Shop.Example ")
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/")
    assert "olga@shop.example · Owner" in client.get("/admin/").get_data(as_text=True)
    assert rows(session, User, id=owner.id)[0].last_login_at == clock.now()


@pytest.mark.parametrize("email, password", [("olga@shop.example", "wrong password!"),
                                             ("nobody@shop.example", PASSWORD), ("", "")])
def test_a_wrong_log_in_is_refused(app, owner, email, password):
    client = app.test_client()
    response = log_in(client, email, password)
    assert response.status_code == 401
    assert "do not match an account" in response.get_data(as_text=True)
    assert goes_to_login(client.get("/admin/events"))


def test_a_weaker_hash_is_replaced_at_log_in(app, owner, session):
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    session.execute(sa.update(User).where(User.id == owner.id).values(password_hash=weak))
    session.commit()
    logged_in(app, owner.email)
    stored = rows(session, User, id=owner.id)[0].password_hash
    assert stored != weak and not PasswordHasher().check_needs_rehash(stored)


def test_a_short_password_is_refused(session, new_shop, clock):
    with pytest.raises(accounts.Invalid, match="at least 10"):
        accounts.create_user(session, new_shop.shop, "short@shop.example", "owner", "123456789", clock.now())


# --- rate limits ----------------------------------------------------------------------------

def test_failed_log_ins_for_one_email_are_limited_then_even_the_right_password_waits(app, owner):
    client = app.test_client()
    for _ in range(3):
        assert log_in(client, owner.email, "not the password").status_code == 401
    refused = log_in(client, owner.email)
    assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 86400
    assert "too many failed log-ins" in refused.get_data(as_text=True)
    assert goes_to_login(client.get("/admin/"))


def test_successful_log_ins_do_not_use_the_email_budget(app, owner):
    for _ in range(5):
        assert log_in(app.test_client(), owner.email).status_code == 302


def test_tries_from_one_address_are_limited_whatever_the_email_or_token(app, owner, new_shop):
    client = app.test_client()
    csrf = csrf_of(client)
    for i in range(8):
        data = ({"token": "adm_wrong"} if i % 2 else {"email": f"guess{i}@shop.example", "password": "x" * 12})
        assert client.post("/admin/login", data={**data, "csrf_token": csrf}).status_code == 401
    assert client.post("/admin/login", data={"token": new_shop.admin_token, "csrf_token": csrf}).status_code == 429
    other = app.test_client()  # another address is not held back
    assert other.post("/admin/login", data={"email": owner.email, "password": PASSWORD, "csrf_token": csrf_of(other)},
                      environ_base={"REMOTE_ADDR": "198.51.100.9"}).status_code == 302


# --- sessions -------------------------------------------------------------------------------

def test_the_cookie_holds_a_random_id_the_database_only_its_hash(app, owner, session):
    client = logged_in(app, owner.email)
    with client.session_transaction() as cookie:
        raw = cookie["sid"]
        assert set(cookie) <= {"sid", "csrf_token", "_flashes"}
    stored = rows(session, DashboardSession, user_id=owner.id)
    assert [row.id_hash for row in stored] == [hashlib.sha256(raw.encode()).hexdigest()]
    assert len(raw) >= 40


def test_log_out_ends_only_this_session(app, owner, session):
    first, second = logged_in(app, owner.email), logged_in(app, owner.email)
    assert goes_to_login(post(first, "/admin/logout"))
    assert goes_to_login(first.get("/admin/"))
    assert second.get("/admin/").status_code == 200
    assert len(rows(session, DashboardSession, user_id=owner.id)) == 1


def test_sign_out_everywhere_ends_every_session_of_the_user_only(app, owner, marketer, session):
    first, second, other = logged_in(app, owner.email), logged_in(app, owner.email), logged_in(app, marketer.email)
    assert goes_to_login(post(second, "/admin/logout/everywhere"))
    assert goes_to_login(first.get("/admin/events"))
    assert other.get("/admin/events").status_code == 200
    assert rows(session, DashboardSession, user_id=owner.id) == []


def test_the_account_page_counts_the_users_sessions_and_signs_them_all_out(app, marketer, session):
    first, second = logged_in(app, marketer.email), logged_in(app, marketer.email)
    page = first.get("/admin/account").get_data(as_text=True)
    assert 'id="session-count">2<' in page and "Marketer" in page
    form = re.search(r'<form method="post" action="([^"]+)">', page.split('id="account-title"')[1]).group(1)
    assert goes_to_login(post(first, form, page="/admin/account"))
    assert goes_to_login(second.get("/admin/account"))


def test_an_owner_signs_a_member_out_everywhere(app, owner, marketer, session):
    boss, member = logged_in(app, owner.email), logged_in(app, marketer.email)
    response = post(boss, f"/admin/team/members/{marketer.id}/sessions/revoke", page="/admin/team")
    assert response.status_code == 302
    assert goes_to_login(member.get("/admin/campaigns"))
    assert boss.get("/admin/team").status_code == 200


def test_removing_a_member_deletes_the_account_and_its_sessions(app, owner, marketer, session):
    email, user_id = marketer.email, marketer.id
    boss, member = logged_in(app, owner.email), logged_in(app, email)
    assert post(boss, f"/admin/team/members/{user_id}/remove", page="/admin/team").status_code == 302
    assert goes_to_login(member.get("/admin/"))
    assert rows(session, User, id=user_id) == [] and rows(session, DashboardSession, user_id=user_id) == []
    assert log_in(app.test_client(), email).status_code == 401


def test_a_session_expires(app, owner, clock, session):
    client = logged_in(app, owner.email)
    clock.advance(timedelta(hours=app.config["DASHBOARD_SESSION_HOURS"]) - timedelta(seconds=1))
    assert client.get("/admin/").status_code == 200
    clock.advance(timedelta(seconds=1))
    assert goes_to_login(client.get("/admin/"))
    assert rows(session, DashboardSession, user_id=owner.id) == []


def test_an_admin_token_log_in_is_a_session_row_too_and_a_new_token_ends_it(app, new_shop, session):
    client = app.test_client()
    assert client.post("/admin/login", data={"token": new_shop.admin_token,
                                             "csrf_token": csrf_of(client)}).status_code == 302
    assert "Admin token · Owner" in client.get("/admin/").get_data(as_text=True)
    assert len(rows(session, DashboardSession, shop_id=new_shop.shop.id, user_id=None)) == 1
    shop = session.get(Shop, new_shop.shop.id)
    shop.admin_token_hash = hashlib.sha256(b"adm_new").hexdigest()
    session.commit()
    assert goes_to_login(client.get("/admin/"))


# --- invitations ----------------------------------------------------------------------------

def invite(client, email="new@shop.example", role="marketer") -> str:
    """Invite through the Team page; return the link it shows."""
    page = post(client, "/admin/team/invite", {"email": email, "role": role}, page="/admin/team")
    assert page.status_code == 200, page.get_data(as_text=True)[:300]
    text = page.get_data(as_text=True)
    assert "no mail server" in text
    return re.search(r'id="invite-link" readonly value="([^"]+)"', text).group(1)


def accept(app, link, password="a new long password", again=None):
    client = app.test_client()
    path = link.removeprefix("http://pushcart.test")
    response = client.post(path, data={"password": password, "password_again": again or password,
                                       "csrf_token": csrf_of(client, path)})
    return client, response


def test_an_invitation_makes_an_account_once_and_logs_the_invitee_in(app, owner, session):
    link = invite(logged_in(app, owner.email))
    token = link.rsplit("/", 1)[1]
    stored = rows(session, Invitation, email="new@shop.example")[0]
    assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest() and token not in stored.token_hash
    client, response = accept(app, link)
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/")
    assert "new@shop.example · Marketer" in client.get("/admin/").get_data(as_text=True)
    user = rows(session, User, email="new@shop.example")[0]
    assert user.role == "marketer" and user.shop_id == owner.shop_id
    _, again = accept(app, link, password="another long password")
    assert again.status_code == 404 and "not valid any more" in again.get_data(as_text=True)
    assert app.test_client().get(link.removeprefix("http://pushcart.test")).status_code == 404
    assert log_in(app.test_client(), "new@shop.example", "a new long password").status_code == 302


def test_an_invitation_expires_after_seven_days(app, owner, clock):
    link = invite(logged_in(app, owner.email))
    clock.advance(timedelta(days=7))
    _, response = accept(app, link)
    assert response.status_code == 404


def test_an_invitation_still_open_on_its_last_second(app, owner, clock):
    link = invite(logged_in(app, owner.email))
    clock.advance(timedelta(days=7) - timedelta(seconds=1))
    _, response = accept(app, link)
    assert response.status_code == 302


def test_a_revoked_invitation_does_not_work(app, owner, session):
    boss = logged_in(app, owner.email)
    link = invite(boss)
    pending = rows(session, Invitation, email="new@shop.example")[0]
    assert post(boss, f"/admin/team/invitations/{pending.id}/revoke", page="/admin/team").status_code == 302
    assert "new@shop.example" not in boss.get("/admin/team").get_data(as_text=True).split("Pending invitations")[1]
    _, response = accept(app, link)
    assert response.status_code == 404


def test_a_weak_or_mismatched_password_keeps_the_invitation_open(app, owner):
    link = invite(logged_in(app, owner.email))
    _, weak = accept(app, link, password="short")
    assert weak.status_code == 422 and "at least 10" in weak.get_data(as_text=True)
    _, differ = accept(app, link, password="a new long password", again="another password!")
    assert differ.status_code == 422 and "differ" in differ.get_data(as_text=True)
    _, fine = accept(app, link)
    assert fine.status_code == 302


def test_an_address_with_an_account_cannot_be_invited(app, owner, marketer):
    page = post(logged_in(app, owner.email), "/admin/team/invite", {"email": marketer.email, "role": "owner"},
                page="/admin/team")
    assert page.status_code == 422 and "already has an account" in page.get_data(as_text=True)


def test_another_shops_member_is_out_of_reach(app, owner, session, clock):
    from tests.factories import make_shop

    other = make_shop(session, clock.now(), name="Other")
    stranger = make_user(session, other.shop, clock.now(), "sam@other.example", "marketer")
    boss = logged_in(app, owner.email)
    post(boss, f"/admin/team/members/{stranger.id}/remove", page="/admin/team")
    post(boss, f"/admin/team/members/{stranger.id}/role", {"role": "owner"}, page="/admin/team")
    assert [(u.email, u.role) for u in rows(session, User, id=stranger.id)] == [("sam@other.example", "marketer")]
    assert "sam@other.example" not in boss.get("/admin/team").get_data(as_text=True)


# --- the team's rules -----------------------------------------------------------------------

def test_the_last_owner_can_be_neither_removed_nor_demoted(app, owner, marketer, session, new_shop, clock):
    boss = logged_in(app, owner.email)
    post(boss, f"/admin/team/members/{owner.id}/role", {"role": "marketer"}, page="/admin/team")
    assert "last owner" in boss.get("/admin/team").get_data(as_text=True)
    post(boss, f"/admin/team/members/{owner.id}/remove", page="/admin/team")
    assert rows(session, User, id=owner.id)[0].role == "owner"
    second = make_user(session, new_shop.shop, clock.now(), "otto@shop.example", "owner")
    post(boss, f"/admin/team/members/{second.id}/role", {"role": "marketer"}, page="/admin/team")
    assert rows(session, User, id=second.id)[0].role == "marketer"
    post(boss, f"/admin/team/members/{second.id}/role", {"role": "owner"}, page="/admin/team")
    demoted = post(boss, f"/admin/team/members/{owner.id}/role", {"role": "marketer"}, page="/admin/team")
    assert demoted.headers["Location"] == "/admin/"  # an owner who made themself a marketer leaves the Team page
    assert boss.get("/admin/team").status_code == 403  # and the role holds from the next request on


# --- the audit log --------------------------------------------------------------------------

SETTINGS_FORM = {"name": "Acme Two", "origins": "https://shop.example", "sw_path": "/pushcart-sw.js",
                 "prompt_text": "Notify me?", "prompt_color": "#1f6feb", "after_pageviews": "2", "after_seconds": "0",
                 "dismiss_days": "14", "quiet_start": "22:00", "quiet_end": "07:00", "frequency_cap_per_24h": "3", "attribution_hours": "72",
                 "platform": "custom", "platform_domain": "", "platform_secret": "shpss_very_secret"}


def entries(session, shop_id):
    session.expire_all()
    return list(session.scalars(sa.select(AuditEntry).where(AuditEntry.shop_id == shop_id).order_by(AuditEntry.id)))


def test_a_settings_change_is_logged_with_its_author_and_the_secret_masked(app, owner, session, new_shop, clock):
    boss = logged_in(app, owner.email)
    assert post(boss, "/admin/settings", SETTINGS_FORM, page="/admin/settings").status_code == 302
    logged = {(e.actor, e.area, e.subject, e.before, e.after) for e in entries(session, new_shop.shop.id)}
    assert logged == {("olga@shop.example", "settings", "name", "Test Shop", "Acme Two"),
                      ("olga@shop.example", "settings", "prompt.text", DEFAULT_PROMPT["text"], "Notify me?"),
                      ("olga@shop.example", "settings", "quiet_hours.start", None, "22:00"),
                      ("olga@shop.example", "settings", "quiet_hours.end", None, "07:00"),
                      ("olga@shop.example", "settings", "platform_secret", None, audit.MASK)}
    assert all(e.at == clock.now() for e in entries(session, new_shop.shop.id))
    stored = json.dumps([[e.before, e.after] for e in entries(session, new_shop.shop.id)])
    assert "shpss_very_secret" not in stored


def test_an_api_change_is_logged_as_the_api_token(client, new_shop, session):
    headers = {"Authorization": f"Bearer {new_shop.admin_token}"}
    assert client.put("/v1/admin/settings", json={"frequency_cap_per_24h": 5}, headers=headers).status_code == 200
    assert client.put("/v1/admin/events/welcome", json={"enabled": False}, headers=headers).status_code == 200
    rotated = client.post("/v1/admin/secret/rotate", headers=headers).get_json()["secret"]
    logged = [(e.actor, e.area, e.subject, e.before, e.after) for e in entries(session, new_shop.shop.id)]
    assert ("API token", "settings", "frequency_cap_per_24h", "3", "5") in logged
    assert ("API token", "preset:welcome", "enabled", "true", "false") in logged
    assert ("API token", "settings", "secret", audit.MASK, audit.MASK) in logged
    assert new_shop.secret not in json.dumps(logged) and rotated not in json.dumps(logged)


def test_secret_changes_from_the_command_line_the_api_and_a_plugin_are_logged_masked(app, runner, client, new_shop,
                                                                                      session):
    key = new_shop.shop.public_key
    token = json.loads(runner.invoke(args=["shop", "token", "--shop", key]).output)["admin_token"]
    secret = json.loads(runner.invoke(args=["shop", "secret", "--shop", key, "--rotate"]).output)["secret"]
    assert runner.invoke(args=["vapid", "rotate", "--shop", key]).exit_code == 0
    headers = {"Authorization": f"Bearer {token}"}
    assert client.post("/v1/admin/vapid-keys/rotate", headers=headers).status_code == 201
    connect_value = client.post("/v1/admin/connect-token", headers=headers).get_json()["connect_value"]
    connected = client.post("/v1/connect", json={"token": connect_value, "origin": "https://woo.example",
                                                 "platform": "woocommerce", "webhook_secret": "ck_woo_key"})
    assert connected.status_code == 200, connected.get_data(as_text=True)
    logged = [(e.actor, e.subject, e.before, e.after) for e in entries(session, new_shop.shop.id)]
    assert ("command line", "admin_token", audit.MASK, audit.MASK) in logged
    assert ("command line", "secret", audit.MASK, audit.MASK) in logged
    assert [row[0] for row in logged if row[1] == "vapid_key"] == ["command line", "API token"]
    assert ("plugin (connect value)", "platform", "custom", "woocommerce") in logged
    assert ("plugin (connect value)", "platform_secret", None, audit.MASK) in logged
    text = json.dumps(logged)
    assert all(s not in text for s in (token, secret, new_shop.secret, "ck_woo_key"))


def test_preset_toggles_and_texts_from_the_dashboard_are_logged(app, owner, session, new_shop):
    boss = logged_in(app, owner.email)
    post(boss, "/admin/events/welcome", {"action": "toggle", "enabled": "0"}, page="/admin/events")
    setting = rows(session, PresetSetting, shop_id=new_shop.shop.id, kind="browse_abandonment")[0]
    post(boss, "/admin/events/browse_abandonment", {"title": "Still thinking?", "body": setting.body, "url": setting.url,
                                                    "icon": setting.icon, "image": setting.image,
                                                    "delay_value_0": "2", "delay_unit_0": "hours"}, page="/admin/events")
    logged = {(e.area, e.subject, e.after) for e in entries(session, new_shop.shop.id)}
    assert ("preset:welcome", "enabled", "false") in logged
    assert ("preset:browse_abandonment", "title", "Still thinking?") in logged
    assert all(e.actor == "olga@shop.example" for e in entries(session, new_shop.shop.id))


def test_team_changes_are_logged(app, owner, marketer, session, new_shop):
    marketer_id = marketer.id
    boss = logged_in(app, owner.email)
    link = invite(boss, "nina@shop.example", "owner")
    accept(app, link)
    post(boss, f"/admin/team/members/{marketer_id}/role", {"role": "owner"}, page="/admin/team")
    post(boss, f"/admin/team/members/{marketer_id}/remove", page="/admin/team")
    logged = [(e.actor, e.subject, e.before, e.after) for e in entries(session, new_shop.shop.id)]
    assert logged == [("olga@shop.example", "nina@shop.example", None, "invited as owner"),
                      ("nina@shop.example", "nina@shop.example", None, "joined as owner"),
                      ("olga@shop.example", "mark@shop.example", "marketer", "owner"),
                      ("olga@shop.example", "mark@shop.example", "owner", "removed")]


def test_the_audit_page_is_newest_first_and_paginated(app, owner, marketer, session, new_shop, clock):
    for i in range(55):
        audit.record(session, new_shop.shop.id, "API token", clock.now() + timedelta(minutes=i), "settings",
                     "frequency_cap_per_24h", i, i + 1)
    session.commit()
    boss = logged_in(app, owner.email)
    first = boss.get("/admin/audit").get_data(as_text=True)
    afters = re.findall(r'<td data-label="After" class="audit-value">(\d+)</td>', first)
    assert afters[:3] == ["55", "54", "53"] and len(afters) == 50 and 'id="older"' in first
    second = boss.get("/admin/audit?page=2").get_data(as_text=True)
    assert re.findall(r'<td data-label="After" class="audit-value">(\d+)</td>', second) == ["5", "4", "3", "2", "1"]
    assert logged_in(app, marketer.email).get("/admin/audit").status_code == 403


def test_another_shops_log_is_not_shown(app, owner, session, clock):
    from tests.factories import make_shop

    other = make_shop(session, clock.now(), name="Other")
    audit.record(session, other.shop.id, "API token", clock.now(), "settings", "name", "Other", "Secret plans")
    session.commit()
    assert "Secret plans" not in logged_in(app, owner.email).get("/admin/audit").get_data(as_text=True)


# --- the command line -----------------------------------------------------------------------

def test_users_create_prints_a_password_that_logs_in(app, runner, new_shop):
    result = runner.invoke(args=["users", "create", "--shop", new_shop.shop.public_key, "--email", "Ana@Shop.example",
                                 "--role", "marketer"])
    assert result.exit_code == 0, result.output
    password = re.search(r"Password \(shown once\): (\S+)", result.output).group(1)
    client = logged_in(app, "ana@shop.example", password)
    assert "ana@shop.example · Marketer" in client.get("/admin/").get_data(as_text=True)
    again = runner.invoke(args=["users", "create", "--shop", new_shop.shop.public_key, "--email", "ana@shop.example"])
    assert again.exit_code != 0 and "already has an account" in again.output


def test_demo_init_prints_the_first_owners_log_in_once(app, runner):
    first = runner.invoke(args=["demo", "init"])
    assert first.exit_code == 0, first.output
    email, password = re.search(r"Owner log-in \(shown once\): (\S+) / (\S+)", first.output).groups()
    assert logged_in(app, email, password).get("/admin/team").status_code == 200
    second = runner.invoke(args=["demo", "init"])
    assert second.exit_code == 0 and "shown once" not in second.output and password not in second.output
