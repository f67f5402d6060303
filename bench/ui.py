"""The operator's Dagster at fleet scale: 1,000 registered tenants and a school year of nights.

Times what a data engineer waits for, on the production instance (PostgreSQL, the top-level
dagster.yaml) and the real webserver: the code location's load, the asset page of a
OneRoster collection, the lineage page, a tenant's page, a backfill launched from the UI
(GraphQL, as the UI launches it) and from the CLI, and a tick of each sensor and schedule.

    python -m bench.ui [--tenants 1000] [--nights 300] [--history-nights 7]

Results go to bench/results/ui-<tenants>.md. Nothing is mocked: the event log holds
``--history-nights`` nights of materializations of every tenant (one collection) and of
observations of every tenant's page, so pages have history to read.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path

import httpx

ROOT = Path(__file__).parents[1]
RESULTS = ROOT / "bench" / "results"


def _timed(fn: Callable[[], object], repeat: int = 3) -> tuple[float, object]:
    """Median seconds of ``repeat`` calls, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def _graphql(client: httpx.Client, query: str, **variables: object) -> dict:
    answer = client.post("/graphql", json={"query": query, "variables": variables}, timeout=600)
    if answer.status_code != 200:
        raise SystemExit(f"GraphQL {answer.status_code}: {answer.text[:500]}")
    body = answer.json()
    if "errors" in body:
        raise SystemExit(f"GraphQL error: {body['errors'][0]['message']}")
    return body["data"]


# The queries the UI's pages send (trimmed to the fields that cost: partition statuses,
# the whole graph, the events).
ASSET_PAGE = """
query ($path: [String!]!) {
  assetNodeOrError(assetKey: {path: $path}) {
    ... on AssetNode {
      id description partitionKeysByDimension { name partitionKeys }
      partitionStats { numMaterialized numPartitions numFailed }
      assetChecksOrError { ... on AssetChecks { checks { name } } }
      assetPartitionStatuses {
        ... on MultiPartitionStatuses { primaryDimensionName ranges { primaryDimStartKey } }
      }
    }
  }
  assetsLatestInfo(assetKeys: [{path: $path}]) { latestRun { id status } }
  assetOrError(assetKey: {path: $path}) {
    ... on Asset {
      assetMaterializations(limit: 100) { partition runId metadataEntries { label } }
    }
  }
}
"""
LINEAGE = """
{
  assetNodes {
    id groupName assetKey { path } dependencyKeys { path } isPartitioned isObservable
    isMaterializable kinds
  }
}
"""
TENANT_PAGE = """
query ($path: [String!]!) {
  assetNodeOrError(assetKey: {path: $path}) {
    ... on AssetNode { id partitionStats { numPartitions } }
  }
  assetOrError(assetKey: {path: $path}) {
    ... on Asset { assetObservations(limit: 200) { partition runId metadataEntries { label } } }
  }
  assetCheckExecutions(assetKey: {path: $path}, checkName: "night_arrived", limit: 1) { status }
}
"""
LAUNCH_BACKFILL = """
mutation ($names: [String!]!) {
  launchPartitionBackfill(backfillParams: {
    selector: {partitionSetName: "nightly_partition_set",
               repositorySelector: {repositoryName: "__repository__",
                                    repositoryLocationName: "sis_pipelines"}},
    partitionNames: $names, fromFailure: false
  }) { __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } }
}
"""
LOCATION = """
{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }
"""


VENDORS = ("genesis", "focus", "progressbook", "infinite_campus")


def districts(count: int, extra: Callable[[int], str] = lambda i: "") -> tuple[str, list[str]]:
    """A tenants file of ``count`` small simulated districts, the vendors in turn (the text, the
    tenant ids); ``extra(i)`` adds to the i-th district's sections."""
    ids = [f"district-{i:04d}" for i in range(count)]
    lines = ["tenants:"]
    for i, tenant in enumerate(ids):
        vendor = VENDORS[i % len(VENDORS)]
        version = "1.2" if vendor == "infinite_campus" else "1.1"
        lines.append(
            f"  {tenant}: {{vendor: {vendor}, oneroster: {{version: '{version}', "
            f"source: simulator, students: 100, seed: {i}}}{extra(i)}}}"
        )
    return "\n".join(lines) + "\n", ids


def _tenants_file(path: Path, count: int) -> list[str]:
    text, ids = districts(count)
    path.write_text(text)
    return ids


def pg_server() -> dict[str, str]:
    """The PostgreSQL server of the ``DAGSTER_PG_*`` variables (the machine's own, trust auth,
    where they are not set), as the instance's environment names it."""
    return {
        "DAGSTER_PG_HOST": os.environ.get("DAGSTER_PG_HOST", "127.0.0.1"),
        "DAGSTER_PG_PORT": os.environ.get("DAGSTER_PG_PORT", "5432"),
        "DAGSTER_PG_USER": os.environ.get("DAGSTER_PG_USER", "postgres"),
        "DAGSTER_PG_PASSWORD": os.environ.get("DAGSTER_PG_PASSWORD", "trust-auth"),
    }


@contextmanager
def fresh_database(prefix: str, name: str | None = None) -> Iterator[str]:
    """A fresh database on the ``DAGSTER_PG_*`` server for one instance (``name``, emptied
    first, or ``<prefix>_<random>``), dropped at the end."""
    import psycopg2

    server = pg_server()
    name = name or f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(
        host=server["DAGSTER_PG_HOST"],
        port=int(server["DAGSTER_PG_PORT"]),
        user=server["DAGSTER_PG_USER"],
        password=server["DAGSTER_PG_PASSWORD"],
        dbname="postgres",
    )
    admin.autocommit = True
    admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--nights", type=int, default=300, help="nights of partitions")
    parser.add_argument("--history-nights", type=int, default=7)
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="sis-ui-bench-"))
    with fresh_database("sis_ui_bench") as db:
        try:
            rows = _bench_instance(args, work, db)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    report = _report(args, rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"ui-{args.tenants}.md"
    out.write_text(report)
    print(report)
    print(f"written to {out.relative_to(ROOT)}")
    return 0


def _bench_instance(args: argparse.Namespace, work: Path, db: str) -> list[tuple[str, float, str]]:
    home = work / "home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    from sis_pipelines.core.nights import latest_complete_night

    latest = latest_complete_night()
    first = latest - timedelta(days=args.nights - 1)
    os.environ.update(
        pg_server(),
        DAGSTER_HOME=str(home),
        DAGSTER_PG_DB=db,
        SIS_PIPELINES_TENANTS=str(work / "tenants.yaml"),
        SIS_PIPELINES_DATA_DIR=str(work / "data"),
        SIS_PIPELINES_FIRST_NIGHT=str(first),
    )
    ids = _tenants_file(work / "tenants.yaml", args.tenants)
    return _measure(ids, latest, args.history_nights)


def _measure(ids: list[str], latest, history: int) -> list[tuple[str, float, str]]:
    import dagster as dg

    from sis_pipelines.operate import console, quiet_dagster

    quiet_dagster()
    rows: list[tuple[str, float, str]] = []
    start = time.perf_counter()
    from sis_pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    rows.append(
        (
            "definitions load (in process)",
            time.perf_counter() - start,
            f"{len(list(graph.get_all_asset_keys()))} assets",
        )
    )
    instance = dg.DagsterInstance.get()
    from sis_pipelines.defs.partitions import add_tenants

    took, _ = _timed(lambda: add_tenants(instance, ids), repeat=1)
    rows.append((f"register {len(ids)} tenants", took, "dynamic partitions"))

    # History: every tenant's last nights of one collection and of its page.
    orgs = dg.AssetKey(["oneroster", "enrollments"])
    start = time.perf_counter()
    events = 0
    for back in range(history):
        night = str(latest - timedelta(days=back))
        for tenant in ids:
            instance.report_runless_asset_event(
                dg.AssetMaterialization(
                    orgs, partition=f"{night}|{tenant}", metadata={"dagster/row_count": 1000}
                )
            )
            instance.report_runless_asset_event(
                dg.AssetObservation(
                    dg.AssetKey(["tenants", tenant]),
                    partition=night,
                    metadata={"enrollments_rows": 1000, "enrollments_quarantined": 0},
                )
            )
            events += 2
    rows.append(("seed the event log", time.perf_counter() - start, f"{events} events"))

    # Sensor and schedule ticks, as the daemon evaluates them.
    from sis_pipelines.defs.automation.sensors import tenant_onboarding_sensor, term_change_sensor

    for name, sensor in (
        ("tenant_onboarding_sensor tick", tenant_onboarding_sensor),
        ("term_change_sensor tick", term_change_sensor),
    ):
        took, result = _timed(
            lambda sensor=sensor: sensor(dg.build_sensor_context(instance=instance))
        )
        rows.append((name, took, type(result).__name__))
    took, requests = _timed(
        lambda: list(
            defs.resolve_schedule_def("nightly_schedule")
            .evaluate_tick(
                dg.build_schedule_context(
                    instance=instance,
                    repository_def=defs.get_repository_def(),
                    scheduled_execution_time=datetime.combine(
                        latest + timedelta(days=1), dtime(2, 30), UTC
                    ),
                )
            )
            .run_requests
            or []
        )
    )
    rows.append(("nightly_schedule tick", took, f"{len(requests)} run requests"))
    job = defs.resolve_job_def("tenant_freshness")
    took, result = _timed(
        lambda: job.execute_in_process(instance=instance, run_config=console(False)), repeat=1
    )
    rows.append(("tenant_freshness run (every tenant's check)", took, "in process"))

    from sis_pipelines.demo.screenshots import webserver

    start = time.perf_counter()
    with webserver() as client:
        while True:
            [entry] = _graphql(client, LOCATION)["workspaceOrError"]["locationEntries"]
            if entry["loadStatus"] == "LOADED":
                break
            time.sleep(0.2)
        rows.append(("webserver up, code location loaded", time.perf_counter() - start, ""))
        for label, query, variables in (
            (
                "asset page oneroster/enrollments",
                ASSET_PAGE,
                {"path": ["oneroster", "enrollments"]},
            ),
            ("asset page canvas/delta", ASSET_PAGE, {"path": ["canvas", "delta"]}),
            ("lineage (every asset node)", LINEAGE, {}),
            ("a tenant's page", TENANT_PAGE, {"path": ["tenants", ids[0]]}),
        ):
            took, _ = _timed(lambda q=query, v=variables: _graphql(client, q, **v))
            rows.append((label, took, "GraphQL, median of 3"))
        names = [f"{latest - timedelta(days=d)}|{ids[1]}" for d in range(30)]
        took, answer = _timed(lambda: _graphql(client, LAUNCH_BACKFILL, names=names), repeat=1)
        kind = answer["launchPartitionBackfill"]["__typename"]
        rows.append(("backfill launch from the UI (30 nights, one tenant)", took, kind))
    from sis_pipelines.operate.backfills import create_backfill

    took, _ = _timed(
        lambda: create_backfill(instance, "nightly", names, {}, None, "bench"), repeat=1
    )
    rows.append(("backfill record from the CLI (30 nights)", took, "before its first run"))
    return rows


def _report(args: argparse.Namespace, rows: list[tuple[str, float, str]]) -> str:
    lines = [
        f"# The operator's Dagster with {args.tenants} tenants x {args.nights} nights",
        "",
        f"{args.tenants * args.nights:,} tenant-night partitions per asset; PostgreSQL instance; "
        f"{args.history_nights} nights of history per tenant. Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} cores.",
        "",
        "| what | seconds | note |",
        "|---|---:|---|",
        *(f"| {label} | {seconds:.2f} | {note} |" for label, seconds, note in rows),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
