"""Three outcomes per record: kept, kept with repairs, quarantined. A record damaged one field
at a time lands in the outcome its field calls for, with a reason naming the field, and the
REST path and the CSV path agree on it. A record that needs a quarantined one names the root."""

from __future__ import annotations

import csv
import io
import zipfile

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sis_pipelines.oneroster.collections import COLLECTIONS, Kind
from sis_pipelines.oneroster.csv_bundle import FILE_NAMES, load_bundle, read_collection
from sis_pipelines.oneroster.normalise import normalise_page
from sis_pipelines.oneroster.reasons import grouped, markdown
from sis_pipelines.oneroster.schemas import ENUMS, REFERENCES
from sis_pipelines.oneroster.validate import validate

STAMP = "2024-01-02T03:04:05Z"
# A valid record of each collection with every field filled (lists as lists), and the record
# it needs in its own collection (a parent) first.
RECORDS: dict[str, list[dict]] = {
    "orgs": [
        {"sourcedId": "o1", "status": "active", "name": "District", "type": "district"},
        {
            "sourcedId": "o9", "status": "active", "dateLastModified": STAMP, "name": "School",
            "type": "school", "identifier": "S9", "parentSourcedId": "o1",
        },
    ],
    "academic_sessions": [
        {
            "sourcedId": "y1", "status": "active", "title": "2024-25", "type": "schoolYear",
            "startDate": "2024-08-01", "endDate": "2025-06-30",
        },
        {
            "sourcedId": "s9", "status": "active", "dateLastModified": STAMP, "title": "Fall",
            "type": "term", "startDate": "2024-08-01", "endDate": "2024-12-20",
            "parentSourcedId": "y1", "schoolYear": "2025",
        },
    ],
    "courses": [
        {
            "sourcedId": "k9", "status": "active", "dateLastModified": STAMP, "title": "Math",
            "schoolYearSourcedId": "y1", "courseCode": "M1", "grades": ["09", "10"],
            "subjects": ["Math"], "orgSourcedId": "o1", "subjectCodes": ["27.01"],
        }
    ],
    "classes": [
        {
            "sourcedId": "c9", "status": "active", "dateLastModified": STAMP, "title": "Math 1",
            "classCode": "M1-1", "classType": "scheduled", "location": "R1", "grades": ["09"],
            "subjects": ["Math"], "courseSourcedId": "k1", "schoolSourcedId": "o1",
            "termSourcedIds": ["t1"], "subjectCodes": ["27.01"], "periods": ["1"],
        }
    ],
    "users": [
        {
            "sourcedId": "u9", "status": "active", "dateLastModified": STAMP,
            "enabledUser": "true", "username": "jdoe", "givenName": "Jo", "familyName": "Doe",
            "middleName": "M", "preferredFirstName": "J", "pronouns": "they/them",
            "role": "student", "orgSourcedIds": ["o1"], "identifier": "900",
            "email": "jo@example.org", "sms": "555", "phone": "556", "agentSourcedIds": ["u1"],
            "grades": ["09"],
        }
    ],
    "enrollments": [
        {
            "sourcedId": "e9", "status": "active", "dateLastModified": STAMP,
            "userSourcedId": "u1", "classSourcedId": "c1", "schoolSourcedId": "o1",
            "role": "student", "primary": "false", "beginDate": "2024-08-01",
            "endDate": "2025-06-01",
        }
    ],
    "demographics": [
        {
            "sourcedId": "u1", "status": "active", "dateLastModified": STAMP,
            "birthDate": "2010-01-01", "sex": "female", "asian": "false", "white": "true",
            "hispanicOrLatinoEthnicity": "false", "countryOfBirthCode": "US",
        }
    ],
}  # fmt: skip
REFS = {
    "orgs": ["o1"],
    "academic_sessions": ["y1", "t1"],
    "courses": ["k1"],
    "classes": ["c1"],
    "users": ["u1"],
}
DAMAGED = {name: records[-1]["sourcedId"] for name, records in RECORDS.items()}
# The README's table, from the OneRoster 1.1/1.2 models: what a record cannot be used without.
REQUIRED = {
    "orgs": {"sourcedId", "status", "name", "type"},
    "academic_sessions": {"sourcedId", "status", "title", "type", "startDate", "endDate"},
    "courses": {"sourcedId", "status", "title", "orgSourcedId"},
    "classes": {
        "sourcedId", "status", "title", "courseSourcedId", "schoolSourcedId", "termSourcedIds",
    },
    "users": {"sourcedId", "status", "givenName", "familyName", "role"},
    "enrollments": {"sourcedId", "status", "userSourcedId", "classSourcedId", "schoolSourcedId", "role"},
    "demographics": {"sourcedId", "status"},
}  # fmt: skip
# References OneRoster makes 0..1: to no record, they are emptied, the record kept.
OPTIONAL_REFERENCES = {
    ("orgs", "parentSourcedId"),
    ("academic_sessions", "parentSourcedId"),
    ("courses", "schoolYearSourcedId"),
}


def _cases() -> list[tuple[str, str, str]]:
    """(collection, column, damage) for every field a damage applies to."""
    cases = []
    for name, collection in COLLECTIONS.items():
        filled = RECORDS[name][-1]
        for f in collection.fields:
            if f.column not in filled or f.kind is Kind.JSON:
                continue
            if f.column != "status":  # a bulk CSV reads a blank status as active, by design
                cases.append((name, f.column, "missing"))
            if f.kind in (Kind.DATE, Kind.DATETIME, Kind.BOOL):
                cases.append((name, f.column, "unreadable"))
            if (name, f.column) in ENUMS or f.column == "status":
                cases.append((name, f.column, "case"))
            if (name, f.column) in REFERENCES:
                cases.append((name, f.column, "dangling"))
    return cases


CASES = _cases()
UNREADABLE = {
    Kind.DATE: ["1/05/2023", "yesterday", "2023-13-45"],
    Kind.DATETIME: ["1/05/2023", "last tuesday", "2023-13-45T99:00"],
    Kind.BOOL: ["maybe", "n/a"],
}


def _damaged(name: str, column: str, damage: str, pick: int) -> list[dict]:
    records = [dict(r) for r in RECORDS[name]]
    record = records[-1]
    kind = COLLECTIONS[name].field(column).kind
    if damage == "missing":
        record.pop(column)
    elif damage == "unreadable":
        options = UNREADABLE[kind]
        record[column] = options[pick % len(options)]
    elif damage == "case":
        record[column] = record[column].upper()
    else:
        record[column] = ["nowhere"] if kind is Kind.REFS else "nowhere"
    return records


def _as_rest(name: str, record: dict) -> dict:
    """A record as a OneRoster 1.1 REST provider sends it (GUIDRefs, JSON booleans)."""
    out = {}
    for f in COLLECTIONS[name].fields:
        if f.column not in record:
            continue
        value = record[f.column]
        if f.kind is Kind.REF:
            value = {"sourcedId": value, "type": "org"}
        elif f.kind is Kind.REFS:
            value = [{"sourcedId": v, "type": "org"} for v in value]
        elif f.kind is Kind.BOOL and value in ("true", "false"):
            value = value == "true"
        out[f.rest_name] = value
    return out


def _as_csv(name: str, records: list[dict]) -> bytes:
    """The records as a OneRoster 1.1 CSV bundle (the binding's columns, lists comma-joined)."""
    columns = [f.column for f in COLLECTIONS[name].fields if f.kind is not Kind.JSON]
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(columns)
    for r in records:
        writer.writerow(
            [",".join(v) if isinstance(v := r.get(c, ""), list) else v for c in columns]
        )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr(
            "manifest.csv", "propertyName,value\nmanifest.version,1.0\noneroster.version,1.1\n"
        )
        z.writestr(f"{FILE_NAMES[name]}.csv", text.getvalue())
    return buffer.getvalue()


def _outcome(name: str, table: pa.Table, rejects) -> tuple[str, set[str], str]:
    refs = {k: pa.array(v) for k, v in REFS.items()}
    result = validate(COLLECTIONS[name], table, refs, rejects)
    damaged = DAMAGED[name]
    repairs = result.repairs[result.repairs["sourcedId"] == damaged]
    if damaged in set(result.frame["sourcedId"]):
        kind = "repaired" if len(repairs) else "kept"
        return kind, set(repairs["field"]), " ".join(repairs["reason"])
    reasons = " ".join(result.quarantine["reason"].astype(str))
    return "quarantined", set(), reasons


@pytest.mark.parametrize("case", CASES, ids="-".join)
@settings(max_examples=2, deadline=None)
@given(pick=st.integers(0, 5))
def test_a_record_damaged_in_one_field_lands_where_that_field_says(case, pick):
    name, column, damage = case
    records = _damaged(name, column, damage, pick)
    rest = _outcome(name, *normalise_page(COLLECTIONS[name], [_as_rest(name, r) for r in records]))
    read = read_collection(
        load_bundle("drop.zip", data=_as_csv(name, records)), COLLECTIONS[name], None
    )
    bulk = _outcome(name, read.table, read.rejects)
    outcome, fields, why = rest
    # The REST path and the CSV path give the same outcome for the same record.
    assert (outcome, fields) == bulk[:2], (case, rest, bulk)
    required = column in REQUIRED[name]
    if damage == "missing":
        expected = "quarantined" if required else "kept"
        assert outcome == expected, (case, rest)
        if required:
            assert column in why or "sourcedId: missing" in why
    elif damage == "unreadable":
        assert outcome == ("quarantined" if required else "repaired"), (case, rest)
        assert column in why
        if not required:
            assert fields == {column} and "emptied (optional in OneRoster)" in why
    elif damage == "case":
        assert (outcome, fields) == ("repaired", {column}), (case, rest)
        assert "read as" in why
    else:  # a reference to no record
        if (name, column) in OPTIONAL_REFERENCES:
            assert (outcome, fields) == ("repaired", {column}), (case, rest)
            assert "'nowhere': not found in" in why
        else:
            assert outcome == "quarantined" and "not found in" in why, (case, rest)


def test_the_fields_that_make_a_record_unusable_are_the_readmes():
    required = {name: {f.column for f in c.fields if f.required} for name, c in COLLECTIONS.items()}
    assert required == REQUIRED


def test_a_record_that_needs_a_quarantined_one_names_the_root():
    orgs = validate(
        COLLECTIONS["orgs"],
        _table("orgs", [{"sourcedId": "o1", "status": "active", "type": "school"}]),
        {},
    )
    [org_reason] = orgs.quarantine["reason"]
    assert org_reason == "name: required but missing"
    users = validate(
        COLLECTIONS["users"],
        _table(
            "users",
            [
                {
                    "sourcedId": f"u{i}",
                    "status": "active",
                    "givenName": "A",
                    "familyName": "B",
                    "role": "student",
                    "orgSourcedIds": ["o1"],
                }
                for i in range(3)
            ],
        ),
        {"orgs": pa.array(["o2"])},
        quarantined={"orgs": orgs.quarantine},
    )
    root = "orgs 'o1': name: required but missing"
    assert set(users.quarantine["reason"]) == {
        f"orgSourcedIds 'o1': quarantined in orgs (root: {root})"
    }
    enrollments = validate(
        COLLECTIONS["enrollments"],
        _table(
            "enrollments",
            [
                {
                    "sourcedId": "e1",
                    "status": "active",
                    "userSourcedId": "u0",
                    "classSourcedId": "c1",
                    "schoolSourcedId": "o2",
                    "role": "student",
                }
            ],
        ),
        {"users": pa.array([], pa.string()), "classes": pa.array(["c1"]), "orgs": pa.array(["o2"])},
        quarantined={"users": users.quarantine},
    )
    # Two levels down, the reason still leads to the org.
    [reason] = enrollments.quarantine["reason"]
    assert reason == f"userSourcedId 'u0': quarantined in users (root: {root})"
    # Grouped, the cascade is one line: the root and how many records it took.
    groups = grouped(users.quarantine)
    assert groups.to_dict("records") == [
        {"reason": f"needs a quarantined record: {root}", "records": 3, "example": "u0"}
    ]
    assert f"| needs a quarantined record: {root} | 3 | `u0` |" in markdown(users.quarantine)


def test_reasons_that_differ_only_in_values_are_one_group():
    frame = pa.table(
        {
            "sourcedId": ["a", "b", "c"],
            "reason": [
                "users.csv line 2: role 'wizard': not a OneRoster role value (nor ext:…)",
                "users.csv line 9: role 'witch': not a OneRoster role value (nor ext:…)",
                "familyName: required but missing",
            ],
        }
    ).to_pandas()
    assert grouped(frame).to_dict("records") == [
        {
            "reason": "role '…': not a OneRoster role value (nor ext:…)",
            "records": 2,
            "example": "a",
        },
        {"reason": "familyName: required but missing", "records": 1, "example": "c"},
    ]


def _table(name: str, rows: list[dict]) -> pa.Table:
    from sis_pipelines.oneroster.normalise import arrow_schema

    schema = arrow_schema(COLLECTIONS[name])
    return pa.Table.from_pylist(
        [{f.name: r.get(f.name) for f in schema} for r in rows], schema=schema
    )


def test_a_root_reason_that_ends_in_parentheses_is_kept_whole_two_levels_down():
    orgs = validate(
        COLLECTIONS["orgs"],
        _table("orgs", [{"sourcedId": "o1", "status": "active", "name": "O", "type": "galaxy"}]),
        {},
    )
    [org_reason] = orgs.quarantine["reason"]
    assert org_reason.endswith("(nor ext:…)")
    user = {"status": "active", "givenName": "A", "familyName": "B", "role": "student"}
    users = validate(
        COLLECTIONS["users"],
        _table("users", [user | {"sourcedId": "u1", "orgSourcedIds": ["o1"]}]),
        {"orgs": pa.array([], pa.string())},
        quarantined={"orgs": orgs.quarantine},
    )
    enrollment = {
        "sourcedId": "e1",
        "status": "active",
        "userSourcedId": "u1",
        "classSourcedId": "c1",
        "schoolSourcedId": "o2",
        "role": "student",
    }
    enrollments = validate(
        COLLECTIONS["enrollments"],
        _table("enrollments", [enrollment]),
        {"users": pa.array([], pa.string()), "classes": pa.array(["c1"]), "orgs": pa.array(["o2"])},
        quarantined={"users": users.quarantine},
    )
    [reason] = enrollments.quarantine["reason"]
    assert reason == f"userSourcedId 'u1': quarantined in users (root: orgs 'o1': {org_reason})"
    assert grouped(enrollments.quarantine)["reason"][0] == (
        f"needs a quarantined record: orgs 'o1': {org_reason}"
    )
