"""The command line of the contract: ``flask --app wsgi <command>``."""
from __future__ import annotations

import json
import os
from pathlib import Path

from typing import TYPE_CHECKING

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from server.core.db import session_scope
from server.core.errors import ApiError
from server.core.shops import list_shops, shop_by_public_key, shop_cache
from server.merchant import audit
from server.merchant.shop_admin import create_shop, reissue_admin_token, rotate_secret
from server.delivery.push.vapid import check_subject, init_keys, load_keys, public_key_b64

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

ROOT = Path(__file__).resolve().parent.parent


def alembic_config(app: Flask) -> AlembicConfig:
    """An Alembic config bound to the app's database URL.

    Alembic is imported here, not with this module: every command (``worker``, ``dispatch``)
    loads the CLI, and Alembic with Mako costs about 0.15 s of each one's start-up."""
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.attributes["database_url"] = app.config["DATABASE_URL"]
    return cfg


db_cli = AppGroup("db", help="Database migrations.")
vapid_cli = AppGroup("vapid", help="The VAPID key pairs: the instance's, and shops' own (rotation).")
shop_cli = AppGroup("shop", help="Shops.")
demo_cli = AppGroup("demo", help="The demo shop that `make run` serves.")
users_cli = AppGroup("users", help="Staff accounts: dashboard log-ins with an e-mail and password.")
DEMO_OWNER = "owner@demo.example"
stats_cli = AppGroup("stats", help="The dashboard's daily rollups.")


@db_cli.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply the migrations (Alembic) up to REVISION."""
    from alembic import command as alembic_command

    alembic_command.upgrade(alembic_config(current_app), revision)
    click.echo(f"database at {revision}")


@vapid_cli.command("init")
def vapid_init() -> None:
    """Make the VAPID key pair if it is absent."""
    path = current_app.config["VAPID_PRIVATE_KEY_FILE"]
    created = init_keys(path)
    click.echo("created a VAPID key pair" if created else "VAPID key pair already present")
    warning = check_subject(current_app.config.get("VAPID_SUBJECT"))
    if warning:
        click.echo(f"warning: {warning}", err=True)


@vapid_cli.command("show")
def vapid_show() -> None:
    """Print the public key (base64url of the uncompressed P-256 point)."""
    try:
        vapid = load_keys(current_app.config["VAPID_PRIVATE_KEY_FILE"])
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(public_key_b64(vapid))


@vapid_cli.command("rotate")
@click.option("--shop", "public_key", required=True, help="The shop's public key.")
def vapid_rotate(public_key: str) -> None:
    """Give a shop a new VAPID key and print it (JSON, without the private key). Subscriptions
    made with the old key are still signed with it; widgets re-subscribe with the new one."""
    from server.core.clock import get_clock
    from server.core.vapid_keys import rotate

    try:
        with session_scope() as session:
            shop = shop_by_public_key(session, public_key)
            key = rotate(session, shop, get_clock().now())
            audit.record(session, shop.id, audit.COMMAND_LINE, get_clock().now(), "settings", "vapid_key", None,
                         f"new key {key.id}")
            payload = {"id": key.id, "public_key": key.public_key, "status": key.status,
                       "created_at": key.created_at.isoformat()}
    except ApiError as exc:
        raise click.ClickException(exc.message) from None
    # Other processes' widget configs follow within SHOP_CACHE_SECONDS.
    shop_cache(current_app).forget(public_key)
    click.echo(json.dumps(payload))


@vapid_cli.command("status")
@click.option("--shop", "public_key", help="One shop's public key (default: every shop with keys of its own).")
def vapid_status(public_key: str | None) -> None:
    """List a shop's VAPID keys, one JSON line each, with how many live subscriptions use each
    (id null: the instance key). Retiring keys no live subscription uses are retired first."""
    import sqlalchemy as sa

    from server.core.clock import get_clock
    from server.core.models import Shop, VapidKey
    from server.core.vapid_keys import key_status

    try:
        instance = public_key_b64(load_keys(current_app.config["VAPID_PRIVATE_KEY_FILE"]))
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        with session_scope() as session:
            if public_key:
                shops = [shop_by_public_key(session, public_key)]
            else:
                shops = list(session.scalars(sa.select(Shop).where(
                    Shop.id.in_(sa.select(VapidKey.shop_id))).order_by(Shop.id)))
            lines = [json.dumps({"shop": shop.public_key, **row.as_json()})
                     for shop in shops for row in key_status(session, shop, instance, get_clock().now())]
    except ApiError as exc:
        raise click.ClickException(exc.message) from None
    for line in lines:
        click.echo(line)


@shop_cli.command("create")
@click.option("--name", required=True, help="The shop's name, shown in pushes.")
@click.option("--origin", "origins", multiple=True, required=True,
              help="An origin the widget runs on, e.g. https://shop.example (repeatable).")
def shop_create(name: str, origins: tuple[str, ...]) -> None:
    """Create a shop and print its keys as one JSON object (the secrets are shown only here)."""
    from server.core.clock import get_clock

    try:
        with session_scope() as session:
            new = create_shop(session, name, list(origins), get_clock().now())
            payload = new.as_json()
    except ApiError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(json.dumps(payload))


@shop_cli.command("list")
@click.option("--domain", default=None, help="Only the shops whose platform domain is this one "
                                             "(e.g. linen-co.myshopify.com).")
def shop_list(domain: str | None) -> None:
    """Print the shops, one JSON object a line: public key, name, platform and platform domain
    (which shop a Shopify app delivery for a domain goes to)."""
    with session_scope() as session:
        rows = [{"public_key": shop.public_key, "name": shop.name, "platform": shop.platform,
                 "platform_domain": shop.platform_domain} for shop in list_shops(session, domain)]
    for row in rows:
        click.echo(json.dumps(row))


@shop_cli.command("token")
@click.option("--shop", "public_key", required=True, help="The shop's public key.")
def shop_token(public_key: str) -> None:
    """Issue a new admin token for a shop and print it (once): the old token and every
    dashboard session opened with it stop working."""
    from server.core.clock import get_clock

    try:
        with session_scope() as session:
            shop = shop_by_public_key(session, public_key)
            token = reissue_admin_token(shop)
            audit.record(session, shop.id, audit.COMMAND_LINE, get_clock().now(), "settings", "admin_token",
                         True, True)  # a secret: logged as changed, masked
    except ApiError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(json.dumps({"public_key": public_key, "admin_token": token}))


@shop_cli.command("secret")
@click.option("--shop", "public_key", required=True, help="The shop's public key.")
@click.option("--rotate", is_flag=True, help="Make a new secret; the current one stays valid for 24 hours.")
def shop_secret(public_key: str, rotate: bool) -> None:
    """Print the shop's webhook secret (the key its deliveries are signed with), or rotate it."""
    from server.core.clock import get_clock

    try:
        with session_scope() as session:
            shop = shop_by_public_key(session, public_key)
            if rotate:
                with audit.settings_change(session, shop, audit.COMMAND_LINE, get_clock().now()):
                    rotated = rotate_secret(shop, get_clock().now())
            payload = (rotated.as_json(public_key) if rotate else {"public_key": public_key, "secret": shop.secret})
    except ApiError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(json.dumps(payload))


@demo_cli.command("init")
def demo_init() -> None:
    """Create the demo shop once (its keys are kept in instance/demo_shop.json) and print them."""
    from server.core.clock import get_clock

    path = Path(current_app.instance_path) / "demo_shop.json"
    if path.exists():
        payload = json.loads(path.read_text())
    else:
        origin = current_app.config["PUBLIC_URL"]
        with session_scope() as session:
            payload = create_shop(session, "Pushcart Demo Shop", [origin], get_clock().now()).as_json()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle)
    public_url = current_app.config["PUBLIC_URL"]
    password = _first_owner(payload["public_key"])
    click.echo(f"Demo shop:  {public_url}/demo/")
    click.echo(f"Dashboard:  {public_url}/admin/")
    if password is not None:
        click.echo(f"Owner log-in (shown once): {DEMO_OWNER} / {password}")
    else:
        click.echo("Owner log-in: the e-mail and password printed at the first run "
                   "(`flask users create` makes another)")
    click.echo(f"Admin token (API, or the dashboard's token log-in): {payload['admin_token']}")
    click.echo(f"Public key: {payload['public_key']}")


def _first_owner(public_key: str) -> str | None:
    """Create the demo shop's first owner when it has no account; return its generated password
    (None when the shop has an account already)."""
    from server.core.clock import get_clock
    from server.merchant import accounts

    with session_scope() as session:
        shop = shop_by_public_key(session, public_key)
        if accounts.list_members(session, shop.id) or accounts.user_by_email(session, DEMO_OWNER):
            return None
        password = accounts.new_password()
        accounts.create_user(session, shop, DEMO_OWNER, "owner", password, get_clock().now())
    return password


@users_cli.command("create")
@click.option("--shop", "public_key", required=True, help="The shop's public key.")
@click.option("--email", required=True, help="The account's e-mail address (its log-in).")
@click.option("--role", type=click.Choice(["owner", "marketer"]), default="owner", show_default=True)
def users_create(public_key: str, email: str, role: str) -> None:
    """Create a staff account and print its generated password (shown once)."""
    from server.core.clock import get_clock
    from server.merchant import accounts

    password = accounts.new_password()
    try:
        with session_scope() as session:
            shop = shop_by_public_key(session, public_key)
            user = accounts.create_user(session, shop, email, role, password, get_clock().now())
            email = user.email
    except ApiError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"{role} {email} of shop {public_key}")
    click.echo(f"Password (shown once): {password}")


@stats_cli.command("rebuild")
@click.option("--shop", "public_key", help="The shop's public key (default: every shop).")
def stats_rebuild(public_key: str | None) -> None:
    """Recompute the daily rollups and the subscriptions' unclicked streaks from the stored rows
    (triggers keep them; this repairs them).

    The visitor-days before the raw events' retention age are kept as counted: their events may
    be gone."""
    from datetime import timedelta

    from server.core import rollups, streaks
    from server.core.clock import get_clock
    from server.planning.retention import retention_age

    age = retention_age(current_app.config)
    since = (get_clock().now() - age).date() + timedelta(days=1) if age else None
    try:
        with session_scope() as session:
            shop_id = shop_by_public_key(session, public_key).id if public_key else None
            written = rollups.rebuild(session.connection(), shop_id, since)
            changed = streaks.rebuild(session.connection(), shop_id)
    except ApiError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(json.dumps({"shop": public_key, "visitor_days_since": since.isoformat() if since else None,
                           "rows": written, "streaks_changed": changed}))


def register_cli(app: Flask) -> None:
    """Attach the command groups to the app."""
    for group in (db_cli, vapid_cli, shop_cli, demo_cli, users_cli, stats_cli):
        app.cli.add_command(group)
    from server.delivery.commands import dispatch_command, subscriptions_cli, worker_command
    from server.merchant.subscribers_cli import subscribers_cli

    app.cli.add_command(subscribers_cli)

    app.cli.add_command(worker_command)
    app.cli.add_command(dispatch_command)
    app.cli.add_command(subscriptions_cli)
