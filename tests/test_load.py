"""`dispatch load`: YAML/JSON, errors naming entry and field, upsert (the store's side of it,
all-or-nothing and cross-references, is tests/store/test_reference.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from dispatch import models
from dispatch.errors import ReferenceDataError
from dispatch.reference_data import parse_reference_text, read_reference_file
from dispatch.store.engine import make_engine, reading
from dispatch.store.reference import load_snapshot, upsert_reference_data
from tests.conftest import ROOT, SAMPLE, TEMPLATES_DIR


def _load(engine, data: dict, templates_dir: Path = TEMPLATES_DIR) -> dict:
    parsed = parse_reference_text(yaml.safe_dump(data), "test.yaml")
    return upsert_reference_data(engine, parsed, source="test.yaml", templates_dir=templates_dir)


def _count(engine, table) -> int:
    with reading(engine) as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_cli_loads_the_sample_and_upserts(db_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "DISPATCH_DATABASE_URL": db_url,
           "DISPATCH_TEMPLATES_DIR": str(TEMPLATES_DIR)}
    cmd = [sys.executable, "-m", "dispatch", "load", str(SAMPLE)]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    assert first.returncode == 0, first.stderr
    assert "3 vendors" in first.stdout and "4 items" in first.stdout
    data = yaml.safe_load(SAMPLE.read_text())
    data["vendors"][0]["name"] = "ACME Renamed"
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(data))
    second = subprocess.run([*cmd[:-1], str(changed)], env=env, capture_output=True, text=True,
                            cwd=ROOT)
    assert second.returncode == 0, second.stderr
    engine = make_engine(db_url)
    snapshot = load_snapshot(engine)
    assert set(snapshot.vendors) == {"ACME", "BOLT", "CRANE"}
    assert _count(engine, models.Vendor.__table__) == 3
    with reading(engine) as conn:
        name = conn.execute(select(models.Vendor.__table__.c.name)
                            .where(models.Vendor.__table__.c.id == "ACME")).scalar_one()
    assert name == "ACME Renamed"
    assert snapshot.items["DRILL-5"].vendors["ACME"].atelier_code == 120045
    assert snapshot.devices["DEV-7"] == "Plant7"


def test_cli_error_names_entry_and_field_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("vendors:\n  - id: ACME\n    name: ''\n    ftp: {url: 'http://x'}\n")
    env = {**os.environ, "DISPATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    run = subprocess.run([sys.executable, "-m", "dispatch", "load", str(bad)], env=env,
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 2
    assert "vendors[0] (ACME).name:" in run.stderr
    assert "vendors[0] (ACME).ftp.url: Value error, scheme must be sftp://, ftp:// or ftps://" \
        in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize(("entry", "message"), [
    ({"name": "t", "format": "PDF", "file": "../secrets.yaml"},
     "templates[0] (t).file: Value error, must be a path under the templates directory"),
    ({"name": "t", "format": "PDF", "file": "/etc/passwd"},
     "templates[0] (t).file: Value error, must be a path under the templates directory"),
    ({"name": "t", "format": "PDF", "file": "pdf/missing.yaml"},
     "templates[0] (t).file: 'pdf/missing.yaml' does not exist under"),
    ({"name": "t", "format": "Word", "file": "x.docx"},
     "templates[0] (t).format: Input should be 'PDF', 'Excel' or 'XML'"),
])
def test_template_entries_are_checked(tmp_path: Path, entry: dict, message: str) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with pytest.raises(ReferenceDataError) as err:
        _load(engine, {"templates": [entry]}, templates_dir=tmp_path)
    assert any(p.startswith(message) for p in err.value.problems), err.value.problems


def test_symlink_escaping_the_templates_dir_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text("x: 1")
    tdir = tmp_path / "templates"
    tdir.mkdir()
    (tdir / "link.yaml").symlink_to(outside)
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with pytest.raises(ReferenceDataError) as err:
        _load(engine, {"templates": [{"name": "t", "format": "PDF", "file": "link.yaml"}]},
              templates_dir=tdir)
    assert "is outside the templates directory" in err.value.problems[0]


def test_duplicates_and_unknown_sections(tmp_path: Path) -> None:
    with pytest.raises(ReferenceDataError) as err:
        parse_reference_text("vendorz: []\n", "f.yaml")
    assert err.value.problems[0].startswith("vendorz: unknown section")
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with pytest.raises(ReferenceDataError) as err2:
        _load(engine, {"stocks": [{"name": "A"}, {"name": "A"}]})
    assert err2.value.problems == ["stocks[1] (A).name: appears twice in the file"]


def test_secrets_are_refused_in_urls_and_only_env_names_kept() -> None:
    with pytest.raises(ReferenceDataError) as err:
        parse_reference_text(
            "vendors:\n - {id: V, name: V, ftp: {url: 'sftp://u:hunter2@127.0.0.1/in'}}\n",
            "f.yaml")
    assert "must not contain a password" in err.value.problems[0]
    assert "hunter2" not in str(err.value)


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ReferenceDataError, match="cannot read the file"):
        read_reference_file(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("vendors: [\n")
    with pytest.raises(ReferenceDataError, match="not valid YAML/JSON"):
        read_reference_file(broken)
