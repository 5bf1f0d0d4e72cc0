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
                access_log=args.access_log)
    return 0


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def cmd_load(args: argparse.Namespace) -> int:
    from dispatch.refdata import read_reference_file
    from dispatch.store.engine import make_engine
    from dispatch.store.refdata import upsert_reference_data

    settings = _settings()
    data = read_reference_file(Path(args.file))
    engine = make_engine(settings.database_url)
    counts = upsert_reference_data(engine, data, source=args.file,
                                   templates_dir=settings.templates_dir,
                                   check_template=_template_checker())
    summary = ", ".join(f"{n} {section}" for section, n in counts.items() if n)
    print(f"loaded {args.file}: {summary or 'nothing'}")
    return 0


def _template_checker():  # type: ignore[no-untyped-def]
    try:
        from dispatch.documents import check_template  # type: ignore[attr-defined]
    except ImportError:
        return None
    return check_template


def cmd_demo(args: argparse.Namespace) -> int:
    from dispatch.demo import run_demo

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
