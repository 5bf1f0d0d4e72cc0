"""Outcomes as tables and lines for people: Prefect artifacts, logs, the CLI."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from dispatch.dispatching.outcomes import Outcome
from dispatch.store.outbox import DeliveryRow
from dispatch.vocabulary import DeliveryStatus


def _remote(evidence: dict[str, Any] | None) -> str:
    if not evidence:
        return ""
    remote = evidence.get("remote") or {}
    if "message_id" in remote:
        return f"{remote.get('reply', '')} {remote['message_id']}".strip()
    if "path" in remote:
        return f"{remote['path']} ({remote.get('size')} bytes)"
    if "status" in remote:
        return f"HTTP {remote['status']} {remote.get('body', '')}"[:200]
    return ""


def outcome_rows(outcomes: Iterable[Outcome]) -> list[dict[str, Any]]:
    """One row per send for a table artifact (no secrets: targets never carry them)."""
    return [{
        "order": o.order_id, "vendor": o.vendor_id, "kind": f"{o.kind} #{o.number}",
        "channel": o.channel, "documents": o.formats, "target": o.target,
        "status": o.status, "attempts": o.attempts, "error": o.error or "",
        "sha256": (o.sha256 or "")[:16], "remote": _remote(o.evidence),
    } for o in outcomes]


def _iso(value: dt.datetime | None) -> str:
    return value.isoformat() + "Z" if value else ""


def delivery_row(row: DeliveryRow) -> dict[str, Any]:
    """One delivery as recorded in the database (CLI tables, batch artifacts, --json).
    ``next_attempt`` is set while a retry waits (status Pending after a failed attempt)."""
    waiting = row.status is DeliveryStatus.PENDING and row.error is not None
    return {"order": row.order_id, "vendor": row.vendor_id,
            "dispatch": f"{row.kind} #{row.number}", "channel": row.channel,
            "format": row.format or f"line {row.order_item_id}", "target": row.target,
            "status": row.status, "attempts": row.attempts, "error": row.error or "",
            "next_attempt": _iso(row.next_attempt_at) if waiting else "",
            "sha256": row.sha256 or "", "remote": _remote(row.evidence),
            "delivered_at": _iso(row.delivered_at)}


def artifact_key(*parts: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    text = "-".join(parts).lower()
    return "".join(c if c.isalnum() else "-" for c in text).strip("-")[:100] or "dispatch"


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A plain-text table for the terminal."""
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) if rows else len(c)
              for c in columns}
    widths = {c: min(w, 60) for c, w in widths.items()}
    head = "  ".join(c.upper().ljust(widths[c]) for c in columns)
    body = ["  ".join(str(r.get(c, ""))[:widths[c]].ljust(widths[c]) for c in columns)
            for r in rows]
    return "\n".join([head, *body])
