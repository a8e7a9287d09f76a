"""``flask --app wsgi visitor forget --shop KEY --visitor ID``: erase one visitor's data."""
from __future__ import annotations

import json

import click
import sqlalchemy as sa
from flask import Flask
from flask.cli import AppGroup

from server.core.db import session_scope
from server.core.errors import ApiError
from server.core.models import Shop
from server.merchant.privacy import forget_visitor
from server.core.visitors import find_visitor

visitor_cli = AppGroup("visitor", help="Visitors' personal data.")


@visitor_cli.command("forget")
@click.option("--shop", "shop_key", required=True, help="The shop's public key.")
@click.option("--visitor", "visitor_ref", required=True, help="The widget's visitor_id.")
def visitor_forget(shop_key: str, visitor_ref: str) -> None:
    """Delete a visitor's events, subscriptions and identity; push records keep only counts."""
    from server.core.clock import get_clock

    try:
        with session_scope() as session:
            shop = session.scalars(sa.select(Shop).where(Shop.public_key == shop_key)).one_or_none()
            if shop is None:
                raise click.ClickException("unknown shop")
            visitor = find_visitor(session, shop, visitor_ref)
            result = forget_visitor(session, shop, visitor, get_clock().now())
    except ApiError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(json.dumps({"visitor_id": visitor_ref, "forgotten": result.as_json()}))


def register_cli(app: Flask) -> None:
    """Attach the ``visitor`` command group."""
    app.cli.add_command(visitor_cli)
