"""Grade passback push against the OneRoster simulator's stateful SIS gradebook: Standard and
Modified flows, idempotency, partial failure, faults, and grades the SIS changed."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import orjson
import pandas as pd
import pytest
from upath import UPath

from sis_pipelines.core.lake import Lake
from sis_pipelines.core.storage import read_frame, write_frame
from sis_pipelines.gpb.ledger import LedgerChanges
from sis_pipelines.gpb.passback import send
from sis_pipelines.gpb.payloads import SisState, build
from sis_pipelines.gpb.push import LEDGER_COLUMNS, empty_ledger, push
from sis_pipelines.gpb.sis import SisGradebook
from sis_pipelines.gpb.state import read_ledger
from sis_pipelines.oneroster.client import OneRosterClient
from sis_pipelines.oneroster.errors import OneRosterError
from sis_pipelines.simulator.server import SimulatorServer
from sis_pipelines.simulator.sis_gradebook import SisGradebook as SimulatedGradebook

from .gpb_world import CLASSES, NIGHT, SESSIONS, canvas_book, settings, tenant
from .support import FAST_RETRY, auth_for


@pytest.fixture
def sis_world(simulator) -> Iterator[Callable[..., tuple[SimulatorServer, SisGradebook]]]:
    clients: list[OneRosterClient] = []

    def start(vendor: str = "genesis", **store: object) -> tuple[SimulatorServer, SisGradebook]:
        version = "1.2" if vendor == "infinite_campus" else "1.1"
        sim = simulator(vendor, gradebook=SimulatedGradebook(version, **store))
        headers = {}
        if store.get("vendor_authorization"):
            headers = {"x-vendor-authorization": str(store["vendor_authorization"])}
        client = OneRosterClient(
            "gpb-t",
            sim.gradebook_url,
            auth_for(sim),
            page_size=50,
            retry=FAST_RETRY,
            headers=headers,
        )
        clients.append(client)
        return sim, SisGradebook(client)

    yield start
    for client in clients:
        client.close()


def payloads(sis: SisGradebook, t, book=None, known=None):
    book = book if book is not None else canvas_book()
    state = SisState(categories=sis.categories())
    for class_id in ("c1", "c2"):
        state.line_items[class_id] = sis.class_line_items(class_id)
        state.results[class_id] = sis.class_results(class_id)
    s = settings(t, sis.client.base_url)
    return build(book, CLASSES, SESSIONS, state, known or {}, s, NIGHT)


def sis_results(sis: SisGradebook) -> dict[tuple[str, str], tuple[object, str]]:
    return {
        (r["lineItem"]["sourcedId"], r["student"]["sourcedId"]): (r.get("score"), r["scoreStatus"])
        for c in ("c1", "c2")
        for r in sis.class_results(c)
    }


def test_standard_end_to_end_then_nothing_new(sis_world):
    sim, sis = sis_world("genesis")
    t = tenant(default_category="Homework")
    out = payloads(sis, t)
    result = push(sis, out.requests, empty_ledger(), str(NIGHT))
    assert result.count("sent") == len(out.requests) and result.count("failed") == 0
    assert set(result.outcomes["http_status"].dropna()) == {201}
    stored = sis_results(sis)
    sent = {
        (
            r["body"]["result"]["lineItem"]["sourcedId"],
            r["body"]["result"]["student"]["sourcedId"],
        ): (
            r["body"]["result"].get("score"),
            r["body"]["result"]["scoreStatus"],
        )
        for r in out.requests
        if r["kind"] == "result"
    }
    assert stored == sent  # a PUT is visible to a later GET, record for record
    # The same night again: the payloads are the same, nothing is sent.
    puts = sim.gradebook.puts.copy()
    again = push(sis, payloads(sis, t).requests, result.ledger, str(NIGHT))
    assert again.count("sent") == 0 and again.count("unchanged") == len(out.requests)
    assert sim.gradebook.puts == puts


def test_modified_keeps_the_sourced_ids_the_sis_allocates(sis_world):
    _, sis = sis_world("genesis")
    t = tenant(endpoints="modified", default_category="Homework")
    out = payloads(sis, t)
    result = push(sis, out.requests, empty_ledger(), str(NIGHT))
    assert result.count("failed") == 0
    ledger = result.ledger.set_index("key")
    line_items = [r for r in out.requests if r["kind"] == "lineItem"]
    allocated = {ledger.loc[r["key"], "sis_id"] for r in line_items}
    assert all(str(a).startswith("sis-lineitem-") for a in allocated)
    assert {k[0] for k in sis_results(sis)} <= allocated
    # Next night the lineItems are addressed by the SIS's ids and nothing is re-sent.
    known = dict(zip(result.ledger["key"], result.ledger["sis_id"], strict=True))
    again = payloads(sis, t, known=known)
    assert all(r["path"] != "/lineItems" for r in again.requests if r["kind"] == "lineItem")
    second = push(sis, again.requests, result.ledger, str(NIGHT))
    assert second.count("sent") == 0


def test_a_rerun_after_a_partial_failure_sends_only_what_failed(sis_world):
    sim, sis = sis_world("genesis")
    out = payloads(sis, tenant(default_category="Homework"))
    results = [r for r in out.requests if r["kind"] == "result"]
    broken_item = next(r for r in out.requests if r["kind"] == "lineItem")
    sim.gradebook.fail_puts = {results[-1]["path"]: 1000, broken_item["path"]: 1000}
    first = push(sis, out.requests, empty_ledger(), str(NIGHT))
    failed = first.outcomes[first.outcomes["status"] == "failed"]
    assert set(failed["path"]) == {results[-1]["path"], broken_item["path"]}
    assert failed["error"].str.contains("'gpb-t'").all()
    assert failed["error"].str.contains(results[-1]["path"], regex=False).any()
    skipped = first.outcomes[first.outcomes["status"] == "skipped"]
    assert len(skipped) == sum(1 for r in results if r["line_item_key"] == broken_item["key"])
    assert skipped["error"].str.contains("was not accepted").all()
    sim.gradebook.fail_puts = {}
    before = len(sim.gradebook.puts)
    second = push(sis, out.requests, first.ledger, str(NIGHT))
    assert second.count("failed") == 0
    assert len(sim.gradebook.puts) - before == 2 + len(skipped)
    assert second.count("sent") == 2 + len(skipped)


def test_transient_faults_leave_the_same_gradebook_as_none(sis_world):
    _, clean = sis_world("genesis")
    t = tenant(default_category="Homework")
    push(clean, payloads(clean, t).requests, empty_ledger(), str(NIGHT))
    sim, sis = sis_world("genesis")
    sim.add_fault(path="/results/", status=503, times=4, skip=3)
    sim.add_fault(path="/lineItems/", status=429, times=2, headers={"Retry-After": "0"})
    sim.add_fault(path="/results/", kind="drop", times=2, skip=10)
    sim.add_fault(path="/classes/", status=502, times=2)
    result = push(sis, payloads(sis, t).requests, empty_ledger(), str(NIGHT))
    assert result.count("failed") == 0
    assert sis_results(sis) == sis_results(clean)


def test_a_grade_changed_in_the_sis_is_not_overwritten(sis_world):
    sim, sis = sis_world("genesis")
    t = tenant(default_category="Homework")
    out = payloads(sis, t)
    first = push(sis, out.requests, empty_ledger(), str(NIGHT))
    target = next(
        r for r in out.requests if r["kind"] == "result" and r["body"]["result"].get("score")
    )
    # A teacher changes the grade in the SIS; later Canvas regrades the same submission.
    sim.gradebook.teacher_sets(target["path"].split("/")[-1], 0.5)
    book = canvas_book()
    lookup = book.submissions["assignment_id"].astype(int) == int(
        target["line_item_key"].split(":")[1]
    )
    book.submissions.loc[lookup, "score"] = book.submissions.loc[lookup, "score"] + 1
    again = payloads(sis, t, book=book)
    # Faults on the way do not change the rule.
    sim.add_fault(path="/classes/", status=503, times=2)
    kept = push(sis, again.requests, first.ledger, str(NIGHT))
    row = kept.outcomes.set_index("path").loc[target["path"]]
    assert row["status"] == "skipped" and "SIS changed this grade" in row["error"]
    assert any(c["path"] == target["path"] for c in kept.conflicts)
    line_item = target["body"]["result"]["lineItem"]["sourcedId"]
    student = target["body"]["result"]["student"]["sourcedId"]
    assert sis_results(sis)[(line_item, student)][0] == 0.5
    # The tenant may choose to overwrite; it is still reported.
    forced = push(sis, again.requests, kept.ledger, str(NIGHT), on_sis_change="overwrite")
    assert forced.outcomes.set_index("path").loc[target["path"], "status"] == "sent"
    assert any(c["path"] == target["path"] for c in forced.conflicts)
    assert sis_results(sis)[(line_item, student)][0] != 0.5


def test_a_grade_only_the_sis_holds_is_kept(sis_world):
    sim, sis = sis_world("genesis")
    t = tenant(default_category="Homework")
    out = payloads(sis, t)
    items_only = [r for r in out.requests if r["kind"] != "result"]
    ledger = push(sis, items_only, empty_ledger(), str(NIGHT)).ledger
    target = next(
        r for r in out.requests if r["kind"] == "result" and r["body"]["result"].get("score")
    )
    body = {"result": {**target["body"]["result"], "score": 99.0}}
    sim.gradebook.put(target["path"].strip("/").split("/"), orjson.dumps(body))
    result = push(sis, out.requests, ledger, str(NIGHT))
    assert result.outcomes.set_index("path").loc[target["path"], "status"] == "skipped"


def test_the_conflict_check_failing_sends_no_result(sis_world):
    sim, sis = sis_world("genesis")
    out = payloads(sis, tenant(default_category="Homework"))
    sim.add_fault(path="/classes/", status=503, times=1000)
    with pytest.raises(OneRosterError, match="gpb-t"):
        push(sis, out.requests, empty_ledger(), str(NIGHT))
    assert not [p for p, _ in sim.gradebook.puts if p.startswith("/results/")]


def test_infinite_campus_needs_its_vendor_header(sis_world, simulator):
    secret = "key-1:vendor-secret-xyz"
    sim, sis = sis_world("infinite_campus", vendor_authorization=secret)
    assert sis.categories()  # with the header
    bare = OneRosterClient("gpb-t", sim.gradebook_url, auth_for(sim), retry=FAST_RETRY)
    with pytest.raises(OneRosterError) as caught:
        SisGradebook(bare).categories()
    bare.close()
    assert caught.value.status == 401 and "x-vendor-authorization" in str(caught.value)
    assert "vendor-secret-xyz" not in str(caught.value)
    t = tenant(version="1.2", default_category="Homework")
    out = payloads(sis, t)
    result = push(sis, out.requests, empty_ledger(), str(NIGHT))
    assert result.count("failed") == 0 and result.count("sent") == len(out.requests)


def _parts(requests: list, stop_after: int | None = None) -> Iterator[list]:
    """The requests a class at a time (lineItems with their results), ``stop_after`` parts then
    the process stops (a worker killed mid-night)."""
    by_class: dict[str, list] = {}
    for r in requests:
        by_class.setdefault(r.get("class") or "", []).append(r)
    for n, part in enumerate(by_class.values()):
        if n == stop_after:
            raise KeyboardInterrupt
        yield part


def test_a_push_stopped_mid_night_keeps_what_the_sis_took(sis_world, tmp_path):
    """Each part's ledger changes are journaled as it ends and the ledger is stored once at
    the end: a push stopped after one class keeps that class's objects, its outcomes file is
    not half-written, and the re-run sends only the other class."""
    sim, sis = sis_world("genesis")
    t = tenant(default_category="Homework")
    out = payloads(sis, t)
    lake = Lake(UPath(tmp_path))
    outcomes = lake.gpb_outcomes(NIGHT, "gpb-t")
    with pytest.raises(KeyboardInterrupt):
        send(lake, sis, "gpb-t", t, _parts(out.requests, stop_after=1), "night", False, outcomes)
    assert not outcomes.exists()
    kept = read_ledger(lake, "gpb-t")
    first_class = {r["key"] for r in next(_parts(out.requests))}
    assert first_class <= set(kept["key"]) and len(kept) == len(first_class)
    puts = len(sim.gradebook.puts)
    figures = send(lake, sis, "gpb-t", t, _parts(out.requests), "night", False, outcomes)
    assert figures["unchanged"] == len(first_class)
    assert len(sim.gradebook.puts) - puts == figures["sent"] == len(out.requests) - len(first_class)
    assert len(read_frame(outcomes)) == len(out.requests)
    assert len(read_ledger(lake, "gpb-t")) == len(out.requests)
    assert not list(lake.gpb_ledger_journal("gpb-t").glob("*"))  # folded into the ledger


def rows(*keys: str, digest: str = "h1", class_id: str | None = None) -> pd.DataFrame:
    """Ledger rows of ``keys``."""
    return (
        pd.DataFrame(
            {
                "key": list(keys),
                "sis_id": [f"sis-{k}" for k in keys],
                "body_hash": digest,
                "class": class_id,
            }
        )
        .reindex(columns=list(LEDGER_COLUMNS))
        .astype(LEDGER_COLUMNS)
    )


def test_a_later_part_sees_what_an_earlier_part_changed_in_its_classes(tmp_path):
    """The journal is read back where a part meets a class an earlier part changed (the
    removals come last and meet every class); the stored ledger keeps the latest of a key."""
    lake = Lake(UPath(tmp_path))
    write_frame(
        pd.concat([rows("a", "b", class_id="c1"), rows("z", class_id="c9")]),
        lake.gpb_ledger_file("t"),
    )
    changes = LedgerChanges(lake, "t", read_ledger(lake, "t"))
    changes.record(rows("b", digest="h2", class_id="c1"), set())
    changes.record(rows("b", digest="h3", class_id="c1"), {"a"})
    seen = changes.concerning(lambda led: led, {"c1"}).set_index("key")
    assert sorted(seen.index) == ["b", "z"] and seen.loc["b", "body_hash"] == "h3"
    untouched = changes.concerning(lambda led: led, {"c9"})  # the journal is not read
    assert sorted(untouched["key"]) == ["a", "b", "z"]
    changes.store()
    stored = lake.read_gpb_ledger("t", empty_ledger()).set_index("key")
    assert sorted(stored.index) == ["b", "z"] and stored.loc["b", "body_hash"] == "h3"
    assert not list(lake.gpb_ledger_journal("t").glob("*"))


def test_a_journal_left_by_a_killed_push_is_read_with_the_ledger(tmp_path):
    """A worker killed before the ledger was stored whole leaves the journal: the ledger is
    read with it applied, in order; stored again, applying it again changes nothing."""

    lake = Lake(UPath(tmp_path))
    write_frame(rows("a", "b", "c"), lake.gpb_ledger_file("t"))
    killed = LedgerChanges(lake, "t", read_ledger(lake, "t"))
    killed.record(rows("b", "d", digest="h2"), set())
    killed.record(rows("d", digest="h3"), {"c"})
    # The worker dies here: no store.
    ledger = read_ledger(lake, "t").set_index("key")
    assert sorted(ledger.index) == ["a", "b", "d"]
    assert ledger.loc["b", "body_hash"] == "h2" and ledger.loc["d", "body_hash"] == "h3"
    journal = sorted(lake.gpb_ledger_journal("t").glob("*.parquet"))
    copies = [(p.name, p.read_bytes()) for p in journal]
    nothing_new = LedgerChanges(lake, "t", read_ledger(lake, "t"))
    assert sorted(nothing_new.concerning(lambda led: led, set())["key"]) == ["a", "b", "d"]
    nothing_new.store()  # folds the journal into the stored ledger
    assert not list(lake.gpb_ledger_journal("t").glob("*"))
    stored = lake.read_gpb_ledger("t", empty_ledger())
    assert sorted(stored["key"]) == ["a", "b", "d"]
    for name, data in copies:  # killed again after the store, before the journal went
        (lake.gpb_ledger_journal("t") / name).write_bytes(data)
    assert read_ledger(lake, "t").set_index("key").sort_index().equals(ledger.sort_index())


def test_acknowledgements_are_written_through_on_a_local_lake_only(tmp_path):
    """A local lake keeps each acknowledgement as it comes; an object store writes a file only
    when it is closed, so there the part's journal entry is what a crash keeps."""
    local = LedgerChanges(Lake(UPath(tmp_path)), "t", empty_ledger())
    acks = local.acknowledgements()
    acks({"key": "k1", "class": "c1", "body_hash": "h"})
    assert acks.path.read_bytes().count(b"\n") == 1  # there before the part ends
    local.record(rows("k1", class_id="c1"), set(), acks)
    assert not acks.path.exists() and len(list(acks.path.parent.glob("*.parquet"))) == 1
    remote = LedgerChanges(Lake(UPath("memory://acks-test")), "t", empty_ledger())
    assert remote.acknowledgements() is None


def test_a_first_pass_that_sends_nothing_stores_an_empty_ledger(tmp_path):
    """A tenant's first night in the summer (every term closed) sends nothing: its ledger is
    stored empty, and read back as such."""
    lake = Lake.at(UPath(tmp_path))
    changes = LedgerChanges(lake, "t", read_ledger(lake, "t"))
    changes.store()
    assert lake.gpb_ledger_file("t").exists()
    assert read_ledger(lake, "t").empty
