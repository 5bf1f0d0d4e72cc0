"""Email (aiosmtplib): one message per dispatch, every document attached, through the relay.

The relay comes from :class:`~dispatch.settings.DispatchSettings` (``smtp_*``): security
``none``, ``starttls`` (required, never silently skipped) or ``tls``; the certificate is
verified against ``smtp_ca_file`` or the system store; AUTH when a username is set.

The ``Message-ID`` is stable per delivery (the caller passes it, or it is derived from the
idempotency key) so a resend can be recognised by the recipient. The connection is kept for
the channel's life and rebuilt once when a reused one is found dead at ``MAIL FROM``
(nothing of the message was sent yet).

Outcome: 4xx replies and connection errors retryable; 5xx replies (including 535 auth
rejected) and an untrusted certificate permanent.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import ssl
from collections.abc import Callable, Sequence
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate
from typing import Any, ClassVar

import aiosmtplib

from dispatch.channels.base import (
    DEFAULT_TIMEOUT,
    Envelope,
    Evidence,
    SecretResolver,
    delivery_error,
    proof,
    secret_problem,
    truncate,
    unexpected_error,
)
from dispatch.documents.base import Document
from dispatch.errors import DeliveryError
from dispatch.reference_data import VendorEmail
from dispatch.settings import DispatchSettings

SmtpFactory = Callable[..., aiosmtplib.SMTP]

_TRANSIENT = (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPTimeoutError,
              aiosmtplib.SMTPServerDisconnected, OSError)

_ATEXT = re.compile(r"[^A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.]")


def make_message_id(idempotency_key: str, domain: str) -> str:
    """A stable RFC 5322 Message-ID for a delivery: ``<key@domain>`` with the key sanitised."""
    local = _ATEXT.sub("-", idempotency_key).strip(".") or "dispatch"
    local = re.sub(r"\.{2,}", ".", local)
    return f"<{local}@{domain}>"


def subject_for(order_id: str, kind: str, version: int) -> str:
    label = {"purchase": "Purchase order", "change": "Change to purchase order",
             "cancellation": "CANCELLATION of purchase order"}.get(kind, f"{kind} of order")
    return f"{label} {order_id} (version {version})"


def build_message(
    *, sender: str, target: VendorEmail, documents: Sequence[Document], envelope: Envelope,
    message_id: str,
) -> EmailMessage:
    """The message of one dispatch: a short text body and every document attached."""
    message = EmailMessage(policy=SMTP_POLICY)
    message["From"] = sender
    message["To"] = ", ".join(target.to)
    if target.cc:
        message["Cc"] = ", ".join(target.cc)
    message["Subject"] = subject_for(envelope.order_id, envelope.kind, envelope.version)
    message["Message-ID"] = message_id
    message["Date"] = formatdate(localtime=False, usegmt=True)
    names = "\n".join(f"  {d.name} ({d.size} bytes, sha256 {d.sha256})" for d in documents)
    message.set_content(
        f"{message['Subject']}.\n\nAttached:\n{names}\n\n"
        f"Reference: {message_id}\n"
    )
    for document in documents:
        maintype, _, subtype = document.media_type.partition("/")
        message.add_attachment(document.content, maintype=maintype,
                               subtype=subtype or "octet-stream", filename=document.name)
    return message


class SmtpChannel:
    """Sends one message per dispatch through the configured relay."""

    keys: ClassVar[tuple[str, ...]] = ("email",)

    def __init__(
        self,
        *,
        settings: DispatchSettings,
        smtp_factory: SmtpFactory = aiosmtplib.SMTP,
        secrets: SecretResolver | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._settings = settings
        self._factory = smtp_factory
        self._timeout = timeout
        self._smtp: aiosmtplib.SMTP | None = None
        self._lock = asyncio.Lock()
        password = settings.smtp_password
        self._password = password.get_secret_value() if password is not None else None

    @property
    def relay(self) -> str:
        return f"{self._settings.smtp_host}:{self._settings.smtp_port}"

    async def send(
        self, target: VendorEmail, documents: Sequence[Document], envelope: Envelope
    ) -> Evidence:
        if not documents:
            raise ValueError("an email dispatch carries at least one document")
        sender = self._settings.smtp_sender
        message_id = envelope.message_id or make_message_id(
            envelope.idempotency_key, sender.rpartition("@")[2] or "dispatch.localhost")
        message = build_message(sender=sender, target=target, documents=documents,
                                envelope=envelope, message_id=message_id)
        data = message.as_bytes(policy=SMTP_POLICY)
        recipients = [*target.to, *target.cc]
        problem = secret_problem(self._password) if self._password else None
        if problem is not None:
            raise DeliveryError(f"SMTP relay {self.relay}: the value of DISPATCH_SMTP_PASSWORD "
                                f"{problem}", retryable=False)
        async with self._lock:
            try:
                refused, reply = await self._transmit(sender, recipients, data)
                error = None
            except Exception as exc:
                await self._drop()
                error = self._mapped(exc, message_id)
        if error is not None:
            raise error  # outside the except: the raw exception must not ride along
        remote: dict[str, Any] = {"reply": truncate(reply), "message_id": message_id,
                                  "relay": self.relay}
        if refused:
            remote["refused"] = {rcpt: str(resp) for rcpt, resp in refused.items()}
        return Evidence(
            channel="email", target=_mailto(target), sha256=hashlib.sha256(data).hexdigest(),
            size=len(data), remote=remote, documents=tuple(proof(d) for d in documents),
        )

    async def _transmit(self, sender: str, recipients: list[str], data: bytes
                        ) -> tuple[dict[str, Any], str]:
        smtp, reused = self._smtp, True
        if smtp is None or not smtp.is_connected:
            smtp, reused = await self._connect(), False
        try:
            await smtp.mail(sender)
        except (aiosmtplib.SMTPServerDisconnected, ConnectionError):
            if not reused:
                raise
            await self._drop()
            smtp = await self._connect()
            await smtp.mail(sender)
        refused: dict[str, Any] = {}
        for rcpt in recipients:
            try:
                await smtp.rcpt(rcpt)
            except aiosmtplib.SMTPRecipientRefused as exc:
                refused[rcpt] = exc
        if len(refused) == len(recipients):
            await smtp.rset()
            raise aiosmtplib.SMTPRecipientsRefused(list(refused.values()))
        response = await smtp.data(data)
        return refused, f"{response.code} {response.message}"

    async def _connect(self) -> aiosmtplib.SMTP:
        settings = self._settings
        context = ssl.create_default_context(
            cafile=str(settings.smtp_ca_file) if settings.smtp_ca_file else None)
        smtp = self._factory(
            hostname=settings.smtp_host, port=settings.smtp_port, timeout=self._timeout,
            use_tls=settings.smtp_security == "tls",
            start_tls=settings.smtp_security == "starttls", tls_context=context,
        )
        self._smtp = smtp
        await smtp.connect()
        if settings.smtp_username:
            await smtp.login(settings.smtp_username, self._password or "")
        return smtp

    async def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()

    async def aclose(self) -> None:
        async with self._lock:
            smtp, self._smtp = self._smtp, None
            if smtp is not None and smtp.is_connected:
                try:
                    await smtp.quit()
                except (aiosmtplib.SMTPException, OSError):
                    smtp.close()

    def _mapped(self, exc: Exception, message_id: str) -> DeliveryError:
        relay = self.relay
        cause: BaseException | None = exc
        while cause is not None:
            if isinstance(cause, ssl.SSLCertVerificationError):
                text = (f"SMTP relay {relay}: certificate not trusted ({cause.verify_message}); "
                        "set DISPATCH_SMTP_CA_FILE or fix the relay's certificate")
                return DeliveryError(text, retryable=False)
            cause = cause.__cause__ or cause.__context__
        if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
            codes = [r.code for r in exc.recipients]
            detail = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
            text = f"SMTP relay {relay} refused every recipient of {message_id}: {detail}"
            retryable = any(400 <= code < 500 for code in codes)
        elif isinstance(exc, aiosmtplib.SMTPAuthenticationError):
            text = (f"SMTP relay {relay}: login rejected for {self._settings.smtp_username!r} "
                    f"({exc.code} {exc.message}); check DISPATCH_SMTP_USERNAME/PASSWORD")
            retryable = 400 <= exc.code < 500
        elif isinstance(exc, aiosmtplib.SMTPResponseException):
            text = f"SMTP relay {relay} answered {exc.code} {exc.message} for {message_id}"
            retryable = 400 <= exc.code < 500
        elif isinstance(exc, aiosmtplib.SMTPNotSupported):
            text = (f"SMTP relay {relay}: {exc}; check DISPATCH_SMTP_SECURITY "
                    f"({self._settings.smtp_security}) and the relay's configuration")
            retryable = False
        elif isinstance(exc, _TRANSIENT):
            text = f"SMTP relay {relay}: {type(exc).__name__}: {exc}"
            retryable = True  # connect errors, timeouts, disconnects, OS errors
        elif isinstance(exc, aiosmtplib.SMTPException):
            # e.g. "AUTH not supported": a configuration problem a retry cannot fix
            text = (f"SMTP relay {relay}: {exc}; check the DISPATCH_SMTP_* settings "
                    "against the relay")
            retryable = False
        else:
            return unexpected_error(exc, what=f"SMTP relay {relay}", secrets=[self._password])
        return delivery_error(text, retryable=retryable, cause=exc, secrets=[self._password])


def _mailto(target: VendorEmail) -> str:
    text = "mailto:" + ",".join(target.to)
    return text + ("?cc=" + ",".join(target.cc) if target.cc else "")
