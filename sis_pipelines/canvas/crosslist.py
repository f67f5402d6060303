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
from ..core.tenant_night import TenantNight

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
    frame = _classes(files.snapshot("classes"), files.snapshot("enrollments"))
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


def _classes(classes, enrollments) -> pd.DataFrame:
    """Each class with a teacher: its course, school, first term and active teachers (as one
    text), by DuckDB over the stored snapshots (ten million enrollments stay out of Python)."""
    with bounded("512MB", "crosslist") as con:
        return con.execute(
            """
            WITH teachers AS (
                SELECT classSourcedId AS class,
                       string_agg(DISTINCT userSourcedId, ',' ORDER BY userSourcedId) AS teachers
                FROM read_parquet(?)
                WHERE role = 'teacher' AND coalesce(status, 'active') = 'active'
                GROUP BY classSourcedId
            )
            SELECT sourcedId AS class, courseSourcedId AS course, schoolSourcedId AS school,
                   termSourcedIds[1] AS term, teachers
            FROM read_parquet(?) JOIN teachers ON sourcedId = class
            """,
            [str(enrollments), str(classes)],
        ).df()
