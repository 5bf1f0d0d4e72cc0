"""A dispatching process for tests/flows/test_exactly_once.py (test code, not product).

    python -m tests.flows.child_dispatch '<json config>'

It runs the production ``dispatch-pending`` flow (the one run loop, its Prefect task step)
against the parent's database, stand-in vendors and Prefect API (``PREFECT_API_URL`` in its
environment). The runtime it installs builds each run's Dispatcher as
:class:`CountingDispatcher`: the product's class with the test's hooks.
Config keys: ``database_url``, ``templates_dir``, ``settings`` (extra DispatchSettings
fields: the SMTP relay, retry delays), ``worker``, ``lease_seconds``, ``limit``,
``concurrency``, ``barrier`` (at the first claim, inside the flow run: report "claiming"
and wait for "go" on stdin, so that two workers claim at the same moment however long
their flow runs took to start),
``hold_first_claim`` (see :class:`CountingDispatcher`) and ``kill_after_send`` (a channel
key: "email", "sftp", "b2b").

``kill_after_send`` is the deterministic crash point: the channel's real ``send`` runs to
completion (the vendor has the message/file/submission), then this process reports the
evidence and SIGKILLs itself, before the send can record the outcome. The product code
has no hook for this; the wrapper lives here only.

Stdout is one JSON object per line: ``{"event": "ready"}``, ``{"event": "claiming"}``
(barrier), ``{"event": "holding"}`` or
``{"event": "first-claim"}`` (with the job ids), ``{"event": "sent", ...}`` (kill mode, just
before the kill) and ``{"event": "done", "worker", "claimed", "counts"}`` (sends by outcome,
the flow's result).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text

from dispatch.channels import ChannelSet, Envelope, Evidence, channel_key
from dispatch.dispatching.dispatcher import Dispatcher, OrderJobs
from dispatch.documents.base import Document
from dispatch.orchestration import runtime
from dispatch.settings import DispatchSettings
from dispatch.store import outbox
from dispatch.store.engine import make_engine, transaction


def emit(**event: Any) -> None:
    # Not print(): the flow runs with log_prints, which turns prints into log records.
    sys.stdout.write(json.dumps(event, default=str) + "\n")
    sys.stdout.flush()


class KillAfterSend:
    """Wraps a real channel: after its send returned, report and die by SIGKILL."""

    def __init__(self, channel: Any, key: str) -> None:
        self._channel, self._key = channel, key

    async def send(self, target: Any, documents: Sequence[Document], envelope: Envelope
                   ) -> Evidence:
        evidence = await self._channel.send(target, documents, envelope)
        emit(event="sent", channel=self._key, idempotency_key=envelope.idempotency_key,
             evidence=evidence.as_dict())
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("unreachable: SIGKILL was sent")

    async def aclose(self) -> None:
        await self._channel.aclose()


class KillingChannels:
    """The run's real ChannelSet, with the ``kill_key`` channel wrapped."""

    def __init__(self, channels: ChannelSet, kill_key: str) -> None:
        self._channels, self._kill_key = channels, kill_key

    def for_target(self, target: Any) -> Any:
        channel = self._channels.for_target(target)
        key = channel_key(target)
        return KillAfterSend(channel, key) if key == self._kill_key else channel


def wait_for(word: str) -> None:
    line = sys.stdin.readline().strip()
    if line != word:
        raise SystemExit(f"expected {word!r} on stdin, got {line!r}")


class CountingDispatcher(Dispatcher):
    """Remembers every job id it claimed, to show which worker did what.

    ``hold_first_claim``: the first claim's transaction stays open (its row locks held, the
    claim not yet visible to others) until the parent writes "commit" — the same
    ``claim_jobs`` statement, only committed later, so another worker provably claims
    while this claim is in flight.
    """

    claimed: list[int] = []  # over the process (the flow may build several dispatchers)
    hold = False
    barrier = False

    def claim(self, *, limit: int, order_id: str | None = None) -> list[OrderJobs]:
        first = not CountingDispatcher.claimed
        if first and CountingDispatcher.barrier:
            CountingDispatcher.barrier = False
            emit(event="claiming")
            wait_for("go")
        if first and CountingDispatcher.hold:
            with transaction(self.engine) as conn:
                claimed = outbox.claim_jobs(conn, worker=self.worker, now=self.clock(),
                                            lease=self.lease_length, limit=limit,
                                            order_id=order_id)
                emit(event="holding", claimed=[j for j, _ in claimed])
                wait_for("commit")
            by_order: dict[str, list[int]] = {}
            for job_id, order in claimed:
                by_order.setdefault(order, []).append(job_id)
            orders = [OrderJobs(o, tuple(ids)) for o, ids in by_order.items()]
        else:
            orders = super().claim(limit=limit, order_id=order_id)
            if first:
                emit(event="first-claim", claimed=[j for o in orders for j in o.job_ids])
        CountingDispatcher.claimed += [j for o in orders for j in o.job_ids]
        return orders


def main(config: dict[str, Any]) -> None:
    fields = {"database_url": config["database_url"], "api_keys": "child-key-0123456789",
              "templates_dir": config["templates_dir"], **config["settings"]}
    settings = DispatchSettings(**fields)
    engine = make_engine(config["database_url"], create_schema=False)
    with engine.connect() as conn:  # warm: the first claim should not pay the connect
        conn.execute(text("SELECT 1"))
    kill = config.get("kill_after_send")
    CountingDispatcher.hold = config.get("hold_first_claim", False)
    CountingDispatcher.barrier = config.get("barrier", False)

    def make_dispatcher(engine: Any, settings: DispatchSettings, channels: ChannelSet
                        ) -> Dispatcher:
        wrapped: Any = KillingChannels(channels, kill) if kill else channels
        return CountingDispatcher(engine, settings, wrapped, worker=config["worker"],
                                  lease=dt.timedelta(seconds=config["lease_seconds"]))

    runtime.install(runtime.Runtime(settings, engine, make_dispatcher=make_dispatcher))
    from flows.dispatch_pending import dispatch_pending  # imports Prefect

    emit(event="ready", pid=os.getpid())
    state: Any = asyncio.run(dispatch_pending(  # type: ignore[arg-type]
        limit=config.get("limit", 1000), concurrency=config.get("concurrency", 8),
        return_state=True))
    counts = state.result(raise_on_failure=False)
    engine.dispose()
    emit(event="done", worker=config["worker"], claimed=CountingDispatcher.claimed,
         counts=counts if isinstance(counts, dict) else {"crashed": str(counts)})


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
