"""File intake (SPEC 8 "Files"): collect the response documents vendors drop in their inbox.

For each vendor with ``responses.inbox`` (and an ``ftp:`` entry, whose credentials and host
key reach it: ``dispatch/channels/inbox.py``), each visible file in the folder is read,
recorded with :func:`~dispatch.responses.intake.record_response` (source ``file:<name>``),
then moved:

- to ``processed/`` when it was recorded and matched (or had been recorded before);
- to ``failed/``, with ``<name>.error.txt`` beside it naming the problem, when it is larger
  than ``DISPATCH_MAX_BODY_BYTES`` (never read past the limit), is not a response document
  (not well-formed, a DTD or entity declarations: refused before anything is expanded,
  nothing stored: the HTTP intake's 400), or does not match an order (the HTTP intake's 422:
  the document is kept in the database as *unmatched* and listed by
  ``dispatch responses --unmatched``; the file goes to ``failed/`` so whoever watches the
  folder sees that it was not applied).

Exactly once across crashes: recording is idempotent by (vendor, SHA-256), and the move
comes after it. A crash between the two leaves the file in the inbox; the next sweep reads
it again, finds it recorded (nothing stored or announced twice) and moves it. The error
text is written before the move for the same reason. A file that cannot be read or moved
now (connection lost, database down) stays where it is for the next sweep.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine

from dispatch.channels.base import DEFAULT_TIMEOUT, SecretResolver
from dispatch.channels.inbox import FAILED, PROCESSED, Inbox, TooLarge, open_inbox
from dispatch.errors import DeliveryError
from dispatch.reference_data import VendorFtp
from dispatch.responses.documents import ResponseDocumentError
from dispatch.responses.intake import record_response
from dispatch.store import responses as store
from dispatch.store.engine import reading

log = logging.getLogger("dispatch.responses.collect")

ERROR_SUFFIX = ".error.txt"


@dataclass(frozen=True)
class CollectedFile:
    """What became of one inbox file."""

    name: str
    folder: str  # processed | failed
    moved_to: str
    status: str | None = None  # the response's status, "Unmatched", or None (not recorded)
    response_id: int | None = None
    order_id: str | None = None
    new: bool = False  # recorded by this sweep (False: recorded before, e.g. before a crash)
    problem: str | None = None
    events: tuple[str, ...] = ()


@dataclass
class InboxReport:
    """One vendor's inbox in one sweep; ``error``: why it stopped (files left for later)."""

    vendor_id: str
    inbox: str
    files: list[CollectedFile] = field(default_factory=list)
    error: str | None = None


def collect_inboxes(engine: Engine, *, max_bytes: int, now: Callable[[], dt.datetime],
                    secrets: SecretResolver | None = None,
                    timeout: float = DEFAULT_TIMEOUT) -> list[InboxReport]:
    """Collect every vendor's inbox once; one vendor's failure does not stop the others."""
    with reading(engine) as conn:
        vendors = [v for v in store.response_vendors(conn) if v.responses.get("inbox")]
    reports = []
    for vendor in vendors:
        inbox_url = str(vendor.responses["inbox"])
        if not vendor.ftp:
            reports.append(InboxReport(vendor.id, inbox_url, error=(
                f"vendor {vendor.id}: responses.inbox needs the vendor's ftp: entry (its "
                "credentials and host key); add one and load the reference data again")))
            continue
        reports.append(collect_inbox(engine, vendor_id=vendor.id, ftp=VendorFtp(**vendor.ftp),
                                     inbox_url=inbox_url, max_bytes=max_bytes, now=now,
                                     secrets=secrets, timeout=timeout))
    return reports


def collect_inbox(engine: Engine, *, vendor_id: str, ftp: VendorFtp, inbox_url: str,
                  max_bytes: int, now: Callable[[], dt.datetime],
                  secrets: SecretResolver | None = None,
                  timeout: float = DEFAULT_TIMEOUT) -> InboxReport:
    """Record and move every file of one vendor's inbox (see the module docstring)."""
    report = InboxReport(vendor_id, inbox_url)
    try:
        with open_inbox(ftp, inbox_url, secrets=secrets, timeout=timeout) as inbox:
            report.inbox = inbox.display
            for item in inbox.files():
                report.files.append(_collect_file(engine, inbox, vendor_id=vendor_id,
                                                  name=item.name, max_bytes=max_bytes, now=now))
    except DeliveryError as exc:
        report.error = str(exc)
        log.warning("vendor %s: response inbox %s: %s", vendor_id, report.inbox, exc)
    return report


def _collect_file(engine: Engine, inbox: Inbox, *, vendor_id: str, name: str, max_bytes: int,
                  now: Callable[[], dt.datetime]) -> CollectedFile:
    try:
        body = inbox.read(name, limit=max_bytes)
    except TooLarge as exc:
        problem = (f"{name}: {exc.size} bytes, more than DISPATCH_MAX_BODY_BYTES ({max_bytes}); "
                   "not read. Send a smaller document (one order response per file)")
        return _fail(inbox, name, problem, suffix=f"size-{exc.size}")
    sha256 = hashlib.sha256(body).hexdigest()
    try:
        recorded = record_response(engine, vendor_id=vendor_id, body=body,
                                   source=f"file:{name}"[:200], now=now())
    except ResponseDocumentError as exc:
        return _fail(inbox, name, f"{name}: {exc}", suffix=sha256[:12])
    response = recorded.response
    if not response.matched:
        problem = (f"{name}: {response.problem or 'does not match an order'}; kept as "
                   f"unmatched response {response.id} (dispatch responses --unmatched), "
                   "never applied")
        done = _fail(inbox, name, problem, suffix=sha256[:12])
        return CollectedFile(name, FAILED, done.moved_to, "Unmatched", response.id,
                             response.order_id, recorded.new, problem)
    final = _free_name(inbox, PROCESSED, name, sha256[:12])
    moved_to = inbox.move(name, PROCESSED, final)
    return CollectedFile(name, PROCESSED, moved_to, str(response.status), response.id,
                         response.order_id, recorded.new, events=tuple(recorded.events))


def _free_name(inbox: Inbox, folder: str, name: str, suffix: str) -> str:
    """``name``, or ``name.{suffix}`` when ``folder`` already holds a file of that name."""
    return f"{name}.{suffix}" if inbox.exists(folder, name) else name


def _fail(inbox: Inbox, name: str, problem: str, *, suffix: str) -> CollectedFile:
    """``failed/<name>.error.txt`` first, then the file beside it (a crash in between
    leaves the file in the inbox; the next sweep writes the same text again)."""
    final = _free_name(inbox, FAILED, name, suffix)
    text = problem + "\n"
    inbox.put(FAILED, final + ERROR_SUFFIX, text.encode())
    moved_to = inbox.move(name, FAILED, final)
    log.warning("response inbox %s: %s moved to %s: %s", inbox.display, name, FAILED, problem)
    return CollectedFile(name, FAILED, moved_to, problem=problem)
