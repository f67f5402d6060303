"""Canonical rows to OneRoster REST JSON, in the shape a vendor profile sends."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import pandas as pd

from ..oneroster.collections import COLLECTIONS, Kind
from .vendors import VendorProfile

REF_TYPES = {
    "parentSourcedId": "org",
    "childSourcedIds": "org",
    "schoolYearSourcedId": "academicSession",
    "orgSourcedId": "org",
    "courseSourcedId": "course",
    "schoolSourcedId": "org",
    "termSourcedIds": "academicSession",
    "orgSourcedIds": "org",
    "primaryOrgSourcedId": "org",
    "agentSourcedIds": "user",
    "userSourcedId": "user",
    "classSourcedId": "class",
}
REF_ENDPOINTS = {
    "org": "orgs",
    "academicSession": "academicSessions",
    "course": "courses",
    "user": "users",
    "class": "classes",
}
ROLE_1P2 = {"administrator": "siteAdministrator"}


def _ref(base: str, column: str, sourced_id: str, collection: str) -> dict[str, str]:
    kind = REF_TYPES.get(column, "org")
    if collection == "academic_sessions" and column in ("parentSourcedId", "childSourcedIds"):
        kind = "academicSession"
    return {
        "href": f"{base}/{REF_ENDPOINTS[kind]}/{sourced_id}",
        "sourcedId": sourced_id,
        "type": kind,
    }


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value)) if not isinstance(value, list | dict) else False
    except (TypeError, ValueError):
        return False


class Renderer:
    def __init__(self, profile: VendorProfile, base_url: str):
        self.profile = profile
        self.base = base_url

    def _date(self, value: dt.date) -> str:
        if self.profile.datetime_dates:
            # Midnight in a server five hours behind UTC, rendered in UTC, as node-pg does.
            return f"{value.isoformat()}T05:00:00.000Z"
        return value.isoformat()

    def _bool(self, value: Any) -> Any:
        flag = bool(value)
        return ("true" if flag else "false") if self.profile.string_booleans else flag

    def record(self, collection: str, row: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in COLLECTIONS[collection].fields:
            value = row.get(f.column)
            if _is_missing(value):
                continue  # absent rather than null, as real providers do
            name = f.rest_name
            match f.kind:
                case Kind.REF:
                    out[name] = _ref(self.base, f.column, value, collection)
                case Kind.REFS:
                    out[name] = [_ref(self.base, f.column, v, collection) for v in value]
                case Kind.BOOL:
                    out[name] = self._bool(value)
                case Kind.DATE:
                    out[name] = self._date(
                        value if isinstance(value, dt.date) else pd.Timestamp(value).date()
                    )
                case Kind.DATETIME:
                    out[name] = pd.Timestamp(value).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
                case Kind.JSON:
                    out[name] = orjson.loads(value) if isinstance(value, str) else value
                case Kind.STRINGS:
                    out[name] = list(value)
                case _:
                    out[name] = value
        if collection == "users" and self.profile.version == "1.2":
            self._users_1p2(out)
        elif collection == "users":
            out.pop("primaryOrg", None)
        if collection == "enrollments" and "primary" not in out:
            out["primary"] = self._bool(False)
        return out

    def _users_1p2(self, out: dict[str, Any]) -> None:
        role = out.pop("role", None)
        orgs = out.pop("orgs", [])
        role = ROLE_1P2.get(role, role)
        out["roles"] = [
            {"roleType": "primary" if i == 0 else "secondary", "role": role, "org": org}
            for i, org in enumerate(orgs)
        ]
        out.setdefault("enabledUser", self._bool(True))
