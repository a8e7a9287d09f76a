"""How long moving a shop takes: ``subscribers import`` of N lines (then again: nothing changes)
and ``subscribers export --with-vapid`` of the result.

    .venv/bin/python bench/subscribers_bench.py [--lines 20000] [--database-url URL]

Writes an export-format file of N subscribers (valid P-256 keys, one shop key), imports it into
a new shop through the commands, imports it a second time, and exports it. Prints one JSON
object with the seconds of each and lines per second. Without ``--database-url`` it uses a
temporary SQLite file; pass a PostgreSQL URL (an empty database) to measure there.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat  # noqa: E402

from server import create_app  # noqa: E402
from server.core.db import session_scope  # noqa: E402
from server.core.models import Base  # noqa: E402
from server.core.vapid_keys import new_pair  # noqa: E402
from server.delivery.push.vapid import init_keys  # noqa: E402
from server.merchant.shop_admin import create_shop  # noqa: E402


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def write_file(path: Path, lines: int) -> None:
    """An export file: one key pair (current), then ``lines`` subscribers made with it."""
    public, pem = new_pair()
    point = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    with path.open("w") as handle:
        handle.write(json.dumps({"vapid": {"public_key": public, "private_key": pem, "current": True}}) + "\n")
        for n in range(lines):
            handle.write(json.dumps({
                "endpoint": f"https://fcm.googleapis.com/fcm/send/bench-{n:08d}",
                "keys": {"p256dh": b64(point), "auth": b64(os.urandom(16))}, "visitor": f"visitor_{n:08d}",
                "locale": "de-DE", "zone": "Europe/Berlin", "created": "2026-11-01T10:00:00+00:00",
                "last_seen": "2026-12-01T10:00:00+00:00", "vapid_public_key": public}) + "\n")


def timed(runner, args: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    result = runner.invoke(args=args)
    seconds = time.perf_counter() - start
    if result.exit_code != 0:
        raise SystemExit(f"{' '.join(args[:2])} failed: {result.output[-2000:]}")
    return seconds, result.output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--database-url")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url = options.database_url or f"sqlite:///{folder / 'bench.db'}"
        engine = sa.create_engine(url)
        Base.metadata.create_all(engine)
        engine.dispose()
        init_keys(folder / "vapid.pem")
        app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "VAPID_PRIVATE_KEY_FILE": str(folder / "vapid.pem"),
                          "VAPID_SUBJECT": "mailto:ops@bench.example", "PUBLIC_URL": "https://push.bench.example",
                          "INSTANCE_PATH": str(folder / "instance"), "RUN_SCHEDULER": False})
        with app.app_context(), session_scope() as session:
            shop_key = create_shop(session, "Bench", ["https://bench.example"], datetime.now(timezone.utc)).shop.public_key
        source = folder / "in.jsonl"
        write_file(source, options.lines)
        runner = app.test_cli_runner(mix_stderr=False) if "mix_stderr" in app.test_cli_runner.__code__.co_varnames \
            else app.test_cli_runner()
        first, out = timed(runner, ["subscribers", "import", "--shop", shop_key, str(source)])
        counts = json.loads(out.strip().splitlines()[-1])
        again, out_again = timed(runner, ["subscribers", "import", "--shop", shop_key, str(source)])
        exported, _ = timed(runner, ["subscribers", "export", "--shop", shop_key, "--with-vapid",
                                     "-o", str(folder / "out.jsonl")])
        print(json.dumps({
            "database": url.split(":", 1)[0], "lines": options.lines, "imported": counts,
            "import_seconds": round(first, 2), "import_lines_per_second": round(options.lines / first),
            "reimport_seconds": round(again, 2), "reimport_counts": json.loads(out_again.strip().splitlines()[-1]),
            "export_seconds": round(exported, 2), "export_lines_per_second": round(options.lines / exported)}))


if __name__ == "__main__":
    main()
