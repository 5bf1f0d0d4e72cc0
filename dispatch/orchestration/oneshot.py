"""``dispatch dispatch-pending``: the ``dispatch-pending`` flow once, in this process.

Whether anything is due is asked of the database first: with nothing due the command answers
at once, without starting Prefect (whose temporary API takes seconds to start when no
server is configured).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from typing import Any

from dispatch.models import utcnow
from dispatch.orchestration import runtime
from dispatch.orchestration.prefect_defaults import quiet_prefect_defaults
from dispatch.store import outbox
from dispatch.store.engine import reading


@dataclass(frozen=True)
class OneShot:
    ran: bool  # False: nothing was due, Prefect not started
    counts: dict[str, int] | None  # sends by outcome; None when the flow run failed
    message: str  # the flow run's state message, or when the next job is due
    next_due: dt.datetime | None = None


def nothing_due(rt: runtime.Runtime) -> tuple[bool, dt.datetime | None]:
    """(True, when the next job is due) if no job is due now."""
    now = utcnow()
    with reading(rt.engine) as conn:
        due = outbox.next_due(conn, now=now)
    return (due is None or due > now), due


def run_pending_once(rt: runtime.Runtime, **params: Any) -> OneShot:
    """Run the flow once (``params``: limit, concurrency, orders_per_task, dry_run), or
    nothing when nothing is due."""
    idle, due = nothing_due(rt)
    if idle:
        return OneShot(False, {}, "nothing due", due)
    quiet_prefect_defaults()
    runtime.install(rt)
    from flows.dispatch_pending import dispatch_pending

    state: Any = asyncio.run(dispatch_pending(**params, return_state=True))  # type: ignore[arg-type]
    result = state.result(raise_on_failure=False)
    return OneShot(True, result if isinstance(result, dict) else None, state.message or "")
