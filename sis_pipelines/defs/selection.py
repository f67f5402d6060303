"""Which assets a tenant's night is: every asset of the nightly job, or, for a CSV Gateway
tenant, the Canvas steps only (its mapping reads its drop; it has no OneRoster and no SIS
gradebook). Every run of a tenant-night takes its selection from here: the schedule, the CLI,
backfills."""

import dagster as dg

from ..tenants import Tenant

GATEWAY_SELECTION = [
    dg.AssetKey(["canvas", "mapping"]),
    dg.AssetKey(["canvas", "delta"]),
    dg.AssetKey(["canvas", "sis_import"]),
]
GATEWAY_SELECTION_TEXT = ", ".join(k.to_user_string() for k in GATEWAY_SELECTION)


def tenant_selection(tenant: Tenant) -> list[dg.AssetKey] | None:
    """The assets of the tenant's night; None: the whole nightly job."""
    return GATEWAY_SELECTION if tenant.gateway else None
