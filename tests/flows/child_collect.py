"""A collecting process for tests/flows/test_collect_inbox_crash.py (test code, not product).

    python -m tests.flows.child_collect '<json config>'

Runs the production ``collect-responses`` flow against the parent's database, stand-in
vendors and Prefect API (``PREFECT_API_URL`` in its environment), with one change: right
after ``record_response`` returned for an inbox file (the document is committed), it
reports ``{"event": "recorded", ...}`` on stdout and SIGKILLs itself, before the file is
moved. The deterministic crash point lives here only; the product has no hook for it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from typing import Any

from dispatch.orchestration import runtime
from dispatch.responses import collect
from dispatch.settings import DispatchSettings
from dispatch.store.engine import make_engine


def emit(**event: Any) -> None:
    sys.stdout.write(json.dumps(event, default=str) + "\n")
    sys.stdout.flush()


def main(config: dict[str, Any]) -> None:
    settings = DispatchSettings(database_url=config["database_url"],
                                api_keys="child-key-0123456789",  # type: ignore[arg-type]
                                templates_dir=config["templates_dir"])
    engine = make_engine(config["database_url"], create_schema=False)
    runtime.install(runtime.Runtime(settings, engine))
    real = collect.record_response

    def record_then_die(*args: Any, **kwargs: Any) -> Any:
        recorded = real(*args, **kwargs)
        emit(event="recorded", source=kwargs.get("source"), response_id=recorded.response.id,
             new=recorded.new)
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("unreachable: SIGKILL was sent")

    collect.record_response = record_then_die  # type: ignore[assignment]
    from flows.collect_responses import collect_responses  # imports Prefect

    emit(event="ready", pid=os.getpid())
    asyncio.run(collect_responses())
    emit(event="done")


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
