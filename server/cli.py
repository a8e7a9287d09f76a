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
from server.core.shops import shop_by_public_key
from server.merchant.shops import create_shop, reissue_admin_token
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
vapid_cli = AppGroup("vapid", help="The VAPID key pair.")
shop_cli = AppGroup("shop", help="Shops.")
demo_cli = AppGroup("demo", help="The demo shop that `make run` serves.")


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


@shop_cli.command("token")
@click.option("--shop", "public_key", required=True, help="The shop's public key.")
def shop_token(public_key: str) -> None:
    """Issue a new admin token for a shop and print it (once): the old token and every
    dashboard session opened with it stop working."""
    try:
        with session_scope() as session:
            shop = shop_by_public_key(session, public_key)
            token = reissue_admin_token(shop)
    except ApiError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(json.dumps({"public_key": public_key, "admin_token": token}))


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
    click.echo(f"Demo shop:  {public_url}/demo/")
    click.echo(f"Dashboard:  {public_url}/admin/")
    click.echo(f"Admin token (log in with it): {payload['admin_token']}")
    click.echo(f"Public key: {payload['public_key']}")


def register_cli(app: Flask) -> None:
    """Attach the command groups to the app."""
    for group in (db_cli, vapid_cli, shop_cli, demo_cli):
        app.cli.add_command(group)
    from server.delivery.commands import dispatch_command, subscriptions_cli, worker_command

    app.cli.add_command(worker_command)
    app.cli.add_command(dispatch_command)
    app.cli.add_command(subscriptions_cli)
