"""What a resend contains (pure): a new dispatch repeating an earlier one, linked to it.

Nothing is re-sent implicitly; a person asks (SPEC 7). The new dispatch repeats the latest
dispatch of the kind asked for (of any kind when none is), takes the order's next number,
replaces the one it repeats, and goes out by the order's channels, or only by the channel
asked for, which the order must use. Refusals name the argument at fault ('kind' or
'channel'); how that argument is spelled (a CLI flag, an API field) is the caller's.
"""

from __future__ import annotations

from collections.abc import Sequence

from dispatch.rules.deliveries import OutboxEntry, expand
from dispatch.rules.types import DispatchPlan, DispatchRecord, OrderState, VendorRef
from dispatch.vocabulary import Channel, DispatchKind


class ResendRefused(Exception):
    """A resend that cannot be made: ``field`` ('kind' or 'channel') and why."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


def repeated_dispatch(history: Sequence[DispatchRecord],
                      kind: DispatchKind | None) -> DispatchRecord | None:
    """The dispatch a resend repeats: the latest of ``kind`` (of any kind when None)."""
    candidates = [d for d in history if kind is None or d.kind == kind]
    return max(candidates, key=lambda d: d.number, default=None)


def decide_resend(
    order: OrderState,
    history: Sequence[DispatchRecord],
    *,
    vendor: VendorRef | None,
    kind: DispatchKind | None,
    channel: Channel | None,
    token: str,
) -> OutboxEntry:
    """The new dispatch and its deliveries, linked to the one it repeats.

    ``history`` is the order's dispatches; ``token`` the random part of the new idempotency
    keys. Raises ResendRefused when there is nothing of ``kind`` to repeat, or the order is
    not sent by ``channel``.
    """
    original = repeated_dispatch(history, kind)
    if original is None:
        what = f"{kind} dispatch" if kind else "dispatch"
        raise ResendRefused("kind", f"order '{order.id}' has no {what} to resend")
    send_plan = order.plan
    if channel is not None:
        if not send_plan.uses(channel):
            raise ResendRefused("channel", f"order '{order.id}' is not sent by {channel}")
        send_plan = send_plan.only(channel)
    plan = DispatchPlan(original.kind, order.dispatch_count + 1, original.number,
                        original.changes)
    deliveries = expand(order_id=order.id, send_plan=send_plan, vendor=vendor,
                        lines=order.lines, dispatch=plan, token=token) if vendor else []
    return OutboxEntry(vendor.id if vendor else "", plan, tuple(deliveries),
                       resend_of_job_id=original.job_id)
