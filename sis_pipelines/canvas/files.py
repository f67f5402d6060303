"""The Canvas SIS Import CSV files we write: exact columns, keys and status values."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CanvasFile:
    name: str  # file name without .csv
    columns: tuple[str, ...]  # header, in order
    key: tuple[str, ...]  # what identifies a row
    required: tuple[str, ...]  # cells that may not be empty
    statuses: frozenset[str]
    dates: tuple[str, ...] = ()  # Canvas clears these on an empty cell


FILES: dict[str, CanvasFile] = {
    f.name: f
    for f in (
        CanvasFile(
            "accounts",
            ("account_id", "parent_account_id", "name", "status"),
            ("account_id",),
            ("account_id", "name", "status"),
            frozenset({"active", "deleted"}),
        ),
        CanvasFile(
            "terms",
            ("term_id", "name", "status", "start_date", "end_date"),
            ("term_id",),
            ("term_id", "name", "status"),
            frozenset({"active", "deleted"}),
            ("start_date", "end_date"),
        ),
        CanvasFile(
            "courses",
            ("course_id", "short_name", "long_name", "account_id", "term_id", "status"),
            ("course_id",),
            ("course_id", "short_name", "long_name", "status"),
            frozenset({"active", "deleted", "completed", "published"}),
        ),
        CanvasFile(
            "sections",
            ("section_id", "course_id", "name", "status", "start_date", "end_date"),
            ("section_id",),
            ("section_id", "course_id", "name", "status"),
            frozenset({"active", "deleted"}),
            ("start_date", "end_date"),
        ),
        CanvasFile(
            "users",
            (
                "user_id",
                "login_id",
                "first_name",
                "last_name",
                "email",
                "declared_user_type",
                "status",
            ),
            ("user_id",),
            ("user_id", "login_id", "status"),
            frozenset({"active", "suspended", "deleted"}),
        ),
        CanvasFile(
            "enrollments",
            ("course_id", "section_id", "user_id", "role", "status", "start_date", "end_date"),
            ("section_id", "user_id", "role"),
            ("section_id", "user_id", "role", "status"),
            frozenset({"active", "deleted", "completed", "inactive", "deleted_last_completed"}),
            ("start_date", "end_date"),
        ),
        CanvasFile(
            "user_observers",
            ("observer_id", "student_id", "status"),
            ("observer_id", "student_id"),
            ("observer_id", "student_id", "status"),
            frozenset({"active", "deleted"}),
        ),
    )
}

# Canvas imports in this order; parents first.
ORDER = ("accounts", "terms", "courses", "sections", "users", "enrollments", "user_observers")
GUARDED = ("users", "courses", "sections", "enrollments")
