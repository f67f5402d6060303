"""sis-pipelines: the operator command line, on the Dagster instance in DAGSTER_HOME.

Argument parsing and exit codes only: every command is an operation of ``operate/``. Every
mistake an operator can make prints one line that says what to do (exit 2); anything else is
a bug, said in one line with where to look (exit 1); --verbose shows Dagster's own log and
every traceback as well.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import operate
from ..core.errors import SisPipelinesError, UsageError
from ..core.nights import parse_night
from ..core.tags import DELIBERATE, on


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
    convert = sub.add_parser(
        "convert",
        help="a SIS conversion: match the old SIS's records to the new one's, report, and "
        "with --go send the renames (change_sis_id.csv) before the night's delta",
    )
    convert.add_argument("--tenant", required=True)
    convert.add_argument(
        "--from-snapshot",
        dest="old_night",
        required=True,
        help="the old SIS's last night applied to Canvas, YYYY-MM-DD",
    )
    convert.add_argument("--night", default="latest", help="the new SIS's night (default latest)")
    convert.add_argument(
        "--mapping", help="the district's own CSV of old_id,new_id,type, taken before matching"
    )
    convert.add_argument(
        "--go", action="store_true", help="store the renames for the night's run to send"
    )
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
        operate.quiet_dagster(args.verbose)
        return _command(args)
    except SisPipelinesError as exc:
        if args.verbose:
            raise
        print(f"sis-pipelines: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        if args.verbose:
            raise
        print(
            f"sis-pipelines: bug: {type(exc).__name__}: {operate.first_line(str(exc))} "
            "(run again with --verbose for the traceback, and report it)",
            file=sys.stderr,
        )
        return 1


def _command(args: argparse.Namespace) -> int:
    if args.command == "tenants" and args.action == "check":  # needs no Dagster instance
        return 0 if operate.check_connections(args.tenant, args.verbose) else 1
    if args.command == "evaluate":  # needs no Dagster instance either
        return operate.evaluate_tenant(args.tenant, parse_night(args.night))
    if args.command == "convert":  # nor this
        return operate.convert_tenant(
            args.tenant,
            parse_night(args.old_night),
            parse_night(args.night),
            args.mapping,
            args.go,
        )
    instance = operate.dagster_instance()
    if args.command == "tenants":
        if args.action == "list":
            operate.list_tenants(instance)
            return 0
        if args.action == "retire":
            if not args.tenant:
                raise UsageError("tenants retire needs the tenant: sis-pipelines tenants retire T")
            operate.retire_tenant(instance, args.tenant)
            print(f"tenant {args.tenant} retired: its partition is gone, its data and runs stay")
            return 0
        new, disabled = operate.sync_tenants(instance)
        print(f"tenants synced: {len(new)} added, {len(disabled)} disabled")
        return 0
    if args.command == "freshness":
        return 0 if operate.check_freshness(instance, args.verbose) else 1
    if args.command == "sync-grades":
        ok = operate.sync_grades(
            instance, args.tenant, args.course, args.allow_mass_removal, args.verbose
        )
        return 0 if ok else 1
    if args.command == "run":
        deliberate = on(
            *(
                tag
                for flag, (tag, _) in DELIBERATE.items()
                if getattr(args, flag.lstrip("-").replace("-", "_"))
            )
        )
        outcome = operate.run_tenant_night(
            instance,
            args.tenant,
            parse_night(args.night),
            args.select,
            args.force_refetch,
            extra_tags=deliberate,
            verbose=args.verbose,
            progress=print,
        )
        operate.report(outcome)
        return 0 if outcome.success else 1
    if args.resume:
        return operate.resume_backfill(instance, args.resume, args.verbose)
    if not (args.tenant and args.first and args.last):
        raise UsageError("backfill needs --tenant, --from and --to (or --resume ID)")
    first, last = parse_night(args.first), parse_night(args.last)
    return operate.backfill_nights(
        instance, args.tenant, first, last, args.select, args.force_push, args.verbose
    )
