"""DISPATCH_* settings: defaults, parsing, and start-up errors naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from dispatch.errors import SettingsError
from dispatch.settings import DEFAULT_TEMPLATES_DIR, load_settings
from tests.conftest import ROOT


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("DISPATCH_"):
            monkeypatch.delenv(name)


def test_defaults() -> None:
    s = load_settings()
    assert s.database_url == "sqlite:///dispatch.db"
    assert s.templates_dir == DEFAULT_TEMPLATES_DIR
    assert s.retry_delays == [5, 30, 120, 600]
    assert s.b2b_delivery_window_days == 14 and s.smtp_security == "none"


def test_values_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPATCH_API_KEYS", " k1, k2 ,")
    monkeypatch.setenv("DISPATCH_RETRY_DELAYS", "1,2.5")
    monkeypatch.setenv("DISPATCH_SMTP_SECURITY", "starttls")
    monkeypatch.setenv("DISPATCH_DATABASE_URL", "postgresql://postgres@127.0.0.1/x")
    s = load_settings()
    assert s.api_key_values() == {"k1", "k2"}
    assert s.retry_delays == [1, 2.5]
    assert s.database_url == "postgresql+psycopg://postgres@127.0.0.1/x"
    assert "k1" not in repr(s)  # secrets are masked


def test_render_processes_auto_is_one_per_core_this_process_may_use(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPATCH_RENDER_PROCESSES", "auto")
    assert load_settings().render_processes == len(os.sched_getaffinity(0))
    monkeypatch.setenv("DISPATCH_RENDER_PROCESSES", "3")
    assert load_settings().render_processes == 3


@pytest.mark.parametrize(("name", "value"), [
    ("DISPATCH_RENDER_PROCESSES", "many"),
    ("DISPATCH_SMTP_PORT", "70000"),
    ("DISPATCH_SMTP_PORT", "abc"),
    ("DISPATCH_SMTP_SECURITY", "ssl"),
    ("DISPATCH_RETRY_DELAYS", "5,-1"),
    ("DISPATCH_RETRY_DELAYS", "5,soon"),
    ("DISPATCH_B2B_DELIVERY_WINDOW_DAYS", "0"),
    ("DISPATCH_DATABASE_URL", "mysql://x"),
])
def test_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, name: str,
                                      value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert name in str(err.value)


def test_serve_refuses_to_start_with_a_bad_variable() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCH_")}
    env["DISPATCH_SMTP_PORT"] = "99999"
    run = subprocess.run([sys.executable, "-m", "dispatch", "serve"], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert "DISPATCH_SMTP_PORT" in run.stderr and "Traceback" not in run.stderr


def test_serve_refuses_to_start_without_api_keys(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCH_")}
    env["DISPATCH_DATABASE_URL"] = f"sqlite:///{tmp_path / 'x.db'}"
    run = subprocess.run([sys.executable, "-m", "dispatch", "serve"], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "DISPATCH_API_KEYS" in run.stderr


def test_limits_have_spec_defaults_and_bounds() -> None:
    s = load_settings()
    assert (s.max_lines, s.max_body_bytes, s.client_timeout, s.max_document_bytes) == (
        2000, 4 * 1024 * 1024, 30.0, 20 * 1024 * 1024)
    for name, bad in [("max_lines", 0), ("max_body_bytes", 10), ("client_timeout", 0),
                      ("max_document_bytes", -1)]:
        with pytest.raises(SettingsError, match=f"DISPATCH_{name.upper()}"):
            load_settings(**{name: bad})
    fields = type(load_settings()).model_fields
    for name in ("max_lines", "max_body_bytes", "client_timeout", "max_document_bytes"):
        assert fields[name].description, name


def test_a_refused_secret_setting_is_named_never_shown() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(smtp_password="Hunter2-Zq\n")
    text = str(caught.value)
    assert "DISPATCH_SMTP_PASSWORD" in text and "line break" in text
    assert "Hunter2" not in text and caught.value.__context__ is None
