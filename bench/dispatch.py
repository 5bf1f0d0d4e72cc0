"""Dispatch benchmark (issue 5, item 9): not a test, a measurement.

    .venv/bin/python bench/dispatch.py [--orders 1000] [--rounds 2] [--concurrency 8]
        [--memory-orders 10000] [--latency-orders 30] [--db sqlite|postgres|both]
        [--only throughput,memory,latency,latency-server] [--prefect-api server|temporary]
        [--orders-per-task 10] [--server-latency-orders 20] [--server-prefect-pg URL]
    .venv/bin/python bench/dispatch.py --only cpu [--cpu-orders 200] [--rounds 3]
        [--concurrency 8] [--db sqlite|postgres|both] [--profile PREFIX]

Every order is vendor ACME, Active, two lines, sent by email (PDF + Excel in one message),
SFTP (XML) and B2B (one submission per line): 5 delivery rows, 4 sends per order, against
stand-in vendors on 127.0.0.1 (aiosmtpd, OpenSSH sshd when root else asyncssh, the B2B HTTP
receiver), all running in this (parent) process.

Per measurement: a fresh database (SQLite file or a new PostgreSQL database), a fresh
stand-in world, the sample reference data pointed at it, N Active orders created through
the request queue (``dispatch.erp.queue.accept`` + ``RequestExecutor.run_pending()``: the
business path the API's POST + executor take, without HTTP). Then a *child process* that
does only the dispatching:

- **plain**: the one run loop without Prefect: ``dispatch.dispatching.run.run_due`` with
  ``concurrency=C`` and the same ``orders_per_task`` (its default step sends the orders);
- **prefect**: the ``dispatch-pending`` flow (``flows/dispatch_pending.py``, a task per
  order) with ``concurrency=C``, against a ``prefect server start`` on loopback (started
  once per benchmark run; its start-up is reported, not timed) or, with
  ``--prefect-api temporary``, Prefect's per-process temporary server. The child first runs
  a one-task warm-up flow (client, server and engine start-up: reported, not timed).

Timed: the call's start to its return; then every delivery row is checked Delivered and the
stand-ins' counts (messages, files, submissions) are checked. Memory: the child's VmHWM
(peak RSS) from /proc/self/status, with its RSS before the timed call.

CPU per order against the bare floors (``--only cpu``, issue 13 item 2): per round, the
**floor** (``bench/dispatch_floor.py``: the same PDF, workbook, XML, B2B bodies and email
made with bare reportlab/openpyxl/lxml/json/email and sent with bare aiosmtplib, paramiko and
httpx over kept connections, one order after another, no database; its docstring says
exactly what it does and leaves out) and **plain** (``run_due`` as above, the renderers
imported before the timed call) as child processes against fresh stand-ins in this
process, alternating A B then B A. Reported: the child's CPU (user+sys, getrusage) per
order, the floor's CPU per part, plain's CPU per step from thread CPU clocks around its own
steps (``Instrument``: database work, each render, MIME, SFTP threads; the loop thread's
rest), medians, min–max and plain ÷ floor (target <= 1.3). ``--profile PREFIX``: then one
more run of each with py-spy attached for the timed call only, and its samples by category.

Latency (embedded): ``python -m dispatch serve`` as a subprocess (embedded dispatch) on the
same kind of database, a warm-up order (its start-up, incl. Prefect's temporary server, is
reported), then orders POSTed (Create, Status Active) at a fixed rate, each from its own
thread: POST sent -> all 5 delivery rows Delivered, seen by a watcher reading the service's
database every 20 ms (read-only, so the API is not loaded by polling); and, from the
database's own timestamps, the request's ``received_at`` -> the last ``delivered_at``, split
into executing the request, waiting for the first send to start (flow run start-up), and
sending. Afterwards every order's detail is read through ``/ERP/PurchaseOrder/Get``.

Latency (server mode): ``scripts/server_mode.py``'s ServerMode (``prefect server start``,
``prefect deploy --all`` from prefect.yaml, ``dispatch worker --pool dispatch --limit 4``
(polling every 1 s, engine fork server), ``dispatch serve --no-dispatch``, stand-in vendors),
the same order created one at a time after a warm-up order: the Create POST -> the order's
last ``DeliveredAt``, split into POST -> flow run created (event + automation), -> Running
(worker poll, process start, imports), -> last delivery.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

API_KEY = "bench-dispatch-key-0123456789"
PG_ADMIN_URL = os.environ.get("DISPATCH_BENCH_PG_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
QUIET = {"DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
ROWS_PER_ORDER = 5  # email PDF + Excel, SFTP XML, B2B x 2 lines


def order_body(index: int) -> dict[str, Any]:
    """ACME, Active: email PDF+Excel (one message), SFTP XML, B2B (two lines)."""
    return {
        "VendorId": "ACME", "StockName": "Main", "DeviceId": "DEV-1", "Status": "Active",
        "CustomShipToId": "SITE-7", "Reference": f"bench {index}",
        "SendOptions": {
            "Channel": {"IsB2B": True, "IsFtp": True, "IsEmail": True},
            "FTP": {"IsXml": True},
            "Email": {"IsPdf": True, "IsExcel": True,
                      "PdfTemplate": "standard-pdf", "ExcelTemplate": "standard-excel"},
        },
        "PurchaseOrderItems": [{"ItemId": "DRILL-5", "TotalQuantity": 10, "Note": "=SUM(A1)"},
                               {"ItemId": "GLOVE-L", "TotalQuantity": 4}],
    }


def say(text: str = "") -> None:
    print(text, flush=True)


# --- machine ----------------------------------------------------------------------------

def machine() -> str:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.0f} GB"
    return (f"{os.cpu_count()} vCPU {cpu}, {mem} RAM, Linux {platform.release()}, "
            f"CPython {platform.python_version()}")


def code_version() -> str:
    def git(*argv: str) -> str:
        return subprocess.run(["git", *argv], cwd=ROOT, capture_output=True,
                              text=True).stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "dispatch", "flows")
    except OSError:
        head = dirty = ""
    if not head:
        return os.environ.get("BENCH_CODE", "unknown (not a git checkout)")
    return head + (" + uncommitted changes in dispatch/ or flows/" if dirty else "")


def busy_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def processes() -> dict[int, tuple[str, int, int, float]]:
    """Every live process: pid -> (command name, parent pid, process group, CPU seconds)."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        if ")" not in raw:  # the process exited while it was read
            continue
        rest = raw[raw.rindex(")") + 2:].split()
        found[int(entry.name)] = (raw[raw.index("(") + 1:raw.rindex(")")], int(rest[1]),
                                  int(rest[2]), (int(rest[11]) + int(rest[12])) / tick)
    return found


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds (user+sys) of a live process and its live descendants."""
    procs = processes()
    children: dict[int, list[int]] = {}
    for child, (_name, ppid, _group, _cpu) in procs.items():
        children.setdefault(ppid, []).append(child)
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += procs[p][3] if p in procs else 0.0
        todo += children.get(p, [])
    return total


def own_cpu_seconds(exclude: tuple[int, ...] = ()) -> float:
    """CPU seconds of this process (the stand-ins' threads) and its live children except
    ``exclude`` (the dispatching child) and the Prefect server's group: sshd per connection."""
    total = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
    for pid, (_name, ppid, group, cpu) in processes().items():
        if pid not in exclude and ppid == os.getpid() and group != pid:  # not a new group
            total += cpu
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


# --- databases ----------------------------------------------------------------------------

class Database:
    """A fresh SQLite file or PostgreSQL database; ``drop()`` removes it."""

    counter = 0

    def __init__(self, kind: str, workdir: Path) -> None:
        self.kind = kind
        Database.counter += 1
        if kind == "sqlite":
            self.url = f"sqlite:///{workdir / 'dispatch.db'}"
            self.name = None
            return
        from sqlalchemy import create_engine, text

        self.name = f"bench_dispatch_{os.getpid()}_{Database.counter}"
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))
        admin.dispose()
        self.url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{self.name}"

    def drop(self) -> None:
        if self.name is None:
            return
        from sqlalchemy import create_engine, text

        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        admin.dispose()


# --- one prepared measurement: world + database + N Active orders ---------------------------

class Setup:
    def __init__(self, n: int, db_kind: str) -> None:
        from dispatch.demo.world import StandinWorld

        self.n = n
        self.workdir = Path(tempfile.mkdtemp(prefix="bench-dispatch-"))
        self.world = StandinWorld(self.workdir / "vendors")
        os.environ.update(self.world.env)  # B2B API keys, inherited by the children
        self.db = Database(db_kind, self.workdir)
        self.settings_fields: dict[str, Any] = {
            "database_url": self.db.url, "api_keys": API_KEY,
            "templates_dir": str(ROOT / "templates"), "retry_delays": "1,2,4",
            **{k: (str(v) if isinstance(v, Path) else v)
               for k, v in self.world.settings_overrides().items()}}
        self.create_seconds = 0.0

    def settings(self) -> Any:
        from dispatch.settings import load_settings

        return load_settings(**self.settings_fields)

    def load_reference_data(self) -> Any:
        from dispatch.documents import check_template
        from dispatch.store.engine import make_engine
        from dispatch.store.reference import upsert_reference_data

        engine = make_engine(self.db.url)
        upsert_reference_data(engine, self.world.reference_data(), source="bench",
                              templates_dir=ROOT / "templates", check_template=check_template)
        return engine

    def create_orders(self) -> None:
        """N Create(Active) requests accepted, then executed by the request executor."""
        from dispatch.erp import queue as erp_requests
        from dispatch.erp.executor import RequestExecutor
        from dispatch.erp.schemas import CreateRequest

        engine = self.load_reference_data()
        start = time.perf_counter()
        for i in range(self.n):
            raw = json.dumps(order_body(i)).encode()
            erp_requests.accept(engine, kind="Create", raw=raw,
                                model=CreateRequest.model_validate_json(raw),
                                idempotency_key=None)
        RequestExecutor(engine).run_pending()
        self.create_seconds = time.perf_counter() - start
        counts = self.counts(engine)
        engine.dispose()
        expected = {"active": self.n, "jobs": self.n, "rows": ROWS_PER_ORDER * self.n,
                    "delivered": 0}
        if counts != expected:
            raise SystemExit(f"setup: expected {expected}, found {counts}")

    @staticmethod
    def counts(engine: Any) -> dict[str, int]:
        from sqlalchemy import text

        with engine.connect() as conn:
            one = conn.execute(text(
                "SELECT (SELECT count(*) FROM purchase_order WHERE status = 'Active'),"
                " (SELECT count(*) FROM dispatch_job),"
                " (SELECT count(*) FROM delivery),"
                " (SELECT count(*) FROM delivery WHERE status = 'Delivered')")).one()
        return dict(zip(("active", "jobs", "rows", "delivered"), map(int, one), strict=True))

    def verify(self) -> dict[str, Any]:
        """Every delivery Delivered, every job done; the vendors got what they should."""
        from sqlalchemy import text

        from dispatch.store.engine import make_engine

        engine = make_engine(self.db.url, create_schema=False)
        counts = self.counts(engine)
        with engine.connect() as conn:
            done = conn.execute(text(
                "SELECT count(*) FROM dispatch_job WHERE status = 'Done'")).scalar_one()
            attempts = conn.execute(text("SELECT max(attempts) FROM delivery")).scalar_one()
        engine.dispose()
        received = {"emails": len(self.world.smtp.messages),
                    "sftp_files": sum(1 for p in self.world.inbox().iterdir() if p.is_file()),
                    "b2b_submissions": len(self.world.b2b.submissions)}
        ok = (counts["delivered"] == counts["rows"] == ROWS_PER_ORDER * self.n
              and done == self.n and received == {"emails": self.n, "sftp_files": self.n,
                                                   "b2b_submissions": 2 * self.n})
        return {"ok": ok, **counts, "jobs_done": int(done), "max_attempts": attempts,
                **received}

    def close(self) -> None:
        self.world.stop()
        self.db.drop()
        shutil.rmtree(self.workdir, ignore_errors=True)


# --- the Prefect API -------------------------------------------------------------------------

class PrefectServer:
    """``prefect server start`` on 127.0.0.1 in its own process group."""

    def __init__(self, home: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api"
        env = {**os.environ, **QUIET, "PREFECT_HOME": str(home),
               "PREFECT_UI_ENABLED": "false", "PREFECT_API_URL": self.url}
        self.log = open(home.parent / "prefect-server.log", "wb")  # noqa: SIM115
        start = time.perf_counter()
        self.proc = subprocess.Popen(
            [str(ROOT / ".venv/bin/prefect"), "server", "start", "--host", "127.0.0.1",
             "--port", str(self.port)], env=env, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True)
        import httpx

        deadline = time.monotonic() + 120
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"prefect server exited; see {self.log.name}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/health", timeout=1, trust_env=False).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit("prefect server did not answer within 120 s")
            time.sleep(0.1)
        self.start_seconds = time.perf_counter() - start

    def cpu_seconds(self) -> float:
        return tree_cpu_seconds(self.proc.pid)

    def rss_mb(self) -> float:
        total = 0
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total = int(line.split()[1])
        return total / 1024

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)  # the group we created for it
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        self.log.close()


# --- the dispatching child -------------------------------------------------------------------

def run_child(setup: Setup, path: str, *, concurrency: int, limit: int, orders_per_task: int,
              prefect_url: str | None, prefect_home: Path, server: PrefectServer | None,
              profile: str | None = None, attach_profile: str | None = None,
              warm_imports: bool = False) -> dict[str, Any]:
    """``attach_profile``: py-spy (raw) attached to the child for its timed call only;
    ``warm_imports``: the child imports the renderers before the timed call."""
    config = {"path": path, "settings": setup.settings_fields, "concurrency": concurrency,
              "limit": limit, "orders_per_task": orders_per_task, "warm_imports": warm_imports,
              "instrument": warm_imports}
    env = {**os.environ, **QUIET, "PREFECT_HOME": str(prefect_home)}
    env.pop("PREFECT_API_URL", None)
    if path == "prefect" and prefect_url:
        env["PREFECT_API_URL"] = prefect_url
    command = [sys.executable, str(Path(__file__).resolve()), "_child", json.dumps(config)]
    if profile:
        command = [str(ROOT / ".venv/bin/py-spy"), "record", "--format", "raw", "--rate", "100",
                   "--subprocesses", "-o", profile, "--", *command]
    spy_out, spy_server = attach_profile, False
    if not attach_profile and profile and server is not None:
        spy_out, spy_server = profile.replace(".txt", "-server.txt"), True
    result = child_events(command, setup.workdir / f"child-{path}.log", env=env,
                          spy_out=spy_out, spy_server=spy_server, server=server)
    result["verify"] = setup.verify()
    result["orders_per_s"] = setup.n / result["seconds"]
    return result


def vm(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def emit(**event: Any) -> None:
    print(json.dumps(event, default=str), flush=True)


class Instrument:
    """Thread CPU clocks around the plain path's own steps (``--only cpu``): each step's
    CPU on the thread that runs it (``time.thread_time``), so concurrency does not blur
    it. Sync steps only; what is left on the loop's thread (the event loop, the async
    protocol work of SMTP and HTTP, send_group's own code) is the main thread's total minus
    them. About 30 clock reads per order."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = {}
        self.lock = threading.Lock()
        self.local = threading.local()
        self.threads: dict[str, float] = {}
        self.compiles: dict[str, int] = {}

    def add(self, key: str, seconds: float) -> None:
        with self.lock:
            self.ms[key] = self.ms.get(key, 0.0) + seconds

    def wrap(self, key: Any, fn: Any, *, method: bool = False) -> Any:
        import functools

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            name = key(args[1] if method else args[0], args, kwargs) if callable(key) else key
            self.local.depth = getattr(self.local, "depth", 0) + 1
            start = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.local.depth -= 1
                if self.local.depth == 0:  # nested steps count once, in the outer one
                    self.add(name, time.thread_time() - start)
        return timed

    def install(self) -> None:
        import contextlib as cl
        from email.message import EmailMessage

        from dispatch.channels import smtp
        from dispatch.channels.sftp import SftpChannel
        from dispatch.dispatching import render, run, send
        from dispatch.dispatching.dispatcher import Dispatcher

        run.load_job = self.wrap("db: load job (reads + context)", run.load_job)
        Dispatcher.claim = self.wrap("db: claim", Dispatcher.claim)
        Dispatcher.release = self.wrap("db: release job", Dispatcher.release)
        send._start_attempt = self.wrap("db: count attempt", send._start_attempt)
        inner = send.transaction

        @cl.contextmanager
        def transaction(engine: Any) -> Iterator[Any]:
            if getattr(self.local, "depth", 0):
                with inner(engine) as conn:
                    yield conn
                return
            start = time.thread_time()
            with inner(engine) as conn:
                yield conn
            self.add("db: record delivered", time.thread_time() - start)

        send.transaction = transaction
        render.render_one = self.wrap(
            lambda _ctx, args, kwargs: f"render {args[1]} (worker thread)", render.render_one)
        render._b2b_document = self.wrap("render B2B bodies", render._b2b_document)
        smtp.build_message = self.wrap("email: MIME build", smtp.build_message)
        EmailMessage.as_bytes = self.wrap("email: MIME serialise", EmailMessage.as_bytes)
        SftpChannel._deliver = self.wrap("sftp: _deliver (worker thread)", SftpChannel._deliver)
        from dispatch.documents.template_files import CompiledCache

        get = CompiledCache.get

        def counted(cache: Any, path: Path, compile_file: Any = None) -> Any:
            compile_one = compile_file or cache._compile

            def compiling(file: Path) -> Any:  # called only when the cache really compiles
                with self.lock:
                    self.compiles[file.name] = self.compiles.get(file.name, 0) + 1
                return compile_one(file)

            return get(cache, path, compiling)

        CompiledCache.get = counted  # type: ignore[method-assign]

    def snapshot_threads(self) -> None:
        """CPU so far of every live thread but this one: paramiko's transports apart."""
        import paramiko

        for thread in threading.enumerate():
            if thread is threading.main_thread() or thread.ident is None:
                continue
            with contextlib.suppress(OSError):
                cpu = time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
                key = ("sftp: paramiko transport thread" if isinstance(thread, paramiko.Transport)
                       else "database threads" if thread.name.startswith("dispatch-db")
                       else "worker threads (all)")
                self.threads[key] = self.threads.get(key, 0.0) + cpu


def rusage_split(before: Any, after: Any) -> dict[str, float]:
    return {"user_s": round(after.ru_utime - before.ru_utime, 3),
            "sys_s": round(after.ru_stime - before.ru_stime, 3),
            "vol_ctx": after.ru_nvcsw - before.ru_nvcsw,
            "invol_ctx": after.ru_nivcsw - before.ru_nivcsw}


async def child_main(config: dict[str, Any]) -> None:
    from sqlalchemy import text

    from dispatch.channels import ChannelSet
    from dispatch.dispatching import run
    from dispatch.dispatching.dispatcher import Dispatcher
    from dispatch.dispatching.outcomes import Tally
    from dispatch.settings import load_settings
    from dispatch.store.engine import make_engine

    settings = load_settings(**config["settings"])
    engine = make_engine(settings.database_url, create_schema=False)
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    if config.get("warm_imports"):  # else the first render imports reportlab & co. (~1 s)
        import dispatch.documents.registry  # noqa: F401
    concurrency, limit = config["concurrency"], config["limit"]
    warmup = 0.0
    if config["path"] == "prefect":
        start = time.perf_counter()
        from prefect import flow, task

        from dispatch.orchestration import runtime
        from flows.dispatch_pending import dispatch_pending

        runtime.install(runtime.Runtime(settings, engine))

        @task(name="bench-warmup-task")
        async def warm_task() -> int:
            return 1

        @flow(name="bench-warmup")
        async def warm_flow() -> int:
            return await warm_task()

        await warm_flow()
        warmup = time.perf_counter() - start
        rss_before = vm("VmRSS")
        emit(event="timing")
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        state = await dispatch_pending(limit=limit, concurrency=concurrency,
                                       orders_per_task=config["orders_per_task"],
                                       return_state=True)
        seconds = time.perf_counter() - t0
        counts = await state.result(raise_on_failure=False)
        if not isinstance(counts, dict):
            counts = {"flow": f"{state.type.value}: {counts}"}
    else:
        instrument = Instrument() if config.get("instrument") else None
        if instrument is not None:
            instrument.install()
        rss_before = vm("VmRSS")
        emit(event="timing")
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        main0 = time.thread_time()
        t0 = time.perf_counter()
        async with ChannelSet(settings=settings) as channels:
            tally: Tally = await run.run_due(
                Dispatcher(engine, settings, channels), limit=limit, concurrency=concurrency,
                orders_per_task=config["orders_per_task"])
            if instrument is not None:
                instrument.snapshot_threads()
        seconds = time.perf_counter() - t0
        main_s = time.thread_time() - main0
        counts = {str(k): v for k, v in tally.counts.items()}
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    engine.dispose()
    extra: dict[str, Any] = {}
    if config["path"] == "plain" and instrument is not None:
        extra = {"steps_s": instrument.ms, "threads_s": instrument.threads,
                 "compiles": instrument.compiles,
                 "main_thread_s": main_s, **rusage_split(cpu0, cpu1)}
    emit(event="done", seconds=seconds, counts=counts, warmup_s=round(warmup, 2),
         cpu_s=round(cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime, 3),
         rss_before_mb=round(rss_before, 1), vmhwm_mb=round(vm("VmHWM"), 1), **extra)


# --- throughput and memory ----------------------------------------------------------------

def measure(n: int, path: str, args: argparse.Namespace, server: PrefectServer | None,
            prefect_home: Path, db_kind: str) -> dict[str, Any]:
    setup = Setup(n, db_kind)
    try:
        setup.create_orders()
        say(f"    {path:7} {db_kind:8} N={n}: {n} Active orders created in "
            f"{setup.create_seconds:.1f} s; dispatching...")
        result = run_child(setup, path, concurrency=args.concurrency, limit=args.limit,
                           orders_per_task=args.orders_per_task,
                           prefect_url=server.url if server else None,
                           prefect_home=prefect_home, server=server,
                           profile=args.profile and f"{args.profile}-{path}-{n}.txt")
    finally:
        setup.close()
    v = result["verify"]
    flag = "ok" if v["ok"] else f"NOT ALL DELIVERED {v}"
    extra = f", stand-ins CPU {result['standins_cpu_s']} s"
    extra += f", server CPU {result['server_cpu_s']} s" if "server_cpu_s" in result else ""
    say(f"    {path:7} {db_kind:8} N={n}: {result['orders_per_s']:.1f} orders/s "
        f"({result['seconds']:.1f} s, child CPU {result['cpu_s']} s{extra}, machine "
        f"{result.get('machine_busy_cores')} cores busy), peak RSS {result['vmhwm_mb']} MB "
        f"(before {result['rss_before_mb']} MB), {v['delivered']}/{v['rows']} Delivered, "
        f"{v['emails']} emails, {v['sftp_files']} files, {v['b2b_submissions']} B2B: {flag}")
    result.update(path=path, n=n, db=db_kind, create_s=round(setup.create_seconds, 1))
    return result


# --- CPU per order against the bare floors (issue 13, item 2) -------------------------------

def attach_spy(pid: int, out: str, *, rate: int = 200,
               subprocesses: bool = False) -> subprocess.Popen[bytes]:
    """py-spy sampling ``pid`` (all threads, idle ones left out) until SIGINT."""
    if not (ROOT / ".venv/bin/py-spy").exists():
        raise SystemExit("profiling needs py-spy, a tool and not a dependency of dispatch: "
                         ".venv/bin/pip install py-spy")
    return subprocess.Popen(
        [str(ROOT / ".venv/bin/py-spy"), "record", "--format", "raw", "--rate", str(rate),
         *(["--subprocesses"] if subprocesses else []), "--pid", str(pid), "-o", out],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def floor_config(world: Any, n: int) -> dict[str, Any]:
    """Where the floor child sends: the stand-ins of ``world``, as the product's settings and
    reference data point at them."""
    from urllib.parse import unquote, urlsplit

    smtp = world.smtp.settings_overrides()
    ftp = world.sftp.vendor_ftp("inbox")
    url = urlsplit(ftp.url)
    acme = next(v for v in world.reference_data_dict()["vendors"] if v["id"] == "ACME")
    return {
        "n": n, "xsd": str(ROOT / "templates/xml/purchase-order.xsd"),
        "smtp": {"host": smtp["smtp_host"], "port": smtp["smtp_port"],
                 "sender": smtp.get("smtp_sender", "purchasing@dispatch.localhost"),
                 "to": acme["email"]["to"], "cc": acme["email"].get("cc", [])},
        "sftp": {"host": url.hostname, "port": url.port, "username": unquote(url.username or ""),
                 "directory": unquote(url.path), "key_file": ftp.key_file,
                 "host_key": ftp.host_key},
        "b2b": {"url": acme["b2b"]["url"], "api_key": world.b2b_api_key},
    }


def child_events(command: list[str], log_path: Path, *, env: dict[str, str] | None = None,
                 spy_out: str | None = None, spy_server: bool = False,
                 server: PrefectServer | None = None) -> dict[str, Any]:
    """Run a child that prints ``timing`` then ``done`` JSON events; add the stand-ins' CPU
    (this process and its other children: sshd), the machine's busy cores and, given the
    ``server``, its CPU over the timed call. ``spy_out``: py-spy the child (or, with
    ``spy_server``, the server and its subprocesses) for the timed call only."""
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(command, env=env or {**os.environ, **QUIET}, stdout=subprocess.PIPE,
                                stderr=log, cwd=ROOT)
        assert proc.stdout is not None
        result: dict[str, Any] = {}
        spy = None
        machine_before, mine_before, server_before = (0, 0), 0.0, 0.0
        for raw in proc.stdout:
            line = raw.decode(errors="replace").strip()
            if not line.startswith("{"):
                continue
            event = json.loads(line)
            if event.get("event") == "timing":  # the child is about to start the timed call
                if spy_out and spy_server and server is not None:
                    spy = attach_spy(server.proc.pid, spy_out, rate=100, subprocesses=True)
                elif spy_out:
                    spy = attach_spy(proc.pid, spy_out)
                machine_before = busy_ticks()
                server_before = server.cpu_seconds() if server else 0.0
                mine_before = own_cpu_seconds(exclude=(proc.pid,))
            elif event.get("event") == "done":
                result = event
                if spy is not None:
                    spy.send_signal(signal.SIGINT)
                    spy.wait(60)
                busy, total = busy_ticks()
                result["machine_busy_cores"] = round(
                    (busy - machine_before[0]) / max(1, total - machine_before[1])
                    * (os.cpu_count() or 1), 2)
                if server is not None:
                    result["server_cpu_s"] = round(server.cpu_seconds() - server_before, 2)
                result["standins_cpu_s"] = round(
                    own_cpu_seconds(exclude=(proc.pid,)) - mine_before, 2)
        proc.wait()
    if proc.returncode != 0 or not result:
        tail = log_path.read_text(errors="replace")[-3000:]
        raise SystemExit(f"{log_path.stem} failed (rc {proc.returncode}):\n{tail}")
    return result


def measure_floor(n: int, spy_out: str | None = None) -> dict[str, Any]:
    """The bare floor (bench/dispatch_floor.py) of N standard orders against fresh stand-ins."""
    from dispatch.demo.world import StandinWorld

    workdir = Path(tempfile.mkdtemp(prefix="bench-floor-"))
    world = StandinWorld(workdir / "vendors")
    try:
        config = floor_config(world, n)
        result = child_events(
            [sys.executable, str(Path(__file__).resolve()), "_floor_child", json.dumps(config)],
            workdir / "floor.log", spy_out=spy_out)
        received = {"emails": len(world.smtp.messages),
                    "sftp_files": sum(1 for p in world.inbox().iterdir() if p.is_file()),
                    "b2b_submissions": len(world.b2b.submissions)}
    finally:
        world.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    result["verify"] = {"ok": received == {"emails": n, "sftp_files": n,
                                           "b2b_submissions": 2 * n}, **received}
    result["ms_per_order"] = result["cpu_s"] / n * 1000
    return result


def measure_plain_cpu(n: int, args: argparse.Namespace, db_kind: str,
                      spy_out: str | None = None) -> dict[str, Any]:
    """The plain path (``run_due``) of N standard orders; renderers imported beforehand."""
    from sqlalchemy import text

    from dispatch.store.engine import make_engine

    setup = Setup(n, db_kind)
    try:
        setup.create_orders()
        result = run_child(setup, "plain", concurrency=args.concurrency, limit=args.limit,
                           orders_per_task=args.orders_per_task, prefect_url=None,
                           prefect_home=setup.workdir / "prefect-home", server=None,
                           attach_profile=spy_out, warm_imports=True)
        engine = make_engine(setup.db.url, create_schema=False)
        with engine.connect() as conn:
            result["sizes"] = {str(f or "line"): int(s) for f, s in conn.execute(text(
                "SELECT format, avg(size) FROM delivery GROUP BY format")).all()}
        engine.dispose()
    finally:
        setup.close()
    result["ms_per_order"] = result["cpu_s"] / n * 1000
    result["steps_ms"] = plain_steps(result, n)
    return result


DB_STEPS = ("db: claim", "db: load job (reads + context)", "db: count attempt",
            "db: record delivered", "db: release job")
MAIN_STEPS = ("render B2B bodies", "email: MIME build", "email: MIME serialise")


def plain_steps(result: dict[str, Any], n: int) -> dict[str, float]:
    """The instrumented child's CPU per order by step (ms), from thread CPU clocks. The
    database steps run on the run loop's database threads (``dispatcher.off_loop``)."""
    steps, threads = result.get("steps_s", {}), result.get("threads_s", {})
    if not steps:
        return {}
    out = {k: steps[k] for k in DB_STEPS if k in steps}
    out["database threads: the rest (hand-offs)"] = (
        threads.get("database threads", 0.0) - sum(out.values()))
    main = {k: steps[k] for k in MAIN_STEPS if k in steps}
    out.update(main)
    out["loop thread: the rest (event loop, async SMTP/HTTP, send_group, tally)"] = (
        result["main_thread_s"] - sum(main.values()))
    workers = {k: v for k, v in steps.items() if k not in DB_STEPS + MAIN_STEPS}
    out.update(sorted(workers.items()))
    out["worker threads: the rest (pool hand-offs, getaddrinfo)"] = (
        threads.get("worker threads (all)", 0.0) - sum(workers.values()))
    out["sftp: paramiko transport thread"] = threads.get("sftp: paramiko transport thread", 0.0)
    out["not on a live thread at the end (exited threads)"] = (
        result["cpu_s"] - result["main_thread_s"] - sum(threads.values()))
    return {k: v / n * 1000 for k, v in out.items()}


def cpu_rounds(args: argparse.Namespace, db_kind: str) -> dict[str, Any]:
    """Floor and plain alternately (A B, then B A, ...): child CPU per order, the ratio."""
    n = args.cpu_orders
    rows: list[dict[str, Any]] = []
    for r in range(args.rounds):
        for path in (("floor", "plain") if r % 2 == 0 else ("plain", "floor")):
            load = os.getloadavg()[0]
            result = (measure_floor(n) if path == "floor"
                      else measure_plain_cpu(n, args, db_kind))
            result.update(path=path, round=r + 1, n=n, db=db_kind, load_before=load)
            rows.append(result)
            v = result["verify"]
            ok = "ok" if v["ok"] else f"NOT ALL DELIVERED {v}"
            extra = (f" user {result['user_s']:.2f} s sys {result['sys_s']:.2f} s, context "
                     f"switches {result['vol_ctx']} voluntary {result['invol_ctx']} forced;")
            if path == "floor":
                extra += " parts ms/order: " + ", ".join(
                    f"{k} {val:.2f}" for k, val in result["parts_ms"].items())
            say(f"    round {r + 1} {path:5} {db_kind} N={n}: child CPU {result['cpu_s']:.2f} s"
                f" = {result['ms_per_order']:.2f} ms/order, {result['seconds']:.1f} s wall, "
                f"stand-ins CPU {result['standins_cpu_s']} s, machine "
                f"{result['machine_busy_cores']} cores busy, load {load:.2f}; {ok}{extra}")
    per = {p: [x["ms_per_order"] for x in rows if x["path"] == p] for p in ("floor", "plain")}
    ratios = [p["ms_per_order"] / f["ms_per_order"] for f, p in zip(
        [x for x in rows if x["path"] == "floor"], [x for x in rows if x["path"] == "plain"],
        strict=True)]
    med = {p: statistics.median(v) for p, v in per.items()}
    summary_row = {"db": db_kind, "n": n, "rounds": args.rounds, "median_ms": med,
                   "range_ms": {p: (min(v), max(v)) for p, v in per.items()},
                   "ratio_of_medians": med["plain"] / med["floor"], "ratios": ratios,
                   "floor_parts_ms": {k: statistics.median(x["parts_ms"][k] for x in rows
                                                           if x["path"] == "floor")
                                      for k in rows[0 if rows[0]["path"] == "floor" else 1][
                                          "parts_ms"]},
                   "sizes": {p: next(x["sizes"] for x in rows if x["path"] == p)
                             for p in ("floor", "plain")},
                   "xsd_validate_ms": statistics.median(
                       x["xsd_validate_ms"] for x in rows if x["path"] == "floor")}
    say(f"  => {db_kind}, {n} orders, median of {args.rounds}: floor {med['floor']:.2f} ms/order "
        f"[{min(per['floor']):.2f}–{max(per['floor']):.2f}], plain {med['plain']:.2f} ms/order "
        f"[{min(per['plain']):.2f}–{max(per['plain']):.2f}]; plain ÷ floor "
        f"{summary_row['ratio_of_medians']:.2f} (per round "
        + ", ".join(f"{x:.2f}" for x in ratios) + "; target <= 1.3)")
    say("     floor parts, ms/order (median): " + ", ".join(
        f"{k} {v:.2f}" for k, v in summary_row["floor_parts_ms"].items())
        + f"; one XSD validation (not in the floor) {summary_row['xsd_validate_ms']:.2f}")
    say(f"     document bytes: floor {summary_row['sizes']['floor']}, product "
        f"{summary_row['sizes']['plain']}")
    plains = [x["steps_ms"] for x in rows if x["path"] == "plain" and x.get("steps_ms")]
    if plains:
        summary_row["plain_steps_ms"] = {k: statistics.median(p[k] for p in plains)
                                         for k in plains[0]}
        say("     template compiles per plain run (cached per path and mtime): " + "; ".join(
            str(x.get("compiles")) for x in rows if x["path"] == "plain"))
        say("     plain, CPU per order by step (thread CPU clocks, median of the rounds):")
        for k, v in summary_row["plain_steps_ms"].items():
            say(f"       {k:72} {v:6.2f} ms")
    if args.profile:
        say("  profiled runs (py-spy attached for the timed call; not in the medians)")
        for path in ("plain", "floor"):
            out = f"{args.profile}-cpu-{path}-{db_kind}.txt"
            result = (measure_floor(n, spy_out=out) if path == "floor"
                      else measure_plain_cpu(n, args, db_kind, spy_out=out))
            say(f"    {path}: {result['ms_per_order']:.2f} ms/order under the profiler; "
                f"{out}")
            table = profile_breakdown(out, result["ms_per_order"])
            summary_row[f"profile_{path}"] = table
            for name, share, ms in table:
                say(f"      {name:52} {share * 100:5.1f} %  {ms:6.2f} ms/order")
    return {"rows": rows, "summary": summary_row}


# Categories of a sample: the rule sets are tried in order (what the work is for beats which
# library does it); a rule matches when any frame of the stack contains one of its needles.
PROFILE_RULES: list[tuple[str, list[str]]] = [
    ("imports (lazy, inside the timed call)", ["_find_and_load ("]),
    ("template compile (Jinja/YAML/xlsx parse)", [
        "Environment.compile (", "Environment._parse (", "Environment._generate (",
        "LayoutCompiler", "compile_workbook (", "yaml/"]),
    ("TLS contexts (ssl.create_default_context)", ["create_default_context ("]),
    ("render PDF", ["PdfRenderer", "dispatch/documents/pdf", "render_pdf (", "reportlab/"]),
    ("render Excel", ["ExcelRenderer", "dispatch/documents/excel", "render_xlsx (",
                      "openpyxl/"]),
    ("render XML (product: + XSD validation)", [
        "XmlRenderer", "dispatch/documents/order_xml", "render_xml (", "xml_tree ("]),
    ("render B2B body", ["_b2b_document", "b2b_line.py", "b2b_bodies ("]),
    ("render: the rest (registry, sandbox, Document sha256)", [
        "render_one (", "render_document (", "render_group (", "_render_all ("]),
    ("DB: claim jobs", ["Dispatcher.claim ("]),
    ("DB: load job (reads + context)", ["load_job ("]),
    ("DB: count attempt (_start_attempt)", ["_start_attempt ("]),
    ("DB: record delivered", ["record_delivered (", "<record-delivered>"]),
    ("DB: release job", ["Dispatcher.release ("]),
    ("email: MIME message build", ["build_message (", "email_bytes (", "as_bytes (",
                                   "email/"]),
    ("email: SMTP (aiosmtplib)", ["dispatch/channels/smtp.py", "aiosmtplib/"]),
    ("SFTP (paramiko, incl. its transport thread)", [
        "dispatch/channels/sftp.py", "paramiko/", "putfo ("]),
    ("B2B POST (httpx)", ["dispatch/channels/b2b_http.py", "httpx/", "httpcore/", "h11/",
                          "anyio/"]),
    ("DB: other (engine, pool)", ["sqlalchemy/", "dispatch/store/"]),
    ("evidence, outcomes, tally", ["Evidence", "Outcome", "Tally", "proof ("]),
    ("logging", ["logging/"]),
    ("thread hops (to_thread, executor)", ["concurrent/futures", "to_thread", "threading.py"]),
    ("floor loop (order data, timers)", ["floor_child ("]),
    ("asyncio event loop", ["asyncio/", "selectors.py"]),
]
# Leaf frames that are a blocked wait, not CPU (py-spy reports some of them as active).
IDLE_LEAVES = ("_worker (concurrent/futures/thread.py:81)", "read_all (paramiko/packet.py",
               "select (selectors.py", "wait (threading.py", "_wait_for_tstate_lock (")


def classify(stack: str) -> str:
    frames = stack.split(";")
    if frames[-1].startswith(IDLE_LEAVES) or any(
            frames[-1].split(" (")[0].endswith(leaf.split(" (")[0]) and leaf in frames[-1]
            for leaf in IDLE_LEAVES):
        return "idle"
    for i, frame in enumerate(frames[:-1]):  # send_group's own commit of the evidence
        if frame.startswith("send_group (") and (
                "contextlib" in frames[i + 1] or "dispatch/store/engine.py" in frames[i + 1]):
            frames.append("<record-delivered>")
            break
    for name, needles in PROFILE_RULES:
        if any(needle in frame for frame in frames for needle in needles):
            return name
    return "other"


def profile_breakdown(path: str, ms_per_order: float) -> list[tuple[str, float, float]]:
    """(category, share of the non-idle samples, ms/order: the share of the run's measured
    child CPU per order). Sampling: shares are of where the threads were seen running."""
    counts: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(path).read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if stack and count.isdigit():
                name = classify(stack)
                counts[name] = counts.get(name, 0) + int(count)
    idle = counts.pop("idle", 0)
    total = sum(counts.values()) or 1
    order = [name for name, _ in PROFILE_RULES] + ["other"]
    table = [(name, counts[name] / total, counts[name] / total * ms_per_order)
             for name in order if name in counts]
    return [*table, (f"(left out: {idle} samples of blocked waits; {total} counted)", 0.0, 0.0)]


# --- latency, embedded ---------------------------------------------------------------------

class Service:
    """``python -m dispatch serve`` (embedded dispatch) as a subprocess."""

    def __init__(self, setup: Setup, home: Path) -> None:
        import httpx

        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, **QUIET, "PREFECT_HOME": str(home),
               "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "WARNING"}
        env.pop("PREFECT_API_URL", None)
        for key, value in setup.settings_fields.items():
            env[f"DISPATCH_{key.upper()}"] = str(value)
        self.log = open(setup.workdir / "serve.log", "wb")  # noqa: SIM115
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dispatch", "serve", "--port", str(self.port),
             "--log-level", "warning"], env=env, cwd=ROOT, stdout=self.log,
            stderr=subprocess.STDOUT, start_new_session=True)
        self.http = httpx.Client(base_url=self.base, timeout=30, trust_env=False,
                                 headers={"Authorization": f"Bearer {API_KEY}"})
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"dispatch serve exited; see {self.log.name}")
            with contextlib.suppress(httpx.HTTPError):
                if self.http.get("/health").status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit("dispatch serve did not answer within 60 s")
            time.sleep(0.05)
        self.health_s = time.perf_counter() - self.started

    def create(self, body: dict[str, Any]) -> str:
        response = self.http.post("/ERP/PurchaseOrder/Create", json=body)
        response.raise_for_status()
        return str(response.json()["RequestGuid"])

    def stop(self) -> None:
        self.http.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        self.log.close()


class Watcher:
    """Watches the service's database (read-only, one query per outstanding request every
    20 ms) for requests whose order has every delivery Delivered: no load on the API."""

    def __init__(self, url: str) -> None:
        from dispatch.store.engine import make_engine

        self.engine = make_engine(url, create_schema=False)
        self.waiting: dict[str, tuple[float, threading.Event, list[Any]]] = {}
        self.lock = threading.Lock()
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True, name="watcher")
        self.thread.start()

    def wait(self, guid: str, timeout: float) -> tuple[float, str]:
        done: threading.Event = threading.Event()
        box: list[Any] = []
        with self.lock:
            self.waiting[guid] = (time.perf_counter(), done, box)
        if not done.wait(timeout):
            raise SystemExit(f"request {guid}: not all delivered within {timeout} s")
        return box[0], box[1]

    def _run(self) -> None:
        from sqlalchemy import text

        query = text(
            "SELECT r.order_id, r.status,"
            " (SELECT count(*) FROM delivery d WHERE d.order_id = r.order_id"
            "  AND d.status = 'Delivered') FROM erp_request r WHERE r.guid = :g")
        while not self.stopping:
            with self.lock:
                pending = list(self.waiting.items())
            if pending:
                with self.engine.connect() as conn:
                    for guid, (_, done, box) in pending:
                        row = conn.execute(query, {"g": guid}).first()
                        if row is not None and row[1] == "Failed":
                            raise SystemExit(f"request {guid} failed")
                        if row is not None and row[2] == ROWS_PER_ORDER:
                            box += [time.perf_counter(), row[0]]
                            with self.lock:
                                del self.waiting[guid]
                            done.set()
            time.sleep(0.02)

    def stop(self) -> None:
        self.stopping = True
        self.thread.join(5)
        self.engine.dispose()


def latency_embedded(args: argparse.Namespace, db_kind: str) -> dict[str, Any]:
    setup = Setup(0, db_kind)
    service = None
    try:
        setup.load_reference_data().dispose()
        home = setup.workdir / "prefect-home"
        service = Service(setup, home)
        watcher = Watcher(setup.db.url)
        guid = service.create(order_body(-1))
        first, _ = watcher.wait(guid, 180)
        warm = first - service.started
        say(f"    serve answered /health after {service.health_s:.1f} s; warm-up order "
            f"delivered {warm:.1f} s after start (Prefect temporary server included)")
        time.sleep(1.0)
        spy = None
        if args.profile:
            spy = subprocess.Popen(
                [str(ROOT / ".venv/bin/py-spy"), "record", "--format", "raw", "--rate", "100",
                 "--subprocesses", "--pid", str(service.proc.pid),
                 "-o", f"{args.profile}-serve-{db_kind}.txt"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        latencies: list[float] = []
        order_ids: list[str] = []
        lock = threading.Lock()
        threads = []

        def one(index: int) -> None:
            assert service is not None
            sent = time.perf_counter()
            guid = service.create(order_body(index))
            seen, order_id = watcher.wait(guid, 120)
            with lock:
                latencies.append(seen - sent)
                order_ids.append(order_id)

        start = time.perf_counter()
        for i in range(args.latency_orders):
            time.sleep(max(0.0, start + i / args.latency_rate - time.perf_counter()))
            thread = threading.Thread(target=one, args=(i,))
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join()
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
        watcher.stop()
        server_side = db_latencies(setup.db.url, order_ids)
        api_delivered = 0  # the ERP's view: the order detail through the API
        for order_id in order_ids:
            detail = service.http.get("/ERP/PurchaseOrder/Get",
                                      params={"orderId": order_id}).json()
            api_delivered += sum(d["Status"] == "Delivered" for d in detail["Deliveries"])
        verify = {"orders": len(order_ids), "api_delivered": api_delivered,
                  "emails": len(setup.world.smtp.messages),
                  "b2b": len(setup.world.b2b.submissions)}
    finally:
        if service is not None:
            service.stop()
        setup.close()
    result = {"db": db_kind, "orders": args.latency_orders, "rate": args.latency_rate,
              "health_s": round(service.health_s, 2), "warm_s": round(warm, 2),
              "client": summary(latencies), "server": summary(server_side["total"]),
              "stages_p50": {k: percentile(v, 0.5) for k, v in server_side.items()},
              "verify": verify}
    say(f"    embedded {db_kind}: POST -> all Delivered (database watched every 20 ms): "
        f"p50 {result['client']['p50']:.3f} s, p99 {result['client']['p99']:.3f} s, "
        f"max {result['client']['max']:.3f} s; in the database (received_at -> last "
        f"delivered_at): p50 {result['server']['p50']:.3f} s, p99 {result['server']['p99']:.3f} s"
        f" ({verify})")
    say("      stages, p50 (database): " + ", ".join(
        f"{k} {v:.3f} s" for k, v in result["stages_p50"].items()))
    return result


def latency_server(args: argparse.Namespace) -> dict[str, Any]:
    """Server mode as the README sets it up (``scripts/server_mode.py``: Prefect server,
    ``prefect deploy --all``, ``dispatch worker``, ``dispatch serve --no-dispatch``), orders
    created one at a time: Create POST -> the order's last DeliveredAt."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from server_mode import ServerMode, workdir

    with workdir(None) as root, ServerMode(root, worker_limit=4, quiet=True,
                                           prefect_pg=args.server_prefect_pg) as sm:
        started = time.perf_counter()
        order_id, _ = sm.create_order(order_body(-1))
        sm.wait_delivered(order_id)
        warm = time.perf_counter() - started
        values = sm.latencies(args.server_latency_orders, body=order_body(0))
        stages = {k: percentile([b[k] for b in sm.breakdown], 0.5) for k in sm.breakdown[0]}
        up = sm.timings.get("up", float("nan"))
    result = {"mode": "server", "prefect_db": "postgres" if args.server_prefect_pg else "sqlite",
              "orders": args.server_latency_orders, "up_s": round(up, 1),
              "warm_s": round(warm, 2), "client": summary(values), "stages_p50": stages,
              "load_average": os.getloadavg()[0]}
    say(f"    server mode: up in {up:.1f} s, first order {warm:.1f} s; Create POST -> last "
        f"delivery p50 {result['client']['p50']:.2f} s, p90 {result['client']['p90']:.2f} s, "
        f"max {result['client']['max']:.2f} s (n={len(values)}, goal p50 <= 4 s)")
    say("      stages, p50: " + ", ".join(f"{k} {v:.2f} s" for k, v in stages.items()))
    return result


def summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50": percentile(values, 0.5), "p90": percentile(values, 0.9),
            "p99": percentile(values, 0.99), "max": max(values, default=float("nan")),
            "mean": statistics.fmean(values) if values else float("nan")}


def db_latencies(url: str, order_ids: list[str]) -> dict[str, list[float]]:
    """Per order, from the database: received -> executed -> first send attempt started ->
    last delivery recorded (all timestamps written by the service, one clock)."""
    from sqlalchemy import text

    from dispatch.store.engine import make_engine

    def when(value: Any) -> dt.datetime:
        return dt.datetime.fromisoformat(value) if isinstance(value, str) else value

    engine = make_engine(url, create_schema=False)
    out: dict[str, list[float]] = {"total": [], "execute": [], "to_first_send": [],
                                   "sending": []}
    with engine.connect() as conn:
        for order_id in order_ids:
            received, executed, first, last = map(when, conn.execute(text(
                "SELECT (SELECT min(received_at) FROM erp_request WHERE order_id = :o),"
                " (SELECT min(finished_at) FROM erp_request WHERE order_id = :o),"
                " (SELECT min(last_attempt_at) FROM delivery WHERE order_id = :o),"
                " (SELECT max(delivered_at) FROM delivery WHERE order_id = :o)"),
                {"o": order_id}).one())
            out["total"].append((last - received).total_seconds())
            out["execute"].append((executed - received).total_seconds())
            out["to_first_send"].append((first - executed).total_seconds())
            out["sending"].append((last - first).total_seconds())
    engine.dispose()
    return out


# --- main --------------------------------------------------------------------------------

@contextlib.contextmanager
def prefect_api(args: argparse.Namespace, top: Path) -> Iterator[PrefectServer | None]:
    if args.prefect_api != "server":
        yield None
        return
    home = top / "prefect-server-home"
    home.mkdir()
    server = PrefectServer(home)
    say(f"prefect server start: answered /api/health after {server.start_seconds:.1f} s "
        f"({server.url}), RSS {server.rss_mb():.0f} MB")
    try:
        yield server
    finally:
        say(f"prefect server RSS at the end: {server.rss_mb():.0f} MB")
        server.stop()


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "_child":
        asyncio.run(child_main(json.loads(sys.argv[2])))
        return
    if len(sys.argv) > 2 and sys.argv[1] == "_floor_child":
        from dispatch_floor import floor_child

        asyncio.run(floor_child(json.loads(sys.argv[2]), emit))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2,
                        help="throughput rounds (each: plain then prefect, alternating)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--limit", type=int, default=1000, help="jobs claimed per batch")
    parser.add_argument("--orders-per-task", type=int, default=10,
                        help="dispatch-pending's orders_per_task (1: a task per order)")
    parser.add_argument("--paths", default="plain,prefect")
    parser.add_argument("--cpu-orders", type=int, default=200,
                        help="--only cpu: orders per run (floor and plain alternate per round)")
    parser.add_argument("--memory-orders", type=int, default=10_000)
    parser.add_argument("--memory-paths", default="plain,prefect")
    parser.add_argument("--latency-orders", type=int, default=30)
    parser.add_argument("--latency-rate", type=float, default=1.0, help="orders per second")
    parser.add_argument("--server-latency-orders", type=int, default=20,
                        help="server mode: orders created one at a time")
    parser.add_argument("--server-prefect-pg", metavar="ADMIN_URL", default=None,
                        help="server mode: the Prefect server on a new PostgreSQL database")
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="sqlite")
    parser.add_argument("--only", default="throughput,memory,latency,latency-server")
    parser.add_argument("--prefect-api", choices=("server", "temporary"), default="server")
    parser.add_argument("--profile", default=None,
                        help="py-spy raw profiles of the dispatching children to PREFIX-*.txt "
                        "(--only cpu: one extra profiled run per path, timed call only, and "
                        "its breakdown)")
    parser.add_argument("--json", default=None, help="write every result here")
    args = parser.parse_args()
    only = set(args.only.split(","))
    dbs = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    os.environ.update(QUIET)
    say(f"machine: {machine()}")
    say(f"code: {code_version()}")
    top = Path(tempfile.mkdtemp(prefix="bench-dispatch-run-"))
    results: dict[str, Any] = {"machine": machine(), "code": code_version(),
                               "args": vars(args), "throughput": [],
                               "memory": [], "latency": [], "cpu": []}
    try:
        if "cpu" in only:
            for db_kind in dbs:
                say(f"CPU per order, {db_kind}: bare floor (bench/dispatch_floor.py) and plain "
                    f"(run_due, concurrency {args.concurrency}), {args.cpu_orders} orders, "
                    f"{args.rounds} alternating rounds")
                results["cpu"].append(cpu_rounds(args, db_kind))
        if only & {"throughput", "memory"}:
            with prefect_api(args, top) as server:
                if server is not None:
                    results["prefect_server_start_s"] = round(server.start_seconds, 2)
                child_home = top / "prefect-child-home"  # temporary server mode only
                for db_kind in dbs:
                    if "throughput" in only:
                        say(f"throughput, {db_kind}, {args.orders} orders, concurrency "
                            f"{args.concurrency}, Prefect API: {args.prefect_api}")
                        for _ in range(args.rounds):
                            for path in args.paths.split(","):
                                results["throughput"].append(measure(
                                    args.orders, path, args, server, child_home, db_kind))
                        report_throughput(results["throughput"], db_kind)
                    if "memory" in only:
                        say(f"memory, {db_kind}, {args.memory_orders} orders")
                        for path in args.memory_paths.split(","):
                            results["memory"].append(measure(
                                args.memory_orders, path, args, server, child_home, db_kind))
                        report_memory(results, db_kind)
        if "latency" in only:
            for db_kind in dbs:
                say(f"latency, embedded (`dispatch serve`), {db_kind}, {args.latency_orders} "
                    f"orders at {args.latency_rate}/s")
                results["latency"].append(latency_embedded(args, db_kind))
        if "latency-server" in only:
            say(f"latency, server mode, {args.server_latency_orders} orders one at a time")
            results["latency"].append(latency_server(args))
    finally:
        shutil.rmtree(top, ignore_errors=True)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2, default=str))


def report_throughput(rows: list[dict[str, Any]], db_kind: str) -> None:
    by = {p: [r for r in rows if r["path"] == p and r["db"] == db_kind]
          for p in ("plain", "prefect")}
    med = {p: statistics.median(r["orders_per_s"] for r in v) for p, v in by.items() if v}
    if len(med) == 2:
        say(f"  => {db_kind}: plain {med['plain']:.1f} orders/s, prefect {med['prefect']:.1f} "
            f"orders/s (median of {len(by['plain'])}); ratio {med['prefect'] / med['plain']:.2f}"
            f" (goal >= 0.8)")


def report_memory(results: dict[str, Any], db_kind: str) -> None:
    for path in ("plain", "prefect"):
        small = [r["vmhwm_mb"] for r in results["throughput"]
                 if r["path"] == path and r["db"] == db_kind]
        big = [r["vmhwm_mb"] for r in results["memory"]
               if r["path"] == path and r["db"] == db_kind]
        if small and big:
            say(f"  => {db_kind} {path}: peak RSS {max(small):.0f} MB at "
                f"{results['args']['orders']} orders, {max(big):.0f} MB at "
                f"{results['args']['memory_orders']}: x{max(big) / max(small):.2f} (goal <= 1.2)")


if __name__ == "__main__":
    main()
