"""Throwaway SSH keys (ed25519, OpenSSH format) for stand-in servers and their clients."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


@dataclass(frozen=True)
class SshKey:
    """A private key file and its public ``ssh-ed25519 AAAA...`` line."""

    private_file: Path
    public_line: str


def make_ssh_key(path: Path, comment: str = "dispatch-standin") -> SshKey:
    """Write an ed25519 private key to ``path`` (0600) and ``path.pub``; ~1 ms."""
    key = Ed25519PrivateKey.generate()
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.OpenSSH,
                                       serialization.NoEncryption()))
    path.chmod(0o600)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    line = f"{public} {comment}"
    path.with_name(path.name + ".pub").write_text(line + "\n")
    return SshKey(path, line)
