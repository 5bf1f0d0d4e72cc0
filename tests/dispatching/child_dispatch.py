"""A dispatching process for tests/dispatching/test_exactly_once.py (test code, not product).

    python -m tests.dispatching.child_dispatch '<json config>'

It builds a plain :class:`~dispatch.dispatching.core.Dispatcher` against the parent's database and
stand-in vendors and runs ``run_pending`` — what ``dispatch-pending`` does, without Prefect.
Config keys: ``database_url``, ``templates_dir``, ``settings`` (extra DispatchSettings
fields: the SMTP relay, retry delays), ``worker``, ``lease_seconds``, ``limit``,
``concurrency``, ``barrier`` (wait for "go" on stdin before the first claim),
``hold_first_claim`` (see :class:`CountingDispatcher`) and ``kill_after_send`` (a channel
key: "email", "sftp", "b2b").

``kill_after_send`` is the deterministic crash point: the channel's real ``send`` runs to
completion (the vendor has the message/file/submission), then this process reports the
evidence and SIGKILLs itself, before the Dispatcher can record the outcome. The product code
has no hook for this; the wrapper lives here only.

Stdout is one JSON object per line: ``{"event": "ready"}``, ``{"event": "holding"}`` or
``{"event": "first-claim"}`` (with the job ids), ``{"event": "sent", ...}`` (kill mode, just
before the kill) and ``{"event": "done", "worker", "claimed", "outcomes"}``.
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
from dispatch.dispatching.core import Dispatcher
from dispatch.documents.base import Document
from dispatch.settings import DispatchSettings
from dispatch.store import jobs as job_store
from dispatch.store.engine import make_engine, transaction


def emit(**event: Any) -> None:
    print(json.dumps(event, default=str), flush=True)


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


class KillingChannelSet(ChannelSet):
    def __init__(self, *, kill_key: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._kill_key = kill_key

    def for_target(self, target: Any) -> Any:
        channel = super().for_target(target)
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

    def __init__(self, *args: Any, hold_first_claim: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.claimed: list[int] = []
        self._hold = hold_first_claim

    def claim(self, *, order_id: str | None = None, limit: int = 100) -> list[int]:
        first = not self.claimed
        if first and self._hold:
            with transaction(self.engine) as conn:
                ids = job_store.claim_jobs(conn, worker=self.worker, now=self.clock(),
                                           lease=self.lease, limit=limit, order_id=order_id)
                emit(event="holding", claimed=ids)
                wait_for("commit")
        else:
            ids = super().claim(order_id=order_id, limit=limit)
            if first:
                emit(event="first-claim", claimed=ids)
        self.claimed += ids
        return ids


async def main(config: dict[str, Any]) -> None:
    fields = {"database_url": config["database_url"], "api_keys": "child-key-0123456789",
              "templates_dir": config["templates_dir"], **config["settings"]}
    settings = DispatchSettings(**fields)
    engine = make_engine(config["database_url"], create_schema=False)
    with engine.connect() as conn:  # warm: the first claim should not pay the connect
        conn.execute(text("SELECT 1"))
    kill = config.get("kill_after_send")
    channels = (KillingChannelSet(kill_key=kill, settings=settings) if kill
                else ChannelSet(settings=settings))
    dispatcher = CountingDispatcher(engine, settings, channels=channels,
                                    worker=config["worker"],
                                    lease=dt.timedelta(seconds=config["lease_seconds"]),
                                    hold_first_claim=config.get("hold_first_claim", False))
    emit(event="ready", pid=os.getpid())
    if config.get("barrier"):
        wait_for("go")
    async with channels:
        outcomes = await dispatcher.run_pending(limit=config.get("limit", 1000),
                                                concurrency=config.get("concurrency", 8))
    engine.dispose()
    emit(event="done", worker=dispatcher.worker, claimed=dispatcher.claimed,
         outcomes=[{"order_id": o.order_id, "kind": o.kind, "channel": o.channel,
                    "status": o.status, "attempts": o.attempts, "error": o.error}
                   for o in outcomes])


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
