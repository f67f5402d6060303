"""Which assets a tenant's night is: every asset of the nightly job, or, for a CSV Gateway
tenant, the Canvas steps only (its mapping reads its drop; it has no OneRoster and no SIS
gradebook); without a canvas section no Canvas or grade passback steps, without grade
passback no gpb steps (a step that would only skip leaves its blocking check without a
result, which Dagster warns of on every run). Every run of a tenant-night takes its
selection from here: the schedule, the CLI, backfills."""

import dagster as dg

from ..core.tenants import Tenant
from ..gpb.passback import passes_back
from .keys import CANVAS, ONEROSTER

GATEWAY_SELECTION = CANVAS
GATEWAY_SELECTION_TEXT = ", ".join(k.to_user_string() for k in GATEWAY_SELECTION)


def tenant_selection(tenant: Tenant) -> list[dg.AssetKey] | None:
    """The assets of the tenant's night; None: the whole nightly job."""
    if tenant.gateway:
        return GATEWAY_SELECTION
    if tenant.canvas is not None and passes_back(tenant):
        return None
    return ONEROSTER + (CANVAS if tenant.canvas is not None else [])
