"""The fleet on Celery workers (deploy/celery): the daemon launches each run, the run's steps
execute on Celery workers on two hosts of their own (network namespaces sharing nothing but
the broker, PostgreSQL and the lake's path); one worker host is killed mid-step, its step goes
back to the queue and the other host runs it. Every healthy district's night is byte for byte
the night the in-process executor stores."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.fleet import BROKEN_CANVAS, DOWN, fleet_night
from sis_pipelines.core.nights import latest_complete_night

# What a night stores that must not depend on where its steps ran (the simulators' own state
# and the import log, which records Canvas's import ids and times, are left out).
COMPARED = ("oneroster", "quarantine", "repairs", "canvas_mapping", "canvas", "gpb")


# The simulated SIS listens on a port of its process's own, which its hrefs carry; a real SIS's
# base URL is the same for every worker.
SIMULATED_SIS = re.compile(rb"http://127\.0\.0\.1:\d+/")


def stored(data: Path, tenant: str) -> dict[str, bytes]:
    return {
        str(p.relative_to(data)): SIMULATED_SIS.sub(b"http://sis/", p.read_bytes())
        if p.suffix == ".jsonl"
        else p.read_bytes()
        for area in COMPARED
        for p in sorted((data / area).glob(f"**/{tenant}.*"))
    }


def in_process_night(workdir: Path, tenant: str, night) -> Path:
    """The same tenant-night through the CLI (the in-process executor), in a lake of its own."""
    data = workdir / "in-process"
    env = {
        **os.environ,
        "SIS_PIPELINES_DATA_DIR": str(data),
        "SIS_PIPELINES_TENANTS": str(workdir / "tenants.yaml"),
        "DAGSTER_HOME": str(workdir / "in-process-home"),
        "SIS_PIPELINES_EXECUTOR": "in_process",
    }
    (workdir / "in-process-home").mkdir(exist_ok=True)
    cli = [sys.executable, "-m", "sis_pipelines", "run", "--tenant", tenant, "--night", str(night)]
    done = subprocess.run(cli, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return data


@pytest.mark.e2e
def test_a_fleet_night_on_celery_workers_with_a_host_killed(tmp_path):
    night = latest_complete_night()
    result = fleet_night(4, night, tmp_path, timeout=900, celery_hosts=2, kill_worker_after=3)

    assert result.succeeded == ["fleet-000", "fleet-001"]
    assert set(result.failed) == {DOWN, BROKEN_CANVAS}
    assert result.retried == sorted([DOWN, BROKEN_CANVAS])
    assert "503" in result.failed[DOWN]
    # Both hosts ran steps; host 0 was killed after starting three, host 1 took the rest.
    assert result.killed_worker is not None
    assert result.steps_per_worker.get("host0", 0) >= 3
    assert result.steps_per_worker.get("host1", 0) > result.steps_per_worker["host0"]
    assert result.per_tenant == 1

    data = tmp_path / "data"
    leftovers = [p for p in data.rglob("*.tmp")]
    assert not leftovers, f"half-written files left in the lake: {leftovers}"
    assert not list((data / "oneroster").glob(f"*/{night}/{DOWN}.parquet"))
    for tenant in ("fleet-000", "fleet-001"):
        celery = stored(data, tenant)
        assert any(k.endswith(".zip") for k in celery), sorted(celery)
        reference = stored(in_process_night(tmp_path, tenant, night), tenant)
        assert sorted(celery) == sorted(reference)
        differing = [k for k in celery if celery[k] != reference[k]]
        assert not differing, f"{tenant}: not byte-identical across executors: {differing}"
