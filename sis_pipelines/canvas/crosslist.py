"""Cross-listing: the classes of one OneRoster course taught by the same teachers in one term
at one school become one Canvas course (``canvas.crosslist: course_teacher_term``). Each class
keeps its own course and section; the sections of all but the first (by sourcedId) are
cross-listed into the first's course (``xlists.csv``), their enrollments with them, as Canvas
moves a section. When the rule no longer holds (a teacher changes, a class leaves), the row
leaves the night's file and the delta sends it ``deleted``: Canvas sends the section back."""

from __future__ import annotations

import pandas as pd

from ..core.duck import bounded
from ..core.lake import Lake
from ..core.storage import read_frame
from ..core.tenant_night import NightFiles, TenantNight

COLUMNS = ["xlist_course_id", "section_id", "status"]


def crosslists(lake: Lake, tn: TenantNight) -> pd.DataFrame | None:
    """The night's xlists rows for the tenant's rule (None: no rule)."""
    cfg = tn.tenant.canvas
    assert cfg is not None
    if cfg.crosslist == "none":
        return None
    files = tn.files(lake)
    prefix = cfg.sis_id_prefix
    mapped = read_frame(files.canvas_file("sections"), ["section_id"])["section_id"].astype(str)
    frame = classes_and_teachers(files)  # a class without a teacher is in no group
    frame = frame[(prefix + frame["class"]).isin(set(mapped))]
    key = ["course", "term", "school", "teachers"]
    frame = frame.dropna(subset=key).sort_values("class")
    first = frame.groupby(key, sort=False)["class"].transform("first")
    joined = frame[frame["class"] != first]
    return pd.DataFrame(
        {
            "xlist_course_id": (prefix + first[joined.index]).to_numpy(),
            "section_id": (prefix + joined["class"]).to_numpy(),
            "status": "active",
        },
        columns=COLUMNS,
    ).reset_index(drop=True)


def classes_and_teachers(files: NightFiles, by_username: bool = False) -> pd.DataFrame:
    """Each class of the night's snapshot: its code, course, school, first term and active
    teachers as one text (their sourcedIds, or ``by_username`` their usernames, which two
    SIS share; null without a teacher), by DuckDB over the stored snapshots: ten million
    enrollments stay out of Python."""
    teacher = "u.username" if by_username else "e.userSourcedId"
    users = "LEFT JOIN read_parquet(?) u ON u.sourcedId = e.userSourcedId" if by_username else ""
    paths = [files.snapshot("classes"), files.snapshot("enrollments")]
    paths += [files.snapshot("users")] if by_username else []
    with bounded("512MB", "classes") as con:
        return con.execute(
            f"""
            SELECT c.sourcedId AS class, c.classCode AS class_code, c.courseSourcedId AS course,
                   c.schoolSourcedId AS school, c.termSourcedIds[1] AS term,
                   string_agg(DISTINCT {teacher}, ',' ORDER BY {teacher}) AS teachers
            FROM read_parquet(?) c
            LEFT JOIN read_parquet(?) e ON e.classSourcedId = c.sourcedId
                 AND e.role = 'teacher' AND coalesce(e.status, 'active') = 'active'
            {users}
            GROUP BY 1, 2, 3, 4, 5
            """,
            [str(p) for p in paths],
        ).df()
