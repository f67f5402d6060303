"""Send a night's gradebook requests to the SIS: in order, bounded, idempotent, and never
over a grade the SIS changed since we last sent it unless the tenant says so.

Order: categories, lineItems, results, then the removals (results before their lineItems).
A removal of a result the SIS changed since we sent it is not made under ``keep_sis``, nor
of a lineItem that still holds such a result or one the SIS owns.

The ledger remembers, per request key, the hash of the body last accepted by the SIS, the
sourcedId the SIS knows it by, and the score and status we sent. A request whose hash is in
the ledger is not sent again; a re-run after a partial failure sends only what failed or
changed. Before results go out, the SIS's current results of their classes are read again:
a grade that differs from what we last sent (or that we never sent) was changed in the SIS.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa

from ..oneroster.errors import OneRosterError
from .ledger import REMOVED, merged
from .payloads import PLACEHOLDER, body_hash
from .removals import LEDGER_COLUMNS, TEXT, empty_ledger
from .sis import SisGradebook

__all__ = ["LEDGER_COLUMNS", "PushResult", "concerning", "empty_ledger", "push"]
OUTCOME_COLUMNS = {
    "path": TEXT,
    # sent | unchanged | failed | skipped | removed | gone (already absent from the SIS)
    "status": TEXT,
    "http_status": "Int64",
    "error": TEXT,
    "key": TEXT,
    "kind": TEXT,
}

OUTCOME_SCHEMA = pa.schema(
    [(c, pa.int64() if t == "Int64" else pa.large_string()) for c, t in OUTCOME_COLUMNS.items()]
)


def outcome_table(outcomes: pd.DataFrame) -> pa.Table:
    """A part's outcomes as the outcomes file stores them."""
    return pa.Table.from_pandas(outcomes, preserve_index=False).cast(OUTCOME_SCHEMA)


class Known:
    """The ledger, looked up by request key: a district's holds a row per result we ever
    sent (millions), so it stays columns; a row becomes a dict only when it is asked for."""

    def __init__(self, ledger: pd.DataFrame):
        self._ledger = ledger.reset_index(drop=True)
        keys = self._ledger["key"].astype(object).to_numpy()
        self._at = dict(zip(keys, range(len(keys)), strict=True))
        self._hashes = self._ledger["body_hash"].astype(object).to_numpy()

    def body_hash(self, key: str) -> str | None:
        at = self._at.get(key)
        return None if at is None else self._hashes[at]

    def get(self, key: str) -> dict[str, Any] | None:
        at = self._at.get(key)
        if at is None:
            return None
        row = self._ledger.iloc[at]
        return {k: (None if pd.isna(v) else v) for k, v in row.items()}

    def _of_kind(self, kind: str) -> pd.DataFrame:
        ledger = self._ledger
        return ledger[(ledger["kind"] == kind).fillna(False) & ledger["sis_id"].notna()]

    def line_item_ids(self) -> dict[str, str]:
        """Our lineItems' SIS sourcedIds by key (what a result refers to)."""
        rows = self._of_kind("lineItem")
        return dict(zip(rows["key"].astype(object), rows["sis_id"].astype(object), strict=True))

    def result_sis_ids(self) -> set[str]:
        return set(self._of_kind("result")["sis_id"].astype(object))


def classes_of(requests: list[dict[str, Any]]) -> set[str]:
    return {r["class"] for r in requests if r.get("class")}


def concerning(ledger: pd.DataFrame, requests: list[dict[str, Any]]) -> pd.DataFrame:
    """The ledger's rows a part's requests can meet: their own, the lineItems their results
    hang on, their classes' (removals look at what else is ours there) and the categories.
    A district's ledger is a row per result ever sent; a part's requests concern thousands."""
    keys = {r["key"] for r in requests} | {
        r["line_item_key"] for r in requests if r.get("line_item_key")
    }
    classes = classes_of(requests)
    wanted = (
        ledger["key"].isin(keys)
        | ledger["class"].isin(classes).fillna(False)
        | ledger["kind"].eq("category").fillna(False)
    )
    return ledger[wanted]


@dataclass
class PushResult:
    outcomes: pd.DataFrame
    fresh: pd.DataFrame  # the ledger rows of what the SIS took, a row per key
    removed: set[str]  # the ledger keys of what left the SIS
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    before: pd.DataFrame | None = None  # the ledger the push was given

    def count(self, status: str) -> int:
        return int((self.outcomes["status"] == status).sum())

    @property
    def ledger(self) -> pd.DataFrame:
        """The ledger it was given with the push's changes."""
        if self.fresh.empty and not self.removed:
            return self.before
        return merged(self.before, self.fresh, self.removed)


@dataclass
class _Outcome:
    path: str
    status: str
    http_status: int | None
    error: str | None
    key: str
    kind: str


def push(
    sis: SisGradebook,
    requests: list[dict[str, Any]],
    ledger: pd.DataFrame,
    night: str,
    on_sis_change: str = "keep_sis",
    force: bool = False,
    max_concurrency: int = 2,
    on_progress: Callable[[str], None] | None = None,
    max_failure_streak: int = 10,
    streak: list[int] | None = None,
    acknowledged: Callable[[dict[str, Any]], None] | None = None,
) -> PushResult:
    """``acknowledged`` hears each ledger row the moment the SIS takes its request (and each
    key the SIS let go, marked ``removed``): a push killed mid-part loses none of them."""
    heard = acknowledged or (lambda row: None)
    known = Known(concerning(ledger, requests))
    updates: dict[str, dict[str, Any]] = {}
    removed: set[str] = set()
    outcomes: list[_Outcome] = []
    conflicts: list[dict[str, Any]] = []
    ids = known.line_item_ids()
    failed_keys: set[str] = set()
    # Consecutive requests the SIS failed after the client's retries: a SIS that is down is
    # not hammered with every remaining request; the rest waits for the re-run.
    streak = streak if streak is not None else [0]  # carried from one part to the next

    def send(request: dict[str, Any], digest: str) -> _Outcome:
        if streak[0] >= max_failure_streak:
            failed_keys.add(request["key"])
            return _Outcome(
                request["path"],
                "skipped",
                None,
                f"not sent: the SIS failed {streak[0]} requests in a row; a re-run sends it",
                request["key"],
                request["kind"],
            )
        try:
            http_status, answer = sis.put(request["path"], request["body"])
        except OneRosterError as exc:
            failed_keys.add(request["key"])
            if exc.status is None or exc.status >= 500 or exc.status == 429:
                streak[0] += 1
            return _Outcome(
                request["path"], "failed", exc.status, str(exc), request["key"], request["kind"]
            )
        record = next(iter(request["body"].values()))
        returned = (answer.get(request["kind"]) or {}) if isinstance(answer, dict) else {}
        sis_id = record.get("sourcedId") or returned.get("sourcedId")
        if sis_id is None:
            failed_keys.add(request["key"])
            return _Outcome(
                request["path"],
                "failed",
                None,
                f"tenant {sis.tenant!r}, SIS PUT {request['path']}: the SIS returned no sourcedId for a new {request['kind']}",
                request["key"],
                request["kind"],
            )
        streak[0] = 0
        ids[request["key"]] = sis_id
        updates[request["key"]] = row = {
            "key": request["key"],
            "sis_id": sis_id,
            "body_hash": digest,
            "score": record.get("score"),
            "score_status": record.get("scoreStatus"),
            "night": night,
            "kind": request["kind"],
            "class": request.get("class"),
            "course": request.get("course"),
            "line_item_key": request.get("line_item_key"),
            "student": request.get("student"),
        }
        heard(row)
        return _Outcome(request["path"], "sent", http_status, None, request["key"], request["kind"])

    def unchanged(request: dict[str, Any], digest: str) -> bool:
        return not force and known.body_hash(request["key"]) == digest

    def run(batch: list[tuple[dict[str, Any], str]]) -> None:
        with ThreadPoolExecutor(max_workers=max_concurrency) as pool:
            outcomes.extend(pool.map(lambda pair: send(*pair), batch))

    phases = {"category": [], "lineItem": [], "result": []}  # type: dict[str, list[dict[str, Any]]]
    removals = [r for r in requests if r.get("removal")]
    for request in requests:
        if not request.get("removal"):
            phases[request["kind"]].append(request)

    for kind in ("category", "lineItem"):
        batch = []
        for request in phases[kind]:
            digest = body_hash(request)
            if unchanged(request, digest):
                outcomes.append(
                    _Outcome(request["path"], "unchanged", None, None, request["key"], kind)
                )
            else:
                batch.append((request, digest))
        run(batch)
        if on_progress:
            on_progress(f"{kind}: {len(batch)} sent or tried")

    pending: list[tuple[dict[str, Any], str]] = []
    for request in phases["result"]:
        digest = body_hash(request)
        parent = request["line_item_key"]
        if parent in failed_keys or parent not in ids:
            outcomes.append(
                _Outcome(
                    request["path"],
                    "skipped",
                    None,
                    f"its lineItem {parent} was not accepted by the SIS",
                    request["key"],
                    "result",
                )
            )
            continue
        if unchanged(request, digest):
            outcomes.append(
                _Outcome(request["path"], "unchanged", None, None, request["key"], "result")
            )
            continue
        pending.append((_resolve(request, ids[parent]), digest))

    active = _active_results(
        sis,
        {r["class"] for r, _ in pending if r.get("class")}
        | {r["class"] for r in removals if r.get("class")},
    )
    current = {
        ((r.get("lineItem") or {}).get("sourcedId"), (r.get("student") or {}).get("sourcedId")): r
        for r in active
    }
    batch = []
    for request, digest in pending:
        record = request["body"]["result"]
        found = current.get((record["lineItem"]["sourcedId"], record["student"]["sourcedId"]))
        conflict = _conflict(found, known.get(request["key"]), record)
        if conflict is not None:
            conflicts.append({"key": request["key"], "path": request["path"], **conflict})
            if on_sis_change != "overwrite":
                outcomes.append(
                    _Outcome(
                        request["path"],
                        "skipped",
                        None,
                        f"the SIS changed this grade after our last push (SIS {conflict['sis_score']!r} "
                        f"{conflict['sis_status']!r}, last sent {conflict['sent_score']!r}); kept the SIS's "
                        "(gpb.on_sis_change: keep_sis)",
                        request["key"],
                        "result",
                    )
                )
                continue
        batch.append((request, digest))
    run(batch)

    if removals:
        outcomes.extend(
            _remove(
                sis,
                removals,
                {r["sourcedId"]: r for r in active},
                known,
                on_sis_change,
                removed,
                conflicts,
                lambda batch: _pooled(batch, max_concurrency),
                heard,
            )
        )
        if on_progress:
            on_progress(f"removals: {len(removals)} tried")

    frame = pd.DataFrame([o.__dict__ for o in outcomes], columns=list(OUTCOME_COLUMNS)).astype(
        OUTCOME_COLUMNS
    )
    # In key order: the SIS answers in whatever order the threads finish, and a night's
    # stored ledger is the same bytes whichever executor ran it.
    fresh = pd.DataFrame(
        [updates[key] for key in sorted(updates)], columns=list(LEDGER_COLUMNS)
    ).astype(LEDGER_COLUMNS)
    return PushResult(frame, fresh, removed - set(updates), conflicts, ledger)


def _pooled(calls: list[Callable[[], _Outcome]], max_concurrency: int) -> list[_Outcome]:
    with ThreadPoolExecutor(max_workers=max_concurrency) as pool:
        return list(pool.map(lambda call: call(), calls))


def _remove(
    sis: SisGradebook,
    removals: list[dict[str, Any]],
    current: dict[str, dict[str, Any]],
    known: Known,
    on_sis_change: str,
    removed: set[str],
    conflicts: list[dict[str, Any]],
    run: Callable[[list[Callable[[], _Outcome]]], list[_Outcome]],
    heard: Callable[[dict[str, Any]], None],
) -> list[_Outcome]:
    """Results first, then lineItems; never a grade the SIS changed (``keep_sis``) nor a
    lineItem that holds a result that is not ours as we sent it. ``current``: the SIS's
    active results of their classes, by sourcedId."""
    ours = known.result_sis_ids()
    held_items: set[str] = set()
    out: list[_Outcome] = []

    def hold(request: dict[str, Any], why: str) -> None:
        out.append(_Outcome(request["path"], "skipped", None, why, request["key"], request["kind"]))

    def call(request: dict[str, Any]) -> Callable[[], _Outcome]:
        def send() -> _Outcome:
            if request["method"] != "FORGET":
                try:
                    if request["method"] == "DELETE":
                        status = sis.delete(request["path"])
                    else:
                        status, _ = sis.put(request["path"], request["body"])
                except OneRosterError as exc:
                    return _Outcome(
                        request["path"],
                        "failed",
                        exc.status,
                        str(exc),
                        request["key"],
                        request["kind"],
                    )
            else:
                status = None
            removed.add(request["key"])
            heard({"key": request["key"], "class": request.get("class"), REMOVED: True})
            gone = request["method"] == "FORGET" or status == 404
            return _Outcome(
                request["path"],
                "gone" if gone else "removed",
                status,
                None,
                request["key"],
                request["kind"],
            )

        return send

    results, items = [], []
    for request in removals:
        if request["kind"] == "result":
            entry = known.get(request["key"]) or {}
            found = current.get(entry.get("sis_id"))
            changed = _conflict(found, entry, {}) if found is not None else None
            if changed is not None and on_sis_change != "overwrite":
                conflicts.append({"key": request["key"], "path": request["path"], **changed})
                held_items.add(request["line_item_key"])
                hold(
                    request,
                    "not removed: the SIS changed this grade after our last push; kept the SIS's "
                    "(gpb.on_sis_change: keep_sis)",
                )
                continue
            results.append(call(request))
        else:
            items.append(request)
    out += run(results)
    by_item: dict[str, list[dict[str, Any]]] = {}
    for r in current.values():
        by_item.setdefault((r.get("lineItem") or {}).get("sourcedId"), []).append(r)
    calls = []
    for request in items:
        sis_id = (known.get(request["key"]) or {}).get("sis_id")
        foreign = [
            r
            for r in by_item.get(sis_id, [])
            if r["sourcedId"] not in ours and r.get("score") is not None
        ]
        if request["key"] in held_items or (foreign and on_sis_change != "overwrite"):
            hold(
                request,
                "not removed: the lineItem holds grades the SIS owns or changed; kept (gpb.on_sis_change: keep_sis)",
            )
            continue
        calls.append(call(request))
    return out + run(calls)


def _resolve(request: dict[str, Any], line_item_id: str) -> dict[str, Any]:
    """A result whose lineItem the SIS named (Modified): its placeholder replaced."""
    ref = request["body"]["result"]["lineItem"]
    if not PLACEHOLDER.match(ref["sourcedId"]):
        return request
    resolved = copy.deepcopy(request)
    new_ref = resolved["body"]["result"]["lineItem"]
    new_ref["href"] = new_ref["href"].replace(ref["sourcedId"], line_item_id)
    new_ref["sourcedId"] = line_item_id
    return resolved


def _active_results(sis: SisGradebook, classes: set[str]) -> list[dict[str, Any]]:
    """The SIS's active results of the classes, read once for the conflict checks of the
    results we send and of those we remove."""
    return [
        r
        for class_id in sorted(classes)
        for r in sis.class_results(class_id)
        if r.get("status", "active") == "active"
    ]


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    try:
        return abs(float(a) - float(b)) < 1e-9
    except (TypeError, ValueError):
        return str(a) == str(b)


def _conflict(
    found: dict[str, Any] | None, sent: dict[str, Any] | None, ours: dict[str, Any]
) -> dict[str, Any] | None:
    """Whether the SIS holds a grade for this result that we did not put there."""
    if found is None:
        return None
    sis_score, sis_status = found.get("score"), found.get("scoreStatus")
    if sent is not None:
        if _same(sis_score, sent.get("score")) and sis_status == sent.get("score_status"):
            return None
    elif sis_score is None or (
        _same(sis_score, ours.get("score")) and sis_status == ours.get("scoreStatus")
    ):
        return None  # nothing graded there yet, or already what we would send
    return {
        "sis_score": sis_score,
        "sis_status": sis_status,
        "sent_score": None if sent is None else sent.get("score"),
        "our_score": ours.get("score"),
    }
