"""Prefect settings this project needs on every machine it runs on."""

from __future__ import annotations

import os
from collections.abc import MutableMapping


def quiet_prefect_defaults(env: MutableMapping[str, str] = os.environ) -> None:
    """Offline machine: no telemetry attempts filling the logs. And Prefect's temporary API
    server gets 120 s to start, not 20: its first start in a new PREFECT_HOME creates the
    database, which took longer than 20 s on a busy 2-core machine (the service would then
    run without its dispatcher)."""
    env.setdefault("DO_NOT_TRACK", "1")
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    env.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
