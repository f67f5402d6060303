"""One way to declare a tenant-night asset, and what every one does around its one domain call:
find the tenant, night and run flags, skip a tenant it does not apply to, hold the
tenant-night, explain domain errors in one line, record the figures on the step and on the
tenant's page."""

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePath
from typing import Any

import dagster as dg
from upath import UPath

from ..core.errors import SisPipelinesError
from ..core.figures import Check, Figures, Markdown
from ..core.lake import Lake
from ..core.locks import step_lock
from ..core.secrets import redact
from ..core.tags import RunFlags
from ..core.tenant_night import OfTenantNight, TenantNight
from ..core.tenants import Tenant
from ..oneroster.errors import OneRosterError
from ..services.connect import Services
from ..services.health import trend
from .keys import tenant_page
from .partitions import tenant_and_night, tenant_night
from .resources import DataLake, TenantsResource

OWNERS = ["team:data-engineering"]
# A table of changes or messages is long; Dagster keeps each event in its storage.
MAX_MARKDOWN = 200_000
# The checks list shows a partitioned check's worst tenant-night, its "latest execution"
# whichever tenant ran last: where each district's own status is, said on the check.
BY_PARTITION = (
    "Each tenant-night has its own status (the Partitions tab); the list shows the worst, "
    "the latest execution may be another tenant's."
)


@dataclass(frozen=True)
class Step(OfTenantNight):
    """One asset's step: its tenant-night, the lake, the services and the run's flags."""

    tn: TenantNight
    lake: Lake
    services: Services
    flags: RunFlags


@dataclass
class Made:
    """What a step's domain call made: its figures, its checks, and (for an asset the IO
    manager stores) its value, with metadata beyond the figures."""

    figures: Figures
    checks: Sequence[Check] = ()
    value: Any = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def step_of(context: dg.AssetExecutionContext, tenants: TenantsResource, lake: DataLake) -> Step:
    tenant_id, night = tenant_and_night(context)
    store = lake.lake()
    flags = RunFlags.of(context.run.tags)
    return Step(
        TenantNight(tenant_id, tenants.tenant(tenant_id), night), store, Services(store), flags
    )


def tenant_night_asset(
    key: dg.AssetKey,
    *,
    group: str,
    kinds: set[str],
    description: str,
    applies: tuple[Callable[[Tenant], bool], str] | None = None,
    deps: Sequence[dg.AssetKey] = (),
    ins: Mapping[str, dg.AssetIn] | None = None,
    checks: Sequence[dg.AssetCheckSpec] = (),
    stored: bool = False,
    retry_sis: bool = False,
    metadata: Mapping[str, Any] | None = None,
) -> Callable[[Callable[..., Made]], dg.AssetsDefinition]:
    """A tenant x night asset whose step is ``call(context, step, **inputs) -> Made``.

    ``applies``: (whether the asset applies to a tenant, the line logged when not): the step
    is then skipped. ``stored``: the value is the IO manager's to store. ``retry_sis``: a
    SIS that stays down gets the tenant's step retries, minutes apart (the client already
    retried within seconds, and only this tenant waits)."""

    def declare(call: Callable[..., Made]) -> dg.AssetsDefinition:
        @dg.asset(
            key=key,
            deps=list(deps),
            ins=dict(ins or {}),
            partitions_def=tenant_night,
            group_name=group,
            kinds=kinds,
            owners=OWNERS,
            description=description,
            metadata=dict(metadata or {}),
            output_required=applies is None,
            check_specs=list(checks),
        )
        def _asset(
            context: dg.AssetExecutionContext,
            tenants: TenantsResource,
            lake: DataLake,
            **inputs: Any,
        ) -> Iterator[Any]:
            step = step_of(context, tenants, lake)
            if applies is not None and not applies[0](step.tenant):
                context.log.info(f"tenant {step.tenant_id!r}: {applies[1]}")
                return
            with explained(context, step, retry_sis), held(context, step):
                made = call(context, step, **inputs)
            observe(context, step, made.figures, made.checks)
            meta = {**made.extra, **metadata_of(made.figures)}
            checks = [check_result(check) for check in made.checks]
            if stored:
                yield dg.Output(made.value, metadata=meta)
                yield from checks
            else:
                yield dg.MaterializeResult(metadata=meta, check_results=checks)

        return _asset

    return declare


def check_spec(
    name: str, key: dg.AssetKey, description: str, blocking: bool = False
) -> dg.AssetCheckSpec:
    """A check of a tenant-night asset: partitioned like it, so each tenant-night has its own
    status (docs/architecture.md says why)."""
    return dg.AssetCheckSpec(
        name,
        asset=key,
        blocking=blocking,
        partitions_def=tenant_night,
        description=f"{description}. {BY_PARTITION}",
    )


def check_result(check: Check) -> dg.AssetCheckResult:
    """A domain check as the asset check's result of the step's tenant-night."""
    table = {check.table_name: dg.MetadataValue.md(check.table)} if check.table else {}
    return dg.AssetCheckResult(
        check_name=check.name,
        passed=check.passed,
        severity=dg.AssetCheckSeverity.ERROR if check.severe else dg.AssetCheckSeverity.WARN,
        description=check.description,
        metadata={**table, **metadata_of(check.figures)},
    )


def metadata_of(figures: Figures) -> dict[str, Any]:
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
    checks: Sequence[Check] = (),
) -> None:
    """Puts the step's headline figures and its checks' outcomes on its tenant's page, for the
    night. Each observation of a run carries the night so far (the run's previous one merged
    in), so the page's latest event for a night is the whole night."""
    values: dict[str, Any] = dict(trend(context.asset_key.to_user_string(), figures))
    for check in checks:
        outcome = "passed" if check.passed else "ERROR" if check.severe else "WARN"
        values[f"{context.asset_key.path[-1]}_{check.name}"] = outcome
    if not values:
        return
    key, night = tenant_page(step.tenant_id), str(step.night)
    latest = context.instance.fetch_observations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[night]), limit=1
    ).records
    if latest and latest[0].run_id == context.run_id and latest[0].asset_observation:
        values = {**latest[0].asset_observation.metadata, **values}
    context.log_event(dg.AssetObservation(asset_key=key, partition=night, metadata=values))


@contextmanager
def held(context: dg.AssetExecutionContext, step: Step) -> Iterator[None]:
    """The step's tenant-night held by this run while the block runs (``core/locks.py``): a
    second run of the same tenant-night's step is refused in one line naming this run."""
    asset = context.asset_key.to_user_string()
    with step_lock(step.lake.root, step.tenant_id, step.night, asset, f"run {context.run_id}"):
        yield


@contextmanager
def explained(
    context: dg.AssetExecutionContext | None = None,
    step: Step | None = None,
    retry_sis: bool = False,
) -> Iterator[None]:
    """Domain errors become a step failure with their one line (no traceback in the UI); the
    figures of a step that failed part way (a push) still go on the tenant's page."""
    try:
        yield
    except SisPipelinesError as exc:
        if retry_sis and isinstance(exc, OneRosterError) and exc.retryable and context and step:
            retries = step.tenant.oneroster.step_retries  # type: ignore[union-attr]
            if context.retry_number < retries:
                wait = step.tenant.oneroster.step_retry_wait_s  # type: ignore[union-attr]
                context.log.warning(f"{exc}; retrying the step in {wait:.0f}s")
                raise dg.RetryRequested(max_retries=retries, seconds_to_wait=wait) from None
        figures = getattr(exc, "figures", None)
        if figures and context and step:
            observe(context, step, figures)
        raise dg.Failure(
            description=str(exc),
            metadata=metadata_of(figures) if figures else None,
            allow_retries=exc.retryable,
        ) from None
