"""A Canvas simulator: the sis_imports endpoints over HTTP, an in-memory Canvas they change,
realistic workflow states, Canvas's diffing mode, scripted throttling and failures, and the
gradebook REST endpoints of the courses it holds (see canvas_gradebook)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import secrets
import threading
import zipfile
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pandas as pd

from ..canvas.conversion import HELD_IN, NAMED_BY, renames
from ..canvas.files import FILES
from ..canvas.package import CanvasCsvError, check_zip, read_zip
from . import canvas_gradebook_api as gradebook_api
from .canvas_edits import TeacherEdits, stamp
from .canvas_gradebook import GRADEBOOK_SHARE, canvas_id, course_gradebook, uses_gradebook
from .canvas_throttle import LeakyBucket

PROGRESSION = ("created", "importing")
POLL_S = 0.05  # how soon a stopped server stops (serve_forever checks this often)


class CanvasSimulator:
    def __init__(self, token: str | None = None, state_file: Path | None = None, port: int = 0):
        self.token = token or secrets.token_urlsafe(16)
        # Whether the token's user may post SIS imports (Canvas answers 401 otherwise).
        self.may_import = True
        self.reports: list[tuple[dict[str, Any], bytes]] = []  # SIS export reports and files
        self.state_file = state_file
        # file -> key -> row (with status), as Canvas holds SIS data.
        self.state: dict[str, dict[str, dict[str, str]]] = {name: {} for name in FILES}
        self.imports: list[dict[str, Any]] = []
        self.diff_baselines: dict[str, dict[str, list[dict[str, str]]]] = {}
        self.throttle_next = 0
        self.bucket = LeakyBucket()  # the token's bucket (one token per simulated Canvas)
        self.throttled = 0  # requests refused for the rate limit
        self.fail_next = 0
        # Polls an import answers "created"/"importing" before it ends (a test holds it longer).
        self.polls_to_finish = len(PROGRESSION)
        self.requests: list[tuple[str, str]] = []
        # The moment the gradebooks show; None: now. The pipeline sets it to the night it runs.
        self.clock: datetime | None = None
        self.gradebook_share = GRADEBOOK_SHARE
        # False: courses hold only what teachers create through the API (tests).
        self.generated_gradebooks = True
        # Teachers' edits, shared with other processes serving this tenant's Canvas.
        self.edits = TeacherEdits(
            state_file.with_suffix(".edits.jsonl") if state_file is not None else None
        )
        # When the next teacher's edit happens; None: now (a demo places edits in a night).
        self.edit_clock: datetime | None = None
        self._gradebooks: dict[tuple[str, datetime, int], dict[str, list[dict[str, Any]]]] = {}
        self._lock = threading.Lock()
        self._by_course: dict[str, list[dict[str, str]]] = {}
        self.version = 0  # of the SIS data held: an import or a load moves it on
        self._indexed = (-1, -1)
        self._loaded = -1.0
        self._load()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self._httpd.daemon_threads = True
        # Canvas's file store: a report's download redirects there, with a signed URL.
        self.file_store_headers: list[dict[str, str]] = []  # what each download brought
        self._files = ThreadingHTTPServer(("127.0.0.1", 0), _file_store(self))
        self._files.daemon_threads = True

    def _load(self) -> None:
        """The SIS data as the state file holds it (another process may have imported)."""
        if self.state_file is None or not self.state_file.exists():
            return
        mtime = self.state_file.stat().st_mtime
        if mtime == self._loaded:
            return
        saved = json.loads(self.state_file.read_text())
        self.state.update(saved["state"])
        self.version += 1
        self.imports = saved["imports"]
        self.diff_baselines = saved.get("diff_baselines", {})
        self._loaded = mtime

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> CanvasSimulator:
        for server, name in ((self._httpd, "canvas-sim"), (self._files, "canvas-files")):
            threading.Thread(
                target=server.serve_forever, args=(POLL_S,), daemon=True, name=name
            ).start()
        return self

    def stop(self) -> None:
        for server in (self._httpd, self._files):
            server.shutdown()
            server.server_close()

    def signed_file_url(self, number: int, name: str) -> str:
        """Where Canvas's file store serves a report's file: another host, a signed URL."""
        verifier = hashlib.sha256(f"{self.token}|{number}".encode()).hexdigest()[:20]
        return f"http://127.0.0.1:{self._files.server_address[1]}/blob/{number}/{name}?verifier={verifier}"

    def __enter__(self) -> CanvasSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def active(self, name: str) -> dict[str, dict[str, str]]:
        """Rows of a file that are active in Canvas (a group is "available", a membership
        "accepted"; logins have no status)."""
        live = ("active", "available", "accepted", None)
        return {k: r for k, r in self.state[name].items() if r.get("status") in live}

    def _save(self) -> None:
        if self.state_file is None:
            return
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {
                    "state": self.state,
                    "imports": self.imports,
                    "diff_baselines": self.diff_baselines,
                }
            )
        )
        tmp.replace(self.state_file)
        self._loaded = self.state_file.stat().st_mtime

    # ------------------------------------------------------------ imports

    def sis_export(self) -> bytes:
        """The SIS data this Canvas holds, as its SIS export report: a zip, a CSV per file,
        without deleted objects (Canvas's report leaves them out unless `include_deleted`
        is asked for, which the pipeline never does)."""
        with self._lock:
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w") as z:
                for name, spec in FILES.items():
                    if spec.whole:  # instructions, not data Canvas keeps as such
                        continue
                    text = io.StringIO()
                    writer = csv.DictWriter(text, list(spec.columns), extrasaction="ignore")
                    writer.writeheader()
                    writer.writerows(
                        row for row in self.state[name].values() if row.get("status") != "deleted"
                    )
                    z.writestr(f"{name}.csv", text.getvalue())
            return buffer.getvalue()

    def grade_export(self) -> bytes:
        """The account's Grade Export report (``grade_export_csv``): a row per student
        enrollment in a published course, with its current and final score (empty while
        nothing is graded), as Canvas's ``grade_reports.rb`` writes it."""
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(GRADE_EXPORT_HEADER)
        for course_id in sorted(self.active("courses")):
            book = self.gradebook(course_id) or {}
            scores = {e["sis_user_id"]: e.get("grades") or {} for e in book.get("enrollments", [])}
            with self._lock:
                rows = [
                    r
                    for r in self._enrollments_of(course_id)
                    if r.get("role") == "student" and r.get("status") == "active"
                ]
            for r in rows:
                grades = scores.get(r["user_id"], {})
                writer.writerow(
                    [
                        "",
                        canvas_id("user", r["user_id"]),
                        r["user_id"],
                        "",
                        canvas_id("course", course_id),
                        course_id,
                        "",
                        canvas_id("section", r.get("section_id") or ""),
                        r.get("section_id") or "",
                        "",
                        "",
                        "",
                        _blank(grades.get("current_score")),
                        _blank(grades.get("final_score")),
                        "active",
                    ]
                )
        return text.getvalue().encode()

    def create_import(self, data: bytes, params: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            sis_import: dict[str, Any] = {
                "id": len(self.imports) + 1,
                "workflow_state": "created",
                "progress": 0,
                "data": {"import_type": params.get("import_type", "instructure_csv"), "counts": {}},
                "processing_errors": [],
                "processing_warnings": [],
                "diffing_data_set_identifier": params.get("diffing_data_set_identifier"),
                "created_at": datetime.now(UTC).isoformat(timespec="microseconds"),
                "_polls": 0,
            }
            problems = check_zip(data)
            if self.fail_next:
                self.fail_next -= 1
                problems = problems or ["simulated failure: the import job crashed"]
            if problems:
                sis_import["_final"] = "failed_with_messages"
                sis_import["processing_errors"] = [["sis_import.zip", p] for p in problems[:50]]
            else:
                files = read_zip(data)
                warnings = self._apply(files, params)
                sis_import["_final"] = "imported_with_messages" if warnings else "imported"
                sis_import["processing_warnings"] = [["sis_import.zip", w] for w in warnings]
                sis_import["data"]["counts"] = {name: len(rows) for name, rows in files.items()}
            self.imports.append(sis_import)
            self._save()
            return _public(sis_import)

    def _apply(self, files: dict[str, list[dict[str, str]]], params: dict[str, str]) -> list[str]:
        warnings: list[str] = []
        # Processed first, as Canvas does: the other files already use the new ids.
        warnings += self._change_sis_ids(files.pop("change_sis_id", []))
        identifier = params.get("diffing_data_set_identifier")
        if identifier:
            files, diffed = self._diff(identifier, files, params)
            warnings += diffed
        for name in FILES:
            spec = FILES[name]
            for row in files.get(name, []):
                key = "|".join(row.get(k, "") for k in spec.key)
                self.state[name][key] = {
                    **self.state[name].get(key, {}),
                    **{k: v for k, v in row.items() if v != "" or k in spec.dates},
                }
        self.version += 1
        return warnings

    def _change_sis_ids(self, rows: list[dict[str, str]]) -> list[str]:
        """change_sis_id.csv: each object's SIS id renamed where Canvas keeps it, and every
        row that names it; a row whose old id is unknown or whose new id is taken fails."""
        warnings, taken, applied = [], {}, []
        for line, row in enumerate(rows, start=2):
            old, new, kind = row.get("old_id", ""), row.get("new_id", ""), row.get("type", "")
            if not old or not new:  # integration ids are not kept here
                continue
            name, column = HELD_IN[kind]
            held = taken.setdefault(kind, {r.get(column) for r in self.state[name].values()})
            if old not in held:
                warnings.append(f"change_sis_id.csv line {line}: no {kind} with id {old}")
            elif new in held:
                warnings.append(f"change_sis_id.csv line {line}: {kind} id {new} is taken")
            else:
                held.discard(old)
                held.add(new)
                applied.append(row)
        for kind, ids in renames(pd.DataFrame(applied)).items():
            for file, columns in NAMED_BY[kind]:
                key = FILES[file].key
                renamed = {}
                for held_row in self.state[file].values():
                    for c in columns:
                        if held_row.get(c) in ids:
                            held_row[c] = ids[held_row[c]]
                    renamed["|".join(held_row.get(k, "") for k in key)] = held_row
                self.state[file] = renamed
        return warnings

    def _diff(
        self, identifier: str, files: dict[str, list[dict[str, str]]], params: dict[str, str]
    ) -> tuple[dict[str, list[dict[str, str]]], list[str]]:
        """Canvas's diffing mode: rows missing from this full file against the last one are removed."""
        previous = self.diff_baselines.get(identifier)
        threshold = params.get("change_threshold")
        if previous is not None and threshold is not None:
            before = sum(len(v) for v in previous.values())
            now = sum(len(v) for v in files.values())
            if before and abs(1 - now / before) * 100 > float(threshold):
                return files, [
                    "Diffing not performed because file size difference exceeded threshold"
                ]
        self.diff_baselines[identifier] = files
        if previous is None:
            return files, []
        out = {name: list(rows) for name, rows in files.items()}
        for name, rows in previous.items():
            spec = FILES[name]
            now_keys = {"|".join(r.get(k, "") for k in spec.key) for r in files.get(name, [])}
            for row in rows:
                if "|".join(row.get(k, "") for k in spec.key) not in now_keys:
                    status = (
                        params.get("diffing_user_remove_status", "deleted")
                        if name == "users"
                        else params.get("diffing_drop_status", "deleted")
                        if name == "enrollments"
                        else "deleted"
                    )
                    out.setdefault(name, []).append({**row, "status": status})
        return out, []

    def list_imports(self, query: dict[str, list[str]]) -> list[dict[str, Any]]:
        """Newest first, as Canvas lists them; ``created_since`` filters; one page."""
        since = (query.get("created_since") or [""])[0]
        per_page = int((query.get("per_page") or ["10"])[0])
        with self._lock:
            found = [
                _public(i)
                for i in reversed(self.imports)
                if not since
                or datetime.fromisoformat(i["created_at"]) >= datetime.fromisoformat(since)
            ]
        return found[:per_page]

    def get_import(self, import_id: int) -> dict[str, Any] | None:
        with self._lock:
            if not 1 <= import_id <= len(self.imports):
                return None
            sis_import = self.imports[import_id - 1]
            polls = sis_import["_polls"] = sis_import.get("_polls", 0) + 1
            if polls <= self.polls_to_finish and sis_import["workflow_state"] not in (
                sis_import.get("_final"),
            ):
                step = min(polls, len(PROGRESSION)) - 1
                sis_import["workflow_state"] = PROGRESSION[step]
                sis_import["progress"] = 50 * step
            else:
                sis_import["workflow_state"] = sis_import["_final"]
                sis_import["progress"] = 100
            self._save()
            return _public(sis_import)

    # ------------------------------------------------------------ gradebook

    def gradebook(
        self, course_id: str, at: datetime | None = None
    ) -> dict[str, list[dict[str, Any]]] | None:
        """The gradebook of a course Canvas holds, as it stands at the clock (or ``at``)."""
        clock = at or self.clock or datetime.now(UTC)
        edits = self.edits.for_course(course_id)
        with self._lock:
            if at is None and self.clock is None:
                self._load()  # a standalone Canvas follows the pipeline's imports
            course = self.state["courses"].get(course_id)
            if course is None or course.get("status") == "deleted":
                return None
            cached = self._gradebooks.get((course_id, clock, len(edits)))
            if cached is not None:
                return cached
            if not edits and not uses_gradebook(course_id, self.gradebook_share):
                book: dict[str, list[dict[str, Any]]] = {
                    "assignment_groups": [],
                    "assignments": [],
                    "submissions": [],
                    "enrollments": [],
                    "events": [],
                }
            else:
                students = {
                    row["user_id"]: row["section_id"]
                    for row in self._enrollments_of(course_id)
                    if row.get("role") == "student" and row.get("status") == "active"
                }
                term = self.state["terms"].get(course.get("term_id") or "", {})
                book = course_gradebook(
                    course_id,
                    dict(sorted(students.items())),
                    term.get("start_date"),
                    term.get("end_date"),
                    clock,
                    edits,
                    generated=self.generated_gradebooks
                    and uses_gradebook(course_id, self.gradebook_share),
                )
            self._gradebooks[(course_id, clock, len(edits))] = book
            return book

    def _enrollments_of(self, course_id: str) -> list[dict[str, str]]:
        """A course's enrollment rows (under the lock), indexed once per state of the
        enrollments: a district holds millions, a course a few dozen."""
        rows = self.state["enrollments"]
        if self._indexed != (self.version, len(rows)):  # tests also add rows by hand
            self._by_course = {}
            for row in rows.values():
                self._by_course.setdefault(row.get("course_id", ""), []).append(row)
            self._indexed = (self.version, len(rows))
        return self._by_course.get(course_id, [])

    def edit_moment(self) -> datetime:
        """When a teacher's edit happens: the edit clock, or now."""
        return self.edit_clock or datetime.now(UTC)

    def teacher_edit(self, course_id: str, op: str, **fields: Any) -> dict[str, Any]:
        """Record what a teacher did in a course, at the edit moment."""
        at = stamp(self.edit_moment())
        return self.edits.record({"at": at, "course": course_id, "op": op, **fields})

    def student_of(self, course_id: str, user_ref: str) -> str | None:
        """The SIS user id of a course's student, from ``sis_user_id:X`` or a Canvas user id."""
        with self._lock:
            students = {
                row["user_id"]
                for row in self._enrollments_of(course_id)
                if row.get("role") == "student"
            }
        if user_ref.startswith("sis_user_id:"):
            found = user_ref.removeprefix("sis_user_id:")
            return found if found in students else None
        return next((s for s in students if str(canvas_id("user", s)) == user_ref), None)


GRADE_EXPORT_HEADER = (
    "student name",
    "student id",
    "student sis",
    "course",
    "course id",
    "course sis",
    "section",
    "section id",
    "section sis",
    "term",
    "term id",
    "term sis",
    "current score",
    "final score",
    "enrollment state",
)


def _blank(value: object) -> str:
    return "" if value is None else str(value)


def _flatten(body: Any, prefix: str = "") -> dict[str, str]:
    """``{"submission": {"posted_grade": 9}}`` as the form field ``submission[posted_grade]``."""
    if not isinstance(body, dict):
        return {
            prefix: ""
            if body is None
            else str(body).lower()
            if isinstance(body, bool)
            else str(body)
        }
    out: dict[str, str] = {}
    for key, value in body.items():
        out |= _flatten(value, f"{prefix}[{key}]" if prefix else str(key))
    return out


def _public(sis_import: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in sis_import.items() if not k.startswith("_")}


def _file_store(sim: CanvasSimulator) -> type[BaseHTTPRequestHandler]:
    """Canvas's file store: a report's bytes at a signed URL, no token needed (or wanted)."""

    class FileStore(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            sim.file_store_headers.append(dict(self.headers))
            split = urlsplit(self.path)
            parts = split.path.strip("/").split("/")
            body, status = b"not found", 404
            if len(parts) == 3 and parts[0] == "blob" and parts[1].isdigit():
                number = int(parts[1])
                expected = sim.signed_file_url(number, parts[2])
                if 1 <= number <= len(sim.reports) and expected.endswith(
                    f"{split.path}?{split.query}"
                ):
                    body, status = sim.reports[number - 1][1], 200
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return FileStore


def _handler(sim: CanvasSimulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # one segment per answer: no 40 ms delayed-ACK stalls

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(
            self, status: int, body: Any, link: str | None = None, location: str | None = None
        ) -> None:
            raw = orjson.dumps(body) if not isinstance(body, bytes) else body
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            if link:
                self.send_header("Link", link)
            if location:
                self.send_header("Location", location)
            # Canvas's throttling headers: the request's cost, the bucket's room for the token.
            admitted, self._admitted = getattr(self, "_admitted", False), False
            room = sim.bucket.settle() if admitted else sim.bucket.remaining()
            self.send_header("X-Request-Cost", f"{sim.bucket.cost if admitted else 0.0}")
            self.send_header("X-Rate-Limit-Remaining", f"{max(room, 0.0):.1f}")
            self.end_headers()
            self.wfile.write(raw)

        def _may_import(self) -> bool:
            """Whether the token's user may import; Canvas's own refusal when not."""
            if sim.may_import:
                return True
            self._send(
                401,
                {
                    "status": "unauthorized",
                    "errors": [{"message": "user not authorized to perform that action"}],
                },
            )
            return False

        def _gate(self) -> bool:
            sim.requests.append((self.command, self.path))
            if sim.throttle_next > 0 or not sim.bucket.admit():
                sim.throttle_next = max(0, sim.throttle_next - 1)
                sim.throttled += 1
                self._send(403, b"403 Forbidden (Rate Limit Exceeded)")
                return False
            self._admitted = True
            if self.headers.get("Authorization") != f"Bearer {sim.token}":
                self._send(401, {"errors": [{"message": "Invalid access token."}]})
                return False
            return True

        def do_POST(self) -> None:
            split = urlsplit(self.path)
            parts = split.path.strip("/").split("/")
            if parts[:3] == ["api", "v1", "courses"]:
                self._edit("POST")
                return
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if not self._gate():
                return
            if parts[:3] == ["api", "v1", "accounts"] and parts[4:5] == ["reports"]:
                name = parts[5] if len(parts) == 6 else ""
                made = {
                    "sis_export_csv": (sim.sis_export, "zip"),
                    "grade_export_csv": (sim.grade_export, "csv"),
                }
                if name not in made:
                    self._send(
                        404, {"errors": [{"message": "The specified resource does not exist."}]}
                    )
                    return
                # The report runs at once here; Canvas queues it and the client polls.
                host = self.headers.get("Host", "127.0.0.1")
                report_id = len(sim.reports) + 1
                build, extension = made[name]
                url = f"http://{host}/files/report-{report_id}.{extension}"
                report = {
                    "id": report_id,
                    "report": name,
                    "status": "complete",
                    "progress": 100,
                    "file_url": url,
                    "attachment": {"url": url, "filename": f"{name}_{report_id}.{extension}"},
                }
                sim.reports.append((report, build()))
                self._send(200, report)
                return
            if parts[:3] != ["api", "v1", "accounts"] or parts[4:] != ["sis_imports"]:
                self._send(404, {"errors": [{"message": "The specified resource does not exist."}]})
                return
            if not self._may_import():
                return
            params = {k: v[0] for k, v in parse_qs(split.query).items()}
            try:
                self._send(200, sim.create_import(body, params))
            except CanvasCsvError as exc:
                self._send(400, {"errors": [{"message": str(exc)}]})

        def _form(self, raw: bytes) -> dict[str, str]:
            """Canvas takes form fields (``submission[posted_grade]``) or the same as JSON."""
            if "json" in (self.headers.get("Content-Type") or ""):
                try:
                    return _flatten(orjson.loads(raw or b"{}"))
                except orjson.JSONDecodeError:
                    return {}
            return {k: v[-1] for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()}

        def _edit(self, method: str) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if not self._gate():
                return
            parts = urlsplit(self.path).path.strip("/").split("/")
            answer = gradebook_api.write(sim, method, parts, self._form(raw))
            self._send(*(answer or gradebook_api.NOT_FOUND))

        def do_PUT(self) -> None:
            self._edit("PUT")

        def do_DELETE(self) -> None:
            self._edit("DELETE")

        def do_GET(self) -> None:
            if not self._gate():
                return
            split = urlsplit(self.path)
            parts = split.path.strip("/").split("/")
            host = self.headers.get("Host", "127.0.0.1")
            answer = gradebook_api.read(
                sim, parts, parse_qs(split.query), f"http://{host}/{'/'.join(parts)}"
            )
            if answer is not None:
                self._send(*answer)
                return
            if (
                parts[:3] == ["api", "v1", "accounts"]
                and len(parts) == 6
                and parts[4] == "sis_imports"
                and parts[5].isdigit()
            ):
                found = sim.get_import(int(parts[5]))
                if found is not None:
                    self._send(200, found)
                    return
            if (
                parts[:3] == ["api", "v1", "accounts"]
                and parts[4:5] == ["reports"]
                and len(parts) == 7
                and parts[6].isdigit()
                and 1 <= int(parts[6]) <= len(sim.reports)
            ):
                self._send(200, sim.reports[int(parts[6]) - 1][0])
                return
            if len(parts) == 2 and parts[0] == "files" and parts[1].startswith("report-"):
                number = parts[1].removeprefix("report-").split(".")[0]
                if number.isdigit() and 1 <= int(number) <= len(sim.reports):
                    # As Canvas does: the download is redirected to the file store.
                    self._send(302, b"", location=sim.signed_file_url(int(number), parts[1]))
                    return
            if parts[:3] == ["api", "v1", "accounts"] and len(parts) == 4:
                self._send(
                    200, {"id": parts[3], "name": "Simulated district", "workflow_state": "active"}
                )
                return
            if parts[:3] == ["api", "v1", "accounts"] and parts[4:] == ["sis_imports"]:
                if self._may_import():
                    self._send(200, {"sis_imports": sim.list_imports(parse_qs(split.query))})
                return
            self._send(404, {"errors": [{"message": "The specified resource does not exist."}]})

    return Handler
