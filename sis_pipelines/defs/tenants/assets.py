"""A page per tenant: the asset ``tenants/<tenant>``, partitioned by night.

Its observations are the headline figures of each of the tenant's nights (rows, quarantined,
repaired, Canvas changes, grades sent and failed), so its *Plots* are that district's trends
night by night, and its events link the runs that made them. Its check ``night_arrived`` says
whether the tenant's nights keep arriving, whatever the other tenants do.

The pages follow the tenants file as the code location loads it (a new tenant's page appears
on the next reload); a step observes its tenant's page either way.
"""

import dagster as dg

from ...core.nights import latest_complete_night
from ...core.tenants import Tenant, TenantsFileError, load_tenants
from ...services.health import FAIL_AFTER, arrivals
from ..keys import ENROLLMENTS as ARRIVED
from ..keys import MAPPING, TENANT_PAGES
from ..keys import tenant_page as tenant_key
from ..partitions import night_partitions
from ..steps import OWNERS

NIGHT_ARRIVED = "night_arrived"


def _page(tenant_id: str, tenant: Tenant) -> dg.AssetSpec:
    roster = (
        "CSV Gateway: Canvas-format drops"
        if tenant.oneroster is None
        else f"OneRoster {tenant.oneroster.version} {tenant.oneroster.source}"
    )
    return dg.AssetSpec(
        tenant_key(tenant_id),
        group_name=TENANT_PAGES,
        partitions_def=night_partitions,
        owners=OWNERS,
        kinds={tenant.vendor},
        description=(
            f"Tenant `{tenant_id}` ({tenant.vendor}, {roster}): each night's rows, quarantined and repaired records, Canvas changes "
            "and grades sent, as observations (see *Plots*), and whether its nights arrive."
        ),
        metadata={"vendor": tenant.vendor, "enabled": tenant.enabled},
    )


def _arrival_spec(tenant_id: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        NIGHT_ARRIVED,
        asset=tenant_key(tenant_id),
        description=(
            f"Passes when the tenant's roster of the night just ended is stored (`{ARRIVED.to_user_string()}`); "
            f"WARN while it is late, ERROR once {FAIL_AFTER} nights are missing."
        ),
    )


def tenant_pages() -> tuple[list[dg.AssetSpec], dg.AssetChecksDefinition | None]:
    """The tenants' pages and their freshness check, from the tenants file (none without one:
    the onboarding sensor reports a broken file)."""
    try:
        tenants = load_tenants().tenants
    except TenantsFileError:
        return [], None
    if not tenants:
        return [], None
    specs = [_page(t, cfg) for t, cfg in sorted(tenants.items())]

    @dg.multi_asset_check(
        specs=[_arrival_spec(t) for t in sorted(tenants)],
        can_subset=True,
        name="night_arrivals",
        description="Whether each tenant's nights arrive, each tenant on its own.",
    )
    def tenant_freshness(context: dg.AssetCheckExecutionContext):
        selected = sorted(k.asset_key.path[-1] for k in context.selected_asset_check_keys)
        # A CSV Gateway tenant's night has arrived when its drop is mapped.
        arrived = context.instance.get_materialized_partitions(
            ARRIVED
        ) | context.instance.get_materialized_partitions(MAPPING)
        for tenant_id, arrival in arrivals(selected, arrived, latest_complete_night()).items():
            yield dg.AssetCheckResult(
                asset_key=tenant_key(tenant_id),
                check_name=NIGHT_ARRIVED,
                passed=arrival.missing == 0,
                severity=dg.AssetCheckSeverity.WARN
                if arrival.late
                else dg.AssetCheckSeverity.ERROR,
                description=arrival.describe(),
                metadata={
                    "expected_night": str(arrival.expected),
                    "last_night_arrived": str(arrival.last_night or "none"),
                    "nights_missing": arrival.missing,
                },
            )

    return specs, tenant_freshness
