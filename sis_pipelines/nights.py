"""Nights: the daily partitions of the pipeline, in the deployment's time zone."""

from __future__ import annotations

import os
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo


def deployment_timezone() -> str:
    return os.environ.get("SIS_PIPELINES_TIMEZONE", "UTC")


def first_night() -> str:
    return os.environ.get("SIS_PIPELINES_FIRST_NIGHT", "2026-08-01")


def latest_complete_night(now: datetime | None = None) -> date:
    """The night that ended most recently in the deployment's time zone."""
    now = now or datetime.now(ZoneInfo(deployment_timezone()))
    return now.astimezone(ZoneInfo(deployment_timezone())).date() - timedelta(days=1)


def parse_night(value: str) -> date:
    if value == "latest":
        return latest_complete_night()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"night must be YYYY-MM-DD or 'latest', not {value!r}") from None


def is_past(night: date, now: datetime | None = None) -> bool:
    """A night before the latest complete one: its SIS state is gone."""
    return night < latest_complete_night(now)
