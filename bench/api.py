"""ERP API benchmark (issue 2, item 8): not a test, a measurement.

    .venv/bin/python bench/api.py [--db sqlite|postgres|both] [--requests N] [--status New]
    .venv/bin/python bench/api.py --db sqlite --status Active --concurrency 16 \
        --server ab --rounds 3        # issue 13: the product and bench/api_min.py, A B A B

For each database: a fresh database, `dispatch load templates/sample-refdata.yaml`,
`dispatch serve` on 127.0.0.1 as a subprocess, then

1. blast:   N Create requests (10 lines each) over C keep-alive connections, closed loop:
            accepted/s (first POST sent -> last 200 read) and executed/s (first POST sent ->
            the last request seen Completed in erp_request);
2. results: GetRequestResult for those N completed requests over C connections: answers/s;
3. latency: Create at a fixed rate (open loop, default 50/s), POST sent -> Completed:
            a) completion seen by polling erp_request every millisecond from this process
               (no extra load on the API process);
            b) completion seen through the API: GetRequestResult right after the 200 and
               then every millisecond until Completed (adds GET load, as a real client).

`--server min` runs bench/api_min.py (the same Create contract, minimally: the floor) instead
of the product, `--server ab` alternates product and minimal implementation round by round
(same client, same machine) and prints medians, ranges and the product/minimal ratios.
Each blast also reports the server's CPU per Create (serve process, all threads, from the
first POST until the last request executed, divided by the requests).

The load client is asyncio streams with TCP_NODELAY (bench/api_client.py); its CPU use is
reported per phase next to the server's and the whole machine's, in cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from api_client import Connection, Pool  # noqa: E402
from api_server import (  # noqa: E402
    API_KEY,
    ROOT,
    CpuMeter,
    Database,
    MinServer,
    Server,
    Watcher,
    machine_busy_seconds,
    make_workdir,
    remove_workdir,
)

CREATE = "/ERP/PurchaseOrder/Create"
RESULT = "/ERP/PurchaseOrder/GetRequestResult?requestGuid="
ITEMS = ("DRILL-5", "DRILL-8", "GLOVE-L")  # ACME's items in the sample reference data
HEADERS = {"X-Api-Key": API_KEY}


def create_body(index: int, status: str, lines: int, send: str = "email") -> bytes:
    """A valid Create for vendor ACME, ``lines`` item lines; ``send`` "email" chooses email
    XML + PDF, "none" no SendOptions (no channel: an Active order gets its Purchase
    transactions and no dispatch)."""
    body: dict[str, Any] = {
        "VendorId": "ACME", "StockName": "Main", "DeviceId": "DEV-1", "Status": status,
        "Reference": f"bench {index}", "Notes": "API benchmark"}
    if send == "email":
        body["SendOptions"] = {"Channel": {"IsB2B": False, "IsFtp": False, "IsEmail": True},
                               "Email": {"IsXml": True, "IsPdf": True, "IsExcel": False,
                                         "PdfTemplate": "standard-pdf"}}
    body["PurchaseOrderItems"] = [
        {"ItemId": ITEMS[n % len(ITEMS)], "TotalQuantity": 1 + (index + n) % 20,
         "LineReference": f"L{n + 1}", "Note": f"line {n + 1}"}
        for n in range(lines)]
    return json.dumps(body, separators=(",", ":")).encode()


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def ms(values: list[float]) -> dict[str, float]:
    return {"p50_ms": pct(values, 50) * 1e3, "p99_ms": pct(values, 99) * 1e3,
            "max_ms": max(values) * 1e3 if values else float("nan")}


async def closed_loop(conns: list[Connection], raws: list[bytes],
                      check: Any) -> tuple[list[Any], list[float], float, float]:
    """Send every request over ``conns`` (one in flight each); returns answers in order,
    round-trip times, first send and last answer (perf_counter)."""
    answers: list[Any] = [None] * len(raws)
    rtts: list[float] = [0.0] * len(raws)
    cursor = iter(range(len(raws)))
    first = time.perf_counter()
    last = first

    async def worker(conn: Connection) -> None:
        nonlocal last
        for i in cursor:
            t0 = time.perf_counter()
            status, body = await conn.send(raws[i])
            t1 = time.perf_counter()
            answers[i] = check(status, body)
            rtts[i] = t1 - t0
            last = max(last, t1)

    await asyncio.gather(*(worker(c) for c in conns))
    return answers, rtts, first, last


def check_accepted(status: int, body: bytes) -> str:
    if status != 200:
        raise RuntimeError(f"Create answered {status}: {body[:300]!r}")
    return str(json.loads(body)["RequestGuid"])


def check_completed(status: int, body: bytes) -> bool:
    if status != 200:
        raise RuntimeError(f"GetRequestResult answered {status}: {body[:300]!r}")
    if b'"Status":"Completed"' not in body:
        raise RuntimeError(f"request not Completed: {body[:300]!r}")
    return True


async def watch_until_done(watcher: Watcher, accepted: asyncio.Event,
                           interval: float) -> float:
    """perf_counter when no request is left Created after every POST was answered.

    Polling starts only once every POST was answered (the last request cannot complete
    before it was accepted), so it does not compete with the accepts it measures."""
    await accepted.wait()
    while watcher.pending():
        await asyncio.sleep(interval)
    return time.perf_counter()


async def phase_blast(server: Server, watcher: Watcher, args: argparse.Namespace,
                      start_index: int) -> tuple[dict[str, Any], list[str]]:
    raws_conns = [await Connection("127.0.0.1", server.port, HEADERS).open()
                  for _ in range(args.concurrency)]
    raws = [raws_conns[0].request_bytes("POST", CREATE, create_body(start_index + i,
                                                                    args.status, args.lines,
                                                                    args.send))
            for i in range(args.requests)]
    accepted = asyncio.Event()
    meter = CpuMeter(server)
    done_task = asyncio.create_task(watch_until_done(watcher, accepted, 0.002))
    guids, rtts, first, last = await closed_loop(raws_conns, raws, check_accepted)
    accept_cpu = meter.stop()
    accepted.set()
    done = await done_task
    total_cpu = meter.stop()
    for conn in raws_conns:
        conn.close()
    return {
        "requests": args.requests, "connections": args.concurrency,
        "server_cpu_ms_per_create": 1e3 * total_cpu["server_cores"] * (done - first)
        / args.requests,
        "accepted_per_s": args.requests / (last - first),
        "executed_per_s": args.requests / (done - first),
        "accept_seconds": last - first, "execute_seconds": done - first,
        "post_rtt": ms(rtts), "cpu_accepting": accept_cpu, "cpu_until_executed": total_cpu,
    }, guids


async def phase_results(server: Server, guids: list[str], args: argparse.Namespace,
                        ) -> dict[str, Any]:
    conns = [await Connection("127.0.0.1", server.port, HEADERS).open()
             for _ in range(args.concurrency)]
    raws = [conns[0].request_bytes("GET", RESULT + g) for g in guids]
    meter = CpuMeter(server)
    _, rtts, first, last = await closed_loop(conns, raws, check_completed)
    cpu = meter.stop()
    for conn in conns:
        conn.close()
    return {"requests": len(raws), "connections": len(conns),
            "answers_per_s": len(raws) / (last - first), "rtt": ms(rtts), "cpu": cpu}


async def phase_latency(server: Server, watcher: Watcher, args: argparse.Namespace,
                        start_index: int, *, via_api: bool) -> dict[str, Any]:
    """Open loop at ``args.rate``: send on a schedule whatever the answers do."""
    pool = Pool("127.0.0.1", server.port, HEADERS)
    probe = await pool.get()
    count = args.latency_requests
    raws = [probe.request_bytes("POST", CREATE, create_body(start_index + i, args.status,
                                                            args.lines, args.send))
            for i in range(count)]
    pool.put(probe)
    sent: dict[str, float] = {}
    post_rtt: list[float] = []
    lag: list[float] = []
    api_done: dict[str, float] = {}
    polls = 0
    watcher.skip_to_end()
    watcher.seen.clear()
    stop_watch = asyncio.Event()

    async def watch() -> None:
        while not stop_watch.is_set():
            watcher.poll()
            await asyncio.sleep(args.poll_interval)

    async def one(i: int, scheduled: float) -> None:
        nonlocal polls
        conn = await pool.get()
        t0 = time.perf_counter()
        lag.append(t0 - scheduled)
        guid = check_accepted(*await conn.send(raws[i]))
        t1 = time.perf_counter()
        sent[guid] = t0
        post_rtt.append(t1 - t0)
        if via_api:
            get = conn.request_bytes("GET", RESULT + guid)
            while True:
                polls += 1
                status, body = await conn.send(get)
                if status != 200:
                    raise RuntimeError(f"GetRequestResult answered {status}: {body[:300]!r}")
                if b'"Status":"Completed"' in body:
                    api_done[guid] = time.perf_counter()
                    break
                if b'"Status":"Failed"' in body:
                    raise RuntimeError(f"request failed: {body[:300]!r}")
                await asyncio.sleep(args.poll_interval)
        pool.put(conn)

    watch_task = None if via_api else asyncio.create_task(watch())
    meter = CpuMeter(server)
    start = time.perf_counter() + 0.01
    tasks = []
    for i in range(count):
        scheduled = start + i / args.rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, scheduled)))
    await asyncio.gather(*tasks)
    if watch_task is not None:
        deadline = time.perf_counter() + 30
        while len([g for g in sent if g in watcher.seen]) < len(sent):
            if time.perf_counter() > deadline:
                raise RuntimeError("requests not seen Completed within 30 s")
            await asyncio.sleep(args.poll_interval)
        stop_watch.set()
        await watch_task
    cpu = meter.stop()
    pool.close()
    done = api_done if via_api else watcher.seen
    latencies = [done[g] - t0 for g, t0 in sent.items()]
    result = {"requests": count, "rate_per_s": args.rate, "post_to_completed": ms(latencies),
              "post_rtt": ms(post_rtt), "send_lag": ms(lag), "connections": pool.opened,
              "cpu": cpu, "completion_seen": "GetRequestResult" if via_api else "erp_request"}
    if via_api:
        result["gets_per_request"] = polls / count
    return result


async def run_phases(server: Server, db: Database, args: argparse.Namespace) -> dict[str, Any]:
    watcher = Watcher(db)
    try:
        warm = argparse.Namespace(**{**vars(args), "requests": args.warmup})
        await phase_blast(server, watcher, warm, 0)  # JIT-free Python still warms caches
        out: dict[str, Any] = {}
        out["blast"], guids = await phase_blast(server, watcher, args, args.warmup)
        full = args.server_kind == "product" and not args.quick
        if full:
            out["results"] = await phase_results(server, guids, args)
        base = args.warmup + args.requests
        out["latency_db"] = await phase_latency(server, watcher, args, base, via_api=False)
        if full:
            out["latency_api"] = await phase_latency(server, watcher, args,
                                                     base + args.latency_requests, via_api=True)
    finally:
        watcher.close()
    return out


def bench_database(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    workdir = make_workdir(None)
    db = Database(kind, workdir)
    db.create()
    server: Server = (MinServer(db, workdir, no_dispatch=True) if args.server_kind == "min"
                      else Server(db, workdir, no_dispatch=args.no_dispatch))
    try:
        server.start()
        assert server.proc is not None
        print(f"# serving: pid {server.proc.pid} (for py-spy)", flush=True)
        return asyncio.run(run_phases(server, db, args))
    except Exception:
        if server.log.exists():
            print(server.log.read_text()[-3000:], file=sys.stderr)
        raise
    finally:
        server.stop()
        db.drop()
        remove_workdir(workdir)


def report(kind: str, r: dict[str, Any]) -> str:
    b, ld = r["blast"], r["latency_db"]

    def cpu(c: dict[str, float]) -> str:
        pg = f"postgres {c['postgres_cores']:.2f}, " if "postgres_cores" in c else ""
        other = c["machine_cores"] - c["client_cores"] - c["server_cores"] \
            - c.get("postgres_cores", 0.0)
        return (f"client {c['client_cores']:.2f}, server {c['server_cores']:.2f}, {pg}"
                f"rest of machine {other:.2f} cores")

    lines = [
        f"### {kind}",
        f"- Create accepted: {b['accepted_per_s']:.0f}/s ({b['requests']} requests, "
        f"{b['connections']} connections; POST p50 {b['post_rtt']['p50_ms']:.1f} ms, "
        f"p99 {b['post_rtt']['p99_ms']:.1f} ms; {cpu(b['cpu_accepting'])})",
        f"- Create executed: {b['executed_per_s']:.0f}/s (first POST -> last Completed "
        f"{b['execute_seconds']:.2f} s; {cpu(b['cpu_until_executed'])}; server CPU "
        f"{b['server_cpu_ms_per_create']:.2f} ms per Create)",
        f"- POST -> Completed at {ld['rate_per_s']:.0f}/s, completion read from erp_request: "
        f"p50 {ld['post_to_completed']['p50_ms']:.1f} ms, "
        f"p99 {ld['post_to_completed']['p99_ms']:.1f} ms, "
        f"max {ld['post_to_completed']['max_ms']:.1f} ms ({ld['requests']} requests; "
        f"POST p99 {ld['post_rtt']['p99_ms']:.1f} ms; send lag p99 "
        f"{ld['send_lag']['p99_ms']:.1f} ms; {cpu(ld['cpu'])})",
    ]
    if "results" not in r:
        return "\n".join(lines)
    g, la = r["results"], r["latency_api"]
    return "\n".join(lines + [
        f"- GetRequestResult: {g['answers_per_s']:.0f}/s (Completed results, "
        f"{g['connections']} connections; p50 {g['rtt']['p50_ms']:.1f} ms, "
        f"p99 {g['rtt']['p99_ms']:.1f} ms; {cpu(g['cpu'])})",
        f"- POST -> Completed at {la['rate_per_s']:.0f}/s, seen through GetRequestResult "
        f"polled every {1e3 * float(r.get('poll_interval', 0.001)):.0f} ms: "
        f"p50 {la['post_to_completed']['p50_ms']:.1f} ms, "
        f"p99 {la['post_to_completed']['p99_ms']:.1f} ms, "
        f"max {la['post_to_completed']['max_ms']:.1f} ms ({la['gets_per_request']:.1f} GETs "
        f"per request; {cpu(la['cpu'])})",
    ])


SUMMARY = (  # (label, how to read it from one run's numbers, format)
    ("accepted/s", lambda r: r["blast"]["accepted_per_s"], "{:.0f}"),
    ("executed/s", lambda r: r["blast"]["executed_per_s"], "{:.0f}"),
    ("server CPU ms/Create", lambda r: r["blast"]["server_cpu_ms_per_create"], "{:.2f}"),
    ("POST p50 ms", lambda r: r["blast"]["post_rtt"]["p50_ms"], "{:.1f}"),
    ("POST p99 ms", lambda r: r["blast"]["post_rtt"]["p99_ms"], "{:.1f}"),
    ("POST->Completed p99 ms @rate", lambda r: r["latency_db"]["post_to_completed"]["p99_ms"],
     "{:.1f}"),
    ("rest of machine, cores", lambda r: r["blast"]["cpu_until_executed"]["machine_cores"]
     - r["blast"]["cpu_until_executed"]["server_cores"]
     - r["blast"]["cpu_until_executed"]["client_cores"]
     - r["blast"]["cpu_until_executed"].get("postgres_cores", 0.0), "{:.2f}"),
)


def summary(raw: dict[str, Any]) -> str:
    """Medians and ranges per database and server over the rounds, and, per round, the
    product/minimal ratio (the pairs share the machine's load, so compare within them)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for label, r in raw.items():
        kind, server_kind, _, round_no = label.split()
        groups.setdefault(f"{kind} {server_kind}", []).append(r)
    out = ["### summary (median [min-max] over rounds)",
           "| | " + " | ".join(name for name, _, _ in SUMMARY) + " |",
           "|---" * (len(SUMMARY) + 1) + "|"]
    for group, runs in groups.items():
        cells = []
        for _, get, fmt in SUMMARY:
            values = sorted(get(r) for r in runs)
            cells.append(f"{fmt.format(median(values))} [{fmt.format(values[0])}-"
                         f"{fmt.format(values[-1])}]")
        out.append(f"| {group} | " + " | ".join(cells) + " |")
    pairs = [(raw[label], raw[label.replace(" product ", " min ")]) for label in raw
             if " product " in label and label.replace(" product ", " min ") in raw]
    if pairs:
        out.append("")
        out.append("product / minimal, per round (median [min-max]): " + "; ".join(
            f"{name} {median(sorted(get(a) / get(b) for a, b in pairs)):.2f} "
            f"[{min(get(a) / get(b) for a, b in pairs):.2f}-"
            f"{max(get(a) / get(b) for a, b in pairs):.2f}]"
            for name, get, _ in SUMMARY[:6]))
    return "\n".join(out)


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "dispatch"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return out + (" + uncommitted dispatch/ changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def background_cores(seconds: float = 1.0) -> float:
    """Cores busy on this machine before we start (the machine is shared: say so)."""
    before = machine_busy_seconds()
    time.sleep(seconds)
    return (machine_busy_seconds() - before) / seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--requests", type=int, default=3000,
                        help="Create requests in the blast (default 3000)")
    parser.add_argument("--concurrency", type=int, default=4,
                        help="keep-alive connections for the blasts (default 4)")
    parser.add_argument("--lines", type=int, default=10, help="lines per order (default 10)")
    parser.add_argument("--status", choices=["New", "Active"], default="New",
                        help="Status of the created orders (Active adds 10 Purchase "
                        "transactions per order; default New)")
    parser.add_argument("--send", choices=["email", "none"], default=None,
                        help="SendOptions of the Creates: email (XML + PDF: an Active order "
                        "also gets an outbox row) or none (no channel chosen); default none "
                        "with --status Active, else email")
    parser.add_argument("--server", choices=["product", "min", "ab"], default="product",
                        help="what serves: dispatch serve, bench/api_min.py (SQLite only), "
                        "or both alternating round by round (default product)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="rounds (with --server ab: each runs product then minimal)")
    parser.add_argument("--quick", action="store_true",
                        help="only the blast and the erp_request latency phase")
    parser.add_argument("--no-dispatch", action="store_true",
                        help="serve --no-dispatch (implied by --status Active, so the "
                        "benchmark does not send emails)")
    parser.add_argument("--rate", type=float, default=50.0,
                        help="requests per second in the latency phases (default 50)")
    parser.add_argument("--latency-requests", type=int, default=1000,
                        help="requests per latency phase (default 1000)")
    parser.add_argument("--poll-interval", type=float, default=0.001,
                        help="seconds between completion polls (default 0.001)")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    args = parser.parse_args(argv)
    if args.status == "Active":
        args.no_dispatch = True
    if args.send is None:
        args.send = "none" if args.status == "Active" else "email"
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    servers = ["product", "min"] if args.server == "ab" else [args.server]
    print(f"# machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}, commit {git_commit()}; Create with "
          f"{args.lines} lines, Status {args.status}, SendOptions {args.send}, "
          f"{args.concurrency} connections, serve "
          f"{'--no-dispatch' if args.no_dispatch else '(embedded dispatch)'}", flush=True)
    raw: dict[str, Any] = {}
    for kind in kinds:
        for round_no in range(1, args.rounds + 1):
            for server_kind in servers:
                if server_kind == "min" and kind != "sqlite":
                    continue
                args.server_kind = server_kind
                label = f"{kind} {server_kind} round {round_no}"
                background = background_cores()
                load = os.getloadavg()
                print(f"# {label}: background load before the run {background:.2f} cores, "
                      f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
                r = bench_database(kind, args)
                r["background_cores"] = background
                r["loadavg"] = load
                r["poll_interval"] = args.poll_interval
                raw[label] = r
                print(report(label, r), flush=True)
    if len(raw) > 1:
        print(summary(raw), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                         "results": raw}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
