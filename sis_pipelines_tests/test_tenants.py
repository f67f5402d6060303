"""The tenants file: valid files load; bad ones say which tenant, which key and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from sis_pipelines.core.tenants import TenantsFileError, load_tenants, parse_tenants

DEMO = Path(__file__).parents[1] / "sis_pipelines" / "demo" / "tenants.yaml"

REST = """
tenants:
  district-a:
    vendor: infinite_campus
    oneroster:
      version: "1.2"
      source: rest
      base_url: https://sis.example.org/campus/api/ims/oneroster/rostering/v1p2
      auth: {type: oauth2, token_url: "https://sis.example.org/campus/oauth2/token?appName=x", client_id_env: A_ID, client_secret_env: A_SECRET}
    canvas: {base_url: https://canvas.example.edu, account_id: 1, token_env: CANVAS_TOKEN, sis_id_prefix: ""}
    gpb: {endpoints: standard, vendor_key_env: A_VENDOR_KEY, vendor_secret_env: A_VENDOR_SECRET}
"""


def test_the_demo_file_loads():
    tenants = load_tenants(DEMO).tenants
    assert set(tenants) == {
        "demo-genesis",
        "demo-focus",
        "demo-progressbook",
        "demo-infinite-campus",
    }
    assert tenants["demo-infinite-campus"].oneroster.version == "1.2"


def test_a_rest_tenant_loads():
    tenant = parse_tenants(REST).tenants["district-a"]
    assert tenant.oneroster.auth.client_secret_env == "A_SECRET"
    assert tenant.oneroster.page_size == 1000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (REST.replace("district-a", "District_A"), "tenant id 'District_A': must match"),
        (REST.replace("district-a", "../../etc"), "tenant id '../../etc': must match"),
        (REST.replace("district-a", "a|b"), "tenant id 'a|b': must match"),
        (
            REST.replace("vendor: infinite_campus", "vendor: powerschool"),
            "tenant 'district-a': vendor: Input should be",
        ),
        (
            REST.replace('version: "1.2"', 'version: "1.0"'),
            "tenant 'district-a': oneroster.version",
        ),
        (REST.replace("type: oauth2", "type: oauth1"), "OneRoster 1.2 allows OAuth 2.0 only"),
        (
            REST.replace(
                ', token_url: "https://sis.example.org/campus/oauth2/token?appName=x"', ""
            ),
            "oauth2 needs token_url",
        ),
        (
            REST.replace(
                "      base_url: https://sis.example.org/campus/api/ims/oneroster/rostering/v1p2\n",
                "",
            ),
            "source rest needs base_url",
        ),
        (
            REST.replace("page_size", "x").replace(
                "source: rest", "source: rest\n      pagesize: 10"
            ),
            "oneroster.pagesize: not a key here; did you mean 'page_size'?",
        ),
        # A tenant that contradicts what its vendor's SIS is known to speak.
        (
            REST.replace("vendor: infinite_campus", "vendor: genesis"),
            "tenant 'district-a': oneroster.version: genesis speaks OneRoster 1.1, not 1.2",
        ),
        (
            REST.replace(", vendor_key_env: A_VENDOR_KEY, vendor_secret_env: A_VENDOR_SECRET", ""),
            "tenant 'district-a': gpb.vendor_key_env: Infinite Campus gradebook calls need",
        ),
        (
            REST.replace('version: "1.2"', 'version: "1.1"').replace(
                "type: oauth2", "type: oauth1"
            ),
            "tenant 'district-a': oneroster.version: infinite_campus speaks OneRoster 1.2",
        ),
        ("tenants: [1, 2]", "must be a mapping with a 'tenants' mapping"),
        ("tenants: {a: [", "not valid YAML"),
    ],
)
def test_bad_files_are_explained(text, expected):
    with pytest.raises(TenantsFileError) as caught:
        parse_tenants(text, "tenants.yaml")
    assert expected in str(caught.value)


def test_the_file_is_parsed_once_per_content_and_an_edit_is_seen_at_once(tmp_path):
    path = tmp_path / "tenants.yaml"
    one = 'tenants:\n  a: {vendor: genesis, oneroster: {version: "1.1", source: simulator}}\n'
    path.write_text(one)
    first = load_tenants(path)
    assert load_tenants(path) is first  # the same text: not parsed again
    path.write_text(one + '  b: {vendor: focus, oneroster: {version: "1.1", source: simulator}}\n')
    assert sorted(load_tenants(path).tenants) == ["a", "b"]
    path.write_text("tenants: [")
    with pytest.raises(TenantsFileError, match="not valid YAML"):
        load_tenants(path)


def test_a_missing_file_is_explained(tmp_path):
    with pytest.raises(TenantsFileError, match="cannot read tenants file"):
        load_tenants(tmp_path / "nope.yaml")


def test_a_generic_vendor_is_free_of_vendor_facts():
    text = REST.replace("vendor: infinite_campus", "vendor: generic").replace(
        ", vendor_key_env: A_VENDOR_KEY, vendor_secret_env: A_VENDOR_SECRET", ""
    )
    assert parse_tenants(text).tenants["district-a"].vendor == "generic"


def test_infinite_campus_accepts_oauth2_only():
    text = REST.replace(
        'auth: {type: oauth2, token_url: "https://sis.example.org/campus/oauth2/token?appName=x", '
        "client_id_env: A_ID, client_secret_env: A_SECRET}",
        "auth: {type: bearer, token_env: A_TOKEN}",
    )
    with pytest.raises(
        TenantsFileError, match=r"Infinite Campus accepts OAuth 2\.0 only, not bearer"
    ):
        parse_tenants(text)


def test_demographics_are_left_out_unless_a_tenant_asks_and_so_is_their_scope():
    from sis_pipelines.oneroster.source import build_auth

    env = {"A_ID": "id", "A_SECRET": "secret"}
    minimal = parse_tenants(REST).tenants["district-a"]
    assert minimal.privacy.demographics is False
    scope = build_auth("district-a", minimal, env)._scope  # the scope the token request asks
    assert scope == "https://purl.imsglobal.org/spec/or/v1p2/scope/roster.readonly"
    asking = parse_tenants(
        REST.replace("    gpb:", "    privacy: {demographics: true}\n    gpb:")
    ).tenants["district-a"]
    assert build_auth("district-a", asking, env)._scope.split() == [
        "https://purl.imsglobal.org/spec/or/v1p2/scope/roster.readonly",
        "https://purl.imsglobal.org/spec/or/v1p2/scope/roster-demographics.readonly",
    ]


@pytest.mark.parametrize(
    "text, line, first",
    [
        # A tenant id twice: the second would replace the first, vendor and all.
        (REST + REST.split("tenants:\n")[1], "key 'district-a' is defined twice", 3),
        # A key twice inside one tenant.
        (
            REST.replace("vendor: infinite_campus", "vendor: infinite_campus\n    vendor: focus"),
            "key 'vendor' is defined twice",
            4,
        ),
        # In a flow mapping, deep inside.
        (
            REST.replace("type: oauth2,", "type: oauth2, type: bearer,"),
            "key 'type' is defined twice",
            None,
        ),
    ],
)
def test_a_key_defined_twice_at_any_level_is_refused(text, line, first):
    with pytest.raises(TenantsFileError) as caught:
        parse_tenants(text, "tenants.yaml")
    message = str(caught.value)
    assert line in message and "\n" not in message
    assert message.startswith("tenants.yaml: line ")
    if first is not None:
        assert f"(first at line {first})" in message
