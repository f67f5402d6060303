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

from ..tenants import Canvas
from .enrollments import (
    INTERNAL,
    CanvasEnrollments,
    _mapped,
    arrow_column,
    canvas_enrollments,
    iso_dates,
    text,
)
from .files import FILES, ORDER

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
    million users, only its login field and, with observers, the guardians' students."""
    columns = MAPPED_COLUMNS[name]
    if name != "users":
        return columns
    unused = {f for f in LOGIN_FIELDS if f not in (cfg.login_id_field, "email")}
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


def _first(series: pd.Series) -> pd.Series:
    return _s(series.map(lambda v: v[0] if v is not None and len(v) else None))


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
    frame = table.to_pandas(types_mapper=pd.ArrowDtype)
    frame.attrs["without_login"] = int(without_login)
    return frame, eligible.to_numpy(zero_copy_only=False)


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
    snapshot: Mapping[str, pd.DataFrame], cfg: Canvas, night: date
) -> dict[str, pd.DataFrame]:
    """The full Canvas state (one frame per CSV file, unprefixed ids) of a snapshot."""
    files = canvas_state(snapshot, cfg, night)
    return {
        name: file.to_frame() if isinstance(file, CanvasEnrollments) else file
        for name, file in files.items()
    }


def canvas_state(
    snapshot: Mapping[str, pd.DataFrame | Iterable[pd.DataFrame]], cfg: Canvas, night: date
) -> dict[str, pd.DataFrame | CanvasEnrollments]:
    """The full Canvas state of a snapshot, every file at once (see ``canvas_files_of``)."""
    files = dict(canvas_files_of(dict(snapshot), cfg, night))
    return {name: files[name] for name in ORDER if name in files}


def canvas_files_of(
    snapshot: Collections, cfg: Canvas, night: date
) -> Iterator[tuple[str, pd.DataFrame | CanvasEnrollments]]:
    """The Canvas files of a snapshot one at a time, enrollments last: they may come in
    batches, and are then built into rows a slice at a time as they are written.

    Takes each collection out of ``snapshot`` once it is mapped, and keeps only what the
    enrollments need of the rest (each class's course and dates, the mapped users' ids): a
    district's users, classes and their Canvas files are let go before its ten million
    enrollments are read (a consumer lets each file go once written).
    """
    prefix = cfg.sis_id_prefix
    yield "accounts", _prefixed("accounts", canvas_accounts(snapshot.pop("orgs")), prefix)
    terms, term_of = canvas_terms(snapshot.pop("academic_sessions"), cfg)
    term_dates = terms.set_index("term_id")[["name", "start_date", "end_date"]]
    yield "terms", _prefixed("terms", terms, prefix)
    del terms

    classes = _active(snapshot.pop("classes"))
    cls = pd.DataFrame(
        {
            "class": _s(classes["sourcedId"]).to_numpy(),
            "title": _s(classes["title"]).to_numpy(),
            "code": _s(classes["classCode"]).to_numpy(),
            "course": _s(classes["courseSourcedId"]).to_numpy(),
            "school": _s(classes["schoolSourcedId"]).to_numpy(),
            "term": _first(classes["termSourcedIds"]).map(term_of).to_numpy(),
        }
    )
    del classes
    cls["term"] = _s(cls["term"])
    courses_src = _active(snapshot.pop("courses"))
    course_info = pd.DataFrame(
        {
            "title": _s(courses_src["title"]).to_numpy(),
            "code": _s(courses_src["courseCode"]).to_numpy(),
            "org": _s(courses_src["orgSourcedId"]).to_numpy(),
        },
        index=_s(courses_src["sourcedId"]).to_numpy(),
    )
    del courses_src
    if cfg.course_mode == "class":
        # A Canvas course per class: the class needs no course record (a bundle's first night
        # may have none, its manifest marking courses absent).
        cls["course_id"] = cls["class"]
        courses = pd.DataFrame(
            {
                "course_id": cls["class"],
                "short_name": cls["code"].fillna(cls["title"]),
                "long_name": cls["title"],
                "account_id": cls["school"],
                "term_id": cls["term"],
                "status": "active",
            }
        )
    else:
        # A Canvas course per OneRoster course and term: a class whose course is unknown has
        # nowhere to go.
        cls = cls[cls["course"].isin(course_info.index)]
        cls["course_id"] = cls["course"] + "-" + cls["term"].fillna("no-term")
        first = cls.drop_duplicates("course_id")
        info = course_info.reindex(first["course"])
        term_name = first["term"].map(term_dates["name"]).fillna("")
        courses = pd.DataFrame(
            {
                "course_id": first["course_id"].to_numpy(),
                "short_name": info["code"].fillna(info["title"]).to_numpy(),
                "long_name": (
                    info["title"].fillna("") + " (" + term_name.to_numpy() + ")"
                ).to_numpy(),
                "account_id": info["org"].to_numpy(),
                "term_id": first["term"].to_numpy(),
                "status": "active",
            }
        )
        del first, info, term_name
    del course_info
    yield "courses", _prefixed("courses", courses.reset_index(drop=True), prefix)
    del courses
    cls["start_date"] = cls["term"].map(term_dates["start_date"])
    cls["end_date"] = cls["term"].map(term_dates["end_date"])
    sections = pd.DataFrame(
        {
            "section_id": cls["class"],
            "course_id": cls["course_id"],
            "name": cls["title"],
            "status": "active",
            "start_date": _s(cls["start_date"]),
            "end_date": _s(cls["end_date"]),
        }
    )
    yield "sections", _prefixed("sections", sections.reset_index(drop=True), prefix)
    del sections
    # Held while the enrollments are mapped: as Arrow, not a million Python strings.
    keys = pa.Table.from_pandas(
        cls[["class", "course_id", "start_date", "end_date"]], preserve_index=False
    ).to_pandas(types_mapper=pd.ArrowDtype)
    del cls

    users_src = snapshot.pop("users")
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
        canvas_enrollments(snapshot.pop("enrollments"), keys, user_ids, cfg.role_map, prefix),
    )


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
