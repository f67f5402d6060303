"""A hostile or broken OneRoster server: it echoes our credentials, ignores offset (with and
without sort), stops short of its own count, trickles its body, answers in HTML. Each ends in
one clear line; no secret is stored or shown; no page loop runs on; nothing is cut short."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest

from sis_pipelines.cli import main
from sis_pipelines.core.secrets import redact, remember
from sis_pipelines.oneroster.collections import COLLECTIONS
from sis_pipelines.oneroster.errors import OneRosterError
from sis_pipelines.oneroster.paging import PagingError
from sis_pipelines.simulator.server import SimulatorServer
from sis_pipelines.simulator.vendors import VENDORS

from .support import NIGHT, SECRET, client_for

USERS = COLLECTIONS["users"]


def everything_written(*roots: Path) -> list[bytes]:
    return [p.read_bytes() for root in roots for p in root.rglob("*") if p.is_file()]


def test_a_secret_echoed_by_the_sis_is_shown_and_stored_nowhere(
    workspace, small_district, monkeypatch, capsys
):
    instance, data, tenants = workspace
    monkeypatch.setattr("sis_pipelines.operate.dagster_instance", lambda: instance)
    monkeypatch.setenv("ECHO_ID", "district-id")
    monkeypatch.setenv("ECHO_SECRET", SECRET)
    with SimulatorServer(
        "focus", district=small_district, night=NIGHT, client_id="district-id", client_secret=SECRET
    ) as sis:
        tenants.write_text(
            f"""
tenants:
  echoing:
    vendor: focus
    oneroster:
      version: "1.1"
      source: rest
      base_url: {sis.base_url}
      auth: {{type: oauth2, token_url: "{sis.token_url}", client_id_env: ECHO_ID, client_secret_env: ECHO_SECRET}}
      retry_attempts: 1
      step_retries: 0
"""
        )
        # The rostering answer repeats our Bearer token; then the token endpoint our Basic one.
        sis.add_fault(path="/users", kind="echo", status=401, times=1000)
        assert main(["tenants", "sync"]) == 0
        # The whole collection group: users is fetched (its orgs stored first) and fails.
        run = ["run", "--tenant", "echoing", "--night", "latest", "--select", "group:oneroster"]
        assert main(run) == 1
        assert main(["tenants", "check", "echoing"]) == 1
        sis.add_fault(path="/oauth/token", kind="echo", status=401, times=1000)
        sis.auth.expire_tokens()
        assert main([*run, "--force-refetch"]) == 1
        assert main(["tenants", "check", "echoing"]) == 1
        issued = list(sis.auth.issued)
    out = capsys.readouterr()
    shown = out.out + out.err
    assert "token Bearer [redacted] is not valid" in shown, shown
    assert "Traceback" not in shown
    basic = base64.b64encode(f"district-id:{SECRET}".encode()).decode()
    secrets = [SECRET, basic, *issued]
    assert issued, "the SIS issued tokens"
    texts = [shown.encode(), *everything_written(data, Path(instance.root_directory))]
    for run_record in instance.get_runs():
        texts += [str(e).encode() for e in instance.all_logs(run_record.run_id)]
    for secret in secrets:
        assert not any(secret.encode() in t for t in texts), secret


def test_redaction_removes_every_form_and_bounds_the_text():
    remember("tok/en+with=odd&chars")
    text = redact("a tok%2Fen%2Bwith%3Dodd%26chars and tok/en+with=odd&chars " + "x" * 10_000)
    assert "tok" not in text and text.count("[redacted]") == 2
    assert text.endswith("more characters)") and len(text) < 8_100
    # Credentials of any shape, whoever's.
    assert redact("Authorization: Bearer abc.DEF-123_456") == "Authorization: Bearer [redacted]"
    assert (
        redact('{"access_token": "zzzzzzzz", "x": 1}') == '{"access_token": "[redacted]", "x": 1}'
    )
    assert redact("Basic ZGlzdHJpY3Q6czNjcmV0") == "Basic [redacted]"
    assert redact("basic information, kept") == "basic information, kept"


def test_a_server_ignoring_offset_and_sort_is_refused_not_paged_forever(simulator):
    sim = simulator(VENDORS["progressbook"].with_(honours_offset=False))
    started = time.monotonic()
    with client_for(sim, page_size=100) as client, pytest.raises(PagingError) as caught:
        client.fetch(USERS)
    assert "repeats the page at offset 0" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert len(sim.requests) < 10 and time.monotonic() - started < 30


def test_a_sorted_server_ignoring_offset_without_a_count_is_not_cut_short(simulator):
    sim = simulator(VENDORS["genesis"].with_(honours_offset=False))  # sorts, sends no count
    assert len(sim.frames["users"]) > 100
    with client_for(sim, page_size=100) as client, pytest.raises(PagingError, match="repeats"):
        client.fetch(USERS)


def test_pages_that_stop_short_of_the_count_are_refused(simulator):
    sim = simulator("focus")  # sends X-Total-Count and Link
    total = len(sim.frames["users"])
    with client_for(sim, page_size=100) as client:
        first, _ = client.get_json(USERS.endpoint, {"limit": 100, "offset": 0})
    # The first page, saying there is nothing after it, yet counting every user.
    body = __import__("orjson").dumps(first)
    sim.add_fault(
        path="/users",
        status=200,
        body=body,
        headers={"X-Total-Count": str(total), "Link": f'<{sim.base_url}/users>; rel="first"'},
        times=1000,
    )
    with client_for(sim, page_size=100) as client, pytest.raises(PagingError) as caught:
        client.fetch(USERS)
    assert f"reports {total:,} records but its pages ended after 100" in str(caught.value)


def test_a_trickling_body_is_given_up_within_its_deadline(simulator):
    sim = simulator("focus")
    sim.add_fault(
        path="/users", kind="trickle", delay_s=0.05, body=b'{"users": []}' + b" " * 200, times=1000
    )
    started = time.monotonic()
    with (
        client_for(sim, page_size=100, timeout_s=0.2) as client,
        pytest.raises(OneRosterError) as caught,
    ):
        client.fetch(USERS)
    assert "still arriving after 1s" in str(caught.value)
    assert time.monotonic() - started < 20


def test_a_wrong_content_type_fails_in_one_line(simulator):
    sim = simulator("focus")
    sim.add_fault(
        path="/users",
        status=200,
        body=b"<html><title>Maintenance</title><body>back soon</body></html>",
        content_type="text/html",
        times=1000,
    )
    with client_for(sim) as client, pytest.raises(OneRosterError) as caught:
        client.fetch(USERS)
    message = str(caught.value)
    assert "not valid JSON (Maintenance)" in message and "\n" not in message


def test_a_huge_field_and_control_characters_over_rest(workspace, small_district, monkeypatch):
    """A 30 MB givenName: the record is quarantined (it is kept, whole, with its reason), but no
    reason, warning or log event carries more than a prefix of it."""
    from sis_pipelines.core.nights import latest_complete_night
    from sis_pipelines.core.storage import read_frame
    from sis_pipelines.operate import run_tenant_night

    instance, data, tenants = workspace
    monkeypatch.setenv("HUGE_ID", "district-id")
    monkeypatch.setenv("HUGE_SECRET", SECRET)
    with SimulatorServer(
        "focus", district=small_district, night=NIGHT, client_id="district-id", client_secret=SECRET
    ) as sis:
        users = sis.frames["users"].copy()
        huge = "Ä" + "x" * 30_000_000
        users.loc[users.index[0], "givenName"] = huge
        victim = users["sourcedId"].iloc[0]
        # And control characters in JSON: a bare carriage return in a name, NUL in another.
        users.loc[users.index[1], "familyName"] = "Smith\rJones"
        users.loc[users.index[2], "givenName"] = "Ann\x00"
        returned, nul = users["sourcedId"].iloc[1], users["sourcedId"].iloc[2]
        sis.mutate("users", users)
        tenants.write_text(
            f"""
tenants:
  huge:
    vendor: focus
    oneroster:
      version: "1.1"
      source: rest
      base_url: {sis.base_url}
      auth: {{type: oauth2, token_url: "{sis.token_url}", client_id_env: HUGE_ID, client_secret_env: HUGE_SECRET}}
"""
        )
        night = latest_complete_night()
        outcome = run_tenant_night(instance, "huge", night, select="group:oneroster")
    assert outcome.success, outcome.errors
    quarantine = read_frame(data / "quarantine" / "users" / str(night) / "huge.parquet")
    [reason] = quarantine.loc[quarantine["sourcedId"] == victim, "reason"].astype(str)
    assert "givenName 'Äxxxx" in reason and "(30,000,001 characters)" in reason, reason
    assert len(reason) < 400
    [record] = quarantine.loc[quarantine["sourcedId"] == victim, "record"].astype(str)
    assert huge in record, "the record is kept whole"
    [nul_reason] = quarantine.loc[quarantine["sourcedId"] == nul, "reason"].astype(str)
    assert "givenName 'Ann\\x00': holds a NUL character" in nul_reason, nul_reason
    repairs = read_frame(data / "repairs" / "users" / str(night) / "huge.parquet")
    [value] = repairs.loc[repairs["sourcedId"] == returned, "value"].astype(str)
    assert value == "Smith\rJones"
    kept = read_frame(data / "oneroster" / "users" / str(night) / "huge.parquet")
    assert kept.loc[kept["sourcedId"] == returned, "familyName"].astype(str).tolist() == [
        "Smith Jones"
    ]
    for run_record in instance.get_runs():
        for entry in instance.all_logs(run_record.run_id):
            assert len(str(entry)) < 1_000_000, "a log event carries the value"


def test_endless_next_links_on_a_page_that_never_moves_are_refused():
    """A page that always says there is a next one and never moves on (a broken gateway): the
    pull gives up after a bounded number of requests, in one line."""
    import httpx

    from sis_pipelines.oneroster.client import OneRosterClient

    asked = []

    def sis(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        link = f'<{request.url}>; rel="next"'
        return httpx.Response(200, json={"users": [{"sourcedId": "u1"}]}, headers={"Link": link})

    client = OneRosterClient(
        "t1", "https://sis.example", None, page_size=100, transport=httpx.MockTransport(sis)
    )
    with client, pytest.raises(PagingError, match="brought no new record") as caught:
        client.fetch(USERS)
    assert "\n" not in str(caught.value) and len(asked) <= 102
