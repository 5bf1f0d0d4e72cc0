"""Prefect flows run in-process against a temporary Prefect API (the harness lives here
only, so the rest of the suite does not pay its start-up)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from prefect.testing.utilities import prefect_test_harness  # noqa: E402

from dispatch.orchestration import runtime  # noqa: E402
from tests.dispatching.conftest import Env, env, world  # noqa: E402,F401 - fixtures


@pytest.fixture(scope="session", autouse=True)
def prefect_api() -> Iterator[None]:
    with prefect_test_harness(server_startup_timeout=60):
        yield


@pytest.fixture
def installed(env: Env) -> Iterator[Env]:  # noqa: F811
    runtime.install(runtime.Runtime(env.settings, env.engine))
    yield env
    runtime.install(None)
