"""The OneRoster rostering collections and their canonical columns.

One canonical model per collection serves both 1.1 and 1.2 and both REST and CSV:
column names follow the OneRoster CSV binding (references flattened to ``…SourcedId``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """How a raw field becomes a canonical column."""

    STRING = "string"
    BOOL = "bool"  # true/false, also the strings "true"/"false"
    DATE = "date"  # a calendar date, even when the SIS sends a date-time
    DATETIME = "datetime"  # UTC timestamp
    REF = "ref"  # GUIDRef -> its sourcedId
    REFS = "refs"  # list of GUIDRefs -> list of sourcedIds
    STRINGS = "strings"  # multi-valued field -> list of strings
    JSON = "json"  # nested structure kept as JSON text


@dataclass(frozen=True)
class Field:
    column: str
    kind: Kind
    source: str | None = None  # REST field name when it differs from the column
    required: bool = False

    @property
    def rest_name(self) -> str:
        return self.source or self.column


BASE = (
    Field("sourcedId", Kind.STRING, required=True),
    Field("status", Kind.STRING, required=True),
    Field("dateLastModified", Kind.DATETIME),
)
METADATA = Field("metadata", Kind.JSON)


@dataclass(frozen=True)
class Collection:
    name: str  # asset and file name (snake_case)
    endpoint: str  # REST path under the rostering base
    envelope: str  # JSON key of the collection response
    fields: tuple[Field, ...]

    @property
    def columns(self) -> list[str]:
        return [f.column for f in self.fields]

    def field(self, column: str) -> Field:
        return next(f for f in self.fields if f.column == column)


ORGS = Collection(
    "orgs",
    "orgs",
    "orgs",
    (
        *BASE,
        Field("name", Kind.STRING, required=True),
        Field("type", Kind.STRING, required=True),
        Field("identifier", Kind.STRING),
        Field("parentSourcedId", Kind.REF, source="parent"),
        Field("childSourcedIds", Kind.REFS, source="children"),
        METADATA,
    ),
)

ACADEMIC_SESSIONS = Collection(
    "academic_sessions",
    "academicSessions",
    "academicSessions",
    (
        *BASE,
        Field("title", Kind.STRING, required=True),
        Field("type", Kind.STRING, required=True),
        Field("startDate", Kind.DATE, required=True),
        Field("endDate", Kind.DATE, required=True),
        Field("parentSourcedId", Kind.REF, source="parent"),
        Field("childSourcedIds", Kind.REFS, source="children"),
        Field("schoolYear", Kind.STRING),
        METADATA,
    ),
)

COURSES = Collection(
    "courses",
    "courses",
    "courses",
    (
        *BASE,
        Field("title", Kind.STRING, required=True),
        Field("schoolYearSourcedId", Kind.REF, source="schoolYear"),
        Field("courseCode", Kind.STRING),
        Field("grades", Kind.STRINGS),
        Field("subjects", Kind.STRINGS),
        Field("orgSourcedId", Kind.REF, source="org", required=True),
        Field("subjectCodes", Kind.STRINGS),
        METADATA,
    ),
)

CLASSES = Collection(
    "classes",
    "classes",
    "classes",
    (
        *BASE,
        Field("title", Kind.STRING, required=True),
        Field("classCode", Kind.STRING),
        Field("classType", Kind.STRING),
        Field("location", Kind.STRING),
        Field("grades", Kind.STRINGS),
        Field("subjects", Kind.STRINGS),
        Field("courseSourcedId", Kind.REF, source="course", required=True),
        Field("schoolSourcedId", Kind.REF, source="school", required=True),
        Field("termSourcedIds", Kind.REFS, source="terms", required=True),
        Field("subjectCodes", Kind.STRINGS),
        Field("periods", Kind.STRINGS),
        METADATA,
    ),
)

USERS = Collection(
    "users",
    "users",
    "users",
    (
        *BASE,
        Field("enabledUser", Kind.BOOL),
        Field("username", Kind.STRING),
        Field("userIds", Kind.JSON),
        Field("givenName", Kind.STRING, required=True),
        Field("familyName", Kind.STRING, required=True),
        Field("middleName", Kind.STRING),
        Field("preferredFirstName", Kind.STRING),
        Field("preferredMiddleName", Kind.STRING),
        Field("preferredLastName", Kind.STRING),
        Field("pronouns", Kind.STRING),
        # 1.1 carries one role and orgs; 1.2 carries roles[]; both end up in these columns.
        Field("role", Kind.STRING, required=True),
        Field("roles", Kind.JSON),
        Field("orgSourcedIds", Kind.REFS, source="orgs"),
        Field("primaryOrgSourcedId", Kind.REF, source="primaryOrg"),
        Field("identifier", Kind.STRING),
        Field("userMasterIdentifier", Kind.STRING),
        Field("email", Kind.STRING),
        Field("sms", Kind.STRING),
        Field("phone", Kind.STRING),
        Field("agentSourcedIds", Kind.REFS, source="agents"),
        Field("grades", Kind.STRINGS),
        # 1.2 userProfiles[], credentials without passwords (never stored).
        Field("userProfiles", Kind.JSON),
        METADATA,
    ),
)

ENROLLMENTS = Collection(
    "enrollments",
    "enrollments",
    "enrollments",
    (
        *BASE,
        Field("userSourcedId", Kind.REF, source="user", required=True),
        Field("classSourcedId", Kind.REF, source="class", required=True),
        Field("schoolSourcedId", Kind.REF, source="school", required=True),
        Field("role", Kind.STRING, required=True),
        Field("primary", Kind.BOOL),
        Field("beginDate", Kind.DATE),
        Field("endDate", Kind.DATE),
        METADATA,
    ),
)

DEMOGRAPHICS = Collection(
    "demographics",
    "demographics",
    "demographics",
    (
        *BASE,
        Field("birthDate", Kind.DATE),
        Field("sex", Kind.STRING),
        Field("americanIndianOrAlaskaNative", Kind.BOOL),
        Field("asian", Kind.BOOL),
        Field("blackOrAfricanAmerican", Kind.BOOL),
        Field("nativeHawaiianOrOtherPacificIslander", Kind.BOOL),
        Field("white", Kind.BOOL),
        Field("demographicRaceTwoOrMoreRaces", Kind.BOOL),
        Field("hispanicOrLatinoEthnicity", Kind.BOOL),
        Field("countryOfBirthCode", Kind.STRING),
        Field("stateOfBirthAbbreviation", Kind.STRING),
        Field("cityOfBirth", Kind.STRING),
        Field("publicSchoolResidenceStatus", Kind.STRING),
        METADATA,
    ),
)

COLLECTIONS: dict[str, Collection] = {
    c.name: c for c in (ORGS, ACADEMIC_SESSIONS, COURSES, CLASSES, USERS, ENROLLMENTS, DEMOGRAPHICS)
}
