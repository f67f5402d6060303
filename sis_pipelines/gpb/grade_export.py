"""The account's Grade Export report (``grade_export_csv``): a row per student enrollment in
a published course, with its course sis id, the student's and section's sis ids and the
current and final scores (Canvas's ``grade_reports.rb``).

One report names the courses where a student has a score, so a district of tens of
thousands of courses reads only those, and it carries the students' course grades, so those
courses' enrollments need no request of their own. A large district's report is a row per
student enrollment (ten million): it is streamed to a file and read in batches, keeping only
the rows of the courses that will be read.
"""

from __future__ import annotations

import tempfile
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv as pa_csv

from ..canvas.api import CanvasClient, CanvasError
from ..oneroster.csv_columnar import READ_BLOCK
from .canvas_gradebook import STUDENT_COLUMNS

REPORT = "grade_export_csv"
COLUMNS = {  # the report's column -> the gradebook's students frame
    "course sis": "course_id",
    "student id": "user_id",
    "student sis": "sis_user_id",
    "section sis": "sis_section_id",
    "enrollment state": "enrollment_state",
    "current score": "current_score",
    "final score": "final_score",
}


@dataclass
class GradeExport:
    courses: set[str]  # the courses to read: a student has a score, or we passed back from it
    students: pd.DataFrame  # their active students, as the gradebook's students frame


def _batches(path: Path, columns: list[str]) -> Iterator[pa.RecordBatch]:
    reader = pa_csv.open_csv(
        path,
        # Small blocks: Arrow reads some forty ahead (16 MB blocks held 0.7 GB).
        read_options=pa_csv.ReadOptions(block_size=READ_BLOCK),
        convert_options=pa_csv.ConvertOptions(
            include_columns=columns,
            column_types=dict.fromkeys(columns, pa.string()),
            strings_can_be_null=True,
        ),
    )
    yield from reader


def _check_header(canvas: CanvasClient, path: Path) -> None:
    """A report without its columns (empty, cut, another report) would read as no course
    with a score: refused, not taken as a night without grades."""
    with path.open("rb") as fh:
        header = fh.readline().decode("utf-8-sig", "replace").strip().lower().split(",")
    missing = [c for c in COLUMNS if c not in [h.strip('" ') for h in header]]
    if missing:
        raise CanvasError(
            canvas.tenant,
            f"reports/{REPORT}",
            f"the Grade Export report has no {', '.join(missing)} column (is it empty or cut?); "
            "nothing read from it",
        )


def grade_export(canvas: CanvasClient, passed_back: Collection[str]) -> GradeExport:
    """The courses worth reading tonight and their students' course grades."""
    with tempfile.TemporaryDirectory(prefix="grade-export-") as folder:
        path = Path(folder) / f"{REPORT}.csv"
        with path.open("wb") as fh:
            canvas.account_report(REPORT, {}, into=fh)
        _check_header(canvas, path)
        scored: set[str] = set()
        for batch in _batches(path, ["course sis", "current score"]):
            has_score = pc.is_valid(batch["current score"])
            scored.update(pc.unique(batch["course sis"].filter(has_score)).drop_null().to_pylist())
        courses = scored | set(passed_back)
        wanted = pa.array(sorted(courses), pa.string())
        kept = [
            batch.filter(
                pc.and_(
                    pc.is_in(batch["course sis"], value_set=wanted),
                    pc.equal(batch["enrollment state"], "active"),
                )
            )
            for batch in _batches(path, list(COLUMNS))
        ]
    types = {"student id": pa.int64(), "current score": pa.float64(), "final score": pa.float64()}
    columns = {
        COLUMNS[name]: pa.chunked_array(
            [pc.cast(b[name], types.get(name, pa.string())) for b in kept],
            types.get(name, pa.string()),
        )
        for name in COLUMNS
    }
    # Arrow-backed from the start: the report's rows as Python strings were most of the read.
    dtypes = {
        pa.string(): pd.StringDtype("pyarrow"),
        pa.int64(): pd.Int64Dtype(),
        pa.float64(): pd.Float64Dtype(),
    }
    frame = pa.table(columns).to_pandas(types_mapper=dtypes.get)
    return GradeExport(courses, frame.astype(STUDENT_COLUMNS))
