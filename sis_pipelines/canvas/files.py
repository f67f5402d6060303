"""The Canvas SIS Import CSV files we write: exact columns, keys and status values."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CanvasFile:
    name: str  # file name without .csv
    columns: tuple[str, ...]  # header, in order
    key: tuple[str, ...]  # what identifies a row
    required: tuple[str, ...]  # cells that may not be empty
    statuses: frozenset[str]  # empty: the file has no status column
    dates: tuple[str, ...] = ()  # Canvas clears these on an empty cell
    one_of: tuple[tuple[str, ...], ...] = ()  # of each group, at least one cell filled
    choices: tuple[tuple[str, frozenset[str]], ...] = ()  # a column's only values
    # Sent as it is, the night it comes, never compared with a night before nor carried to
    # the next: Canvas takes it as an instruction (a conversion's renames, logins to add).
    whole: bool = False


FILES: dict[str, CanvasFile] = {
    f.name: f
    for f in (
        CanvasFile(
            "accounts",
            ("account_id", "parent_account_id", "name", "status", "integration_id"),
            ("account_id",),
            ("account_id", "name", "status"),
            frozenset({"active", "deleted"}),
        ),
        CanvasFile(
            "terms",
            (
                "term_id",
                "name",
                "status",
                "integration_id",
                "date_override_enrollment_type",
                "start_date",
                "end_date",
            ),
            ("term_id",),
            ("term_id", "name", "status"),
            frozenset({"active", "deleted"}),
            ("start_date", "end_date"),
        ),
        CanvasFile(
            "courses",
            (
                "course_id",
                "short_name",
                "long_name",
                "account_id",
                "term_id",
                "status",
                "integration_id",
                "start_date",
                "end_date",
                "course_format",
                "blueprint_course_id",
                "grade_passback_setting",
                "homeroom_course",
                "friendly_name",
            ),
            ("course_id",),
            ("course_id", "short_name", "long_name", "status"),
            frozenset({"active", "deleted", "completed", "published"}),
        ),
        CanvasFile(
            "sections",
            (
                "section_id",
                "course_id",
                "name",
                "status",
                "integration_id",
                "start_date",
                "end_date",
            ),
            ("section_id",),
            ("section_id", "course_id", "name", "status"),
            frozenset({"active", "deleted"}),
            ("start_date", "end_date"),
        ),
        CanvasFile(
            "users",
            (
                "user_id",
                "integration_id",
                "login_id",
                "authentication_provider_id",
                "first_name",
                "last_name",
                "full_name",
                "sortable_name",
                "short_name",
                "email",
                "pronouns",
                "declared_user_type",
                "status",
            ),
            ("user_id",),
            ("user_id", "login_id", "status"),
            frozenset({"active", "suspended", "deleted"}),
        ),
        CanvasFile(
            "enrollments",
            (
                "course_id",
                "section_id",
                "user_id",
                "user_integration_id",
                "role",
                "role_id",
                "status",
                "start_date",
                "end_date",
                "associated_user_id",
                "limit_section_privileges",
                "notify",
                "root_account",
            ),
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
        # The files a CSV Gateway drop may also hold (Canvas's SIS CSV format document).
        CanvasFile(
            "change_sis_id",
            ("old_id", "new_id", "old_integration_id", "new_integration_id", "type"),
            ("type", "old_id", "old_integration_id"),
            ("type",),
            frozenset(),
            one_of=(("old_id", "old_integration_id"), ("new_id", "new_integration_id")),
            choices=(
                (
                    "type",
                    frozenset(
                        {"account", "term", "course", "section", "group", "group_category", "user"}
                    ),
                ),
            ),
            whole=True,
        ),
        CanvasFile(
            "xlists",
            ("xlist_course_id", "section_id", "status"),
            ("section_id",),
            ("xlist_course_id", "section_id", "status"),
            frozenset({"active", "deleted"}),
        ),
        CanvasFile(
            "logins",
            (
                "user_id",
                "integration_id",
                "login_id",
                "password",
                "ssha_password",
                "authentication_provider_id",
                "existing_user_id",
                "existing_integration_id",
                "existing_canvas_user_id",
                "root_account",
                "email",
            ),
            ("user_id", "login_id"),
            ("user_id", "login_id"),
            frozenset(),  # Canvas only adds logins: one is removed through users.csv
            one_of=(("existing_user_id", "existing_integration_id", "existing_canvas_user_id"),),
        ),
        CanvasFile(
            "admins",
            ("user_id", "account_id", "role_id", "role", "status", "root_account"),
            ("user_id", "account_id", "role", "role_id"),
            ("user_id", "status"),
            frozenset({"active", "deleted"}),
            one_of=(("role", "role_id"),),
        ),
        CanvasFile(
            "group_categories",
            ("group_category_id", "account_id", "course_id", "category_name", "status"),
            ("group_category_id",),
            ("group_category_id", "category_name", "status"),
            frozenset({"active", "deleted"}),
        ),
        CanvasFile(
            "groups",
            ("group_id", "group_category_id", "account_id", "course_id", "name", "status"),
            ("group_id",),
            ("group_id", "name", "status"),
            frozenset({"available", "deleted"}),
        ),
        CanvasFile(
            "group_memberships",
            ("group_id", "user_id", "status"),
            ("group_id", "user_id"),
            ("group_id", "user_id", "status"),
            frozenset({"accepted", "deleted"}),
        ),
    )
}

# The files a night's state is made of (mapped, compared night to night), parents first.
ORDER = (
    "accounts",
    "terms",
    "courses",
    "sections",
    "xlists",
    "users",
    "logins",
    "enrollments",
    "admins",
    "group_categories",
    "groups",
    "group_memberships",
    "user_observers",
)
# Canvas's processing order, in which a zip's files are written: change_sis_id first (the
# other files already use the new ids).
ZIP_ORDER = ("change_sis_id", *ORDER)
WHOLE = tuple(name for name in ZIP_ORDER if FILES[name].whole)
GUARDED = ("users", "courses", "sections", "enrollments")
