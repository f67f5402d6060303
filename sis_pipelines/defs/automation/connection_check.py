"""The connection check as a job (``connection_check``), so its lines show in the UI and a
new tenant is checked as soon as the onboarding sensor registers it."""

import dagster as dg

from ...core.nights import latest_complete_night
from ...core.tenant_night import TenantNight
from ...services.connect import Services
from ...services.connection_check import check_tenant
from ..resources import DataLake, TenantsResource
from ..steps import OWNERS


class ConnectionCheckConfig(dg.Config):
    tenant: str = ""  # empty: every tenant of the tenants file


@dg.op(
    name="check_connections",
    description="Each tenant's SIS, CSV drop, SIS gradebook and Canvas: OK, or FAIL and why.",
    tags={"owners": ",".join(OWNERS)},
)
def check_connections_op(
    context: dg.OpExecutionContext,
    config: ConnectionCheckConfig,
    tenants: TenantsResource,
    lake: DataLake,
) -> dg.Output[None]:
    # The file is read once (a tenant named in the config and not in it fails in one line).
    chosen = (
        {config.tenant: tenants.tenant(config.tenant)} if config.tenant else tenants.load().tenants
    )
    services, night = Services(lake.lake()), latest_complete_night()
    lines = [
        line
        for tenant_id, tenant in sorted(chosen.items())
        for line in check_tenant(services, TenantNight(tenant_id, tenant, night))
    ]
    rows = [
        f"| {line.tenant} | {line.what} | {'OK' if line.ok else 'FAIL'} | "
        f"{line.detail.replace('|', '/')} |"
        for line in lines
    ]
    table = "| tenant | check | | detail |\n|---|---|---|---|\n" + "\n".join(rows)
    failed = [line for line in lines if not line.ok]
    for line in lines:
        (context.log.info if line.ok else context.log.error)(
            f"{line.tenant} {line.what}: {'OK' if line.ok else 'FAIL'} {line.detail}"
        )
    if failed:
        raise dg.Failure(
            description="; ".join(f"{f.tenant} {f.what}: {f.detail}" for f in failed),
            metadata={"checks": dg.MetadataValue.md(table)},
        )
    return dg.Output(None, metadata={"checks": dg.MetadataValue.md(table), "ok": len(lines)})


@dg.job(
    name="connection_check",
    description="Whether each tenant's services answer (sis-pipelines tenants check, in the UI); "
    "config tenant: one tenant, empty: all. Writes nothing.",
    executor_def=dg.in_process_executor,
)
def connection_check_job() -> None:
    check_connections_op()


def check_request(tenant_id: str, tags: dict[str, str]) -> dg.RunRequest:
    """A run of the check for a tenant just registered."""
    return dg.RunRequest(
        run_key=f"connection-check:{tenant_id}",
        job_name="connection_check",
        run_config={"ops": {"check_connections": {"config": {"tenant": tenant_id}}}},
        tags=tags,
    )
