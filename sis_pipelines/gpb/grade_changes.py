"""Which courses had grades change since a moment: Canvas's Grade Change Log.

``GET /api/v1/audit/grade_change/courses/:course_id?start_time=…&end_time=…`` lists a course's
grade change events newest first (paginated, a compound document whose ``events`` carry
``created_at``, ``grade_before``/``grade_after`` and links to the assignment and student).
One request per course and tick while nothing changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import quote

from ..canvas.api import CanvasClient, CanvasError


@dataclass
class GradeChanges:
    courses: list[str] = field(default_factory=list)  # changed, in the order asked
    events: int = 0
    latest: str | None = None  # the newest event's created_at
    missing: list[str] = field(default_factory=list)  # courses Canvas does not know


def grade_changes(
    canvas: CanvasClient, course_ids: Iterable[str], after: str, until: str
) -> GradeChanges:
    """The courses with a grade change event after ``after`` (exclusive: an event seen by the
    last tick is not seen again) up to ``until``."""
    found = GradeChanges()
    for course_id in course_ids:
        path = f"/api/v1/audit/grade_change/courses/{quote('sis_course_id:' + course_id, safe=':')}"
        try:
            events = canvas.get_all(path, {"start_time": after, "end_time": until}, "events")
        except CanvasError as exc:
            if exc.status == 404:
                found.missing.append(course_id)
                continue
            raise
        fresh = [e for e in events if str(e.get("created_at") or "") > after]
        if fresh:
            found.courses.append(course_id)
            found.events += len(fresh)
            newest = max(str(e["created_at"]) for e in fresh)
            found.latest = max(found.latest or newest, newest)
    return found
