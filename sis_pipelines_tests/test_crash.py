"""A process killed (SIGKILL) at the wrong moment, then a re-run: the grade push mid-part, the
Canvas import while it is polled, a upload cut off before Canvas answered, rostering
mid-collection. Whatever the moment, the re-run ends where an uninterrupted night ends, Canvas
gets the night once, and each grade the SIS acknowledged is sent once."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from upath import UPath

from sis_pipelines.core.lake import Lake
from sis_pipelines.gpb.passback import send
from sis_pipelines.gpb.sis import SisGradebook
from sis_pipelines.gpb.state import read_ledger
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
        from sis_pipelines.core.lake import Lake
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


CANVAS_TENANT = """
tenants:
  crashy:
    vendor: genesis
    oneroster: {{version: "1.1", source: simulator, students: 150, seed: 4}}
    canvas: {{base_url: "{canvas}", token_env: CRASH_CANVAS, max_removal_share: 1.0}}
"""


@pytest.fixture
def canvas_tenant(workspace, monkeypatch):
    """A simulated SIS, a Canvas simulator of the test's process, and the environment a run in
    another process needs (its own Dagster instance; the same lake and tenants file)."""
    from sis_pipelines.simulator.canvas import CanvasSimulator

    instance, data, tenants = workspace
    monkeypatch.setenv("CRASH_CANVAS", "crash-canvas-token")
    with CanvasSimulator(token="crash-canvas-token") as canvas:
        tenants.write_text(CANVAS_TENANT.format(canvas=canvas.base_url))
        home = data.parent / "other-home"
        home.mkdir()
        env = {
            "DAGSTER_HOME": str(home),
            "SIS_PIPELINES_TENANTS": str(tenants),
            "SIS_PIPELINES_DATA_DIR": str(data),
            "CRASH_CANVAS": "crash-canvas-token",
        }
        yield instance, data, canvas, env


def cli_run(night) -> str:
    return f"""
        from sis_pipelines.cli import main
        main(["tenants", "sync"])
        raise SystemExit(main(["run", "--tenant", "crashy", "--night", "{night}"]))
        """


def test_a_run_killed_while_canvas_imports_is_followed_not_uploaded_again(canvas_tenant):
    from sis_pipelines.core.nights import latest_complete_night
    from sis_pipelines.operate import run_tenant_night

    instance, data, canvas, env = canvas_tenant
    night = latest_complete_night()
    canvas.polls_to_finish = 10**9  # the import stays "importing" while the run polls it
    process = started(cli_run(night), env)
    # Killed once it polls: Canvas named the import, and the run recorded it.
    kill_when(process, lambda: canvas.imports and canvas.imports[0]["_polls"] >= 1, timeout_s=240)
    assert not Lake.at(data).canvas_applied("crashy").read()
    canvas.polls_to_finish = 2
    outcome = run_tenant_night(instance, "crashy", night)
    assert outcome.success, outcome.errors
    assert len(canvas.imports) == 1, "the night went to Canvas once"
    assert Lake.at(data).canvas_applied("crashy").read()[str(night)]["import_id"] == 1


def test_an_upload_cut_off_before_canvas_answered_is_settled_by_asking_canvas(canvas_tenant):
    """The intent is recorded, the zip may or may not have arrived: no import made since, and
    the zip goes; one made since, and nothing is sent without the operator's word."""
    from sis_pipelines.canvas.provision import _now
    from sis_pipelines.core.nights import latest_complete_night
    from sis_pipelines.operate import run_tenant_night

    instance, data, canvas, _env = canvas_tenant
    night = latest_complete_night()
    earlier = night - timedelta(days=20)  # a night the district changed since
    lake = Lake.at(data)
    select = "group:oneroster or key:canvas/mapping or key:canvas/delta"

    def intent(n, started_at: str) -> None:
        digest = hashlib.sha256(lake.sis_import_zip(n, "crashy").read_bytes()).hexdigest()
        lake.canvas_uploads("crashy").record(n, {"zip_sha256": digest, "started_at": started_at})

    assert run_tenant_night(instance, "crashy", earlier, select=select, force_refetch=True).success
    intent(earlier, _now())
    # Canvas never got it: it is sent.
    assert run_tenant_night(instance, "crashy", earlier, select="key:canvas/sis_import").success
    assert len(canvas.imports) == 1
    # An import was made since the intent (it, or another integration's): nothing is sent.
    assert run_tenant_night(instance, "crashy", night, select=select).success
    intent(night, "2000-01-01T00:00:00+00:00")
    refused = run_tenant_night(instance, "crashy", night, select="key:canvas/sis_import")
    assert not refused.success
    [error] = refused.errors
    assert (
        "cut off before Canvas answered" in error and "(1)" in error and "--force-upload" in error
    )
    assert len(canvas.imports) == 1


def test_two_runs_of_one_tenant_night_never_both_upload(canvas_tenant):
    from sis_pipelines.core.nights import latest_complete_night
    from sis_pipelines.operate import run_tenant_night

    instance, _data, canvas, env = canvas_tenant
    night = latest_complete_night()
    canvas.polls_to_finish = 10**9
    first = started(cli_run(night), env)
    try:
        deadline = time.monotonic() + 240
        while len(canvas.imports) < 1:
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        second = run_tenant_night(instance, "crashy", night)  # the CLI's, beside the first
        assert not second.success
        [error] = [e for e in second.errors if "canvas/sis_import" in e]
        assert "is being done by run " in error and "\n" not in error
        canvas.polls_to_finish = 2
        assert first.wait(timeout=240) == 0, first.stdout.read().decode()[-2000:]
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert len(canvas.imports) == 1


def lake_contents(data: Path) -> dict[str, object]:
    """What a night leaves in the lake, comparable across runs: each Parquet file's rows, each
    other file's bytes (the run's own bookkeeping aside: locks, upload intents, simulators)."""
    import pyarrow.parquet as pq

    out: dict[str, object] = {}
    for path in sorted(data.rglob("*")):
        rel = path.relative_to(data).as_posix()
        if not path.is_file() or rel.split("/")[0] in ("locks", "simulator", "canvas_uploads"):
            continue
        out[rel] = (
            pq.read_table(path).to_pylist() if path.suffix == ".parquet" else path.read_bytes()
        )
    return out


def rostering_started(data: Path) -> bool:
    return any((data / "oneroster").rglob("*.parquet")) if (data / "oneroster").exists() else False


def mapping_started(data: Path) -> bool:
    return (data / "canvas_mapping").exists()


@pytest.mark.parametrize(
    "moment",
    [rostering_started, mapping_started, 2.0],
    ids=["mid-rostering", "mid-mapping", "at-2s"],
)
def test_a_night_killed_at_any_moment_then_run_again_ends_as_an_uninterrupted_night(
    canvas_tenant, tmp_path, monkeypatch, moment
):
    from sis_pipelines.core.nights import latest_complete_night
    from sis_pipelines.operate import run_tenant_night
    from sis_pipelines.simulator.canvas import CanvasSimulator

    instance, data, canvas, env = canvas_tenant
    night = latest_complete_night()
    # The uninterrupted night, in a lake and a Canvas of its own.
    reference = tmp_path / "reference"
    with CanvasSimulator(token="crash-canvas-token") as clean:
        tenants = Path(env["SIS_PIPELINES_TENANTS"])
        text = tenants.read_text()
        tenants.write_text(CANVAS_TENANT.format(canvas=clean.base_url))
        monkeypatch.setenv("SIS_PIPELINES_DATA_DIR", str(reference))
        assert run_tenant_night(instance, "crashy", night).success
        tenants.write_text(text)
        monkeypatch.setenv("SIS_PIPELINES_DATA_DIR", str(data))
        clean_state = clean.state
    process = started(cli_run(night), env)
    if callable(moment):
        kill_when(process, lambda: moment(data), timeout_s=240)
    else:
        time.sleep(moment)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    outcome = run_tenant_night(instance, "crashy", night)
    assert outcome.success, outcome.errors
    assert len(canvas.imports) == 1
    assert canvas.state == clean_state
    assert lake_contents(data) == lake_contents(reference)


GPB_TENANT = """
tenants:
  grading:
    vendor: focus
    oneroster:
      version: "1.1"
      source: rest
      base_url: {sis}
      auth: {{type: oauth2, token_url: "{token}", client_id_env: GR_ID, client_secret_env: GR_SECRET}}
    canvas: {{base_url: "{canvas}", token_env: GR_CANVAS, max_removal_share: 1.0}}
    gpb: {{endpoints: standard, default_category: Homework, max_concurrency: 2}}
"""


def graded(sis) -> dict[str, tuple]:
    """The SIS's results as the district sees them (not when or through which port)."""
    return {
        k: (
            r["lineItem"]["sourcedId"],
            r["student"]["sourcedId"],
            r.get("score"),
            r.get("scoreStatus"),
            r.get("status"),
            r.get("comment"),
        )
        for k, r in sis.gradebook.store["results"].items()
    }


def grading_world(small_district, night):
    """A SIS with its gradebook and a Canvas with gradebooks, in this process (they outlive a
    killed run, as a real SIS and Canvas do)."""
    from sis_pipelines.simulator.canvas import CanvasSimulator
    from sis_pipelines.simulator.server import SimulatorServer

    from .support import SECRET

    sis = SimulatorServer(
        "focus",
        district=small_district,
        night=night,
        client_id="grading-id",
        client_secret=SECRET,
        gradebook=SimulatedGradebook("1.1"),
    ).start()
    canvas = CanvasSimulator(token="crash-canvas-token").__enter__()
    canvas.gradebook_share = 8  # a few courses grade in Canvas: enough results to cut a push
    return sis, canvas


def test_a_night_killed_mid_push_then_run_again_sends_each_acknowledged_grade_once(
    workspace, small_district, tmp_path, monkeypatch
):
    from sis_pipelines.core.nights import latest_complete_night
    from sis_pipelines.operate import run_tenant_night

    from .support import SECRET

    instance, data, tenants = workspace
    night = latest_complete_night()
    env = {"GR_ID": "grading-id", "GR_SECRET": SECRET, "GR_CANVAS": "crash-canvas-token"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)

    def configure(sis, canvas) -> None:
        tenants.write_text(
            GPB_TENANT.format(sis=sis.base_url, token=sis.token_url, canvas=canvas.base_url)
        )

    # The uninterrupted night.
    sis, canvas = grading_world(small_district, night)
    try:
        configure(sis, canvas)
        monkeypatch.setenv("SIS_PIPELINES_DATA_DIR", str(tmp_path / "reference"))
        assert run_tenant_night(instance, "grading", night).success
        reference = graded(sis)
    finally:
        sis.stop()
        canvas.__exit__(None, None, None)
    assert len(reference) > 40
    # Killed once the SIS took some results, mid-part; then run again.
    monkeypatch.setenv("SIS_PIPELINES_DATA_DIR", str(data))
    sis, canvas = grading_world(small_district, night)
    try:
        configure(sis, canvas)
        sis.add_fault(path="/results/", kind="delay", delay_s=0.01, times=100_000)
        home = data.parent / "other-home"
        home.mkdir()
        process = started(
            f"""
            from sis_pipelines.cli import main
            main(["tenants", "sync"])
            raise SystemExit(main(["run", "--tenant", "grading", "--night", "{night}"]))
            """,
            {
                **env,
                "DAGSTER_HOME": str(home),
                "SIS_PIPELINES_TENANTS": str(tenants),
                "SIS_PIPELINES_DATA_DIR": str(data),
            },
        )
        results = lambda: sum("/results/" in p for p, _ in sis.gradebook.puts)  # noqa: E731
        kill_when(process, lambda: results() >= 20, timeout_s=240)
        # A request in flight at the kill may still reach the SIS after it: counted once the
        # SIS has settled.
        before = Counter(p for p, _ in sis.gradebook.puts)
        for _ in range(20):
            time.sleep(0.25)
            now = Counter(p for p, _ in sis.gradebook.puts)
            if now == before:
                break
            before = now
        outcome = run_tenant_night(instance, "grading", night)
        assert outcome.success, outcome.errors
        puts = Counter(p for p, _ in sis.gradebook.puts)
        assert graded(sis) == reference
    finally:
        sis.stop()
        canvas.__exit__(None, None, None)
    twice = [p for p, n in puts.items() if n > 1]
    assert len(twice) <= 2, twice  # at most the requests in flight at the kill
    assert all(before[p] == 1 for p in twice)
    assert len(canvas.imports) == 1
