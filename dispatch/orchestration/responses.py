"""Embedded mode's part of SPEC 8: every ``interval`` seconds, run the ``collect-responses``
flow (deadline sweep, events, the ``vendor-responses`` artifact) and send each reminder it
queued as a ``dispatch-order`` run named ``{OrderId}-reminder`` (server mode does the same
with the scheduled deployment and the ``dispatch-order/on-overdue`` trigger)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

log = logging.getLogger("dispatch.orchestration.responses")


async def responses_loop(stopping: Callable[[], bool], *, interval: float = 30.0) -> None:
    """Until ``stopping()``: sweep, then send the reminders; never raises (logs)."""
    from flows.collect_responses import collect_responses
    from flows.dispatch_order import dispatch_order

    while not stopping():
        try:
            state = await collect_responses(return_state=True)
            result = (await state.result(raise_on_failure=False)  # type: ignore[misc]
                      if state.is_completed() else {})
            overdue = result.get("overdue", []) if isinstance(result, dict) else []
            for item in overdue:
                if item.get("reminder_number"):
                    await dispatch_order(item["order_id"], reason="reminder",
                                         return_state=True)
        except asyncio.CancelledError:
            raise
        except Exception:  # the next round tries again; the outbox keeps the reminders
            log.exception("order responses: the deadline sweep failed")
        for _ in range(int(interval * 10)):
            if stopping():
                return
            await asyncio.sleep(0.1)
