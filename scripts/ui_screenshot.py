"""Screenshots of the Prefect UI showing the demo's flow runs and artifacts.

    .venv/bin/python scripts/ui_screenshot.py [--output demo-output] [--reuse] [--docs]

Runs ``dispatch demo --output DIR`` (or, with ``--reuse``, uses the existing DIR), starts
``prefect server start`` on a free 127.0.0.1 port with ``PREFECT_HOME=DIR/prefect`` (where
the demo stored its runs), takes headless Chromium screenshots of the flow runs page, of one
``dispatch-order`` flow run and of its table artifact into ``DIR/screenshots/``, and stops
the server. ``--docs`` also copies the runs page and the artifact to ``docs/`` for the
README. Needs Chromium (``apt-get install -y chromium``; or set CHROMIUM=/path/to/chrome).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DOCS_PAGES = ("prefect-ui-runs.png", "prefect-ui-artifact.png")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


def say(text: str) -> None:
    print(text, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def chromium() -> str:
    for candidate in (os.environ.get("CHROMIUM"), shutil.which("chromium"),
                      shutil.which("chromium-browser"), shutil.which("google-chrome")):
        if candidate:
            return candidate
    raise SystemExit("Chromium not found: apt-get install -y chromium (or set CHROMIUM=...)")


def prefect_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({"PREFECT_HOME": str(home), "DO_NOT_TRACK": "1",
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false"})
    return env


@contextlib.contextmanager
def prefect_server(home: Path, log: Path) -> Any:
    port = free_port()
    # The UI asks the API at PREFECT_UI_API_URL, which does not follow --port.
    env = dict(prefect_env(home), PREFECT_UI_API_URL=f"http://127.0.0.1:{port}/api")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port",
             str(port)], stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True, env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"prefect server exited {proc.returncode}; see {log}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/api/health", timeout=2, trust_env=False).is_success:
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"prefect server did not answer within 120 s; see {log}")
            time.sleep(0.3)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


class Browser:
    """Headless Chromium driven over the DevTools protocol, so that a screenshot is taken
    once the page shows what it should (the UI loads its data after the first paint)."""

    def __init__(self) -> None:
        self.profile = tempfile.TemporaryDirectory(prefix="chromium-")
        self.proc = subprocess.Popen(
            [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={self.profile.name}",
             "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
             "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        try:
            self._connect()
        except BaseException:
            self.close()
            raise
        self._id = 0

    def _connect(self) -> None:
        from websockets.sync.client import connect

        port_file = Path(self.profile.name) / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not port_file.exists() or not port_file.read_text().strip():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("Chromium did not start its DevTools endpoint")
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", trust_env=False).json()
        page = next(t for t in targets if t["type"] == "page")
        self.ws = connect(page["webSocketDebuggerUrl"], max_size=64 * 1024 * 1024,
                          proxy=None)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=60))
            if message.get("id") == self._id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))

    def text(self) -> str:
        result = self.call("Runtime.evaluate", returnByValue=True,
                           expression="document.body ? document.body.innerText : ''")
        return str(result.get("result", {}).get("value") or "")

    def screenshot(self, url: str, png: Path, *, width: int, height: int,
                   expect: list[str], timeout: float = 60) -> None:
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=False)
        self.call("Page.enable")
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        while True:
            text = self.text()
            missing = [e for e in expect if e not in text]
            if not missing:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"{url} does not show {missing} after {timeout:.0f} s")
            time.sleep(0.3)
        time.sleep(1.5)  # the last renders and fade-ins
        data = self.call("Page.captureScreenshot", format="png")["data"]
        png.write_bytes(base64.b64decode(data))
        say(f"  {png} ({png.stat().st_size // 1024} KiB): {url} shows {expect}")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ws.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the renderer and zygote processes too
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        self.profile.cleanup()


def pick_run(api: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A completed dispatch-order run with the most sends (the all-channels order), and
    its table artifact."""
    with httpx.Client(base_url=api, timeout=30, trust_env=False) as http:
        flows = http.post("/flows/filter", json={
            "flows": {"name": {"any_": ["dispatch-order"]}}}).json()
        if not flows:
            raise SystemExit("no dispatch-order flow in this PREFECT_HOME: run the demo first")
        runs = http.post("/flow_runs/filter", json={
            "flows": {"id": {"any_": [flows[0]["id"]]}},
            "flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}},
            "sort": "START_TIME_ASC"}).json()
        best: tuple[int, dict[str, Any], dict[str, Any]] | None = None
        for run in runs:
            artifacts = http.post("/artifacts/filter", json={
                "artifacts": {"flow_run_id": {"any_": [run["id"]]},
                              "type": {"any_": ["table"]}}}).json()
            for artifact in artifacts:
                rows = len(artifact.get("data") or [])
                if best is None or rows > best[0]:
                    best = (rows, run, artifact)
        if best is None:
            raise SystemExit("no completed dispatch-order run with a table artifact")
        return best[1], best[2]


def small_copy(src: Path, dst: Path) -> None:
    """A palette PNG for the repository (a third of the size, same look)."""
    try:
        from PIL import Image
    except ImportError:
        shutil.copyfile(src, dst)
        return
    with Image.open(src) as image:
        image.convert("RGB").quantize(colors=64).save(dst, optimize=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default="demo-output", help="demo output folder")
    parser.add_argument("--reuse", action="store_true",
                        help="use the existing demo output instead of running the demo")
    parser.add_argument("--docs", action="store_true", help="also copy the PNGs to docs/")
    args = parser.parse_args(argv)
    output = Path(args.output).resolve()
    home = output / "prefect"
    if not (args.reuse and (home / "prefect.db").exists()):
        say(f"- dispatch demo --output {output}")
        subprocess.run([str(BIN / "dispatch"), "demo", "--output", str(output)], check=True,
                       cwd=ROOT, env=prefect_env(home))
    shots = output / "screenshots"
    shots.mkdir(exist_ok=True)
    say(f"- prefect server start (PREFECT_HOME={home})")
    with prefect_server(home, output / "prefect-server.log") as url:
        run, artifact = pick_run(f"{url}/api")
        say(f"- screenshots of {url} (run {run['name']}, artifact {artifact['key']})")
        name = run["name"]
        pages = {  # file: (url, width, height, texts the page must show)
            "prefect-ui-runs.png": (f"{url}/runs", 1400, 1300, [name, "Completed"]),
            "prefect-ui-flow-run.png": (f"{url}/runs/flow-run/{run['id']}", 1400, 1000,
                                        [name, "delivered to", "Task runs"]),
            "prefect-ui-artifact.png": (f"{url}/artifacts/artifact/{artifact['id']}",
                                        2200, 700, [artifact["key"], "Delivered"]),
        }
        browser = Browser()
        try:
            for file, (page, width, height, expect) in pages.items():
                browser.screenshot(page, shots / file, width=width, height=height,
                                   expect=expect)
        finally:
            browser.close()
    if args.docs:
        docs = ROOT / "docs"
        docs.mkdir(exist_ok=True)
        for name in DOCS_PAGES:
            small_copy(shots / name, docs / name)
            say(f"  {docs / name} ({(docs / name).stat().st_size // 1024} KiB)")
    say("- server stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
