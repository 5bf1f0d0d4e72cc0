"""The ``dispatch`` command. Heavy imports (FastAPI, SQLAlchemy, Prefect) happen inside the
sub-command that needs them, so ``dispatch --help`` answers at once."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dispatch.errors import DispatchError


def _settings():  # type: ignore[no-untyped-def]
    from dispatch.settings import load_settings

    return load_settings()


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from dispatch.api.limits import server_options
    from dispatch.service import build_service

    settings = _settings()
    if not settings.api_keys:
        raise DispatchError(
            "DISPATCH_API_KEYS: no API key configured; set DISPATCH_API_KEYS=key1,key2 "
            "(every endpoint requires one)")
    app = build_service(settings, dispatch=not args.no_dispatch)
    print(f"dispatch: ERP API on http://{args.host}:{args.port} "
          f"(database {_safe_url(settings.database_url)}; "
          f"dispatching {'off: Prefect workers' if args.no_dispatch else 'embedded'})",
          flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level,
                access_log=args.access_log, **server_options(settings))
    return 0


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def cmd_load(args: argparse.Namespace) -> int:
    from dispatch.reference_data import read_reference_file
    from dispatch.store.engine import make_engine
    from dispatch.store.reference import upsert_reference_data

    settings = _settings()
    data = read_reference_file(Path(args.file))
    engine = make_engine(settings.database_url)
    counts = upsert_reference_data(engine, data, source=args.file,
                                   templates_dir=settings.templates_dir,
                                   check_template=_template_checker(),
                                   check_xml_template=_template_checker("check_xml"))
    summary = ", ".join(f"{n} {section}" for section, n in counts.items() if n)
    print(f"loaded {args.file}: {summary or 'nothing'}")
    return 0


def _template_checker(name: str = "check_template"):  # type: ignore[no-untyped-def]
    try:
        from dispatch.documents import checks
    except ImportError:
        return None
    return getattr(checks, name)


def _engine(settings):  # type: ignore[no-untyped-def]
    from dispatch.store.engine import make_engine

    return make_engine(settings.database_url)


def cmd_render(args: argparse.Namespace) -> int:
    from dispatch.dispatching.preview import render_preview

    settings = _settings()
    document = render_preview(_engine(settings), settings, order_id=args.order_id,
                              format=args.format, template_name=args.template, kind=args.kind)
    out = Path(args.output or document.name)
    out.write_bytes(document.content)
    print(f"wrote {out} ({document.size} bytes, sha256 {document.sha256})")
    return 0


def cmd_dispatch_pending(args: argparse.Namespace) -> int:
    from dispatch.models import utcnow
    from dispatch.store import outbox
    from dispatch.store.engine import reading

    settings = _settings()
    engine = _engine(settings)
    # Asked of the database first, importing nothing more: with nothing due the command
    # answers at once, without starting Prefect.
    now = utcnow()
    with reading(engine) as conn:
        due = outbox.next_due(conn, now=now)
    if due is None or due > now:
        later = f"; the next retry is due at {due:%Y-%m-%d %H:%M:%S} UTC" if due else ""
        print(f"dispatch-pending: nothing due{later}")
        return 0
    from dispatch.dispatching.reporting import delivery_row, format_table
    from dispatch.orchestration import oneshot, runtime
    from dispatch.vocabulary import DeliveryStatus

    rt = runtime.Runtime(settings, engine)
    print("dispatch-pending: starting (the first Prefect flow of a process takes a few "
          "seconds when no Prefect server is configured)", flush=True)
    shot = oneshot.run_pending_once(rt, limit=args.limit, concurrency=args.concurrency,
                                    orders_per_task=args.orders_per_task,
                                    dry_run=args.dry_run)
    if shot.counts is None:
        print(f"dispatch-pending: {shot.message}", file=sys.stderr)
        return 1
    if args.dry_run:
        print("dry run: nothing was sent, nothing was written")
    print("dispatch-pending:", ", ".join(f"{n} {s}" for s, n in shot.counts.items()) or
          "nothing due")
    if not args.dry_run:
        with reading(rt.engine) as conn:
            failed = outbox.list_deliveries(conn, status=DeliveryStatus.FAILED, limit=20)
            waiting = outbox.list_deliveries(conn, waiting=True, limit=20)
        if failed:
            print(f"\n{len(failed)} failed delivery(ies) (see `dispatch deliveries "
                  "--status Failed`):")
            print(format_table([delivery_row(r) for r in failed], DELIVERY_COLUMNS))
        if waiting:
            print(f"\n{len(waiting)} delivery(ies) waiting for a retry (see `dispatch "
                  "deliveries --waiting`):")
            print(format_table([delivery_row(r) for r in waiting], WAITING_COLUMNS))
    return 0


DELIVERY_COLUMNS = ("order", "dispatch", "channel", "format", "target", "status", "attempts",
                    "error")
WAITING_COLUMNS = ("order", "dispatch", "channel", "format", "target", "attempts",
                   "next_attempt", "error")


def cmd_deliveries(args: argparse.Namespace) -> int:
    import json

    from dispatch.dispatching.reporting import delivery_row, format_table
    from dispatch.store import outbox
    from dispatch.store.engine import reading
    from dispatch.vocabulary import DeliveryStatus

    settings = _settings()
    status = DeliveryStatus(args.status) if args.status else None
    with reading(_engine(settings)) as conn:
        rows = outbox.list_deliveries(conn, status=status, waiting=args.waiting,
                                      order_id=args.order, limit=args.limit)
    table = [delivery_row(r) for r in rows]
    columns: tuple[str, ...] = WAITING_COLUMNS if args.waiting else DELIVERY_COLUMNS
    if any(r["next_attempt"] for r in table) and "next_attempt" not in columns:
        columns = (*columns[:-1], "next_attempt", columns[-1])
    if args.json:
        print(json.dumps(table, indent=2))
    elif not table:
        what = " waiting for a retry" if args.waiting else \
            (f" with status {args.status}" if args.status else "")
        print(f"no deliveries{what}")
    else:
        print(format_table(table, (*columns, "sha256") if args.wide else columns))
    return 0


def cmd_responses(args: argparse.Namespace) -> int:
    import json

    from dispatch.dispatching.reporting import format_table
    from dispatch.responses.listing import list_rows
    from dispatch.store.engine import reading

    with reading(_engine(_settings())) as conn:
        rows, columns = list_rows(conn, order_id=args.order, vendor_id=args.vendor,
                                  overdue=args.overdue, unmatched=args.unmatched,
                                  limit=args.limit)
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print("no overdue responses" if args.overdue else
              "no unmatched responses" if args.unmatched else "no responses")
    else:
        print(format_table(rows, columns))
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from dispatch.orchestration.worker import run_worker

    extra = args.prefect_args[1:] if args.prefect_args[:1] == ["--"] else args.prefect_args
    return run_worker(pool=args.pool, limit=args.limit or None,
                      fork_server=not args.no_fork_server, extra=extra)


def cmd_resend(args: argparse.Namespace) -> int:
    from dispatch.models import utcnow
    from dispatch.rules.resend import ResendRefused, decide_resend
    from dispatch.store import orders as order_store
    from dispatch.store.engine import transaction
    from dispatch.store.reference import read_snapshot
    from dispatch.vocabulary import Channel, DispatchKind

    flags = {"kind": "--kind", "channel": "--channel"}  # the rule's fields, as typed here
    settings = _settings()
    engine = _engine(settings)
    with transaction(engine) as conn:
        order = order_store.load_order_state(conn, order_id=args.order_id, lock=True)
        if order is None:
            raise DispatchError(f"ORDER_ID: no purchase order '{args.order_id}'")
        try:
            entry = decide_resend(
                order, order_store.dispatches_of(conn, order_id=order.id),
                vendor=read_snapshot(conn).vendors.get(order.vendor_id),
                kind=DispatchKind(args.kind) if args.kind else None,
                channel=Channel(args.channel) if args.channel else None,
                token=order_store.new_token())
        except ResendRefused as exc:
            raise DispatchError(f"{flags[exc.field]}: {exc.message}") from None
        [job_id] = order_store.write_dispatches(conn, order_id=order.id, entries=[entry],
                                                request_guid=None, now=utcnow())
    print(f"resend of {args.order_id} dispatch #{entry.dispatch.replaces_number} created as "
          f"dispatch #{entry.dispatch.number} (job {job_id}); it is sent by the running "
          "service or `dispatch dispatch-pending`")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from dispatch.demo.run import run_demo

    return run_demo(Path(args.output), port=args.port, keep_serving=args.serve)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dispatch",
        description="Purchase-order dispatcher: ERP API, documents, delivery to vendors. "
        "Settings come from DISPATCH_* environment variables (see README).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the ERP API (and, by default, the dispatcher)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--no-dispatch", action="store_true",
                       help="leave dispatching to Prefect workers (server mode)")
    serve.add_argument("--log-level", default="info",
                       choices=["critical", "error", "warning", "info", "debug"])
    serve.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=False,
                       help="log every HTTP request (off by default)")
    serve.set_defaults(func=cmd_serve)

    load = sub.add_parser("load", help="load reference data from a YAML or JSON file (upsert)")
    load.add_argument("file", help="YAML or JSON file (see templates/sample-refdata.yaml)")
    load.set_defaults(func=cmd_load)

    render = sub.add_parser("render", help="preview a document of an order (same code path "
                            "as sending)")
    render.add_argument("order_id", metavar="ORDER_ID")
    render.add_argument("--format", required=True, choices=["XML", "PDF", "Excel"])
    render.add_argument("--template", help="template name (default: the one the order's "
                        "SendOptions name; XML: else the vendor's xml_template, else the "
                        "canonical document; peppol, cxml and order-x are built in)")
    render.add_argument("--kind", choices=["purchase", "change", "cancellation"],
                        default="purchase")
    render.add_argument("-o", "--output", help="output file (default: the document's name)")
    render.set_defaults(func=cmd_render)

    pending = sub.add_parser("dispatch-pending", help="run the dispatch-pending flow once: "
                             "send every due dispatch and due retry, then exit")
    pending.add_argument("--dry-run", action="store_true",
                         help="list and render what would be sent where; no network I/O")
    pending.add_argument("--limit", type=int, default=1000, help="jobs claimed per batch")
    pending.add_argument("--concurrency", type=int, default=8, help="tasks in parallel")
    pending.add_argument("--orders-per-task", type=int, default=10,
                         help="orders per Prefect task run (1: a task per order)")
    pending.set_defaults(func=cmd_dispatch_pending)

    worker = sub.add_parser(
        "worker", help="server mode: a Prefect process worker for dispatch's deployments, "
        "with a warm engine fork server (becomes `prefect worker start`)")
    worker.add_argument("--pool", default="dispatch", help="work pool (default: dispatch)")
    worker.add_argument("--limit", type=int, default=4,
                        help="flow runs at once (default 4; 0: no limit)")
    worker.add_argument("--no-fork-server", action="store_true",
                        help="start a new Python per flow run (slower)")
    worker.add_argument("prefect_args", nargs=argparse.REMAINDER,
                        help="after --: more options for `prefect worker start`")
    worker.set_defaults(func=cmd_worker)

    resend = sub.add_parser("resend", help="make a new dispatch repeating an earlier one")
    resend.add_argument("order_id", metavar="ORDER_ID")
    resend.add_argument("--kind", choices=["purchase", "change", "cancellation"],
                        help="which dispatch to repeat (default: the latest)")
    resend.add_argument("--channel", choices=["B2B", "FTP", "Email"],
                        help="only this channel (default: all the order's channels)")
    resend.set_defaults(func=cmd_resend)

    deliveries = sub.add_parser("deliveries", help="list deliveries and their outcomes")
    deliveries.add_argument("--status", choices=["Pending", "Delivered", "Failed",
                                                 "Unsupported"])
    deliveries.add_argument("--waiting", action="store_true",
                            help="only deliveries waiting for a retry (Pending after a "
                            "failed attempt, with the next attempt's time)")
    deliveries.add_argument("--order", help="only this order")
    deliveries.add_argument("--limit", type=int, default=200)
    deliveries.add_argument("--json", action="store_true", help="JSON instead of a table")
    deliveries.add_argument("--wide", action="store_true", help="also show the SHA-256")
    deliveries.set_defaults(func=cmd_deliveries)

    responses = sub.add_parser("responses", help="vendors' order responses (SPEC 8): "
                               "received, unmatched, overdue")
    responses.add_argument("--order", help="only this order")
    responses.add_argument("--vendor", help="only this vendor")
    responses.add_argument("--overdue", action="store_true",
                           help="orders whose response is overdue (and the reminder sent)")
    responses.add_argument("--unmatched", action="store_true",
                           help="documents that matched no order, line or dispatch (kept, "
                           "never applied)")
    responses.add_argument("--limit", type=int, default=200)
    responses.add_argument("--json", action="store_true", help="JSON instead of a table")
    responses.set_defaults(func=cmd_responses)

    demo = sub.add_parser("demo", help="run the whole thing once on embedded defaults")
    demo.add_argument("--output", default="demo-output",
                      help="folder for the demo database and documents (default: demo-output)")
    demo.add_argument("--port", type=int, default=0, help="API port (default: a free one)")
    demo.add_argument("--serve", action="store_true",
                      help="keep the API running after the demo until Ctrl-C")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except DispatchError as exc:
        print(f"dispatch {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
