"""A SIS id renamed (``change_sis_id.csv``): where Canvas keeps each kind of id, and every
Canvas file that names it. The night a drop renames ids, the night before is read under the
new ids, so the delta sees a renamed course as the same course (never deleted and created
again) and the deletion guard counts only what truly leaves."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from .compare import FileSource, read_whole

# change_sis_id.csv's types: the file and column holding the id, and every file naming it.
HELD_IN = {
    "user": ("users", "user_id"),
    "course": ("courses", "course_id"),
    "section": ("sections", "section_id"),
    "account": ("accounts", "account_id"),
    "term": ("terms", "term_id"),
    "group": ("groups", "group_id"),
    "group_category": ("group_categories", "group_category_id"),
}
NAMED_BY: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "user": (
        ("users", ("user_id",)),
        ("enrollments", ("user_id",)),
        ("user_observers", ("observer_id", "student_id")),
        ("admins", ("user_id",)),
        ("group_memberships", ("user_id",)),
        ("logins", ("existing_user_id",)),
    ),
    "course": (
        ("courses", ("course_id",)),
        ("sections", ("course_id",)),
        ("enrollments", ("course_id",)),
        ("xlists", ("xlist_course_id",)),
        ("group_categories", ("course_id",)),
        ("groups", ("course_id",)),
    ),
    "section": (
        ("sections", ("section_id",)),
        ("enrollments", ("section_id",)),
        ("xlists", ("section_id",)),
    ),
    "account": (
        ("accounts", ("account_id", "parent_account_id")),
        ("courses", ("account_id",)),
        ("admins", ("account_id",)),
        ("group_categories", ("account_id",)),
        ("groups", ("account_id",)),
    ),
    "term": (("terms", ("term_id",)), ("courses", ("term_id",))),
    "group": (("groups", ("group_id",)), ("group_memberships", ("group_id",))),
    "group_category": (
        ("group_categories", ("group_category_id",)),
        ("groups", ("group_category_id",)),
    ),
}


def renames(change_sis_id: pd.DataFrame | None) -> dict[str, dict[str, str]]:
    """Old id -> new id, by type, of the rows that rename an SIS id (integration ids aside)."""
    out: dict[str, dict[str, str]] = {}
    if change_sis_id is None or not len(change_sis_id):
        return out
    rows = change_sis_id.fillna("")
    for kind, old, new in zip(rows["type"], rows["old_id"], rows["new_id"], strict=True):
        if old and new:
            out.setdefault(str(kind), {})[str(old)] = str(new)
    return out


def renamed_files(
    files: Mapping[str, FileSource], by_type: Mapping[str, Mapping[str, str]]
) -> dict[str, FileSource]:
    """The files with every renamed id replaced, where a file names it (read whole: a
    conversion night is rare, and its files are compared as frames)."""
    touched: dict[str, list[tuple[str, Mapping[str, str]]]] = {}
    for kind, ids in by_type.items():
        for name, columns in NAMED_BY.get(kind, ()):
            touched.setdefault(name, []).extend((c, ids) for c in columns)
    out = dict(files)
    for name, renaming in touched.items():
        source = files.get(name)
        if source is None:
            continue
        frame = read_whole(source).copy()
        for column, ids in renaming:
            if column in frame.columns:
                values = frame[column]
                hit = values.isin(list(ids))
                frame.loc[hit, column] = values[hit].map(ids)
        out[name] = frame
    return out


def renamed_ids(ids: set[str], ids_of: Mapping[str, str]) -> set[str]:
    return {ids_of.get(i, i) for i in ids}
