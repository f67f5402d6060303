"""The daemon and the webserver with a thousand districts: `python -m bench.daemon`.

A real deployment on this machine (bench.fleet's: a fresh PostgreSQL database, the top-level
dagster.yaml, `dagster-daemon run` and the webserver as processes of their own) with N
registered districts that all pass grades back, so the daemon evaluates N + 2 sensors (a
grade_sync sensor per district, on the daemon's sensor threads). Measured, from the instance's
own PostgreSQL records:

- the sensor loop: every sensor's ticks over a window, their duration, and how far apart one
  sensor's ticks come against its minimum interval (does the daemon keep up?);
- the nightly schedule's tick: its evaluation (N run requests) and the N runs created and
  submitted to the queue, as the daemon's scheduler does;
- the queue: with N runs queued, how fast the run coordinator refills a freed slot, and the
  most runs in flight (never above the limits);
- the webserver: the pages an operator opens during that night (the runs queue, the
  automation page with every sensor, the daemons' health).

    python -m bench.daemon [--tenants 1000] [--window 240]

Results go to bench/results/daemon-<N>.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path

import httpx

from bench.fleet import (
    deployment,
    most_in_flight,
    nightly_requests,
    registered,
    submit_runs,
    wait_for,
)
from bench.ui import LOCATION, _graphql, _timed, districts

RESULTS = Path(__file__).parent / "results"
SYNC_INTERVAL_S = 60


def tenants_yaml(n: int) -> tuple[str, list[str]]:
    """The districts of bench.ui, each passing grades back (a grade_sync sensor each)."""
    return districts(
        n,
        lambda i: (
            f", canvas: {{source: simulator, sis_id_prefix: 'd{i}-'}}, "
            "gpb: {endpoints: standard, default_category: Homework, "
            f"sync_interval_s: {SYNC_INTERVAL_S}}}"
        ),
    )


def sensor_ticks(instance) -> dict[str, list[tuple[float, float]]]:
    """Every sensor's ticks as (start, end) from the instance's tick records."""
    from dagster._core.scheduler.instigation import TickStatus

    ticks: dict[str, list[tuple[float, float]]] = defaultdict(list)
    storage = instance.schedule_storage
    for state in instance.all_instigator_state():
        if state.instigator_type.value != "SENSOR":
            continue
        for tick in storage.get_ticks(state.instigator_origin_id, state.selector_id, limit=1000):
            if tick.status != TickStatus.STARTED and tick.tick_data.end_timestamp:
                ticks[state.instigator_name].append((tick.timestamp, tick.tick_data.end_timestamp))
    return ticks


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def sensor_figures(ticks: dict[str, list[tuple[float, float]]], sensors: int) -> dict:
    durations = [end - start for spans in ticks.values() for start, end in spans]
    gaps = [
        b[0] - a[0]
        for spans in ticks.values()
        for a, b in zip(sorted(spans), sorted(spans)[1:], strict=False)
    ]
    return {
        "sensors": sensors,
        "evaluated": len(ticks),
        "ticks": len(durations),
        "tick_median_s": statistics.median(durations) if durations else 0.0,
        "tick_p95_s": percentile(durations, 0.95),
        "gap_median_s": statistics.median(gaps) if gaps else 0.0,
        "gap_p95_s": percentile(gaps, 0.95),
    }


def schedule_tick(instance, night: date) -> tuple[float, float, int]:
    """The nightly tick: seconds to evaluate, seconds to create and submit its runs, runs."""
    start = time.perf_counter()
    requests = nightly_requests(instance, night)
    evaluated = time.perf_counter() - start
    # As many threads as the daemon's scheduler submits a tick's runs on (dagster.yaml).
    threads = instance.get_settings("schedules").get("num_submit_workers") or 1
    start = time.perf_counter()
    submit_runs(instance, requests, threads)
    return evaluated, time.perf_counter() - start, len(requests)


def queue_figures(instance) -> dict:
    """From the run records: launched, the most in flight, and how soon a freed slot refills."""
    import dagster as dg

    records = instance.get_run_records(dg.RunsFilter(job_name="nightly"))
    started = sorted(r.start_time for r in records if r.start_time)
    ended = sorted(r.end_time for r in records if r.end_time)
    spans = [(r.start_time, r.end_time or time.time(), "all") for r in records if r.start_time]
    vendor_spans = [
        (r.start_time, r.end_time or time.time(), r.dagster_run.tags.get("sis_vendor", "?"))
        for r in records
        if r.start_time
    ]
    refill = []
    for end in ended:
        later = [s for s in started if s >= end]
        if later:
            refill.append(later[0] - end)
    return {
        "queued_left": sum(r.dagster_run.status.value == "QUEUED" for r in records),
        "started": len(started),
        "ended": len(ended),
        "in_flight": most_in_flight(spans).get("all", 0),
        "per_vendor": most_in_flight(vendor_spans),
        "refill_median_s": statistics.median(refill) if refill else 0.0,
        "refill_p95_s": percentile(refill, 0.95),
    }


RUNS_PAGE = """
{ runsOrError(filter: {statuses: [QUEUED]}, limit: 30) { ... on Runs { results { id status } } }
  runsFeedCountOrError(view: RUNS, filter: {statuses: [QUEUED]}) { ... on RunsFeedCount { count } } }
"""
AUTOMATION_PAGE = """
{ sensorsOrError(repositorySelector: {repositoryName: "__repository__",
                                      repositoryLocationName: "sis_pipelines"}) {
    ... on Sensors { results { name sensorState { status ticks(limit: 1) { status } } } } } }
"""
DAEMONS = "{ instance { daemonHealth { allDaemonStatuses { daemonType healthy } } } }"


def webserver_figures(url: str) -> dict:
    with httpx.Client(base_url=url) as client:

        def loaded() -> bool:
            try:
                entries = _graphql(client, LOCATION)["workspaceOrError"]["locationEntries"]
            except (httpx.HTTPError, SystemExit):
                return False
            return [e["loadStatus"] for e in entries] == ["LOADED"]

        wait_for(loaded, 300, "the webserver to load the code location")
        runs_s, runs = _timed(lambda: _graphql(client, RUNS_PAGE))
        automation_s, automation = _timed(lambda: _graphql(client, AUTOMATION_PAGE))
        daemons_s, daemons = _timed(lambda: _graphql(client, DAEMONS))
    statuses = daemons["instance"]["daemonHealth"]["allDaemonStatuses"]  # type: ignore[index]
    return {
        "runs_page_s": runs_s,
        "queued_count": runs["runsFeedCountOrError"].get("count"),  # type: ignore[index]
        "automation_page_s": automation_s,
        "sensors_listed": len(automation["sensorsOrError"]["results"]),  # type: ignore[index]
        "daemons_s": daemons_s,
        "unhealthy_daemons": [d["daemonType"] for d in statuses if not d["healthy"]],
    }


def measure(n: int, window: float, workdir: Path) -> dict:
    from sis_pipelines.core.nights import latest_complete_night
    from sis_pipelines.defs.partitions import add_tenants

    text, ids = tenants_yaml(n)
    figures: dict = {"tenants": n}

    def register(instance) -> None:
        # Registered before the daemon starts: the onboarding sensor finds them known and
        # checks no connections (that is a thousand runs of its own, measured by bench.fleet).
        start = time.perf_counter()
        add_tenants(instance, ids)
        figures["register_s"] = time.perf_counter() - start

    with deployment(text, workdir, prepare=register) as fleet:
        import dagster as dg

        instance = dg.DagsterInstance.get()
        assert len(registered(instance)) == n
        sensors = n + 2
        started = time.monotonic()
        # The sensor loop before the night's runs: every sensor ticks at its own interval.
        time.sleep(window / 2)
        figures["sensors_idle"] = sensor_figures(sensor_ticks(instance), sensors)
        figures["sensors_idle"]["window_s"] = time.monotonic() - started
        evaluate_s, submit_s, runs = schedule_tick(instance, latest_complete_night())
        figures["schedule"] = {"evaluate_s": evaluate_s, "submit_s": submit_s, "runs": runs}
        night_started = time.monotonic()
        time.sleep(window / 2)
        figures["webserver"] = webserver_figures(fleet.webserver)
        figures["queue"] = queue_figures(instance)
        figures["queue"]["window_s"] = time.monotonic() - night_started
        figures["sensors_all"] = sensor_figures(sensor_ticks(instance), sensors)
        figures["sensors_all"]["window_s"] = time.monotonic() - started
    return figures


def report(f: dict) -> str:
    idle, busy, sched, queue, web = (
        f["sensors_idle"],
        f["sensors_all"],
        f["schedule"],
        f["queue"],
        f["webserver"],
    )
    n = f["tenants"]
    return "\n".join(
        [
            f"# The daemon and the webserver with {n} districts",
            "",
            f"`python -m bench.daemon --tenants {n}` ({datetime.now(UTC):%Y-%m-%d}): a fresh "
            "PostgreSQL database, the top-level `dagster.yaml` (sensors on 8 threads, queued "
            "run coordinator: at most 8 runs, one per tenant, 2 Infinite Campus), "
            "`dagster-daemon run` and the webserver as processes of their own; every district "
            f"passes grades back, so {n + 2} sensors (grade_sync every {SYNC_INTERVAL_S} s); "
            "2 cores. Figures from the instance's PostgreSQL tick and run records.",
            "",
            "| what | figure |",
            "|---|---:|",
            f"| {n} districts registered (dynamic partitions) | {f['register_s']:.2f} s |",
            f"| sensors evaluated in the first {idle['window_s']:.0f} s (no runs) | "
            f"{idle['evaluated']} of {idle['sensors']} |",
            f"| sensor tick, median / p95 (no runs) | {idle['tick_median_s']:.3f} / "
            f"{idle['tick_p95_s']:.3f} s |",
            f"| one sensor's ticks apart, median / p95 (interval {SYNC_INTERVAL_S} s, no runs) | "
            f"{idle['gap_median_s']:.0f} / {idle['gap_p95_s']:.0f} s |",
            f"| nightly schedule tick: evaluation ({sched['runs']} run requests) | "
            f"{sched['evaluate_s']:.1f} s |",
            f"| nightly schedule tick: {sched['runs']} runs created and queued | "
            f"{sched['submit_s']:.1f} s |",
            f"| runs started / ended in {queue['window_s']:.0f} s of the night | "
            f"{queue['started']} / {queue['ended']} |",
            f"| most runs in flight (limit 8); per vendor | {queue['in_flight']}; "
            + ", ".join(f"{k} {v}" for k, v in sorted(queue["per_vendor"].items()))
            + " |",
            f"| a freed slot refilled from the queue, median / p95 | "
            f"{queue['refill_median_s']:.1f} / {queue['refill_p95_s']:.1f} s |",
            f"| sensor tick, median / p95 (whole window, runs in flight) | "
            f"{busy['tick_median_s']:.3f} / {busy['tick_p95_s']:.3f} s |",
            f"| one sensor's ticks apart, median / p95 (whole window) | "
            f"{busy['gap_median_s']:.0f} / {busy['gap_p95_s']:.0f} s |",
            f"| runs page (queued runs, {web['queued_count']} queued) | "
            f"{web['runs_page_s']:.2f} s |",
            f"| automation page ({web['sensors_listed']} sensors, last tick each) | "
            f"{web['automation_page_s']:.2f} s |",
            f"| daemons' health | {web['daemons_s']:.2f} s; unhealthy: "
            f"{', '.join(web['unhealthy_daemons']) or 'none'} |",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.daemon")
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--window", type=float, default=240, help="seconds of daemon measured")
    args = parser.parse_args()
    figures = measure(args.tenants, args.window, Path(tempfile.mkdtemp(prefix="sis-daemon-")))
    text = report(figures) + "\n"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"daemon-{args.tenants}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
