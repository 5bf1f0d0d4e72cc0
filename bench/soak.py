"""Soak: `dispatch serve` (embedded dispatch) under a mixed valid + hostile load for minutes.

Not in CI. Starts the stand-in vendors (SMTP, SFTP, B2B) in this process and `dispatch serve`
as a subprocess on a fresh database, then for ``--minutes`` sends, open loop:

- valid requests: Creates (Active, B2B + email XML, 1-3 lines), UpdateQuantity of orders
  already created (quantities raised), GetRequestResult and Get;
- hostile ones, in turn: a Content-Length over the limit (headers only), a chunked body
  that passes the limit, duplicate JSON keys, a wrong Content-Type, DISPATCH_MAX_LINES + 1
  lines, headers sent a byte at a time (slower than DISPATCH_CLIENT_TIMEOUT), a half-sent
  request abandoned, a wrong API key; each checked for its answer (413/422/415/408/401).

Samples the server's RSS (and its process tree's: Prefect's temporary API server runs as a
child) every few seconds and times the valid POSTs. At the end it waits for every accepted
valid request to complete and every delivery to be sent, and reports memory at start /
middle / end, POST p50/p99/max, and the counts.

    .venv/bin/python bench/soak.py --minutes 3 [--db postgres] [--rate 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml  # noqa: E402
from api_client import Connection, HttpError  # noqa: E402
from api_server import API_KEY, Database, dispatch_command, free_port  # noqa: E402

from dispatch.demo.world import StandinWorld  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CLIENT_TIMEOUT = 2.0  # DISPATCH_CLIENT_TIMEOUT for the soak: slow clients are cut quickly
MAX_BODY = 4 * 1024 * 1024
MAX_LINES = 2000
ITEMS = ("DRILL-5", "GLOVE-L")  # quoted for ACME, with an atelier code (B2B)
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except OSError:
        return 0


def tree_pids(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(proc.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def create_body(rng: random.Random) -> dict[str, Any]:
    lines = [{"ItemId": rng.choice(ITEMS), "TotalQuantity": rng.randint(1, 50)}
             for _ in range(rng.randint(1, 3))]
    return {"VendorId": "ACME", "StockName": "Main", "DeviceId": "DEV-1", "Status": "Active",
            "Reference": f"soak {rng.random():.6f}",
            "SendOptions": {"Channel": {"IsB2B": True, "IsEmail": True},
                            "Email": {"IsXml": True}},
            "PurchaseOrderItems": lines}


class Soak:
    def __init__(self, args: argparse.Namespace, port: int) -> None:
        self.args = args
        self.port = port
        self.rng = random.Random(12)
        self.headers = {"Authorization": f"Bearer {API_KEY}"}
        self.latency: list[float] = []  # seconds, valid POSTs
        self.valid: dict[str, str] = {}  # accepted valid request guid -> kind
        self.orders: list[tuple[str, list[str]]] = []  # (order id, line ids)
        self.creates_waiting: list[str] = []
        self.counts: Counter[str] = Counter()
        self.unexpected: list[str] = []
        self.stop_at = 0.0

    def now(self) -> float:
        return time.monotonic()

    async def conn(self) -> Connection:
        return await Connection("127.0.0.1", self.port, self.headers).open()

    # -- valid load ----------------------------------------------------------------------
    async def post(self, conn: Connection, kind: str, body: dict[str, Any]) -> None:
        raw = conn.request_bytes("POST", f"/ERP/PurchaseOrder/{kind}", json.dumps(body).encode())
        started = time.perf_counter()
        answer = await conn.json(raw)
        self.latency.append(time.perf_counter() - started)
        self.valid[answer["RequestGuid"]] = kind
        self.counts[f"valid {kind}"] += 1
        if kind == "Create":
            self.creates_waiting.append(answer["RequestGuid"])

    async def valid_posts(self) -> None:
        conn = await self.conn()
        interval = 1.0 / self.args.rate
        next_at = self.now()
        while self.now() < self.stop_at:
            await self.post(conn, "Create", create_body(self.rng))
            if self.orders and self.rng.random() < 0.5:
                order_id, line_ids = self.rng.choice(self.orders)
                await self.post(conn, "UpdateQuantity", {"OrderId": order_id,
                    "PurchaseOrderItems": [{"Id": line_ids[0],
                                            "TotalQuantity": 1000 + self.counts["q"]}]})
                self.counts["q"] += 1
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - self.now()))

    async def readers(self) -> None:
        conn = await self.conn()
        while self.now() < self.stop_at:
            for guid in list(self.creates_waiting[:20]):
                result = await conn.json(conn.request_bytes(
                    "GET", f"/ERP/PurchaseOrder/GetRequestResult?requestGuid={guid}"))
                self.counts["GetRequestResult"] += 1
                if result["Status"] == "Completed":
                    self.creates_waiting.remove(guid)
                    order = result["PurchaseOrder"]
                    self.orders.append((order["Id"], [line["Id"] for line in
                                                      order["PurchaseOrderItems"]]))
            if self.orders:
                order_id = self.rng.choice(self.orders)[0]
                await conn.json(conn.request_bytes("GET",
                                                   f"/ERP/PurchaseOrder/Get?orderId={order_id}"))
                self.counts["Get"] += 1
            await asyncio.sleep(0.2)

    # -- hostile load ----------------------------------------------------------------------
    def raw_socket(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def head(self, extra: str, *, key: str = API_KEY, path: str = "/ERP/PurchaseOrder/Create"
             ) -> bytes:
        return (f"POST {path} HTTP/1.1\r\nHost: soak\r\nAuthorization: Bearer {key}\r\n"
                f"{extra}\r\n").encode()

    def answer(self, sock: socket.socket) -> int:
        data = b""
        try:
            while b"\r\n" not in data:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
        return int(data[9:12]) if data.startswith(b"HTTP/1.1 ") else 0

    def hostile_one(self, kind: str) -> tuple[int, tuple[int, ...]]:
        """One hostile request of ``kind``: (status seen, statuses acceptable); 0 = closed."""
        sock = self.raw_socket()
        try:
            json_head = "Content-Type: application/json\r\n"
            if kind == "content-length":
                sock.sendall(self.head(f"{json_head}Content-Length: {50 * MAX_BODY}\r\n"))
                return self.answer(sock), (413,)
            if kind == "chunked":
                sock.sendall(self.head(f"{json_head}Transfer-Encoding: chunked\r\n"))
                chunk = b"[" + b" " * 65534 + b"\r\n"
                try:
                    for _ in range(MAX_BODY // 65535 + 8):
                        sock.sendall(b"%x\r\n" % (len(chunk) - 2) + chunk)
                except OSError:
                    pass  # the server closed after its 413
                return self.answer(sock), (413, 0)
            if kind == "duplicate-keys":
                body = b'{"VendorId": "ACME", "VendorId": "BOLT"}'
                sock.sendall(self.head(f"{json_head}Content-Length: {len(body)}\r\n") + body)
                return self.answer(sock), (422,)
            if kind == "content-type":
                body = b"<order/>"
                sock.sendall(self.head(f"Content-Type: application/xml\r\n"
                                       f"Content-Length: {len(body)}\r\n") + body)
                return self.answer(sock), (415,)
            if kind == "too-many-lines":
                body = json.dumps({**create_body(self.rng), "PurchaseOrderItems": [
                    {"ItemId": "DRILL-5", "TotalQuantity": 1}] * (MAX_LINES + 1)}).encode()
                sock.sendall(self.head(f"{json_head}Content-Length: {len(body)}\r\n") + body)
                return self.answer(sock), (422,)
            if kind == "slow-headers":
                head = self.head(json_head)
                deadline = time.monotonic() + CLIENT_TIMEOUT * 3
                try:
                    for byte in head:  # a byte every 0.5 s: slower than the timeout allows
                        sock.sendall(bytes([byte]))
                        time.sleep(0.5)
                        if time.monotonic() > deadline:
                            break
                except OSError:
                    pass
                return self.answer(sock), (408, 0)
            if kind == "abandoned":
                sock.sendall(self.head(f"{json_head}Content-Length: 1000\r\n") + b'{"Vend')
                return 0, (0,)  # closed by us in finally
            if kind == "bad-key":
                body = json.dumps(create_body(self.rng)).encode()
                sock.sendall(self.head(f"{json_head}Content-Length: {len(body)}\r\n",
                                       key="wrong-key") + body)
                return self.answer(sock), (401,)
            raise ValueError(kind)
        finally:
            sock.close()

    async def hostile(self) -> None:
        kinds = ["content-length", "chunked", "duplicate-keys", "content-type",
                 "too-many-lines", "abandoned", "bad-key"]
        slow: set[asyncio.Task[Any]] = set()
        n = 0
        while self.now() < self.stop_at:
            kind = kinds[n % len(kinds)]
            n += 1
            if n % 5 == 0 and len(slow) < 4:  # a few slow clients at a time, in threads
                task = asyncio.create_task(self.checked("slow-headers"))
                slow.add(task)
                task.add_done_callback(slow.discard)
            await self.checked(kind)
            await asyncio.sleep(1.0 / self.args.hostile_rate)
        await asyncio.gather(*slow)

    async def checked(self, kind: str) -> None:
        status, allowed = await asyncio.to_thread(self.hostile_one, kind)
        self.counts[f"hostile {kind}"] += 1
        if status not in allowed:
            self.unexpected.append(f"{kind}: {status} (expected {allowed})")


async def sample_memory(server: subprocess.Popen[bytes], stop_at: float, every: float,
                        samples: list[tuple[float, int, int]], started: float) -> None:
    while time.monotonic() < stop_at:
        tree = sum(rss_bytes(pid) for pid in tree_pids(server.pid))
        samples.append((time.monotonic() - started, rss_bytes(server.pid), tree))
        await asyncio.sleep(every)


def db_counts(db: Database) -> tuple[dict[str, int], dict[str, int]]:
    conn = db.reader()
    try:
        cur = conn.cursor()
        cur.execute("SELECT status, count(*) FROM erp_request GROUP BY status")
        requests = {str(k): int(v) for k, v in cur.fetchall()}
        cur.execute("SELECT status, count(*) FROM delivery GROUP BY status")
        deliveries = {str(k): int(v) for k, v in cur.fetchall()}
        return requests, deliveries
    finally:
        conn.close()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rate", type=float, default=4.0, help="valid Creates per second")
    parser.add_argument("--hostile-rate", type=float, default=4.0,
                        help="hostile requests per second")
    parser.add_argument("--sample-seconds", type=float, default=5.0)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="dispatch-soak-"))
    db = Database(args.db, workdir)
    db.create()
    world = StandinWorld(workdir / "vendors")
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "DISPATCH_"))},
           **world.env, "PREFECT_HOME": str(workdir / "prefect"), "DO_NOT_TRACK": "1",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DISPATCH_DATABASE_URL": db.url,
           "DISPATCH_API_KEYS": API_KEY, "DISPATCH_CLIENT_TIMEOUT": str(CLIENT_TIMEOUT),
           "DISPATCH_TEMPLATES_DIR": str(ROOT / "templates"), "DISPATCH_RETRY_DELAYS": "1,2,5"}
    for key, value in world.settings_overrides().items():
        env[f"DISPATCH_{key.upper()}"] = str(value)
    refdata = workdir / "refdata.yaml"
    refdata.write_text(yaml.safe_dump(world.reference_data_dict()))
    subprocess.run([*dispatch_command(), "load", str(refdata)], env=env, cwd=workdir,
                   check=True, stdout=subprocess.DEVNULL)
    log_path = workdir / "serve.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen([*dispatch_command(), "serve", "--host", "127.0.0.1",
                                   "--port", str(port), "--log-level", "warning"],
                                  env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    soak = Soak(args, port)
    samples: list[tuple[float, int, int]] = []
    try:
        wait_ready(port, server, log_path)
        started = time.monotonic()
        soak.stop_at = started + args.minutes * 60

        async def run() -> None:
            await asyncio.gather(soak.valid_posts(), soak.readers(), soak.hostile(),
                                 sample_memory(server, soak.stop_at, args.sample_seconds,
                                               samples, started))

        asyncio.run(run())
        load_seconds = time.monotonic() - started
        # Drain: every accepted valid request completes, every delivery is sent.
        drain_started = time.monotonic()
        while True:
            requests, deliveries = db_counts(db)
            busy = requests.get("Created", 0) + deliveries.get("Pending", 0)
            if busy == 0 or time.monotonic() - drain_started > 300:
                break
            time.sleep(1.0)
        drain_seconds = time.monotonic() - drain_started
        samples.append((time.monotonic() - started, rss_bytes(server.pid),
                        sum(rss_bytes(pid) for pid in tree_pids(server.pid))))
        assert server.poll() is None, "serve died during the soak"
        log_text = log_path.read_text(errors="replace")
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        world.stop()
        db.drop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    report(args, soak, samples, requests, deliveries, load_seconds, drain_seconds, log_text)
    ok = (not soak.unexpected and set(requests) <= {"Completed"}
          and set(deliveries) <= {"Delivered"}
          and requests.get("Completed", 0) == len(soak.valid))
    return 0 if ok else 1


def wait_ready(port: int, server: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"dispatch serve exited: {log_path.read_text()[-2000:]}")
        try:
            async def health() -> int:
                conn = await Connection("127.0.0.1", port, {}).open()
                status, _ = await conn.send(conn.request_bytes("GET", "/health"))
                conn.close()
                return status

            if asyncio.run(health()) == 200:
                return
        except (OSError, HttpError):
            pass
        time.sleep(0.1)
    raise RuntimeError("dispatch serve did not answer")


def report(args: argparse.Namespace, soak: Soak, samples: list[tuple[float, int, int]],
           requests: dict[str, int], deliveries: dict[str, int], load_seconds: float,
           drain_seconds: float, log_text: str) -> None:
    mib = 1024 * 1024
    print(f"soak: {args.db}, {load_seconds / 60:.1f} min of load, drained in "
          f"{drain_seconds:.1f} s; load average {os.getloadavg()[0]:.2f} at the end")
    if samples:
        first, middle, last = samples[0], samples[len(samples) // 2], samples[-1]
        warm = next((s for s in samples if s[0] >= load_seconds / 6), first)
        marks = (("start", first), ("warm", warm), ("middle", middle), ("end", last))
        for name, (at, rss, tree) in marks:
            print(f"  memory {name:6} t={at:6.0f} s  serve RSS {rss / mib:7.1f} MiB  "
                  f"with children {tree / mib:7.1f} MiB")
        peak = max(s[1] for s in samples)
        print(f"  serve RSS min/max over {len(samples)} samples: "
              f"{min(s[1] for s in samples) / mib:.1f} / {peak / mib:.1f} MiB")
    lat = soak.latency
    if lat:
        print(f"  valid POSTs: {len(lat)}  p50 {pct(lat, 0.5) * 1000:.1f} ms  "
              f"p99 {pct(lat, 0.99) * 1000:.1f} ms  max {max(lat) * 1000:.1f} ms  "
              f"mean {statistics.mean(lat) * 1000:.1f} ms")
    print("  sent: " + ", ".join(f"{k} {v}" for k, v in sorted(soak.counts.items())
                                 if k != "q"))
    print(f"  erp requests by status: {requests} (valid accepted: {len(soak.valid)})")
    print(f"  deliveries by status: {deliveries}")
    print(f"  unexpected hostile answers: {len(soak.unexpected)} {soak.unexpected[:5]}")
    print(f"  serve log: {len(log_text.splitlines())} lines, "
          f"{log_text.count('Traceback')} tracebacks")


if __name__ == "__main__":
    sys.exit(main())
