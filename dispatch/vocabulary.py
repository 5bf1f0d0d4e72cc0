"""The words of dispatching, each spelled one way in code, in the database and in output.

They are ``StrEnum``s: a member *is* its string, so it is stored, compared and serialised as
the SPEC spells it on the wire (``"B2B"``, ``"Email"``, ``"purchase"``, ``"Pending"``).
Parse outside text with ``Enum(value)`` (raises ``ValueError`` naming the value).

A channel (how a vendor is reached: B2B, FTP, Email) is not a transport: FTP is carried by
``sftp://``, ``ftp://`` or ``ftps://``, and the channel registry is keyed by those
:class:`Transport`\\s.
"""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    """How a dispatch reaches the vendor (SendOptions ``Channel.IsB2B|IsFtp|IsEmail``)."""

    B2B = "B2B"
    FTP = "FTP"
    EMAIL = "Email"


class Transport(StrEnum):
    """The protocol a channel uses for one target: the channel registry's keys."""

    B2B = "b2b"
    SFTP = "sftp"
    FTP = "ftp"
    FTPS = "ftps"
    EMAIL = "email"


class DocumentFormat(StrEnum):
    """A document's format (SendOptions ``IsXml|IsPdf|IsExcel``); B2B lines have none."""

    XML = "XML"
    PDF = "PDF"
    EXCEL = "Excel"

    @property
    def extension(self) -> str:
        return {"XML": "xml", "PDF": "pdf", "Excel": "xlsx"}[self.value]


class DispatchKind(StrEnum):
    """What a dispatch tells the vendor."""

    PURCHASE = "purchase"
    CHANGE = "change"
    CANCELLATION = "cancellation"
    REMINDER = "reminder"  # SPEC 8: the vendor did not answer in time


class DeliveryStatus(StrEnum):
    """SPEC 3: ``Pending`` until delivered or finally failed (also between attempts, with
    ``Error`` and ``NextAttemptAt``); ``Failed`` only when no attempt is left."""

    PENDING = "Pending"
    DELIVERED = "Delivered"
    FAILED = "Failed"
    UNSUPPORTED = "Unsupported"

    @property
    def final(self) -> bool:
        return self is not DeliveryStatus.PENDING


class JobStatus(StrEnum):
    """A dispatch job (outbox row): ``Pending`` while a delivery of it is, else ``Done``."""

    PENDING = "Pending"
    DONE = "Done"


class SendStatus(StrEnum):
    """What one send (a delivery group) came to in a run."""

    DELIVERED = "Delivered"
    RETRYING = "Retrying"  # failed; the next attempt is scheduled (deliveries stay Pending)
    FAILED = "Failed"  # failed finally
    SKIPPED = "Skipped"  # dry run, or someone else owns the job now


class ResponseStatus(StrEnum):
    """SPEC 8: where the vendor's answer to an order stands (the order detail's
    ``Response.Status``). A received document is Acknowledged, Accepted, Rejected or
    ConditionallyAccepted; the others are states of waiting."""

    NOT_EXPECTED = "NotExpected"  # the vendor has no ``responses`` configuration
    AWAITING = "Awaiting"
    ACKNOWLEDGED = "Acknowledged"
    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    CONDITIONALLY_ACCEPTED = "ConditionallyAccepted"
    OVERDUE = "Overdue"
