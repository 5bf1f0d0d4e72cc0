"""File intake (SPEC 8 "Files") against the real stand-in servers, on SQLite and PostgreSQL:
ACME's inbox on the SFTP stand-in (OpenSSH sshd when root, else asyncssh), BOLT's on
pyftpdlib FTP. Each file is recorded, then moved to processed/ or failed/ (+ .error.txt);
hostile files go to failed/ unexpanded; nothing is recorded twice.

Unmatched documents go to failed/ with the problem beside them and stay in the database as
unmatched (as the HTTP intake's 422 keeps them)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from dispatch.demo.vendors import FtpStandin, start_ftp_standin
from dispatch.models import utcnow
from dispatch.reference_data import parse_reference_text
from dispatch.responses.collect import InboxReport, collect_inboxes
from dispatch.store import responses as store
from dispatch.store.engine import reading
from dispatch.store.reference import upsert_reference_data
from tests.conftest import TEMPLATES_DIR
from tests.dispatching.conftest import Env, all_channels_order
from tests.responses.conftest import delivered_order
from tests.responses.documents import ORDER_RESPONSE, SC1, SC2, cxml, peppol
from tests.responses.test_http_intake import BILLION_LAUGHS, XXE

MAX_BYTES = 64 * 1024
FTP_PASSWORD = "bolt-ftp-secret-3e1"


@pytest.fixture
def ftp_server(tmp_path: Path) -> Iterator[FtpStandin]:
    (tmp_path / "ftp" / "responses").mkdir(parents=True)
    with start_ftp_standin(tmp_path / "ftp", password=FTP_PASSWORD) as server:
        yield server


@pytest.fixture
def inboxes(env: Env, ftp_server: FtpStandin, monkeypatch: pytest.MonkeyPatch) -> Env:
    """ACME answers in an SFTP folder ``responses``, BOLT in an FTP folder ``responses``."""
    monkeypatch.setenv("BOLT_FTP_PASSWORD", FTP_PASSWORD)
    sftp = env.world.sftp
    (sftp.root / "responses").mkdir()
    data = env.world.reference_data_dict()
    for vendor in data["vendors"]:
        if vendor["id"] == "ACME":
            vendor["responses"] = {"inbox": sftp.vendor_ftp("responses").url, "within": "1h"}
        if vendor["id"] == "BOLT":
            ftp = ftp_server.vendor_ftp("orders", password_env="BOLT_FTP_PASSWORD")
            vendor["ftp"] = ftp.model_dump(mode="json", exclude_none=True)
            vendor["responses"] = {"inbox": ftp_server.vendor_ftp("responses").url}
    upsert_reference_data(env.engine, parse_reference_text(yaml.safe_dump(data), "test"),
                          source="test", templates_dir=TEMPLATES_DIR)
    return env


def sftp_inbox(env: Env) -> Path:
    return env.world.sftp.root / "responses"


def collect(env: Env) -> dict[str, InboxReport]:
    reports = collect_inboxes(env.engine, max_bytes=MAX_BYTES, now=utcnow)
    return {r.vendor_id: r for r in reports}


def tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def acme_order(env: Env) -> tuple[str, list[str]]:
    return delivered_order(env, all_channels_order(PurchaseOrderItems=[
        {"ItemId": "DRILL-5", "TotalQuantity": 10}, {"ItemId": "DRILL-8", "TotalQuantity": 4},
        {"ItemId": "GLOVE-L", "TotalQuantity": 6}]))


def test_sftp_inbox_records_moves_and_refuses_hostile_files(inboxes: Env) -> None:
    env = inboxes
    order_id, lines = acme_order(env)
    inbox = sftp_inbox(env)
    answer = peppol(ORDER_RESPONSE, order_id=order_id, line_ids=lines)
    files: dict[str, bytes] = {
        "answer.xml": answer,
        "unmatched.xml": peppol(SC1, order_id="NoSuchOrder", line_ids=lines),
        "laughs.xml": BILLION_LAUGHS,
        "xxe.xml": XXE,
        "notes.txt": b"not xml at all",
        "huge.xml": b"<OrderResponse>" + b" " * (MAX_BYTES + 1) + b"</OrderResponse>",
        ".upload.xml.part": b"<still being written",  # a vendor's unfinished upload
    }
    for name, data in files.items():
        (inbox / name).write_bytes(data)

    report = collect(env)["ACME"]
    assert report.error is None
    outcome = {f.name: (f.folder, f.status) for f in report.files}
    assert outcome == {
        "answer.xml": ("processed", "ConditionallyAccepted"),
        "unmatched.xml": ("failed", "Unmatched"),
        "laughs.xml": ("failed", None), "xxe.xml": ("failed", None),
        "notes.txt": ("failed", None), "huge.xml": ("failed", None)}
    assert tree(inbox) == sorted([
        ".upload.xml.part", "processed/answer.xml",
        *(f"failed/{n}" for n in ("unmatched.xml", "laughs.xml", "xxe.xml", "notes.txt",
                                  "huge.xml")),
        *(f"failed/{n}.error.txt" for n in ("unmatched.xml", "laughs.xml", "xxe.xml",
                                            "notes.txt", "huge.xml"))])
    assert (inbox / "processed" / "answer.xml").read_bytes() == answer
    said = {n: (inbox / "failed" / f"{n}.error.txt").read_text()
            for n in ("unmatched.xml", "laughs.xml", "xxe.xml", "notes.txt", "huge.xml")}
    assert "OrderReference/ID: no purchase order 'NoSuchOrder'" in said["unmatched.xml"]
    assert "kept as unmatched" in said["unmatched.xml"]
    assert "ENTITY" in said["laughs.xml"] and "ENTITY" in said["xxe.xml"]
    assert "lollol" not in said["laughs.xml"] and "root:" not in said["xxe.xml"]
    assert "not well-formed" in said["notes.txt"]
    assert f"more than DISPATCH_MAX_BODY_BYTES ({MAX_BYTES})" in said["huge.xml"]

    detail = env.api.order(order_id)
    assert detail["Response"]["Status"] == "ConditionallyAccepted"
    assert detail["PurchaseOrderItems"][0]["ResponseStatus"] is not None
    with reading(env.engine) as conn:
        kept = store.list_responses(conn)
    assert sorted((r.source, r.matched) for r in kept) == [
        ("file:answer.xml", True), ("file:unmatched.xml", False)]

    # Nothing left to do; the same document dropped again is moved, not recorded again.
    assert collect(env)["ACME"].files == []
    (inbox / "answer.xml").write_bytes(answer)
    again = collect(env)["ACME"].files
    assert [(f.name, f.folder, f.new) for f in again] == [("answer.xml", "processed", False)]
    assert again[0].moved_to.endswith(f"processed/answer.xml.{again[0].moved_to[-12:]}")
    with reading(env.engine) as conn:
        assert len(store.list_responses(conn)) == 2


def test_ftp_inbox_with_the_ftp_entrys_password(inboxes: Env, ftp_server: FtpStandin
                                                ) -> None:
    env = inboxes
    order_id, lines = delivered_order(env, {
        "VendorId": "BOLT", "StockName": "Main", "DeviceId": "DEV-1", "Status": "Active",
        "SendOptions": {"Channel": {"IsEmail": True}, "Email": {"IsXml": True}},
        "PurchaseOrderItems": [{"ItemId": "DRILL-5", "TotalQuantity": 10}]})
    inbox = ftp_server.root / "responses"
    (inbox / "bolt-answer.xml").write_bytes(
        cxml("accept", order_id=order_id, items=[(1, 10, "accept", "2030-01-02")]))
    (inbox / "short.xml").write_bytes(peppol(SC2, order_id="NoSuchOrder"))
    report = collect(env)["BOLT"]
    assert report.error is None, report.error
    assert {f.name: (f.folder, f.status) for f in report.files} == {
        "bolt-answer.xml": ("processed", "Accepted"), "short.xml": ("failed", "Unmatched")}
    assert tree(inbox) == ["failed/short.xml", "failed/short.xml.error.txt",
                           "processed/bolt-answer.xml"]
    line = env.api.order(order_id)["PurchaseOrderItems"][0]
    assert (line["ResponseStatus"], line["PromisedDate"]) == ("Accepted", "2030-01-02")
    assert FTP_PASSWORD not in repr(report)


def test_a_wrong_host_key_leaves_the_files_where_they_are(inboxes: Env) -> None:
    env = inboxes
    data: dict[str, Any] = env.world.reference_data_dict()
    other = env.world.sftp.client_key.public_line  # a key, but not the server's
    for vendor in data["vendors"]:
        if vendor["id"] == "ACME":
            vendor["ftp"]["host_key"] = other
            vendor["responses"] = {"inbox": env.world.sftp.vendor_ftp("responses").url}
    upsert_reference_data(env.engine, parse_reference_text(yaml.safe_dump(data), "test"),
                          source="test", templates_dir=TEMPLATES_DIR)
    (sftp_inbox(env) / "answer.xml").write_bytes(b"<x/>")
    report = collect(env)["ACME"]
    assert report.files == []
    assert report.error is not None and "host key" in report.error
    assert tree(sftp_inbox(env)) == ["answer.xml"]
