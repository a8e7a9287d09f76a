"""``flask --app wsgi subscribers export|import``: move a shop's subscribers between instances
(``server.merchant.subscribers`` has the format)."""
from __future__ import annotations

import itertools
import json
import os
import sys
from pathlib import Path
from typing import IO

import click
from flask import current_app
from flask.cli import AppGroup

from server.core.db import session_scope
from server.core.errors import ApiError
from server.core.shops import shop_by_public_key
from server.core.vapid_keys import pair_from_pem
from server.merchant.subscribers import SubscriberImport, export_lines

subscribers_cli = AppGroup("subscribers", help="A shop's push subscribers, portable between instances.")

CHUNK = 500  # lines written per transaction on import
PROGRESS_EVERY = 10_000
MAX_ERRORS = 20


def _private_file(path: str) -> IO[str]:
    """``path`` opened for writing, readable by its owner only (0600, also when it existed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "w", encoding="utf-8")


def _instance_pem() -> str:
    path = current_app.config["VAPID_PRIVATE_KEY_FILE"]
    try:
        return Path(path).read_text(encoding="ascii")
    except FileNotFoundError:
        raise click.ClickException(f"no VAPID key at {path}: run `flask --app wsgi vapid init`") from None


@subscribers_cli.command("export")
@click.option("--shop", "public_key", required=True, help="The shop's public key.")
@click.option("--with-vapid", is_flag=True, help="Include the VAPID key pairs (private keys!) the subscriptions use.")
@click.option("-o", "--output", help="The file to write (mode 0600); default: standard output.")
def subscribers_export(public_key: str, with_vapid: bool, output: str | None) -> None:
    """Write the shop's live subscriptions as JSON lines: endpoint, keys, visitor, locale, zone,
    created, last seen and the VAPID key each was made with; with --with-vapid first the key
    pairs (then -o is required: the file is created readable by its owner only)."""
    if with_vapid and not output:
        raise click.UsageError("--with-vapid writes private keys: name a file with -o (it is created with mode 0600)")
    instance_pem = _instance_pem()
    count = 0
    try:
        with session_scope() as session:
            shop = shop_by_public_key(session, public_key)
            handle = _private_file(output) if output else sys.stdout
            try:
                for line in export_lines(session, shop, instance_pem, with_vapid=with_vapid):
                    handle.write(json.dumps(line, separators=(",", ":")) + "\n")
                    count += "endpoint" in line
            finally:
                if output:
                    handle.close()
    except ApiError as exc:
        raise click.ClickException(exc.message) from None
    if output:
        click.echo(json.dumps({"exported": count, "file": output}), err=True)


@subscribers_cli.command("import")
@click.option("--shop", "public_key", required=True, help="The shop's public key (the shop must exist here).")
@click.option("--vapid-private-key", "pem_file", type=click.Path(exists=True, dir_okay=False),
              help="The PEM key pair the subscriptions were made with (coming from another service); "
                   "it becomes the shop's current key.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def subscribers_import(public_key: str, pem_file: str | None, file: str) -> None:
    """Upsert the subscriptions of an export FILE into the shop, by endpoint (running it again
    changes nothing). Every line is checked before anything is written."""
    from server.core.clock import get_clock

    try:
        instance_public, _ = pair_from_pem(_instance_pem())
        given = Path(pem_file).read_text(encoding="ascii") if pem_file else None
    except UnicodeDecodeError:
        raise click.ClickException(f"{pem_file}: not a PEM file") from None
    except ApiError as exc:
        raise click.ClickException(f"the instance's VAPID key ({current_app.config['VAPID_PRIVATE_KEY_FILE']}) "
                                   f"cannot be read: {exc.message}") from None
    try:
        with session_scope() as session:
            shop = shop_by_public_key(session, public_key)
            job = SubscriberImport(shop, instance_public, current_app.config, get_clock().now(), given)
            errors = []
            with open(file, encoding="utf-8") as lines:
                for number, text in enumerate(lines, 1):
                    try:
                        job.check(session, number, text)
                    except ApiError as exc:
                        errors.append(exc.message)
                        if len(errors) >= MAX_ERRORS:
                            break
            if errors:
                raise click.ClickException("nothing imported:\n" + "\n".join(errors))
            job.start(session)
            with open(file, encoding="utf-8") as lines:
                numbered = enumerate(lines, 1)
                while chunk := list(itertools.islice(numbered, CHUNK)):
                    job.apply(session, chunk)
                    session.commit()
                    done = chunk[-1][0]
                    if done // PROGRESS_EVERY > (done - len(chunk)) // PROGRESS_EVERY:
                        click.echo(f"{done} lines imported", err=True)
            counts = job.counts.as_json()
    except ApiError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(json.dumps(counts))
