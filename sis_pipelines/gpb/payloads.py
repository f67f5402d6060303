"""Grade passback payloads: the Canvas gradebook as OneRoster categories, lineItems and
results, in send order, following Instructure's Grade Sync Process.

- Assignment groups become categories, matched by title to the SIS's own: first a category
  of the class (``metadata.classId``), then a global one. An unmatched group goes to the
  tenant's default category, or gets a category of its own (``create_categories``), or is
  reported and its lineItems and results are not sent.
- Each graded assignment of a Canvas course becomes one lineItem per class (section) of the
  course. Standard: we choose the sourcedId, or reuse the SIS lineItem of the same class,
  title and due date. Modified: a new lineItem goes without a sourcedId and results name it
  by a placeholder ``{{lineItem:<key>}}`` that the push replaces with the SIS's answer.
- Submissions become results; course grades become a lineItem per class (and grading period)
  with a result for every student Canvas gives a current score, so any change of that score
  (a re-weighting, an excused or dropped assignment) reaches the SIS.
- Each request names the Canvas course it comes from (``course``): the ledger keeps it, and a
  pass converges (removes) only within the courses it read (``removals``).
- Bodies take the strict OneRoster 1.2 form (status, dateLastModified, full GUIDRefs, scoreDate
  as a date), which 1.1 providers accept too; 1.2 adds ``school``, ``class`` and the flags.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import orjson
import pandas as pd

from ..canvas.enrollments import arrow_column, first_items
from ..core.nights import end_of_night, utc_stamp
from ..core.tenants import Tenant
from .canvas_gradebook import CanvasGradebook

# What the payloads read of the night's classes (a district's are half a million, with lists).
CLASS_COLUMNS = ["sourcedId", "schoolSourcedId", "termSourcedIds"]

PLACEHOLDER = re.compile(r"^\{\{lineItem:(.+)\}\}$")
KIND_ORDER = {"category": 0, "lineItem": 1, "result": 2}


@dataclass(frozen=True)
class Settings:
    version: str
    endpoints: str
    prefix: str
    assignments: str
    include_omitted: bool
    course_grades: bool
    course_grade_title: str
    grading_periods: bool
    default_category: str | None
    create_categories: bool
    rostering_base: str
    gradebook_base: str

    @classmethod
    def of(cls, tenant: Tenant, rostering_base: str, gradebook_base: str) -> Settings:
        g = tenant.gpb
        return cls(
            version=tenant.oneroster.version,
            endpoints=g.endpoints,
            prefix=tenant.canvas.sis_id_prefix if tenant.canvas else "",
            assignments=g.assignments,
            include_omitted=g.include_omitted,
            course_grades=g.course_grades,
            course_grade_title=g.course_grade_title,
            grading_periods=g.grading_periods,
            default_category=g.default_category,
            create_categories=g.create_categories,
            rostering_base=rostering_base.rstrip("/"),
            gradebook_base=gradebook_base.rstrip("/"),
        )


@dataclass
class SisState:
    """What the SIS gradebook holds before we send: categories, and per class its lineItems
    and results (Grade Sync Process steps 3 and 6)."""

    categories: list[dict[str, Any]] = field(default_factory=list)
    line_items: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    results: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


@dataclass
class Payloads:
    requests: list[dict[str, Any]]
    report: pd.DataFrame  # kind, key, class, reason: what is not sent and why

    def counts(self) -> dict[str, int]:
        """Requests that add or update, by kind (removals are counted by their plan)."""
        out: dict[str, int] = {}
        for r in self.requests:
            if not r.get("removal"):
                out[r["kind"]] = out.get(r["kind"], 0) + 1
        return out


def strip_prefix(values: pd.Series, prefix: str) -> pd.Series:
    values = values.astype("string")
    if not prefix:
        return values
    return values.where(~values.str.startswith(prefix), values.str.slice(len(prefix)))


def students_by_class(book: CanvasGradebook, prefix: str) -> pd.DataFrame:
    """course_id, user_id, student, class: the OneRoster ids of Canvas's student enrollments."""
    s = book.students
    s = s[s["enrollment_state"].fillna("active") == "active"]
    return pd.DataFrame(
        {
            "course_id": s["course_id"],
            "user_id": s["user_id"],
            "student": strip_prefix(s["sis_user_id"], prefix),
            "class": strip_prefix(s["sis_section_id"], prefix),
            "current_score": s["current_score"],
        }
    ).dropna(subset=["student", "class"])


def counting(
    assignments: pd.DataFrame, only_post_to_sis: bool, include_omitted: bool = False
) -> pd.DataFrame:
    """The published, graded assignments that count toward the final grade."""
    a = assignments
    keep = (
        a["published"].fillna(False)
        & (a["grading_type"].fillna("points") != "not_graded")
        & ~a["hide_in_gradebook"].fillna(False)
        & (a["points_possible"].fillna(0) > 0)
    )
    if not include_omitted:
        keep &= ~a["omit_from_final_grade"].fillna(False)
    if only_post_to_sis:
        keep &= a["post_to_sis"].fillna(False)
    return a[keep]


def score_status(sub: pd.DataFrame) -> pd.Series:
    """Canvas submission state -> OneRoster scoreStatus; None: nothing to send yet."""
    graded = sub["score"].notna() & (sub["workflow_state"] == "graded")
    out = pd.Series(pd.NA, index=sub.index, dtype="string")
    out[sub["workflow_state"].isin(["submitted", "pending_review"]) & sub["score"].isna()] = (
        "submitted"
    )
    out[sub["missing"].fillna(False) & sub["score"].isna()] = "not submitted"
    out[graded] = "fully graded"
    out[sub["excused"].fillna(False)] = "exempt"
    return out


def body_hash(request: dict[str, Any]) -> str:
    """What makes a request the same as one already sent: its body without hrefs,
    dateLastModified or its own sourcedId, with lineItem references by our key."""

    def clean(value: Any, top: bool = False) -> Any:
        if isinstance(value, dict):
            return {
                k: clean(v)
                for k, v in sorted(value.items())
                if k not in ("href", "dateLastModified") and not (top and k == "sourcedId")
            }
        return value

    record = next(iter(request["body"].values()))
    cleaned = clean(record, top=True)
    if "line_item_key" in request:
        cleaned["lineItem"] = request["line_item_key"]
    return hashlib.sha256(orjson.dumps(cleaned, option=orjson.OPT_SORT_KEYS)).hexdigest()


class _Refs:
    def __init__(self, s: Settings):
        self.s = s

    def __call__(self, kind: str, sourced_id: str) -> dict[str, str]:
        if kind in ("lineItem", "category", "result"):
            base, plural = (
                self.s.gradebook_base,
                {"lineItem": "lineItems", "category": "categories", "result": "results"}[kind],
            )
        else:
            base = self.s.rostering_base
            plural = {
                "class": "classes",
                "org": "orgs",
                "user": "users",
                "academicSession": "academicSessions",
            }[kind]
        return {"href": f"{base}/{plural}/{sourced_id}", "sourcedId": sourced_id, "type": kind}


def _iso(value: Any, fallback: str) -> str:
    text = str(value) if value is not None and not pd.isna(value) else ""
    return text if text else fallback


def _date_part(value: Any) -> str:
    return str(value)[:10] if value is not None and not pd.isna(value) else ""


def _match_categories(pairs: pd.DataFrame, categories: list[dict[str, Any]]) -> pd.Series:
    """For (class, group_name) rows: the SIS category sourcedId, class-scoped first."""
    scoped: dict[tuple[str, str], str] = {}
    global_: dict[str, str] = {}
    for c in categories:
        if c.get("status", "active") != "active" or not c.get("title"):
            continue
        title = " ".join(str(c["title"]).split()).casefold()
        class_id = (c.get("metadata") or {}).get("classId")
        if class_id:
            scoped.setdefault((str(class_id), title), c["sourcedId"])
        else:
            global_.setdefault(title, c["sourcedId"])
    titles = pairs["group_name"].fillna("").map(lambda t: " ".join(t.split()).casefold())
    by_class = pd.Series(
        [scoped.get((c, t)) for c, t in zip(pairs["class"], titles, strict=True)],
        index=pairs.index,
        dtype="object",
    )
    return by_class.fillna(titles.map(global_)).astype("string")


@dataclass
class _Pass:
    """One night's build: what the SIS holds, what we know, and the requests so far."""

    s: Settings
    sis: SisState
    known_ids: dict[str, str]
    night: date
    ref: _Refs = field(init=False)
    strict: bool = field(init=False)
    night_end: str = field(init=False)
    report: list[dict[str, Any]] = field(default_factory=list)
    categories: list[dict[str, Any]] = field(default_factory=list)
    line_items: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    results: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    default_id: str | None = None

    def __post_init__(self) -> None:
        self.ref = _Refs(self.s)
        self.strict = self.s.version == "1.2"
        self.night_end = utc_stamp(end_of_night(self.night))
        self.ours = set(self.known_ids.values())
        # Existing SIS lineItems: reuse by class, title and due date (Grade Sync Process step 4).
        self.existing = {
            (class_id, str(li.get("title")), _date_part(li.get("dueDate"))): li["sourcedId"]
            for class_id, lis in self.sis.line_items.items()
            for li in lis
            if li.get("status", "active") == "active"
        }
        # Results (steps 6 and 7): reuse the SIS's result for the same lineItem and student.
        self.existing_results = {
            (r.get("lineItem", {}).get("sourcedId"), r.get("student", {}).get("sourcedId")): r[
                "sourcedId"
            ]
            for rs in self.sis.results.values()
            for r in rs
        }

    def line_item_id(self, key: str, match: tuple[str, str, str]) -> str | None:
        """Ours by the ledger first; else a SIS lineItem of the same class, title and due
        date that is not already another of ours (two assignments never share one)."""
        known = self.known_ids.get(key)
        if known is not None:
            return known
        found = self.existing.get(match)
        return found if found is not None and found not in self.ours else None

    def not_sent(self, kind: str, key: str, class_id: str | None, reason: str) -> None:
        self.report.append({"kind": kind, "key": key, "class": class_id, "reason": reason})

    def students(
        self, book: CanvasGradebook, classes: pd.DataFrame
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Canvas's students with their class, school and term; the classes' roster."""
        roster = pd.DataFrame(
            {
                "class": classes["sourcedId"].astype("string"),
                "school": classes["schoolSourcedId"].astype("string"),
                # A class's first term, in Arrow: a district has half a million classes.
                "term": pd.array(
                    first_items(arrow_column(classes["termSourcedIds"])).to_numpy(
                        zero_copy_only=False
                    ),
                    dtype="string",
                ),
            }
        )
        students = students_by_class(book, self.s.prefix)
        unknown = students[~students["class"].isin(roster["class"])]
        for class_id in sorted(unknown["class"].unique()):
            self.not_sent(
                "class",
                class_id,
                class_id,
                "Canvas section is not a class of the OneRoster snapshot",
            )
        return students.merge(roster, on="class", how="inner"), roster

    def assignment_items(
        self, book: CanvasGradebook, students: pd.DataFrame, sessions: pd.DataFrame
    ) -> pd.DataFrame:
        """A row per assignment and class that counts, with its SIS category and period."""
        s = self.s
        sections = students[["course_id", "class", "school", "term"]].drop_duplicates()
        work = counting(book.assignments, s.assignments == "post_to_sis", s.include_omitted)
        items = work.merge(sections, on="course_id", how="inner")
        items["key"] = "a:" + items["assignment_id"].astype("string") + ":" + items["class"]
        items["category"] = _match_categories(items, self.sis.categories)
        items = self._place_unmatched(items)
        # Grading periods hold the due date of a lineItem.
        items["grading_period"] = _grading_periods(items, sessions) if s.grading_periods else pd.NA
        return items

    def _place_unmatched(self, items: pd.DataFrame) -> pd.DataFrame:
        """Groups the SIS does not know: the default category, a category of their own, or
        reported and left out."""
        s = self.s
        if s.default_category:
            self.default_id = _global_category(self.sis.categories, s.default_category)
            if self.default_id is None:
                self.not_sent(
                    "category",
                    s.default_category,
                    None,
                    "gpb.default_category is not a category of the SIS",
                )
        unmatched = items["category"].isna()
        if not unmatched.any():
            return items
        if self.default_id is not None:
            items.loc[unmatched, "category"] = self.default_id
            return items
        if s.create_categories:
            groups = items["group_name"].fillna("Ungrouped")
            for title in sorted(groups[unmatched].unique()):
                cat_id = "cnv-cat-" + hashlib.sha1(title.casefold().encode()).hexdigest()[:12]
                self.categories.append(_category_request(cat_id, title, self.night_end))
                items.loc[unmatched & (groups == title), "category"] = cat_id
            return items
        for (class_id, group), n in (
            items[unmatched].groupby(["class", "group_name"], dropna=False).size().items()
        ):
            self.not_sent(
                "lineItem",
                f"group:{group}",
                class_id,
                f"assignment group {group!r} matches no SIS category ({n} lineItems not sent); set gpb.default_category or gpb.create_categories",
            )
        return items[~unmatched]

    def assignment_line_items(self, items: pd.DataFrame) -> dict[str, str | None]:
        """A lineItem request per assignment and class; their sourcedIds by key."""
        ref, night_end = self.ref, self.night_end
        line_item_ids: dict[str, str | None] = {}
        for row in items.sort_values(["class", "due_at", "assignment_id"]).to_dict("records"):
            key = row["key"]
            sis_id = self.line_item_id(key, (row["class"], row["name"], _date_part(row["due_at"])))
            if sis_id is None and self.s.endpoints == "standard":
                sis_id = f"cnv-a{row['assignment_id']}-{row['class']}"
            opened = _iso(row["unlock_at"], _iso(row["created_at"], night_end))
            record: dict[str, Any] = {
                "status": "active",
                "dateLastModified": _iso(row["updated_at"], night_end),
                "title": row["name"],
                "description": _text(row["description"]),
                "assignDate": opened,
                # Without a due date: the date it opened, so the body stays the same night after night.
                "dueDate": _iso(row["due_at"], opened),
                "class": ref("class", row["class"]),
                "category": ref("category", row["category"]),
                "resultValueMin": 0.0,
                "resultValueMax": float(row["points_possible"]),
            }
            if self.strict:
                record["school"] = ref("org", row["school"])
            if not pd.isna(row["grading_period"]):
                record["gradingPeriod"] = ref("academicSession", row["grading_period"])
            if record["description"] is None:
                del record["description"]
            line_item_ids[key] = sis_id
            self.line_items.append(
                (
                    row["class"],
                    _line_item_request(key, sis_id, record, row["class"], row["course_id"]),
                )
            )
        return line_item_ids

    def assignment_results(
        self, book: CanvasGradebook, students: pd.DataFrame, line_item_ids: dict[str, str | None]
    ) -> pd.DataFrame:
        """A result request per graded submission of a sent lineItem; the submissions used."""
        subs = book.submissions.merge(
            students[["course_id", "user_id", "student", "class"]],
            on=["course_id", "user_id"],
            how="inner",
        )
        subs["status"] = score_status(subs)
        subs = subs[subs["status"].notna()]
        subs["key"] = "a:" + subs["assignment_id"].astype("string") + ":" + subs["class"]
        subs = subs[subs["key"].isin(line_item_ids.keys())]
        for row in subs.sort_values(["class", "key", "student"]).to_dict("records"):
            sis_id = line_item_ids[row["key"]]
            record = _result(row, self.ref, sis_id, row["key"], self.strict, self.night_end)
            result_id = (
                self.existing_results.get((sis_id, row["student"]))
                or f"cnv-r{row['assignment_id']}-{row['class']}-{row['student']}"
            )
            self.results.setdefault(row["class"], []).append(
                _result_request(
                    f"r:{row['key']}:{row['student']}",
                    row["key"],
                    result_id,
                    record,
                    row["class"],
                    row["course_id"],
                )
            )
        return subs

    def course_grades(
        self,
        students: pd.DataFrame,
        book: CanvasGradebook,
        roster: pd.DataFrame,
        sessions: pd.DataFrame,
    ) -> None:
        """A course grade lineItem per class, and a result per student with a current score,
        dated by the student's latest grading in the course."""
        s, ref, strict = self.s, self.ref, self.strict
        category = _global_category(self.sis.categories, s.course_grade_title) or self.default_id
        if category is None and strict:
            self.not_sent(
                "lineItem",
                "course grades",
                None,
                f"no SIS category titled {s.course_grade_title!r} and no gpb.default_category: OneRoster 1.2 lineItems need one",
            )
            return
        spans = _session_spans(sessions)
        latest = book.submissions.groupby(["course_id", "user_id"], as_index=False)[
            "graded_at"
        ].max()
        # A class gets its course grade lineItem once a student has a score, and keeps it:
        # a student whose score Canvas takes away then loses the result from it.
        grades = students.merge(latest, on=["course_id", "user_id"], how="left")
        # A district's roster has hundreds of thousands of classes: looked up, not scanned.
        roster_of = roster.drop_duplicates("class").set_index("class")
        for class_id, group in grades.groupby("class", sort=True):
            info = roster_of.loc[class_id]
            period, assign_date, due_date = _course_grade_span(
                info["term"], spans, self.night.isoformat(), s.grading_periods
            )
            key = f"cg:{class_id}" + (f":{period}" if period else "")
            scored = group[group["current_score"].notna()]
            if scored.empty and key not in self.known_ids:
                continue
            sis_id = self.line_item_id(key, (class_id, s.course_grade_title, due_date[:10]))
            if sis_id is None and s.endpoints == "standard":
                sis_id = "cnv-cg-" + key[3:].replace(":", "-")
            record: dict[str, Any] = {
                "status": "active",
                "dateLastModified": assign_date,
                "title": s.course_grade_title,
                "assignDate": assign_date,
                "dueDate": due_date,
                "class": ref("class", class_id),
                "resultValueMin": 0.0,
                "resultValueMax": 100.0,
            }
            if category is not None:
                record["category"] = ref("category", category)
            if strict:
                record["school"] = ref("org", info["school"])
            if period:
                record["gradingPeriod"] = ref("academicSession", period)
            course_id = str(group["course_id"].iloc[0])
            self.line_items.append(
                (class_id, _line_item_request(key, sis_id, record, class_id, course_id))
            )
            for row in scored.sort_values("student").to_dict("records"):
                self._course_grade_result(row, class_id, key, sis_id)

    def _course_grade_result(
        self, row: dict[str, Any], class_id: str, key: str, sis_id: str | None
    ) -> None:
        when = _iso(row["graded_at"], self.night_end)
        result: dict[str, Any] = {
            "status": "active",
            "dateLastModified": when,
            "lineItem": _line_item_ref(self.ref, sis_id, key),
            "student": self.ref("user", row["student"]),
            "scoreStatus": "fully graded",
            "scoreDate": when[:10],
            "score": float(row["current_score"]),
        }
        if self.strict:
            result["class"] = self.ref("class", class_id)
        result_id = self.existing_results.get((sis_id, row["student"])) or (
            f"cnv-{key.replace(':', '-')}-{row['student']}"
        )
        self.results.setdefault(class_id, []).append(
            _result_request(
                f"r:{key}:{row['student']}", key, result_id, result, class_id, row["course_id"]
            )
        )

    def payloads(self) -> Payloads:
        """Send order: categories, then per class its lineItems before its results."""
        requests = list(self.categories)
        by_class: dict[str, list[dict[str, Any]]] = {}
        for class_id, request in self.line_items:
            by_class.setdefault(class_id, []).append(request)
        for class_id in sorted(set(by_class) | set(self.results)):
            requests += by_class.get(class_id, []) + self.results.get(class_id, [])
        report = pd.DataFrame(self.report, columns=["kind", "key", "class", "reason"])
        return Payloads(requests, report.astype("string"))


def build(
    book: CanvasGradebook,
    classes: pd.DataFrame,
    sessions: pd.DataFrame,
    sis: SisState,
    known_ids: dict[str, str],
    s: Settings,
    night: date,
) -> Payloads:
    """The night's requests, in send order, and a report of what cannot be sent."""
    night_pass = _Pass(s, sis, known_ids, night)
    students, roster = night_pass.students(book, classes)
    items = night_pass.assignment_items(book, students, sessions)
    line_item_ids = night_pass.assignment_line_items(items)
    night_pass.assignment_results(book, students, line_item_ids)
    if s.course_grades:
        night_pass.course_grades(students, book, roster, sessions)
    return night_pass.payloads()


def _category_request(cat_id: str, title: str, night_end: str) -> dict[str, Any]:
    return {
        "method": "PUT",
        "path": f"/categories/{cat_id}",
        "body": {
            "category": {
                "sourcedId": cat_id,
                "status": "active",
                "dateLastModified": night_end,
                "title": title,
            }
        },
        "key": f"c:{title.casefold()}",
        "kind": "category",
        "class": None,
    }


def _text(value: Any) -> str | None:
    if value is None or pd.isna(value):
        return None
    return re.sub(r"<[^>]+>", "", str(value)).strip() or None


def _line_item_request(
    key: str, sis_id: str | None, record: dict[str, Any], class_id: str, course_id: str
) -> dict[str, Any]:
    meta = {"key": key, "kind": "lineItem", "class": class_id, "course": course_id}
    if sis_id is None:  # Modified: the SIS allocates the sourcedId
        return {"method": "PUT", "path": "/lineItems", "body": {"lineItem": record}, **meta}
    return {
        "method": "PUT",
        "path": f"/lineItems/{sis_id}",
        "body": {"lineItem": {"sourcedId": sis_id, **record}},
        **meta,
    }


def _result_request(
    key: str,
    line_item_key: str,
    result_id: str,
    record: dict[str, Any],
    class_id: str,
    course_id: str,
) -> dict[str, Any]:
    return {
        "method": "PUT",
        "path": f"/results/{result_id}",
        "body": {"result": {"sourcedId": result_id, **record}},
        "key": key,
        "kind": "result",
        "class": class_id,
        "course": course_id,
        "line_item_key": line_item_key,
        "student": record["student"]["sourcedId"],
    }


def _line_item_ref(ref: _Refs, sis_id: str | None, key: str) -> dict[str, str]:
    return ref("lineItem", sis_id if sis_id is not None else "{{lineItem:" + key + "}}")


def _result(
    row: dict[str, Any], ref: _Refs, sis_id: str | None, key: str, strict: bool, night_end: str
) -> dict[str, Any]:
    when = _iso(row["graded_at"], _iso(row["submitted_at"], night_end))
    record: dict[str, Any] = {
        "status": "active",
        "dateLastModified": when,
        "lineItem": _line_item_ref(ref, sis_id, key),
        "student": ref("user", row["student"]),
        "scoreStatus": row["status"],
        "scoreDate": when[:10],
    }
    if not pd.isna(row["score"]):
        record["score"] = float(row["score"])
    comment = row.get("comment")
    if comment is not None and not pd.isna(comment):
        record["comment"] = str(comment)
    if strict:
        record["class"] = ref("class", row["class"])
        record["late"] = "true" if row["late"] else "false"
        record["missing"] = "true" if row["missing"] else "false"
    return record


def _grading_periods(items: pd.DataFrame, sessions: pd.DataFrame) -> pd.Series:
    periods = sessions[sessions["type"].astype("string") == "gradingPeriod"]
    frame = pd.DataFrame(
        {
            "grading_period": periods["sourcedId"].astype("string").to_numpy(),
            "parent": periods["parentSourcedId"].astype("string").to_numpy(),
            "start": periods["startDate"].astype("string").str.slice(0, 10).to_numpy(),
            "end": periods["endDate"].astype("string").str.slice(0, 10).to_numpy(),
        }
    )
    due = items["due_at"].astype("string").str.slice(0, 10)
    probe = pd.DataFrame(
        {"row": items.index, "term": items["term"].to_numpy(), "due": due.to_numpy()}
    )
    hits = probe.merge(frame, left_on="term", right_on="parent", how="inner")
    hits = hits[(hits["start"] <= hits["due"]) & (hits["due"] <= hits["end"])]
    return hits.drop_duplicates("row").set_index("row")["grading_period"].reindex(items.index)


def _session_spans(sessions: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "session": sessions["sourcedId"].astype("string").to_numpy(),
            "type": sessions["type"].astype("string").to_numpy(),
            "parent": sessions["parentSourcedId"].astype("string").to_numpy(),
            "start": sessions["startDate"].astype("string").str.slice(0, 10).to_numpy(),
            "end": sessions["endDate"].astype("string").str.slice(0, 10).to_numpy(),
        }
    )


def _course_grade_span(
    term: Any, spans: pd.DataFrame, night: str, by_period: bool
) -> tuple[str | None, str, str]:
    """(grading period, assignDate, dueDate) of a class's course grade lineItem tonight:
    the term's dates, or the grading period's that holds the night."""
    rows = spans[spans["session"] == term]
    start, end = (rows.iloc[0]["start"], rows.iloc[0]["end"]) if len(rows) else (night, night)
    period = None
    if by_period:
        inside = spans[
            (spans["type"] == "gradingPeriod")
            & (spans["parent"] == term)
            & (spans["start"] <= night)
            & (night <= spans["end"])
        ]
        if len(inside):
            period, start, end = inside.iloc[0][["session", "start", "end"]]
    return period, f"{start}T00:00:00Z", f"{end}T23:59:59Z"


def _global_category(categories: list[dict[str, Any]], title: str) -> str | None:
    wanted = " ".join(title.split()).casefold()
    return next(
        (
            c["sourcedId"]
            for c in categories
            if " ".join(str(c.get("title", "")).split()).casefold() == wanted
            and not (c.get("metadata") or {}).get("classId")
            and c.get("status", "active") == "active"
        ),
        None,
    )
