"""A SIS gradebook for the OneRoster simulator: categories, lineItems and results held in
memory (and in a state file across runs), so a PUT is visible to a later GET.

Vendor behaviour it shows: a lineItem must name a category the SIS knows and a result a
lineItem it knows (400 otherwise, as Blackbaud-like SIS do); a PUT without a sourcedId gets
one allocated and returned (the Modified endpoint configuration); OneRoster 1.2 providers
check bodies against the official schema's required fields (422 with the violations); the
Infinite Campus profile requires ``x-vendor-authorization`` on every gradebook call.
"""

from __future__ import annotations

import hmac
import json
import re
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

ENVELOPES = {"categories": "category", "lineItems": "lineItem", "results": "result"}
SCORE_STATUSES = {"exempt", "fully graded", "not submitted", "partially graded", "submitted"}
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
SEEDED_CATEGORIES = ("Homework", "Quizzes", "Tests")
PARENT = {"lineItems": "class", "results": "lineItem"}  # what a record belongs to
REF_FIELDS = {
    "lineItem": ("class", "school", "category", "gradingPeriod", "academicSession"),
    "result": ("lineItem", "student", "class"),
    "category": (),
}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def imsx_status(major: str, minor: str, description: str) -> bytes:
    """A OneRoster imsx_StatusInfo error body."""
    return orjson.dumps(
        {
            "imsx_codeMajor": major,
            "imsx_severity": "error",
            "imsx_description": description,
            "imsx_CodeMinor": {
                "imsx_codeMinorField": [
                    {
                        "imsx_codeMinorFieldName": "TargetEndSystem",
                        "imsx_codeMinorFieldValue": minor,
                    }
                ]
            },
        }
    )


def imsx_error(minor: str, description: str) -> bytes:
    return imsx_status("failure", minor, description)


class SisGradebook:
    def __init__(
        self,
        version: str = "1.1",
        state_file: Path | None = None,
        vendor_authorization: str | None = None,
    ):
        self.version = version
        self.state_file = state_file
        self.vendor_authorization = vendor_authorization
        self.store: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in ENVELOPES}
        self.puts: list[tuple[str, dict[str, Any]]] = []  # (path, body) as received
        self.deletes: list[str] = []  # paths DELETEd
        self.fail_puts: dict[str, int] = {}  # path fragment -> how many PUTs to refuse with 500
        self._allocated = 0
        self._writes = 0
        self._lock = threading.Lock()
        # A class's lineItems and a lineItem's results, so that a class's reads cost what the
        # class holds, not the whole district's gradebook.
        self._by_parent: dict[str, dict[str, set[str]]] = {"lineItems": {}, "results": {}}
        if state_file is not None and state_file.exists():
            saved = json.loads(state_file.read_text())
            self.store.update(saved["store"])
            self._allocated = saved.get("allocated", 0)
            for kind in self._by_parent:
                for sourced_id, record in self.store[kind].items():
                    self._index(kind, sourced_id, None, record)
        if not self.store["categories"]:
            for title in SEEDED_CATEGORIES:
                sourced_id = f"cat-{title.lower()}"
                self.store["categories"][sourced_id] = {
                    "sourcedId": sourced_id,
                    "status": "active",
                    "dateLastModified": "2026-08-01T00:00:00.000Z",
                    "title": title,
                }

    def _index(
        self,
        kind: str,
        sourced_id: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> None:
        if kind not in self._by_parent:
            return
        field = PARENT[kind]
        index = self._by_parent[kind]
        if before is not None:
            index.get(_ref(before, field) or "", set()).discard(sourced_id)
        if after is not None:
            index.setdefault(_ref(after, field) or "", set()).add(sourced_id)

    def _children(self, kind: str, parent: str) -> list[dict[str, Any]]:
        return [self.store[kind][k] for k in self._by_parent[kind].get(parent, ())]

    def save(self) -> None:
        if self.state_file is None:
            return
        with self._lock:
            text = json.dumps({"store": self.store, "allocated": self._allocated})
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(self.state_file)

    # ------------------------------------------------------------ what a SIS user does

    def add_category(self, sourced_id: str, title: str, class_id: str | None = None) -> None:
        record: dict[str, Any] = {
            "sourcedId": sourced_id,
            "status": "active",
            "dateLastModified": _now(),
            "title": title,
        }
        if class_id:
            record["metadata"] = {"classId": class_id}
        with self._lock:
            self.store["categories"][sourced_id] = record

    def teacher_sets(self, result_id: str, score: float) -> None:
        """A teacher changes a grade in the SIS itself."""
        with self._lock:
            record = self.store["results"][result_id]
            record.update(score=score, scoreStatus="fully graded", dateLastModified=_now())

    def score(self, class_id: str, title: str, student: str) -> float | None:
        """The score the gradebook holds for a student on a class's lineItem of that title."""
        items = {
            k
            for k, r in self.store["lineItems"].items()
            if r.get("title") == title and _ref(r, "class") == class_id
        }
        return next(
            (
                r.get("score")
                for r in self.store["results"].values()
                if _ref(r, "lineItem") in items and _ref(r, "student") == student
            ),
            None,
        )

    # ------------------------------------------------------------ HTTP

    def authorised(self, headers: dict[str, str]) -> bool:
        if self.vendor_authorization is None:
            return True
        return hmac.compare_digest(
            headers.get("x-vendor-authorization", ""), self.vendor_authorization
        )

    def get(
        self, parts: list[str], query: dict[str, list[str]]
    ) -> tuple[int, dict[str, str], bytes]:
        kind, records = None, None
        with self._lock:
            if len(parts) == 1 and parts[0] in ENVELOPES:
                kind, records = parts[0], list(self.store[parts[0]].values())
            elif len(parts) == 2 and parts[0] in ENVELOPES:
                record = self.store[parts[0]].get(parts[1])
                if record is None:
                    return 404, {}, imsx_error("unknownobject", f"{parts[0]} {parts[1]} not found")
                return 200, {}, orjson.dumps({ENVELOPES[parts[0]]: record})
            elif len(parts) == 3 and parts[0] == "classes" and parts[2] in ("lineItems", "results"):
                kind = parts[2]
                items = self._children("lineItems", parts[1])
                records = (
                    items
                    if kind == "lineItems"
                    else [r for i in items for r in self._children("results", i["sourcedId"])]
                )
        if kind is None or records is None:
            return 404, {}, imsx_error("unknownobject", f"no gradebook route {'/'.join(parts)}")
        records.sort(key=lambda r: r["sourcedId"])
        try:
            limit = int((query.get("limit") or ["100"])[0])
            offset = int((query.get("offset") or ["0"])[0])
        except ValueError:
            return 400, {}, imsx_error("invaliddata", "limit and offset must be integers")
        page = records[offset : offset + max(1, limit)]
        return 200, {"X-Total-Count": str(len(records))}, orjson.dumps({kind: page})

    def put(self, parts: list[str], raw: bytes) -> tuple[int, bytes]:
        if not parts or parts[0] not in ENVELOPES or len(parts) > 2:
            return 404, imsx_error("unknownobject", f"no gradebook route {'/'.join(parts)}")
        kind = parts[0]
        path = "/" + "/".join(parts)
        for fragment, left in list(self.fail_puts.items()):
            if fragment in path and left > 0:
                self.fail_puts[fragment] = left - 1
                return 500, imsx_error("internal_server_error", "gradebook temporarily unavailable")
        try:
            body = orjson.loads(raw)
            record = dict(body[ENVELOPES[kind]])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return 400, imsx_error("invaliddata", f"body must be {{{ENVELOPES[kind]!r}: {{…}}}}")
        self.puts.append((path, body))
        problems = self._violations(kind, record)
        if problems:
            status = 422 if self.version == "1.2" else 400
            return status, imsx_error("invaliddata", "; ".join(problems))
        with self._lock:
            if len(parts) == 2:
                sourced_id = parts[1]
                if record.get("sourcedId", sourced_id) != sourced_id:
                    return 400, imsx_error("invaliddata", "sourcedId differs from the path")
            else:  # the Modified configuration: the SIS allocates the sourcedId
                self._allocated += 1
                sourced_id = f"sis-{ENVELOPES[kind].lower()}-{self._allocated}"
            before = self.store[kind].get(sourced_id)
            created = before is None
            stored = {
                **record,
                "sourcedId": sourced_id,
                "status": record.get("status", "active"),
                "dateLastModified": _now(),
            }
            self.store[kind][sourced_id] = stored
            self._index(kind, sourced_id, before, stored)
            self._writes += 1
            writes = self._writes
        if writes % 500 == 0:
            self.save()
        return (201 if created else 200), orjson.dumps({ENVELOPES[kind]: stored})

    def delete(self, parts: list[str]) -> tuple[int, bytes]:
        """``DELETE /{kind}/{id}``: gone (a lineItem's results with it); 404 if unknown."""
        if len(parts) != 2 or parts[0] not in ENVELOPES:
            return 404, imsx_error("unknownobject", f"no gradebook route {'/'.join(parts)}")
        kind, sourced_id = parts
        with self._lock:
            before = self.store[kind].pop(sourced_id, None)
            if before is None:
                return 404, imsx_error("unknownobject", f"{kind} {sourced_id} not found")
            self._index(kind, sourced_id, before, None)
            if kind == "lineItems":
                for result in self._children("results", sourced_id):
                    del self.store["results"][result["sourcedId"]]
                    self._index("results", result["sourcedId"], result, None)
            self._writes += 1
        self.deletes.append("/" + "/".join(parts))
        return 204, b""

    def _violations(self, kind: str, record: dict[str, Any]) -> list[str]:
        problems = []
        if kind == "categories" and not record.get("title"):
            problems.append("category.title is required")
        if kind == "lineItems":
            if not record.get("title"):
                problems.append("lineItem.title is required")
            if not _ref(record, "class"):
                problems.append("lineItem.class is required")
            category = _ref(record, "category")
            if category and category not in self.store["categories"]:
                problems.append(f"lineItem.category {category} is not a category of this SIS")
        if kind == "results":
            line_item = _ref(record, "lineItem")
            if line_item not in self.store["lineItems"]:
                problems.append(f"result.lineItem {line_item} is not a lineItem of this SIS")
            if not _ref(record, "student"):
                problems.append("result.student is required")
            if record.get("scoreStatus") not in SCORE_STATUSES:
                problems.append(f"result.scoreStatus {record.get('scoreStatus')!r} is not allowed")
        if self.version == "1.2":
            problems += _strict_1p2(kind, record)
        return problems


def _ref(record: dict[str, Any], field: str) -> str | None:
    value = record.get(field)
    return value.get("sourcedId") if isinstance(value, dict) else None


def _strict_1p2(kind: str, record: dict[str, Any]) -> list[str]:
    """The required fields and formats of the official 1.2 gradebook schema."""
    required = {
        "categories": ("status", "dateLastModified", "title"),
        "lineItems": (
            "status",
            "dateLastModified",
            "title",
            "assignDate",
            "dueDate",
            "class",
            "school",
            "category",
        ),
        "results": (
            "status",
            "dateLastModified",
            "lineItem",
            "student",
            "scoreStatus",
            "scoreDate",
        ),
    }[kind]
    problems = [f"{f} is required" for f in required if record.get(f) in (None, "")]
    for field in REF_FIELDS[ENVELOPES[kind]]:
        ref = record.get(field)
        if isinstance(ref, dict) and not {"href", "sourcedId", "type"} <= ref.keys():
            problems.append(f"{field} must be a GUIDRef with href, sourcedId and type")
    if kind == "results" and record.get("scoreDate") and not DATE.match(str(record["scoreDate"])):
        problems.append("scoreDate must be a date (YYYY-MM-DD)")
    return problems
