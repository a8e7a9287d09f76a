"""The foundation: app factory, configuration, CLI, VAPID keys, shop creation and tenancy."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from server import create_app
from server.core.models import PresetSetting, Shop
from server.core.shops import hash_token
from tests.factories import make_shop


def _b64decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def test_create_app_uses_test_config(app):
    assert app.testing
    assert app.config["PUBLIC_URL"] == "http://pushcart.test"
    assert app.config["RUN_SCHEDULER"] is False


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("SHOP_CACHE_SECONDS", "-5", "SHOP_CACHE_SECONDS must be a whole number of at least 0, got -5"),
    ("COLLECT_JOURNAL_MAX_PENDING", "0", "COLLECT_JOURNAL_MAX_PENDING must be a whole number of at least 1, got 0"),
    ("SUBSCRIPTION_IDLE_DAYS", "soon", "SUBSCRIPTION_IDLE_DAYS must be a whole number, got 'soon'"),
    ("PUSH_STORM_MIN_SHARE", "lots", "PUSH_STORM_MIN_SHARE must be a number, got 'lots'"),
    ("PUSH_STORM_MIN_SHARE", "1.5", "PUSH_STORM_MIN_SHARE must be a number of at most 1, got 1.5"),
    ("PUSH_STORM_MIN_ANSWERS", "0", "PUSH_STORM_MIN_ANSWERS must be a whole number of at least 1, got 0"),
    ("RATELIMIT_NEW_SUBSCRIPTIONS", "lots", "RATELIMIT_NEW_SUBSCRIPTIONS must be a rate like 300/minute or 200/hour, "
                                            "got 'lots'"),
])
def test_a_bad_tuning_variable_stops_the_start_with_its_name(monkeypatch, tmp_path, variable, value, message):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError) as refused:
        create_app({"INSTANCE_PATH": str(tmp_path / "inst")})
    assert str(refused.value) == message


def test_the_storm_guards_thresholds_come_from_the_environment(monkeypatch, tmp_path):
    from server.delivery.storm import StormSettings

    monkeypatch.setenv("PUSHCART_PUSH_STORM_MIN_ANSWERS", "10")
    monkeypatch.setenv("PUSH_STORM_RETRY_SECONDS", "90.5")
    app = create_app({"INSTANCE_PATH": str(tmp_path / "inst")})
    settings = StormSettings.from_config(app.config)
    assert (settings.min_answers, settings.retry_seconds, settings.min_share) == (10, 90.5, 0.2)


def test_environment_overrides_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("PUBLIC_URL", "https://push.example.com/")
    monkeypatch.setenv("PUSH_ENDPOINT_ALLOW", "a.example, *.b.example")
    monkeypatch.setenv("PUSHCART_INSECURE_ENDPOINTS", "1")
    app = create_app({"INSTANCE_PATH": str(tmp_path / "inst")})
    assert app.config["PUBLIC_URL"] == "https://push.example.com"
    assert app.config["PUSH_ENDPOINT_ALLOW"] == ("a.example", "*.b.example")
    assert app.config["PUSHCART_INSECURE_ENDPOINTS"] is True
    assert app.config["SESSION_COOKIE_SECURE"] is True
    # The default database lives in the instance folder, and a secret key was generated there.
    assert app.config["DATABASE_URL"].startswith("sqlite:///")
    secret_file = tmp_path / "inst" / "secret_key"
    assert secret_file.stat().st_mode & 0o777 == 0o600
    assert app.config["SECRET_KEY"] == secret_file.read_text().strip()


def test_settings_take_the_pushcart_prefix_and_keep_the_plain_names(monkeypatch, tmp_path):
    monkeypatch.setenv("SHOP_CACHE_SECONDS", "9")  # the plain name of earlier releases ...
    monkeypatch.setenv("PUSHCART_SHOP_CACHE_SECONDS", "7")  # ... loses to the prefixed one
    monkeypatch.setenv("PUSHCART_RUN_SCHEDULER", "off")
    monkeypatch.setenv("PUSHCART_RATELIMIT_CLICKS_PER_IP", "10/minute")
    monkeypatch.setenv("LOG_FORMAT", "json")
    app = create_app({"INSTANCE_PATH": str(tmp_path / "inst")})
    assert app.config["SHOP_CACHE_SECONDS"] == 7
    assert app.config["RUN_SCHEDULER"] is False
    assert app.config["RATELIMIT_CLICKS_PER_IP"] == "10/minute"
    assert app.config["LOG_FORMAT"] == "json"
    monkeypatch.setenv("PUSHCART_RUN_SCHEDULER", "maybe")
    with pytest.raises(ValueError, match="PUSHCART_RUN_SCHEDULER must be true or false, got 'maybe'"):
        create_app({"INSTANCE_PATH": str(tmp_path / "inst")})


def test_a_dotenv_file_is_read_and_the_environment_wins(tmp_path, monkeypatch):
    from server.core.config import SETTINGS, _names, read_environment

    for key in SETTINGS:  # only the file speaks (make test exports a few of these)
        for name in _names(key):
            monkeypatch.delenv(name, raising=False)
    env_file = tmp_path / ".env"
    env_file.write_text("PUSHCART_METRICS_TOKEN=from-file\nSUBSCRIPTION_IDLE_DAYS=90\n")
    assert read_environment(env_file) == {"METRICS_TOKEN": "from-file", "SUBSCRIPTION_IDLE_DAYS": 90}
    monkeypatch.setenv("PUSHCART_METRICS_TOKEN", "from-env")
    assert read_environment(env_file)["METRICS_TOKEN"] == "from-env"


def test_vapid_init_is_idempotent_and_public_key_is_a_p256_point(runner, app, tmp_path):
    key_file = tmp_path / "keys" / "vapid.pem"
    app.config["VAPID_PRIVATE_KEY_FILE"] = str(key_file)
    first = runner.invoke(args=["vapid", "init"])
    assert first.exit_code == 0, first.output
    assert "created" in first.output
    pem = key_file.read_bytes()
    second = runner.invoke(args=["vapid", "init"])
    assert second.exit_code == 0 and "already present" in second.output
    assert key_file.read_bytes() == pem, "a second init must not replace the key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    shown = runner.invoke(args=["vapid", "show"])
    raw = _b64decode(shown.output.strip())
    assert len(raw) == 65 and raw[0] == 0x04
    point = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    assert point.curve.name == "secp256r1"
    assert runner.invoke(args=["vapid", "show"]).output == shown.output


def test_vapid_show_without_key_explains(runner, app, tmp_path):
    app.config["VAPID_PRIVATE_KEY_FILE"] = str(tmp_path / "missing.pem")
    result = runner.invoke(args=["vapid", "show"])
    assert result.exit_code != 0
    assert "vapid init" in result.output


def test_shop_create_prints_contract_json(runner, session):
    result = runner.invoke(args=["shop", "create", "--name", "Acme", "--origin", "https://Acme.example/",
                                 "--origin", "http://localhost:8000"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data) == {"id", "name", "public_key", "secret", "admin_token", "origins"}
    assert data["origins"] == ["http://localhost:8000", "https://acme.example"]
    shop = session.get(Shop, data["id"])
    assert shop.public_key == data["public_key"]
    assert shop.admin_token_hash == hash_token(data["admin_token"])
    assert data["admin_token"] not in json.dumps(shop.prompt)
    kinds = {p.kind for p in session.query(PresetSetting).filter_by(shop_id=shop.id)}
    assert kinds == {"welcome", "browse_abandonment", "checkout_recovery", "repurchase", "shipped",
                     "back_in_stock", "price_drop"}


@pytest.mark.parametrize("origin", ["ftp://x.example", "https://x.example/path", "not a url",
                                    "https://user@x.example"])
def test_shop_create_rejects_bad_origin(runner, origin):
    result = runner.invoke(args=["shop", "create", "--name", "Acme", "--origin", origin])
    assert result.exit_code != 0
    assert "origin" in result.output


def test_config_endpoint_serves_vapid_key(client, session, clock, runner):
    new = make_shop(session, clock.now())
    session.commit()
    response = client.get(f"/v1/shops/{new.shop.public_key}/config")
    assert response.status_code == 200
    body = response.get_json()
    assert body["vapid_public_key"] == runner.invoke(args=["vapid", "show"]).output.strip()
    assert body["sw_path"] == "/pushcart-sw.js"
    assert body["prompt"]["after_pageviews"] == 2


def test_unknown_shop_is_a_json_404(client):
    response = client.get("/v1/shops/pk_nope/config")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "unknown_shop"


def test_admin_api_requires_a_token(client):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}):
        response = client.get("/v1/admin/settings", headers=headers)
        assert response.status_code == 401
        assert response.get_json()["error"]["code"] == "unauthorized"


def test_one_shops_token_reads_only_its_own_data(client, session, clock):
    a = make_shop(session, clock.now(), name="Shop A", origins=["https://a.example"])
    b = make_shop(session, clock.now(), name="Shop B", origins=["https://b.example"])
    session.commit()
    got_a = client.get("/v1/admin/settings", headers={"Authorization": f"Bearer {a.admin_token}"}).get_json()
    got_b = client.get("/v1/admin/settings", headers={"Authorization": f"Bearer {b.admin_token}"}).get_json()
    assert got_a["name"] == "Shop A" and got_a["origins"] == ["https://a.example"]
    assert got_b["name"] == "Shop B" and got_b["origins"] == ["https://b.example"]
    # A's token changes A only.
    changed = client.put("/v1/admin/settings", json={"name": "Renamed A"},
                         headers={"Authorization": f"Bearer {a.admin_token}"})
    assert changed.status_code == 200
    session.expire_all()
    assert session.get(Shop, b.shop.id).name == "Shop B"
    assert session.get(Shop, a.shop.id).name == "Renamed A"
    # Neither response ever carries a secret.
    for body in (got_a, got_b, changed.get_json()):
        text = json.dumps(body)
        assert a.secret not in text and b.secret not in text and a.admin_token not in text


def test_settings_update_validates(client, session, clock):
    a = make_shop(session, clock.now())
    session.commit()
    auth = {"Authorization": f"Bearer {a.admin_token}"}
    ok = client.put("/v1/admin/settings", headers=auth, json={
        "quiet_hours": {"start": "22:00", "end": "08:00"}, "frequency_cap_per_24h": 5,
        "prompt": {"text": "Hi", "color": "#112233", "after_pageviews": 1, "after_seconds": 5, "dismiss_days": 3}})
    assert ok.status_code == 200, ok.get_json()
    assert ok.get_json()["quiet_hours"] == {"start": "22:00", "end": "08:00"}
    for bad in ({"quiet_hours": {"start": "25:00", "end": "08:00"}}, {"frequency_cap_per_24h": -1},
                {"origins": ["javascript:alert(1)"]}, {"timezone": "Mars/Base"}, {"unknown": 1},
                {"prompt": {"color": "red"}}):
        response = client.put("/v1/admin/settings", headers=auth, json=bad)
        assert response.status_code == 422, bad
        assert "error" in response.get_json()
    malformed = client.put("/v1/admin/settings", headers={**auth, "Content-Type": "application/json"},
                           data="{not json")
    assert malformed.status_code == 400
    session.expire_all()
    assert session.get(Shop, a.shop.id).frequency_cap_per_24h == 5
    # A zone the tz database knows is stored as it names it (a padded one would fall back to UTC later).
    padded = client.put("/v1/admin/settings", headers=auth, json={"timezone": " Europe/Berlin "})
    assert padded.status_code == 200 and padded.get_json()["timezone"] == "Europe/Berlin"


def test_settings_round_trip_puts_back_what_get_gave(client, session, clock):
    a = make_shop(session, clock.now())
    session.commit()
    auth = {"Authorization": f"Bearer {a.admin_token}"}
    settings = client.get("/v1/admin/settings", headers=auth).get_json()
    settings["name"] = "Renamed by round trip"
    put = client.put("/v1/admin/settings", headers=auth, json=settings)
    assert put.status_code == 200, put.get_json()
    assert put.get_json() == settings  # every field as sent, the edit included
    assert client.get("/v1/admin/settings", headers=auth).get_json()["name"] == "Renamed by round trip"


def test_settings_refuse_a_changed_read_only_field(client, session, clock):
    a = make_shop(session, clock.now())
    session.commit()
    auth = {"Authorization": f"Bearer {a.admin_token}"}
    settings = client.get("/v1/admin/settings", headers=auth).get_json()
    refused = client.put("/v1/admin/settings", headers=auth,
                         json={**settings, "name": "Not saved", "public_key": "pk_other"})
    assert refused.status_code == 422
    assert refused.get_json()["error"]["code"] == "read_only_field"
    assert refused.get_json()["error"]["message"].startswith("public_key: read-only")
    session.expire_all()
    assert session.get(Shop, a.shop.id).name == "Test Shop"
    assert session.get(Shop, a.shop.id).public_key == settings["public_key"]


def test_demo_init_creates_once_and_prints_token(runner, app):
    first = runner.invoke(args=["demo", "init"])
    assert first.exit_code == 0, first.output
    token_line = [line for line in first.output.splitlines() if line.startswith("Admin token")][0]
    second = runner.invoke(args=["demo", "init"])
    assert token_line in second.output
    stored = json.loads((Path(app.instance_path) / "demo_shop.json").read_text())
    assert stored["admin_token"] in token_line


def test_the_readme_configuration_tables_are_the_declared_settings():
    from pathlib import Path

    from server.core.config import settings_tables

    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    assert settings_tables() in readme, "README's configuration tables differ from Settings: `make readme-config`"


@pytest.mark.parametrize(("variable", "value", "key", "expected"), [
    ("PUSHCART_DISPATCH_BATCH_SIZE", "50", "DISPATCH_BATCH_SIZE", 50),
    ("PUSH_CONCURRENCY", "8", "PUSH_CONCURRENCY", 8),
    ("PUSHCART_PUSH_READ_TIMEOUT", "2.5", "PUSH_READ_TIMEOUT", 2.5),
    ("CAMPAIGN_PLAN_BATCH", "250", "CAMPAIGN_PLAN_BATCH", 250),
])
def test_worker_tuning_comes_from_the_environment(monkeypatch, tmp_path, variable, value, key, expected):
    monkeypatch.setenv(variable, value)
    app = create_app({"INSTANCE_PATH": str(tmp_path / "inst")})
    assert app.config[key] == expected


def test_a_bad_value_in_the_instance_config_stops_the_start(tmp_path):
    with pytest.raises(ValueError, match="^DISPATCH_BATCH_SIZE must be a whole number of at least 1, got 0$"):
        create_app({"INSTANCE_PATH": str(tmp_path / "inst"), "DISPATCH_BATCH_SIZE": 0})
