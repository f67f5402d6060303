"""A fleet of districts on a real deployment on this machine: `make fleet N=40`.

A fresh PostgreSQL database for the instance (the top-level dagster.yaml: queued run
coordinator, one run per tenant, at most two Infinite Campus runs, retries), `dagster-daemon run`
and the webserver as processes of their own, N simulated districts of mixed vendors and sizes
(a few large, many small; one whose SIS is down all night) registered by the onboarding sensor,
the nightly schedule's tick for one night evaluated and its runs submitted to the queue, as the
daemon's scheduler does, and every run followed to its end. The figures are read back from the
instance's PostgreSQL run records.

    python -m bench.fleet --tenants 40 [--night 2026-11-20]

Results go to bench/results/fleet-<N>.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.hosts import SERVICES, WorkerHosts, kill_host, worker_hosts
from bench.ui import VENDORS, fresh_database, pg_server

ROOT = Path(__file__).parents[1]
RESULTS = ROOT / "bench" / "results"
DOWN = "fleet-sis-down"  # its SIS answers 503 to everything all night
BROKEN_CANVAS = "fleet-canvas-broken"  # its Canvas fails every SIS import


def fleet_tenants(n: int) -> str:
    """N districts: every tenth large (6,000 students), the others small (300 to 1,500),
    vendors in turn, grade passback for a third; the last one's SIS is down, the one before
    has a Canvas that fails every import."""
    lines = ["tenants:"]
    for i in range(n):
        vendor = VENDORS[i % len(VENDORS)]
        version = "1.2" if vendor == "infinite_campus" else "1.1"
        students = 6000 if i % 10 == 0 else 300 + (i * 137) % 1200
        name = {n - 1: DOWN, n - 2: BROKEN_CANVAS}.get(i, f"fleet-{i:03d}")
        faults = (
            ', step_retries: 0, retry_attempts: 2, simulator_faults: [{path: "/", status: 503, times: 100000}]'
            if name == DOWN
            else ""
        )
        broken = ", simulator_fail_imports: true" if name == BROKEN_CANVAS else ""
        gpb = (
            "\n    gpb: {endpoints: standard, default_category: Homework, sync_interval_s: 0}"
            if i % 3 == 1
            else ""
        )
        lines.append(
            f"  {name}:\n    vendor: {vendor}\n"
            f'    oneroster: {{version: "{version}", source: simulator, students: {students}, seed: {i + 1}{faults}}}\n'
            f'    canvas: {{source: simulator, sis_id_prefix: "f{i}-"{broken}}}{gpb}'
        )
    return "\n".join(lines) + "\n"


@dataclass
class Deployment:
    home: Path
    data: Path
    env: dict[str, str]
    webserver: str
    hosts: WorkerHosts | None = None  # the Celery workers' hosts, if the steps run on Celery


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        argv,
        env=env,
        cwd=ROOT,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


@contextmanager
def broker_vhost(name: str) -> Iterator[str]:
    """A RabbitMQ virtual host of the deployment's own: its queue meets no other fleet's."""
    # Fresh, as the database is: a vhost left by a run that was killed is emptied first.
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", name], capture_output=True)
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", name], check=True, capture_output=True)
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", name, "guest", ".*", ".*", ".*"],
        check=True,
        capture_output=True,
    )
    try:
        yield name
    finally:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", name], capture_output=True)


@contextmanager
def celery_workers(env: dict[str, str], workdir: Path, count: int) -> Iterator[WorkerHosts]:
    """Celery workers on hosts of their own (deploy/celery/worker.yaml), each with its own
    DAGSTER_HOME, reaching PostgreSQL, the broker and Redis at the bridge's address."""
    bin_dir = Path(sys.executable).parent
    # PostgreSQL forwarded from wherever the DAGSTER_PG_* variables say it is.
    services = {**SERVICES, 5432: (env["DAGSTER_PG_HOST"], int(env["DAGSTER_PG_PORT"]))}
    with worker_hosts(count, services) as hosts:
        workers = []
        for i in range(count):
            home = workdir / f"worker-{i}"
            home.mkdir()
            shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
            worker_env = {
                **env,
                "DAGSTER_HOME": str(home),
                "DAGSTER_PG_HOST": hosts.gateway,
                "DAGSTER_PG_PORT": "5432",
                "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
                **{
                    k: env[k].replace("127.0.0.1", hosts.gateway)
                    for k in ("DAGSTER_CELERY_BROKER_URL", "DAGSTER_CELERY_BACKEND_URL")
                },
            }
            argv = [str(bin_dir / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app"]
            argv += ["-y", str(ROOT / "deploy" / "celery" / "worker.yaml"), "-n", f"host{i}"]
            workers.append(_start(hosts.command(i, argv), worker_env, workdir / f"worker-{i}.log"))
        try:
            yield hosts
        finally:
            for ns in hosts.namespaces:
                kill_host(ns)
            for worker in workers:
                worker.wait(30)


@contextmanager
def deployment(
    tenants_yaml: str,
    workdir: Path,
    celery_hosts: int = 0,
    prepare: Callable[[Any], None] | None = None,
    database: str | None = None,
) -> Iterator[Deployment]:
    """A fresh PostgreSQL database on the ``DAGSTER_PG_*`` server (``database``, or one of its
    own), the production dagster.yaml, the daemon and the webserver; with ``celery_hosts``,
    the steps of every run execute on Celery workers on that many hosts; ``prepare`` is given
    the instance before the daemon starts."""
    with contextlib.ExitStack() as stack:
        name = stack.enter_context(fresh_database("sis_fleet", database))
        home, data = workdir / "home", workdir / "data"
        home.mkdir(parents=True)
        shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
        (workdir / "tenants.yaml").write_text(tenants_yaml)
        env = {
            **os.environ,
            **pg_server(),
            "DAGSTER_HOME": str(home),
            "DAGSTER_PG_DB": name,
            "SIS_PIPELINES_DATA_DIR": str(data),
            "SIS_PIPELINES_TENANTS": str(workdir / "tenants.yaml"),
            "SIS_PIPELINES_FIRST_NIGHT": os.environ.get("SIS_PIPELINES_FIRST_NIGHT", "2026-08-01"),
        }
        hosts = None
        if celery_hosts:
            vhost = stack.enter_context(broker_vhost(name))
            env |= {
                "SIS_PIPELINES_EXECUTOR": "celery",
                "DAGSTER_CELERY_BROKER_URL": f"pyamqp://guest:guest@127.0.0.1:5672/{vhost}",
                "DAGSTER_CELERY_BACKEND_URL": "redis://127.0.0.1:6379/0",
            }
            hosts = stack.enter_context(celery_workers(env, workdir, celery_hosts))
        stack.enter_context(_environment(env))
        if prepare is not None:
            import dagster as dg

            prepare(dg.DagsterInstance.get())
        bin_dir = Path(sys.executable).parent
        port = _free_port()
        workspace = str(ROOT / "workspace.yaml")
        daemon = [str(bin_dir / "dagster-daemon"), "run", "-w", workspace]
        webserver = [str(bin_dir / "dagster-webserver"), "-w", workspace, "-p", str(port)]
        stack.enter_context(_service(daemon, env, workdir / "daemon.log"))
        stack.enter_context(
            _service([*webserver, "-h", "127.0.0.1"], env, workdir / "webserver.log")
        )
        yield Deployment(home, data, env, f"http://127.0.0.1:{port}", hosts)


@contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    """This process with the deployment's environment (its instance, tenants and lake)."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextmanager
def _service(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """A process of the deployment's (the daemon, the webserver), stopped with its group."""
    process = _start(argv, env, log)
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(30)
        # The code servers the daemon and the webserver started are in their groups, and one
        # that ignores SIGTERM would outlive them.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_for(done, timeout: float, what: str, every: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def registered(instance) -> set[str]:
    from sis_pipelines.defs.partitions import registered as known

    return set(known(instance))


def nightly_requests(instance, night: date) -> list:
    """The nightly schedule's run requests for the night, as its tick at 02:30 makes them."""
    import dagster as dg

    from sis_pipelines.definitions import defs
    from sis_pipelines.defs.automation.schedules import nightly_schedule

    when = datetime.combine(night + timedelta(days=1), datetime.min.time(), UTC) + timedelta(
        hours=2, minutes=30
    )
    context = dg.build_schedule_context(
        instance=instance, scheduled_execution_time=when, repository_def=defs.get_repository_def()
    )
    return list(nightly_schedule.evaluate_tick(context).run_requests or [])


def submit_runs(instance, requests: list, threads: int = 1) -> list[str]:
    """The requests' runs created and submitted to the queue, as the daemon's scheduler does
    (on ``threads`` threads, its ``num_submit_workers``)."""
    from sis_pipelines.definitions import defs
    from sis_pipelines.operate.runs import create_run

    job = defs.resolve_job_def("nightly")

    def submit(request) -> str:
        run, _ = create_run(
            instance,
            job,
            request.partition_key,
            {**request.tags, "dagster/schedule_name": "nightly_schedule"},
            list(request.asset_selection) if request.asset_selection else None,
            {},
        )
        instance.submit_run(run.run_id, workspace=None)  # type: ignore[arg-type]
        return run.run_id

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(submit, requests))


def tick_nightly(instance, night: date) -> list[str]:
    """The nightly schedule's tick for the night, its run requests submitted to the queue."""
    return submit_runs(instance, nightly_requests(instance, night))


FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}


def follow(instance, run_ids: list[str], timeout: float) -> list:
    """Every run, and the retry the instance makes of each failed one, to its end."""
    import dagster as dg

    def records():
        return instance.get_run_records(dg.RunsFilter(job_name="nightly"))

    def awaits_retry(run) -> bool:
        return (
            run.status.value == "FAILURE"
            and int(run.tags.get("dagster/retry_number", 0)) < instance.run_retries_max_retries
        )

    def ended() -> bool:
        found = records()
        parents = {r.dagster_run.tags.get("dagster/parent_run_id") for r in found}
        return len(found) >= len(run_ids) and all(
            r.dagster_run.status.value in FINISHED
            and not (awaits_retry(r.dagster_run) and r.dagster_run.run_id not in parents)
            for r in found
        )

    wait_for(ended, timeout, f"{len(run_ids)} runs and their retries to end", every=2.0)
    return records()


def most_in_flight(spans: list[tuple[float, float, str]]) -> dict[str, int]:
    """The most runs in flight at once per key, from (start, end, key) spans."""
    events = sorted(
        [(s, 1, k) for s, _, k in spans] + [(e, -1, k) for _, e, k in spans],
        key=lambda x: (x[0], x[1]),
    )
    now: dict[str, int] = {}
    most: dict[str, int] = {}
    for _, step, key in events:
        now[key] = now.get(key, 0) + step
        most[key] = max(most.get(key, 0), now[key])
    return most


@dataclass
class FleetNight:
    tenants: int
    runs: int
    succeeded: list[str]
    failed: dict[str, str]  # tenant -> why (its last run's failure)
    wall_s: float
    runs_per_hour: float
    in_flight: int
    per_vendor: dict[str, int]
    per_tenant: int
    retried: list[str] = field(default_factory=list)  # tenants whose night ran more than once
    steps_per_worker: dict[str, int] = field(default_factory=dict)  # Celery hosts only
    killed_worker: str | None = None


def figures(instance, records) -> FleetNight:
    """From the PostgreSQL run records: outcomes, wall time, rate, the most in flight."""
    from sis_pipelines.operate import step_error
    from sis_pipelines.operate.runs import failed_steps

    spans, vendor_spans, tenant_spans = [], [], []
    final: dict[str, object] = {}
    for r in sorted(records, key=lambda r: r.create_timestamp):
        run = r.dagster_run
        tenant = run.tags.get("tenant", "?")
        final[tenant] = r
        if r.start_time and r.end_time:
            spans.append((r.start_time, r.end_time, "all"))
            vendor_spans.append((r.start_time, r.end_time, run.tags.get("sis_vendor", "?")))
            tenant_spans.append((r.start_time, r.end_time, tenant))
    runs_of = Counter(r.dagster_run.tags.get("tenant", "?") for r in records)
    succeeded = sorted(t for t, r in final.items() if r.dagster_run.status.value == "SUCCESS")
    failed = {}
    for t, r in sorted(final.items()):
        if r.dagster_run.status.value != "SUCCESS":
            errors = [
                step_error(s.error) for s in failed_steps(instance, r.dagster_run.run_id) if s.error
            ]
            failed[t] = errors[0] if errors else r.dagster_run.status.value
    start = min(s for s, _, _ in spans) if spans else 0.0
    end = max(e for _, e, _ in spans) if spans else 0.0
    wall = max(end - start, 1e-9)
    return FleetNight(
        tenants=len(final),
        runs=len(records),
        succeeded=succeeded,
        failed=failed,
        wall_s=wall,
        runs_per_hour=len(records) / wall * 3600,
        in_flight=most_in_flight(spans).get("all", 0),
        per_vendor=most_in_flight(vendor_spans),
        per_tenant=max(most_in_flight(tenant_spans).values(), default=0),
        retried=sorted(t for t, runs in runs_of.items() if runs > 1),
    )


class WorkerSteps:
    """Which Celery worker host started each step, read from the instance's engine events
    (the worker's "Executing steps ... in celery worker" event) as they arrive."""

    def __init__(self, instance):
        self.instance = instance
        self.after: int | None = None  # the last event's storage id read
        self.counts: dict[str, int] = {}

    def read(self) -> dict[str, int]:
        import dagster as dg

        while True:
            # The storage's own query: engine events have no fetch_* of their own.
            found = self.instance.event_log_storage.get_event_records(
                dg.EventRecordsFilter(dg.DagsterEventType.ENGINE_EVENT, after_cursor=self.after),
                limit=1000,
                ascending=True,
            )
            for record in found:
                event = record.event_log_entry.dagster_event
                data = event.engine_event_data if event else None
                worker = data.metadata.get("Celery worker") if data else None
                if worker is not None:
                    host = str(worker.value).split("@")[0]
                    self.counts[host] = self.counts.get(host, 0) + 1
                self.after = record.storage_id
            if len(found) < 1000:
                return self.counts


def kill_a_worker_mid_night(
    steps: WorkerSteps, hosts: WorkerHosts, after_steps: int, timeout: float
) -> str:
    """Once worker host 0 has started ``after_steps`` steps, kills every process on it."""
    wait_for(
        lambda: steps.read().get("host0", 0) >= after_steps,
        timeout,
        f"{after_steps} steps on worker host 0",
        every=0.5,
    )
    kill_host(hosts.namespaces[0])
    return hosts.namespaces[0]


def fleet_night(
    n: int,
    night: date,
    workdir: Path,
    timeout: float = 3600,
    celery_hosts: int = 0,
    kill_worker_after: int = 0,
    database: str | None = None,
) -> FleetNight:
    """The night of ``n`` districts; with ``kill_worker_after``, Celery worker host 0 is killed
    once it has started that many steps."""
    import dagster as dg

    with deployment(fleet_tenants(n), workdir, celery_hosts, database=database) as fleet:
        instance = dg.DagsterInstance.get()
        wait_for(lambda: len(registered(instance)) == n, 240, "the onboarding sensor", every=2.0)
        run_ids = tick_nightly(instance, night)
        assert len(run_ids) == n, f"the schedule asked for {len(run_ids)} runs, not {n}"
        steps, killed = WorkerSteps(instance), None
        if kill_worker_after and fleet.hosts is not None:
            killed = kill_a_worker_mid_night(steps, fleet.hosts, kill_worker_after, timeout)
        records = follow(instance, run_ids, timeout)
        result = figures(instance, records)
        if fleet.hosts is not None:
            result.steps_per_worker = dict(steps.read())
            result.killed_worker = killed
        print(f"webserver: {fleet.webserver} (stopped at the end)")
        return result


def report(n: int, night: date, result: FleetNight, celery_hosts: int = 0) -> str:
    limits = "one run per tenant, at most 2 Infinite Campus runs, at most 8 runs"
    command = f"make fleet N={n}" + (f" CELERY_HOSTS={celery_hosts}" if celery_hosts else "")
    where = (
        f"every step on Celery workers on {celery_hosts} hosts of their own (network "
        "namespaces; broker RabbitMQ, results Redis)"
        if celery_hosts
        else "each run's steps in the run's own process"
    )
    lines = [
        f"# A fleet night: {n} districts",
        "",
        f"`{command}` ({datetime.now(UTC):%Y-%m-%d}, night {night}): PostgreSQL, "
        "`dagster-daemon run` and the webserver as processes of their own, the top-level "
        f"`dagster.yaml` ({limits}), {where}; 2 cores.",
        "",
        "| | |",
        "|---|---|",
        f"| runs succeeded / failed (tenants) | {len(result.succeeded)} / {len(result.failed)} |",
        f"| runs, retries included | {result.runs} |",
        f"| wall time of the night | {result.wall_s:.0f} s |",
        f"| runs per hour | {result.runs_per_hour:.0f} |",
        f"| most runs in flight | {result.in_flight} (limit 8) |",
        "| most in flight per vendor | "
        + ", ".join(f"{v} {k}" for k, v in sorted(result.per_vendor.items()))
        + " (Infinite Campus limit 2) |",
        f"| most in flight per tenant | {result.per_tenant} (limit 1) |",
        f"| nights run again by the run retry policy | {', '.join(result.retried) or 'none'} |",
    ]
    if result.steps_per_worker:
        lines.append(
            "| steps started per worker host | "
            + ", ".join(f"{h} {c}" for h, c in sorted(result.steps_per_worker.items()))
            + (
                f" (host0, {result.killed_worker}, killed mid-night: every process on it at "
                "once; the steps it held went back to the queue)"
                if result.killed_worker
                else ""
            )
            + " |"
        )
    for tenant, why in result.failed.items():
        lines.append(f"| failed: {tenant} | {why} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet")
    parser.add_argument("--tenants", type=int, default=40)
    parser.add_argument("--night", type=date.fromisoformat, default=None)
    parser.add_argument(
        "--celery-hosts",
        type=int,
        default=0,
        help="run every step on Celery workers on this many hosts (network namespaces)",
    )
    parser.add_argument(
        "--kill-a-worker-after",
        type=int,
        default=0,
        metavar="STEPS",
        help="kill Celery worker host 0 once it has started this many steps",
    )
    args = parser.parse_args()
    from sis_pipelines.core.nights import latest_complete_night

    night = args.night or latest_complete_night()
    workdir = Path(tempfile.mkdtemp(prefix="sis-fleet-"))
    result = fleet_night(
        args.tenants,
        night,
        workdir,
        celery_hosts=args.celery_hosts,
        kill_worker_after=args.kill_a_worker_after,
        # The interface's default database; tests take one of their own each.
        database=os.environ.get("DAGSTER_PG_DB") or "sis_fleet",
    )
    text = report(args.tenants, night, result, args.celery_hosts)
    RESULTS.mkdir(exist_ok=True)
    suffix = f"-celery-{args.celery_hosts}" if args.celery_hosts else ""
    (RESULTS / f"fleet-{args.tenants}{suffix}.md").write_text(text)
    print(text)
    shutil.rmtree(workdir, ignore_errors=True)
    return 0 if set(result.failed) <= {DOWN, BROKEN_CANVAS} else 1


if __name__ == "__main__":
    sys.exit(main())
