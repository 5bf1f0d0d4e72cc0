"""Server mode on loopback: a Prefect server, the repo's deployments, a process worker,
stand-in vendors and ``dispatch serve --no-dispatch``, all started as the README says.

    .venv/bin/python scripts/server_mode.py [--orders 20] [--root DIR] [--keep]

brings everything up in a temporary folder (its own PREFECT_HOME, free ports, a SQLite
database shared by the API and the worker), creates Active orders through the HTTP API one
at a time, waits until the event-triggered ``dispatch-order/on-event`` runs have delivered
them, prints the latency from the Create POST to the order's last delivery (p50/p99), and
tears everything down (every process in its own process group, killed as a group).
``tests/flows/test_server_mode.py`` runs the same :class:`ServerMode` in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
POOL = "dispatch"
API_KEY = "server-mode-key-5d1c"
# One order on every channel: email PDF + Excel + XML, SFTP XML, B2B (4 deliveries).
ALL_CHANNELS: dict[str, Any] = {
    "VendorId": "ACME", "StockName": "Main", "DeviceId": "DEV-1", "Status": "Active",
    "Reference": "server mode",
    "SendOptions": {"Channel": {"IsB2B": True, "IsFtp": True, "IsEmail": True},
                    "FTP": {"IsXml": True},
                    "Email": {"IsXml": True, "IsPdf": True, "IsExcel": True,
                              "PdfTemplate": "standard-pdf",
                              "ExcelTemplate": "standard-excel"}},
    "PurchaseOrderItems": [{"ItemId": "DRILL-5", "TotalQuantity": 10},
                           {"ItemId": "GLOVE-L", "TotalQuantity": 40}],
}


class Unavailable(RuntimeError):
    """Server mode cannot run on this machine (no loopback sockets, no prefect CLI)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def check_environment() -> None:
    """Raise Unavailable for environmental reasons (not for a broken product)."""
    try:
        free_port()
    except OSError as exc:
        raise Unavailable(f"cannot bind a TCP socket on 127.0.0.1: {exc}") from None
    for tool in ("prefect", "dispatch"):
        if not (BIN / tool).exists():
            raise Unavailable(f"{BIN / tool} is missing (install the project into the venv)")


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def descendants(pid: int) -> set[int]:
    tree, found, todo = _children(), set(), [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def group_members(pgid: int) -> set[int]:
    """Processes of the group that still run (zombies, dead but not yet reaped, do not)."""
    members = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.add(int(entry.name))
    return members


class Proc:
    """A command in its own session/process group, output to a log file."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.cmd, self.log = name, cmd, log
        self._out = log.open("ab")
        self.popen = subprocess.Popen(cmd, env=env, cwd=ROOT, stdin=subprocess.DEVNULL,
                                      stdout=self._out, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        self.pid = self.popen.pid

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self, timeout: float = 15.0) -> set[int]:
        """SIGTERM the group, SIGKILL what is left (the group and every descendant, some of
        which may have started their own sessions). Returns the pids that survived."""
        pids = descendants(self.pid) | {self.pid}
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.popen.poll() is None:
            time.sleep(0.1)
        pids |= descendants(self.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)
        time.sleep(0.2)
        self._out.close()
        deadline = time.monotonic() + 5  # SIGKILLed processes go away asynchronously
        while True:
            left = {pid for pid in pids if alive(pid)} | group_members(self.pid)
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.05)


def run(cmd: list[str], env: dict[str, str], log: Path, timeout: float = 120) -> None:
    with log.open("ab") as out:
        out.write(f"$ {' '.join(cmd)}\n".encode())
        out.flush()
        done = subprocess.run(cmd, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out,
                              stderr=subprocess.STDOUT, timeout=timeout)
    if done.returncode:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}:\n{tail}")


def wait_http(url: str, proc: Proc, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited {proc.popen.returncode}:\n{proc.tail()}")
        try:
            if httpx.get(url, timeout=2, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{proc.name} did not answer {url} within {timeout:.0f} s:\n"
                       f"{proc.tail()}")


def parse_ts(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


class ServerMode:
    """Everything of server mode, started in ``root`` (see the module docstring).

    ``scheduler_loop_seconds`` lowers the Prefect scheduler's loop (a server setting, 60 s
    by default) so a schedule changed through the API fires within seconds."""

    def __init__(self, root: Path, *, scheduler_loop_seconds: float | None = None,
                 retry_delays: str = "1,2,4", worker_limit: int | None = 4,
                 prefect_pg: str | None = None, quiet: bool = False,
                 plain_worker: bool = False) -> None:
        self.root = root
        self.plain_worker = plain_worker  # `prefect worker start` instead of `dispatch worker`
        self.prefect_pg = prefect_pg  # admin URL: the Prefect server on a new PG database
        self.prefect_pg_db: str | None = None
        self.worker_limit = worker_limit
        self.scheduler_loop_seconds = scheduler_loop_seconds
        self.retry_delays = retry_delays
        self.quiet = quiet
        self.procs: list[Proc] = []
        self.world: Any = None
        self.leftovers: set[int] = set()
        self.timings: dict[str, float] = {}
        self.breakdown: list[dict[str, float]] = []

    def say(self, text: str) -> None:
        if not self.quiet:
            print(text, flush=True)

    # -- bring up -------------------------------------------------------------------
    def base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PREFECT_", "DISPATCH_"))}
        env.update({"PREFECT_HOME": str(self.root / "prefect"), "DO_NOT_TRACK": "1",
                    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                    "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}"})
        return env

    def start(self) -> None:
        check_environment()
        self.root.mkdir(parents=True, exist_ok=True)
        logs = self.root / "logs"
        logs.mkdir(exist_ok=True)
        self.prefect_port, self.api_port = free_port(), free_port()
        self.prefect_api = f"http://127.0.0.1:{self.prefect_port}/api"
        self.api = f"http://127.0.0.1:{self.api_port}"
        started = time.monotonic()

        env = self.base_env()
        # The UI asks the API at PREFECT_UI_API_URL, which does not follow --port.
        server_env = dict(env, PREFECT_UI_API_URL=self.prefect_api)
        if self.scheduler_loop_seconds is not None:
            server_env["PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS"] = str(
                self.scheduler_loop_seconds)
        where = f"SQLite in {self.root / 'prefect'}"
        if self.prefect_pg:
            server_env["PREFECT_API_DATABASE_CONNECTION_URL"] = self._create_pg_database()
            where = f"PostgreSQL database {self.prefect_pg_db}"
        self.say(f"- prefect server start ({where}) on 127.0.0.1:{self.prefect_port}")
        server = self._spawn("prefect-server", [
            str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
            "--port", str(self.prefect_port)], server_env, logs / "prefect-server.log")
        wait_http(f"{self.prefect_api}/health", server, timeout=120)
        self.timings["server"] = time.monotonic() - started

        client_env = dict(env, PREFECT_API_URL=self.prefect_api)
        t = time.monotonic()
        self.say(f"- prefect work-pool create {POOL} --type process")
        run([str(BIN / "prefect"), "work-pool", "create", POOL, "--type", "process"],
            client_env, logs / "cli.log")
        self.say("- prefect --no-prompt deploy --all   (prefect.yaml)")
        run([str(BIN / "prefect"), "--no-prompt", "deploy", "--all"], client_env,
            logs / "cli.log")
        self.timings["deploy"] = time.monotonic() - t

        from dispatch.demo.world import StandinWorld
        from dispatch.store.engine import make_engine
        from dispatch.store.reference import upsert_reference_data

        self.say("- stand-in vendors on 127.0.0.1 (SMTP, SFTP, B2B) and sample reference data")
        self.world = StandinWorld(self.root / "vendors")
        db_url = f"sqlite:///{self.root / 'dispatch.db'}"
        templates = ROOT / "templates"
        engine = make_engine(db_url)
        try:
            upsert_reference_data(engine, self.world.reference_data(), source="sample (stand-ins)",
                                  templates_dir=templates)
        finally:
            engine.dispose()

        dispatch_env = {"DISPATCH_DATABASE_URL": db_url, "DISPATCH_TEMPLATES_DIR": str(templates),
                        "DISPATCH_RETRY_DELAYS": self.retry_delays, **self.world.env}
        for key, value in self.world.settings_overrides().items():
            dispatch_env[f"DISPATCH_{key.upper()}"] = str(value)
        self.dispatch_env = dispatch_env

        limit = ["--limit", str(self.worker_limit or 0)]
        if self.plain_worker:  # Prefect's own command: a new Python per flow run
            cmd = [str(BIN / "prefect"), "worker", "start", "--pool", POOL,
                   *(limit if self.worker_limit else [])]
        else:
            cmd = [str(BIN / "dispatch"), "worker", "--pool", POOL, *limit]
        self.say(f"- {Path(cmd[0]).name} {' '.join(cmd[1:])}  "
                 "(PREFECT_WORKER_QUERY_SECONDS=1)")
        self._spawn("prefect-worker", cmd,
                    dict(client_env, PREFECT_WORKER_QUERY_SECONDS="1", **dispatch_env),
                    logs / "worker.log")
        self.say(f"- dispatch serve --no-dispatch on {self.api}")
        serve = self._spawn("dispatch-serve", [
            str(BIN / "dispatch"), "serve", "--no-dispatch", "--host", "127.0.0.1",
            "--port", str(self.api_port)],
            dict(client_env, DISPATCH_API_KEYS=API_KEY, **dispatch_env), logs / "serve.log")
        wait_http(f"{self.api}/health", serve, timeout=60)
        self.timings["up"] = time.monotonic() - started
        self.say(f"  up in {self.timings['up']:.1f} s (server {self.timings['server']:.1f} s, "
                 f"work pool + deploy {self.timings['deploy']:.1f} s)")

    def _pg_admin(self) -> Any:
        from sqlalchemy import create_engine
        from sqlalchemy.engine import make_url

        url = make_url(str(self.prefect_pg)).set(drivername="postgresql+psycopg")
        return url, create_engine(url, isolation_level="AUTOCOMMIT")

    def _create_pg_database(self) -> str:
        from sqlalchemy import text

        url, admin = self._pg_admin()
        self.prefect_pg_db = f"prefect_server_mode_{os.getpid()}_{int(time.time())}"
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{self.prefect_pg_db}"'))
        finally:
            admin.dispose()
        return url.set(drivername="postgresql+asyncpg", database=self.prefect_pg_db
                       ).render_as_string(hide_password=False)

    def _drop_pg_database(self) -> None:
        from sqlalchemy import text

        _url, admin = self._pg_admin()
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{self.prefect_pg_db}" '
                                  "WITH (FORCE)"))
        finally:
            admin.dispose()
        self.prefect_pg_db = None

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str], log: Path) -> Proc:
        proc = Proc(name, cmd, env, log)
        self.procs.append(proc)
        return proc

    def proc(self, name: str) -> Proc:
        return next(p for p in self.procs if p.name == name)

    # -- tear down ------------------------------------------------------------------
    def stop(self) -> set[int]:
        """Stop everything, the API first and the Prefect server last; returns the pids
        still alive afterwards (none, or it is a bug)."""
        for proc in reversed(self.procs):
            self.leftovers |= proc.stop()
        self.procs.clear()
        if self.world is not None:
            self.world.stop()
            self.world = None
        if self.prefect_pg_db:
            self._drop_pg_database()
        return self.leftovers

    def __enter__(self) -> ServerMode:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- use ------------------------------------------------------------------------
    def client(self) -> Any:
        from dispatch.demo.run import Client

        return Client(self.api, API_KEY)

    def prefect_client(self) -> Any:
        from prefect.client.orchestration import PrefectClient

        return PrefectClient(api=self.prefect_api)

    def create_order(self, body: dict[str, Any] | None = None) -> tuple[str, dt.datetime]:
        """POST Create (Status Active) and wait for the request; returns the order id and
        the time of the POST."""
        posted = dt.datetime.now(dt.UTC)
        result = self.client().post("Create", body or ALL_CHANNELS)
        return result["PurchaseOrder"]["Id"], posted

    def wait_delivered(self, order_id: str, timeout: float = 180) -> list[dict[str, Any]]:
        """Until every delivery of the order is Delivered. The timeout is generous: a Prefect
        3.8.8 server on SQLite can hold a run up to 60 s on "database is locked" (its
        busy timeout) when the machine is loaded (PrefectHQ/prefect#23051)."""
        client = self.client()
        deadline = time.monotonic() + timeout
        checked = time.monotonic()
        while True:
            rows = client.order(order_id)["Deliveries"]
            if rows and all(r["Status"] == "Delivered" for r in rows):
                return rows
            crashed = []
            if time.monotonic() - checked > 2:  # a run that crashed will not deliver
                checked = time.monotonic()
                crashed = [r.name for r in asyncio.run(self.crashed_runs())]
            if crashed or time.monotonic() > deadline or any(
                    r["Status"] == "Failed" for r in rows):
                raise RuntimeError(f"{order_id} not delivered"
                                   + (f" (crashed flow runs: {crashed})" if crashed else "")
                                   + ": " + "; ".join(f"{r['Channel']} {r['Status']} "
                                                      f"{r['Error']}" for r in rows)
                                   + self.diagnostics())
            time.sleep(0.05)

    def diagnostics(self) -> str:
        return "".join(f"\n--- {p.name} (last lines)\n{p.tail(15)}" for p in self.procs)

    def latencies(self, n: int, body: dict[str, Any] | None = None) -> list[float]:
        """n orders, one at a time: seconds from the Create POST to the last DeliveredAt.
        ``self.breakdown`` gets, per order, where the time went."""
        result = []
        for _ in range(n):
            order_id, posted = self.create_order(body)
            rows = self.wait_delivered(order_id)
            last = max(parse_ts(r["DeliveredAt"]) for r in rows)
            result.append((last - posted).total_seconds())
            self.breakdown.append(self.order_timeline(order_id, posted, last))
        return result

    def burst(self, n: int) -> tuple[float, int]:
        """n orders created back to back; seconds until all are delivered, and the most
        flow-run processes seen at once under the worker."""
        worker = self.proc("prefect-worker")
        started = time.monotonic()
        ids = [self.create_order()[0] for _ in range(n)]
        peak, pending = 0, list(ids)
        client = self.client()
        deadline = time.monotonic() + 600
        while pending and time.monotonic() < deadline:
            peak = max(peak, sum(1 for pid in descendants(worker.pid)
                                 if "prefect.engine" in _cmdline(pid)
                                 or "_workspace_supervisor" in _cmdline(pid)))
            pending = [o for o in pending
                       if not all(r["Status"] == "Delivered"
                                  for r in client.order(o)["Deliveries"])]
            time.sleep(0.2)
        if pending:
            raise RuntimeError(f"burst: {len(pending)} of {n} orders not delivered")
        return time.monotonic() - started, peak

    def order_timeline(self, order_id: str, posted: dt.datetime,
                       last: dt.datetime) -> dict[str, float]:
        """Seconds: POST -> flow run created (event + automation), -> Running (worker poll,
        process start, imports), -> last delivery."""
        run = self.wait_flow_run(
            "dispatch-order/on-event",
            lambda r: r.parameters.get("order_id") == f"purchase-order.{order_id}")
        created, started = run.created, run.start_time or last
        return {"to_run_created": (created - posted).total_seconds(),
                "to_running": (started - created).total_seconds(),
                "to_last_delivery": (last - started).total_seconds()}

    def breakdown_summary(self) -> str:
        if not self.breakdown:
            return ""
        keys = self.breakdown[0].keys()
        return ", ".join(f"{k} p50 {statistics.median(b[k] for b in self.breakdown):.2f} s"
                         for k in keys)

    async def crashed_runs(self) -> list[Any]:
        from prefect.client.schemas.filters import (
            FlowRunFilter,
            FlowRunFilterState,
            FlowRunFilterStateType,
        )
        from prefect.client.schemas.objects import StateType

        async with self.prefect_client() as client:
            return await client.read_flow_runs(flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(
                    any_=[StateType.CRASHED]))))

    async def flow_runs(self, deployment: str, *, started: bool = False) -> list[Any]:
        """Runs of ``deployment``; with ``started``, not those still scheduled/waiting."""
        from prefect.client.schemas.filters import (
            DeploymentFilter,
            DeploymentFilterId,
            FlowRunFilter,
            FlowRunFilterState,
            FlowRunFilterStateType,
        )
        from prefect.client.schemas.objects import StateType

        run_filter = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(
            not_any_=[StateType.SCHEDULED]))) if started else None
        async with self.prefect_client() as client:
            dep = await client.read_deployment_by_name(deployment)
            return await client.read_flow_runs(
                flow_run_filter=run_filter,
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[dep.id])))

    def wait_flow_run(self, deployment: str, predicate: Any, timeout: float = 180) -> Any:
        """The first run of ``deployment`` matching ``predicate`` once it is final."""
        deadline = time.monotonic() + timeout
        while True:
            runs = [r for r in asyncio.run(self.flow_runs(deployment, started=True))
                    if predicate(r)]
            final = [r for r in runs if r.state is not None and r.state.is_final()]
            if final:
                return final[0]
            if time.monotonic() > deadline:
                raise RuntimeError(f"no finished {deployment} run: "
                                   f"{[(r.name, r.state_name) for r in runs]}"
                                   + self.diagnostics())
            time.sleep(0.3)


    async def _set_schedule(self, deployment: str, active: bool,
                            interval: float | None) -> list[Any]:
        from prefect.client.schemas.schedules import IntervalSchedule

        async with self.prefect_client() as client:
            dep = await client.read_deployment_by_name(deployment)
            for sched in dep.schedules:
                await client.update_deployment_schedule(
                    dep.id, sched.id, active=active,
                    schedule=None if interval is None else IntervalSchedule(
                        interval=dt.timedelta(seconds=interval)))
            return list((await client.read_deployment_by_name(deployment)).schedules)

    def set_schedule(self, deployment: str, *, active: bool,
                     interval: float | None = None) -> list[Any]:
        """Pause/resume a deployment's schedules (and change their interval)."""
        return asyncio.run(self._set_schedule(deployment, active, interval))

    def schedules(self, deployment: str) -> list[Any]:
        async def read() -> list[Any]:
            async with self.prefect_client() as client:
                return list((await client.read_deployment_by_name(deployment)).schedules)

        return asyncio.run(read())

    async def _set_triggers(self, deployment: str, enabled: bool) -> list[Any]:
        async with self.prefect_client() as client:
            dep = await client.read_deployment_by_name(deployment)
            found = [a for a in await client.read_automations()
                     if any(getattr(action, "deployment_id", None) == dep.id
                            for action in a.actions)]
            for automation in found:
                if enabled:
                    await client.resume_automation(automation.id)
                else:
                    await client.pause_automation(automation.id)
            return found

    def set_triggers(self, deployment: str, *, enabled: bool) -> list[Any]:
        """Enable/disable the automations (event triggers) that run ``deployment``."""
        return asyncio.run(self._set_triggers(deployment, enabled))

    async def artifacts(self, flow_run_id: Any) -> list[Any]:
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

        async with self.prefect_client() as client:
            return await client.read_artifacts(artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def latency_summary(values: list[float]) -> str:
    return (f"n={len(values)} p50={statistics.median(values):.2f} s "
            f"p99={percentile(values, 99):.2f} s min={min(values):.2f} s "
            f"max={max(values):.2f} s")


@contextlib.contextmanager
def workdir(root: str | None) -> Iterator[Path]:
    if root:
        yield Path(root).resolve()
        return
    path = Path(tempfile.mkdtemp(prefix="dispatch-server-mode-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=20,
                        help="orders created one at a time for the latency (default 20)")
    parser.add_argument("--root", help="folder for PREFECT_HOME, database, logs (kept); "
                        "default: a temporary folder, removed")
    parser.add_argument("--burst", type=int, default=0,
                        help="then create this many orders at once and time their delivery")
    parser.add_argument("--worker-limit", type=int, default=4,
                        help="prefect worker start --limit (flow-run processes at once; "
                        "0: unlimited)")
    parser.add_argument("--prefect-pg", metavar="ADMIN_URL",
                        help="run the Prefect server on a new PostgreSQL database created "
                        "(and dropped) through this URL, e.g. "
                        "postgresql://postgres@127.0.0.1:5432/postgres; default SQLite")
    parser.add_argument("--plain-worker", action="store_true",
                        help="`prefect worker start` (a new Python per flow run) instead of "
                        "`dispatch worker` (flow runs forked from a warm process)")
    parser.add_argument("--keep", action="store_true",
                        help="keep everything running until Ctrl-C")
    args = parser.parse_args(argv)
    with workdir(args.root) as root, \
            ServerMode(root, worker_limit=args.worker_limit or None,
                       prefect_pg=args.prefect_pg, plain_worker=args.plain_worker) as sm:
        order_id, _posted = sm.create_order()
        sm.wait_delivered(order_id)
        run_ = sm.wait_flow_run("dispatch-order/on-event",
                                lambda r: r.parameters.get("order_id", "").endswith(order_id))
        print(f"- {order_id} delivered by dispatch-order/on-event run {run_.name!r} "
              f"({run_.state_name})", flush=True)
        values = sm.latencies(args.orders)
        print(f"- latency Create POST -> last delivery, server mode: {latency_summary(values)}"
              f"\n  ({sm.breakdown_summary()}; load average {os.getloadavg()[0]:.1f})",
              flush=True)
        if args.burst:
            took, peak = sm.burst(args.burst)
            print(f"- burst of {args.burst} orders: all delivered in {took:.1f} s; at most "
                  f"{peak} flow-run processes at once", flush=True)
        if args.keep:
            print(f"\nPrefect UI http://127.0.0.1:{sm.prefect_port}, API {sm.api} "
                  f"(key {API_KEY}); Ctrl-C to stop.", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    time.sleep(1)
    left = sm.leftovers
    print("- stopped" + (f"; LEFT RUNNING: {sorted(left)}" if left else ", nothing left running"))
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
