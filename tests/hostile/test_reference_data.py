"""Hostile reference data (SPEC 9): odd ids, '..' in FTP paths, secrets written into the file.

Each refusal names the entry and the field, and nothing of the file is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from dispatch.errors import ReferenceDataError
from dispatch.reference_data import parse_reference_text
from dispatch.store.engine import make_engine
from dispatch.store.reference import load_snapshot, upsert_reference_data
from tests.conftest import TEMPLATES_DIR


def problems_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ReferenceDataError) as caught:
        parse_reference_text(yaml.safe_dump(data), "hostile.yaml")
    return caught.value.problems


def vendor(**fields: Any) -> dict[str, Any]:
    return {"id": "ACME", "name": "ACME Tools", **fields}


@pytest.mark.parametrize(("section", "entry", "field", "value", "says"), [
    ("vendors", {"name": "V"}, "id", "AC\r\nME", "control character U+000D"),
    ("vendors", {"name": "V"}, "id", "ACME\x00", "control character U+0000"),
    ("vendors", {"name": "V"}, "id", "AC/ME", "contains '/'"),
    ("vendors", {"name": "V"}, "id", " ACME", "white space"),
    ("vendors", {"name": "V"}, "id", "ACME\t", "control character U+0009"),
    ("stocks", {}, "name", "Main ", "white space"),
    ("devices", {"stock": "Main"}, "id", "DEV/1", "contains '/'"),
    ("devices", {"id": "DEV-1"}, "stock", "Ma\nin", "control character U+000A"),
    ("items", {"name": "i", "unit": "pc"}, "id", "../ITEM", "contains '/'"),
    ("templates", {"format": "PDF", "file": "pdf/standard.yaml"}, "name", "t\x1b[31m",
     "control character U+001B"),
    ("locations", {"locationName": "L", "addressLine1": "a", "city": "c", "province": "p",
                   "countryTitle": "c", "zipCode": "1"}, "id", "SITE\u0085", "U+0085"),
])
def test_odd_ids_are_refused_naming_entry_and_field(
        section: str, entry: dict[str, Any], field: str, value: str, says: str) -> None:
    problems = problems_of({section: [{**entry, field: value}]})
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{section}[0]") and f".{field}: " in problems[0], problems
    assert says in problems[0]


def test_item_vendor_keys_are_ids_too() -> None:
    problems = problems_of({"items": [{"id": "I", "name": "i", "unit": "pc",
                                       "vendors": {"AC/ME": {}}}]})
    assert problems and problems[0].startswith("items[0] (I).vendors.AC/ME")
    assert "contains '/'" in problems[0]


@pytest.mark.parametrize("url", [
    "sftp://acme@127.0.0.1:2222/inbox/../../etc",
    "ftp://acme@127.0.0.1/../outbox",
    "ftps://acme@127.0.0.1/in/%2e%2e/x",
    "sftp://acme@127.0.0.1/..",
])
def test_ftp_urls_with_dot_dot_segments_are_refused(url: str) -> None:
    problems = problems_of({"vendors": [vendor(ftp={"url": url})]})
    assert len(problems) == 1 and problems[0].startswith("vendors[0] (ACME).ftp.url: "), problems
    assert "'..' segment" in problems[0]


def test_dots_inside_a_name_are_fine() -> None:
    data = parse_reference_text(yaml.safe_dump({"vendors": [vendor(
        ftp={"url": "sftp://acme@127.0.0.1/in..box/a..b"})]}), "ok.yaml")
    assert data.vendors[0].ftp is not None


@pytest.mark.parametrize("url", ["sftp://acme@127.0.0.1/in%0d%0aDELE%20x",
                                 "http://127.0.0.1:8081/\r\nX: y"])
def test_urls_with_control_characters_are_refused(url: str) -> None:
    key = "ftp" if url.startswith("sftp") else "b2b"
    problems = problems_of({"vendors": [vendor(**{key: {"url": url}})]})
    assert problems and problems[0].startswith(f"vendors[0] (ACME).{key}.url: ")
    assert "control character" in problems[0]


@pytest.mark.parametrize(("fields", "where", "fix"), [
    ({"b2b": {"url": "http://127.0.0.1:8081", "api_key": "Sup3rS3cretValue"}},
     "b2b.api_key", "api_key_env: ACME_API_KEY"),
    ({"ftp": {"url": "sftp://acme@127.0.0.1/in", "password": "Sup3rS3cretValue"}},
     "ftp.password", "password_env: ACME_PASSWORD"),
    ({"responses": {"key_env": "K", "extra": {"client_secret": "Sup3rS3cretValue"}}},
     "responses.extra.client_secret", "client_secret_env"),
    ({"portal": [{"Token": "Sup3rS3cretValue"}]}, "portal[0].Token", "token_env"),
    ({"secret": "Sup3rS3cretValue"}, "secret", "secret_env"),
])
def test_keys_that_look_like_literal_secrets_are_refused(
        fields: dict[str, Any], where: str, fix: str) -> None:
    problems = problems_of({"vendors": [vendor(**fields)]})
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"vendors[0] (ACME).{where}: looks like a secret"), problems
    assert fix in problems[0]
    assert "Sup3rS3cretValue" not in problems[0]


def test_env_names_and_host_keys_are_not_mistaken_for_secrets() -> None:
    data = parse_reference_text(yaml.safe_dump({"vendors": [vendor(
        b2b={"url": "http://127.0.0.1:8081", "api_key_env": "ACME_B2B_KEY"},
        ftp={"url": "sftp://acme@127.0.0.1/in", "password_env": "ACME_PW",
             "key_file": "k", "host_key": "ssh-ed25519 AAAA"},
        responses={"key_env": "ACME_RESPONSE_KEY"}, tokens_issued=3)]}), "ok.yaml")
    assert data.vendors[0].b2b is not None


def test_every_problem_is_listed_and_nothing_is_written(tmp_path: Path) -> None:
    raw = {"vendors": [vendor(id="GOOD"), vendor(id="B/AD", api_key="x")],
           "stocks": [{"name": "Main"}]}
    problems = problems_of(raw)
    assert [p.split(":")[0] for p in problems] == ["vendors[1] (B/AD).api_key",
                                                  "vendors[1] (B/AD).id"], problems
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with pytest.raises(ReferenceDataError):
        upsert_reference_data(engine, parse_reference_text(yaml.safe_dump(raw), "x.yaml"),
                              source="x.yaml", templates_dir=TEMPLATES_DIR)
    assert load_snapshot(engine).vendors == {}
