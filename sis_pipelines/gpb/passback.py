"""Grade passback, night by night: read the Canvas gradebook of the courses we provisioned,
turn it into the night's OneRoster requests (what the gradebook implies, and the removals
that make the SIS converge to it), and send them to the SIS gradebook.

Each step reads and writes through the lake; the Dagster assets call them one each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, BinaryIO

import pandas as pd
import pyarrow.parquet as pq
from upath import UPath

from ..canvas.lifecycle import ended
from ..core.errors import SourceError, StoredStateError
from ..core.figures import Check, Figures, Markdown, guard_check
from ..core.lake import Lake
from ..core.nights import end_of_night, utc_stamp
from ..core.storage import COMPRESSION, publish, read_frame, write_frame
from ..core.tenant_night import TenantNight
from ..core.tenants import Tenant, removal_method
from .canvas_gradebook import CanvasGradebook, read_gradebook
from .ledger import LedgerChanges
from .payloads import Payloads, Settings, SisState, build, students_by_class
from .push import OUTCOME_SCHEMA, PushResult, classes_of, concerning, outcome_table, push
from .removals import RemovalPlan, plan_removals
from .sis import SisGradebook
from .state import (
    courses_passed_back,
    load_gradebook,
    read_ledger,
    read_request_parts,
    record_pass,
    store_gradebook,
    write_request_lines,
)

if TYPE_CHECKING:
    from ..services.connect import Services


class GradesNotSent(SourceError):
    """Some of the night's requests failed; a re-run sends only those and what changed."""

    retryable = True

    def __init__(self, message: str, figures: Figures):
        super().__init__(message)
        self.figures = figures


def passes_back(tenant: Tenant) -> bool:
    return tenant.gpb.endpoints != "off" and tenant.canvas is not None


def provisioned_courses(
    lake: Lake, tenant_id: str, night: date | str, days_after_term: int | None = None
) -> list[str]:
    """The active Canvas courses the night provisioned (SIS course ids); with
    ``days_after_term``, those whose term ended longer ago than that are left out (their
    grades in the SIS are final: nothing is sent to them, nothing of theirs removed)."""
    courses_path = lake.canvas_file("courses", night, tenant_id)
    if not courses_path.exists():
        raise StoredStateError(
            f"tenant {tenant_id!r}, night {night}: no Canvas mapping; materialize canvas/mapping first"
        )
    courses = read_frame(courses_path)
    active = (courses["status"].astype("string") == "active").fillna(False).to_numpy(bool)
    terms_path = lake.canvas_file("terms", night, tenant_id)
    if days_after_term is not None and terms_path.exists() and "term_id" in courses:
        terms = read_frame(terms_path).drop_duplicates("term_id").set_index("term_id")
        ends = courses["term_id"].astype(object).map(terms["end_date"])
        closing = date.fromisoformat(str(night)) - timedelta(days=days_after_term)
        active &= ~ended(ends, closing)
    return sorted(courses.loc[active, "course_id"].astype(str))


def read_canvas_gradebook(lake: Lake, services: Services, tn: TenantNight) -> Figures:
    """The whole gradebook of every active course the night provisioned."""
    tenant_id, tenant, night = tn.id, tn.tenant, tn.night
    course_ids = provisioned_courses(lake, tenant_id, night, tenant.gpb.days_after_term)
    until = services.canvas_now(tenant, night)
    passed = courses_passed_back(lake, tenant_id)
    with services.canvas(tenant_id, tenant, night) as canvas:
        book = read_gradebook(
            canvas,
            course_ids,
            passed,
            tenant.canvas.max_concurrency,
            tenant.canvas.gradebook_discovery,
        )
        requests, throttled = canvas.requests, canvas.throttled
    window = store_gradebook(lake, tenant_id, night, book, until)
    return {
        **_book_figures(book, len(course_ids)),
        "read_as_at": window["graded_until"],
        "canvas_requests": requests,
        "canvas_throttled": throttled,
    }


def _book_figures(book: CanvasGradebook, courses: int) -> Figures:
    return {
        "courses": courses,
        "courses_read": len(book.courses),
        "courses_with_assignments": int(book.assignments["course_id"].nunique()),
        "courses_not_in_canvas": len(book.missing_courses),
        "assignments": len(book.assignments),
        "submissions": len(book.submissions),
        "students": len(book.students),
    }


REMOVAL_GUARD = "removal_guard"


@dataclass
class Plan:
    """A pass's requests and the removal guard's verdict on its removals."""

    payloads: Payloads  # its requests are empty when they went to a sink as they were built
    removals: RemovalPlan
    guard_passed: bool
    overridden: bool
    sis_reads: int
    counts: dict[str, int]  # requests that add or update, by kind

    def check(self) -> Check:
        """The removal guard's check on the pass's removals."""
        return guard_check(
            REMOVAL_GUARD,
            passed=self.guard_passed,
            overridden=self.overridden,
            refused=": nothing will be pushed",
            table=Markdown(self.removals.table()),
            figures=self.removals.figures(),
        )

    @property
    def sent_removals(self) -> int:
        return len(self.removals.requests) if self.guard_passed or self.overridden else 0

    def figures(self, tenant: Tenant) -> Figures:
        payloads = self.payloads
        return {
            "requests": sum(self.counts.values()) + self.sent_removals,
            **{f"{k}_requests": self.counts.get(k, 0) for k in ("category", "lineItem", "result")},
            **self.removals.figures(),
            "removal": removal_method(tenant),
            "removal_guard": "passed"
            if self.guard_passed
            else (
                "over the limit, allowed on purpose"
                if self.overridden
                else "over the limit: removals held"
            ),
            "not_sent": len(payloads.report),
            "endpoints": tenant.gpb.endpoints,
            "sis_reads": self.sis_reads,
            **_not_sent_why(payloads.report),
        }


# Courses planned at once: a part's SIS lineItems and results, and its requests, are held in
# memory; a district's whole night is millions of them.
COURSES_PER_PART = 100


def _plan_part(
    book: CanvasGradebook,
    classes: pd.DataFrame,
    academic_sessions: pd.DataFrame,
    sis: SisGradebook,
    ledger: pd.DataFrame,
    tenant: Tenant,
    settings: Settings,
    night: date,
    categories: list[dict[str, Any]],
) -> tuple[Payloads, RemovalPlan]:
    """What a part of the gradebook implies for the SIS, and the removals of ours in it."""
    students = students_by_class(book, settings.prefix)
    # Our records in the part's courses and classes: a district's ledger holds every result
    # we ever sent, and the part looks at its own.
    ledger = ledger[
        ledger["course"].isin(book.courses)
        | ledger["class"].isin(students["class"])
        | ledger["kind"].eq("category").fillna(False)
    ]
    # The SIS ids we know of the part's records (not the district's: a dict of every result
    # ever sent would be hundreds of megabytes).
    known_ids = dict(zip(ledger["key"].astype(str), ledger["sis_id"].astype(str), strict=True))
    involved = students[students["course_id"].isin(book.assignments["course_id"])]
    ours = ledger[
        (ledger["course"].isin(book.courses) | ledger["class"].isin(involved["class"]))
        & ledger["kind"].ne("category").fillna(True)
    ]
    state = SisState(categories=categories)
    for class_id in sorted(set(involved["class"]) | set(ours["class"].dropna())):
        state.line_items[class_id] = sis.class_line_items(class_id)
        state.results[class_id] = sis.class_results(class_id)
    payloads = build(book, classes, academic_sessions, state, known_ids, settings, night)
    wanted = {r["key"] for r in payloads.requests}
    removals = plan_removals(
        ledger,
        wanted,
        book,
        state,
        settings.prefix,
        removal_method(tenant),
        utc_stamp(end_of_night(night)),
    )
    return payloads, removals


def plan(
    book: CanvasGradebook,
    classes: pd.DataFrame,
    academic_sessions: pd.DataFrame,
    sis: SisGradebook,
    ledger: pd.DataFrame,
    tenant: Tenant,
    night: date,
    allow_mass_removal: bool = False,
    sink: Callable[[list[dict[str, Any]]], None] | None = None,
) -> Plan:
    """What the gradebook implies for the SIS, from what it holds now: the requests that add
    and update, and the removals of ours that it no longer implies (held back when the guard
    stops them and the run does not allow it).

    Planned ``COURSES_PER_PART`` courses at a time, each part's requests handed to ``sink``
    as they are built (kept in the plan without one); the removals, judged by the guard over
    the whole pass, come last."""
    base = sis.client.base_url
    settings = Settings.of(tenant, _rostering_base(tenant, base), base)
    categories = sis.categories()
    counts: dict[str, int] = {}
    kept: list[dict[str, Any]] = []
    emit = sink if sink is not None else kept.extend
    reports: list[pd.DataFrame] = []
    removals = RemovalPlan([], {}, {})
    seen_categories: set[str] = set()
    courses = sorted(book.courses)
    for start in range(0, max(len(courses), 1), COURSES_PER_PART):
        part = book.of_courses(courses[start : start + COURSES_PER_PART])
        payloads, part_removals = _plan_part(
            part,
            classes,
            academic_sessions,
            sis,
            ledger,
            tenant,
            settings,
            night,
            categories,
        )
        # A category a part creates is created once, before the first lineItem that needs it.
        requests = [
            r
            for r in payloads.requests
            if r["kind"] != "category" or r["key"] not in seen_categories
        ]
        seen_categories |= {r["key"] for r in requests if r["kind"] == "category"}
        for r in requests:
            counts[r["kind"]] = counts.get(r["kind"], 0) + 1
        emit(requests)
        reports.append(payloads.report)
        removals = removals + part_removals
    passed = not removals.over(tenant.gpb.max_removal_share, tenant.gpb.removal_guard_floor)
    if passed or allow_mass_removal:
        emit(removals.requests)
    else:
        reports.append(
            pd.DataFrame(
                [
                    {
                        "kind": r["kind"],
                        "key": r["key"],
                        "class": r["class"],
                        "reason": f"removal held by the removal guard ({r['reason']})",
                    }
                    for r in removals.requests
                ],
                columns=["kind", "key", "class", "reason"],
            ).astype("string")
        )
    report = pd.concat([r for r in reports if len(r)] or reports[:1], ignore_index=True)
    return Plan(
        Payloads(kept, report),
        removals,
        passed,
        not passed and allow_mass_removal,
        sis.reads,
        counts,
    )


# What planning reads of the ledger: not the hashes and scores sent (the push's), a third of
# a district's ledger.
PLAN_COLUMNS = ["key", "sis_id", "kind", "class", "course", "line_item_key", "student"]


def compute_payloads(
    lake: Lake,
    services: Services,
    tn: TenantNight,
    classes: pd.DataFrame,
    academic_sessions: pd.DataFrame,
    allow_mass_removal: bool = False,
) -> tuple[Figures, Plan]:
    """The night's requests file, from the gradebook snapshot and what the SIS holds now."""
    tenant_id, tenant, night = tn.id, tn.tenant, tn.night
    book = load_gradebook(lake, tenant_id, night)
    ledger = read_ledger(lake, tenant_id, PLAN_COLUMNS)
    requests_file = lake.gpb_requests(night, tenant_id)
    written: list[Plan] = []

    def write(fh: BinaryIO) -> None:
        with services.gradebook(tenant_id, tenant, night) as sis:
            written.append(
                plan(
                    book,
                    classes,
                    academic_sessions,
                    sis,
                    ledger,
                    tenant,
                    night,
                    allow_mass_removal,
                    lambda requests: write_request_lines(requests, fh),
                )
            )

    # The file becomes visible whole, once every part is planned, or not at all.
    publish(requests_file, write)
    night_plan = written[0]
    write_frame(night_plan.payloads.report, lake.gpb_report(night, tenant_id))
    return {**night_plan.figures(tenant), "requests_file": requests_file}, night_plan


def _not_sent_why(report: pd.DataFrame) -> Figures:
    if not len(report):
        return {}
    rows = report.head(50).astype(object).fillna("").to_dict("records")
    return {
        "not_sent_why": Markdown(
            "\n".join(
                f"- {r['kind']} `{r['key']}` ({r['class'] or 'all classes'}): {r['reason']}"
                for r in rows
            )
        )
    }


def _rostering_base(tenant: Tenant, gradebook_url: str) -> str:
    if tenant.oneroster.base_url:
        return tenant.oneroster.base_url
    return gradebook_url.replace("/gradebook/v1p2", "/rostering/v1p2")


def push_night(
    lake: Lake,
    services: Services,
    tn: TenantNight,
    force: bool = False,
    backfill: str | None = None,
) -> Figures:
    """Sends the night's requests: never from a backfill or over a later night's pass unless
    ``force``. A complete push records the pass; a partial one raises ``GradesNotSent``."""
    tenant_id, tenant, night = tn.id, tn.tenant, tn.night
    if backfill and not force:
        return {
            "outcome": f"not pushed: a backfill run ({backfill}) computes payloads only; run with --force-push to send"
        }
    later = lake.gpb_passes(tenant_id).after(night)
    if later and not force:
        return {
            "outcome": f"not pushed: a later night ({later[-1]}) was already pushed; older grades could overwrite newer ones"
        }
    path = lake.gpb_requests(night, tenant_id)
    if not path.exists():
        raise StoredStateError(
            f"tenant {tenant_id!r}, night {night}: no payloads; materialize gpb/payloads first"
        )
    with services.gradebook(tenant_id, tenant, night) as sis:
        figures = send(
            lake,
            sis,
            tenant_id,
            tenant,
            read_request_parts(path, REQUESTS_PER_PART),
            str(night),
            force,
            lake.gpb_outcomes(night, tenant_id),
        )
    record_pass(lake, tenant_id, night)
    return figures


# Requests sent at once (a class's are never split): a part's requests, outcomes and the
# SIS's results re-read before sending are held in memory.
REQUESTS_PER_PART = 10_000


def send(
    lake: Lake,
    sis: SisGradebook,
    tenant_id: str,
    tenant: Tenant,
    requests: list[dict[str, Any]] | Iterator[list[dict[str, Any]]],
    label: str,
    force: bool,
    outcomes_path: UPath,
) -> Figures:
    """Sends requests through the ledger (a night's or an intraday sync's, ``label``), a list
    or part after part: the outcomes stored as they come, the ledger's changes journaled after
    each part (a night cut short keeps what was sent) and the ledger stored once at the end;
    ``GradesNotSent`` when some failed."""
    parts = iter([requests]) if isinstance(requests, list) else requests
    changes = LedgerChanges(lake, tenant_id, read_ledger(lake, tenant_id))
    streak = [0]  # the SIS's failures in a row, across parts
    tally = Tally()

    def send_parts(fh: BinaryIO) -> None:
        with pq.ParquetWriter(fh, OUTCOME_SCHEMA, compression=COMPRESSION) as outcomes:
            for part in parts:
                acks = changes.acknowledgements()
                result = push(
                    sis,
                    part,
                    changes.concerning(
                        lambda ledger, part=part: concerning(ledger, part), classes_of(part)
                    ),
                    label,
                    on_sis_change=tenant.gpb.on_sis_change,
                    force=force,
                    max_concurrency=tenant.gpb.max_concurrency,
                    streak=streak,
                    acknowledged=acks,
                )
                changes.record(result.fresh, result.removed, acks)
                outcomes.write_table(outcome_table(result.outcomes))
                tally.add(result, len(part))

    try:
        publish(outcomes_path, send_parts)
    finally:
        changes.store()  # what the SIS took is kept, whatever stopped the push
    figures = _push_figures(tally, tenant, force)
    if tally.failed:
        raise GradesNotSent(
            f"tenant {tenant_id!r}, {'night ' if label[:1].isdigit() else ''}{label}: {tally.failed} of {tally.requests} gradebook requests failed"
            f"{f' and {tally.held} more were held back' if tally.held else ''}; "
            "a re-run sends only those and what changed. First errors: " + "; ".join(tally.errors),
            figures,
        )
    return figures


@dataclass
class Tally:
    """What a push's parts came to: requests, outcomes by kind and status, the first errors
    and the SIS's changed grades (the outcomes themselves go to their file part by part)."""

    requests: int = 0
    by_kind: dict[tuple[str, str], int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    held: int = 0
    conflicts: list[dict[str, Any]] = field(default_factory=list)

    def add(self, result: PushResult, requests: int) -> None:
        outcomes = result.outcomes
        self.requests += requests
        for (kind, status), n in outcomes.groupby(["kind", "status"]).size().items():
            self.by_kind[kind, status] = self.by_kind.get((kind, status), 0) + int(n)
        failed = outcomes.loc[outcomes["status"] == "failed", "error"]
        self.errors += [str(e) for e in failed.head(5 - len(self.errors))]
        self.held += int(
            outcomes["error"].str.contains("in a row", regex=False).fillna(False).sum()
        )
        self.conflicts += result.conflicts

    def count(self, status: str) -> int:
        return sum(n for (_, s), n in self.by_kind.items() if s == status)

    @property
    def failed(self) -> int:
        return self.count("failed")


def _push_figures(tally: Tally, tenant: Tenant, force: bool) -> Figures:
    figures: Figures = {
        "requests": tally.requests,
        **{
            status: tally.count(status)
            for status in ("sent", "unchanged", "removed", "gone", "failed", "skipped")
        },
        "sis_changed_grades": len(tally.conflicts),
        "on_sis_change": tenant.gpb.on_sis_change,
        "forced": force,
        "outcomes": Markdown(_outcomes_md(tally.by_kind)),
    }
    if tally.conflicts:
        figures["sis_changed"] = Markdown(
            "| result | SIS score | SIS status | we last sent | ours now |\n|---|---|---|---|---|\n"
            + "\n".join(
                f"| `{c['key']}` | {c['sis_score']} | {c['sis_status']} | {c['sent_score']} | {c['our_score']} |"
                for c in tally.conflicts[:50]
            )
        )
    return figures


def _outcomes_md(by_kind: dict[tuple[str, str], int]) -> str:
    if not by_kind:
        return "no requests"
    return "| kind | status | requests |\n|---|---|---|\n" + "\n".join(
        f"| {kind} | {status} | {n} |" for (kind, status), n in sorted(by_kind.items())
    )
