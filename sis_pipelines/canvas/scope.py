"""What of a district's SIS goes to Canvas: the tenant's scope (``canvas.scope``).

Applied to the night's OneRoster collections as the mapping takes them: orgs (an org in
scope brings the orgs below it; the orgs above stay as Canvas accounts, the tree's parents),
academic sessions (types, titles, a date window), classes (their school, type, grades and
terms), users (role, grades, orgs) and enrollments (their class and user in scope, their
role). A record out of scope is not provisioned; the snapshot keeps it, and the mapping lists
it with its reason (``out_of_scope``) and counts it per reason. Leaving the scope later is a
removal like any other: the lifecycle concludes or keeps, and the deletion guard counts it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..core.tenants import Among, Scope
from .enrollments import arrow_column, first_items, text

OUT_OF_SCOPE_COLUMNS = ["collection", "sourcedId", "reason"]


def _admits(among: Among, values: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Whether each value is in (a null value is in only when nothing is included)."""
    keep = pa.array(np.ones(len(values), bool))
    if among.include:
        keep = pc.is_in(values, value_set=pa.array(among.include, pa.string())).fill_null(False)
    if among.exclude:
        out = pc.is_in(values, value_set=pa.array(among.exclude, pa.string())).fill_null(False)
        keep = pc.and_(keep, pc.invert(out))
    return keep.combine_chunks() if isinstance(keep, pa.ChunkedArray) else keep


def _any_admitted(among: Among, lists: pa.ChunkedArray) -> pa.Array:
    """Whether any item of each list is in (an empty list is in only when nothing is
    included): a class of grades 09 and 10 is in with 10."""
    if isinstance(lists, pa.ChunkedArray):
        lists = lists.combine_chunks()
    if pa.types.is_null(lists.type) or not pa.types.is_list(lists.type):
        return _admits(among, pa.nulls(len(lists), pa.string()))
    flat = pc.list_flatten(lists)
    parents = pc.list_parent_indices(lists).to_numpy()
    hits = _admits(among, flat.cast(pa.string())).to_numpy(zero_copy_only=False)
    out = np.zeros(len(lists), bool)
    np.logical_or.at(out, parents[hits], True)
    lengths = pc.fill_null(pc.list_value_length(lists), 0).to_numpy(zero_copy_only=False)
    if not among.include:  # only exclusions: a list is out when every item is excluded
        out |= lengths == 0
    return pa.array(out)


@dataclass
class Scoping:
    """One night's scope as the mapping applies it, collection by collection; what it left
    out (orgs, sessions, classes, users: with their reason) and how many, per reason."""

    scope: Scope
    orgs: set[str] | None = None  # in scope (None: every org)
    sessions: set[str] | None = None
    out: list[pd.DataFrame] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def _left_out(
        self, collection: str, ids: pa.Array, masks: list[tuple[pa.Array, str]]
    ) -> pa.Array:
        """Records out for the first reason that applies; the mask of those kept."""
        kept = np.ones(len(ids), bool)
        for admitted, reason in masks:
            out = kept & ~np.asarray(admitted.to_numpy(zero_copy_only=False), bool)
            if out.any():
                self.counts[f"{collection}: {reason}"] = int(out.sum())
                self.out.append(
                    pd.DataFrame(
                        {
                            "collection": collection,
                            "sourcedId": ids.filter(pa.array(out)).to_numpy(zero_copy_only=False),
                            "reason": reason,
                        }
                    )
                )
            kept &= ~out
        return pa.array(kept)

    def take_orgs(self, orgs: pd.DataFrame) -> pd.DataFrame:
        """The orgs in scope with their descendants, and their ancestors kept as accounts."""
        if self.scope.orgs.everything:
            return orgs
        ids = text(orgs["sourcedId"]).combine_chunks()
        parent = dict(zip(ids.to_pylist(), text(orgs["parentSourcedId"]).to_pylist(), strict=True))
        named = set(self.scope.orgs.include) | set(self.scope.orgs.exclude)
        by_identifier = {}
        if "identifier" in orgs:
            by_identifier = {
                i: s
                for s, i in zip(ids.to_pylist(), text(orgs["identifier"]).to_pylist(), strict=True)
                if i in named
            }

        def resolve(values: list[str]) -> set[str]:
            return {by_identifier.get(v, v) for v in values}

        include, exclude = resolve(self.scope.orgs.include), resolve(self.scope.orgs.exclude)

        def chain(org: str) -> list[str]:
            out, cursor = [], org
            for _ in range(16):  # orgs nest a few levels
                if cursor is None or cursor in out:
                    break
                out.append(cursor)
                cursor = parent.get(cursor)
            return out

        inside = set()
        for org in parent:
            up = chain(org)
            if (not include or include & set(up)) and not exclude & set(up):
                inside.add(org)
        self.orgs = inside
        parents = {p for org in inside for p in chain(org)[1:]}
        admitted = pa.array([o in inside or o in parents for o in ids.to_pylist()])
        kept = self._left_out("orgs", ids, [(admitted, "org out of scope")])
        return orgs[np.asarray(kept.to_numpy(zero_copy_only=False), bool)]

    def take_sessions(self, sessions: pd.DataFrame) -> pd.DataFrame:
        s = self.scope
        if (
            s.session_types.everything
            and s.session_titles.everything
            and not (s.sessions_from or s.sessions_until)
        ):
            return sessions
        ids = text(sessions["sourcedId"]).combine_chunks()
        start = pd.to_datetime(sessions["startDate"].astype(object), errors="coerce").dt.date
        end = pd.to_datetime(sessions["endDate"].astype(object), errors="coerce").dt.date
        window = np.ones(len(sessions), bool)
        if s.sessions_until is not None:
            window &= ~(start > s.sessions_until).fillna(False).to_numpy(bool)
        if s.sessions_from is not None:
            window &= ~(end < s.sessions_from).fillna(False).to_numpy(bool)
        kept = self._left_out(
            "academic_sessions",
            ids,
            [
                (_admits(s.session_types, text(sessions["type"])), "session type out of scope"),
                (_admits(s.session_titles, text(sessions["title"])), "session title out of scope"),
                (pa.array(window), "session outside the scope's dates"),
            ],
        )
        mask = np.asarray(kept.to_numpy(zero_copy_only=False), bool)
        self.sessions = set(ids.filter(kept).to_pylist())
        return sessions[mask]

    def take_classes(self, classes: pd.DataFrame) -> pd.DataFrame:
        s = self.scope
        masks = []
        if self.orgs is not None:
            school = text(classes["schoolSourcedId"])
            masks.append(
                (
                    pc.is_in(school, value_set=pa.array(sorted(self.orgs), pa.string())).fill_null(
                        False
                    ),
                    "school out of scope",
                )
            )
        if self.sessions is not None:
            term = first_items(arrow_column(classes["termSourcedIds"]))
            masks.append(
                (
                    pc.is_in(
                        term, value_set=pa.array(sorted(self.sessions), pa.string())
                    ).fill_null(False),
                    "term out of scope",
                )
            )
        if not s.class_types.everything:
            masks.append(
                (_admits(s.class_types, text(classes["classType"])), "class type out of scope")
            )
        if not s.grades.everything and "grades" in classes:
            masks.append(
                (_any_admitted(s.grades, arrow_column(classes["grades"])), "grades out of scope")
            )
        if not masks:
            return classes
        ids = text(classes["sourcedId"]).combine_chunks()
        masks = [(m.combine_chunks() if isinstance(m, pa.ChunkedArray) else m, r) for m, r in masks]
        kept = self._left_out("classes", ids, masks)
        return classes[np.asarray(kept.to_numpy(zero_copy_only=False), bool)]

    def take_users(self, users: pd.DataFrame) -> pd.DataFrame:
        s = self.scope
        masks = []
        if not s.roles.everything:
            masks.append((_admits(s.roles, text(users["role"])), "role out of scope"))
        if self.orgs is not None and "orgSourcedIds" in users:
            orgs = arrow_column(users["orgSourcedIds"]).combine_chunks()
            masks.append(
                (
                    _any_admitted(Among(include=sorted(self.orgs) or ["-"]), orgs),
                    "orgs out of scope",
                )
            )
        if not s.grades.everything and "grades" in users:
            # Only students have grades: staff and guardians are not left out by them.
            student = pc.equal(text(users["role"]), "student").fill_null(False)
            graded = _any_admitted(s.grades, arrow_column(users["grades"]))
            masks.append(
                (pc.or_(pc.invert(student), graded).combine_chunks(), "grade out of scope")
            )
        if not masks:
            return users
        # Only active users count as left out (the rest are not provisioned anyway).
        inactive = pc.invert(pc.equal(text(users["status"]), "active").fill_null(False))
        masks = [(pc.or_(inactive, m), r) for m, r in masks]
        ids = text(users["sourcedId"]).combine_chunks()
        masks = [(m.combine_chunks() if isinstance(m, pa.ChunkedArray) else m, r) for m, r in masks]
        kept = self._left_out("users", ids, masks)
        return users[np.asarray(kept.to_numpy(zero_copy_only=False), bool)]

    def role_map(self, role_map: dict[str, str]) -> dict[str, str]:
        """The enrollment roles in scope (an enrollment's class and user must be too)."""
        if self.scope.roles.everything:
            return role_map
        keep = _admits(self.scope.roles, pa.array(list(role_map), pa.string())).to_pylist()
        return {k: v for (k, v), ok in zip(role_map.items(), keep, strict=True) if ok}

    def listing(self) -> pd.DataFrame:
        if not self.out:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in OUT_OF_SCOPE_COLUMNS})
        return pd.concat(self.out, ignore_index=True)[OUT_OF_SCOPE_COLUMNS]

    def columns(self) -> dict[str, list[str]]:
        """Columns the scope reads beyond the mapping's own, per collection."""
        s = self.scope
        extra: dict[str, list[str]] = {"orgs": ["identifier"] if not s.orgs.everything else []}
        extra["classes"] = ["classType"] if not s.class_types.everything else []
        if not s.grades.everything:
            extra["classes"].append("grades")
        extra["users"] = (["orgSourcedIds"] if not s.orgs.everything else []) + (
            ["grades"] if not s.grades.everything else []
        )
        return extra


# The Canvas file each left-out collection's records would have become.
CANVAS_FILE = {
    "orgs": "accounts",
    "academic_sessions": "terms",
    "classes": "sections",
    "users": "users",
}


def canvas_ids(listing: pd.DataFrame, prefix: str) -> dict[str, set[str]]:
    """The Canvas ids (with the tenant's prefix) of the records a scope left out, per file:
    what leaves Canvas because of the scope reads so (``lifecycle``)."""
    out: dict[str, set[str]] = {}
    for collection, file in CANVAS_FILE.items():
        ids = listing.loc[listing["collection"] == collection, "sourcedId"].astype(str)
        out[file] = set(prefix + ids)
    return out
