"""What every asset does around its one domain call: find the tenant, night and run flags,
open the lake and the services, record the figures, explain domain errors in one line."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import PurePath
from typing import Any

import dagster as dg
from upath import UPath

from ..core.errors import SisPipelinesError
from ..core.figures import Figures, Markdown
from ..core.lake import Lake
from ..core.locks import step_lock
from ..core.secrets import redact
from ..core.tenants import Tenant
from ..oneroster.errors import OneRosterError
from ..services.connect import Services
from .partitions import tenant_and_night
from .resources import DataLake, TenantsResource
from .tags import RunFlags
from .tenants.health import trend

OWNERS = ["team:data-engineering"]
# A table of changes or messages is long; Dagster keeps each event in its storage.
MAX_MARKDOWN = 200_000
TENANT_PAGES = "tenants"


def tenant_key(tenant_id: str) -> dg.AssetKey:
    """The tenant's own page (``defs/tenants``): its trends and its freshness."""
    return dg.AssetKey([TENANT_PAGES, tenant_id])


@dataclass(frozen=True)
class Step:
    """One asset's step for one tenant-night."""

    tenant_id: str
    tenant: Tenant
    night: date
    lake: Lake
    services: Services
    flags: RunFlags


def step_of(context: dg.AssetExecutionContext, tenants: TenantsResource, lake: DataLake) -> Step:
    tenant_id, night = tenant_and_night(context)
    store = lake.lake()
    return Step(
        tenant_id,
        tenants.tenant(tenant_id),
        night,
        store,
        Services(store),
        RunFlags.of(context.run.tags),
    )


def step_for(
    context: dg.AssetExecutionContext,
    tenants: TenantsResource,
    lake: DataLake,
    applies: Callable[[Tenant], bool],
    skipped: str,
) -> Step | None:
    """The step, or None (and a line saying why) when the asset does not apply to the tenant:
    the asset is then skipped (``output_required=False``)."""
    step = step_of(context, tenants, lake)
    if not applies(step.tenant):
        context.log.info(f"tenant {step.tenant_id!r}: {skipped}")
        return None
    return step


def metadata(figures: Figures) -> dict[str, Any]:
    """A domain step's figures as Dagster metadata."""
    out: dict[str, Any] = {}
    for key, value in figures.items():
        if isinstance(value, Markdown):  # a server's words may be in it (import messages)
            out[key] = dg.MetadataValue.md(redact(str(value), MAX_MARKDOWN))
        elif isinstance(value, str):
            out[key] = redact(value)
        elif isinstance(value, UPath | PurePath):
            out[key] = dg.MetadataValue.path(str(value))
        elif isinstance(value, datetime):
            out[key] = dg.MetadataValue.timestamp(value)
        else:
            out[key] = value
    return out


def observe(
    context: dg.AssetExecutionContext,
    step: Step,
    figures: Figures,
    checks: list[dg.AssetCheckResult] | None = None,
) -> None:
    """Puts the step's headline figures and its checks' outcomes on its tenant's page, for the
    night. Each observation of a run carries the night so far (the run's previous one merged
    in), so the page's latest event for a night is the whole night."""
    values: dict[str, Any] = dict(trend(context.asset_key.to_user_string(), figures))
    for check in checks or []:
        outcome = "passed" if check.passed else str(check.severity.value)
        values[f"{context.asset_key.path[-1]}_{check.check_name}"] = outcome
    if not values:
        return
    key, night = tenant_key(step.tenant_id), str(step.night)
    latest = context.instance.fetch_observations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[night]), limit=1
    ).records
    if latest and latest[0].run_id == context.run_id and latest[0].asset_observation:
        values = {**latest[0].asset_observation.metadata, **values}
    context.log_event(dg.AssetObservation(asset_key=key, partition=night, metadata=values))


@contextmanager
def held(context: dg.AssetExecutionContext, step: Step) -> Iterator[None]:
    """The step's tenant-night held by this run while the block runs (``locks.py``): a second
    run of the same tenant-night's step is refused in one line naming this run."""
    asset = context.asset_key.to_user_string()
    with step_lock(step.lake.root, step.tenant_id, step.night, asset, f"run {context.run_id}"):
        yield


@contextmanager
def explained(
    context: dg.AssetExecutionContext | None = None,
    tenant: Tenant | None = None,
    observed: Step | None = None,
) -> Iterator[None]:
    """Domain errors become a step failure with their one line (no traceback in the UI).

    With a context and a tenant, a SIS that stays down gets the tenant's step retries,
    minutes apart: the client already retried within seconds, and only this tenant waits.
    """
    try:
        yield
    except SisPipelinesError as exc:
        if isinstance(exc, OneRosterError) and exc.retryable and context and tenant:
            retries = tenant.oneroster.step_retries
            if context.retry_number < retries:
                wait = tenant.oneroster.step_retry_wait_s
                context.log.warning(f"{exc}; retrying the step in {wait:.0f}s")
                raise dg.RetryRequested(max_retries=retries, seconds_to_wait=wait) from None
        figures = getattr(exc, "figures", None)
        if figures and context and observed:  # a failed push's figures are a night's trend too
            observe(context, observed, figures)
        raise dg.Failure(
            description=str(exc),
            metadata=metadata(figures) if figures else None,
            allow_retries=exc.retryable,
        ) from None
