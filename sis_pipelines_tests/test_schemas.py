"""Each schema rule fails when it should, and quarantines with a reason."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from sis_pipelines.oneroster.collections import COLLECTIONS
from sis_pipelines.oneroster.normalise import arrow_schema
from sis_pipelines.oneroster.validate import validate


def table(name: str, rows: list[dict]) -> pa.Table:
    schema = arrow_schema(COLLECTIONS[name])
    full = [{f.name: r.get(f.name) for f in schema} for r in rows]
    return pa.Table.from_pylist(full, schema=schema)


def enrollment(sid: str, **kw) -> dict:
    base = {
        "sourcedId": sid,
        "status": "active",
        "userSourcedId": "u1",
        "classSourcedId": "c1",
        "schoolSourcedId": "s1",
        "role": "student",
    }
    return base | kw


REFS = {"users": pa.array(["u1", "u2"]), "classes": pa.array(["c1"]), "orgs": pa.array(["s1"])}


def quarantine_of(name: str, rows: list[dict], refs=REFS):
    result = validate(COLLECTIONS[name], table(name, rows), refs)
    return result, dict(
        zip(result.quarantine["sourcedId"], result.quarantine["reason"], strict=True)
    )


def test_valid_records_flow_on():
    result, bad = quarantine_of(
        "enrollments",
        [enrollment("e1"), enrollment("e2", userSourcedId="u2", role="teacher", primary=True)],
    )
    assert bad == {}
    assert list(result.frame["sourcedId"]) == ["e1", "e2"]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (enrollment("e9", userSourcedId="ghost"), "userSourcedId 'ghost': not found in users"),
        (
            enrollment("e9", classSourcedId="nowhere"),
            "classSourcedId 'nowhere': not found in classes",
        ),
        (enrollment("e9", schoolSourcedId="s404"), "schoolSourcedId 's404': not found in orgs"),
        (enrollment("e9", role="wizard"), "role 'wizard': not a OneRoster role value"),
        (enrollment("e9", status="archived"), "status 'archived': not a OneRoster status value"),
        (enrollment("e9", role=None), "role: required but missing"),
        (
            enrollment("e9", beginDate=dt.date(2026, 9, 1), endDate=dt.date(2026, 8, 1)),
            "endDate is before beginDate",
        ),
    ],
)
def test_each_rule_quarantines_with_its_reason(row, reason):
    result, bad = quarantine_of("enrollments", [enrollment("e1"), row])
    assert list(result.frame["sourcedId"]) == ["e1"]
    assert reason in bad["e9"]
    record = result.quarantine["record"].iloc[0]
    assert '"sourcedId":"e9"' in record


def test_extension_values_are_allowed():
    _, bad = quarantine_of("enrollments", [enrollment("e1", role="ext:mentor")])
    assert bad == {}


def test_legacy_inactive_status_means_tobedeleted():
    result, bad = quarantine_of("enrollments", [enrollment("e1", status="inactive")])
    assert bad == {}
    assert result.frame["status"].iloc[0] == "tobedeleted"


def test_duplicate_sourced_ids_are_all_quarantined():
    result, _ = quarantine_of(
        "enrollments", [enrollment("e1"), enrollment("e1", role="teacher"), enrollment("e2")]
    )
    assert list(result.frame["sourcedId"]) == ["e2"]
    assert list(result.quarantine["reason"]) == ["sourcedId: duplicate 'e1'"] * 2


def test_class_terms_are_checked_element_by_element():
    row = {
        "sourcedId": "c1",
        "status": "active",
        "title": "Math",
        "courseSourcedId": "k1",
        "schoolSourcedId": "s1",
    }
    refs = {
        "courses": pa.array(["k1"]),
        "orgs": pa.array(["s1"]),
        "academic_sessions": pa.array(["t1", "t2"]),
    }
    result = validate(
        COLLECTIONS["classes"],
        table(
            "classes",
            [
                row | {"termSourcedIds": ["t1", "t2"]},
                row | {"sourcedId": "c2", "termSourcedIds": ["t1", "t9"]},
                row | {"sourcedId": "c3"},
            ],
        ),
        refs,
    )
    reasons = dict(zip(result.quarantine["sourcedId"], result.quarantine["reason"], strict=True))
    # c2 has one term that resolves: kept with it, the other left out and recorded.
    assert list(result.frame["sourcedId"]) == ["c1", "c2"]
    assert list(result.frame["termSourcedIds"][1]) == ["t1"]
    [repair] = result.repairs.astype(str).to_dict("records")
    assert repair["sourcedId"] == "c2" and repair["field"] == "termSourcedIds"
    assert (
        repair["value"] == "t9" and "not found in academic_sessions; left out" in repair["reason"]
    )
    assert "termSourcedIds: required but missing" in reasons["c3"]
    # A class none of whose terms resolves cannot be placed: quarantined.
    none = validate(
        COLLECTIONS["classes"],
        table("classes", [row | {"sourcedId": "c4", "termSourcedIds": ["t8", "t9"]}]),
        refs,
    )
    assert len(none.frame) == 0 and "not found in academic_sessions" in none.quarantine["reason"][0]


def test_org_parent_cycles_and_unknown_parents():
    rows = [
        {"sourcedId": "d", "status": "active", "name": "District", "type": "district"},
        {
            "sourcedId": "a",
            "status": "active",
            "name": "A",
            "type": "school",
            "parentSourcedId": "b",
        },
        {
            "sourcedId": "b",
            "status": "active",
            "name": "B",
            "type": "school",
            "parentSourcedId": "a",
        },
        {
            "sourcedId": "s",
            "status": "active",
            "name": "S",
            "type": "school",
            "parentSourcedId": "d",
        },
        {
            "sourcedId": "o",
            "status": "active",
            "name": "O",
            "type": "school",
            "parentSourcedId": "missing",
        },
    ]
    result = validate(COLLECTIONS["orgs"], table("orgs", rows), {})
    reasons = dict(zip(result.quarantine["sourcedId"], result.quarantine["reason"], strict=True))
    # An unknown parent is optional in OneRoster: emptied, recorded, the org kept.
    assert sorted(result.frame["sourcedId"]) == ["d", "o", "s"]
    assert "loops back" in reasons["a"] and "loops back" in reasons["b"]
    [repair] = result.repairs.astype(str).to_dict("records")
    assert repair == {
        "sourcedId": "o",
        "field": "parentSourcedId",
        "value": "missing",
        "reason": "parentSourcedId 'missing': not found in orgs; emptied (optional in OneRoster)",
    }


def test_quarantined_share():
    result, _ = quarantine_of(
        "enrollments",
        [enrollment("e1"), enrollment("e2", userSourcedId="x"), enrollment("e3"), enrollment("e4")],
    )
    assert result.quarantined_share == 0.25


def test_every_snapshot_column_is_described_on_its_asset():
    import dagster as dg

    from sis_pipelines.definitions import defs

    for name, collection in COLLECTIONS.items():
        key = dg.AssetKey(["oneroster", name])
        spec = defs.resolve_assets_def(key).specs_by_key[key]
        schema = spec.metadata["dagster/column_schema"]
        assert [c.name for c in schema.columns] == arrow_schema(collection).names, name
        assert all(c.description for c in schema.columns), name
