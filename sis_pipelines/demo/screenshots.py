"""``make screenshots``: the UI pages a data engineer looks at, as PNG files for a person to
look at, from the demo's instance (run ``make demo`` first).

Starts ``dagster-webserver`` on the demo's instance and workspace, and takes each page with
headless Chromium (Debian's ``chromium``, installed when missing and the machine allows).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).parents[2]
PAGES = {
    "job-runs": "/locations/sis_pipelines/jobs/nightly/runs",
    "runs-of-one-tenant": "/runs?q%5B0%5D=tag%3Atenant%3Ddemo-genesis",
    "asset-users": "/assets/oneroster/users",
    "asset-users-checks": "/assets/oneroster/users?view=checks",
    "asset-canvas-delta": "/assets/canvas/delta",
    "lineage": "/asset-groups",
    "runs-and-backfills": "/runs",
    "tenant-page": "/assets/tenants/demo-genesis",
    "tenant-page-events": "/assets/tenants/demo-genesis?view=events",
    "tenant-page-checks": "/assets/tenants/demo-genesis?view=checks",
    "tenants-lineage": "/locations/sis_pipelines/asset-groups/tenants",
    "gpb-payloads-checks": "/assets/gpb/payloads?view=checks",
    "gpb-push": "/assets/gpb/push",
    "grade-sync-runs": "/locations/sis_pipelines/jobs/grade_sync/runs",
    "grade-sync-launchpad": "/locations/sis_pipelines/jobs/grade_sync/playground",
    "grade-sync-sensor": "/locations/sis_pipelines/sensors/grade_sync_demo_genesis",
}
LATEST_BACKFILL = (
    "{ partitionBackfillsOrError(limit: 1) { ... on PartitionBackfills { results { id } } } }"
)
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1500,1100",
    "--virtual-time-budget=15000",
]


def chromium() -> str:
    found = shutil.which("chromium")
    if found:
        return found
    print("installing Debian's chromium for the screenshots …", flush=True)
    subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], check=False)
    found = shutil.which("chromium")
    if not found:
        raise SystemExit("make screenshots: needs Debian's chromium (apt-get install chromium)")
    return found


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def webserver() -> Iterator[httpx.Client]:
    """``dagster-webserver`` on the instance in DAGSTER_HOME and this repository's workspace,
    on a free loopback port, until the block ends; a client on it."""
    port = _port()
    command = [sys.executable, "-m", "dagster_webserver", "-h", "127.0.0.1", "-p", str(port)]
    server = subprocess.Popen(
        [*command, "-w", str(ROOT / "workspace.yaml")],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if client.get("/server_info").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the Dagster webserver did not start")
            time.sleep(0.5)
        yield client
    finally:
        client.close()
        server.terminate()
        server.wait(timeout=30)


def main(out: Path = ROOT / "screenshots") -> int:
    browser = chromium()
    with webserver() as client:
        # The first-visit "join the community" dialog would cover every page.
        client.post("/graphql", json={"query": "mutation { setNuxSeen }"})
        out.mkdir(exist_ok=True)
        pages = dict(PAGES)
        answer = client.post("/graphql", json={"query": LATEST_BACKFILL}).json()
        for backfill in answer["data"]["partitionBackfillsOrError"].get("results", []):
            pages["backfill"] = f"/runs/b/{backfill['id']}"
        for name, path in pages.items():
            with tempfile.TemporaryDirectory() as profile:
                shot = [f"--user-data-dir={profile}", f"--screenshot={out / f'{name}.png'}"]
                subprocess.run(
                    [browser, *CHROMIUM_FLAGS, *shot, str(client.base_url) + path],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    timeout=120,
                    check=False,
                )
            print(f"{out / f'{name}.png'}  {path}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("DAGSTER_HOME", str(ROOT / ".dagster_home"))
    sys.exit(main())
