"""A SIS id renamed (``change_sis_id.csv``): where Canvas keeps each kind of id, and every
Canvas file that names it. The night a drop renames ids, the night before is read under the
new ids, so the delta sees a renamed course as the same course (never deleted and created
again) and the deletion guard counts only what truly leaves."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import pandas as pd

from ..core.errors import StoredStateError
from ..core.figures import Figures, Markdown
from ..core.lake import Lake
from ..core.storage import atomic_write_bytes, read_frame, write_frame
from ..core.tenant_night import NightFiles, TenantNight
from .compare import FileSource, read_whole
from .crosslist import classes_and_teachers

# change_sis_id.csv's types: every file naming an id of the type, the one holding it first.
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


# The file and column that hold each type's id.
HELD_IN = {kind: (named[0][0], named[0][1][0]) for kind, named in NAMED_BY.items()}


def renames(change_sis_id: pd.DataFrame | None) -> dict[str, dict[str, str]]:
    """Old id -> new id, by type, of the rows that rename an SIS id (integration ids aside),
    as Canvas applies them row after row: a later row renaming a new id carries the first old
    id on to the last."""
    out: dict[str, dict[str, str]] = {}
    if change_sis_id is None or not len(change_sis_id):
        return out
    rows = change_sis_id.reindex(columns=["type", "old_id", "new_id"]).fillna("")
    for kind, old, new in zip(rows["type"], rows["old_id"], rows["new_id"], strict=True):
        if old and new:
            ids = out.setdefault(str(kind), {})
            for first, last in ids.items():
                if last == old:
                    ids[first] = str(new)
            ids.setdefault(str(old), str(new))
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
                frame[column] = renamed_values(frame[column], ids)
        out[name] = frame
    return out


def renamed_values(values: pd.Series, ids: Mapping[str, str]) -> pd.Series:
    """The values with each renamed id replaced, the others as they are (a column at once)."""
    hit = values.isin(list(ids))
    return values.where(~hit, values[hit].map(ids))


def renamed_ids(ids: set[str], ids_of: Mapping[str, str]) -> set[str]:
    return {ids_of.get(i, i) for i in ids}


# How a record of the old SIS is known in the new one, type by type, parents first (a
# course's school and term are matched before the course). A key that names more than one
# record on either side is ambiguous: never guessed.
MATCHED_BY: tuple[tuple[str, tuple[tuple[str, ...], ...]], ...] = (
    # The org's identifier (from the night's OneRoster orgs), else its name.
    ("account", (("identifier",), ("name",))),
    ("term", (("name", "start_date"),)),
    ("course", (("short_name", "long_name", "account_id", "term_id"),)),
    # The class's code, term and teachers (their usernames), else its name and course.
    ("section", (("class_code", "term_id", "teachers"), ("name", "course_id"))),
    # A state id sent as integration_id (canvas.integration_id_field) first: it survives a
    # conversion when logins change.
    ("user", (("integration_id",), ("login_id",), ("email",))),
)
# Columns that name a parent, matched before: compared under the new SIS's ids.
PARENTS = {"account_id": "account", "term_id": "term", "course_id": "course"}
EXAMPLES = 3


@dataclass
class Conversion:
    """The old SIS's ids matched to the new one's: the renames (change_sis_id rows) and, type
    by type, what was matched, what is ambiguous and what has no counterpart."""

    renames: pd.DataFrame  # old_id, new_id, type
    report: pd.DataFrame  # type, matched, ambiguous, unmatched_old, unmatched_new, examples


def match(
    old: Mapping[str, pd.DataFrame],
    new: Mapping[str, pd.DataFrame],
    supplied: pd.DataFrame | None = None,
) -> Conversion:
    """Matches the Canvas files of the old SIS's last night with the new SIS's night by stable
    identifiers (``MATCHED_BY``); ``supplied`` (old_id, new_id, type), the district's own
    mapping, is taken first and the rest matched around it."""
    given = _supplied(supplied)
    ids: dict[str, dict[str, str]] = {}
    rows = []
    for kind, keys in MATCHED_BY:
        name, column = HELD_IN[kind]
        before = old.get(name, pd.DataFrame(columns=[column]))
        after = new.get(name, pd.DataFrame(columns=[column]))
        found = dict(given.get(kind, {}))
        ambiguous: set[str] = set()
        for key in keys:
            left = _keyed(before[~before[column].isin(list(found))], column, key, ids)
            right = _keyed(after[~after[column].isin(list(found.values()))], column, key, ids)
            if left is None or right is None:
                continue
            twice = set(left.index[left.index.duplicated()]) | set(
                right.index[right.index.duplicated()]
            )
            unique_left = left[~left.index.isin(twice)]
            unique_right = right[~right.index.isin(twice)]
            both = unique_left.index.intersection(unique_right.index)
            found |= dict(
                zip(
                    unique_left.loc[both].astype(str),
                    unique_right.loc[both].astype(str),
                    strict=True,
                )
            )
            ambiguous |= set(left[left.index.isin(twice)].astype(str))
        ambiguous -= set(found)
        ids[kind] = found
        unmatched_old = sorted(set(before[column].astype(str)) - set(found) - ambiguous)
        unmatched_new = sorted(set(after[column].astype(str)) - set(found.values()))
        renamed = {o: n for o, n in found.items() if o != n}
        rows.append(
            {
                "type": kind,
                "matched": len(found),
                "renamed": len(renamed),
                "ambiguous": len(ambiguous),
                "unmatched_old": len(unmatched_old),
                "unmatched_new": len(unmatched_new),
                "examples": "; ".join(
                    [f"{o} -> {n}" for o, n in list(renamed.items())[:EXAMPLES]]
                    + [f"ambiguous: {a}" for a in sorted(ambiguous)[:EXAMPLES]]
                    + [f"only in the old SIS: {u}" for u in unmatched_old[:EXAMPLES]]
                ),
            }
        )
    renames = pd.DataFrame(
        [(o, n, kind) for kind, found in ids.items() for o, n in found.items() if o != n],
        columns=["old_id", "new_id", "type"],
    )
    return Conversion(renames, pd.DataFrame(rows))


def _supplied(frame: pd.DataFrame | None) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    if frame is None:
        return out
    for old, new, kind in zip(frame["old_id"], frame["new_id"], frame["type"], strict=True):
        out.setdefault(str(kind), {})[str(old)] = str(new)
    return out


def _keyed(
    frame: pd.DataFrame, column: str, key: tuple[str, ...], ids: Mapping[str, Mapping[str, str]]
) -> pd.Series | None:
    """The records' ids by their key (parents under the new SIS's ids; text lowercased); None
    when the file lacks a key column. Records whose key is empty are left out."""
    if not set(key) <= set(frame.columns):
        return None
    parts = []
    for part in key:
        values = frame[part].astype(object).where(frame[part].notna(), "").astype(str)
        if part in PARENTS:
            values = renamed_values(values, ids.get(PARENTS[part], {}))
        else:
            values = values.str.strip().str.lower()
        parts.append(values)
    joined = parts[0]
    for values in parts[1:]:
        joined = joined + "\x1f" + values
    filled = (pd.concat(parts, axis=1) != "").any(axis=1) if parts else joined != ""
    keyed = pd.Series(frame[column].astype(str).to_numpy(), index=joined.to_numpy())
    return keyed[filled.to_numpy()]


def convert_night(
    lake: Lake, tn: TenantNight, old_night: date, supplied: pd.DataFrame | None, go: bool
) -> Figures:
    """Matches the Canvas state of the old SIS's last night (``old_night``) with tonight's
    mapping from the new SIS, stores the report, and with ``go`` stores the renames as the
    night's change_sis_id file: the night's delta then sends them first and compares under
    the new ids. The renames are the matched ids only; what is ambiguous or unmatched is
    reported, never guessed (the district supplies it in ``supplied``)."""
    files = tn.files(lake)
    old_files = NightFiles(lake, str(old_night), tn.id)
    names = [HELD_IN[kind][0] for kind, _ in MATCHED_BY]
    if not old_files.canvas_file("users").exists():
        raise StoredStateError(
            f"{tn}: no Canvas mapping of the old SIS's night {old_night}: name the last night "
            "the old SIS was applied to Canvas (--from-snapshot)"
        )
    if not files.canvas_file("users").exists():
        raise StoredStateError(
            f"{tn}: the new SIS's night is not mapped yet: sis-pipelines run --tenant {tn.id} "
            f'--night {tn.night} --select "group:oneroster or key:canvas/mapping"'
        )
    prefix = tn.tenant.canvas.sis_id_prefix if tn.tenant.canvas else ""
    old = {n: read_whole(p) for n in names if (p := old_files.canvas_file(n)).exists()}
    new = {n: read_whole(p) for n in names if (p := files.canvas_file(n)).exists()}
    old, new = _with_roster(old_files, old, prefix), _with_roster(files, new, prefix)
    conversion = match(old, new, supplied)
    write_frame(conversion.report, files.conversion())
    table = Markdown(
        "| type | matched | renamed | ambiguous | only in the old SIS | only in the new | examples |\n"
        "|---|---:|---:|---:|---:|---:|---|\n"
        + "\n".join(
            f"| {r.type} | {r.matched} | {r.renamed} | {r.ambiguous} | {r.unmatched_old} | "
            f"{r.unmatched_new} | {r.examples} |"
            for r in conversion.report.itertuples()
        )
    )
    atomic_write_bytes(table.encode(), files.conversion(".md"))
    target = files.canvas_file("change_sis_id")
    if go:
        write_frame(conversion.renames, target)  # sent whole: no fingerprints needed
    return {
        "conversion": table,
        "renames": len(conversion.renames),
        "change_sis_id": str(target) if go else "not stored (without --go)",
    }


def _with_roster(
    files: NightFiles, canvas: dict[str, pd.DataFrame], prefix: str
) -> dict[str, pd.DataFrame]:
    """The Canvas files with what the night's OneRoster snapshots know of them and both SIS
    share: each account's org identifier, each section's class code, term and teachers'
    usernames (none for a CSV Gateway tenant: it has no snapshots)."""
    out = dict(canvas)
    orgs = files.snapshot("orgs")
    if "accounts" in out and orgs.exists():
        frame = read_frame(orgs, ["sourcedId", "identifier"])
        identifier = dict(
            zip(prefix + frame["sourcedId"].astype(str), frame["identifier"], strict=True)
        )
        out["accounts"] = out["accounts"].assign(
            identifier=out["accounts"]["account_id"].astype(str).map(identifier)
        )
    paths = [files.snapshot(n) for n in ("classes", "enrollments", "users")]
    if "sections" in out and all(p.exists() for p in paths):
        roster = classes_and_teachers(files, by_username=True)
        roster["section_id"] = prefix + roster["class"].astype(str)
        roster["term_id"] = prefix + roster["term"].astype(object).where(
            roster["term"].notna(), ""
        ).astype(str)
        out["sections"] = out["sections"].merge(
            roster[["section_id", "class_code", "term_id", "teachers"]], on="section_id", how="left"
        )
    return out
