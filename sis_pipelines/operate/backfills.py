"""Backfills of one tenant over a range of nights, as the UI's Backfills page shows them.

A backfill is Dagster's own record (a partition-set backfill of a job): the Backfills page
lists it with its nights and runs, and its Cancel and Resume act on it. When the instance's
daemon runs (the production deployment, ``make ui``) the daemon launches its runs and the
caller follows them. Without a daemon (the demo, the tests, an operator's laptop) the caller
launches them itself, night by night, in the order the daemon would, and keeps the same
checkpoint: a backfill cancelled in the UI stops before its next night; one interrupted here
is marked failed, so the UI offers Resume, and ``sis-pipelines backfill --resume ID`` (or a
daemon) carries on from the last night launched.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import dagster as dg
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
from dagster._core.remote_origin import RemotePartitionSetOrigin
from dagster._core.remote_representation.external_data import (
    partition_set_snap_name_for_job_name,
)
from dagster._core.storage.dagster_run import RunsFilter
from dagster._core.utils import make_new_backfill_id
from dagster._time import get_current_timestamp

from ..core.errors import UsageError
from .runs import daemon_beats, repository_origin

BACKFILL_DAEMON = "BACKFILL"
FINISHED = {
    BulkActionStatus.COMPLETED_SUCCESS,
    BulkActionStatus.COMPLETED_FAILED,
    BulkActionStatus.CANCELED,
    BulkActionStatus.FAILED,
}
RESUMABLE = {BulkActionStatus.FAILED, BulkActionStatus.CANCELED, BulkActionStatus.REQUESTED}


@dataclass(frozen=True)
class BackfillEnd:
    backfill_id: str
    status: str  # Dagster's BulkActionStatus name
    launched: int  # nights launched, by this call or earlier ones
    nights: int


def create_backfill(
    instance: dg.DagsterInstance,
    job_name: str,
    partition_names: Sequence[str],
    tags: Mapping[str, str],
    asset_selection: Sequence[dg.AssetKey] | None,
    title: str,
    description: str | None = None,
) -> PartitionBackfill:
    """Records the backfill (status requested) and returns it."""
    backfill = PartitionBackfill(
        backfill_id=make_new_backfill_id(),
        status=BulkActionStatus.REQUESTED,
        from_failure=False,
        tags=dict(tags),
        backfill_timestamp=get_current_timestamp(),
        asset_selection=list(asset_selection) if asset_selection else None,
        title=title,
        description=description,
        partition_set_origin=RemotePartitionSetOrigin(
            repository_origin=repository_origin(),
            partition_set_name=partition_set_snap_name_for_job_name(job_name),
        ),
        partition_names=list(partition_names),
    )
    instance.add_backfill(backfill)
    return backfill


def resumable(instance: dg.DagsterInstance, backfill_id: str) -> PartitionBackfill:
    """The backfill, ready to carry on from its checkpoint; ValueError says why it cannot."""
    backfill = instance.get_backfill(backfill_id)
    if backfill is None or backfill.partition_names is None:
        raise UsageError(f"no backfill {backfill_id} of this pipeline's jobs on this instance")
    if backfill.status not in RESUMABLE:
        raise UsageError(
            f"backfill {backfill_id} is {backfill.status.value.lower()}: nothing to resume"
        )
    if _unfinished_runs(instance, backfill_id):
        raise UsageError(f"backfill {backfill_id} has a run in progress: it is being run already")
    backfill = backfill.with_status(BulkActionStatus.REQUESTED)
    instance.update_backfill(backfill)
    return backfill


def _unfinished_runs(instance: dg.DagsterInstance, backfill_id: str) -> bool:
    from dagster._core.storage.dagster_run import NOT_FINISHED_STATUSES

    return bool(
        instance.get_run_ids(
            RunsFilter(
                tags=dg.DagsterRun.tags_for_backfill_id(backfill_id),
                statuses=list(NOT_FINISHED_STATUSES),
            ),
            limit=1,
        )
    )


def carry_out(
    instance: dg.DagsterInstance,
    backfill: PartitionBackfill,
    run_night: Callable[[str, dict[str, str]], object],
    on_run: Callable[[dg.DagsterRun], None],
    on_notice: Callable[[str], None] = print,
) -> BackfillEnd:
    """Launches the backfill's runs (or, with a daemon, follows the daemon's) to its end.

    ``run_night(partition_name, tags)`` runs one night in this process (the backfill's
    outcome is read from its runs); ``on_run`` hears of each finished run when the daemon
    launches them."""
    if daemon_beats(instance, BACKFILL_DAEMON):
        return _follow(instance, backfill.backfill_id, on_run, on_notice)
    names = list(backfill.partition_names or [])
    start = (
        names.index(backfill.last_submitted_partition_name) + 1
        if backfill.last_submitted_partition_name in names
        else 0
    )
    tags = {**backfill.tags, **dg.DagsterRun.tags_for_backfill_id(backfill.backfill_id)}
    try:
        for launched, name in enumerate(names[start:], start=start):
            current = instance.get_backfill(backfill.backfill_id)
            assert current is not None
            if current.status in (BulkActionStatus.CANCELING, BulkActionStatus.CANCELED):
                return _end(instance, current, BulkActionStatus.CANCELED, launched, len(names))
            run_night(name, tags)
            # Read again: the UI may have cancelled it while the night ran.
            current = instance.get_backfill(backfill.backfill_id)
            assert current is not None
            instance.update_backfill(current.with_partition_checkpoint(name))
    except BaseException:
        # Interrupted (Ctrl-C, a lost database): failed, so the UI offers Resume.
        current = instance.get_backfill(backfill.backfill_id)
        if current is not None and current.status not in FINISHED:
            instance.update_backfill(
                current.with_status(BulkActionStatus.FAILED).with_end_timestamp(
                    get_current_timestamp()
                )
            )
        raise
    current = instance.get_backfill(backfill.backfill_id)
    assert current is not None
    if current.status == BulkActionStatus.CANCELING:  # cancelled while the last night ran
        return _end(instance, current, BulkActionStatus.CANCELED, len(names), len(names))
    failed = instance.get_run_ids(
        RunsFilter(
            tags=dg.DagsterRun.tags_for_backfill_id(backfill.backfill_id),
            statuses=[dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED],
        ),
        limit=1,
    )
    status = BulkActionStatus.COMPLETED_FAILED if failed else BulkActionStatus.COMPLETED_SUCCESS
    return _end(instance, current, status, len(names), len(names))


def _end(
    instance: dg.DagsterInstance,
    backfill: PartitionBackfill,
    status: BulkActionStatus,
    launched: int,
    nights: int,
) -> BackfillEnd:
    instance.update_backfill(
        backfill.with_status(status).with_end_timestamp(get_current_timestamp())
    )
    return BackfillEnd(backfill.backfill_id, status.value, launched, nights)


def _follow(
    instance: dg.DagsterInstance,
    backfill_id: str,
    on_run: Callable[[dg.DagsterRun], None],
    on_notice: Callable[[str], None],
) -> BackfillEnd:
    on_notice(f"backfill {backfill_id}: the daemon launches its runs; following them")
    for run in _finished_runs(instance, backfill_id):
        on_run(run)
    backfill = instance.get_backfill(backfill_id)
    assert backfill is not None
    runs = instance.get_run_ids(RunsFilter(tags=dg.DagsterRun.tags_for_backfill_id(backfill_id)))
    names = backfill.partition_names or []
    return BackfillEnd(backfill_id, backfill.status.value, len(runs), len(names))


def _finished_runs(instance: dg.DagsterInstance, backfill_id: str) -> Iterator[dg.DagsterRun]:
    """Each run of the backfill once it ends, until the backfill ends."""
    seen: set[str] = set()
    while True:
        backfill = instance.get_backfill(backfill_id)
        assert backfill is not None
        for run in instance.get_runs(
            RunsFilter(tags=dg.DagsterRun.tags_for_backfill_id(backfill_id))
        ):
            if run.is_finished and run.run_id not in seen:
                seen.add(run.run_id)
                yield run
        if backfill.status in FINISHED and not _unfinished_runs(instance, backfill_id):
            return
        time.sleep(1.0)
