"""The SIS Import zip: only non-empty CSVs, UTF-8, header rows, ISO 8601 times; checked by
the Canvas importer's rules before it leaves us."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Mapping

import pandas as pd

from ..core.errors import SisPipelinesError
from ..oneroster.repair import CONTROL as control_characters
from ..oneroster.shown import shown
from .files import FILES, ZIP_ORDER

CONTROL = re.compile(control_characters)


class CanvasCsvError(SisPipelinesError, ValueError):
    """A Canvas SIS CSV that Canvas would refuse: says which file, row and column."""


def to_csv(name: str, frame: pd.DataFrame) -> bytes:
    """RFC 4180 lines (CRLF): Python's writer quotes a field holding any character of the line
    terminator, so a carriage return or a newline in a value is always inside quotes, where
    Canvas's CSV reader takes it as text."""
    columns = [c for c in FILES[name].columns if c in frame.columns]
    return (
        frame[columns]
        .to_csv(index=False, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
        .encode("utf-8")
    )


# Every entry carries the same time: a night's zip is the same bytes whenever and wherever it
# is built (an in-process run, a Celery worker, a re-run), so a re-built zip can be compared.
ENTRY_TIME = (1980, 1, 1, 0, 0, 0)


def build_zip(files: Mapping[str, pd.DataFrame]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for name in ZIP_ORDER:
            frame = files.get(name)
            if frame is None or frame.empty:
                continue
            entry = zipfile.ZipInfo(f"{name}.csv", date_time=ENTRY_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            bundle.writestr(entry, to_csv(name, frame))
    data = buffer.getvalue()
    problems = check_zip(data)
    if problems:
        raise CanvasCsvError("the SIS import would be refused: " + "; ".join(problems[:10]))
    return data


# Canvas's header tests, in its processing order: a file goes to the first that takes it.
HEADER_TESTS: tuple[tuple[str, tuple[frozenset[str], ...]], ...] = (
    ("change_sis_id", (frozenset({"old_id"}), frozenset({"old_integration_id"}))),
    ("accounts", (frozenset({"account_id", "parent_account_id"}),)),
    ("terms", (frozenset({"term_id", "name"}),)),
    ("courses", (frozenset({"course_id", "short_name"}),)),
    ("sections", (frozenset({"section_id", "name"}),)),
    ("xlists", (frozenset({"xlist_course_id", "section_id"}),)),
    ("users", (frozenset({"user_id", "login_id"}),)),  # and no existing_* column
    (
        "logins",
        tuple(
            frozenset({c})
            for c in ("existing_user_id", "existing_integration_id", "existing_canvas_user_id")
        ),
    ),
    (
        "enrollments",
        tuple(
            frozenset({a, b})
            for a in ("course_id", "section_id")
            for b in ("user_id", "user_integration_id")
        ),
    ),
    ("admins", (frozenset({"account_id", "user_id"}),)),
    ("group_categories", (frozenset({"group_category_id", "category_name"}),)),
    ("groups", (frozenset({"group_id", "account_id"}),)),
    ("group_memberships", (frozenset({"group_id", "user_id"}),)),
    ("user_observers", (frozenset({"observer_id", "student_id"}),)),
)
EXISTING = frozenset({"existing_user_id", "existing_integration_id", "existing_canvas_user_id"})


def identify(header: list[str]) -> str | None:
    """Which Canvas importer takes a CSV, by its header, as Canvas decides: the first in its
    processing order whose header test passes (``lib/sis/csv/*_importer.rb``)."""
    h = {c.strip().lower() for c in header}
    for name, tests in HEADER_TESTS:
        if name == "users" and h & EXISTING:
            continue
        if any(test <= h for test in tests):
            return name
    return None


def read_zip(data: bytes) -> dict[str, list[dict[str, str]]]:
    """Rows per Canvas file kind, as Canvas would classify them."""
    out: dict[str, list[dict[str, str]]] = {}
    with zipfile.ZipFile(io.BytesIO(data)) as bundle:
        for info in bundle.infolist():
            if not info.filename.lower().endswith(".csv"):
                continue
            text = bundle.read(info).decode("utf-8-sig")
            reader = csv.DictReader(io.StringIO(text, newline=""))
            try:
                if reader.fieldnames:  # Canvas lowercases the header first
                    reader.fieldnames = [c.strip().lower() for c in reader.fieldnames]
                kind = identify(reader.fieldnames or [])
                if kind is None:
                    raise CanvasCsvError(f"{info.filename}: header not recognised by any importer")
                out.setdefault(kind, []).extend(reader)
            except csv.Error as exc:
                raise CanvasCsvError(f"{info.filename} line {reader.line_num}: {exc}") from None
    return out


def check_zip(data: bytes) -> list[str]:
    """The Canvas importer's row rules: required cells, status values, ISO 8601 dates."""
    problems: list[str] = []
    try:
        files = read_zip(data)
    except (CanvasCsvError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        return [str(exc)]
    problems += _control_characters(files)
    for kind, rows in files.items():
        spec = FILES[kind]
        for line, row in enumerate(rows, start=2):
            for column in spec.required:
                if not (row.get(column) or "").strip():
                    problems.append(f"{kind}.csv line {line}: {column} is required")
            for group in spec.one_of:
                if not any((row.get(c) or "").strip() for c in group):
                    problems.append(
                        f"{kind}.csv line {line}: one of {', '.join(group)} is required"
                    )
            for column, allowed in spec.choices:
                value = row.get(column, "")
                if value and value not in allowed:
                    problems.append(
                        f'{kind}.csv line {line}: {column} "{value}" is not one Canvas takes'
                    )
            status = row.get("status", "")
            if spec.statuses and status and status not in spec.statuses:
                problems.append(f'{kind}.csv line {line}: Improper status "{status}"')
            for column in spec.dates:
                value = row.get(column) or ""
                if value and not _iso8601(value):
                    problems.append(
                        f"{kind}.csv line {line}: {column} {shown(value)} is not ISO 8601"
                    )
    return problems


def _control_characters(files: dict[str, list[dict[str, str]]]) -> list[str]:
    """NUL anywhere, or any control character in an id: Canvas would store it in a SIS id or
    a login (the pipeline quarantines such records before; a drop's rows are refused)."""
    problems = []
    for kind, rows in files.items():
        ids = [c for c in FILES[kind].columns if c.endswith("_id")]
        for line, row in enumerate(rows, start=2):
            for column, value in row.items():
                if not value:
                    continue
                bad = CONTROL.search(value) if column in ids else ("\x00" in value)
                if bad:
                    problems.append(
                        f"{kind}.csv line {line}: {column} {shown(value)} holds a control character"
                    )
    return problems


def _iso8601(value: str) -> bool:
    try:
        pd.Timestamp(value)
    except ValueError:
        return False
    return len(value) >= 10 and value[4] == "-" and value[7] == "-"
