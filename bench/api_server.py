"""Benchmark fixtures: a fresh database, `dispatch load`, `dispatch serve` as a subprocess,
CPU meters, and a watcher that sees requests complete by reading the erp_request table."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from api_client import Connection

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "templates" / "sample-refdata.yaml"
TEMPLATE_FILES = ("pdf/standard.yaml", "excel/standard.xlsx")  # named by the sample
API_KEY = "bench-key-0123456789"
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dispatch_command() -> list[str]:
    exe = ROOT / ".venv" / "bin" / "dispatch"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "dispatch"]


class Database:
    """A fresh SQLite file in ``workdir`` or a fresh PostgreSQL database (dropped after)."""

    def __init__(self, kind: str, workdir: Path) -> None:
        self.kind = kind
        self.pg_name = f"dispatch_bench_{os.getpid()}"
        self.sqlite_path = workdir / "dispatch.db"

    @property
    def url(self) -> str:
        if self.kind == "sqlite":
            return f"sqlite:///{self.sqlite_path}"
        return f"postgresql://postgres@127.0.0.1:5432/{self.pg_name}"

    def create(self) -> None:
        if self.kind == "postgres":
            self._admin(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)')
            self._admin(f'CREATE DATABASE "{self.pg_name}"')

    def drop(self) -> None:
        if self.kind == "postgres":
            self._admin(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)')

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def reader(self) -> Any:
        """A read-only DB-API connection in autocommit (each query sees the latest commits)."""
        if self.kind == "sqlite":
            conn = sqlite3.connect(f"file:{self.sqlite_path}?mode=ro", uri=True,
                                   isolation_level=None, check_same_thread=False)
            return conn
        import psycopg

        return psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={self.pg_name}",
                               autocommit=True)

    def param(self) -> str:
        return "?" if self.kind == "sqlite" else "%s"


class Server:
    """`dispatch load` + `dispatch serve` on 127.0.0.1 with the given database."""

    def __init__(self, db: Database, workdir: Path, *, no_dispatch: bool) -> None:
        self.db = db
        self.workdir = workdir
        self.port = free_port()
        self.no_dispatch = no_dispatch
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / "serve.log"
        self.env = {**os.environ, "DISPATCH_DATABASE_URL": db.url,
                    "DISPATCH_API_KEYS": API_KEY}
        templates = ROOT / "templates"
        if not all((templates / name).is_file() for name in TEMPLATE_FILES):
            # The sample names template files another part of the project provides; stand
            # in empty files so `dispatch load` accepts the sample (Create does not render).
            templates = workdir / "templates"
            for name in TEMPLATE_FILES:
                (templates / name).parent.mkdir(parents=True, exist_ok=True)
                (templates / name).touch()
            self.env["DISPATCH_TEMPLATES_DIR"] = str(templates)

    def start(self) -> None:
        subprocess.run([*dispatch_command(), "load", str(SAMPLE)], env=self.env,
                       cwd=self.workdir, check=True, stdout=subprocess.DEVNULL)
        cmd = [*dispatch_command(), "serve", "--host", "127.0.0.1", "--port", str(self.port),
               "--log-level", "warning"]
        if self.no_dispatch:
            cmd.append("--no-dispatch")
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(cmd, env=self.env, cwd=self.workdir, stdout=log,
                                         stderr=subprocess.STDOUT)
        asyncio.run(self._wait_ready())

    async def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"dispatch serve exited: {self.log.read_text()[-2000:]}")
            try:
                conn = await Connection("127.0.0.1", self.port, {}).open()
                status, _ = await conn.send(conn.request_bytes("GET", "/health"))
                conn.close()
                if status == 200:
                    return
            except OSError:
                pass
            await asyncio.sleep(0.05)
        raise RuntimeError(f"dispatch serve did not answer on port {self.port}")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def cpu_seconds(self) -> float:
        """User + system CPU of the serve process (all its threads) so far."""
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK


class MinServer(Server):
    """bench/api_min.py (the minimal implementation of the same contract) on SQLite."""

    def start(self) -> None:
        if self.db.kind != "sqlite":
            raise ValueError("the minimal implementation runs on SQLite only")
        cmd = [sys.executable, str(ROOT / "bench" / "api_min.py"), "--db",
               str(self.db.sqlite_path), "--port", str(self.port), "--key", API_KEY]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(cmd, env=self.env, cwd=self.workdir, stdout=log,
                                         stderr=subprocess.STDOUT)
        asyncio.run(self._wait_ready())


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores; /proc/stat)."""
    parts = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    values = [int(v) for v in parts[:8]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / CLK_TCK


def postgres_seconds() -> float:
    """CPU seconds of every process named postgres so far (the backends and the server).

    A backend that exited during the window is missed; the benchmark keeps its connections.
    """
    total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        name, rest = stat.split(" (", 1)[1].rsplit(")", 1)
        if name == "postgres":
            fields = rest.split()
            total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


class CpuMeter:
    """Cores used by the client, the server process, PostgreSQL and the whole machine."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.pg = server.db.kind == "postgres"
        self.start = self._read()

    def _read(self) -> tuple[float, ...]:
        return (time.monotonic(), time.process_time(), self.server.cpu_seconds(),
                machine_busy_seconds(), postgres_seconds() if self.pg else 0.0)

    def stop(self) -> dict[str, float]:
        end = self._read()
        wall = end[0] - self.start[0]
        cores = {"client_cores": (end[1] - self.start[1]) / wall,
                 "server_cores": (end[2] - self.start[2]) / wall,
                 "machine_cores": (end[3] - self.start[3]) / wall}
        if self.pg:
            cores["postgres_cores"] = (end[4] - self.start[4]) / wall
        return cores


class Watcher:
    """Sees requests complete by polling erp_request (no load on the API process).

    The executor runs requests in arrival order and commits them in batches, so completed
    rows appear in ``seq`` order; a margin below the highest seen covers commit races.
    """

    MARGIN = 32

    def __init__(self, db: Database) -> None:
        self.conn = db.reader()
        p = db.param()
        self._done_sql = ("SELECT seq, guid FROM erp_request WHERE seq > " + p +
                          " AND status <> 'Created' ORDER BY seq")
        self._pending_sql = "SELECT count(*) FROM erp_request WHERE status = 'Created'"
        self.floor = 0
        self.seen: dict[str, float] = {}

    def _fetch(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        cur = self.conn.cursor()
        cur.execute(sql, args)
        rows = cur.fetchall()
        cur.close()
        return rows

    def poll(self) -> None:
        now = time.perf_counter()
        top = self.floor
        for seq, guid in self._fetch(self._done_sql, (max(0, self.floor - self.MARGIN),)):
            self.seen.setdefault(guid, now)
            top = max(top, seq)
        self.floor = top

    def skip_to_end(self) -> None:
        rows = self._fetch("SELECT max(seq) FROM erp_request")
        self.floor = int(rows[0][0] or 0)

    def pending(self) -> int:
        return int(self._fetch(self._pending_sql)[0][0])

    def close(self) -> None:
        self.conn.close()


def make_workdir(base: Path | None) -> Path:
    import tempfile

    return Path(tempfile.mkdtemp(prefix="dispatch-bench-", dir=base))


def remove_workdir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
