"""A process killed (SIGKILL) at the wrong moment, then a re-run: the grade push mid-part, the
Canvas import while it is polled, a upload cut off before Canvas answered, rostering
mid-collection. Whatever the moment, the re-run ends where an uninterrupted night ends, Canvas
gets the night once, and each grade the SIS acknowledged is sent once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from upath import UPath

from sis_pipelines.gpb.passback import send
from sis_pipelines.gpb.sis import SisGradebook
from sis_pipelines.gpb.state import read_ledger
from sis_pipelines.lake import Lake
from sis_pipelines.oneroster.client import OneRosterClient
from sis_pipelines.simulator.sis_gradebook import SisGradebook as SimulatedGradebook

from .gpb_world import NIGHT, tenant
from .support import FAST_RETRY, auth_for
from .test_gpb_push import payloads

ROOT = Path(__file__).parents[1]


def started(script: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """``script`` in a Python process of its own (its own process group, to be killed whole)."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def kill_when(process: subprocess.Popen, ready: Callable[[], bool], timeout_s: float = 120) -> None:
    """SIGKILL the process (and its children) as soon as ``ready()``; fails if it ended first."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        if process.poll() is not None:
            raise AssertionError(
                f"ended before the moment: {process.stdout.read().decode()[-2000:]}"
            )
        assert time.monotonic() < deadline, "the moment never came"
        time.sleep(0.005)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def gradebook_client(sim) -> SisGradebook:
    return SisGradebook(
        OneRosterClient("gpb-t", sim.gradebook_url, auth_for(sim), page_size=50, retry=FAST_RETRY)
    )


@pytest.mark.parametrize("after_puts", [3, 11, 25])
def test_a_push_killed_mid_part_resends_only_what_the_sis_did_not_acknowledge(
    simulator, tmp_path, after_puts
):
    sim = simulator("genesis", gradebook=SimulatedGradebook("1.1"))
    sis = gradebook_client(sim)
    t = tenant(default_category="Homework")
    requests = payloads(sis, t).requests
    results = [r for r in requests if r["kind"] == "result"]
    assert len(results) > after_puts + 10
    (tmp_path / "requests.json").write_text(json.dumps(requests))
    # Each result's PUT takes a while: the kill lands inside the (single) part.
    sim.add_fault(path="/results/", kind="delay", delay_s=0.02, times=10_000)
    process = started(
        f"""
        import json
        from upath import UPath
        from sis_pipelines.gpb.passback import send
        from sis_pipelines.lake import Lake
        from sis_pipelines_tests.gpb_world import tenant
        from sis_pipelines_tests.test_crash import gradebook_client
        from types import SimpleNamespace
        from sis_pipelines.simulator.vendors import VENDORS

        sim = SimpleNamespace(  # the SIS of the test's own process
            gradebook_url={sim.gradebook_url!r},
            token_url={sim.token_url!r},
            client_id={sim.client_id!r},
            client_secret={sim.client_secret!r},
            profile=VENDORS["genesis"],
        )
        requests = json.load(open({str(tmp_path / "requests.json")!r}))
        lake = Lake(UPath({str(tmp_path / "lake")!r}))
        send(lake, gradebook_client(sim), "gpb-t", tenant(default_category="Homework"),
             requests, "night", False, lake.gpb_outcomes("{NIGHT}", "gpb-t"))
        """
    )
    result_puts = lambda: sum("/results/" in p for p, _ in sim.gradebook.puts)  # noqa: E731
    kill_when(process, lambda: result_puts() >= after_puts)
    lake = Lake(UPath(tmp_path / "lake"))
    acknowledged = set(read_ledger(lake, "gpb-t")["key"])
    assert len(acknowledged) >= after_puts - 2, "the acknowledgements survived the kill"
    before = Counter(p for p, _ in sim.gradebook.puts)
    figures = send(
        lake, sis, "gpb-t", t, requests, "night", False, lake.gpb_outcomes(NIGHT, "gpb-t")
    )
    puts = Counter(p for p, _ in sim.gradebook.puts)
    # Every request reached the SIS, and none the SIS acknowledged before the kill went again:
    # only those in flight at the kill (at most the push's concurrency) were sent twice.
    assert {r["path"] for r in requests} <= set(puts)
    twice = [p for p, n in puts.items() if n > 1]
    assert len(twice) <= t.gpb.max_concurrency, twice
    assert all(before[p] <= 1 for p in twice)
    assert figures["unchanged"] >= len(acknowledged)
    assert len(read_ledger(lake, "gpb-t")) == len(requests)
    assert not list(lake.gpb_ledger_journal("gpb-t").glob("*"))
