"""``dispatch dispatch-pending``: the ``dispatch-pending`` flow once, in this process.

The CLI asks the database first whether anything is due (``outbox.next_due``) and calls
this only when something is: starting Prefect takes seconds when no server is configured.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from dispatch.orchestration import runtime
from dispatch.orchestration.prefect_defaults import quiet_prefect_defaults


@dataclass(frozen=True)
class OneShot:
    counts: dict[str, int] | None  # sends by outcome; None when the flow run failed
    message: str  # the flow run's state message


def run_pending_once(rt: runtime.Runtime, **params: Any) -> OneShot:
    """Run the flow once (``params``: limit, concurrency, orders_per_task, dry_run)."""
    quiet_prefect_defaults()
    runtime.install(rt)
    from flows.dispatch_pending import dispatch_pending

    state: Any = asyncio.run(dispatch_pending(**params, return_state=True))  # type: ignore[arg-type]
    result = state.result(raise_on_failure=False)
    return OneShot(result if isinstance(result, dict) else None, state.message or "")
