"""Load run of the collect API: gunicorn (2 workers) driven by wrk, beside a bare Flask ceiling.

    .venv/bin/python bench/collect_load.py [--duration 10] [--connections 4] [--backends sqlite,postgresql]

In one run, on loopback only: a bare Flask app (``bench/hello_app.py``, parses the same body
and answers) is the ceiling; then the collect API (``POST /v1/shops/{key}/events``, batches of
3 events with distinct ids, from ``bench/collect_events.lua``) on a fresh SQLite file and on a
fresh PostgreSQL schema. The ceiling is measured before the first target and again after each
one, and each target is compared with the mean of the ceilings measured just before and just
after it: a machine whose speed drifts during the run (a shared host) moves both alike. Rate limits are switched off for the run (``RATELIMIT_ENABLED=0``);
everything else is the production default (INFO logs to a file, sync workers).

Printed per target: requests/s, events/s, p50/p99 latency, the ratio to the ceiling, and the
count check: every event the server answered as accepted is in the database afterwards (the
database may hold a few more: requests in flight when wrk stopped). Needs ``wrk`` (Debian).
Every step is bounded in time; servers are stopped and the schema dropped at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from server.models import Base, Event  # noqa: E402

PG_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
RESULT = re.compile(r"^RESULT (\{.*\})$", re.M)


def free_port() -> int:
    """A free loopback port (bind to port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def with_schema(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}"


def prepare_database(url: str, vapid_file: str) -> str:
    """Create the tables and one shop; return the shop's public key."""
    from server import create_app
    from server.clock import utcnow
    from server.db import get_db, session_scope
    from server.services.shops import create_shop

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    Base.metadata.create_all(engine)
    engine.dispose()
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "VAPID_PRIVATE_KEY_FILE": vapid_file,
                      "INSTANCE_PATH": str(Path(vapid_file).parent / "instance")})
    with app.app_context(), session_scope(app) as session:
        key = create_shop(session, "Bench Shop", ["https://shop.example"], utcnow()).shop.public_key
    get_db(app).dispose()
    return key


def count_events(url: str) -> int:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        n = conn.scalar(sa.select(sa.func.count()).select_from(Event))
    engine.dispose()
    return int(n or 0)


def start_gunicorn(target: str, port: int, env: dict[str, str], log_path: Path, workers: int,
                   extra: list[str]) -> subprocess.Popen:
    cmd = [str(ROOT / ".venv" / "bin" / "gunicorn"), "-w", str(workers), "-b", f"127.0.0.1:{port}",
           "--log-level", "warning", *extra, target]
    log = open(log_path, "ab")
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True)


def wait_ready(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 (loopback only)
                return
        except urllib.error.HTTPError:
            return  # it answers (e.g. 405 to a GET): it is up
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server at {url} did not start")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def run_wrk(url: str, path: str, duration: float, connections: int, threads: int) -> dict:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s", "--timeout", "5s", "--latency",
           "-s", str(ROOT / "bench" / "collect_events.lua"), url, "--", path, secrets.token_hex(3)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30, check=True).stdout
    found = RESULT.search(out)
    if not found:
        raise RuntimeError(f"wrk printed no result:\n{out}")
    result = json.loads(found.group(1))
    result["rps"] = result["requests"] / result["duration_s"]
    result["events_per_s"] = result["accepted"] / result["duration_s"]
    return result


def wait_stored(url: str, accepted: int, timeout: float = 60.0) -> float | None:
    """Seconds until the database holds ``accepted`` events (journaled ones are drained after
    the answer), or None if it does not within ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if count_events(url) >= accepted:
            return time.monotonic() - started
        time.sleep(0.05)
    return None


def measure(name: str, target: str, path: str, env: dict[str, str], args: argparse.Namespace,
            tmp: Path, ready_path: str, extra: list[str], database_url: str | None = None) -> tuple[dict, dict]:
    port = free_port()
    server = start_gunicorn(target, port, env, tmp / f"{name}.log", args.workers, extra)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base + ready_path)
        warm = run_wrk(base, path, args.warmup, args.connections, args.threads)
        result = run_wrk(base, path, args.duration, args.connections, args.threads)
        if database_url is not None:
            # Measured while the server runs: how long the last accepted events took to be stored.
            result["drain_s"] = wait_stored(database_url, warm["accepted"] + result["accepted"])
    finally:
        stop(server)
    return warm, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of each measured wrk run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up before each run")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--worker-class", default="sync", help="gunicorn worker class (sync, gthread)")
    parser.add_argument("--server-threads", type=int, default=4, help="threads per gunicorn worker (gthread)")
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is missing: apt-get install wrk", file=sys.stderr)
        return 2
    extra = ["-k", args.worker_class] + (["--threads", str(args.server_threads)] if args.worker_class == "gthread" else [])

    tmp = Path(tempfile.mkdtemp(prefix="pushcart-bench-"))
    from server.vapid import init_keys

    vapid_file = str(tmp / "vapid.pem")
    init_keys(vapid_file)
    base_env = {**os.environ, "PUSHCART_SECRET_KEY": secrets.token_urlsafe(32), "VAPID_PRIVATE_KEY_FILE": vapid_file,
                "VAPID_SUBJECT": "mailto:bench@pushcart.test", "RATELIMIT_ENABLED": "0", "RUN_SCHEDULER": "0",
                "PYTHONPATH": str(ROOT)}
    rows = []
    schema = f"bench_{os.getpid()}_{secrets.token_hex(3)}"
    admin = sa.create_engine(PG_URL, poolclass=sa.pool.NullPool)
    ceilings: list[dict] = []

    def measure_ceiling() -> dict:
        _, hello = measure("hello", "hello_app:app", "/hello", {**base_env, "PYTHONPATH": str(ROOT / "bench")},
                           args, tmp, "/hello", extra + ["--pythonpath", str(ROOT / "bench")])
        ceilings.append(hello)
        rows.append((f"bare Flask (ceiling {len(ceilings)})", hello, None, None))
        return hello

    try:
        before = measure_ceiling()
        for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
            if backend == "sqlite":
                url = f"sqlite:///{tmp / 'bench.db'}"
            else:
                with admin.begin() as conn:
                    conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
                url = with_schema(PG_URL, schema)
            key = prepare_database(url, vapid_file)
            journal_dir = tmp / f"journal-{backend}"
            env = {**base_env, "DATABASE_URL": url, "COLLECT_JOURNAL_DIR": str(journal_dir)}
            warm, result = measure(backend, "wsgi:app", f"/v1/shops/{key}/events", env, args, tmp, "/healthz", extra,
                                   database_url=url)
            stored = count_events(url)
            accepted = warm["accepted"] + result["accepted"]
            in_flight = 2 * args.connections * 3  # the warm-up and the run each stop with requests in flight
            left = sorted(p.name for p in journal_dir.glob("*")) if journal_dir.exists() else []
            result["check"] = {"accepted": accepted, "stored": stored, "journal_files_left": left,
                               "ok": accepted <= stored <= accepted + in_flight and not left}
            row = (f"collect on {backend}", result, result["check"], None)
            after = measure_ceiling()
            rows.insert(-1, (*row[:3], (before["rps"] + after["rps"]) / 2))
            before = after
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()

    print(f"\ncollect load: gunicorn {args.workers} {args.worker_class} workers, wrk -t{args.threads} "
          f"-c{args.connections} -d{args.duration:g}s, 3 events per request, loopback\n")
    print("x ceiling: against the mean of the ceilings measured just before and just after the target\n")
    print(f"{'target':<24}{'req/s':>9}{'events/s':>10}{'p50 ms':>8}{'p99 ms':>8}{'x ceiling':>10}"
          f"{'drain s':>9}  stored check")
    report = []
    for name, result, check, ceiling in rows:
        ratio = result["rps"] / (ceiling or result["rps"])
        check_text = "" if check is None else (
            f"{'OK' if check['ok'] else 'LOST'}: {check['accepted']} accepted, {check['stored']} stored"
            + (f", journal files left: {check['journal_files_left']}" if check["journal_files_left"] else ""))
        drain = result.get("drain_s")
        drain_text = "" if check is None else ("never" if drain is None else f"{drain:.2f}")
        print(f"{name:<24}{result['rps']:>9.0f}{result['events_per_s']:>10.0f}{result['p50_ms']:>8.1f}"
              f"{result['p99_ms']:>8.1f}{ratio:>10.2f}{drain_text:>9}  {check_text}")
        report.append({"target": name, **result, "ratio_to_ceiling": round(ratio, 3),
                       "ceiling_rps": round(ceiling or result["rps"], 1)})
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "collect_load.json").write_text(json.dumps({"args": vars(args), "rows": report}, indent=2))
    shutil.rmtree(tmp, ignore_errors=True)
    lost = [r for _, r, c, _ in rows if c is not None and not c["ok"]]
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
