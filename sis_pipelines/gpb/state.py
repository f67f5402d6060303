"""What grade passback keeps in the lake between its steps and across nights: the Canvas
gradebook snapshot and its window, the night's requests file, the passes, the ledger."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from typing import Any, BinaryIO

import orjson
import pandas as pd
from upath import UPath

from ..core.errors import StoredStateError
from ..core.lake import Lake
from ..core.nights import utc_stamp
from ..core.storage import atomic_write_bytes, publish, read_frame, read_typed, write_frame
from .canvas_gradebook import (
    ASSIGNMENT_COLUMNS,
    STUDENT_COLUMNS,
    SUBMISSION_COLUMNS,
    CanvasGradebook,
)
from .ledger import journal_entries, journaled, read_entry
from .payloads import Payloads
from .removals import LEDGER_COLUMNS, complete_ledger, empty_ledger

GRADEBOOK_FRAMES = {
    "assignments": ASSIGNMENT_COLUMNS,
    "submissions": SUBMISSION_COLUMNS,
    "students": STUDENT_COLUMNS,
}
# Which request fields the requests file keeps beside method, path and body.
REQUEST_META = (
    "key",
    "kind",
    "class",
    "course",
    "line_item_key",
    "student",
    "removal",
    "reason",
)


def store_gradebook(
    lake: Lake, tenant_id: str, night: date, book: CanvasGradebook, until: Any
) -> dict[str, Any]:
    """The night's gradebook frames, the moment they show (``until`` an aware datetime) and
    the courses read whole."""
    for name, frame in book.frames().items():
        write_frame(frame, lake.gradebook_frame(name, night, tenant_id))
    window = {"graded_until": utc_stamp(until), "courses": book.courses}
    atomic_write_bytes(json.dumps(window).encode(), lake.gradebook_window(night, tenant_id))
    return window


def _gradebook_frame(lake: Lake, tenant_id: str, night: date | str, name: str) -> UPath:
    path = lake.gradebook_frame(name, night, tenant_id)
    if not path.exists():
        raise StoredStateError(
            f"tenant {tenant_id!r}, night {night}: no Canvas gradebook snapshot; materialize gpb/canvas_gradebook first"
        )
    return path


def courses_with_assignments(lake: Lake, tenant_id: str, night: date | str) -> set[str]:
    """The courses of the night's gradebook snapshot that had assignments (one column read)."""
    path = _gradebook_frame(lake, tenant_id, night, "assignments")
    return set(read_frame(path, ["course_id"])["course_id"].dropna())


def load_gradebook(lake: Lake, tenant_id: str, night: date) -> CanvasGradebook:
    frames = {
        name: read_typed(_gradebook_frame(lake, tenant_id, night, name), columns)
        for name, columns in GRADEBOOK_FRAMES.items()
    }
    window = json.loads(lake.gradebook_window(night, tenant_id).read_text())
    return CanvasGradebook(
        frames["assignments"],
        frames["submissions"],
        frames["students"],
        [],
        # Before passes read whole courses, the courses of the assignments read.
        window.get("courses", sorted(frames["assignments"]["course_id"].dropna().unique())),
    )


def record_pass(lake: Lake, tenant_id: str, night: date) -> None:
    """The night's push completed: the next night reads Canvas from where this one ended."""
    window = json.loads(lake.gradebook_window(night, tenant_id).read_text())
    lake.gpb_passes(tenant_id).record(night, {"graded_until": window["graded_until"]})


def read_ledger(lake: Lake, tenant_id: str, columns: list[str] | None = None) -> pd.DataFrame:
    """The tenant's ledger (its ``columns``, else all), every column filled (rows of an
    earlier release read back from their keys): the one place the stored ledger is read."""
    empty = empty_ledger() if columns is None else empty_ledger()[columns]
    stored = lake.read_gpb_ledger(tenant_id, empty)
    return complete_ledger(journaled(lake, tenant_id, stored))[list(empty.columns)]


def passed_back(ledger: pd.DataFrame) -> set[str]:
    """The Canvas courses we passed grades back from."""
    return set(ledger["course"].dropna())


def courses_passed_back(lake: Lake, tenant_id: str) -> set[str]:
    """``passed_back`` of the tenant's ledger, its journal included, reading one column (a
    district's ledger is close to a million rows). A course whose rows a cut-short push
    removed may stay in it: one course more read whole."""
    files = [lake.gpb_ledger_file(tenant_id)] if lake.gpb_ledger_file(tenant_id).exists() else []
    courses: set[str] = set()
    for path in files + journal_entries(lake, tenant_id):
        courses |= set(read_entry(path, {"course": LEDGER_COLUMNS["course"]})["course"].dropna())
    return courses


def write_request_lines(requests: list[dict[str, Any]], fh: BinaryIO) -> None:
    """One JSON object per line, in send order: method, path, body, and our own ``meta``."""
    for r in requests:
        meta = {k: r[k] for k in REQUEST_META if r.get(k) is not None}
        body = {"method": r["method"], "path": r["path"], "body": r["body"], "meta": meta}
        fh.write(orjson.dumps(body, option=orjson.OPT_APPEND_NEWLINE))


def write_requests(payloads: Payloads, path: UPath) -> None:
    publish(path, lambda fh: write_request_lines(payloads.requests, fh))


def read_request_parts(path: UPath, requests_per_part: int) -> Iterator[list[dict[str, Any]]]:
    """The requests file in parts of about ``requests_per_part`` requests, in file order: a
    class's lineItems and results in one part (a result needs its lineItem sent first), the
    categories with the part they precede, and the removals, which come last, as one part."""
    part: list[dict[str, Any]] = []
    classes: set[str] = set()
    removals: list[dict[str, Any]] = []
    for request in _requests(path):
        if request.get("removal"):
            removals.append(request)
            continue
        class_id = request.get("class")
        if class_id is not None and class_id not in classes and len(part) >= requests_per_part:
            yield part
            part, classes = [], set()
        if class_id is not None:
            classes.add(class_id)
        part.append(request)
    for last in (part, removals):
        if last:
            yield last


def _requests(path: UPath) -> Iterator[dict[str, Any]]:
    with path.open("rb") as fh:
        for line in fh:
            if line.strip():
                r = orjson.loads(line)
                yield {
                    "method": r["method"],
                    "path": r["path"],
                    "body": r["body"],
                    **r.get("meta", {}),
                }
