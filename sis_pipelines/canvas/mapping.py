"""A tenant-night's OneRoster snapshot as the full Canvas SIS Import state it implies.

Only active OneRoster records are mapped; anything else is absent, and the delta turns
absence into the right removal. Canvas SIS ids are OneRoster sourcedIds with the tenant's
prefix (in course_term mode a course id joins the course and the term).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import date
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..core.tenants import Canvas
from .enrollments import (
    INTERNAL,
    CanvasEnrollments,
    _mapped,
    arrow_column,
    canvas_enrollments,
    first_items,
    iso_dates,
    text,
)
from .files import FILES, ORDER
from .scope import Scoping

OBSERVER_ROLES = {"guardian", "parent", "relative"}
USER_TYPES = {
    "student": "student",
    "teacher": "teacher",
    "guardian": "observer",
    "parent": "observer",
    "relative": "observer",
    "administrator": "administrative",
    "districtAdministrator": "administrative",
    "siteAdministrator": "administrative",
    "systemAdministrator": "administrative",
    "principal": "administrative",
}


# What the mapping reads of each collection: the mapping step loads only these columns
# (a district's enrollments carry six more, which would double the step's memory).
MAPPED_COLUMNS: dict[str, list[str]] = {
    "orgs": ["sourcedId", "status", "name", "parentSourcedId"],
    "academic_sessions": [
        "sourcedId",
        "status",
        "title",
        "type",
        "startDate",
        "endDate",
        "parentSourcedId",
    ],
    "courses": ["sourcedId", "status", "title", "courseCode", "orgSourcedId"],
    "classes": [
        "sourcedId",
        "status",
        "title",
        "classCode",
        "courseSourcedId",
        "schoolSourcedId",
        "termSourcedIds",
    ],
    "users": [
        "sourcedId",
        "status",
        "enabledUser",
        "role",
        "username",
        "email",
        "identifier",  # every possible login_id_field
        "givenName",
        "familyName",
        "preferredFirstName",
        "agentSourcedIds",
    ],
    "enrollments": [
        "status",
        "classSourcedId",
        "userSourcedId",
        "role",
        "beginDate",
        "endDate",
    ],
}


LOGIN_FIELDS = ("username", "email", "identifier")


def mapped_columns(name: str, cfg: Canvas) -> list[str]:
    """The columns of a collection the mapping reads for this tenant: of a district's two
    million users, only its login field and, with observers, the guardians' students (and
    what the tenant's scope asks of them)."""
    columns = MAPPED_COLUMNS[name] + Scoping(cfg.scope).columns().get(name, [])
    if name != "users":
        return columns
    wanted = (cfg.login_id_field, "email", cfg.integration_id_field)
    unused = {f for f in LOGIN_FIELDS if f not in wanted}
    if not cfg.observers:
        unused.add("agentSourcedIds")
    return [c for c in columns if c not in unused]


class Collections(Protocol):
    """A snapshot's collections, each taken once (a dict, or the stored night read lazily)."""

    def pop(self, name: str) -> Any: ...


# Loaded as dictionaries: a few hundred thousand distinct values over ten million rows.
MAPPED_AS_DICTIONARY: dict[str, list[str]] = {
    "enrollments": ["status", "classSourcedId", "userSourcedId", "role"],
}


def _s(series: pd.Series) -> pd.Series:
    """Plain object strings with None for missing: what CSV cells and comparisons need."""
    if isinstance(series.dtype, pd.ArrowDtype):
        # Arrow turns its strings into Python ones in C, far faster than iterating.
        values = pa.chunked_array(series.array._pa_array).to_numpy(zero_copy_only=False)
        return pd.Series(values, index=series.index, dtype=object)
    values = series.astype(object)
    return values.where(values.notna(), None)


def _iso(series: pd.Series) -> pd.Series:
    """Dates as Canvas's ISO 8601 times (midnight UTC), vectorised in Arrow."""
    values = iso_dates(series).to_numpy(zero_copy_only=False)
    return pd.Series(values, index=series.index, dtype=object)


def _active(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["status"].astype(object) == "active"]


def canvas_terms(sessions: pd.DataFrame, cfg: Canvas) -> tuple[pd.DataFrame, dict[str, str]]:
    """Terms, and for every session the Canvas term it belongs to."""
    sessions = _active(sessions)
    kinds = set(cfg.term_session_types)
    types = set(sessions["type"].astype(object))
    if not kinds & types:
        kinds = {"schoolYear"}  # nothing finer exists: school years become terms
    parent = dict(zip(_s(sessions["sourcedId"]), _s(sessions["parentSourcedId"]), strict=True))
    kind = dict(zip(_s(sessions["sourcedId"]), _s(sessions["type"]), strict=True))
    term_of: dict[str, str] = {}
    for sid in parent:
        cursor: str | None = sid
        for _ in range(8):  # sessions nest a few levels at most
            if cursor is None or kind.get(cursor) in kinds:
                break
            cursor = parent.get(cursor)
        if cursor is not None and kind.get(cursor) in kinds:
            term_of[sid] = cursor
    terms = sessions[sessions["type"].astype(object).isin(kinds)]
    frame = pd.DataFrame(
        {
            "term_id": _s(terms["sourcedId"]),
            "name": _s(terms["title"]),
            "status": "active",
            "start_date": _iso(terms["startDate"]),
            "end_date": _iso(terms["endDate"]),
        }
    )
    return frame, term_of


def term_signature(sessions: pd.DataFrame, cfg: Canvas) -> str:
    """What of a tenant's academic sessions the Canvas mapping depends on, as one digest:
    the Canvas terms with their names and dates, and which term every session belongs to."""
    import hashlib

    terms, term_of = canvas_terms(sessions, cfg)
    text = terms.sort_values("term_id").to_csv(index=False) + repr(sorted(term_of.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def canvas_accounts(orgs: pd.DataFrame) -> pd.DataFrame:
    orgs = _active(orgs)
    ids = _s(orgs["sourcedId"])
    parents = _s(orgs["parentSourcedId"])
    known = set(ids)
    parents = parents.where(parents.isin(known), None)
    # Depth by following parents, so that parents come before children.
    lookup = dict(zip(ids, parents, strict=True))
    depth = []
    for sid in ids:
        d, cursor = 0, lookup.get(sid)
        while cursor is not None and d < 16:
            d, cursor = d + 1, lookup.get(cursor)
        depth.append(d)
    frame = pd.DataFrame(
        {
            "account_id": ids.to_numpy(),
            "parent_account_id": parents.to_numpy(),
            "name": _s(orgs["name"]).to_numpy(),
            "status": "active",
            "_depth": depth,
        }
    )
    return (
        frame.sort_values(["_depth", "account_id"], kind="stable")
        .drop(columns="_depth")
        .reset_index(drop=True)
    )


def canvas_users(users: pd.DataFrame, cfg: Canvas) -> tuple[pd.DataFrame, np.ndarray]:
    """Canvas users (prefixed, Arrow-backed) and which OneRoster users they are.

    Active users with a login id; guardians only with ``observers``. Done in Arrow: a
    large district has two million users, and as Python strings they took a gigabyte.
    """
    role = text(users["role"])
    observer = pc.is_in(role, value_set=pa.array(sorted(OBSERVER_ROLES))).fill_null(False)
    wanted = pc.equal(text(users["status"]), "active").fill_null(False)
    if not cfg.observers:
        wanted = pc.and_(wanted, pc.invert(observer))
    login = text(users[cfg.login_id_field])
    eligible = pc.and_(wanted, pc.is_valid(login))
    without_login = pc.sum(pc.and_(wanted, pc.is_null(login))).as_py() or 0
    enabled = arrow_column(users["enabledUser"])
    disabled = pc.equal(enabled.cast(pa.bool_()), False).fill_null(False)
    prefix = cfg.sis_id_prefix
    table = pa.table(
        {
            "user_id": pc.binary_join_element_wise(prefix, text(users["sourcedId"]), ""),
            "login_id": login,
            "first_name": pc.coalesce(text(users["preferredFirstName"]), text(users["givenName"])),
            "last_name": text(users["familyName"]),
            "email": text(users["email"]),
            "declared_user_type": pc.coalesce(_mapped(role, USER_TYPES), "staff"),
            "status": pc.if_else(disabled, "suspended", "active"),
        }
    ).filter(eligible)
    table = _sign_in(table, users, role, cfg, eligible)
    frame = table.to_pandas(types_mapper=pd.ArrowDtype)
    frame.attrs["without_login"] = int(without_login)
    return frame, eligible.to_numpy(zero_copy_only=False)


def _sign_in(
    table: pa.Table, users: pd.DataFrame, role: pa.ChunkedArray, cfg: Canvas, eligible
) -> pa.Table:
    """The tenant's sign-in columns, only when it sets them (a file without them is compared
    as before: turning one on updates every user once)."""
    if cfg.integration_id_field is not None:
        table = table.append_column(
            "integration_id", text(users[cfg.integration_id_field]).filter(eligible)
        )
    if cfg.authentication_provider_id is not None or cfg.authentication_provider_by_role:
        chosen = _mapped(role, cfg.authentication_provider_by_role)
        if cfg.authentication_provider_id is not None:
            chosen = pc.coalesce(chosen, cfg.authentication_provider_id)
        chosen = chosen.filter(eligible)
        table = table.append_column("authentication_provider_id", chosen)
    return table


def _observers(
    users_src: pd.DataFrame, eligible: np.ndarray, users: pd.DataFrame, prefix: str
) -> pd.DataFrame:
    """Each mapped guardian with each mapped student among their agents (in Arrow: a large
    district has a million of each)."""
    guardian = pc.and_(
        pc.is_in(text(users_src["role"]), value_set=pa.array(sorted(OBSERVER_ROLES))),
        pa.array(eligible),
    ).fill_null(False)
    agents = arrow_column(users_src["agentSourcedIds"]).filter(guardian).combine_chunks()
    observer = text(users_src["sourcedId"]).filter(guardian).combine_chunks()
    student = pc.list_flatten(agents)
    observer = observer.take(pc.list_parent_indices(agents))
    is_student = pc.equal(text(users["declared_user_type"]), "student").fill_null(False)
    students = pc.utf8_slice_codeunits(text(users["user_id"]).filter(is_student), len(prefix))
    mapped = pc.is_in(student, value_set=students.combine_chunks()).fill_null(False)
    return pd.DataFrame(
        {
            "observer_id": observer.filter(mapped).to_numpy(zero_copy_only=False),
            "student_id": student.filter(mapped).to_numpy(zero_copy_only=False),
            "status": "active",
        }
    )


def map_snapshot(
    snapshot: Mapping[str, pd.DataFrame], cfg: Canvas, night: date, scoping: Scoping | None = None
) -> dict[str, pd.DataFrame]:
    """The full Canvas state (one frame per CSV file, unprefixed ids) of a snapshot."""
    files = canvas_state(snapshot, cfg, night, scoping)
    return {
        name: file.to_frame() if isinstance(file, CanvasEnrollments) else file
        for name, file in files.items()
    }


def canvas_state(
    snapshot: Mapping[str, pd.DataFrame | Iterable[pd.DataFrame]],
    cfg: Canvas,
    night: date,
    scoping: Scoping | None = None,
) -> dict[str, pd.DataFrame | CanvasEnrollments]:
    """The full Canvas state of a snapshot, every file at once (see ``canvas_files_of``)."""
    files = dict(canvas_files_of(dict(snapshot), cfg, night, scoping))
    return {name: files[name] for name in ORDER if name in files}


def canvas_files_of(
    snapshot: Collections, cfg: Canvas, night: date, scoping: Scoping | None = None
) -> Iterator[tuple[str, pd.DataFrame | CanvasEnrollments]]:
    """The Canvas files of a snapshot one at a time, enrollments last: they may come in
    batches, and are then built into rows a slice at a time as they are written.

    Takes each collection out of ``snapshot`` once it is mapped, and keeps only what the
    enrollments need of the rest (each class's course and dates, the mapped users' ids): a
    district's users, classes and their Canvas files are let go before its ten million
    enrollments are read (a consumer lets each file go once written).

    Only what is in the tenant's scope is mapped; ``scoping`` (made here when not given)
    holds what was left out.
    """
    prefix = cfg.sis_id_prefix
    scoping = scoping if scoping is not None else Scoping(cfg.scope)
    orgs = scoping.take_orgs(_active(snapshot.pop("orgs")))
    yield "accounts", _prefixed("accounts", canvas_accounts(orgs), prefix)
    del orgs
    sessions = scoping.take_sessions(_active(snapshot.pop("academic_sessions")))
    terms, term_of = canvas_terms(sessions, cfg)
    term_dates = terms.set_index("term_id")[["name", "start_date", "end_date"]]
    yield "terms", _prefixed("terms", terms, prefix)
    del terms

    cls, courses = _classes_and_courses(
        scoping.take_classes(_active(snapshot.pop("classes"))),
        _active(snapshot.pop("courses")),
        term_of,
        {str(k): v for k, v in term_dates["name"].items()},
        cfg.course_mode,
    )
    yield "courses", _arrow_file("courses", courses, prefix)
    del courses
    of_term = {c: {str(k): v for k, v in term_dates[c].items()} for c in ("start_date", "end_date")}
    start_date = _mapped(cls["term"], of_term["start_date"])
    end_date = _mapped(cls["term"], of_term["end_date"])
    sections = {
        "section_id": cls["class"],
        "course_id": cls["course_id"],
        "name": cls["title"],
        "status": pa.repeat("active", len(cls["class"])),
        "start_date": start_date,
        "end_date": end_date,
    }
    yield "sections", _arrow_file("sections", sections, prefix)
    del sections
    # Held while the enrollments are mapped, as Arrow (not a million Python strings).
    keys = pa.table(
        {
            "class": cls["class"],
            "course_id": cls["course_id"],
            "start_date": start_date,
            "end_date": end_date,
        }
    ).to_pandas(types_mapper=pd.ArrowDtype)
    del cls

    users_src = scoping.take_users(snapshot.pop("users"))
    users, eligible = canvas_users(users_src, cfg)
    user_ids = text(users_src["sourcedId"]).filter(eligible)
    observers = _observers(users_src, eligible, users, prefix) if cfg.observers else None
    del users_src, eligible
    # Prefixed and Arrow-backed already: with enrollments, the files with millions of rows.
    yield "users", users
    del users
    if observers is not None:
        yield "user_observers", _prefixed("user_observers", observers, prefix)
        del observers
    yield (
        "enrollments",
        canvas_enrollments(
            snapshot.pop("enrollments"), keys, user_ids, scoping.role_map(cfg.role_map), prefix
        ),
    )


def _classes_and_courses(
    classes: pd.DataFrame,
    courses_src: pd.DataFrame,
    term_of: dict[str, str],
    term_names: dict[str, str],
    course_mode: str,
) -> tuple[dict[str, pa.Array], dict[str, pa.Array]]:
    """The active classes (class, title, course_id, term) and the Canvas courses they make,
    as Arrow columns (a large district has half a million classes)."""

    def column(frame: pd.DataFrame, name: str) -> pa.Array:
        return text(frame[name]).combine_chunks()

    cls = {
        "class": column(classes, "sourcedId"),
        "title": column(classes, "title"),
        "code": column(classes, "classCode"),
        "course": column(classes, "courseSourcedId"),
        "school": column(classes, "schoolSourcedId"),
    }
    cls["term"] = _mapped(first_items(arrow_column(classes["termSourcedIds"])), term_of)
    if course_mode == "class":
        # A Canvas course per class: the class needs no course record (a bundle's first night
        # may have none, its manifest marking courses absent).
        cls["course_id"] = cls["class"]
        courses = {
            "course_id": cls["class"],
            "short_name": pc.coalesce(cls["code"], cls["title"]),
            "long_name": cls["title"],
            "account_id": cls["school"],
            "term_id": cls["term"],
            "status": pa.repeat("active", len(cls["class"])),
        }
        return cls, courses
    # A Canvas course per OneRoster course and term: a class whose course is unknown has
    # nowhere to go.
    course_ids = column(courses_src, "sourcedId")
    known = pc.is_in(cls["course"], value_set=course_ids).fill_null(False)
    cls = {k: v.filter(known) for k, v in cls.items()}
    cls["course_id"] = pc.binary_join_element_wise(
        cls["course"], pc.coalesce(cls["term"], "no-term"), "-"
    )
    rows = pa.table({"k": cls["course_id"], "i": np.arange(len(cls["course_id"]))})
    first = np.sort(rows.group_by("k").aggregate([("i", "min")])["i_min"].to_numpy())
    first_rows = pa.array(first)
    info = pc.take(pc.index_in(cls["course"], value_set=course_ids), first_rows)
    title = pc.take(column(courses_src, "title"), info)
    term = pc.take(cls["term"], first_rows)
    term_name = pc.coalesce(_mapped(term, term_names), "")
    courses = {
        "course_id": pc.take(cls["course_id"], first_rows),
        "short_name": pc.coalesce(pc.take(column(courses_src, "courseCode"), info), title),
        "long_name": pc.binary_join_element_wise(pc.coalesce(title, ""), " (", term_name, ")", ""),
        "account_id": pc.take(column(courses_src, "orgSourcedId"), info),
        "term_id": term,
        "status": pa.repeat("active", len(first)),
    }
    return cls, courses


def _arrow_file(name: str, columns: dict[str, pa.Array], prefix: str) -> pd.DataFrame:
    """A Canvas file from Arrow columns (ids prefixed), Arrow-backed."""
    out = {}
    for c in FILES[name].columns:
        if c in columns:
            values = columns[c]
            if prefix and c in ID_COLUMNS:
                values = pc.binary_join_element_wise(prefix, values, "")
            out[c] = values
    return pa.table(out).to_pandas(types_mapper=pd.ArrowDtype)


ID_COLUMNS = {
    "account_id",
    "parent_account_id",
    "term_id",
    "course_id",
    "section_id",
    "user_id",
    "observer_id",
    "student_id",
}


def _prefixed(name: str, frame: pd.DataFrame, prefix: str) -> pd.DataFrame:
    frame = frame.copy()
    for column in frame.columns:
        frame[column] = _s(frame[column])
        if prefix and column in ID_COLUMNS:
            ids = frame[column]
            frame[column] = (prefix + ids.fillna("")).where(ids.notna(), None)
    columns = [c for c in FILES[name].columns if c in frame.columns] + (
        [INTERNAL] if INTERNAL in frame.columns else []
    )
    return frame[columns]
