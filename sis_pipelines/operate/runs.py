"""Runs of a job for one tenant-night, made as the UI and the schedule make them.

A run carries the code location's origin (the location of ``workspace.yaml``), so the UI
lists it under its job and can re-execute it. When the instance's daemon is running (the
production deployment, ``make ui``), the run is submitted to its queue and launched within
the per-tenant and per-vendor limits; without a daemon (the demo, the tests, an operator's
laptop) nothing would ever launch it, so it runs in this process. Either way the caller
hears of each step as it ends.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import dagster as dg
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._core.execution.api import execute_run_iterator
from dagster._core.remote_origin import RemoteRepositoryOrigin
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster._core.workspace.load_target import ModuleTarget

MODULE = "sis_pipelines.definitions"
LOCATION = "sis_pipelines"  # workspace.yaml's location_name
REPOSITORY = "__repository__"  # the repository a Definitions object makes
STEP_EVENTS = {
    dg.DagsterEventType.STEP_SUCCESS: "ok",
    dg.DagsterEventType.STEP_FAILURE: "FAILED",
    dg.DagsterEventType.STEP_SKIPPED: "skipped",
    dg.DagsterEventType.STEP_UP_FOR_RETRY: "retrying",
}
QUEUE_NOTICE_S = 10.0
QUEUE_DAEMON = "QUEUED_RUN_COORDINATOR"
HEARTBEAT_FRESH_S = 60.0
# While a run waits in the queue, whether its daemon still beats is asked this often: a
# daemon stopped after the run was queued would leave the command waiting forever.
DAEMON_RECHECK_S = 15.0


@dataclass(frozen=True)
class StepEnd:
    step: str
    outcome: str  # ok | FAILED | skipped | retrying
    error: object | None  # Dagster's SerializableErrorInfo of a failure


def repository_origin() -> RemoteRepositoryOrigin:
    """The repository as the UI's code location (workspace.yaml) loads it."""
    [location] = ModuleTarget(
        module_name=MODULE, attribute=None, working_directory=os.getcwd(), location_name=LOCATION
    ).create_origins()
    return RemoteRepositoryOrigin(location, REPOSITORY)


def _origins(job_name: str):
    remote = repository_origin().get_job_origin(job_name)
    recon = ReconstructableRepository.for_module(MODULE, "defs", os.getcwd())
    return remote, recon.get_reconstructable_job(job_name)


def create_run(
    instance: dg.DagsterInstance,
    job: dg.JobDefinition,
    partition_key: str | None,
    tags: dict[str, str],
    asset_selection: list[dg.AssetKey] | None,
    run_config: dict,
):
    """A run of ``job`` (for the partition, if it is partitioned), with the code location's
    origin."""
    remote, recon = _origins(job.name)
    partition_tags = {}
    if partition_key is not None:
        with dg.partition_loading_context(dynamic_partitions_store=instance):
            partition_tags = job.get_tags_for_partition_key(
                partition_key, selected_asset_keys=asset_selection
            )
    run = instance.create_run_for_job(
        job_def=job,
        run_config=run_config,
        tags={**partition_tags, **tags},
        asset_selection=frozenset(asset_selection) if asset_selection else None,
        remote_job_origin=remote,
        job_code_origin=recon.get_python_origin(),
    )
    return run, recon


def daemon_beats(instance: dg.DagsterInstance, daemon: str) -> bool:
    """Whether the instance's daemon of that kind beat lately (so it is running)."""
    beat = instance.get_daemon_heartbeats().get(daemon)
    return beat is not None and time.time() - beat.timestamp < HEARTBEAT_FRESH_S


def daemon_launches(instance: dg.DagsterInstance) -> bool:
    """Whether a queued run would be launched: a run queue whose daemon beat lately."""
    return isinstance(instance.run_coordinator, QueuedRunCoordinator) and daemon_beats(
        instance, QUEUE_DAEMON
    )


def run_and_follow(
    instance: dg.DagsterInstance,
    run,
    recon,
    on_step: Callable[[StepEnd], None],
    on_notice: Callable[[str], None] = print,
) -> dg.DagsterRun:
    """Runs (or queues) the run and reports each step as it ends; the finished run."""
    if daemon_launches(instance):
        instance.submit_run(run.run_id, workspace=None)  # type: ignore[arg-type]
        events = _follow_queued(instance, run.run_id, on_notice)
    else:
        events = (e for e in execute_run_iterator(recon, run, instance))
    for event in events:
        outcome = STEP_EVENTS.get(event.event_type)
        if outcome is not None:
            error = getattr(event.event_specific_data, "error", None)
            on_step(StepEnd(str(event.step_key), outcome, error))
    finished = instance.get_run_by_id(run.run_id)
    assert finished is not None
    return finished


def _follow_queued(
    instance: dg.DagsterInstance, run_id: str, on_notice: Callable[[str], None]
) -> Iterator[dg.DagsterEvent]:
    """The run's step events as the daemon's launch writes them, until the run ends."""
    cursor = None
    started, noticed = time.monotonic(), False
    checked = started
    while True:
        run = instance.get_run_by_id(run_id)
        assert run is not None
        if (
            run.status == dg.DagsterRunStatus.QUEUED
            and time.monotonic() - checked >= DAEMON_RECHECK_S
        ):
            checked = time.monotonic()
            if not daemon_beats(instance, QUEUE_DAEMON):
                from ..core.errors import ConfigurationError

                raise ConfigurationError(
                    f"run {run_id} is queued and the daemon that launches queued runs has "
                    f"stopped (no heartbeat in {HEARTBEAT_FRESH_S:.0f} s): start it again "
                    "(make ui, or dagster-daemon run) and it launches the run, or cancel the run "
                    "in the UI (Runs) and run the command again without a daemon"
                )
        records = instance.get_records_for_run(run_id, cursor=cursor, of_type=set(STEP_EVENTS))
        cursor = records.cursor
        for record in records.records:
            if record.event_log_entry.dagster_event is not None:
                yield record.event_log_entry.dagster_event
        if run.is_finished and not records.has_more:
            return
        if (
            run.status == dg.DagsterRunStatus.QUEUED
            and not noticed
            and time.monotonic() - started > QUEUE_NOTICE_S
        ):
            on_notice(
                f"run {run_id} is queued: the daemon (dagster-daemon run) launches it "
                "within the instance's limits"
            )
            noticed = True
        if not records.has_more:
            time.sleep(0.5)


def failed_steps(instance: dg.DagsterInstance, run_id: str) -> list[StepEnd]:
    """The steps of a finished run that failed, with their errors (a run launched elsewhere)."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_FAILURE).records
    return [
        StepEnd(str(event.step_key), "FAILED", getattr(event.event_specific_data, "error", None))
        for record in records
        if (event := record.event_log_entry.dagster_event) is not None
    ]
