"""``sis-pipelines``: the operator command line, on the instance in DAGSTER_HOME."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from .defs.tags import BACKFILL, DELIBERATE, FORCE_PUSH, on
from .nights import parse_night, partition_budget
from .tenants import TenantsFileError, load_tenants, tenants_path


@dataclass
class RunOutcome:
    tenant: str
    night: date
    success: bool
    run_id: str
    errors: list[str]


def _instance():
    import dagster as dg

    try:
        return dg.DagsterInstance.get()
    except dg.DagsterInvariantViolationError as exc:
        raise SystemExit(f"sis-pipelines: {exc}") from None


def sync_tenants(instance, out=print) -> tuple[list[str], list[str]]:
    """Register enabled tenants as `tenant` partitions; disabled ones keep theirs (and data).

    Warns when tenants x nights passes the partitions Dagster recommends per asset."""
    from .defs.partitions import register_tenants

    tenants_file = load_tenants()
    tenants = tenants_file.tenants
    new = register_tenants(instance, tenants_file)
    disabled = [t for t, cfg in sorted(tenants.items()) if not cfg.enabled]
    for t in sorted(tenants):
        state = (
            "added"
            if t in new
            else "disabled (not scheduled, data kept)"
            if t in disabled
            else "registered"
        )
        out(f"  {t:<32} {tenants[t].vendor:<16} {state}")
    budget = partition_budget(len(tenants))
    if not budget.within_limit:
        out(f"warning: {budget.advice()}")
    return new, disabled


def run_tenant_night(
    instance,
    tenant: str,
    night: date,
    select: str | None = None,
    force_refetch: bool = False,
    extra_tags: dict[str, str] | None = None,
) -> RunOutcome:
    import dagster as dg

    from .definitions import defs
    from .defs.partitions import add_tenants, partition_key, registered
    from .defs.tags import FORCE_REFETCH, tenant_tags

    tenants = load_tenants().tenants
    if tenant not in tenants:
        raise SystemExit(
            f"sis-pipelines: tenant {tenant!r} is not in the tenants file {tenants_path()}"
        )
    if tenant not in registered(instance):
        # A disabled tenant can still be run by hand: it gets its partition for this run.
        add_tenants(instance, [tenant])
    job = defs.resolve_job_def("nightly")
    selection = None
    if select:
        graph = defs.resolve_asset_graph()
        selection = sorted(dg.AssetSelection.from_string(select).resolve(graph))
        if not selection:
            raise SystemExit(f"sis-pipelines: the selection {select!r} matches no asset")
    tags = {**tenant_tags(tenant, tenants[tenant].vendor), **(extra_tags or {})}
    if force_refetch:
        tags |= on(FORCE_REFETCH)
    result = job.execute_in_process(
        instance=instance,
        partition_key=str(partition_key(tenant, night)),
        tags=tags,
        raise_on_error=False,
        asset_selection=selection,
        run_config={
            "loggers": {
                "console": {
                    "config": {"log_level": os.environ.get("SIS_PIPELINES_LOG_LEVEL", "WARNING")}
                }
            }
        },
    )
    errors = []
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            error = event.event_specific_data.error  # type: ignore[union-attr]
            errors.append(f"{event.step_key}: {error.message.strip() if error else 'failed'}")
    return RunOutcome(tenant, night, result.success, result.run_id, errors)


def _report(outcome: RunOutcome) -> None:
    status = "ok" if outcome.success else "FAILED"
    print(f"{outcome.tenant} {outcome.night}: {status} (run {outcome.run_id})")
    for error in outcome.errors:
        print(f"  {error}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sis-pipelines", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    tenants = sub.add_parser("tenants", help="the tenants file")
    tenants.add_argument("action", choices=["sync"])
    run = sub.add_parser("run", help="materialize one tenant-night")
    run.add_argument("--tenant", required=True)
    run.add_argument("--night", required=True, help="YYYY-MM-DD or latest")
    run.add_argument("--select", help="Dagster asset selection, e.g. group:oneroster")
    run.add_argument(
        "--force-refetch",
        action="store_true",
        help="fetch from the SIS even if the night is stored (recorded)",
    )
    for flag, (_, help_text) in DELIBERATE.items():
        run.add_argument(flag, action="store_true", help=help_text)
    backfill = sub.add_parser(
        "backfill", help="one tenant over a range of nights, from stored snapshots"
    )
    backfill.add_argument("--tenant", required=True)
    backfill.add_argument("--from", dest="first", required=True)
    backfill.add_argument("--to", dest="last", required=True)
    backfill.add_argument("--select")
    backfill.add_argument("--force-push", action="store_true", help=DELIBERATE["--force-push"][1])
    args = parser.parse_args(argv)
    try:
        instance = _instance()
        if args.command == "tenants":
            new, disabled = sync_tenants(instance)
            print(f"tenants synced: {len(new)} added, {len(disabled)} disabled")
            return 0
        if args.command == "run":
            deliberate = on(
                *(
                    tag
                    for flag, (tag, _) in DELIBERATE.items()
                    if getattr(args, flag.lstrip("-").replace("-", "_"))
                )
            )
            outcome = run_tenant_night(
                instance,
                args.tenant,
                parse_night(args.night),
                args.select,
                args.force_refetch,
                extra_tags=deliberate,
            )
            _report(outcome)
            return 0 if outcome.success else 1
        first, last = parse_night(args.first), parse_night(args.last)
        if last < first:
            raise SystemExit("sis-pipelines: --to is before --from")
        failed = 0
        night = first
        while night <= last:
            outcome = run_tenant_night(
                instance,
                args.tenant,
                night,
                args.select,
                extra_tags={
                    BACKFILL: f"{first}..{last}",
                    **(on(FORCE_PUSH) if args.force_push else {}),
                },
            )
            _report(outcome)
            failed += not outcome.success
            night += timedelta(days=1)
        return 1 if failed else 0
    except (TenantsFileError, ValueError) as exc:
        print(f"sis-pipelines: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
