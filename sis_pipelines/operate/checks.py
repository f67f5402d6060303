"""Whether tenants' nights arrive, whether their services answer, what a night would change."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from ..core.errors import UsageError
from ..core.tenants import load_tenants, tenants_path
from .instance import console
from .tenant_night import check_night
from .tenants import in_tenants_file


def check_freshness(instance, verbose: bool = False, out=print) -> bool:
    """A run of the tenant_freshness job (as its schedule makes it): a line per tenant; whether
    every tenant's night arrived."""
    import dagster as dg

    from ..definitions import defs
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


def check_connections(only: str | None = None, verbose: bool = False, out=print) -> bool:
    """Each tenant's services, a line per check (OK or FAIL and why); whether all are OK.
    Nothing is written but the simulators' own state."""
    import logging

    if not verbose:  # the clients' retry warnings: the FAIL line says what they came to
        logging.getLogger("sis_pipelines").setLevel(logging.ERROR)
    from ..core.lake import Lake
    from ..core.nights import latest_complete_night
    from ..core.tenant_night import TenantNight
    from ..services.connect import Services
    from ..services.connection_check import check_tenant

    tenants = in_tenants_file(only) if only is not None else load_tenants().tenants
    services, night, ok = Services(Lake.at()), latest_complete_night(), True
    for tenant_id in [only] if only else sorted(tenants):
        for line in check_tenant(services, TenantNight(tenant_id, tenants[tenant_id], night)):
            status = "OK" if line.ok else "FAIL"
            out(f"  {tenant_id:<24} {line.what:<32} {status:<5} {line.detail}")
            ok &= line.ok
    return ok


def evaluate_tenant(tenant_id: str, night: date, out=print) -> int:
    """The evaluation of a tenant's night against Canvas as it stands: its summary, and where
    the changes are. Reads the lake and Canvas only (no Dagster instance)."""
    from ..canvas.evaluate import evaluate_night
    from ..core.lake import Lake
    from ..core.tenant_night import TenantNight
    from ..services.connect import Services

    tenant = in_tenants_file(tenant_id)[tenant_id]
    check_night(night)
    if tenant.canvas is None:
        raise UsageError(f"tenant {tenant_id!r} has no canvas section: nothing to evaluate")
    lake = Lake.at()
    figures = evaluate_night(lake, Services(lake), TenantNight(tenant_id, tenant, night))
    out(str(figures["evaluation"]).rstrip())
    out(f"changes: {figures['changes_file']}")
    return 0


# A district's own mapping of old ids to new ones: a row per record, a few million at most.
MAX_MAPPING_BYTES = 256 << 20


def convert_tenant(
    tenant_id: str,
    old_night: date,
    night: date,
    mapping: str | None = None,
    go: bool = False,
    out=print,
) -> int:
    """A SIS conversion: the old SIS's last night matched with the new SIS's night, the
    report printed and stored; with ``go``, the renames stored for the night's run to send
    first (change_sis_id.csv). Reads and writes the lake only (no Dagster instance)."""
    import pandas as pd

    from ..canvas.conversion import convert_night
    from ..core.lake import Lake
    from ..core.tenant_night import TenantNight

    tenant = in_tenants_file(tenant_id)[tenant_id]
    check_night(night)
    if tenant.canvas is None:
        raise UsageError(f"tenant {tenant_id!r} has no canvas section: nothing to convert")
    supplied = None
    if mapping:
        try:
            size = Path(mapping).stat().st_size
            if size > MAX_MAPPING_BYTES:
                raise UsageError(
                    f"--mapping {mapping}: {size:,} bytes, above {MAX_MAPPING_BYTES:,}; "
                    "a district's mapping is one row per record it renames"
                )
            supplied = pd.read_csv(mapping, dtype=str, keep_default_na=False)
        except (OSError, ValueError) as exc:
            raise UsageError(f"--mapping {mapping}: {exc}") from None
        if not {"old_id", "new_id", "type"} <= set(supplied.columns):
            raise UsageError(f"--mapping {mapping}: the columns must be old_id, new_id, type")
    figures = convert_night(
        Lake.at(), TenantNight(tenant_id, tenant, night), old_night, supplied, go
    )
    out(str(figures["conversion"]))
    if go:
        out(
            f"{figures['renames']} renames stored for night {night}: sis-pipelines run --tenant "
            f"{tenant_id} --night {night} sends change_sis_id.csv first, then the night's delta "
            "under the new ids"
        )
    else:
        out("nothing stored: add --go to send these renames with the night")
    return 0
