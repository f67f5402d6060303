"""A small district for grade passback tests: two classes, a Canvas gradebook for each and
a OneRoster simulator whose SIS gradebook receives the requests."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pandas as pd

from sis_pipelines.core.tenants import parse_tenants
from sis_pipelines.gpb.canvas_gradebook import CanvasGradebook, assemble, course_rows
from sis_pipelines.gpb.payloads import Settings
from sis_pipelines.simulator.canvas_gradebook import course_gradebook

NIGHT = date(2026, 11, 21)
PREFIX = "p-"
CLASSES = pd.DataFrame(
    {
        "sourcedId": ["c1", "c2"],
        "schoolSourcedId": ["s1", "s1"],
        "termSourcedIds": [["t1"], ["t1"]],
    }
)
SESSIONS = pd.DataFrame(
    {
        "sourcedId": ["t1", "gp1", "gp2"],
        "type": ["semester", "gradingPeriod", "gradingPeriod"],
        "startDate": ["2026-08-15", "2026-08-15", "2026-11-01"],
        "endDate": ["2027-01-15", "2026-10-31", "2027-01-15"],
        "parentSourcedId": [None, "t1", "t1"],
    }
)
ROSTER = {"c1": ["u1", "u2", "u3"], "c2": ["u4", "u5"]}


def end_of(night: date) -> datetime:
    return datetime.combine(night, time(23, 59, 59), UTC)


def canvas_book(night: date = NIGHT, graded_since: str | None = None) -> CanvasGradebook:
    """The Canvas gradebooks of both classes (class mode: a course per class) at ``night``."""
    rows = []
    for class_id, students in ROSTER.items():
        course = PREFIX + class_id
        book = course_gradebook(
            course,
            {PREFIX + u: PREFIX + class_id for u in students},
            "2026-08-15",
            "2027-01-15",
            end_of(night),
        )
        subs = [
            {k: v for k, v in s.items() if not k.startswith("_")}
            for s in book["submissions"]
            if graded_since is None or (s["graded_at"] or "") >= graded_since
        ]
        rows.append(
            course_rows(
                course, book["assignment_groups"], book["assignments"], subs, book["enrollments"]
            )
        )
    return assemble(rows)


def tenant(version: str = "1.1", endpoints: str = "standard", **gpb: object):
    extra = "".join(f", {k}: {v}" for k, v in gpb.items())
    vendor = "infinite_campus" if version == "1.2" else "genesis"
    text = f"""
tenants:
  gpb-t:
    vendor: {vendor}
    oneroster: {{version: "{version}", source: simulator, students: 100, seed: 1}}
    canvas: {{source: simulator, sis_id_prefix: "{PREFIX}"}}
    gpb: {{endpoints: {endpoints}{extra}}}
"""
    return parse_tenants(text).tenants["gpb-t"]


def settings(t, gradebook_base: str = "http://sis.test/ims/oneroster/v1p1") -> Settings:
    rostering = gradebook_base.replace("/gradebook/v1p2", "/rostering/v1p2")
    return Settings.of(t, rostering, gradebook_base)
