"""Dispatch inside the ``serve`` process (embedded mode) or announce jobs to Prefect (server
mode).

Embedded: one thread with its own event loop runs the Prefect flows as dispatch jobs appear
(the request executor calls :meth:`EmbeddedDispatcher.notify` after each commit). Prefect's
temporary API starts once, at service start, never per order. A few orders at a time run as
``dispatch-order`` flow runs named after the order; a burst runs as one ``dispatch-pending``
run. The database is the retry clock: when the earliest retry (or a job left from before a
restart) is due, the runner wakes and sends it, as ``dispatch-order`` runs named
``{OrderId}-retry`` when few orders are due, else one ``dispatch-pending`` run.

Server mode: :class:`EventAnnouncer` emits ``purchase-order.activated|changed|cancelled``
events after commit; the ``dispatch-order`` deployment's trigger reacts to them.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable

from dispatch.models import utcnow
from dispatch.orchestration import runtime as runtime_mod
from dispatch.orchestration.prefect_defaults import quiet_prefect_defaults
from dispatch.orchestration.responses import responses_loop
from dispatch.store import outbox
from dispatch.store.engine import reading

log = logging.getLogger("dispatch.orchestration.embedded")

EVENTS = {"purchase": "purchase-order.activated", "change": "purchase-order.changed",
          "cancellation": "purchase-order.cancelled"}
FEW_ORDERS = 4  # up to this many orders at once: a named flow run each


class EmbeddedDispatcher:
    def __init__(self, rt: runtime_mod.Runtime, *, concurrency: int = 8,
                 idle_seconds: float = 30.0) -> None:
        self._rt = rt
        self._concurrency = concurrency
        self._idle = idle_seconds
        self._orders: dict[str, str] = {}  # order id -> event of its latest job
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.ready = threading.Event()  # set once Prefect is up and leftovers were handled
        self.error: BaseException | None = None
        self.runs = 0

    def notify(self, jobs: Iterable[tuple[str, int, str]]) -> None:
        with self._lock:
            for order_id, _job_id, kind in jobs:
                self._orders[order_id] = EVENTS.get(kind, "purchase-order.activated")
        self._poke()

    def _poke(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            try:
                loop.call_soon_threadsafe(wake.set)
            except RuntimeError:  # loop already closed (stopping): the outbox keeps the jobs
                pass

    def start(self) -> None:
        quiet_prefect_defaults()
        self._thread = threading.Thread(target=self._thread_main, name="embedded-dispatch",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stopping = True
        self._poke()
        if self._thread is not None:
            self._thread.join(timeout)

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception as exc:  # logged; the outbox keeps the jobs for the next start
            self.error = exc
            log.exception("embedded dispatcher stopped; dispatch jobs stay in the outbox "
                          "(run `dispatch dispatch-pending` or restart the service)")
        finally:
            self.ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        from flows.dispatch_order import dispatch_order
        from flows.dispatch_pending import dispatch_pending

        # Starts Prefect's API for this process and sends what was left before a restart.
        await dispatch_pending(concurrency=self._concurrency, return_state=True)
        self.ready.set()
        # SPEC 8: inboxes, response deadlines (and reminders) every DISPATCH_RESPONSES_SWEEP_
        # SECONDS (30 s), beside the dispatch loop.
        responses = asyncio.create_task(responses_loop(
            lambda: self._stopping, interval=self._rt.settings.responses_sweep_seconds))
        idle_rounds = 0
        while not self._stopping:
            # After a round that found due work but could not claim it (another process
            # holds it), back off instead of spinning.
            timeout = self._until_due() if idle_rounds == 0 else min(self._idle, idle_rounds)
            if timeout > 0:
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout)
                except TimeoutError:
                    pass
            self._wake.clear()
            if self._stopping:
                break
            with self._lock:
                orders, self._orders = self._orders, {}
            if not orders and self._until_due() <= 0:
                # Retries that came due (or jobs left by another process): a run named
                # after each order when they are few, else one sweep.
                orders = {order: "" for order in self._due_orders(FEW_ORDERS + 1)}
                reason = "retry"
            else:
                reason = None
            if orders and len(orders) <= FEW_ORDERS:
                self.runs += len(orders)
                states = await asyncio.gather(*(
                    dispatch_order(order_id, event=event or None, reason=reason,
                                   return_state=True) for order_id, event in orders.items()))
                worked = [await s.result(raise_on_failure=False)  # type: ignore[misc]
                          for s in states if s.is_completed()]
                did_work = any(worked) or len(worked) < len(states)
                idle_rounds = 0 if did_work or reason is None else idle_rounds + 1
            elif orders or self._until_due() <= 0:
                self.runs += 1
                state = await dispatch_pending(concurrency=self._concurrency,
                                               return_state=True)
                counts = await state.result(  # type: ignore[misc]
                    raise_on_failure=False) if state.is_completed() else {"Failed": 1}
                idle_rounds = idle_rounds + 1 if not counts else 0
        await responses  # ends within 0.1 s of stopping

    def _due_orders(self, limit: int) -> list[str]:
        with reading(self._rt.engine) as conn:
            due = outbox.due_jobs(conn, now=utcnow(), limit=limit * 4)
        return list(dict.fromkeys(order for _job, order in due))[:limit]

    def _until_due(self) -> float:
        with reading(self._rt.engine) as conn:
            due = outbox.next_due(conn, now=utcnow())
        if due is None:
            return self._idle
        return max(0.0, min(self._idle, (due - utcnow()).total_seconds()))


class EventAnnouncer:
    """Server mode: tell Prefect about new dispatch jobs (after the commit)."""

    def __call__(self, jobs: Iterable[tuple[str, int, str]]) -> None:
        from prefect.events import emit_event

        for order_id, job_id, kind in jobs:
            emit_event(event=EVENTS.get(kind, "purchase-order.activated"),
                       resource={"prefect.resource.id": f"purchase-order.{order_id}",
                                 "prefect.resource.name": order_id},
                       payload={"order_id": order_id, "job_id": job_id, "kind": kind})
