"""What a reminder dispatch is rendered from (SPEC 8): the order's usual document context,
with a :class:`ReminderDispatch` saying which dispatch is chased, when it was delivered and
when the answer was due; and the reminder template (``reminder-pdf`` is shipped:
``templates/pdf/reminder.yaml``, used when no ``templates:`` entry of that name exists).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from sqlalchemy import Connection

from dispatch.documents.context import Dispatch, DocumentContext
from dispatch.rules.deliveries import REMINDER_TEMPLATE
from dispatch.store.outbox import JobRow
from dispatch.store.responses import deadline_of_reminder

SHIPPED_TEMPLATES = {REMINDER_TEMPLATE: "pdf/reminder.yaml"}


@dataclasses.dataclass(frozen=True)
class ReminderDispatch(Dispatch):
    """A reminder: ``kind`` is ``reminder``; it chases dispatch ``chased_number``."""

    chased_number: int = 1
    chased_kind: str = "purchase"
    delivered_at: dt.datetime | None = None
    due_by: dt.datetime | None = None

    def __post_init__(self) -> None:
        if self.number < 1:
            raise ValueError(f"dispatch number must be >= 1, got {self.number}")

    @property
    def is_reminder(self) -> bool:
        return True


def reminder_job_parts(conn: Connection, *, row: JobRow, context: DocumentContext,
                       inputs: Any) -> tuple[DocumentContext, Any]:
    """The reminder job's context (its dispatch a :class:`ReminderDispatch`) and inputs
    whose template files include the shipped reminder template when none is loaded."""
    deadline = deadline_of_reminder(conn, job_id=row.id)
    chased = deadline.dispatch_number if deadline is not None else max(1, row.number - 1)
    dispatch = ReminderDispatch(
        kind="reminder",  # type: ignore[arg-type]
        number=row.number, generated_at=row.created_at, chased_number=chased,
        delivered_at=deadline.delivered_at if deadline else None,
        due_by=deadline.due_by if deadline else None)
    files = {**SHIPPED_TEMPLATES, **inputs.template_files}
    return (dataclasses.replace(context, dispatch=dispatch),
            dataclasses.replace(inputs, template_files=files))
