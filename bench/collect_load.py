"""Load run of the collect API: gunicorn (2 workers) driven by wrk, beside a bare Flask ceiling.

    .venv/bin/python bench/collect_load.py [--duration 10] [--rounds 2] [--connections 4] [--backends sqlite,postgresql]
                                            [--compare DIR]

In one run, on loopback only: a bare Flask app (``bench/hello_app.py``, parses the same body
and answers) is the ceiling; then the collect API (``POST /v1/shops/{key}/events``, batches of
3 events with distinct ids, from ``bench/collect_events.lua``) on a fresh SQLite file and on a
fresh PostgreSQL schema. Both servers run side by side and the measured wrk runs alternate:
ceiling, target, ceiling, target, ..., ceiling (``--rounds`` targets). Each round's target is
compared with the mean of the ceilings just before and just after it, so a machine whose speed
drifts during the run (a shared host) moves both alike; the target's line gives its totals over
the rounds and the ratio of its mean rate to the mean of its ceilings. Before each ceiling run
the journal is drained, so the collect server's drain never runs during the ceiling's.
Rate limits are switched off for the run (``RATELIMIT_ENABLED=0``);
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
import statistics
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

from server.core.models import Base, Event

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


def prepare_database(url: str, vapid_file: str, rollups: bool = True) -> str:
    """Create the tables and one shop; return the shop's public key. ``rollups=False`` drops the
    rollups' triggers (``server.core.rollups``): the database of a ``--compare`` tree older than them."""
    from server import create_app
    from server.core.clock import utcnow
    from server.core.db import get_db, session_scope
    from server.merchant.shop_admin import create_shop

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    Base.metadata.create_all(engine)
    if not rollups:
        from server.core.rollups import drop_sql

        with engine.begin() as conn:
            for statement in drop_sql(engine.dialect.name):
                conn.exec_driver_sql(statement)
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
                   extra: list[str], tree: Path = ROOT) -> subprocess.Popen:
    cmd = [str(ROOT / ".venv" / "bin" / "gunicorn"), "-w", str(workers), "-b", f"127.0.0.1:{port}",
           "--log-level", "warning", *extra, target]
    log = open(log_path, "ab")
    return subprocess.Popen(cmd, cwd=tree, env={**env, "PYTHONPATH": str(tree)}, stdout=log, stderr=log,
                            start_new_session=True)


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


class Server:
    """A gunicorn serving ``target`` on a free loopback port, until ``stop``."""

    def __init__(self, name: str, target: str, path: str, env: dict[str, str], args: argparse.Namespace,
                 tmp: Path, ready_path: str, extra: list[str], tree: Path = ROOT) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.path = path
        self.args = args
        self.process = start_gunicorn(target, self.port, env, tmp / f"{name}.log", args.workers, extra, tree)
        try:
            wait_ready(self.base + ready_path)
        except BaseException:
            stop(self.process)
            raise

    def run(self, duration: float) -> dict:
        return run_wrk(self.base, self.path, duration, self.args.connections, self.args.threads)

    def stop(self) -> None:
        stop(self.process)


def combine(runs: list[dict]) -> dict:
    """Several wrk runs of one target as one: totals, rates over the summed time, the highest p99
    and the median p50."""
    duration = sum(r["duration_s"] for r in runs)
    total = {key: sum(r[key] for r in runs) for key in ("requests", "accepted", "ok", "refused")
             if all(key in r for r in runs)}
    return {**total, "duration_s": duration, "rps": total["requests"] / duration,
            "events_per_s": total["accepted"] / duration, "p50_ms": statistics.median(r["p50_ms"] for r in runs),
            "p99_ms": max(r["p99_ms"] for r in runs), "runs": len(runs)}


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
    parser.add_argument("--rounds", type=int, default=2, help="measured runs of each target, between ceiling runs")
    parser.add_argument("--compare", metavar="DIR", default=None,
                        help="another checkout (an earlier commit): its collect API runs beside this one's, "
                             "alternating, on its own database")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is missing: apt-get install wrk", file=sys.stderr)
        return 2
    extra = ["-k", args.worker_class] + (["--threads", str(args.server_threads)] if args.worker_class == "gthread" else [])

    tmp = Path(tempfile.mkdtemp(prefix="pushcart-bench-"))
    from server.delivery.push.vapid import init_keys

    vapid_file = str(tmp / "vapid.pem")
    init_keys(vapid_file)
    base_env = {**os.environ, "PUSHCART_SECRET_KEY": secrets.token_urlsafe(32), "VAPID_PRIVATE_KEY_FILE": vapid_file,
                "VAPID_SUBJECT": "mailto:bench@pushcart.test", "RATELIMIT_ENABLED": "0", "RUN_SCHEDULER": "0",
                "PYTHONPATH": str(ROOT)}
    rows = []
    schema = f"bench_{os.getpid()}_{secrets.token_hex(3)}"
    schemas: list[str] = []
    admin = sa.create_engine(PG_URL, poolclass=sa.pool.NullPool)
    hello_server: Server | None = None
    try:
        hello_server = Server("hello", "hello_app:app", "/hello", {**base_env, "PYTHONPATH": str(ROOT / "bench")},
                              args, tmp, "/hello", extra + ["--pythonpath", str(ROOT / "bench")])
        hello_server.run(args.warmup)
        trees = [("", ROOT)] + ([(" [compare]", Path(args.compare).resolve())] if args.compare else [])
        for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
            targets = []  # (label, url, journal folder, server) per tree, all up side by side
            try:
                for n, (label, tree) in enumerate(trees):
                    if backend == "sqlite":
                        url = f"sqlite:///{tmp / f'bench-{n}.db'}"
                    else:
                        schemas.append(f"{schema}_{n}")
                        with admin.begin() as conn:
                            conn.execute(sa.text(f'CREATE SCHEMA "{schemas[-1]}"'))
                        url = with_schema(PG_URL, schemas[-1])
                    key = prepare_database(url, vapid_file, (tree / "server" / "core" / "rollups.py").exists())
                    journal_dir = tmp / f"journal-{backend}-{n}"
                    env = {**base_env, "DATABASE_URL": url, "COLLECT_JOURNAL_DIR": str(journal_dir)}
                    server = Server(f"{backend}-{n}", "wsgi:app", f"/v1/shops/{key}/events", env, args, tmp,
                                    "/healthz", extra, tree)
                    targets.append((label, url, journal_dir, server))
                accepted = [t[3].run(args.warmup)["accepted"] for t in targets]
                ceilings: list[dict] = []
                runs: list[list[dict]] = [[] for _ in targets]
                drains: list[list[float | None]] = [[] for _ in targets]
                for round_ in range(args.rounds + 1):
                    # How long each run's last accepted events took to be stored after it ended (and
                    # the drains are over: they take no CPU from the ceiling's run).
                    for i, (_, url, _, _) in enumerate(targets):
                        drains[i].append(wait_stored(url, accepted[i]))
                    ceilings.append(hello_server.run(args.duration))
                    if round_ == args.rounds:
                        break
                    for i, target in enumerate(targets):
                        runs[i].append(target[3].run(args.duration))
                        accepted[i] += runs[i][-1]["accepted"]
            finally:
                for target in targets:
                    target[3].stop()
            ceiling = combine(ceilings)
            rows.append((f"bare Flask (ceiling, {len(ceilings)} runs)", ceiling, None, None))
            for i, (label, url, journal_dir, _) in enumerate(targets):
                result = combine(runs[i])
                result["drain_s"] = None if None in drains[i][1:] else max(drains[i][1:])
                stored = count_events(url)
                in_flight = (1 + args.rounds) * args.connections * 3  # every wrk run stops with requests in flight
                # Journals live in a folder per database (with its DATABASE label): every file but the label.
                left = sorted(p.name for p in journal_dir.rglob("*") if p.is_file() and p.name != "DATABASE")
                result["check"] = {"accepted": accepted[i], "stored": stored, "journal_files_left": left,
                                   "ok": accepted[i] <= stored <= accepted[i] + in_flight and not left}
                # Each run against the mean of the ceiling runs just before and after it.
                result["round_ratios"] = [round(run["rps"] / ((ceilings[n]["rps"] + ceilings[n + 1]["rps"]) / 2), 3)
                                          for n, run in enumerate(runs[i])]
                plural = "s" if len(runs[i]) != 1 else ""
                rows.append((f"collect on {backend}{label} ({len(runs[i])} run{plural})", result, result["check"],
                             ceiling["rps"]))
    finally:
        if hello_server is not None:
            hello_server.stop()
        with admin.begin() as conn:
            for name in schemas:
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        admin.dispose()

    print(f"\ncollect load: gunicorn {args.workers} {args.worker_class} workers, wrk -t{args.threads} "
          f"-c{args.connections}, {args.rounds} runs of {args.duration:g}s per target between runs of the ceiling, "
          "3 events per request, loopback")
    print("x ceiling: the target's mean rate against the mean of the ceiling runs around its runs\n")
    print(f"{'target':<34}{'req/s':>9}{'events/s':>10}{'p50 ms':>8}{'p99 ms':>8}{'x ceiling':>10}"
          f"{'drain s':>9}  stored check")
    report = []
    for name, result, check, ceiling in rows:
        ratio = result["rps"] / (ceiling or result["rps"])
        check_text = "" if check is None else (
            f"{'OK' if check['ok'] else 'LOST'}: {check['accepted']} accepted, {check['stored']} stored"
            + (f", journal files left: {check['journal_files_left']}" if check["journal_files_left"] else ""))
        drain = result.get("drain_s")
        drain_text = "" if check is None else ("never" if drain is None else f"{drain:.2f}")
        print(f"{name:<34}{result['rps']:>9.0f}{result['events_per_s']:>10.0f}{result['p50_ms']:>8.1f}"
              f"{result['p99_ms']:>8.1f}{ratio:>10.2f}{drain_text:>9}  {check_text}")
        if result.get("round_ratios"):
            print(f"{'':<34}each run against the ceiling runs just before and after it: "
                  + " / ".join(f"{r:.2f}" for r in result["round_ratios"]))
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
