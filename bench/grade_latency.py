"""How long a grade takes from Canvas to the SIS between nights, with a real daemon.

After ``make demo`` (its data folder and Dagster home): starts ``dagster-daemon run`` on the
workspace, lets demo-genesis's grade_sync sensor take its first tick, then grades a
submission through the simulated Canvas's own grading endpoint and waits until the simulated
SIS holds the grade. The time includes the wait for the sensor's next tick.

    python -m bench.grade_latency [--interval 60] [--grades 3]

Results go to bench/results/grade-latency.md.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).parents[1]
RESULTS = ROOT / "bench" / "results"
TENANT = "demo-genesis"


def _tenants_file(interval: int) -> Path:
    """The demo's tenants, demo-genesis syncing every ``interval`` seconds, the others not."""
    import yaml

    doc = yaml.safe_load((ROOT / "sis_pipelines" / "demo" / "tenants.yaml").read_text())
    for name, tenant in doc["tenants"].items():
        if "gpb" in tenant:
            tenant["gpb"]["sync_interval_s"] = interval if name == TENANT else 0
    path = Path(tempfile.mkdtemp()) / "tenants.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.grade_latency")
    parser.add_argument("--interval", type=int, default=60, help="the sensor's interval (s)")
    parser.add_argument("--grades", type=int, default=3)
    args = parser.parse_args()
    data = Path(os.environ.get("SIS_PIPELINES_DATA_DIR", ROOT / "data"))
    home = Path(os.environ.get("DAGSTER_HOME", ROOT / ".dagster_home"))
    if not (data / "gpb" / "passes" / f"{TENANT}.json").exists():
        print("run make demo first: the demo's data holds no grade pass of demo-genesis")
        return 2
    tenants = _tenants_file(args.interval)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "SIS_PIPELINES_DATA_DIR": str(data),
        "SIS_PIPELINES_TENANTS": str(tenants),
    }
    os.environ.update(env)
    import dagster as dg

    from sis_pipelines.simulator.plugin import canvas_simulator
    from sis_pipelines.simulator.teacher import a_course_with_grades, grade

    daemon = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "dagster-daemon"),
            "run",
            "-w",
            str(ROOT / "workspace.yaml"),
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    sensor = f"grade_sync_{TENANT.replace('-', '_')}"
    latencies = []
    try:
        instance = dg.DagsterInstance.get()
        _wait(lambda: _ticks(instance, sensor) >= 1, 180, "the sensor's first tick")
        _wait(lambda: not _active(instance), 600, "the first tick's syncs")
        sim = canvas_simulator(TENANT, data / "simulator" / "canvas")
        sim.clock = None
        for n in range(args.grades):
            course = a_course_with_grades(sim, datetime.now(UTC))
            assert course is not None
            book = sim.gradebook(course)
            assert book is not None
            assignment, student = book["assignments"][-1], book["enrollments"][n]
            score = f"{3 + n}.25"
            started = time.monotonic()
            grade(sim, course, assignment["id"], student["sis_user_id"], score)
            _wait(
                lambda a=assignment, s=student, g=score: _in_sis(data, a["name"], s) == float(g),
                args.interval * 3 + 120,
                "the grade in the SIS",
            )
            latencies.append(time.monotonic() - started)
            print(f"grade {n + 1}: {latencies[-1]:.1f} s", flush=True)
            _wait(lambda: not _active(instance), 300, "the sync to end")
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        daemon.wait(30)
    lines = [
        "# A grade from Canvas to the SIS between nights",
        "",
        f"`python -m bench.grade_latency --interval {args.interval} --grades {args.grades}`, "
        f"{datetime.now(UTC):%Y-%m-%d}, `dagster-daemon run` on the demo's instance, "
        f"demo-genesis (2,000 students), the grade_sync sensor every {args.interval} s.",
        "",
        "| grade | seconds from Canvas's grading endpoint to the result in the SIS |",
        "|---|---|",
        *[f"| {i + 1} | {t:.1f} |" for i, t in enumerate(latencies)],
        "",
        f"median {statistics.median(latencies):.1f} s: each is the wait for the sensor's next "
        "tick (at most its interval) plus the grade_sync run it launches (the run queue, a run "
        "process, the course's gradebook read whole, the plan and the push).",
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "grade-latency.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def _ticks(instance, sensor: str) -> int:
    from dagster._core.scheduler.instigation import InstigatorType

    states = instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
    for state in states:
        if state.name == sensor:
            return len(instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=5))
    return 0


def _active(instance) -> bool:
    import dagster as dg

    from sis_pipelines.defs.gpb.sync import ACTIVE

    return bool(
        instance.get_run_records(dg.RunsFilter(job_name="grade_sync", statuses=ACTIVE), limit=1)
    )


def _in_sis(data: Path, title: str, enrollment: dict) -> float | None:
    from sis_pipelines.core.lake import Lake
    from sis_pipelines.demo.grades import sis_score

    return sis_score(Lake.at(str(data)), title, enrollment)


def _wait(done, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.5)


if __name__ == "__main__":
    sys.exit(main())
