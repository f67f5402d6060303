"""Every run tag the pipeline writes or reads, named and parsed here only.

The deliberate overrides are tags so that each one is on the run's record: who let a mass
removal through, or pushed grades from a backfill, is visible in the UI's run history.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

TENANT = "tenant"
VENDOR = "sis_vendor"
FORCE_REFETCH = "sis_pipelines/force_refetch"
ALLOW_MASS_REMOVAL = "sis_pipelines/allow_mass_removal"
FORCE_UPLOAD = "sis_pipelines/force_upload"
FORCE_PUSH = "sis_pipelines/force_push"
BACKFILL = "sis_pipelines/backfill"
DAGSTER_BACKFILL = "dagster/backfill"
# The tenant dimension's partition tag: the run queue holds one run per tenant by it.
TENANT_PARTITION = "dagster/partition/tenant"
GRADE_SYNC_TRIGGER = "sis_pipelines/grade_sync"  # what launched a sync: grade_change_log | operator

# Overrides an operator gives on purpose, one run at a time: CLI flag -> (tag, what it does).
DELIBERATE = {
    "--allow-mass-removal": (
        ALLOW_MASS_REMOVAL,
        "let this night's Canvas removals through the deletion guard",
    ),
    "--force-upload": (
        FORCE_UPLOAD,
        "upload to Canvas even if this night (or a later one) was imported",
    ),
    "--force-push": (
        FORCE_PUSH,
        "send grades to the SIS even from a backfill or an older night, and resend unchanged ones",
    ),
}


def _on(tags: Mapping[str, str], name: str) -> bool:
    return tags.get(name, "").lower() == "true"


@dataclass(frozen=True)
class RunFlags:
    """What a run's tags ask of its steps."""

    force_refetch: bool = False
    allow_mass_removal: bool = False
    force_upload: bool = False
    force_push: bool = False
    backfill: str | None = None  # the tag that marks the run as part of a backfill

    @classmethod
    def of(cls, tags: Mapping[str, str]) -> RunFlags:
        return cls(
            force_refetch=_on(tags, FORCE_REFETCH),
            allow_mass_removal=_on(tags, ALLOW_MASS_REMOVAL),
            force_upload=_on(tags, FORCE_UPLOAD),
            force_push=_on(tags, FORCE_PUSH),
            backfill=next((t for t in (DAGSTER_BACKFILL, BACKFILL) if t in tags), None),
        )


def tenant_tags(tenant_id: str, vendor: str) -> dict[str, str]:
    """The tags every run of a tenant carries: the UI filters runs and queues limits by them."""
    return {TENANT: tenant_id, VENDOR: vendor}


def on(*names: str) -> dict[str, str]:
    """Tags that switch the named flags on."""
    return dict.fromkeys(names, "true")
