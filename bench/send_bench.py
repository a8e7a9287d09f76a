"""Sending N pushes to a local sink that answers 201, every way we compare, in one run.

    python bench/send_bench.py [--n 5000] [--pg URL] [--https] [--processes 2] [--interval 0.2]
                               [--compare DIR] [--memory-check] [--skip-naive]

The sink is a minimal HTTP/1.1 keep-alive responder (an asyncio protocol on uvloop) that reads
each request whole and answers ``201``. By default it speaks plain HTTP (the contract's test
mode, ``PUSHCART_INSECURE_ENDPOINTS=1``, allows ``http://127.0.0.1:<port>`` endpoints), so the
figures measure the senders rather than TLS; ``--https`` runs everything over TLS with a
self-signed certificate made at run time and trusted by each client explicitly. The sink runs
on the same cores as the senders, so it is kept cheap, and its CPU per push is printed on
every row.

What runs, each in its own process, in one run (so every ratio is against baselines measured
on the same machine at the same time):

1. the sink alone, hit by a plain libcurl client (32 in flight, no encryption);
2. ``pywebpush.webpush()`` in a loop (the naive baseline: a new connection, key parse and
   VAPID signature per push);
3. node's ``web-push`` with 32 in flight (``bench/node_send.js``);
4. Pushcart through its real commands, as a user runs them:
   ``flask --app wsgi dispatch --once`` as a subprocess on a temp SQLite file with N due
   pushes (the whole command is timed), the same command with nothing due (its start-up
   cost), and ``flask --app wsgi worker --processes P`` as a subprocess, on SQLite and, when
   a PostgreSQL URL is given, on PostgreSQL with 1 and 2 processes: the rows are inserted
   while the worker idles and timed from their commit until every one is ``sent``, then the
   worker gets SIGTERM and must exit 0;
5. the encryption alone (the sender's ``encrypt``: ``http_ece`` as pywebpush calls it).

``--compare DIR`` also runs the Pushcart rows from another checkout (e.g. the previous
commit, ``git archive``'d into DIR), alternating with this one, so a change on the hot path is
measured against the previous code in the same run. The PostgreSQL URL comes from ``--pg``,
``BENCH_DATABASE_URL`` or ``TEST_DATABASE_URL``; the run works in a private schema it drops at
the end. The commands run with Python's bytecode cache allowed (``PYTHONDONTWRITEBYTECODE`` is
dropped from their environment), as an installed service runs.
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
import signal
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
    """This process's peak RSS. ``VmHWM`` (Linux), because ``ru_maxrss`` survives exec: a
    spawned child would report the bench's own peak at the time it was forked."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
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
    body), answer ``201 Created`` with an empty body, at once or ``delay`` seconds later (a
    push service that far away). Nothing else, so the sink's CPU stays small next to the
    senders' on the same cores; a request it cannot frame closes the connection (the sender
    then sees a failure and the run says so)."""

    delay = 0.0

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
            if self.delay:
                asyncio.get_running_loop().call_later(self.delay, self._reply)
            else:
                self.transport.write(SINK_REPLY)

    def _reply(self) -> None:
        if not self.transport.is_closing():
            self.transport.write(SINK_REPLY)


SINK_REPLY = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"


def sink_main(cert: str | None, key: str | None, ready: Any, delay: float = 0.0) -> None:
    """An HTTP (or, with a certificate, HTTPS) server answering 201 to every request,
    keep-alive, ``delay`` seconds after it arrived (child process)."""
    SinkProtocol.delay = delay

    async def serve() -> None:
        context = None
        if cert:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cert, key)
        listener = await asyncio.get_running_loop().create_server(SinkProtocol, "127.0.0.1", 0, ssl=context,
                                                                  backlog=1024)
        ready.put(listener.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    loop = _loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(serve())


def sink_alone(url: str, cafile: str | None, n: int, out: Any) -> None:
    """Plain POSTs of a 300-byte body with libcurl's multi interface (the sender's HTTP
    library), 32 at a time, no encryption, no VAPID (child process)."""
    import pycurl

    body = os.urandom(300)
    multi = pycurl.CurlMulti()
    free = []
    for _ in range(32):
        curl = pycurl.Curl()
        curl.setopt(pycurl.WRITEFUNCTION, lambda data: None)
        curl.setopt(pycurl.HTTPHEADER, ["Content-Type: application/octet-stream", "Expect:"])
        curl.setopt(pycurl.NOSIGNAL, 1)
        curl.setopt(pycurl.PROXY, "")
        if cafile:
            curl.setopt(pycurl.CAINFO, cafile)
        free.append(curl)
    started, cpu = time.perf_counter(), time.process_time()
    queued = done = 0
    while done < n:
        while free and queued < n:
            curl = free.pop()
            curl.setopt(pycurl.URL, f"{url}/push/{queued % SUBSCRIPTIONS}")
            curl.setopt(pycurl.POSTFIELDS, body)
            multi.add_handle(curl)
            queued += 1
        while multi.perform()[0] == pycurl.E_CALL_MULTI_PERFORM:
            pass
        while True:
            left, succeeded, failed = multi.info_read()
            if failed:
                raise RuntimeError(f"sink alone: {failed[0][2]}")
            for curl in succeeded:
                if curl.getinfo(pycurl.RESPONSE_CODE) != 201:
                    raise RuntimeError(f"sink alone: status {curl.getinfo(pycurl.RESPONSE_CODE)}")
                multi.remove_handle(curl)
                free.append(curl)
                done += 1
            if not left:
                break
        if done < n:
            multi.select(1.0)
    out.put({"seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu, "rss": _max_rss_mib()})


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

def naive(subscriptions: list[dict[str, Any]], key_file: str, cafile: str | None, n: int, out: Any) -> None:
    """``pywebpush.webpush()`` per push, as its README shows (child process)."""
    if cafile:
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
    from server.delivery.push import Message
    from server.delivery.push.crypto import encrypt
    from server.delivery.push.transport import origin_of
    from server.delivery.push.vapid import VapidCache
    from server.delivery.push.vapid import load_keys

    cache = VapidCache(load_keys(key_file), SUBJECT)
    messages = [Message(i, s["endpoint"], s["keys"]["p256dh"], s["keys"]["auth"], sample_payload(i), 3600)
                for i, s in ((i, subscriptions[i % len(subscriptions)]) for i in range(n))]
    started, cpu = time.perf_counter(), time.process_time()
    for message in messages:
        cache.header(origin_of(message.endpoint))
        encrypt(message)
    out.put({"seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu, "rss": _max_rss_mib()})


# -- Pushcart through its commands ------------------------------------------------------------

def prepare_database(database_url: str, subscriptions: list[dict[str, Any]], n: int) -> None:
    """Fresh tables, one shop, the subscriptions and ``n`` due ``shipped`` pushes (not timed)."""
    import hashlib

    import sqlalchemy as sa

    from server.core.clock import utcnow
    from server.core.models import Base, Subscription, Visitor
    from server.merchant.shop_admin import create_shop

    engine = sa.create_engine(database_url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    now = utcnow()
    with sa.orm.Session(engine) as session:
        shop = create_shop(session, "Bench Shop", ["https://shop.example"], now).shop
        session.flush()
        for i, sub in enumerate(subscriptions):
            visitor = Visitor(shop_id=shop.id, visitor_key=f"v{i}", first_seen_at=now, last_event_at=now)
            session.add(visitor)
            session.flush()
            session.add(Subscription(shop_id=shop.id, visitor_id=visitor.id, endpoint=sub["endpoint"],
                                     endpoint_hash=hashlib.sha256(sub["endpoint"].encode()).hexdigest(),
                                     p256dh=sub["keys"]["p256dh"], auth=sub["keys"]["auth"], created_at=now,
                                     last_seen_at=now))
        session.commit()
    engine.dispose()
    if n:
        insert_pushes(database_url, n)


def prepare_in(root: Path, database_url: str, subscriptions: list[dict[str, Any]], n: int) -> None:
    """``prepare_database`` run by the checkout at ``root`` (its bench, in a process of its own):
    the tables, indexes and triggers are that code's, so ``--compare`` measures the previous
    code on its own schema, not on this one's triggers."""
    script = ("import json, sys; sys.path.insert(0, 'bench'); import send_bench; "
              "send_bench.prepare_database(*json.load(sys.stdin))")
    subprocess.run([sys.executable, "-c", script], cwd=root, input=json.dumps([database_url, subscriptions, n]),
                   text=True, check=True, env={**os.environ, "PYTHONPATH": str(root)})


def insert_pushes(database_url: str, n: int, tag: str = "b") -> None:
    """``n`` ``shipped`` pushes due a second ago, spread over the subscriptions."""
    import sqlalchemy as sa

    from server.core.clock import utcnow
    from server.core.models import Push, Subscription

    engine = sa.create_engine(database_url)
    now = utcnow()
    with sa.orm.Session(engine) as session:
        subs = session.execute(sa.select(Subscription.id, Subscription.visitor_id, Subscription.shop_id)
                               .order_by(Subscription.id)).all()
        for start in range(0, n, 5000):
            session.execute(sa.insert(Push), [
                {"shop_id": subs[i % len(subs)].shop_id, "visitor_id": subs[i % len(subs)].visitor_id,
                 "subscription_id": subs[i % len(subs)].id, "kind": "shipped", "dedupe_key": f"{tag}:{i}",
                 "title": TITLE, "body": BODY, "url": "https://shop.example/orders/1",
                 "icon": "https://shop.example/icon.png", "status": "pending",
                 "due_at": now - dt.timedelta(seconds=1), "attempts": 0, "step": 0, "ttl": 86400,
                 "urgency": "normal", "created_at": now}
                for i in range(start, min(n, start + 5000))])
        session.commit()
    engine.dispose()


def push_statuses(database_url: str) -> dict[str, int]:
    import sqlalchemy as sa

    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        statuses = dict(conn.execute(sa.text("select status, count(*) from pushes group by status")).all())
    engine.dispose()
    return statuses


def command_env(database_url: str, key_file: str, cafile: str | None) -> dict[str, str]:
    """The environment a user would give the commands (the shipped defaults otherwise:
    batches of 200, 32 in flight, pipelined)."""
    env = {**os.environ, "DATABASE_URL": database_url, "VAPID_PRIVATE_KEY_FILE": key_file,
           "VAPID_SUBJECT": SUBJECT, "PUSHCART_SECRET_KEY": "bench-secret",
           "PUBLIC_URL": "https://push.shop.example", "PUSHCART_INSECURE_ENDPOINTS": "1",
           "RUN_SCHEDULER": "0", "LOG_LEVEL": "WARNING"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed service has its bytecode cached
    if cafile:
        env["SSL_CERT_FILE"] = cafile  # the default SSL context trusts the sink's certificate
    return env


def flask_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "flask", "--app", "wsgi", *args]


def run_dispatch_once(root: Path, database_url: str, key_file: str, cafile: str | None, expect: int
                      ) -> dict[str, Any]:
    """Time ``flask --app wsgi dispatch --once`` as a whole; its CPU and peak RSS from wait4."""
    started = time.perf_counter()
    process = subprocess.Popen(flask_command("dispatch", "--once"), cwd=root,
                               env=command_env(database_url, key_file, cafile),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    out, err = process.stdout.read().decode(), process.stderr.read().decode()  # type: ignore[union-attr]
    if process.returncode != 0:
        raise RuntimeError(f"dispatch --once exited {process.returncode}: {err[-2000:]}")
    counts = json.loads(out.strip().splitlines()[-1])
    if counts["sent"] != expect:
        raise RuntimeError(f"dispatch --once sent {counts}, expected {expect}: {err[-2000:]}")
    return {"seconds": seconds, "cpu": usage.ru_utime + usage.ru_stime, "rss": usage.ru_maxrss / 1024}


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (Linux /proc)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                todo += [int(c) for c in Path(f"/proc/{current}/task/{task}/children").read_text().split()]
        except OSError:
            pass
    return found


def tree_cpu(pid: int) -> float:
    return sum(process_cpu(p) or 0.0 for p in process_tree(pid))


def tree_rss_mib(pid: int) -> float:
    """The largest peak RSS (VmHWM) in the tree."""
    peak = 0.0
    for p in process_tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
        except OSError:
            pass
    return peak


def run_worker(root: Path, database_url: str, key_file: str, cafile: str | None, n: int, processes: int,
               interval: float, tag: str) -> dict[str, Any]:
    """``flask --app wsgi worker --processes P`` idling on an empty outbox; ``n`` due rows are
    inserted and timed from their commit until every one is ``sent``; then SIGTERM, exit 0."""
    import sqlalchemy as sa

    log = open(Path(tempfile.gettempdir()) / f"pushcart-bench-worker-{os.getpid()}.log", "w+b")
    # Always given: without it the worker starts one process per core.
    options = ("--interval", str(interval), "--processes", str(processes))
    process = subprocess.Popen(flask_command("worker", *options),
                               cwd=root, env=command_env(database_url, key_file, cafile),
                               stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while log_text(log).count("worker started") < processes:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start: {log_text(log)[-2000:]}")
            time.sleep(0.05)
        time.sleep(1.0)  # idle ticks on an empty outbox
        engine = sa.create_engine(database_url)
        cpu_before = tree_cpu(process.pid)
        insert_pushes(database_url, n, tag)
        started, machine_before = time.perf_counter(), machine_jiffies()
        count = sa.text("select count(*) from pushes where status = 'sent'")
        with engine.connect() as conn:
            while conn.execute(count).scalar_one() < n:
                conn.rollback()
                if process.poll() is not None or time.perf_counter() - started > 600:
                    raise RuntimeError(f"worker stopped or stalled: {log_text(log)[-2000:]}")
                time.sleep(0.02)
        seconds = time.perf_counter() - started
        machine = cores_busy(machine_before, machine_jiffies())
        cpu = tree_cpu(process.pid) - cpu_before
        rss = tree_rss_mib(process.pid)
        engine.dispose()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
        if code != 0:
            raise RuntimeError(f"worker exited {code} after SIGTERM: {log_text(log)[-2000:]}")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()
        os.unlink(log.name)
    statuses = push_statuses(database_url)
    if statuses != {"sent": n}:
        raise RuntimeError(f"worker left {statuses}")
    return {"seconds": seconds, "cpu": cpu, "rss": rss, "machine": machine}


def log_text(log: Any) -> str:
    log.flush()
    log.seek(0)
    return log.read().decode(errors="replace")
# -- running it -------------------------------------------------------------------------------

def process_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) used so far by process ``pid``; None where /proc is missing."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_jiffies() -> tuple[int, int] | None:
    """(busy, total) CPU time of the whole machine so far, in clock ticks (``/proc/stat``)."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return None
    return sum(values) - values[3] - values[4], sum(values)  # idle and iowait are not busy


def cores_busy(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """How many of the machine's cores were busy between two ``machine_jiffies``, on average:
    every process (senders, sink, PostgreSQL, the bench itself)."""
    if before is None or after is None or after[1] == before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1]) * (os.cpu_count() or 1)


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
                        help="a PostgreSQL URL for the worker runs on PostgreSQL")
    parser.add_argument("--https", action="store_true", help="a TLS sink (default: plain HTTP)")
    parser.add_argument("--processes", type=int, default=2,
                        help="the larger `worker --processes` count measured (default 2; 1 is always run)")
    parser.add_argument("--interval", type=float, default=0.2,
                        help="`worker --interval`: the idle tick, i.e. how soon inserted rows are seen (0.2)")
    parser.add_argument("--far-ms", type=float, default=30.0,
                        help="also run the workers against a second sink that answers this many ms late, as a"
                             " push service across the internet does, where one worker is bound by its"
                             " 32 in flight and more workers add more (default 30; 0: not run)")
    parser.add_argument("--compare", type=Path, default=None, metavar="DIR",
                        help="another checkout whose commands run too, alternating with this one's")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds of every row (baselines included); the table shows each row's median")
    parser.add_argument("--memory-check", action="store_true", help="also run dispatch --once at N and 10×N")
    parser.add_argument("--skip-naive", action="store_true", help="skip the (slow) naive loop")
    args = parser.parse_args()
    n = args.n
    ctx = mp.get_context("spawn")
    work = Path(tempfile.mkdtemp(prefix="pushcart-bench-"))
    rows: list[tuple[str, dict[str, Any]]] = []
    schema = None
    sink = far = None
    trees = [("", ROOT)] + ([(" [compare]", args.compare.resolve())] if args.compare else [])
    try:
        cert = key = None
        if args.https:
            cert, key = make_certificate(work)
        from server.delivery.push.vapid import init_keys

        key_file = str(work / "vapid.pem")
        init_keys(key_file)
        ready = ctx.Queue()
        sink = ctx.Process(target=sink_main, args=(cert, key, ready), daemon=True)
        sink.start()
        url = f"{'https' if cert else 'http'}://127.0.0.1:{ready.get(timeout=30)}"
        subscriptions = make_subscriptions(url)
        far_subscriptions: list[dict[str, Any]] = []
        far_label = f"sink {args.far_ms:g} ms away"
        if args.far_ms > 0:
            far = ctx.Process(target=sink_main, args=(cert, key, ready, args.far_ms / 1000), daemon=True)
            far.start()
            far_subscriptions = make_subscriptions(f"{'https' if cert else 'http'}://127.0.0.1:{ready.get(timeout=30)}")
        print(f"sending {n} pushes to a local {'HTTPS' if cert else 'plain-HTTP'} sink on {os.cpu_count()} cores;"
              f" worker --interval {args.interval}\n", flush=True)

        def measure(label: str, run: Any, sink_pid: int | None = None) -> None:
            try:
                rows.append((label, with_sink_cpu(sink_pid or sink.pid, run)))  # type: ignore[union-attr]
            except RuntimeError as exc:
                if "[compare]" not in label:
                    raise
                print(f"  {label}: failed ({str(exc)[:200]})", flush=True)  # e.g. an option it lacks
                return
            print(f"  {label}: {n / rows[-1][1]['seconds']:,.0f} pushes/s", flush=True)

        sqlite_url = f"sqlite:///{work / 'bench.db'}"
        empty_urls = {root: f"sqlite:///{work / f'empty{i}.db'}" for i, (_, root) in enumerate(trees)}
        for suffix, root in trees:  # one unmeasured run writes the bytecode caches
            prepare_in(root, empty_urls[root], subscriptions, 0)
            run_dispatch_once(root, empty_urls[root], key_file, cert, 0)
        targets: list[tuple[str, str, int]] = [("SQLite", sqlite_url, 1)]
        if args.processes > 1:
            targets.append(("SQLite", sqlite_url, args.processes))
        if args.pg:
            import sqlalchemy as sa

            schema = f"bench_{os.getpid()}_{secrets.token_hex(2)}"
            admin = sa.create_engine(args.pg)
            with admin.begin() as conn:
                conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
            admin.dispose()
            sep = "&" if "?" in args.pg else "?"
            pg_url = f"{args.pg}{sep}options=-csearch_path%3D{schema}"
            targets += [("PostgreSQL", pg_url, 1)] + ([("PostgreSQL", pg_url, args.processes)]
                                                      if args.processes > 1 else [])
        for round_ in range(args.repeat):
            if args.repeat > 1:
                print(f"round {round_ + 1} of {args.repeat}", flush=True)
            measure("sink alone (libcurl client, 32 in flight, no crypto)",
                    lambda: run_child(ctx, sink_alone, url, cert, n))
            if not args.skip_naive:
                measure("pywebpush.webpush() loop (naive baseline)",
                        lambda: run_child(ctx, naive, subscriptions, key_file, cert, n))
            measure("node web-push 3.6.7, 32 in flight",
                    lambda: node_send(work, subscriptions, key_file, cert, n))

            for suffix, root in trees:
                measure(f"dispatch --once, start-up only (nothing due), SQLite{suffix}",
                        lambda: run_dispatch_once(root, empty_urls[root], key_file, cert, 0))

                def once() -> dict[str, Any]:
                    prepare_in(root, sqlite_url, subscriptions, n)
                    return run_dispatch_once(root, sqlite_url, key_file, cert, n)
                measure(f"dispatch --once, SQLite (whole command){suffix}", once)
            for name, db_url, processes in targets:
                for suffix, root in trees:
                    def worker() -> dict[str, Any]:
                        prepare_in(root, db_url, subscriptions, 0)
                        return run_worker(root, db_url, key_file, cert, n, processes, args.interval, "w")
                    measure(f"worker --processes {processes}, {name}{suffix}", worker)
            for name, db_url, processes in targets:
                if far is None or name != ("PostgreSQL" if args.pg else "SQLite"):
                    continue
                for suffix, root in trees:
                    def far_worker() -> dict[str, Any]:
                        prepare_in(root, db_url, far_subscriptions, 0)
                        return run_worker(root, db_url, key_file, cert, n, processes, args.interval, "f")
                    measure(f"worker --processes {processes}, {name}, {far_label}{suffix}", far_worker, far.pid)
            measure("encryption alone (http_ece as pywebpush calls it, 1 core)",
                    lambda: run_child(ctx, encryption_alone, subscriptions, key_file, n))
        report(rows, n)
        if args.memory_check:
            memory_check(subscriptions, key_file, cert, n, work)
    finally:
        for server in (sink, far):
            if server is not None:
                server.terminate()
        if schema:
            import sqlalchemy as sa

            admin = sa.create_engine(args.pg)
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
        shutil.rmtree(work, ignore_errors=True)
    return 0


def node_send(work: Path, subscriptions: list[dict[str, Any]], key_file: str, cafile: str | None,
              n: int) -> dict[str, Any]:
    """Run bench/node_send.js with the same subscriptions, payloads and VAPID key."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from server.delivery.push.vapid import b64url, load_keys

    vapid = load_keys(key_file)
    private = vapid.private_key.private_numbers().private_value.to_bytes(32, "big")
    public = vapid.public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    job = work / "node_job.json"
    job.write_text(json.dumps({"subscriptions": subscriptions, "n": n, "concurrency": 32,
                               "payload": sample_payload(1).decode(),
                               "vapid": {"subject": SUBJECT, "publicKey": b64url(public),
                                         "privateKey": b64url(private)}}))
    env = {**os.environ, "NODE_PATH": str(ROOT / "node_modules")}
    if cafile:
        env["NODE_EXTRA_CA_CERTS"] = cafile
    done = subprocess.run(["node", str(ROOT / "bench" / "node_send.js"), str(job)], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True)
    result = json.loads(done.stdout)
    if result["failed"]:
        raise RuntimeError(f"node web-push: {result['failed']} sends failed: {done.stderr[-1000:]}")
    return {"seconds": result["seconds"], "cpu": result["cpu_seconds"], "rss": result["max_rss_kb"] / 1024}


def medians(rows: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """One row per label, each figure the median over the rounds (first-seen order)."""
    import statistics

    grouped: dict[str, list[dict[str, Any]]] = {}
    for label, r in rows:
        grouped.setdefault(label, []).append(r)
    out = []
    for label, runs in grouped.items():
        merged: dict[str, Any] = {"rounds": len(runs)}
        for key in runs[0]:
            values = [r[key] for r in runs if r.get(key) is not None]
            merged[key] = statistics.median(values) if values else None
        out.append((label, merged))
    return out


def report(rows: list[tuple[str, dict[str, Any]]], n: int) -> None:
    """One table: pushes/s, × naive, × node, peak RSS, CPU ms/push, the sink's CPU ms/push
    (medians over the rounds when there are several), then the several-÷-one ratio per round."""
    import statistics

    per_round = rows
    rows = medians(rows)
    rates = [(label, n / r["seconds"], r) for label, r in rows]
    naive_rate = next((rate for label, rate, _ in rates if label.startswith("pywebpush")), None)
    node_rate = next((rate for label, rate, _ in rates if label.startswith("node")), None)
    width = max(len(label) for label, _, _ in rates)
    print(f"\n| {'way of sending':<{width}} | pushes/s | × naive | × node | seconds | peak RSS | CPU ms/push"
          f" | sink CPU ms/push | cores busy |")
    print(f"| {'-' * width} | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, rate, r in rates:
        vs_naive = f"{rate / naive_rate:.2f}" if naive_rate else "-"
        vs_node = f"{rate / node_rate:.2f}" if node_rate else "-"
        sink_cpu = f"{1000 * r['sink_cpu'] / n:.3f}" if r.get("sink_cpu") is not None else "-"
        print(f"| {label:<{width}} | {rate:,.0f} | {vs_naive} | {vs_node} | {r['seconds']:.2f} |"
              f" {r['rss']:.0f} MiB | {1000 * r['cpu'] / n:.3f} | {sink_cpu} |"
              f" {'-' if r.get('machine') is None else format(r['machine'], '.2f')} |")
    if rows and rows[0][1]["rounds"] > 1:
        print(f"\n(each figure: the median of {rows[0][1]['rounds']} rounds; the ratios are of those medians)")
    print("\n(pushes/s = N ÷ seconds; for `start-up only` N ÷ the empty command's seconds, i.e. not a rate:"
          " read its seconds. CPU ms/push: the sender's own processes, not the sink nor the PostgreSQL server."
          f" cores busy: the whole machine's ({os.cpu_count()} cores) while a worker row was timed: senders, sink,"
          " PostgreSQL.)")
    for db in ("PostgreSQL", "SQLite"):
        for suffix in sorted({label.split(f", {db}", 1)[1] for label, _ in per_round
                              if label.startswith("worker --processes 1,") and f", {db}" in label}):
            ones = [n / r["seconds"] for label, r in per_round if label == f"worker --processes 1, {db}{suffix}"]
            more = [(label, n / r["seconds"]) for label, r in per_round
                    if label.startswith("worker --processes") and label.endswith(f", {db}{suffix}")
                    and not label.startswith("worker --processes 1,")]
            if not ones or len(more) != len(ones) or (db == "SQLite" and not suffix.startswith(", sink")):
                continue
            ratios = [m / o for (_, m), o in zip(more, ones)]
            print(f"{more[0][0].split(',')[0]} ÷ --processes 1 ({db}{suffix}), per round: "
                  + ", ".join(f"{x:.2f}" for x in ratios)
                  + (f"; of the medians: {statistics.median(m for _, m in more) / statistics.median(ones):.2f}"
                     if len(ones) > 1 else ""))
    sys.stdout.flush()


def memory_check(subscriptions: list[dict[str, Any]], key_file: str, cafile: str | None, n: int,
                 work: Path) -> None:
    print("\nmemory, dispatch --once, SQLite:")
    peaks = []
    for size in (n, 10 * n):
        url = f"sqlite:///{work / f'memory_{size}.db'}"
        prepare_database(url, subscriptions, size)
        result = run_dispatch_once(ROOT, url, key_file, cafile, size)
        peaks.append(result["rss"])
        print(f"  {size:>7,} pushes: {size / result['seconds']:>7,.0f} pushes/s, peak RSS {result['rss']:.0f} MiB",
              flush=True)
    print(f"  peak RSS at 10×N ÷ at N: {peaks[1] / peaks[0]:.2f}")


if __name__ == "__main__":
    sys.exit(main())
