"""OneRoster 1.1 and 1.2 payloads into the canonical columns."""

from __future__ import annotations

import datetime as dt
import itertools

import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from sis_pipelines.oneroster.collections import COLLECTIONS
from sis_pipelines.oneroster.normalise import (
    normalise_page,
    strictly_ascending,
    to_bool,
    to_date,
)

from .support import REF, enrollment_1p1


def test_enrollment_1p1_with_ed_fi_quirks():
    table, rejects = normalise_page(
        COLLECTIONS["enrollments"],
        [enrollment_1p1(metadata={"vendor": {"x": 1}})],
    )
    assert len(rejects) == 0
    row = table.to_pylist()[0]
    assert (
        row["userSourcedId"] == "u1"
        and row["classSourcedId"] == "c1"
        and row["schoolSourcedId"] == "s1"
    )
    assert row["primary"] is False
    assert row["beginDate"] == dt.date(2025, 8, 15)
    assert row["endDate"] == dt.date(2026, 6, 10)
    assert row["dateLastModified"] == dt.datetime(2026, 1, 1, 10, 0, 0, 123000, tzinfo=dt.UTC)
    assert row["metadata"] == '{"vendor":{"x":1}}'
    assert table.schema.field("beginDate").type == pa.date32()


def test_user_1p2_roles_give_role_and_orgs():
    table, rejects = normalise_page(
        COLLECTIONS["users"],
        [
            {
                "sourcedId": "u1",
                "status": "active",
                "dateLastModified": "2026-01-01T00:00:00Z",
                "enabledUser": "true",
                "givenName": "Ada",
                "familyName": "Lovelace",
                "preferredFirstName": "Addie",
                "primaryOrg": REF("orgs", "s2"),
                "roles": [
                    {"roleType": "secondary", "role": "aide", "org": REF("orgs", "s1")},
                    {"roleType": "primary", "role": "teacher", "org": REF("orgs", "s2")},
                ],
                "userIds": [{"type": "LDAP", "identifier": "ada"}],
                "grades": ["09", "10"],
            }
        ],
    )
    assert len(rejects) == 0
    row = table.to_pylist()[0]
    assert row["role"] == "teacher"
    assert row["orgSourcedIds"] == ["s1", "s2"]
    assert row["primaryOrgSourcedId"] == "s2"
    assert row["enabledUser"] is True
    assert row["preferredFirstName"] == "Addie"
    assert '"roleType":"primary"' in row["roles"]
    assert row["grades"] == ["09", "10"]


def test_user_1p1_comma_separated_grades_and_numeric_identifier():
    table, _ = normalise_page(
        COLLECTIONS["users"],
        [
            {
                "sourcedId": "u1",
                "status": "active",
                "givenName": "A",
                "familyName": "B",
                "role": "student",
                "grades": "09, 10",
                "identifier": 12345,
                "enabledUser": True,
            }
        ],
    )
    row = table.to_pylist()[0]
    assert row["grades"] == ["09", "10"]
    assert row["identifier"] == "12345"


def test_unrepresentable_records_are_rejected_with_reason_and_raw_json():
    records = [
        {
            "sourcedId": "ok",
            "status": "active",
            "title": "Fall",
            "type": "term",
            "startDate": "2026-08-15",
            "endDate": "2027-01-15",
        },
        {
            "sourcedId": "bad-date",
            "status": "active",
            "title": "X",
            "type": "term",
            "startDate": "15/08/2026",
            "endDate": "2027-01-15",
        },
        {
            "status": "active",
            "title": "no id",
            "type": "term",
            "startDate": "2026-08-15",
            "endDate": "2027-01-15",
        },
        {
            "sourcedId": "bad-type",
            "status": "active",
            "title": {"nested": True},
            "type": "term",
            "startDate": "2026-08-15",
            "endDate": "2027-01-15",
        },
        "not an object",
    ]
    table, rejects = normalise_page(COLLECTIONS["academic_sessions"], records)
    assert table["sourcedId"].to_pylist() == ["ok"]
    reasons = dict(zip(rejects.records, rejects.reasons, strict=True))
    assert len(rejects) == 4
    assert any("startDate: invalid date '15/08/2026'" in r for r in rejects.reasons)
    assert any(r == "sourcedId: missing" for r in rejects.reasons)
    assert any("title: expected a text value" in r for r in rejects.reasons)
    assert any("not a JSON object" in r for r in rejects.reasons)
    assert any('"bad-date"' in raw for raw in reasons)


def test_string_booleans_in_any_case():
    assert to_bool(pa.array(["true", "FALSE", " True ", None, "yes"])).to_pylist() == [
        True,
        False,
        True,
        None,
        None,
    ]
    assert to_bool(pa.array([True, None])).to_pylist() == [True, None]


def test_end_of_day_keeps_its_date():
    assert to_date(pa.array(["2026-06-10T23:59:59Z"])).to_pylist() == [dt.date(2026, 6, 10)]


@given(
    day=st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2090, 12, 31)),
    offset_minutes=st.integers(min_value=-11 * 4, max_value=11 * 4).map(
        lambda q: q * 15
    ),  # real zones: quarter hours
)
def test_a_date_sent_as_midnight_local_in_utc_comes_back(day, offset_minutes):
    local_midnight = dt.datetime.combine(
        day, dt.time(), tzinfo=dt.timezone(dt.timedelta(minutes=offset_minutes))
    )
    text = local_midnight.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert to_date(pa.array([text])).to_pylist() == [day]


@given(
    st.lists(st.lists(st.text(alphabet="abc", max_size=3), max_size=6), max_size=5),
)
def test_strictly_ascending_over_chunks_as_over_one_array(pages):
    # Chunks are checked one by one and across their seams, never joined into one array.
    values = [v for page in pages for v in page]
    expected = all(a < b for a, b in itertools.pairwise(values))
    chunked = pa.chunked_array([pa.array(p, pa.string()) for p in pages], pa.string())
    assert strictly_ascending(chunked) == expected
    assert strictly_ascending(pa.array(values, pa.string())) == expected
