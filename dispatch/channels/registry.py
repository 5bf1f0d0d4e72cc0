"""The catalogue of channels: key → class. Adding a channel is one module plus one line here.

Classes are imported on first use so that loading the catalogue does not import paramiko,
httpx and aiosmtplib. :class:`ChannelSet` holds one instance per key for a run, so
connections are reused across deliveries to the same target, and closes them all at the end.
"""

from __future__ import annotations

import importlib
from types import TracebackType
from typing import Any

from dispatch.channels.base import DeliveryChannel, SecretResolver
from dispatch.reference_data import VendorB2B, VendorEmail, VendorFtp
from dispatch.settings import DispatchSettings

CHANNELS: dict[str, str] = {
    "b2b": "dispatch.channels.b2b_http:B2BChannel",
    "sftp": "dispatch.channels.sftp:SftpChannel",
    "ftp": "dispatch.channels.ftp:FtpChannel",
    "ftps": "dispatch.channels.ftp:FtpChannel",
    "email": "dispatch.channels.smtp:SmtpChannel",
}


def channel_class(key: str) -> type[DeliveryChannel]:
    """The class registered under ``key`` ("b2b", "sftp", "ftp", "ftps", "email")."""
    try:
        module_name, _, class_name = CHANNELS[key].partition(":")
    except KeyError:
        raise KeyError(f"no channel {key!r}; known: {', '.join(sorted(CHANNELS))}") from None
    cls: type[DeliveryChannel] = getattr(importlib.import_module(module_name), class_name)
    return cls


def channel_key(target: VendorB2B | VendorEmail | VendorFtp) -> str:
    """The registry key that delivers to a vendor target (the URL scheme for ftp targets)."""
    if isinstance(target, VendorB2B):
        return "b2b"
    if isinstance(target, VendorEmail):
        return "email"
    if isinstance(target, VendorFtp):
        return target.scheme
    raise TypeError(f"no channel for {type(target).__name__}")


def open_channel(
    key: str, *, settings: DispatchSettings, secrets: SecretResolver | None = None,
    **factories: Any,
) -> DeliveryChannel:
    """An instance of the channel ``key``; ``factories`` go to its constructor (tests)."""
    return channel_class(key)(settings=settings, secrets=secrets, **factories)  # type: ignore[call-arg]


class ChannelSet:
    """One channel instance per class for a run; ``async with`` closes every connection."""

    def __init__(self, *, settings: DispatchSettings, secrets: SecretResolver | None = None
                 ) -> None:
        self._settings = settings
        self._secrets = secrets
        self._open: dict[str, DeliveryChannel] = {}

    def get(self, key: str) -> DeliveryChannel:
        """The run's channel for ``key``; "ftp" and "ftps" share one instance."""
        shared = CHANNELS[key] if key in CHANNELS else key
        channel = self._open.get(shared)
        if channel is None:
            channel = open_channel(key, settings=self._settings, secrets=self._secrets)
            self._open[shared] = channel
        return channel

    def for_target(self, target: VendorB2B | VendorEmail | VendorFtp) -> DeliveryChannel:
        return self.get(channel_key(target))

    async def aclose(self) -> None:
        channels, self._open = self._open, {}
        for channel in channels.values():
            await channel.aclose()

    async def __aenter__(self) -> ChannelSet:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()
