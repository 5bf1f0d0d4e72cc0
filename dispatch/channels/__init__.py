"""Delivery channels: B2B HTTP, SFTP, FTP/FTPS and email, each returning Evidence.

Use :class:`ChannelSet` for a run (one instance per channel, connections reused, all closed
at the end) or :func:`open_channel` for one. Every ``send`` takes the vendor target model
(``VendorB2B``, ``VendorFtp`` or ``VendorEmail``), the documents and an :class:`Envelope`,
and returns :class:`Evidence` or raises ``DeliveryError(retryable=...)``.
"""

from dispatch.channels.base import (
    Channel,
    DocumentProof,
    Envelope,
    Evidence,
    SecretResolver,
)
from dispatch.channels.registry import (
    CHANNELS,
    ChannelSet,
    channel_class,
    channel_key,
    open_channel,
)

__all__ = [
    "CHANNELS",
    "Channel",
    "ChannelSet",
    "DocumentProof",
    "Envelope",
    "Evidence",
    "SecretResolver",
    "channel_class",
    "channel_key",
    "open_channel",
]
