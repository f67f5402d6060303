"""An intraday grade sync of a tenant, run as its sensor launches it."""

from __future__ import annotations

from ..core.errors import UsageError
from ..core.tags import on
from ..core.tenants import tenants_path
from .instance import console
from .tenant_night import step_errors
from .tenants import in_tenants_file


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
    from ..core.tags import ALLOW_MASS_REMOVAL
    from ..defs.gpb.sync import sync_request

    tenants = in_tenants_file(tenant)
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
    from ..definitions import defs
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
