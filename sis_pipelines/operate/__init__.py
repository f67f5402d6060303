"""What an operator does, as a library: run a tenant-night, backfill a tenant, sync the tenants,
check freshness and connections, evaluate a night, sync grades. The CLI, the demo, the benchmark
and the tests call these; Dagster's internals stay in ``runs`` and ``backfills``."""

from .checks import check_connections, check_freshness, convert_tenant, evaluate_tenant
from .grades import run_request, sync_grades
from .instance import console, dagster_instance, first_line, quiet_dagster
from .tenant_backfill import backfill_nights, report, resume_backfill
from .tenant_night import RunOutcome, check_night, run_tenant_night, step_error, step_errors
from .tenants import list_tenants, retire_tenant, sync_tenants

__all__ = [
    "RunOutcome",
    "backfill_nights",
    "check_connections",
    "check_freshness",
    "check_night",
    "console",
    "convert_tenant",
    "dagster_instance",
    "evaluate_tenant",
    "first_line",
    "list_tenants",
    "quiet_dagster",
    "report",
    "resume_backfill",
    "retire_tenant",
    "run_request",
    "run_tenant_night",
    "step_error",
    "step_errors",
    "sync_grades",
    "sync_tenants",
]
