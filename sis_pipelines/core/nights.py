"""Nights: the daily partitions of the pipeline, in the deployment's time zone."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def deployment_timezone() -> str:
    return os.environ.get("SIS_PIPELINES_TIMEZONE", "UTC")


def first_night() -> str:
    """The first night partition (SIS_PIPELINES_FIRST_NIGHT), checked: a mistake there is
    one line naming the variable, not a date parser's message."""
    value = os.environ.get("SIS_PIPELINES_FIRST_NIGHT", "2026-08-01")
    try:
        date.fromisoformat(value)
    except ValueError:
        from .errors import ConfigurationError

        raise ConfigurationError(
            f"SIS_PIPELINES_FIRST_NIGHT must be the first night as YYYY-MM-DD, not {value!r}"
        ) from None
    return value


def latest_complete_night(now: datetime | None = None) -> date:
    """The night that ended most recently in the deployment's time zone."""
    now = now or datetime.now(ZoneInfo(deployment_timezone()))
    return now.astimezone(ZoneInfo(deployment_timezone())).date() - timedelta(days=1)


def end_of_night(night: date) -> datetime:
    """The last second of ``night`` in the deployment's time zone, as a UTC instant."""
    return datetime.combine(night, time(23, 59, 59), ZoneInfo(deployment_timezone())).astimezone(
        UTC
    )


def utc_stamp(moment: datetime) -> str:
    """An instant as OneRoster and Canvas write it: ``2026-11-21T23:59:59Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_night(value: str) -> date:
    if value == "latest":
        return latest_complete_night()
    try:
        return date.fromisoformat(value)
    except ValueError:
        from .errors import UsageError

        raise UsageError(f"night must be YYYY-MM-DD or 'latest', not {value!r}") from None


def is_past(night: date, now: datetime | None = None) -> bool:
    """A night before the latest complete one: its SIS state is gone."""
    return night < latest_complete_night(now)


# Dagster recommends at most this many partitions per asset; tenants x nights counts.
RECOMMENDED_PARTITIONS = 100_000


class PartitionBudget:
    def __init__(self, tenants: int, nights: int):
        self.tenants = tenants
        self.nights = nights
        self.partitions = tenants * nights
        self.max_nights = RECOMMENDED_PARTITIONS // max(1, tenants)
        self.within_limit = self.partitions <= RECOMMENDED_PARTITIONS

    def advice(self) -> str:
        return (
            f"{self.tenants} tenants x {self.nights} nights = {self.partitions} partitions per asset, over Dagster's "
            f"recommended {RECOMMENDED_PARTITIONS}: move SIS_PIPELINES_FIRST_NIGHT forward to keep at most "
            f"{self.max_nights} nights (older nights stay in storage), or split tenants across deployments"
        )


def partition_budget(tenants: int, nights: int | None = None) -> PartitionBudget:
    if nights is None:
        nights = (latest_complete_night() - date.fromisoformat(first_night())).days + 1
    return PartitionBudget(tenants, max(0, nights))
