"""sis-pipelines: the operator command line, on the Dagster instance in DAGSTER_HOME.

Every mistake an operator can make prints one line that says what to do; --verbose shows
Dagster's own log and tracebacks as well.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from .defs.tags import BACKFILL, DELIBERATE, FORCE_PUSH, on, tenant_tags
from .errors import SisPipelinesError, StoredStateError
from .nights import first_night, latest_complete_night, parse_night, partition_budget
from .tenants import TenantsFileError, load_tenants, tenants_path


@dataclass
class RunOutcome:
    tenant: str
    night: date
    success: bool
    run_id: str
    errors: list[str]


class UsageError(ValueError):
    """An operator's mistake on the command line: one line, exit code 2."""


def _instance():
    import dagster as dg
    from dagster._core.errors import DagsterHomeNotSetError

    try:
        return dg.DagsterInstance.get()
    except DagsterHomeNotSetError:
        raise UsageError(
            "DAGSTER_HOME is not set: point it at the folder of the Dagster instance "
            "(make demo and make ui use ./.dagster_home)"
        ) from None
    except dg.DagsterInvariantViolationError as exc:
        raise UsageError(_first_line(str(exc))) from None


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def quiet_dagster(verbose: bool = False) -> None:
    """Dagster's warnings about its own beta APIs are not the operator's business."""
    import warnings

    import dagster as dg

    if not verbose:
        for category in (dg.BetaWarning, dg.PreviewWarning):
            warnings.filterwarnings("ignore", category=category)


def check_night(night: date) -> date:
    """A night that is a partition: from SIS_PIPELINES_FIRST_NIGHT to the last complete night."""
    first, last = date.fromisoformat(first_night()), latest_complete_night()
    if not first <= night <= last:
        raise UsageError(
            f"night {night} is not one of the nights {first} .. {last} "
            "(they start at SIS_PIPELINES_FIRST_NIGHT and end at the last complete night)"
        )
    return night


def _selection(select: str) -> list:
    import dagster as dg

    from .definitions import defs

    try:
        keys = dg.AssetSelection.from_string(select).resolve(defs.resolve_asset_graph())
    except Exception as exc:  # the parser and the resolver raise several kinds
        raise UsageError(
            f"--select {select!r} is not a selection of this pipeline's assets: "
            f"{_first_line(str(exc))} (e.g. group:oneroster, key:canvas/delta+)"
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


def _in_tenants_file(tenant_id: str) -> dict:
    """The tenants of the tenants file, which has ``tenant_id`` (else one line saying so)."""
    tenants = load_tenants().tenants
    if tenant_id not in tenants:
        raise UsageError(
            f"tenant {tenant_id!r} is not in the tenants file {tenants_path()} "
            f"(it has {', '.join(sorted(tenants)) or 'none'})"
        )
    return tenants


def _known_tenant(instance, tenant: str) -> dict:
    """The tenants of the tenants file, which has ``tenant``, now with its partition."""
    from .defs.partitions import add_tenants, registered

    tenants = _in_tenants_file(tenant)
    if tenant not in registered(instance):
        # A disabled tenant can still be run by hand: it gets its partition for this run.
        add_tenants(instance, [tenant])
    return tenants


def _secrets_set(tenant_id: str, tenant, selection, defs) -> None:
    """Before a run is made: every variable the selected steps will read is set, else one
    line naming the first missing (the run would fail in each step that needs it)."""
    from .errors import MissingSecretError
    from .tenants import secret_variables

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


def _inputs_stored(
    tenant_id: str, tenant, nights: list[date], selection, force_refetch: bool, defs
) -> None:
    """Before a run is made: every OneRoster snapshot the selected steps read and do not make
    is stored, and a real SIS is not asked for a past night (it serves only today). Else one
    line saying which night lacks what, and what to run."""
    from .lake import Lake
    from .nights import is_past

    if tenant.oneroster is None:  # a CSV Gateway tenant reads its drop, not snapshots
        return
    graph = defs.resolve_asset_graph()
    keys = set(selection if selection is not None else graph.get_all_asset_keys())
    lake = Lake.at()
    rest = tenant.oneroster is not None and tenant.oneroster.source == "rest"
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
    from .definitions import defs
    from .defs.partitions import partition_key
    from .defs.selection import tenant_selection
    from .defs.tags import FORCE_REFETCH
    from .runs import create_run, run_and_follow

    tenants = _known_tenant(instance, tenant)
    check_night(night)
    selection = _selection(select) if select else tenant_selection(tenants[tenant])
    _secrets_set(tenant, tenants[tenant], selection, defs)
    _inputs_stored(tenant, tenants[tenant], [night], selection, force_refetch, defs)
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


def _report(outcome: RunOutcome) -> None:
    status = "ok" if outcome.success else "FAILED"
    print(f"{outcome.tenant} {outcome.night}: {status} (run {outcome.run_id})")
    for error in outcome.errors:
        print(f"  {error}", file=sys.stderr)


def console(verbose: bool) -> dict:
    """The run config of a run made here: Dagster's console log only with --verbose."""
    level = "INFO" if verbose else os.environ.get("SIS_PIPELINES_LOG_LEVEL", "CRITICAL")
    return {"loggers": {"console": {"config": {"log_level": level}}}}


def check_freshness(instance, verbose: bool = False, out=print) -> bool:
    """A run of the tenant_freshness job (as its schedule makes it): a line per tenant; whether
    every tenant's night arrived."""
    import dagster as dg

    from .definitions import defs
    from .runs import create_run, run_and_follow

    try:
        job = defs.resolve_job_def("tenant_freshness")
    except dg.DagsterInvariantViolationError:
        raise UsageError(f"the tenants file {tenants_path()} has no tenant to check") from None
    run, recon = create_run(instance, job, None, {}, None, console(verbose))
    run_and_follow(instance, run, recon, on_step=lambda end: None)
    records = instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ).records
    fresh = True
    for record in records:
        evaluation = record.event_log_entry.dagster_event.event_specific_data
        late = evaluation.severity == dg.AssetCheckSeverity.WARN
        status = "ok" if evaluation.passed else "late" if late else "STOPPED"
        out(f"  {status:<8} {evaluation.description}")
        fresh &= evaluation.passed
    out(f"freshness checked (run {run.run_id})")
    return fresh


def sync_grades(
    instance,
    tenant: str,
    courses: list[str],
    allow_mass_removal: bool = False,
    verbose: bool = False,
    out=print,
) -> bool:
    """A run of the grade_sync job for the tenant's courses (all provisioned if none), as the
    sensor launches it; a line of what went to the SIS. Whether it succeeded."""
    from .defs.gpb.sync import sync_request
    from .defs.tags import ALLOW_MASS_REMOVAL

    tenants = _in_tenants_file(tenant)
    cfg = tenants[tenant]
    if cfg.gpb.endpoints == "off" or cfg.canvas is None:
        what = "has no canvas section" if cfg.canvas is None else "has gpb.endpoints: off"
        raise UsageError(
            f"tenant {tenant!r} {what}, so it passes no grades back: nothing to sync "
            f"(set gpb.endpoints in {tenants_path()} to pass grades back)"
        )
    request = sync_request(tenant, cfg, courses, "operator")
    extra = on(ALLOW_MASS_REMOVAL) if allow_mass_removal else {}
    run, finished, ends = run_request(instance, request, extra, verbose)
    if not finished.is_success:
        for error in step_errors(ends):
            out(f"  {error}")
        out(f"{tenant}: grade sync FAILED (run {run.run_id})")
        return False
    meta = _op_metadata(instance, run.run_id)
    out(
        f"{tenant}: grade sync of {meta.get('courses', '?')} courses: "
        + ", ".join(f"{meta.get(k, 0)} {k}" for k in ("sent", "unchanged", "removed", "skipped"))
        + f" (run {run.run_id})"
    )
    return True


def run_request(instance, request, extra_tags: dict[str, str] | None = None, verbose: bool = False):
    """A sensor's or an operator's RunRequest of a non-partitioned job, run as the daemon runs
    it (queued when a daemon launches, here otherwise): the run, its end and its step ends."""
    from .definitions import defs
    from .runs import create_run, run_and_follow

    run, recon = create_run(
        instance,
        defs.resolve_job_def(request.job_name),
        None,
        {**request.tags, **(extra_tags or {})},
        None,
        {**console(verbose), **request.run_config},
    )
    ends: list = []
    finished = run_and_follow(instance, run, recon, on_step=ends.append)
    return run, finished, ends


def _op_metadata(instance, run_id: str) -> dict:
    import dagster as dg

    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_OUTPUT).records
    if not records:
        return {}
    data = records[-1].event_log_entry.dagster_event.event_specific_data
    return {e.label: e.value for e in getattr(data, "metadata_entries", [])} or {
        k: getattr(v, "value", v) for k, v in (getattr(data, "metadata", None) or {}).items()
    }


def check_connections(only: str | None = None, verbose: bool = False, out=print) -> bool:
    """Each tenant's services, a line per check (OK or FAIL and why); whether all are OK.
    Nothing is written but the simulators' own state."""
    import logging

    if not verbose:  # the clients' retry warnings: the FAIL line says what they came to
        logging.getLogger("sis_pipelines").setLevel(logging.ERROR)
    from .connect import Services
    from .connection_check import check_tenant
    from .lake import Lake
    from .nights import latest_complete_night

    tenants = _in_tenants_file(only) if only is not None else load_tenants().tenants
    services, night, ok = Services(Lake.at()), latest_complete_night(), True
    for tenant_id in [only] if only else sorted(tenants):
        for line in check_tenant(services, tenant_id, tenants[tenant_id], night):
            status = "OK" if line.ok else "FAIL"
            out(f"  {tenant_id:<24} {line.what:<32} {status:<5} {line.detail}")
            ok &= line.ok
    return ok


def evaluate_tenant(tenant_id: str, night: date, out=print) -> int:
    """The evaluation of a tenant's night against Canvas as it stands: its summary, and where
    the changes are. Reads the lake and Canvas only (no Dagster instance)."""
    from .canvas.evaluate import evaluate_night
    from .connect import Services
    from .lake import Lake

    tenant = _in_tenants_file(tenant_id)[tenant_id]
    check_night(night)
    if tenant.canvas is None:
        raise UsageError(f"tenant {tenant_id!r} has no canvas section: nothing to evaluate")
    lake = Lake.at()
    figures = evaluate_night(lake, Services(lake), tenant_id, tenant, night)
    out(str(figures["evaluation"]).rstrip())
    out(f"changes: {figures['changes_file']}")
    return 0


def list_tenants(instance, out=print) -> None:
    """Each tenant of the tenants file (and each partition no longer in it): vendor, source,
    whether it is enabled and registered, and the last night stored."""
    from .defs.partitions import registered
    from .lake import CANVAS_MAPPING, Lake

    tenants = load_tenants().tenants
    known = set(registered(instance))
    lake = Lake.at()
    out(
        f"  {'tenant':<32} {'vendor':<16} {'source':<10} {'enabled':<8} {'registered':<11} last night stored"
    )
    for t in sorted(set(tenants) | known):
        cfg = tenants.get(t)
        # A CSV Gateway tenant's nights are its mapped drops.
        nights = (
            lake.stored_nights(CANVAS_MAPPING, "users", t)
            if cfg is not None and cfg.gateway
            else lake.snapshot_nights("orgs", t)
        )
        out(
            f"  {t:<32} {cfg.vendor if cfg else '-':<16} {_source(cfg) if cfg else '-':<10} "
            f"{('yes' if cfg.enabled else 'no') if cfg else 'removed':<8} "
            f"{'yes' if t in known else 'no':<11} {nights[-1] if nights else '-'}"
        )


def _source(tenant) -> str:
    return "canvas_csv" if tenant.gateway else tenant.oneroster.source


def retire_tenant(instance, tenant: str) -> None:
    """Removes a tenant's partition (its runs stop appearing in the partition space); its data
    and run history stay. Refused while the tenants file still has it enabled."""
    from .defs.partitions import TENANT_DIMENSION, registered

    cfg = load_tenants().tenants.get(tenant)
    if cfg is not None and cfg.enabled:
        raise UsageError(
            f"tenant {tenant!r} is enabled in {tenants_path()}: set enabled: false (or remove it) "
            "first, or the onboarding sensor registers it again"
        )
    if tenant not in registered(instance):
        raise UsageError(f"tenant {tenant!r} has no partition to retire")
    instance.delete_dynamic_partition(TENANT_DIMENSION, tenant)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sis-pipelines",
        description="The operator command line of sis_pipelines, on the Dagster instance in DAGSTER_HOME.",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="show Dagster's log and tracebacks as well"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "freshness",
        help="whether each tenant's nights arrive (the tenant_freshness job, a line per tenant)",
    )
    tenants = sub.add_parser("tenants", help="the tenants file and the tenant partitions")
    tenants.add_argument("action", choices=["sync", "list", "retire", "check"])
    tenants.add_argument(
        "tenant",
        nargs="?",
        help="retire: the tenant whose partition goes; check: only this tenant",
    )
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
    evaluate = sub.add_parser(
        "evaluate",
        help="what a night would change in Canvas as it stands now (read from Canvas); uploads nothing",
    )
    evaluate.add_argument("--tenant", required=True)
    evaluate.add_argument("--night", default="latest", help="YYYY-MM-DD or latest (default)")
    sync = sub.add_parser(
        "sync-grades",
        help="send a tenant's grades to the SIS now (the grade_sync job), not waiting for the night",
    )
    sync.add_argument("--tenant", required=True)
    sync.add_argument(
        "--course",
        action="append",
        default=[],
        metavar="SIS_COURSE_ID",
        help="only this course (repeatable); default: every course the last night provisioned",
    )
    sync.add_argument(
        "--allow-mass-removal",
        action="store_true",
        help="let this sync's removals through the removal guard",
    )
    backfill = sub.add_parser(
        "backfill",
        help="one tenant over a range of nights, from stored snapshots, as a Dagster backfill",
    )
    backfill.add_argument("--tenant")
    backfill.add_argument("--from", dest="first", help="the first night, YYYY-MM-DD")
    backfill.add_argument("--to", dest="last", help="the last night, YYYY-MM-DD or latest")
    backfill.add_argument("--select", help="Dagster asset selection, e.g. group:canvas")
    backfill.add_argument(
        "--resume", metavar="ID", help="carry on a cancelled or interrupted backfill"
    )
    backfill.add_argument("--force-push", action="store_true", help=DELIBERATE["--force-push"][1])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        quiet_dagster(args.verbose)
        return _command(args)
    except (UsageError, TenantsFileError, ValueError, SisPipelinesError) as exc:
        if args.verbose:
            raise
        print(f"sis-pipelines: {exc}", file=sys.stderr)
        return 2


def _command(args: argparse.Namespace) -> int:
    if args.command == "tenants" and args.action == "check":  # needs no Dagster instance
        return 0 if check_connections(args.tenant, args.verbose) else 1
    if args.command == "evaluate":  # needs no Dagster instance either
        return evaluate_tenant(args.tenant, parse_night(args.night))
    instance = _instance()
    if args.command == "tenants":
        if args.action == "list":
            list_tenants(instance)
            return 0
        if args.action == "retire":
            if not args.tenant:
                raise UsageError("tenants retire needs the tenant: sis-pipelines tenants retire T")
            retire_tenant(instance, args.tenant)
            print(f"tenant {args.tenant} retired: its partition is gone, its data and runs stay")
            return 0
        new, disabled = sync_tenants(instance)
        print(f"tenants synced: {len(new)} added, {len(disabled)} disabled")
        return 0
    if args.command == "freshness":
        return 0 if check_freshness(instance, args.verbose) else 1
    if args.command == "sync-grades":
        ok = sync_grades(instance, args.tenant, args.course, args.allow_mass_removal, args.verbose)
        return 0 if ok else 1
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
            verbose=args.verbose,
            progress=print,
        )
        _report(outcome)
        return 0 if outcome.success else 1
    return backfill(instance, args)


def backfill(instance, args: argparse.Namespace) -> int:
    """A Dagster backfill of the tenant's nights (the Backfills page lists it), followed to
    its end; ``--resume ID`` carries on one that was cancelled or interrupted."""
    from . import backfills
    from .defs.partitions import partition_key, split_key

    if args.resume:
        try:
            record = backfills.resumable(instance, args.resume)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        names = list(record.partition_names or [])
        tenant = split_key(names[0])[1] if names else ""
        select = (
            " or ".join(f"key:{k.to_user_string()}" for k in record.asset_selection or []) or None
        )
        force_push = on(FORCE_PUSH).items() <= record.tags.items()
    else:
        if not (args.tenant and args.first and args.last):
            raise UsageError("backfill needs --tenant, --from and --to (or --resume ID)")
        first, last = check_night(parse_night(args.first)), check_night(parse_night(args.last))
        if last < first:
            raise UsageError("--to is before --from")
        tenant, select, force_push = args.tenant, args.select, args.force_push
        from .defs.selection import tenant_selection

        known = _known_tenant(instance, tenant)
        selection = _selection(select) if select else tenant_selection(known[tenant])
        nights = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        from .definitions import defs

        _inputs_stored(tenant, known[tenant], nights, selection, False, defs)
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
    total = len(record.partition_names or [])
    print(f"backfill {record.backfill_id} of {tenant}: {total} nights (the UI's Backfills page)")

    def run_night(name: str, tags: dict[str, str]) -> None:
        outcome = run_tenant_night(
            instance,
            tenant,
            date.fromisoformat(split_key(name)[0]),
            select,
            extra_tags=tags,
            verbose=args.verbose,
            progress=print,
        )
        _report(outcome)

    def on_run(run) -> None:
        """A run the daemon launched, once it ended, with its failed steps' one-line errors."""
        from .runs import failed_steps

        night = run.tags.get("dagster/partition", run.run_id)
        print(f"{night}: {run.status.value} (run {run.run_id})")
        for line in step_errors(failed_steps(instance, run.run_id)):
            print(f"  {line}", file=sys.stderr)

    end = backfills.carry_out(instance, record, run_night, on_run)
    print(
        f"backfill {end.backfill_id}: {end.status.lower().replace('_', ' ')}, "
        f"{end.launched} of {end.nights} nights launched"
    )
    if end.status == "CANCELED" and end.launched < end.nights:
        print(f"  resume it: sis-pipelines backfill --resume {end.backfill_id}")
    return 0 if end.status == "COMPLETED_SUCCESS" else 1


if __name__ == "__main__":
    sys.exit(main())
