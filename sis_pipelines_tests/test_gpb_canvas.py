"""Reading the Canvas gradebook: the simulator's endpoints, pagination, whole reads, the
Grade Change Log, throttling, and courses Canvas does not know."""

from __future__ import annotations

import gc
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pandas as pd
import pytest

from sis_pipelines.canvas.api import CanvasClient, CanvasError, Polling
from sis_pipelines.gpb.canvas_gradebook import read_gradebook
from sis_pipelines.gpb.grade_changes import grade_changes
from sis_pipelines.gpb.grade_export import grade_export
from sis_pipelines.simulator.canvas import CanvasSimulator

from .gpb_world import NIGHT, end_of

COURSES = ("k-c1", "k-c2")


@pytest.fixture
def canvas():
    with CanvasSimulator() as sim:
        sim.gradebook_share = 1
        sim.state["terms"]["k-t1"] = {
            "term_id": "k-t1",
            "status": "active",
            "start_date": "2026-08-15T00:00:00Z",
            "end_date": "2027-01-15T23:59:59Z",
        }
        for course in COURSES:
            sim.state["courses"][course] = {
                "course_id": course,
                "term_id": "k-t1",
                "status": "active",
            }
            for n in range(30):
                user = f"k-u{course[-1]}{n:02d}"
                sim.state["enrollments"][f"{course}|{user}|student"] = {
                    "course_id": course,
                    "section_id": course,
                    "user_id": user,
                    "role": "student",
                    "status": "active",
                }
        sim.clock = end_of(NIGHT)
        with CanvasClient("gpb-t", sim.base_url, sim.token, 1, Polling(0.01, 0.02)) as client:
            yield sim, client


def test_the_gradebook_is_read_whole_every_night(canvas):
    sim, client = canvas
    book = read_gradebook(client, [*COURSES, "k-gone"])
    assert book.missing_courses == ["k-gone"]
    assert book.courses == list(COURSES)
    assert set(book.assignments["course_id"]) == set(COURSES)
    assert len(book.students) == 60
    assert book.students["sis_section_id"].isin(COURSES).all()
    # More than a page of submissions per course: the Link header was followed.
    per_course = book.submissions.groupby("course_id").size()
    assert (per_course > 100).all()
    paged = [p for m, p in sim.requests if "students/submissions" in p and "page=2" in p]
    assert paged
    assert not [p for m, p in sim.requests if "graded_since" in p]
    # Three nights later: every submission again (a cleared grade shows only so), and more.
    sim.clock = end_of(NIGHT.replace(day=NIGHT.day + 3))
    later = read_gradebook(client, COURSES)
    assert len(later.submissions) >= len(book.submissions)
    assert (later.submissions["graded_at"] < "2026-11-21T23:59:59Z").any()


def test_gradebook_pages_are_freed_without_waiting_for_the_garbage_collector(canvas):
    # As in the OneRoster client: unlinked from its stream, a read page goes at once.
    sim, client = canvas
    gc.collect()
    gc.disable()
    try:
        read_gradebook(client, COURSES)
        alive = [o for o in gc.get_objects() if isinstance(o, httpx.Response)]
    finally:
        gc.enable()
    assert len(sim.requests) > 5
    assert alive == []


def test_throttled_reads_are_retried(canvas):
    sim, client = canvas
    sim.throttle_next = 2
    book = read_gradebook(client, COURSES[:1])
    assert len(book.assignments) > 0 and client.throttled == 2


def test_pagination_to_another_host_is_not_followed():
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"[]"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Link", '<http://attacker.invalid/api/v1/x?page=2>; rel="next"')
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with (
            CanvasClient(
                "gpb-t", f"http://127.0.0.1:{server.server_address[1]}", "tok-secret", 1
            ) as client,
            pytest.raises(CanvasError, match="another host") as caught,
        ):
            client.get_all("/api/v1/courses/sis_course_id:x/assignments")
        assert "tok-secret" not in str(caught.value)
    finally:
        server.shutdown()
        server.server_close()


def test_the_grade_change_log_names_the_courses_graded_since_a_moment(canvas):
    """Canvas's Grade Change Log in its own shape: events newest first, paged by Link headers
    (more than a page here), the linked objects, and throttling waited out."""
    sim, client = canvas
    since = "2026-08-15T00:00:00Z"
    sim.throttle_next = 1
    changes = grade_changes(client, [*COURSES, "k-gone"], since, "2026-11-21T23:59:59Z")
    assert changes.courses == list(COURSES) and changes.missing == ["k-gone"]
    assert changes.events > 200 and changes.latest <= "2026-11-21T23:59:59Z"
    assert client.throttled == 1
    paged = [p for _, p in sim.requests if "audit/grade_change" in p and "page=2" in p]
    assert paged
    # The raw shape: a compound document, newest first.
    raw = httpx.get(
        f"{sim.base_url}/api/v1/audit/grade_change/courses/sis_course_id:k-c1",
        params={"start_time": since, "per_page": 5},
        headers={"Authorization": f"Bearer {sim.token}"},
    )
    body = raw.json()
    stamps = [e["created_at"] for e in body["events"]]
    assert stamps == sorted(stamps, reverse=True) and len(stamps) == 5
    assert {"assignment", "course", "student", "grader"} <= set(body["events"][0]["links"])
    assert body["linked"]["assignments"] and 'rel="next"' in raw.headers["link"]
    # A moment after the last event: nothing changed; an event already seen is not seen again.
    assert grade_changes(client, COURSES, changes.latest, "2026-11-21T23:59:59Z").courses == []


def test_the_simulated_canvas_throttles_as_canvas_does(canvas):
    """A leaky bucket per token: each request's cost fills it, it drains by the second, and a
    request that would take it over the high-water mark gets Canvas's 403, with the room left
    in X-Rate-Limit-Remaining; the client waits and tries again."""
    from sis_pipelines.simulator.canvas_throttle import LeakyBucket

    sim, client = canvas
    sim.bucket = LeakyBucket(hwm=100.0, outflow=20.0, up_front=10.0, cost=40.0)
    headers = {"Authorization": f"Bearer {sim.token}"}
    answers = [httpx.get(f"{sim.base_url}/api/v1/accounts/1", headers=headers) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 403]
    assert answers[3].text == "403 Forbidden (Rate Limit Exceeded)"
    rooms = [float(a.headers["X-Rate-Limit-Remaining"]) for a in answers]
    assert rooms[0] > rooms[1] > rooms[2] and rooms[3] < 10.0
    assert float(answers[0].headers["X-Request-Cost"]) == 40.0
    before = client.throttled
    assert client.get("/api/v1/accounts/1")["id"] == "1"  # waited out, then answered
    assert client.throttled > before and sim.throttled >= 2


def test_the_grade_export_names_the_only_courses_worth_reading(canvas):
    """A district of tens of thousands of courses: the account's Grade Export report names
    the courses where a student has a score; the rest cost no request, and what is read is
    what a read of every course finds."""
    sim, client = canvas
    sim.state["terms"]["k-t2"] = {
        "term_id": "k-t2",
        "status": "active",
        "start_date": "2027-02-01T00:00:00Z",
        "end_date": "2027-06-15T23:59:59Z",
    }
    sim.state["courses"]["k-c3"] = {"course_id": "k-c3", "term_id": "k-t2", "status": "active"}
    sim.state["enrollments"]["k-c3|k-u300|student"] = {
        "course_id": "k-c3",
        "section_id": "k-c3",
        "user_id": "k-u300",
        "role": "student",
        "status": "active",
    }
    courses = [*COURSES, "k-c3"]
    export = grade_export(client, ())
    assert export.courses == set(COURSES)  # k-c3's term has not started: no score
    # Canvas redirects the report's download to its file store: fetched there without the token.
    assert sim.file_store_headers and not any(
        k.lower() == "authorization" for h in sim.file_store_headers for k in h
    )
    every = read_gradebook(client, courses)
    sim.requests.clear()
    found = read_gradebook(client, courses, concurrency=4, discovery="grade_export")
    # No request for k-c3; none for the enrollments either: the report brought the students.
    assert not [p for _, p in sim.requests if "k-c3" in p or "/enrollments" in p]
    assert found.courses == list(COURSES)
    keys = {"assignments": ["assignment_id"], "submissions": ["assignment_id", "user_id"]}
    for name, frame in every.frames().items():
        by = keys.get(name, ["course_id", "user_id"])
        ours = found.frames()[name].sort_values(by).reset_index(drop=True)
        pd.testing.assert_frame_equal(ours, frame.sort_values(by).reset_index(drop=True))
    # A course we passed grades back from is read all the same, so that it can converge.
    again = read_gradebook(client, courses, {"k-c3"}, discovery="grade_export")
    assert again.courses == courses


def test_a_grade_export_without_scores_names_only_the_courses_passed_back():
    with (
        CanvasSimulator() as sim,
        CanvasClient("gpb-t", sim.base_url, sim.token, 1, Polling(0.01, 0.02)) as client,
    ):
        export = grade_export(client, {"k-was-passed-back"})
    assert export.courses == {"k-was-passed-back"}
    assert export.students.empty and list(export.students.columns)[:3] == [
        "course_id",
        "user_id",
        "sis_user_id",
    ]


def test_a_grade_export_without_its_columns_is_refused(canvas, monkeypatch):
    """An empty or cut report would read as "no course has a score": refused instead."""
    sim, client = canvas
    monkeypatch.setattr(sim, "grade_export", lambda: b"")
    with pytest.raises(CanvasError, match="no course sis, student id"):
        grade_export(client, ())


def test_a_gradebook_gathered_in_parts_is_the_gradebook_gathered_whole(monkeypatch):
    """Rows become Arrow-backed columns a part at a time: the frames are the same, text as
    Arrow strings (never a Python string a cell)."""
    from sis_pipelines.gpb import canvas_gradebook as module

    def course(n: int) -> tuple[list[dict], list[dict], list[dict]]:
        assignments = [{"id": 10 * n + i, "name": f"A{i}", "points_possible": 10} for i in range(3)]
        submissions = [
            {"assignment_id": a["id"], "user_id": u, "score": u % 7 or None, "excused": u == 3}
            for a in assignments
            for u in range(n % 4 + 1)
        ]
        students = [
            {"user_id": u, "sis_user_id": f"s{u}", "grades": {"current_score": 90}}
            for u in range(n % 4 + 1)
        ]
        return module.course_rows(f"c{n}", [], assignments, submissions, students)

    courses = [course(n) for n in range(9)]
    whole = module.assemble(courses)
    monkeypatch.setattr(module, "ROWS_PER_PART", 2)
    parts = module.assemble(courses)
    for name, frame in whole.frames().items():
        pd.testing.assert_frame_equal(parts.frames()[name], frame)
        assert len(frame) > 2
    assert whole.submissions["course_id"].dtype.storage == "pyarrow"
    empty = module.assemble([])
    assert [len(f) for f in empty.frames().values()] == [0, 0, 0]
