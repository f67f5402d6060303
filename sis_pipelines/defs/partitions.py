"""Tenant x night partitions. Keys read ``2026-11-21|demo-genesis`` (dimensions sort by name)."""

from __future__ import annotations

import warnings
from datetime import date

import dagster as dg

from ..core.nights import deployment_timezone, first_night
from ..core.tenants import TenantsFile, unregistered

# The checks are partitioned like their assets, so each tenant-night has its own status
# (docs/architecture.md says why); Dagster marks partitioned checks as a preview.
warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec")

TENANT_DIMENSION = "tenant"
tenant_partitions = dg.DynamicPartitionsDefinition(name=TENANT_DIMENSION)
night_partitions = dg.DailyPartitionsDefinition(
    start_date=first_night(), timezone=deployment_timezone()
)
tenant_night = dg.MultiPartitionsDefinition(
    {"night": night_partitions, TENANT_DIMENSION: tenant_partitions}
)


def partition_key(tenant: str, night: date | str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"night": str(night), TENANT_DIMENSION: tenant})


def tenant_and_night(context: dg.AssetExecutionContext) -> tuple[str, date]:
    keys = context.partition_key.keys_by_dimension  # type: ignore[union-attr]
    return keys[TENANT_DIMENSION], date.fromisoformat(keys["night"])


def split_key(key: str) -> tuple[str, str]:
    """(night, tenant) of a stored partition key such as ``2026-11-21|demo-genesis``."""
    night, _, tenant = key.partition("|")
    return night, tenant


def registered(instance: dg.DagsterInstance) -> list[str]:
    return list(instance.get_dynamic_partitions(TENANT_DIMENSION))


def add_tenants(instance: dg.DagsterInstance, tenant_ids: list[str]) -> None:
    if tenant_ids:
        instance.add_dynamic_partitions(TENANT_DIMENSION, tenant_ids)


def register_tenants(instance: dg.DagsterInstance, tenants: TenantsFile) -> list[str]:
    """Adds the enabled tenants that have no partition yet; returns them."""
    new = unregistered(tenants, registered(instance))
    add_tenants(instance, new)
    return new


def registration_request(
    instance: dg.DagsterInstance, tenants: TenantsFile
) -> dg.AddDynamicPartitionsRequest | None:
    """The same, as a sensor asks for it (so the sensor's tick records what it added)."""
    new = unregistered(tenants, registered(instance))
    return tenant_partitions.build_add_request(new) if new else None
