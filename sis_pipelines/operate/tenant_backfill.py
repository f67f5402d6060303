"""A Dagster backfill of one tenant's nights (the Backfills page lists it), carried out and
followed to its end; a cancelled or interrupted one is resumed by its id."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import date, timedelta

from ..core.errors import UsageError
from ..core.tags import BACKFILL, FORCE_PUSH, on, tenant_tags
from .tenant_night import (
    RunOutcome,
    check_night,
    inputs_stored,
    run_tenant_night,
    selection_of,
    step_errors,
)
from .tenants import known_tenant


def report(outcome: RunOutcome, out: Callable[[str], None] = print) -> None:
    """A tenant-night's outcome in a line, and a line per distinct error (on stderr)."""
    status = "ok" if outcome.success else "FAILED"
    out(f"{outcome.tenant} {outcome.night}: {status} (run {outcome.run_id})")
    for error in outcome.errors:
        print(f"  {error}", file=sys.stderr)


def backfill_nights(
    instance,
    tenant: str,
    first: date,
    last: date,
    select: str | None = None,
    force_push: bool = False,
    verbose: bool = False,
) -> int:
    """A new backfill of the tenant's nights ``first`` .. ``last``; its exit code."""
    from ..defs.partitions import partition_key
    from ..defs.selection import tenant_selection
    from . import backfills

    check_night(first), check_night(last)
    if last < first:
        raise UsageError("--to is before --from")
    known = known_tenant(instance, tenant)
    selection = selection_of(select) if select else tenant_selection(known[tenant])
    nights = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    inputs_stored(tenant, known[tenant], nights, selection, False)
    record = backfills.create_backfill(
        instance,
        "nightly",
        [str(partition_key(tenant, n)) for n in nights],
        {
            BACKFILL: f"{first}..{last}",
            # The Backfills page shows a backfill's tags: which district it is.
            **tenant_tags(tenant, known[tenant].vendor),
            **(on(FORCE_PUSH) if force_push else {}),
        },
        selection,
        title=f"{tenant} {first}..{last}",
        description=f"tenant {tenant}, nights {first} to {last} ({len(nights)})",
    )
    return _carry_out(instance, record, tenant, select, verbose)


def resume_backfill(instance, backfill_id: str, verbose: bool = False) -> int:
    """Carries on a cancelled or interrupted backfill; its exit code."""
    from ..defs.partitions import split_key
    from . import backfills

    record = backfills.resumable(instance, backfill_id)
    names = list(record.partition_names or [])
    tenant = split_key(names[0])[1] if names else ""
    select = " or ".join(f"key:{k.to_user_string()}" for k in record.asset_selection or []) or None
    return _carry_out(instance, record, tenant, select, verbose)


def _carry_out(instance, record, tenant: str, select: str | None, verbose: bool) -> int:
    total = len(record.partition_names or [])
    print(f"backfill {record.backfill_id} of {tenant}: {total} nights (the UI's Backfills page)")

    from ..defs.partitions import split_key

    def run_night(name: str, tags: dict[str, str]) -> None:
        night = date.fromisoformat(split_key(name)[0])
        report(
            run_tenant_night(
                instance, tenant, night, select, extra_tags=tags, verbose=verbose, progress=print
            )
        )

    def on_run(run) -> None:
        """A run the daemon launched, once it ended, with its failed steps' one-line errors."""
        from .runs import failed_steps

        night = run.tags.get("dagster/partition", run.run_id)
        print(f"{night}: {run.status.value} (run {run.run_id})")
        for line in step_errors(failed_steps(instance, run.run_id)):
            print(f"  {line}", file=sys.stderr)

    from . import backfills

    end = backfills.carry_out(instance, record, run_night, on_run)
    print(
        f"backfill {end.backfill_id}: {end.status.lower().replace('_', ' ')}, "
        f"{end.launched} of {end.nights} nights launched"
    )
    if end.status == "CANCELED" and end.launched < end.nights:
        print(f"  resume it: sis-pipelines backfill --resume {end.backfill_id}")
    return 0 if end.status == "COMPLETED_SUCCESS" else 1
