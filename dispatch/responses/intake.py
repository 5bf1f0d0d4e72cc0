"""Recording one response document (SPEC 8), for both intakes (HTTP and inbox files).

Parse (``documents.py``), match (``rules/responses.py``), store (``store/responses.py``).
The same bytes again (same SHA-256 from the same vendor) answer what the first time did and
store nothing. A document that parses but does not match is stored as *unmatched*: listed,
never applied. A document that does not parse is not stored
(:class:`~dispatch.responses.documents.ResponseDocumentError`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from dispatch.responses.documents import ResponseDocumentError, parse_response
from dispatch.rules import responses as rules
from dispatch.store import responses as store
from dispatch.store.engine import reading, transaction
from dispatch.store.responses import StoredResponse


@dataclass(frozen=True)
class Recorded:
    """A recorded document; ``new``: this call stored it (False: seen before)."""

    response: StoredResponse
    new: bool

    @property
    def events(self) -> list[str]:
        """The events to announce: only for a newly stored, matched response."""
        r = self.response
        if not self.new or not r.matched or r.status is None:
            return []
        return rules.received_events(r.status)


def record_response(engine: Engine, *, vendor_id: str, body: bytes, source: str,
                    now: dt.datetime) -> Recorded:
    """Store ``body`` as ``vendor_id``'s response.

    Raises:
        ResponseDocumentError: not a response document SPEC 8 reads (nothing stored).
    """
    sha256 = hashlib.sha256(body).hexdigest()
    with reading(engine) as conn:
        seen = store.find_by_hash(conn, vendor_id=vendor_id, sha256=sha256)
    if seen is not None:
        return Recorded(seen, new=False)
    parsed = parse_response(body)
    problem = rules.code_problem(parsed)
    if problem is not None:
        raise ResponseDocumentError(problem)
    status = rules.status_of(parsed)
    with transaction(engine) as conn:
        facts = store.order_facts(conn, order_id=parsed.order_reference)
        result = rules.match(parsed, vendor_id=vendor_id, order=facts)
        values: dict[str, Any] = {
            "vendor_id": vendor_id, "order_reference": parsed.order_reference,
            "document_type": parsed.document_type, "document_id": parsed.document_id,
            "code": parsed.code[:20], "status": status, "vendor_order_id": parsed.vendor_order_id,
            "note": parsed.note, "sha256": sha256, "size": len(body), "content": body,
            "source": source, "received_at": now,
        }
        if isinstance(result, rules.Matched):
            values.update(order_id=result.order_id, dispatch_number=result.dispatch_number,
                          matched=True, problem=None,
                          lines=[a.as_json() for a in result.lines])
        else:
            values.update(order_id=result.order_id, dispatch_number=result.dispatch_number,
                          matched=False, problem=result.problem, lines=None)
        row, new = store.insert_response(conn, values=values)
    return Recorded(row, new)
