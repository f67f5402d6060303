"""Intraday grade sync: between nights, the courses whose grades changed in Canvas go to the
SIS within minutes, through the same plan, ledger and push as the nightly pass.

A sync reads the chosen courses' gradebooks as they stand now, against the latest night's
rostering (classes, sessions, the Canvas courses it provisioned). It converges those courses
only (never removes elsewhere), records no nightly pass, and shares the ledger: the next
night finds what a sync sent unchanged. Its requests and outcomes are kept under
``gpb/syncs/<tenant>/<stamp>/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from ..core.errors import ConfigurationError, StoredStateError
from ..core.figures import Figures
from ..core.lake import Lake
from ..core.nights import latest_complete_night, utc_stamp
from ..core.storage import read_frame
from ..core.tenants import Tenant
from .canvas_gradebook import CanvasGradebook, read_gradebook
from .grade_changes import GradeChanges, grade_changes
from .passback import plan, provisioned_courses, send
from .payloads import CLASS_COLUMNS
from .state import (
    courses_passed_back,
    courses_with_assignments,
    passed_back,
    read_ledger,
    write_requests,
)

if TYPE_CHECKING:
    from ..services.connect import Services


def last_pass(lake: Lake, tenant_id: str) -> tuple[str, str]:
    """The night of the tenant's latest complete grade pass, and the moment it read Canvas as at."""
    passes = lake.gpb_passes(tenant_id).read()
    if not passes:
        raise StoredStateError(
            f"tenant {tenant_id!r}: no nightly grade pass yet; the first pass is a night's: "
            f"sis-pipelines run --tenant {tenant_id} --night latest"
        )
    night = max(passes)
    return night, passes[night]["graded_until"]


def watched_courses(lake: Lake, tenant_id: str, night: str) -> list[str]:
    """The courses a grade change is looked for in: those with assignments at the last pass,
    and those we passed grades back from (a course's first assignment waits for the night)."""
    # A sensor tick reads one column of the snapshot, not the night's submissions.
    with_work = courses_with_assignments(lake, tenant_id, night)
    return sorted(with_work | courses_passed_back(lake, tenant_id))


def changed_courses(
    lake: Lake, services: Services, tenant_id: str, tenant: Tenant, after: str
) -> GradeChanges:
    """The watched courses with grade changes in Canvas after ``after`` (up to now)."""
    night, _ = last_pass(lake, tenant_id)
    courses = watched_courses(lake, tenant_id, night)
    with services.canvas(tenant_id, tenant, None) as canvas:
        return grade_changes(canvas, courses, after, utc_stamp(datetime.now(UTC)))


@dataclass(frozen=True)
class ChangesSince:
    """The watched courses whose grades changed ``after`` a moment, and where to look from next."""

    courses: list[str]
    events: int
    after: str
    until: str


def changes_since(
    lake: Lake, services: Services, tenant_id: str, tenant: Tenant, after: str | None
) -> ChangesSince:
    """The grade changes since ``after`` (a sensor's cursor), never from before the last pass
    read Canvas: what that pass read is already in the SIS."""
    _, read_as_at = last_pass(lake, tenant_id)
    after = max(after or read_as_at, read_as_at)
    changes = changed_courses(lake, services, tenant_id, tenant, after)
    until = changes.latest or utc_stamp(datetime.now(UTC))
    return ChangesSince(changes.courses, changes.events, after, until)


def sync_grades(
    lake: Lake,
    services: Services,
    tenant_id: str,
    tenant: Tenant,
    courses: list[str] | None = None,
    allow_mass_removal: bool = False,
) -> Figures:
    """Sends what the courses' gradebooks imply now (every provisioned course if none given)."""
    if tenant.gpb.endpoints == "off" or tenant.canvas is None:
        raise ConfigurationError(f"tenant {tenant_id!r}: grade passback is off (gpb.endpoints)")
    night, _ = last_pass(lake, tenant_id)
    provisioned = provisioned_courses(lake, tenant_id, night)
    unknown = sorted(set(courses or ()) - set(provisioned))
    if unknown:
        raise ConfigurationError(
            f"tenant {tenant_id!r}: {', '.join(unknown)} is not a course this pipeline provisioned "
            f"(night {night}); give SIS course ids as Canvas has them (sis_course_id)"
        )
    grading = provisioned_courses(lake, tenant_id, night, tenant.gpb.days_after_term)
    closed = sorted(set(courses or ()) - set(grading))
    if closed:
        raise ConfigurationError(
            f"tenant {tenant_id!r}: {', '.join(closed)}: its term ended more than "
            f"{tenant.gpb.days_after_term} days before night {night} (gpb.days_after_term): its "
            "grades in the SIS are final and are not sent"
        )
    chosen = sorted(set(courses)) if courses else grading
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    classes = read_frame(lake.snapshot("classes", night, tenant_id), CLASS_COLUMNS)
    sessions = read_frame(lake.snapshot("academic_sessions", night, tenant_id))
    ledger = read_ledger(lake, tenant_id)
    today = latest_complete_night() + timedelta(days=1)
    with services.canvas(tenant_id, tenant, None) as canvas:
        book: CanvasGradebook = read_gradebook(
            canvas,
            chosen,
            passed_back(ledger),
            tenant.canvas.max_concurrency,  # the courses chosen: no discovery
        )
    with services.gradebook(tenant_id, tenant, today) as sis:
        sync_plan = plan(
            book,
            classes,
            sessions,
            sis,
            ledger,
            tenant,
            today,
            allow_mass_removal,
        )
        requests_file = lake.gpb_sync(tenant_id, stamp, "requests", ".jsonl")
        write_requests(sync_plan.payloads, requests_file)
        figures = send(
            lake,
            sis,
            tenant_id,
            tenant,
            sync_plan.payloads.requests,
            f"sync {stamp}",
            False,
            lake.gpb_sync(tenant_id, stamp, "outcomes"),
        )
    return {
        "courses": len(chosen),
        "rostering_night": night,
        **sync_plan.figures(tenant),
        **figures,
        "requests_file": requests_file,
    }
