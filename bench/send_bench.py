"""Sending N pushes over HTTPS to a local sink that answers 201, every way we compare, in one run.

    .venv/bin/python bench/send_bench.py [--n 5000] [--pg URL] [--memory-check] [--skip-naive]

The sink is a minimal HTTP/1.1 keep-alive responder (an asyncio protocol on uvloop, TLS) that
reads each request whole and answers ``201``: it runs on the same cores as the senders, so it
is kept cheap, and its own CPU per push is printed next to every row.

What runs, each in a fresh process (so peak memory is its own):

1. the sink alone, hit by a plain aiohttp client (32 concurrent, no encryption): it must be far
   faster than any sender, or the figures below would measure the sink;
2. ``pywebpush.webpush()`` in a loop (the naive baseline: a new TLS connection, key parse and
   VAPID signature per push);
3. node's ``web-push`` 3.6.7 with 32 concurrent sends (the reference implementation);
4. Pushcart's full path: rows inserted in the database (not timed), then claimed, gated,
   rendered, encrypted, sent and recorded by the dispatcher, with one worker (SQLite in a temp
   file, and PostgreSQL when a URL is given) and with two worker processes (PostgreSQL only:
   SQLite runs one worker);
5. the encryption alone (the sender's ``encrypt``: ``http_ece`` as pywebpush's encoder calls it,
   a fresh ECDH key per message, the VAPID header cached; no I/O).

It prints pushes/s, the ratios to the naive loop and to node, peak RSS, the senders' CPU and
the sink's CPU per push for each; ``--memory-check`` also
runs the full path at N and 10×N and compares peak RSS. The PostgreSQL URL comes from
``--pg``, ``BENCH_DATABASE_URL`` or ``TEST_DATABASE_URL``; the run works in a private schema it
drops at the end. The sink's certificate is made at run time (``cryptography``) and trusted by
each client explicitly (an SSL context, ``REQUESTS_CA_BUNDLE``, ``NODE_EXTRA_CA_CERTS``).
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import ipaddress
import json
import multiprocessing as mp
import os
import resource
import secrets
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SUBJECT = "mailto:bench@pushcart.test"
SUBSCRIPTIONS = 100
TITLE = "Your cart is waiting"
BODY = "The Linen Shirt (size M) is still in your cart. Complete your order before it sells out."


# -- set-up -----------------------------------------------------------------------------------

def make_certificate(folder: Path) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 and localhost; returns (cert, key) paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pushcart bench sink")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "sink.pem", folder / "sink.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def client_ssl(cafile: str) -> ssl.SSLContext:
    """A verifying client context that trusts the sink's certificate."""
    return ssl.create_default_context(cafile=cafile)


def _max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()


# -- the sink ---------------------------------------------------------------------------------

class SinkProtocol(asyncio.Protocol):
    """HTTP/1.1 keep-alive: read each request whole (head, then ``Content-Length`` bytes of
    body), answer ``201 Created`` with an empty body. Nothing else, so the sink's CPU stays
    small next to the senders' on the same cores; a request it cannot frame closes the
    connection (the sender then sees a failure and the run says so)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            length = None
            for line in bytes(buffer[:end]).split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
                elif name.strip().lower() == b"transfer-encoding":
                    length = None
                    break
            if length is None:
                self.transport.close()  # no chunked bodies: every sender here sends a length
                return
            if len(buffer) < end + 4 + length:
                return
            del buffer[:end + 4 + length]
            self.transport.write(SINK_REPLY)


SINK_REPLY = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"


def sink_main(cert: str, key: str, ready: Any) -> None:
    """An HTTPS server answering 201 to every request, keep-alive (child process)."""

    async def serve() -> None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        listener = await asyncio.get_running_loop().create_server(SinkProtocol, "127.0.0.1", 0, ssl=context,
                                                                  backlog=1024)
        ready.put(listener.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    loop = _loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(serve())


def sink_alone(url: str, cafile: str, n: int, out: Any) -> None:
    """Plain POSTs of a 300-byte body with aiohttp, 32 at a time (child process)."""
    import aiohttp

    async def run() -> float:
        connector = aiohttp.TCPConnector(limit=32, ssl=client_ssl(cafile))
        body = os.urandom(300)
        async with aiohttp.ClientSession(connector=connector, trust_env=False) as session:
            semaphore = asyncio.Semaphore(32)

            async def one(i: int) -> None:
                async with semaphore:
                    async with session.post(f"{url}/push/{i % SUBSCRIPTIONS}", data=body) as resp:
                        await resp.read()
                        assert resp.status == 201

            started = time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(n)))
            return time.perf_counter() - started

    loop = _loop()
    cpu = time.process_time()
    seconds = loop.run_until_complete(run())
    out.put({"seconds": seconds, "cpu": time.process_time() - cpu, "rss": _max_rss_mib()})


# -- the subscriptions and the payload ---------------------------------------------------------

def make_subscriptions(url: str) -> list[dict[str, Any]]:
    """Subscriptions on the sink with real receiver keys (the encryption does the full work)."""
    sys.path.insert(0, str(ROOT))
    from tests.factories import browser_keys

    return [{"endpoint": f"{url}/push/{i}", "keys": browser_keys()} for i in range(SUBSCRIPTIONS)]


def sample_payload(push_id: int) -> bytes:
    from server.delivery.payload import build_payload

    return build_payload(push_id=push_id, kind="checkout_recovery", title=TITLE, body=BODY,
                         url=f"https://push.shop.example/c/{push_id:x}.0123456789abcdefghijkl",
                         icon="https://shop.example/icon.png", tag="checkout-abc")


# -- the naive loop -------------------------------------------------------------------------

def naive(subscriptions: list[dict[str, Any]], key_file: str, cafile: str, n: int, out: Any) -> None:
    """``pywebpush.webpush()`` per push, as its README shows (child process)."""
    os.environ["REQUESTS_CA_BUNDLE"] = cafile  # requests trusts the sink's certificate
    from pywebpush import webpush

    started, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        webpush(subscriptions[i % len(subscriptions)], data=sample_payload(i).decode(),
                vapid_private_key=key_file, vapid_claims={"sub": SUBJECT}, ttl=3600, timeout=10)
    out.put({"seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu, "rss": _max_rss_mib()})


# -- encryption alone -------------------------------------------------------------------------

def encryption_alone(subscriptions: list[dict[str, Any]], key_file: str, n: int, out: Any) -> None:
    """The sender's ``encrypt`` (http_ece, as pywebpush's encoder calls it, a fresh ECDH key
    per message) plus the cached VAPID header, no I/O (child process)."""
    from server.delivery.sender import Message, VapidCache, encrypt, origin_of
    from server.delivery.vapid import load_keys

    cache = VapidCache(load_keys(key_file), SUBJECT)
    messages = [Message(i, s["endpoint"], s["keys"]["p256dh"], s["keys"]["auth"], sample_payload(i), 3600)
                for i, s in ((i, subscriptions[i % len(subscriptions)]) for i in range(n))]
    started, cpu = time.perf_counter(), time.process_time()
    for message in messages:
        cache.header(origin_of(message.endpoint))
        encrypt(message)
    out.put({"seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu, "rss": _max_rss_mib()})


# -- Pushcart's full path -----------------------------------------------------------------------

def bench_config(database_url: str, key_file: str, instance: str) -> dict[str, Any]:
    # The shipped defaults otherwise: batches of 200, 32 in flight, pipelined.
    return {"DATABASE_URL": database_url, "VAPID_PRIVATE_KEY_FILE": key_file, "VAPID_SUBJECT": SUBJECT,
            "SECRET_KEY": "bench-secret", "PUBLIC_URL": "https://push.shop.example", "INSTANCE_PATH": instance,
            "PUSHCART_INSECURE_ENDPOINTS": True, "RUN_SCHEDULER": False, "LOG_LEVEL": "WARNING"}


def prepare_database(database_url: str, subscriptions: list[dict[str, Any]], n: int) -> None:
    """Tables, one shop, the subscriptions and ``n`` due ``shipped`` pushes (not timed)."""
    import hashlib

    import sqlalchemy as sa

    from server.core.clock import utcnow
    from server.core.models import Base, Push, Subscription, Visitor
    from server.merchant.shops import create_shop

    engine = sa.create_engine(database_url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    now = utcnow()
    with sa.orm.Session(engine) as session:
        shop = create_shop(session, "Bench Shop", ["https://shop.example"], now).shop
        session.flush()
        sub_ids = []
        for i, sub in enumerate(subscriptions):
            visitor = Visitor(shop_id=shop.id, visitor_key=f"v{i}", first_seen_at=now, last_event_at=now)
            session.add(visitor)
            session.flush()
            row = Subscription(shop_id=shop.id, visitor_id=visitor.id, endpoint=sub["endpoint"],
                               endpoint_hash=hashlib.sha256(sub["endpoint"].encode()).hexdigest(),
                               p256dh=sub["keys"]["p256dh"], auth=sub["keys"]["auth"], created_at=now,
                               last_seen_at=now)
            session.add(row)
            session.flush()
            sub_ids.append((visitor.id, row.id))
        for start in range(0, n, 5000):
            session.execute(sa.insert(Push), [
                {"shop_id": shop.id, "visitor_id": sub_ids[i % len(sub_ids)][0],
                 "subscription_id": sub_ids[i % len(sub_ids)][1], "kind": "shipped", "dedupe_key": f"b:{i}",
                 "title": TITLE, "body": BODY, "url": "https://shop.example/orders/1",
                 "icon": "https://shop.example/icon.png", "status": "pending",
                 "due_at": now - dt.timedelta(seconds=1), "attempts": 0, "step": 0, "ttl": 86400,
                 "urgency": "normal", "created_at": now}
                for i in range(start, min(n, start + 5000))])
        session.commit()
    engine.dispose()


def worker_main(config: dict[str, Any], cafile: str, go: Any, out: Any) -> None:
    """One worker process: build the app and dispatcher, wait for the start, drain the outbox."""
    from server import create_app
    from server.core.clock import get_clock
    from server.core.db import get_db
    from server.delivery.dispatcher import Dispatcher
    from server.delivery.sender import WebPushSender, sender_options
    from server.delivery.vapid import get_vapid

    app = create_app(config)
    sender = WebPushSender(get_vapid(app), SUBJECT, ssl_context=client_ssl(cafile), **sender_options(app.config))
    dispatcher = Dispatcher(get_db(app), sender, app.config, get_clock(app))
    go.wait()
    started, cpu = time.perf_counter(), time.process_time()
    total = 0
    while True:
        counts = dispatcher.run_pass()
        done = counts.sent + counts.failed + counts.expired + counts.skipped
        total += counts.sent
        if done == 0:
            break
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    sender.close()
    get_db(app).dispose()
    out.put({"seconds": seconds, "cpu": cpu, "sent": total, "rss": _max_rss_mib()})


def full_path(ctx: Any, database_url: str, workers: int, subscriptions: list[dict[str, Any]], key_file: str,
              cafile: str, n: int, instance: str) -> dict[str, Any]:
    """Time ``workers`` processes draining ``n`` due pushes; checks every row ended ``sent``."""
    import sqlalchemy as sa

    prepare_database(database_url, subscriptions, n)
    go, out = ctx.Event(), ctx.Queue()
    config = bench_config(database_url, key_file, instance)
    processes = [ctx.Process(target=worker_main, args=(config, cafile, go, out)) for _ in range(workers)]
    for process in processes:
        process.start()
    time.sleep(2.0)  # let every worker import and connect before the clock starts
    started = time.perf_counter()
    go.set()
    results = [out.get(timeout=600) for _ in processes]
    seconds = time.perf_counter() - started
    for process in processes:
        process.join()
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        statuses = dict(conn.execute(sa.text("select status, count(*) from pushes group by status")).all())
    engine.dispose()
    if statuses != {"sent": n}:
        raise RuntimeError(f"full path left {statuses}")
    return {"seconds": seconds, "cpu": sum(r["cpu"] for r in results), "rss": max(r["rss"] for r in results),
            "sent": sum(r["sent"] for r in results)}


# -- running it -------------------------------------------------------------------------------

def process_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) used so far by process ``pid``; None where /proc is missing."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def with_sink_cpu(sink_pid: int, run: Any) -> dict[str, Any]:
    """``run()``'s result, plus the CPU the sink spent meanwhile (``sink_cpu``)."""
    before = process_cpu(sink_pid)
    result = run()
    after = process_cpu(sink_pid)
    result["sink_cpu"] = None if before is None or after is None else after - before
    return result


def run_child(ctx: Any, target: Any, *args: Any) -> dict[str, Any]:
    out = ctx.Queue()
    process = ctx.Process(target=target, args=(*args, out))
    process.start()
    result = out.get(timeout=900)
    process.join()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=5000, help="pushes per way of sending (default 5000)")
    parser.add_argument("--pg", default=os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL"),
                        help="a PostgreSQL URL for the one- and two-worker runs")
    parser.add_argument("--memory-check", action="store_true", help="also run the full path at N and 10×N")
    parser.add_argument("--skip-naive", action="store_true", help="skip the (slow) naive loop")
    args = parser.parse_args()
    n = args.n
    ctx = mp.get_context("spawn")
    work = Path(tempfile.mkdtemp(prefix="pushcart-bench-"))
    rows: list[tuple[str, dict[str, Any]]] = []
    schema = None
    sink = None
    try:
        cert, key = make_certificate(work)
        from server.delivery.vapid import init_keys

        key_file = str(work / "vapid.pem")
        init_keys(key_file)
        ready = ctx.Queue()
        sink = ctx.Process(target=sink_main, args=(cert, key, ready), daemon=True)
        sink.start()
        url = f"https://127.0.0.1:{ready.get(timeout=30)}"
        subscriptions = make_subscriptions(url)
        print(f"sending {n} pushes to a local HTTPS sink on {os.cpu_count()} cores\n", flush=True)

        rows.append(("sink alone (aiohttp client, 32 concurrent, no crypto)",
                     with_sink_cpu(sink.pid, lambda: run_child(ctx, sink_alone, url, cert, n))))
        if not args.skip_naive:
            rows.append(("pywebpush.webpush() loop (naive baseline)",
                         with_sink_cpu(sink.pid, lambda: run_child(ctx, naive, subscriptions, key_file, cert, n))))
        rows.append(("node web-push 3.6.7, 32 concurrent",
                     with_sink_cpu(sink.pid, lambda: node_send(work, subscriptions, key_file, cert, n))))
        sqlite_url = f"sqlite:///{work / 'bench.db'}"
        rows.append(("Pushcart full path, 1 worker, SQLite",
                     with_sink_cpu(sink.pid, lambda: full_path(ctx, sqlite_url, 1, subscriptions, key_file, cert, n,
                                                               str(work / "instance")))))
        if args.pg:
            import sqlalchemy as sa

            schema = f"bench_{os.getpid()}_{secrets.token_hex(2)}"
            admin = sa.create_engine(args.pg)
            with admin.begin() as conn:
                conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
            admin.dispose()
            sep = "&" if "?" in args.pg else "?"
            pg_url = f"{args.pg}{sep}options=-csearch_path%3D{schema}"
            for workers in (1, 2):
                rows.append((f"Pushcart full path, {workers} worker{'s' if workers > 1 else ''}, PostgreSQL",
                             with_sink_cpu(sink.pid, lambda: full_path(ctx, pg_url, workers, subscriptions, key_file,
                                                                       cert, n, str(work / "instance")))))
        rows.append(("encryption alone (http_ece as pywebpush calls it, 1 core)",
                     with_sink_cpu(sink.pid, lambda: run_child(ctx, encryption_alone, subscriptions, key_file, n))))
        report(rows, n)
        if args.memory_check:
            memory_check(ctx, subscriptions, key_file, cert, n, work)
    finally:
        if sink is not None:
            sink.terminate()
        if schema:
            import sqlalchemy as sa

            admin = sa.create_engine(args.pg)
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
        shutil.rmtree(work, ignore_errors=True)
    return 0


def node_send(work: Path, subscriptions: list[dict[str, Any]], key_file: str, cafile: str, n: int) -> dict[str, Any]:
    """Run bench/node_send.js with the same subscriptions, payloads and VAPID key."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from server.delivery.vapid import b64url, load_keys

    vapid = load_keys(key_file)
    private = vapid.private_key.private_numbers().private_value.to_bytes(32, "big")
    public = vapid.public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    job = work / "node_job.json"
    job.write_text(json.dumps({"subscriptions": subscriptions, "n": n, "concurrency": 32,
                               "payload": sample_payload(1).decode(),
                               "vapid": {"subject": SUBJECT, "publicKey": b64url(public),
                                         "privateKey": b64url(private)}}))
    env = {**os.environ, "NODE_EXTRA_CA_CERTS": cafile, "NODE_PATH": str(ROOT / "node_modules")}
    done = subprocess.run(["node", str(ROOT / "bench" / "node_send.js"), str(job)], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True)
    result = json.loads(done.stdout)
    if result["failed"]:
        raise RuntimeError(f"node web-push: {result['failed']} sends failed")
    return {"seconds": result["seconds"], "cpu": result["cpu_seconds"], "rss": result["max_rss_kb"] / 1024}


def report(rows: list[tuple[str, dict[str, Any]]], n: int) -> None:
    rates = {label: n / r["seconds"] for label, r in rows}
    naive_rate = next((rate for label, rate in rates.items() if label.startswith("pywebpush")), None)
    node_rate = next((rate for label, rate in rates.items() if label.startswith("node")), None)
    print(f"{'way of sending':<62} {'pushes/s':>9} {'× naive':>8} {'× node':>7} {'peak RSS':>10}"
          f" {'CPU ms/push':>12} {'sink CPU':>9}")
    for label, r in rows:
        rate = rates[label]
        vs_naive = f"{rate / naive_rate:.1f}" if naive_rate else "-"
        vs_node = f"{rate / node_rate:.2f}" if node_rate else "-"
        sink_cpu = f"{1000 * r['sink_cpu'] / n:.2f}" if r.get("sink_cpu") is not None else "-"
        print(f"{label:<62} {rate:>9,.0f} {vs_naive:>8} {vs_node:>7} {r['rss']:>7.0f} MiB"
              f" {1000 * r['cpu'] / n:>12.2f} {sink_cpu:>9}")
    print("(CPU ms/push: the sender's own processes, not the sink nor the PostgreSQL server;"
          " sink CPU: the sink's, in ms per push, meanwhile.)")
    one = next((rates[l] for l in rates if "1 worker, PostgreSQL" in l), None)
    two = next((rates[l] for l in rates if "2 workers" in l), None)
    if one and two:
        print(f"\ntwo workers ÷ one worker (PostgreSQL): {two / one:.2f}")
    sys.stdout.flush()


def memory_check(ctx: Any, subscriptions: list[dict[str, Any]], key_file: str, cafile: str, n: int,
                 work: Path) -> None:
    print("\nmemory, full path, 1 worker, SQLite:")
    peaks = []
    for size in (n, 10 * n):
        url = f"sqlite:///{work / f'memory_{size}.db'}"
        result = full_path(ctx, url, 1, subscriptions, key_file, cafile, size, str(work / "instance"))
        peaks.append(result["rss"])
        print(f"  {size:>7,} pushes: {size / result['seconds']:>7,.0f} pushes/s, peak RSS {result['rss']:.0f} MiB",
              flush=True)
    print(f"  peak RSS at 10×N ÷ at N: {peaks[1] / peaks[0]:.2f}")


if __name__ == "__main__":
    sys.exit(main())
