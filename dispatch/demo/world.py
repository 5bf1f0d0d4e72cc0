"""Local stand-in vendors on 127.0.0.1 (SMTP relay, SFTP server, B2B receiver) and the
sample reference data pointed at them: what `dispatch demo`, the tests and the dispatch
benchmark run against. Needs the test extras (aiosmtpd, asyncssh)."""

from __future__ import annotations

import copy
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from dispatch.demo.vendors import start_b2b_standin, start_sftp_standin, start_smtp_standin
from dispatch.reference_data import ReferenceData, parse_reference_text
from dispatch.settings import DEFAULT_TEMPLATES_DIR

SAMPLE_FILE = DEFAULT_TEMPLATES_DIR / "sample-refdata.yaml"
STANDARDS_FILE = DEFAULT_TEMPLATES_DIR / "sample-standards.yaml"  # vendor formats (SPEC 4)
B2B_KEY_ENVS = ("ACME_B2B_KEY", "CRANE_B2B_KEY")


class StandinWorld:
    """Starts the stand-ins; ``reference_data()`` is the sample with vendors wired to them."""

    def __init__(self, root: Path, *, b2b_api_key: str = "demo-b2b-key-7f3a") -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.b2b_api_key = b2b_api_key
        self.smtp = start_smtp_standin()
        try:
            self.sftp = start_sftp_standin(root / "sftp")
            (root / "sftp" / "inbox").mkdir(parents=True, exist_ok=True)
            self.b2b = start_b2b_standin(api_key=b2b_api_key)
        except BaseException:
            self.stop()
            raise

    @property
    def env(self) -> dict[str, str]:
        """Environment the dispatcher needs (the B2B API key, by its variable name)."""
        return {name: self.b2b_api_key for name in B2B_KEY_ENVS}

    def settings_overrides(self) -> dict[str, Any]:
        return self.smtp.settings_overrides()

    def reference_data_dict(self, file: Path = SAMPLE_FILE) -> dict[str, Any]:
        data = copy.deepcopy(yaml.safe_load(file.read_text(encoding="utf-8")))
        ftp = self.sftp.vendor_ftp("inbox").model_dump(mode="json", exclude_none=True)
        for vendor in data["vendors"]:
            if "ftp" in vendor:
                vendor["ftp"] = ftp
            if "b2b" in vendor:
                vendor["b2b"] = self.b2b.vendor_b2b(
                    vendor["b2b"].get("api_key_env")).model_dump(mode="json", exclude_none=True)
        return data

    def reference_data(self, file: Path = SAMPLE_FILE) -> ReferenceData:
        """``file`` (the sample, or ``STANDARDS_FILE``) with vendors wired to the stand-ins."""
        return parse_reference_text(yaml.safe_dump(self.reference_data_dict(file)),
                                    f"{file.stem} (stand-in vendors)")

    def inbox(self) -> Path:
        return self.root / "sftp" / "inbox"

    def stop(self) -> None:
        for name in ("b2b", "sftp", "smtp"):
            server = getattr(self, name, None)
            if server is not None:
                server.stop()

    def __enter__(self) -> StandinWorld:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
