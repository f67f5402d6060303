"""``make bench`` (``GPB=0`` leaves it out): a night of grade passback for the benchmark's district, through the
pipeline's own steps (read the Canvas gradebook, compute the payloads, push them), against a
simulated Canvas that throttles as Canvas does and a simulated SIS gradebook, each in a process
of its own.

The Canvas simulator holds what the night's Canvas mapping provisioned: every course, and the
students of the courses whose teachers grade in Canvas. Night 1 is the set-up (the first pass
sends everything); night 2 is measured: the night's grade changes. The same night-2 gradebook
is also read as we first read it (every course, one at a time): the figure we started from.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import date
from typing import Any

import httpx
import pyarrow.compute as pc
import pyarrow.parquet as pq
from upath import UPath

from bench.process import in_fresh_process
from sis_pipelines.core.lake import Lake
from sis_pipelines.core.nights import end_of_night
from sis_pipelines.core.storage import read_frame
from sis_pipelines.core.tenant_night import TenantNight
from sis_pipelines.core.tenants import Tenant, parse_tenants
from sis_pipelines.gpb.canvas_gradebook import read_gradebook
from sis_pipelines.gpb.passback import (
    compute_payloads,
    provisioned_courses,
    push_night,
    read_canvas_gradebook,
)
from sis_pipelines.gpb.payloads import CLASS_COLUMNS
from sis_pipelines.gpb.state import courses_passed_back
from sis_pipelines.services.connect import Services
from sis_pipelines.simulator.canvas_gradebook import GRADEBOOK_SHARE

TOKEN = "bench-canvas-token"
VENDOR_KEY = "bench-vendor-key"
VENDOR_SECRET = "bench-vendor-secret"
ENV = {
    "BENCH_ID": "demo",
    "BENCH_SECRET": "bench-secret",
    "BENCH_CANVAS_TOKEN": TOKEN,
    "BENCH_VENDOR_KEY": VENDOR_KEY,
    "BENCH_VENDOR_SECRET": VENDOR_SECRET,
}
CONCURRENCY = 8
# Hosted Canvas, per request, for the projection (../shared/reference/canvas.md §7): the bucket
# drains 10 units a second and a request costs its CPU and database seconds; a page of a
# hundred submissions is taken to cost half a unit and to take half a second to answer.
OUTFLOW = 10.0
ASSUMED_COST = 0.5
ASSUMED_LATENCY_S = 0.5


def projected_hours(requests: int, concurrency: int) -> float:
    """How long the requests take at hosted Canvas's throttle: as many in flight as the client
    keeps (latency-bound), never faster than the bucket drains (cost-bound)."""
    per_second = min(concurrency / ASSUMED_LATENCY_S, OUTFLOW / ASSUMED_COST)
    return requests / per_second / 3600


class CountingTransport(httpx.HTTPTransport):
    """Counts the requests each host port is sent (Canvas's and the SIS's)."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[int, int] = {}
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            port = request.url.port or 0
            self.counts[port] = self.counts.get(port, 0) + 1
        return super().handle_request(request)

    def take(self, port: int) -> int:
        with self._lock:
            return self.counts.pop(port, 0)


def seed_canvas(sim: Any, lake: Lake, tenant_id: str, night: date) -> None:
    """What the night's mapping provisioned, as Canvas holds it after the import: every
    course and term, and the students of the courses that keep a gradebook in Canvas."""
    from sis_pipelines.simulator.canvas_gradebook import uses_gradebook

    def rows(name: str, columns: list[str]) -> Any:
        return pq.read_table(str(lake.canvas_file(name, night, tenant_id)), columns=columns)

    for row in rows("terms", ["term_id", "status", "start_date", "end_date"]).to_pylist():
        sim.state["terms"][row["term_id"]] = row
    courses = rows("courses", ["course_id", "term_id", "status"])
    graded = []
    for row in courses.to_pylist():
        sim.state["courses"][row["course_id"]] = row
        if row["status"] == "active" and uses_gradebook(row["course_id"], sim.gradebook_share):
            graded.append(row["course_id"])
    enrollments = rows("enrollments", ["course_id", "section_id", "user_id", "role", "status"])
    keep = pc.and_(
        pc.is_in(enrollments["course_id"], value_set=pc.cast(graded, "string")),
        pc.and_(
            pc.equal(enrollments["role"], "student"), pc.equal(enrollments["status"], "active")
        ),
    )
    for row in enrollments.filter(keep).to_pylist():
        sim.state["enrollments"][f"{row['section_id']}|{row['user_id']}|{row['role']}"] = row
    sim.version += 1


def serve_canvas(
    root: str, tenant_id: str, night: date, port: int, share: int, throttled: bool = True
) -> int:
    """The simulated Canvas of the night (a process of its own): ``python -m bench.gpb``."""
    from sis_pipelines.simulator.__main__ import _serve_until_stopped
    from sis_pipelines.simulator.canvas import CanvasSimulator
    from sis_pipelines.simulator.canvas_throttle import LeakyBucket

    sim = CanvasSimulator(token=TOKEN, port=port)
    sim.gradebook_share = share
    if not throttled:  # a Canvas that only counts: the read we started from, at any size
        sim.bucket = LeakyBucket(hwm=float("inf"))
    seed_canvas(sim, Lake(UPath(root)), tenant_id, night)
    sim.clock = end_of_night(night)
    sim.start()
    print(f"base URL: {sim.base_url}", flush=True)
    return _serve_until_stopped(sim)


@contextmanager
def serving(command: list[str], marker: str) -> Iterator[list[str]]:
    """A simulator in a process of its own (its memory and CPU are not ours): the lines it
    printed up to ``marker``."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    lines: list[str] = []
    try:
        for line in process.stdout:  # type: ignore[union-attr]
            lines.append(line)
            if marker in line:
                yield lines
                break
        else:
            raise RuntimeError(f"{command[2]} did not start")
    finally:
        process.terminate()
        process.wait()


def printed(lines: list[str], label: str) -> str:
    return next(line.split(label, 1)[1].strip() for line in lines if label in line)


@contextmanager
def simulated_canvas(
    root: str, tenant_id: str, night: date, port: int, share: int, throttled: bool = True
) -> Iterator[str]:
    command = [sys.executable, "-m", "bench.gpb", "--lake", root, "--tenant", tenant_id]
    command += ["--night", night.isoformat(), "--port", str(port), "--share", str(share)]
    command += [] if throttled else ["--unthrottled"]
    with serving(command, "base URL:") as lines:
        yield printed(lines, "base URL:")


@contextmanager
def simulated_sis(night: date, port: int) -> Iterator[tuple[str, str]]:
    """The SIS's OneRoster gradebook (Infinite Campus, 1.2): its base and gradebook URLs. Its
    gradebook lives in its memory across the nights."""
    command = [sys.executable, "-m", "sis_pipelines.simulator", "serve", "--vendor"]
    command += ["infinite_campus", "--students", "10", "--night", night.isoformat()]
    command += ["--port", str(port), "--client-secret", "bench-secret"]
    command += ["--vendor-authorization", f"{VENDOR_KEY}:{VENDOR_SECRET}"]
    with serving(command, "client id:") as lines:
        yield printed(lines, "base URL:"), printed(lines, "gradebook:")


def gpb_tenant(tenant_id: str, sis_base: str, gradebook: str, canvas: str) -> Tenant:
    token_url = sis_base.split("/ims/")[0] + "/oauth/token?appName=demo"
    text = f"""
tenants:
  {tenant_id}:
    vendor: infinite_campus
    oneroster:
      version: "1.2"
      source: rest
      base_url: {sis_base}
      auth: {{type: oauth2, token_url: "{token_url}", client_id_env: BENCH_ID, client_secret_env: BENCH_SECRET}}
      page_size: 50000
    canvas:
      base_url: {canvas}
      token_env: BENCH_CANVAS_TOKEN
      max_concurrency: {CONCURRENCY}
      gradebook_discovery: grade_export
    gpb:
      endpoints: standard
      base_url: {gradebook}
      max_concurrency: 4
      vendor_key_env: BENCH_VENDOR_KEY
      vendor_secret_env: BENCH_VENDOR_SECRET
"""
    return parse_tenants(text).tenants[tenant_id]


STEPS = ("gpb_canvas_read", "gpb_payloads", "gpb_push")  # the measured night's stages


def _step(name: str, root: str, tenant_id: str, tenant: Tenant, night: date) -> dict[str, Any]:
    """One step of the night: its figures and the requests it sent to each port."""
    lake = Lake(UPath(root))
    transport = CountingTransport()
    services = Services(lake, env=ENV, transport=transport)
    if name == "gpb_canvas_read":
        figures = read_canvas_gradebook(lake, services, TenantNight(tenant_id, tenant, night))
    elif name == "gpb_payloads":
        classes = read_frame(lake.snapshot("classes", night, tenant_id), CLASS_COLUMNS)
        sessions = read_frame(lake.snapshot("academic_sessions", night, tenant_id))
        figures, _ = compute_payloads(
            lake, services, TenantNight(tenant_id, tenant, night), classes, sessions
        )
    elif name == "gpb_push":
        figures = push_night(lake, services, TenantNight(tenant_id, tenant, night))
    else:  # the read we started from
        figures = {"requests": every_course_read(lake, tenant_id, tenant.canvas.base_url, night)}
    return {
        "figures": {k: v for k, v in figures.items() if isinstance(v, int | float | str)},
        "counts": transport.counts,
    }


def in_own_process(name: str, root: str, tenant_id: str, tenant: Tenant, night: date) -> dict:
    """A step in a fresh process, as Dagster's multiprocess executor runs an asset."""
    step = in_fresh_process(_step, name, root, tenant_id, tenant, night)
    return {**step.pop("result"), **step}


def gpb_night(
    root: str,
    tenant_id: str,
    tenant: Tenant,
    night: date,
    add: Callable[[str, float, float, float], None],
    staged: bool,
) -> dict[str, Any]:
    """One night of grade passback as the three assets run it, each step in a process of its
    own (``add`` takes each step's time and peak; ``staged``: a stage each, or one for all)."""
    figures: dict[str, Any] = {}
    counts: dict[int, int] = {}
    for name in STEPS:
        step = in_own_process(name, root, tenant_id, tenant, night)
        figures[name] = step["figures"]
        for port, n in step["counts"].items():
            counts[port] = counts.get(port, 0) + n
        add(
            name if staged else "gpb_first_night",
            step["wall_s"],
            step["cpu_s"],
            step["peak_rss_mb"],
        )
    read, payloads, pushed = (figures[name] for name in STEPS)
    return {
        "courses": read["courses"],
        "courses_read": read["courses_read"],
        "submissions": read["submissions"],
        "requests": payloads["requests"],
        "sent": pushed["sent"],
        "unchanged": pushed["unchanged"],
        "failed": pushed["failed"],
        "counts": counts,
    }


def every_course_read(lake: Lake, tenant_id: str, base_url: str, night: date) -> int:
    """The requests of the gradebook read we started from: every course, its assignments
    apart from its groups. Counted on a Canvas that does not throttle (the time would be the
    bucket's, not ours), several courses at a time (the count is the same)."""
    from sis_pipelines.canvas.api import CanvasClient

    courses = provisioned_courses(lake, tenant_id, night)
    with CanvasClient(tenant_id, base_url, TOKEN, 1) as canvas:
        book = read_gradebook(canvas, courses, courses_passed_back(lake, tenant_id), 8)
        # include[]=assignments folds a course's assignments into its groups' page; we first
        # asked for them apart: a request more for each course that has any.
        return canvas.requests + int(book.assignments["course_id"].nunique())


def run(
    root: UPath,
    tenant_id: str,
    nights: tuple[date, date],
    port: int,
    clock: Any,
    share: int = GRADEBOOK_SHARE,
) -> dict:
    """Night 1 sets up (its first pass sends everything); night 2 is the measured night."""
    first, second = nights
    with ExitStack() as stack:
        sis_base, gradebook = stack.enter_context(simulated_sis(second, port))
        sis_port = httpx.URL(sis_base).port or 0
        figures: dict[str, Any] = {}
        for night, canvas_port in ((first, port + 1), (second, port + 2)):
            with simulated_canvas(str(root), tenant_id, night, canvas_port, share) as canvas:
                tenant = gpb_tenant(tenant_id, sis_base, gradebook, canvas)
                # Night 1 is the set-up (its first pass sends everything): one stage.
                figures = gpb_night(str(root), tenant_id, tenant, night, clock.add, night == second)
                counts = figures.pop("counts")
                figures["canvas_requests"] = counts.get(canvas_port, 0)
                figures["sis_requests"] = counts.get(sis_port, 0)
        with simulated_canvas(str(root), tenant_id, second, port + 3, share, False) as canvas:
            tenant = gpb_tenant(tenant_id, sis_base, gradebook, canvas)
            before = in_own_process("every_course_read", str(root), tenant_id, tenant, second)
    steps = [clock.stages[name] for name in STEPS]
    return {
        "canvas_requests": figures["canvas_requests"],
        "sis_requests": figures["sis_requests"],
        "wall_s": round(sum(s["wall_s"] for s in steps), 3),
        "peak_rss_mb": round(max(s["peak_rss_mb"] for s in steps), 1),
        "projected_hours_at_canvas_throttle": round(
            projected_hours(figures["canvas_requests"], CONCURRENCY), 3
        ),
        "night": figures,
        "before": {
            "canvas_requests": before["figures"]["requests"],
            "projected_hours_at_canvas_throttle": round(
                projected_hours(before["figures"]["requests"], 1), 3
            ),
            "how": "every provisioned course read, one at a time, its assignments apart",
        },
        "assumed_per_request": {
            "latency_s": ASSUMED_LATENCY_S,
            "cost": ASSUMED_COST,
            "outflow_per_s": OUTFLOW,
            "concurrency": CONCURRENCY,
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpb", description=serve_canvas.__doc__)
    parser.add_argument("--lake", required=True)
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--night", type=date.fromisoformat, required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--share", type=int, default=GRADEBOOK_SHARE)
    parser.add_argument("--unthrottled", action="store_true")
    args = parser.parse_args(argv)
    return serve_canvas(
        args.lake, args.tenant, args.night, args.port, args.share, not args.unthrottled
    )


if __name__ == "__main__":
    sys.exit(main())
