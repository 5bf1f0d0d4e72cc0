"""Scale-out benchmark (issue 13, item 4): not a test, a measurement.

    .venv/bin/python bench/scale.py [--orders 600] [--workers 1,2,4] [--rounds 1]
        [--limit 25] [--concurrency 8] [--render-processes 0] [--worker-cpus LIST]
        [--variants 'one-core:render=0,cpus=0;pool:render=2'] [--claims 3000] [--tasks 300]
        [--only workers,claims,tasks]

For each worker count K: a fresh PostgreSQL database with N Active orders (the standard
4-send order of ``bench/dispatch.py``: email PDF+Excel, SFTP XML, B2B x 2), the stand-in
vendors in this process, one ``prefect server start`` shared by the run; then K processes of
``dispatch dispatch-pending --limit L`` (the production path: the CLI, the flow, the one run
loop) started at once. Timed: the first start to the last exit. Reported: orders/s, worker
CPU per order (the K processes' user+sys with their render pools), where the rest of the
machine's CPU went (Prefect server, stand-in vendors, PostgreSQL), each order's completion
time from the start (its last ``delivered_at``; p50/p99), and the exactly-once check: every
delivery Delivered with 1 attempt, and the vendors got exactly one message, file and
submission each. ``--variants`` alternates configurations within each round: ``render``
(DISPATCH_RENDER_PROCESSES) and ``cpus`` (a taskset CPU list for the workers).

Then the two rates a fleet would meet first: PostgreSQL claims/s (``outbox.claim_jobs`` of one
job per transaction, from 1 and from 4 threads, against a table of pending jobs) and the
Prefect server's task runs/s (trivial tasks of one flow, as ``dispatch-pending`` submits
them).
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any


def _bench_dispatch() -> Any:
    """bench/dispatch.py (its Setup, PrefectServer...), loaded under another name: as
    ``dispatch`` it would shadow the package."""
    import importlib.util

    path = Path(__file__).resolve().parent / "dispatch.py"
    spec = importlib.util.spec_from_file_location("bench_dispatch", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_dispatch"] = module
    spec.loader.exec_module(module)
    return module


_bd = _bench_dispatch()
QUIET, ROOT, PrefectServer, Setup = _bd.QUIET, _bd.ROOT, _bd.PrefectServer, _bd.Setup
own_cpu_seconds, processes, busy_ticks = _bd.own_cpu_seconds, _bd.processes, _bd.busy_ticks
code_version, machine, percentile, say = _bd.code_version, _bd.machine, _bd.percentile, _bd.say


def completion_times(url: str, start: dt.datetime) -> list[float]:
    """Each order's last delivered_at, in seconds after ``start``."""
    from sqlalchemy import text

    from dispatch.store.engine import make_engine

    engine = make_engine(url, create_schema=False)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT order_id, max(delivered_at) FROM delivery "
                                 "GROUP BY order_id")).all()
    engine.dispose()
    if os.environ.get("BENCH_VERBOSE"):
        say(f"completion rows: {rows[:3]} start {start}")
    return [(last - start).total_seconds() for _order, last in rows if last is not None]


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores; /proc/stat, not idle/iowait)."""
    return busy_ticks()[0] / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """Where a run's CPU went, as differences over the run: the workers (user+sys of the
    reaped worker processes, plus what their descendants, such as a render pool, were last
    seen to use), the Prefect server, the stand-in vendors (this process), the PostgreSQL
    processes (last seen: a backend exits with its worker) and the whole machine
    (/proc/stat). Descendants and backends are sampled every 0.2 s, so each loses at most
    its last 0.2 s; "rest" is the machine's busy time not in any of these."""

    def __init__(self, server: PrefectServer) -> None:
        self.server = server
        self.workers: set[int] = set()
        self.first: dict[int, float] = {}
        self.last: dict[int, tuple[str, float]] = {}
        self._sample(initial=True)
        self.start = {"machine": machine_busy_seconds(),
                      "workers": sum(resource.getrusage(resource.RUSAGE_CHILDREN)[:2]),
                      "prefect": server.cpu_seconds(), "vendors": own_cpu_seconds()}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sample(self, initial: bool = False) -> None:
        procs = processes()
        for pid, (name, ppid, _group, cpu) in procs.items():
            kind = "postgres" if name == "postgres" else None
            parent, hops = ppid, 0
            while kind is None and parent in procs and hops < 8:
                if parent in self.workers:
                    kind = "pool"
                parent, hops = procs[parent][1], hops + 1
            if kind is None:
                continue
            if initial:
                self.first[pid] = cpu
            self.last[pid] = (kind, cpu)

    def _run(self) -> None:
        while not self._done.wait(0.2):
            self._sample()

    def stop(self) -> dict[str, float]:
        self._sample()
        self._done.set()
        self._thread.join()
        end = {"machine": machine_busy_seconds(),
               "workers": sum(resource.getrusage(resource.RUSAGE_CHILDREN)[:2]),
               "prefect": self.server.cpu_seconds(), "vendors": own_cpu_seconds()}
        spent = {key: end[key] - self.start[key] for key in end}
        for kind in ("pool", "postgres"):
            spent[kind] = sum(cpu - self.first.get(pid, 0.0)
                              for pid, (k, cpu) in self.last.items() if k == kind)
        spent["workers"] += spent.pop("pool")
        spent["rest"] = spent["machine"] - sum(v for k, v in spent.items() if k != "machine")
        return spent


def attempts_histogram(url: str) -> dict[int, int]:
    from sqlalchemy import text

    from dispatch.store.engine import make_engine

    engine = make_engine(url, create_schema=False)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT attempts, count(*) FROM delivery "
                                 "GROUP BY attempts")).all()
    engine.dispose()
    return {int(a): int(n) for a, n in rows}


def parse_variants(text: str) -> list[tuple[str, int, str]]:
    """``name:render=N,cpus=LIST;...`` as (name, render processes, taskset CPU list)."""
    variants = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, _, spec = part.partition(":")
        fields = dict(item.split("=", 1) for item in filter(None, spec.split(",")))
        unknown = set(fields) - {"render", "cpus"}
        if unknown:
            raise SystemExit(f"--variants {part!r}: unknown key(s) {sorted(unknown)}; "
                             "use render=N and cpus=LIST (a taskset CPU list like 0 or 0-1)")
        variants.append((name, int(fields.get("render", "0")), fields.get("cpus", "")))
    return variants


def run_workers(k: int, args: argparse.Namespace, server: PrefectServer,
                render: int, cpus: str) -> dict[str, Any]:
    setup = Setup(args.orders, "postgres")
    try:
        setup.create_orders()
        env = {**os.environ, **QUIET, "PREFECT_API_URL": server.url,
               "DISPATCH_RENDER_PROCESSES": str(render),
               **{f"DISPATCH_{key.upper()}": str(value)
                  for key, value in setup.settings_fields.items()}}
        command = [str(ROOT / ".venv/bin/dispatch"), "dispatch-pending", "--limit",
                   str(args.limit), "--concurrency", str(args.concurrency)]
        if cpus:
            command = ["taskset", "-c", cpus, *command]
        meter = CpuMeter(server)
        start_wall = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        t0 = time.perf_counter()
        procs = [subprocess.Popen(command, env=env, cwd=setup.workdir,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for _ in range(k)]
        meter.workers.update(p.pid for p in procs)
        outputs = [p.communicate() for p in procs]
        errors = [err.decode(errors="replace") for _out, err in outputs]
        if os.environ.get("BENCH_VERBOSE"):
            for out, err in outputs:
                say(out.decode(errors="replace")[-1500:] + err.decode(errors="replace")[-1500:])
        seconds = time.perf_counter() - t0
        spent = meter.stop()
        failed = [(p.returncode, e[-2000:]) for p, e in zip(procs, errors, strict=True)
                  if p.returncode != 0]
        if failed:
            raise SystemExit(f"worker failed: {failed[0]}")
        cpu = spent["workers"]
        retried = [line for err in errors for line in err.splitlines()
                   if "retrying" in line.lower() or "error" in line.lower()]
        times = completion_times(setup.db.url, start_wall)
        verify = setup.verify()
        attempts = attempts_histogram(setup.db.url)
        return {"workers": k, "orders": args.orders, "seconds": round(seconds, 2),
                "orders_per_s": round(args.orders / seconds, 2),
                "cpu_ms_per_order": round(cpu / args.orders * 1000, 1),
                "machine_busy": round(spent["machine"] / (seconds * (os.cpu_count() or 1)), 2),
                "cpu_ms_per_order_by_part": {key: round(value / args.orders * 1000, 1)
                                             for key, value in spent.items()},
                "done_p50_s": round(statistics.median(times), 2),
                "done_p99_s": round(percentile(times, 0.99), 2),
                "attempts": attempts, "exactly_once": verify["ok"] and set(attempts) == {1},
                "verify": verify, "retried": retried[:5]}
    finally:
        setup.close()


def claim_rate(args: argparse.Namespace) -> dict[str, float]:
    """Claims/s of one job per transaction on PostgreSQL, from 1 and 4 threads."""
    from sqlalchemy import text

    from dispatch.store import outbox
    from dispatch.store.engine import make_engine, transaction

    setup = Setup(0, "postgres")
    try:
        engine = make_engine(setup.db.url)
        with engine.begin() as conn:  # pending jobs with nothing earlier blocking them
            conn.execute(text(
                "INSERT INTO dispatch_job (order_id, vendor_id, number, kind, status, "
                "created_at, next_attempt_at) SELECT 'PO' || g, 'ACME', 1, 'purchase', "
                "'Pending', now(), now() - interval '1 minute' FROM generate_series(1, :n) g"),
                {"n": args.claims})
        results = {}
        for threads in (1, 4):
            per = args.claims // (2 * threads)
            lease = dt.timedelta(minutes=10)

            def worker(name: str, per: int = per, lease: dt.timedelta = lease) -> None:
                for _ in range(per):
                    with transaction(engine) as conn:
                        outbox.claim_jobs(conn, worker=name, now=dt.datetime.now(dt.UTC)
                                          .replace(tzinfo=None), lease=lease, limit=1)

            pool = [threading.Thread(target=worker, args=(f"w{threads}-{i}",))
                    for i in range(threads)]
            t0 = time.perf_counter()
            for t in pool:
                t.start()
            for t in pool:
                t.join()
            results[f"claims_per_s_{threads}_threads"] = round(
                per * threads / (time.perf_counter() - t0), 1)
        engine.dispose()
        return results
    finally:
        setup.close()


def task_rate(args: argparse.Namespace, server: PrefectServer) -> dict[str, float]:
    """Task runs/s a flow gets from the Prefect server (trivial tasks, 8 at a time)."""
    code = f"""
import asyncio, time
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

@task(cache_policy=NO_CACHE)
async def noop(i: int) -> int:
    return i

@flow
async def many(n: int) -> float:
    gate = asyncio.Semaphore(8)
    async def one(i):
        async with gate:
            return await noop(i)
    await noop(-1)
    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return n / (time.perf_counter() - t0)

print(asyncio.run(many({args.tasks})))
"""
    env = {**os.environ, **QUIET, "PREFECT_API_URL": server.url}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=600, check=True)
    return {"prefect_task_runs_per_s": round(float(out.stdout.strip().splitlines()[-1]), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=600)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds")
    parser.add_argument("--limit", type=int, default=25, help="jobs claimed per batch")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--render-processes", type=int, default=0)
    parser.add_argument("--worker-cpus", default="",
                        help="taskset CPU list for the workers (e.g. 0: one core)")
    parser.add_argument("--variants", default="",
                        help="alternate configurations per round, e.g. "
                        "'one-core:render=0,cpus=0;pool:render=2' (overrides "
                        "--render-processes and --worker-cpus)")
    parser.add_argument("--claims", type=int, default=3000)
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--only", default="workers,claims,tasks")
    args = parser.parse_args()
    only = set(args.only.split(","))
    say(f"machine: {machine()}")
    say(f"code: {code_version()}")
    say(f"load average before: {os.getloadavg()[0]:.2f}")
    home = Path(tempfile.mkdtemp(prefix="bench-scale-")) / "prefect"
    home.mkdir(parents=True)
    server = PrefectServer(home)
    say(f"prefect server start: answered after {server.start_seconds:.1f} s")
    try:
        if "workers" in only:
            counts = [int(k) for k in args.workers.split(",")]
            variants = (parse_variants(args.variants) if args.variants else
                        [("", args.render_processes, args.worker_cpus)])
            for round_ in range(1, args.rounds + 1):
                for (name, render, cpus), k in itertools.product(variants, counts):
                    r = run_workers(k, args, server, render, cpus)
                    label = f"{name} (render={render}, cpus={cpus or 'all'}) " if name else ""
                    say(f"round {round_}: {label}{k} worker(s), {r['orders']} orders: "
                        f"{r['orders_per_s']} orders/s ({r['seconds']} s), "
                        f"{r['cpu_ms_per_order']} ms worker CPU/order, done p50 "
                        f"{r['done_p50_s']} s p99 {r['done_p99_s']} s, attempts "
                        f"{r['attempts']}, exactly once: {r['exactly_once']}; machine busy "
                        f"{r['machine_busy']:.0%}, CPU ms/order by part "
                        f"{r['cpu_ms_per_order_by_part']}")
                    if not r["exactly_once"]:
                        say(f"  vendors' check: {r['verify']}")
                        for line in r["retried"]:
                            say(f"  worker: {line[:400]}")
        if "claims" in only:
            say(f"PostgreSQL claims (1 job per transaction): {claim_rate(args)}")
        if "tasks" in only:
            say(f"Prefect server: {task_rate(args, server)}")
    finally:
        server.stop()
    say(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
