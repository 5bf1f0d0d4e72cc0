"""The rendered document: what a renderer returns and a channel sends."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Document:
    """Bytes of one rendered document with its file name and media type."""

    name: str
    content: bytes
    media_type: str
    format: str  # "XML" | "PDF" | "Excel"
    sha256: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha256", hashlib.sha256(self.content).hexdigest())

    @property
    def size(self) -> int:
        return len(self.content)
