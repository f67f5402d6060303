"""Tenant x night partitions. Keys read ``2026-11-21|demo-genesis`` (dimensions sort by name)."""

from __future__ import annotations

from datetime import date

import dagster as dg

from ..nights import deployment_timezone, first_night

tenant_partitions = dg.DynamicPartitionsDefinition(name="tenant")
night_partitions = dg.DailyPartitionsDefinition(
    start_date=first_night(), timezone=deployment_timezone()
)
tenant_night = dg.MultiPartitionsDefinition(
    {"night": night_partitions, "tenant": tenant_partitions}
)


def partition_key(tenant: str, night: date | str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"night": str(night), "tenant": tenant})


def tenant_and_night(context: dg.AssetExecutionContext) -> tuple[str, date]:
    keys = context.partition_key.keys_by_dimension  # type: ignore[union-attr]
    return keys["tenant"], date.fromisoformat(keys["night"])
