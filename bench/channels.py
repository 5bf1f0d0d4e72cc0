"""Deliveries per second over loopback: each channel beside its bare library, same run.

    .venv/bin/python bench/channels.py [--n 200] [--rounds 3]

For every channel, 200 documents go to a stand-in server on 127.0.0.1 (real sshd and
vsftpd when root), once through the channel and once through the bare library over one
connection with the same bytes. Rounds alternate bare/channel; the median round is shown.

"bare" is the least the library must do to put the bytes there (HTTP POST; SFTP/FTP
upload; SMTP transaction of prebuilt bytes). "bare+" adds the protocol steps the channel
takes for its guarantees (existence check, temporary name + rename, size read back; for
email, building the MIME message), so the ratio against it shows the channel's own cost.
"""

from __future__ import annotations

import argparse
import asyncio
import ftplib
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiosmtplib
import httpx
import paramiko

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dispatch.channels import Envelope, open_channel  # noqa: E402
from dispatch.channels.base import connect_tcp  # noqa: E402
from dispatch.channels.ftp import ReusingFTP_TLS  # noqa: E402
from dispatch.channels.sftp import parse_host_key  # noqa: E402
from dispatch.channels.smtp import build_message  # noqa: E402
from dispatch.demo.vendors import (  # noqa: E402
    make_test_certificates,
    start_b2b_standin,
    start_ftp_standin,
    start_sftp_standin,
    start_smtp_standin,
    start_vsftpd_standin,
    vsftpd_usable,
)
from dispatch.documents.b2b_line import B2BLine, submit_document  # noqa: E402
from dispatch.documents.base import Document  # noqa: E402
from dispatch.reference_data import VendorEmail  # noqa: E402
from dispatch.settings import DispatchSettings  # noqa: E402

XML = ("<?xml version='1.0'?><PurchaseOrder id='PO{n}'>"
       + "<Line item='DRILL-5' qty='10' unit='box'>Drill bit 5 mm</Line>" * 60
       + "</PurchaseOrder>")
PASSWORD = "bench-password"
SECRETS = {"BENCH_FTP_PASSWORD": PASSWORD}.get


def documents(n: int, tag: str) -> list[Document]:
    return [Document(f"PO{tag}{i}_purchase_1.xml", XML.format(n=i).encode(), "application/xml",
                     "XML") for i in range(n)]


async def timed(run: Callable[[str], Awaitable[None]], tag: str, n: int) -> float:
    start = time.perf_counter()
    await run(tag)
    return n / (time.perf_counter() - start)


# --- per channel: (bare, bare+, channel) coroutines ------------------------------------

def b2b_runs(server, n: int):  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    target = server.vendor_b2b()
    url = server.url + "/api/external/purchaseorders/submit"

    def lines(tag: str) -> list[Document]:
        return [submit_document(B2BLine(f"PO{tag}{i}/POI1", 3, 120045, now,
                                        now + timedelta(days=14))) for i in range(n)]

    async def bare(tag: str) -> None:
        async with httpx.AsyncClient(trust_env=False) as client:
            for i, doc in enumerate(lines(tag)):
                response = await client.post(url, content=doc.content, headers={
                    "Content-Type": "application/json", "Idempotency-Key": f"{tag}{i}"})
                response.raise_for_status()

    async def channel(tag: str) -> None:
        ch = open_channel("b2b", settings=DispatchSettings(), secrets=SECRETS)
        for i, doc in enumerate(lines(tag)):
            await ch.send(target, [doc], Envelope(f"{tag}{i}"))
        await ch.aclose()

    return bare, None, channel


def sftp_runs(server, n: int):  # type: ignore[no-untyped-def]
    target = server.vendor_ftp("inbox")
    directory = server.remote_path("inbox")

    def connect() -> tuple[paramiko.SSHClient, paramiko.SFTPClient]:
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        key = parse_host_key(target.host_key or "")
        client.get_host_keys().add(f"[127.0.0.1]:{server.port}", key.get_name(), key)
        client.connect("127.0.0.1", server.port, username=server.username,
                       key_filename=target.key_file, sock=connect_tcp("127.0.0.1", server.port,
                                                                      30),
                       allow_agent=False, look_for_keys=False)
        return client, client.open_sftp()

    def bare_sync(tag: str, plus: bool) -> None:
        client, sftp = connect()
        for doc in documents(n, tag):
            final = f"{directory}/{doc.name}"
            if plus:
                try:
                    sftp.stat(final)
                except FileNotFoundError:
                    pass
                sftp.putfo(io.BytesIO(doc.content), f"{directory}/.{doc.name}.part",
                           confirm=False)
                sftp.posix_rename(f"{directory}/.{doc.name}.part", final)
                sftp.stat(final)
            else:
                sftp.putfo(io.BytesIO(doc.content), final, confirm=False)
        client.close()

    async def channel(tag: str) -> None:
        ch = open_channel("sftp", settings=DispatchSettings(), secrets=SECRETS)
        for doc in documents(n, tag):
            await ch.send(target, [doc], Envelope(doc.name))
        await ch.aclose()

    return (lambda tag: asyncio.to_thread(bare_sync, tag, False),
            lambda tag: asyncio.to_thread(bare_sync, tag, True), channel)


def ftp_runs(server, n: int, key: str):  # type: ignore[no-untyped-def]
    tls = key != "ftp"
    extra = {"password_env": "BENCH_FTP_PASSWORD"} if hasattr(server, "password") else {}
    target = server.vendor_ftp("inbox", **extra)
    user = getattr(server, "username", "anonymous")
    password = getattr(server, "password", "anonymous@")

    def bare_sync(tag: str, plus: bool) -> None:
        if tls:
            import ssl

            ftp: ftplib.FTP = ReusingFTP_TLS(
                context=ssl.create_default_context(cafile=str(server.certificates.ca_file)))
        else:
            ftp = ftplib.FTP()
        ftp.connect("127.0.0.1", server.port)
        ftp.login(user, password)
        if isinstance(ftp, ftplib.FTP_TLS):
            ftp.prot_p()
        ftp.voidcmd("TYPE I")
        for doc in documents(n, tag):
            final = f"/inbox/{doc.name}"
            if plus:
                try:
                    ftp.size(final)
                except ftplib.error_perm:
                    pass
                ftp.storbinary(f"STOR /inbox/.{doc.name}.part", io.BytesIO(doc.content))
                ftp.rename(f"/inbox/.{doc.name}.part", final)
                ftp.size(final)
            else:
                ftp.storbinary(f"STOR {final}", io.BytesIO(doc.content))
        ftp.quit()

    async def channel(tag: str) -> None:
        ch = open_channel(key, settings=DispatchSettings(), secrets=SECRETS)
        for doc in documents(n, tag):
            await ch.send(target, [doc], Envelope(doc.name))
        await ch.aclose()

    return (lambda tag: asyncio.to_thread(bare_sync, tag, False),
            lambda tag: asyncio.to_thread(bare_sync, tag, True), channel)


def smtp_runs(server, n: int):  # type: ignore[no-untyped-def]
    settings = DispatchSettings(**server.settings_overrides())
    vendor = VendorEmail(to=["orders@acme.test"])
    sender = settings.smtp_sender

    def message_bytes(doc: Document, tag: str) -> bytes:
        return build_message(sender=sender, target=vendor, documents=[doc],
                             envelope=Envelope(tag, "PO1"), message_id=f"<{tag}@b>").as_bytes()

    async def bare_run(tag: str, plus: bool) -> None:
        docs = documents(n, tag)
        prebuilt = [] if plus else [message_bytes(d, f"{tag}{i}") for i, d in enumerate(docs)]
        smtp = aiosmtplib.SMTP(hostname=server.host, port=server.port, start_tls=False)
        await smtp.connect()
        for i, doc in enumerate(docs):
            data = message_bytes(doc, f"{tag}{i}") if plus else prebuilt[i]
            await smtp.sendmail(sender, vendor.to, data)
        await smtp.quit()

    async def channel(tag: str) -> None:
        ch = open_channel("email", settings=settings)
        for i, doc in enumerate(documents(n, tag)):
            await ch.send(vendor, [doc], Envelope(f"{tag}{i}", "PO1"))
        await ch.aclose()

    return (lambda tag: bare_run(tag, False), lambda tag: bare_run(tag, True), channel)


async def measure(name: str, runs, n: int, rounds: int) -> dict[str, object]:  # type: ignore[no-untyped-def]
    bare, plus, channel = runs
    results: dict[str, list[float]] = {"bare": [], "bare+": [], "channel": []}
    for r in range(rounds):
        results["bare"].append(await timed(bare, f"b{r}x", n))
        if plus is not None:
            results["bare+"].append(await timed(plus, f"p{r}x", n))
        results["channel"].append(await timed(channel, f"c{r}x", n))
    row: dict[str, object] = {"name": name}
    for label, values in results.items():
        row[label] = round(statistics.median(values)) if values else None
    row["ratio"] = round(row["channel"] / row["bare"], 2)  # type: ignore[operator]
    if row["bare+"]:
        row["ratio+"] = round(row["channel"] / row["bare+"], 2)  # type: ignore[operator]
    return row


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print rows as JSON")
    args = parser.parse_args()
    n, rounds = args.n, args.rounds
    work = Path(tempfile.mkdtemp(prefix="bench-channels-"))
    certs = make_test_certificates(work / "tls")
    rows = []
    for sub in ("sftp", "ftp", "ftps", "vsftpd"):
        (work / sub / "inbox").mkdir(parents=True)
    with start_b2b_standin() as b2b:
        rows.append(await measure("b2b (httpx)", b2b_runs(b2b, n), n, rounds))
    with start_sftp_standin(work / "sftp") as sftp:
        rows.append(await measure(f"sftp (paramiko → {sftp.kind})", sftp_runs(sftp, n), n,
                                  rounds))
    with start_ftp_standin(work / "ftp", password=PASSWORD) as ftp:
        rows.append(await measure("ftp (ftplib → pyftpdlib)", ftp_runs(ftp, n, "ftp"), n,
                                  rounds))
    with start_ftp_standin(work / "ftps", certificates=certs, password=PASSWORD) as ftps:
        rows.append(await measure("ftps (ftplib → pyftpdlib)", ftp_runs(ftps, n, "ftps"), n,
                                  rounds))
    if vsftpd_usable():
        with start_vsftpd_standin(work / "vsftpd", certificates=certs) as vs:
            rows.append(await measure("ftps (ftplib → vsftpd)", ftp_runs(vs, n, "ftps"), n,
                                      rounds))
    with start_smtp_standin() as smtp:
        rows.append(await measure("email (aiosmtplib → aiosmtpd)", smtp_runs(smtp, n), n,
                                  rounds))
    if args.json:
        print(json.dumps(rows, indent=1))
    print(f"\n{n} documents of {len(XML.format(n=0))} bytes per run, median of {rounds} "
          f"rounds; {platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, {platform.platform()}\n")
    print("| channel | bare /s | bare+ /s | channel /s | channel ÷ bare | channel ÷ bare+ |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['name']} | {row['bare']} | {row['bare+'] or '–'} | {row['channel']} "
              f"| {row['ratio']} | {row.get('ratio+', '–')} |")


if __name__ == "__main__":
    asyncio.run(main())
