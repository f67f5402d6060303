"""A run of one tenant-night, as the UI makes it: checked before it is made (the night, the
selection, the secrets, the stored inputs), then followed step by step."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from ..core.errors import StoredStateError, UsageError
from ..core.nights import first_night, latest_complete_night
from ..core.tags import on, tenant_tags
from .instance import console, first_line
from .tenants import known_tenant


@dataclass
class RunOutcome:
    tenant: str
    night: date
    success: bool
    run_id: str
    errors: list[str]


def check_night(night: date) -> date:
    """A night that is a partition: from SIS_PIPELINES_FIRST_NIGHT to the last complete night."""
    first, last = date.fromisoformat(first_night()), latest_complete_night()
    if not first <= night <= last:
        raise UsageError(
            f"night {night} is not one of the nights {first} .. {last} "
            "(they start at SIS_PIPELINES_FIRST_NIGHT and end at the last complete night)"
        )
    return night


def selection_of(select: str) -> list:
    import dagster as dg

    from ..definitions import defs

    try:
        keys = dg.AssetSelection.from_string(select).resolve(defs.resolve_asset_graph())
    except Exception as exc:  # the parser and the resolver raise several kinds
        raise UsageError(
            f"--select {select!r} is not a selection of this pipeline's assets: "
            f"{first_line(str(exc))} (e.g. group:oneroster, key:canvas/delta+)"
        ) from None
    if not keys:
        raise UsageError(f"--select {select!r} matches no asset (e.g. group:oneroster)")
    return sorted(keys)


def step_error(error) -> str:
    """One line for a failed step: the deepest cause (a missing input names its file)."""
    while error is not None and error.cause is not None:
        error = error.cause
    if error is None:
        return "failed"
    lines = [line.strip() for line in error.message.strip().splitlines() if line.strip()]
    message = lines[0] if lines else "failed"
    if message.endswith(":") and len(lines) > 1:  # "1 blocking asset check failed …:" + which
        message = f"{message} {'; '.join(lines[1:4])}"
    head, sep, rest = message.partition(": ")
    # "package.module.Error: what happened": the class is not the operator's business.
    return rest if sep and " " not in head else message


def step_errors(ends) -> list[str]:
    """One line per distinct error of the failed steps among ``ends``, naming the steps it
    stopped (a missing secret fails every fetch: said once)."""
    failed: dict[str, list[str]] = {}
    for end in ends:
        if end.outcome == "FAILED":
            failed.setdefault(step_error(end.error), []).append(end.step)
    return [f"{', '.join(steps)}: {message}" for message, steps in failed.items()]


def secrets_set(tenant_id: str, tenant, selection) -> None:
    """Before a run is made: every variable the selected steps will read is set, else one
    line naming the first missing (the run would fail in each step that needs it)."""
    from ..core.errors import MissingSecretError
    from ..core.tenants import secret_variables
    from ..definitions import defs

    keys = selection if selection is not None else defs.resolve_asset_graph().get_all_asset_keys()
    groups = {key.path[0] for key in keys}
    for group, needed in secret_variables(tenant).items():
        if group not in groups:
            continue
        for key, variable in needed:
            if not os.environ.get(variable):
                raise MissingSecretError(
                    f"tenant {tenant_id!r}: environment variable {variable} ({key}) is not set; "
                    "set it and run again (nothing was run)"
                )


def inputs_stored(
    tenant_id: str, tenant, nights: list[date], selection, force_refetch: bool
) -> None:
    """Before a run is made: every OneRoster snapshot the selected steps read and do not make
    is stored, and a real SIS is not asked for a past night (it serves only today). Else one
    line saying which night lacks what, and what to run."""
    from ..core.lake import Lake
    from ..core.nights import is_past

    if tenant.oneroster is None:  # a CSV Gateway tenant reads its drop, not snapshots
        return
    from ..definitions import defs

    graph = defs.resolve_asset_graph()
    keys = set(selection if selection is not None else graph.get_all_asset_keys())
    lake = Lake.at()
    rest = tenant.oneroster.source == "rest"
    for night in nights:
        wanted = {
            parent
            for key in keys
            if graph.has(key)
            for parent in graph.get(key).parent_keys
            if parent.path[0] == "oneroster" and parent not in keys
        }
        if rest and is_past(night) and not force_refetch:
            wanted |= {k for k in keys if k.path[0] == "oneroster"}
        for key in sorted(wanted):
            name = key.path[-1]
            if tenant.privacy.leaves_out(name) or lake.snapshot(name, night, tenant_id).exists():
                continue
            if key in keys:
                raise StoredStateError(
                    f"tenant {tenant_id!r}, night {night}: no oneroster/{name} snapshot stored, "
                    "and the SIS serves only its present state; add --force-refetch to store "
                    "today's data as that night (recorded), or choose a stored night"
                )
            raise StoredStateError(
                f"tenant {tenant_id!r}, night {night}: no oneroster/{name} snapshot stored; "
                f"materialize it first: sis-pipelines run --tenant {tenant_id} --night {night} "
                "--select group:oneroster"
            )


def run_tenant_night(
    instance,
    tenant: str,
    night: date,
    select: str | None = None,
    force_refetch: bool = False,
    extra_tags: dict[str, str] | None = None,
    verbose: bool = False,
    progress: Callable[[str], None] | None = None,
) -> RunOutcome:
    """A run of the nightly job (or the selection) for the tenant-night, as the UI makes it;
    ``progress`` hears a line per step as it ends."""
    from ..core.tags import FORCE_REFETCH
    from ..definitions import defs
    from ..defs.partitions import partition_key
    from ..defs.selection import tenant_selection
    from .runs import create_run, run_and_follow

    tenants = known_tenant(instance, tenant)
    check_night(night)
    selection = selection_of(select) if select else tenant_selection(tenants[tenant])
    secrets_set(tenant, tenants[tenant], selection)
    inputs_stored(tenant, tenants[tenant], [night], selection, force_refetch)
    job = defs.resolve_job_def("nightly")
    tags = {**tenant_tags(tenant, tenants[tenant].vendor), **(extra_tags or {})}
    if force_refetch:
        tags |= on(FORCE_REFETCH)
    run, recon = create_run(
        instance,
        job,
        str(partition_key(tenant, night)),
        tags,
        selection,
        console(verbose),
    )
    ends = []

    def on_step(end) -> None:
        ends.append(end)
        if progress is not None:
            progress(f"  {end.step:<40} {end.outcome}")

    finished = run_and_follow(instance, run, recon, on_step, on_notice=progress or print)
    return RunOutcome(tenant, night, finished.is_success, run.run_id, step_errors(ends))
