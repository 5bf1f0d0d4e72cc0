"""Delivery channels: B2B HTTP, SFTP, FTP/FTPS and email, each returning Evidence.

Use :class:`ChannelSet` for a run (one instance per channel, connections reused, all closed
at the end) or :func:`open_channel` for one. Every ``send`` takes the vendor target model
(``VendorB2B``, ``VendorFtp`` or ``VendorEmail``), the documents and an :class:`Envelope`,
and returns :class:`Evidence` or raises ``DeliveryError(retryable=...)``.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # type checkers see the real names
    from dispatch.channels.base import (  # noqa: F401
        DeliveryChannel,
        DocumentProof,
        Envelope,
        Evidence,
        SecretResolver,
        error_text,
    )
    from dispatch.channels.registry import (  # noqa: F401
        CHANNELS,
        ChannelSet,
        channel_class,
        channel_key,
        open_channel,
    )

# Lazy, so that settings and reference data can use ``dispatch.channels.base`` (the secret
# rules) without importing the registry, which imports them.
_EXPORTS = {
    "DeliveryChannel": "dispatch.channels.base",
    "DocumentProof": "dispatch.channels.base",
    "Envelope": "dispatch.channels.base",
    "Evidence": "dispatch.channels.base",
    "SecretResolver": "dispatch.channels.base",
    "error_text": "dispatch.channels.base",
    "CHANNELS": "dispatch.channels.registry",
    "ChannelSet": "dispatch.channels.registry",
    "channel_class": "dispatch.channels.registry",
    "channel_key": "dispatch.channels.registry",
    "open_channel": "dispatch.channels.registry",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
