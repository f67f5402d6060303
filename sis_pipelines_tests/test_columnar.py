"""Pages decoded straight into Arrow columns give what the record path gives, or step aside."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sis_pipelines.oneroster import columnar
from sis_pipelines.oneroster.client import envelope_records
from sis_pipelines.oneroster.collections import COLLECTIONS
from sis_pipelines.oneroster.columnar import decode_page
from sis_pipelines.oneroster.normalise import normalise_page
from sis_pipelines.simulator.render_page import PageRenderer
from sis_pipelines.simulator.vendors import VENDORS

from .support import NIGHT, REF, enrollment_1p1

ENROLLMENTS = COLLECTIONS["enrollments"]


def record_path(collection, content: bytes):
    return normalise_page(collection, envelope_records(orjson.loads(content), collection, "t1"))


def page(collection, records) -> bytes:
    return orjson.dumps({collection.envelope: records})


def same_table_or_record_path(collection, records) -> None:
    """A page the columnar path takes gives the record path's table, with nothing rejected."""
    content = page(collection, records)
    got = decode_page(collection, content)
    if got is not None:
        expected, rejects = record_path(collection, content)
        assert len(rejects) == 0
        assert got.equals(expected), (got.to_pylist(), expected.to_pylist())


enrollment = enrollment_1p1


@pytest.mark.parametrize("vendor", sorted(VENDORS))
@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_every_simulated_page_takes_the_columnar_path_with_the_same_table(
    small_district, vendor, version
):
    profile = VENDORS[vendor].with_(version=version)
    renderer = PageRenderer(profile, "https://sis.example/ims/oneroster/rostering/v1p2")
    for name, frame in small_district.snapshot(NIGHT).items():
        collection = COLLECTIONS[name]
        content = b'{"' + collection.envelope.encode() + b'":' + renderer.page(name, frame) + b"}"
        expected, rejects = record_path(collection, content)
        got = decode_page(collection, content)
        assert got is not None, (vendor, version, name)
        assert len(rejects) == 0
        assert got.equals(expected), (vendor, version, name)


def test_json_booleans_and_missing_optional_fields(monkeypatch):
    reads = []
    original = columnar._read
    monkeypatch.setattr(columnar, "_read", lambda *args: reads.append(args[2]) or original(*args))
    records = [
        enrollment(primary=True),
        enrollment(sourcedId="e2", primary=False, beginDate=None),
        {k: v for k, v in enrollment(sourcedId="e3").items() if k not in ("primary", "endDate")},
    ]
    content = page(ENROLLMENTS, records)
    got = decode_page(ENROLLMENTS, content)
    assert got is not None
    assert got.equals(record_path(ENROLLMENTS, content)[0])
    assert got["primary"].to_pylist() == [True, False, None]
    assert reads == [False]  # JSON booleans are read as such first: one parse, not two
    pretty = orjson.dumps({"enrollments": records}, option=orjson.OPT_INDENT_2)
    assert decode_page(ENROLLMENTS, pretty).equals(got)


@pytest.mark.parametrize(
    "content",
    [
        page(ENROLLMENTS, [enrollment(sourcedId=17)]),  # a number where text is expected
        page(ENROLLMENTS, [enrollment(sourcedId="")]),  # would be rejected
        page(ENROLLMENTS, [enrollment(beginDate="31/12/2025")]),  # would be rejected
        page(ENROLLMENTS, [enrollment(user="u1")]),  # a reference as bare text
        page(ENROLLMENTS, [enrollment(metadata={"ic.grade": "09"})]),  # kept as JSON text
        page(ENROLLMENTS, [enrollment(primary=True), enrollment(sourcedId="e2")]),  # mixed
        page(ENROLLMENTS, [enrollment(), None]),  # not a record
        orjson.dumps({"Enrollments": [enrollment()]}),  # the envelope in another case
        orjson.dumps([enrollment()]),  # no envelope
        orjson.dumps({"imsx_codeMajor": "failure", "enrollments": [enrollment()]}),
        page(ENROLLMENTS, [enrollment()])[:-5],  # cut short
    ],
)
def test_anything_unusual_takes_the_record_path(content):
    assert decode_page(ENROLLMENTS, content) is None


def test_a_class_with_terms_as_references_and_list_fields():
    classes = COLLECTIONS["classes"]
    record = {
        "sourcedId": "c1",
        "status": "active",
        "title": "Algebra",
        "course": REF("courses", "k1"),
        "school": REF("orgs", "s1"),
        "terms": [REF("academicSessions", "t1"), REF("academicSessions", "t2")],
        "grades": ["09", "10"],
        "periods": [],
    }
    content = page(classes, [record, record | {"sourcedId": "c2", "terms": None}])
    got = decode_page(classes, content)
    assert got is not None
    assert got.equals(record_path(classes, content)[0])
    assert got["termSourcedIds"].to_pylist() == [["t1", "t2"], None]


TEXT = st.one_of(st.none(), st.text(max_size=12))
DATE = st.one_of(
    st.none(),
    st.dates().map(str),
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
)
RIGHT = {
    "string": TEXT,
    "date": DATE,
    "datetime": DATE,
    "bool": st.one_of(st.none(), st.sampled_from(["true", "false", "TRUE", "yes"])),
    "ref": st.one_of(st.none(), st.builds(lambda i: {"sourcedId": i, "type": "x"}, TEXT)),
    "refs": st.lists(st.builds(lambda i: {"sourcedId": i}, TEXT), max_size=2),
    "strings": st.lists(TEXT, max_size=2),
    "json": st.none(),
}
WRONG = st.one_of(
    st.booleans(),
    st.integers(-5, 5),
    st.text(max_size=3),
    st.sampled_from(["", " ", "2026-02-30", "31/12/2025"]),
    st.just({"a": 1}),
    st.just([1]),
)


def field_value(kind):
    # Mostly the right JSON type, so that both paths are exercised.
    return st.integers(0, 30).flatmap(lambda n: WRONG if n == 0 else RIGHT[kind.value])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "sourcedId": st.integers(0, 30).flatmap(
                    lambda n: WRONG if n == 0 else st.text(min_size=1, max_size=8)
                )
            },
            optional={
                f.rest_name: field_value(f.kind)
                for f in ENROLLMENTS.fields
                if f.column != "sourcedId"
            },
        ),
        min_size=1,
        max_size=6,
    )
)
def test_either_the_same_table_or_the_record_path(records):
    same_table_or_record_path(ENROLLMENTS, records)


USERS = COLLECTIONS["users"]
ORG = st.sampled_from(["s1", "s2", 'q"uote', "back\\slash", "é"])
ROLE = st.fixed_dictionaries(
    {},
    optional={
        "roleType": st.sampled_from(["primary", "secondary", "other"]),
        "role": st.sampled_from(["student", "teacher", "aide", "line\nbreak"]),
        "org": st.one_of(st.builds(lambda i: {"sourcedId": i, "type": "org"}, ORG), st.just({})),
        "beginDate": st.sampled_from(["2026-08-15", None]),
        "extension": st.just("dropped by both paths"),
    },
)


@settings(max_examples=120, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "sourcedId": st.text("abc", min_size=1, max_size=4),
                "status": st.just("active"),
                "givenName": st.just("A"),
                "familyName": st.just("B"),
            },
            optional={
                "roles": st.one_of(st.none(), st.lists(ROLE, max_size=4)),
                "primaryOrg": st.one_of(st.none(), st.builds(lambda i: {"sourcedId": i}, ORG)),
                "role": st.sampled_from(["teacher", None]),
                "orgs": st.lists(st.builds(lambda i: {"sourcedId": i}, ORG), max_size=2),
                "userIds": st.lists(
                    st.fixed_dictionaries(
                        {"type": st.sampled_from(["sis", "state"])},
                        optional={"identifier": st.sampled_from(["42", 'x"y']), "z": st.just(1)},
                    ),
                    max_size=2,
                ),
                "preferredGivenName": st.sampled_from(["Al", None]),
                "preferredFirstName": st.sampled_from(["Alf", None]),
            },
        ),
        min_size=1,
        max_size=5,
    )
)
def test_users_with_1p2_roles_fold_as_the_record_path_folds_them(records):
    same_table_or_record_path(USERS, records)


def test_a_users_page_of_1p2_roles_is_read_in_columns():
    user = {
        "sourcedId": "u1",
        "status": "active",
        "givenName": "A",
        "familyName": "B",
        "primaryOrg": REF("orgs", "s2"),
        "roles": [
            {"roleType": "secondary", "role": "aide", "org": REF("orgs", "s1")},
            {"roleType": "primary", "role": "student", "org": REF("orgs", "s1")},
            {"roleType": "primary", "role": "teacher", "org": REF("orgs", "s2"), "x": 1},
            {"roleType": "secondary", "role": "aide", "org": REF("orgs", "s1")},
        ],
        "userIds": [{"identifier": "9", "type": "sis"}],
        "preferredGivenName": "Al",
    }
    content = page(USERS, [user])
    got = decode_page(USERS, content)
    assert got is not None and got.equals(record_path(USERS, content)[0])
    row = got.to_pylist()[0]
    assert row["role"] == "teacher"  # primary at the primary org, not the first primary
    assert row["orgSourcedIds"] == ["s1", "s2"]
    assert row["preferredFirstName"] == "Al"
    assert row["userIds"] == '[{"type":"sis","identifier":"9"}]'
    assert orjson.loads(row["roles"])[2] == {"roleType": "primary", "role": "teacher", "org": "s2"}
