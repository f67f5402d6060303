"""The OneRoster client against the simulator over a real loopback socket."""

from __future__ import annotations

import gc

import httpx
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sis_pipelines.oneroster import client as client_module
from sis_pipelines.oneroster.client import RetryPolicy, retry_after_seconds
from sis_pipelines.oneroster.collections import COLLECTIONS
from sis_pipelines.oneroster.errors import OneRosterError
from sis_pipelines.oneroster.paging import PageIds
from sis_pipelines.simulator.http import imsx
from sis_pipelines.simulator.vendors import VENDORS

from .support import auth_for, client_for

USERS = COLLECTIONS["users"]
ENROLLMENTS = COLLECTIONS["enrollments"]


def served_ids(sim, name: str) -> set[str]:
    return set(sim.frames[name]["sourcedId"])


@pytest.mark.parametrize("vendor", ["genesis", "focus", "progressbook", "infinite_campus"])
def test_every_collection_arrives_whole_for_every_vendor(simulator, vendor):
    sim = simulator(vendor)
    with client_for(sim, page_size=1000) as client:
        for name, collection in COLLECTIONS.items():
            result = client.fetch(collection)
            ids = result.table["sourcedId"].to_pylist()
            assert len(ids) == len(set(ids)), name
            assert set(ids) == served_ids(sim, name), name
            assert len(result.rejects) == 0


def test_page_bodies_are_freed_without_waiting_for_the_garbage_collector(simulator):
    # httpx links a response and its stream both ways; unless the client unlinks them, each
    # page body waits for a full collection (hundreds of MB in a large district's fetch).
    sim = simulator("infinite_campus")
    gc.collect()
    gc.disable()
    try:
        with client_for(sim, page_size=100) as client:
            result = client.fetch(ENROLLMENTS)
            alive = [
                str(o.request.url)
                for o in gc.get_objects()
                if isinstance(o, httpx.Response) and ENROLLMENTS.endpoint in o.request.url.path
            ]
    finally:
        gc.enable()
    assert result.stats.requests > 5
    assert alive == []


def test_silent_clamp_without_count_or_links_loses_nothing(simulator):
    sim = simulator("genesis")  # clamps to 500, sends no count and no Link
    with client_for(sim, page_size=1000) as client:
        result = client.fetch(ENROLLMENTS)
    assert set(result.table["sourcedId"].to_pylist()) == served_ids(sim, "enrollments")
    assert result.stats.page_size_served == 500
    n = len(served_ids(sim, "enrollments"))
    # 499 new records per overlapping page, plus at most one page telling the end.
    assert result.stats.requests <= -(-n // 499) + 1


def test_short_first_page_is_probed_once(simulator):
    sim = simulator("genesis")
    with client_for(sim, page_size=1000) as client:
        result = client.fetch(COLLECTIONS["orgs"])
    assert result.table.num_rows == len(served_ids(sim, "orgs"))
    assert result.stats.requests == 2


def test_count_header_spares_the_probe(simulator):
    sim = simulator("focus")
    with client_for(sim, page_size=1000) as client:
        result = client.fetch(COLLECTIONS["orgs"])
    assert result.stats.requests == 1
    assert result.stats.reconciled is True


def test_exact_multiple_of_the_page_size(simulator):
    sim = simulator(VENDORS["genesis"].with_(max_page_size=10_000))
    users = sim.frames["users"]
    sim.mutate("users", users.head(300))
    with client_for(sim, page_size=100) as client:
        result = client.fetch(USERS)
    assert result.table.num_rows == 300


def test_lower_case_envelope_key(simulator):
    sim = simulator("focus")
    with client_for(sim) as client:
        result = client.fetch(COLLECTIONS["academic_sessions"])
    assert result.table.num_rows == len(served_ids(sim, "academic_sessions"))


def test_server_that_ignores_sort_is_paged_by_offset_and_deduplicated(simulator):
    sim = simulator("progressbook")
    with client_for(sim, page_size=500) as client:
        result = client.fetch(ENROLLMENTS)
    ids = result.table["sourcedId"].to_pylist()
    assert not result.stats.sorted_by_server
    assert len(ids) == len(set(ids))
    assert set(ids) == served_ids(sim, "enrollments")


@pytest.mark.parametrize("vendor", ["genesis", "progressbook"])
def test_duplicates_across_pages_are_dropped(simulator, vendor):
    sim = simulator(vendor)
    frame = sim.frames["users"]
    expected = set(frame["sourcedId"])
    sim.mutate("users", pd.concat([frame, frame.iloc[::7]]))  # a provider that repeats records
    with client_for(sim, page_size=200) as client:
        result = client.fetch(USERS)
    ids = result.table["sourcedId"].to_pylist()
    assert len(ids) == len(set(ids)) == len(expected)
    assert set(ids) == expected
    assert result.stats.duplicates > 0


def test_429_with_retry_after_is_honoured(simulator, monkeypatch):
    sim = simulator("infinite_campus")
    sim.add_fault(
        path="/users",
        status=429,
        body=b"<html><title>Too Many Requests</title></html>",
        content_type="text/html",
        headers={"Retry-After": "2"},
        times=2,
    )
    sleeps: list[float] = []
    monkeypatch.setattr(client_module.time, "sleep", sleeps.append)
    with client_for(sim, retry=RetryPolicy(max_attempts=5, max_retry_after_s=60)) as client:
        result = client.fetch(USERS)
    assert sleeps == [2.0, 2.0]
    assert result.stats.retries == 2
    assert set(result.table["sourcedId"].to_pylist()) == served_ids(sim, "users")


def test_retry_after_as_http_date():
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("soon") is None


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retried(simulator, status):
    sim = simulator("focus")
    sim.add_fault(
        path="/enrollments", status=status, body=b"oops", content_type="text/plain", times=2, skip=1
    )
    with client_for(sim, page_size=1000) as client:
        result = client.fetch(ENROLLMENTS)
    assert set(result.table["sourcedId"].to_pylist()) == served_ids(sim, "enrollments")
    assert result.stats.retries == 2


@pytest.mark.parametrize("kind", ["drop", "truncate"])
def test_dropped_connections_and_cut_bodies_are_retried(simulator, kind):
    sim = simulator("focus")
    sim.add_fault(path="/users", kind=kind, times=1, skip=1)
    with client_for(sim, page_size=1000) as client:
        result = client.fetch(USERS)
    assert set(result.table["sourcedId"].to_pylist()) == served_ids(sim, "users")


def test_timeouts_are_retried(simulator):
    sim = simulator("focus")
    sim.add_fault(path="/orgs", kind="delay", delay_s=1.5, times=1)
    with client_for(sim, timeout_s=0.5) as client:
        result = client.fetch(COLLECTIONS["orgs"])
    assert result.stats.retries == 1
    assert result.table.num_rows == len(served_ids(sim, "orgs"))


def test_persistent_failure_names_tenant_endpoint_and_message(simulator):
    sim = simulator("focus")
    sim.add_fault(
        path="/users",
        status=503,
        body=b"<html><head><title>Service Unavailable - maintenance</title></head><body>x</body></html>",
        content_type="text/html",
        times=100,
    )
    with client_for(sim) as client, pytest.raises(OneRosterError) as caught:
        client.fetch(USERS)
    text = str(caught.value)
    assert (
        "'t1'" in text
        and "/ims/oneroster/v1p1/users" in text
        and "Service Unavailable - maintenance" in text
    )
    assert caught.value.retryable


def test_imsx_error_becomes_a_clear_error(simulator):
    sim = simulator("focus")
    sim.add_fault(
        path="/classes",
        status=400,
        body=imsx("failure", "invalid_filter_field", "Focus SIS: bad filter"),
        times=1,
    )
    with client_for(sim) as client, pytest.raises(OneRosterError) as caught:
        client.fetch(COLLECTIONS["classes"])
    assert "Focus SIS: bad filter" in str(caught.value)
    assert "invalid_filter_field" in str(caught.value)
    assert not caught.value.retryable


def test_error_envelope_inside_a_200(simulator):
    sim = simulator("focus")
    sim.add_fault(
        path="/courses", status=200, body=imsx("failure", "server_busy", "try later"), times=1
    )
    with client_for(sim) as client, pytest.raises(OneRosterError, match="try later"):
        client.fetch(COLLECTIONS["courses"])


def test_token_expiry_in_the_middle_of_a_pull(simulator):
    sim = simulator("focus")
    pages = []

    def expire_after_second_page(collection: str, offset: int) -> None:
        pages.append(offset)
        if len(pages) == 2:
            sim.expire_tokens()

    sim.on_page = expire_after_second_page
    auth = auth_for(sim)
    with client_for(sim, auth=auth) as client:
        result = client.fetch(USERS)
    assert auth.tokens_fetched == 2
    assert set(result.table["sourcedId"].to_pylist()) == served_ids(sim, "users")


def test_token_is_reused_until_it_expires(simulator):
    sim = simulator("focus")
    auth = auth_for(sim)
    with client_for(sim, auth=auth) as client:
        client.fetch(USERS)
        client.fetch(ENROLLMENTS)
    assert auth.tokens_fetched == 1
    posts = [r for r in sim.requests if r[0] == "POST"]
    assert len(posts) == 1


def test_wrong_client_secret_is_refused_without_leaking_it(simulator):
    sim = simulator("focus")
    with (
        client_for(sim, auth=auth_for(sim, secret="not-the-secret-XYZ")) as client,
        pytest.raises(OneRosterError) as caught,
    ):
        client.fetch(USERS)
    assert "token request refused" in str(caught.value)
    assert "not-the-secret-XYZ" not in str(caught.value)


def test_oauth1_signatures_are_checked_by_the_server(simulator):
    sim = simulator("progressbook")
    with client_for(sim) as client:
        assert client.fetch(COLLECTIONS["orgs"]).table.num_rows > 0
    assert all(h.startswith("OAuth ") and "HMAC-SHA256" in h for h in sim.auth_headers)
    with (
        client_for(sim, auth=auth_for(sim, secret="wrong")) as client,
        pytest.raises(OneRosterError, match="signature mismatch"),
    ):
        client.fetch(COLLECTIONS["orgs"])


def test_redirects_are_not_followed(simulator):
    sim = simulator("focus")
    sim.add_fault(
        path="/users", status=302, headers={"Location": "http://evil.example.com/steal"}, times=1
    )
    with client_for(sim) as client, pytest.raises(OneRosterError, match="not followed"):
        client.fetch(USERS)
    assert not any("evil" in path for _, path in sim.requests)


def _drop_rows_before(sim, name: str, fraction: float):
    frame = sim.frames[name]
    cut = int(len(frame) * fraction)
    victims = set(frame["sourcedId"].iloc[: max(1, cut // 10)])
    sim.mutate(name, frame[~frame["sourcedId"].isin(victims)])
    return victims


def test_deletions_during_the_pull_lose_no_surviving_record(simulator):
    sim = simulator(VENDORS["genesis"].with_(max_page_size=10_000))
    before = served_ids(sim, "enrollments")
    deleted: set[str] = set()
    calls = []

    def delete_behind(collection: str, offset: int) -> None:
        calls.append(offset)
        if collection == "enrollments" and len(calls) % 3 == 0 and offset > 0:
            frame = sim.frames[collection]
            gone = set(frame["sourcedId"].iloc[:5])
            deleted.update(gone)
            sim.mutate(collection, frame[~frame["sourcedId"].isin(gone)])

    sim.on_page = delete_behind
    with client_for(sim, page_size=200) as client:
        result = client.fetch(ENROLLMENTS)
    ids = result.table["sourcedId"].to_pylist()
    assert deleted, "the test must delete records during the pull"
    assert len(ids) == len(set(ids))
    assert before - deleted <= set(ids)
    assert result.stats.drift_rewinds > 0


def test_insertions_during_the_pull_duplicate_nothing(simulator):
    sim = simulator(VENDORS["genesis"].with_(max_page_size=10_000))
    before = served_ids(sim, "users")
    calls = []

    def insert_ahead(collection: str, offset: int) -> None:
        calls.append(offset)
        if collection == "users" and len(calls) % 2 == 0:
            frame = sim.frames[collection]
            extra = frame.head(3).assign(sourcedId=[f"aaa-new-{len(calls)}-{i}" for i in range(3)])
            sim.mutate(collection, pd.concat([frame, extra]))

    sim.on_page = insert_ahead
    with client_for(sim, page_size=150) as client:
        result = client.fetch(USERS)
    ids = result.table["sourcedId"].to_pylist()
    assert len(ids) == len(set(ids))
    assert before <= set(ids)


def test_bounded_concurrency(simulator):
    sim = simulator("infinite_campus")
    with client_for(sim, max_concurrency=2) as client:
        results = client.fetch_many(
            [COLLECTIONS[n] for n in ("orgs", "users", "classes", "courses")]
        )
    assert {n: r.table.num_rows for n, r in results.items()} == {
        n: len(served_ids(sim, n)) for n in results
    }


@given(
    ids=st.lists(st.one_of(st.none(), st.text("abcé", max_size=3)), max_size=8),
    anchor=st.one_of(st.none(), st.text("abcé", max_size=3)),
)
def test_page_ids_in_columns_answer_as_records_do(ids, anchor):
    records = [{"sourcedId": i} for i in ids]
    in_columns = PageIds(pa.table({"sourcedId": pa.array(ids, pa.string())}))
    one_by_one = PageIds(records)
    assert in_columns.first == one_by_one.first
    assert in_columns.ascending() == one_by_one.ascending()
    assert in_columns.greatest(anchor) == one_by_one.greatest(anchor)
    if anchor is not None:
        assert in_columns.contains(anchor) == one_by_one.contains(anchor)
        kept = in_columns.after(anchor)
        assert kept["sourcedId"].to_pylist() == [r["sourcedId"] for r in one_by_one.after(anchor)]


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (401, False),
        (403, False),
        (404, False),
        (422, False),
        (408, True),
        (429, True),
        (500, True),
        (503, True),
    ],
)
def test_one_retry_signal_decided_by_the_http_status(status, retryable):
    """OneRoster and Canvas errors say whether to retry the same way: a refused token (401)
    is not retried on either side, a throttled or failing server is."""
    from sis_pipelines.canvas.api import CanvasError

    assert OneRosterError("t", "/users", "no", status).retryable is retryable
    assert CanvasError("t", "/api/v1/x", "no", status).retryable is retryable
    assert CanvasError("t", "/api/v1/x", "the report did not finish").retryable  # no status
