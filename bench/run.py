"""``make bench SIZE=small|large|xl``: one district, two consecutive nights, through the
pipeline's own code (the OneRoster client over loopback HTTP, normalisation, pandera
validation, atomic Parquet, the Canvas mapping, delta and zip), timed per stage.

The simulator runs in a process of its own, so its memory and CPU are not ours. Night 1 is
the set-up (the stored state a real night starts from); night 2 is measured.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from upath import UPath

from bench import gpb
from bench.decode_limit import decode_limit, sample_pages
from bench.process import in_fresh_process
from sis_pipelines.canvas.delta import compute_delta, file_delta
from sis_pipelines.canvas.mapping import INTERNAL
from sis_pipelines.canvas.package import build_zip
from sis_pipelines.canvas.provision import canvas_files, map_night
from sis_pipelines.core.lake import Lake
from sis_pipelines.core.memory import release_memory
from sis_pipelines.core.storage import read_frame, write_tables
from sis_pipelines.core.tenant_night import TenantNight
from sis_pipelines.core.tenants import Canvas, Tenant, parse_tenants
from sis_pipelines.oneroster import batches as batches_module
from sis_pipelines.oneroster import client as client_module
from sis_pipelines.oneroster import csv_bundle as csv_module
from sis_pipelines.oneroster.batches import BATCH_ROWS
from sis_pipelines.oneroster.collections import COLLECTIONS
from sis_pipelines.oneroster.schemas import referenced_collections
from sis_pipelines.oneroster.snapshot import SnapshotRequest, take_snapshot
from sis_pipelines.services.connect import Services

SIZES = {"small": 10_000, "large": 100_000, "xl": 1_000_000}
ORDER = ["orgs", "academic_sessions", "courses", "classes", "users", "enrollments", "demographics"]
PAGE = 50_000  # Infinite Campus allows up to 50K
LIMIT_PAGES = 10  # enrollments pages decoded side by side with the plain decoders
NIGHT2 = date(2026, 11, 21)
NIGHT1 = NIGHT2 - timedelta(days=1)
TENANT = "bench"
BENCH_ENV = {"BENCH_ID": "demo", "BENCH_SECRET": "bench-secret"}
BENCH_CANVAS = Canvas(source="simulator", max_removal_share=1.0)
# The mapping step reads only the tenant's canvas section.
BENCH_TENANT = Tenant(
    vendor="generic", oneroster={"version": "1.2", "source": "simulator"}, canvas=BENCH_CANVAS
)
SEED = 7
SOURCES = ("rest", "csv")


def max_rss_mb() -> float:
    """The process's peak resident memory so far (exact: the kernel's high-water mark)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


class RssSampler:
    """The process's resident memory, sampled every 20 ms: the peak within each stage."""

    def __init__(self) -> None:
        self.peak = 0.0
        # An event, not time.sleep: the sampler must not touch (nor be touched by) patches
        # of the time module, and it ends with the benchmark rather than the process.
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_mb())

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def reset(self) -> float:
        peak, self.peak = max(self.peak, rss_mb()), rss_mb()
        return peak


class Clock:
    def __init__(self) -> None:
        self.stages: dict[str, dict[str, float]] = {}
        self.rss = RssSampler()
        self.peak_rss_mb = 0.0  # any stage's, on any night, in whichever process it ran
        self.night = ""

    def start(self, night: date) -> None:
        """A new night: stages start afresh (the report is the last night's)."""
        self.stages, self.night = {}, str(night)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.rss.reset()
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - wall, time.process_time() - cpu, self.rss.reset())

    def add(self, name: str, wall: float, cpu: float, peak_rss_mb: float = 0.0) -> None:
        # Progress for a run that takes twenty minutes at xl (stderr: the table is stdout).
        print(
            f"  {self.night} {name:<26} {wall:8.2f}s {cpu:8.2f} cpu-s {peak_rss_mb:8.0f} MB",
            file=sys.stderr,
            flush=True,
        )
        self.peak_rss_mb = max(self.peak_rss_mb, peak_rss_mb)
        s = self.stages.setdefault(name, {"wall_s": 0.0, "cpu_s": 0.0, "peak_rss_mb": 0.0})
        s["wall_s"] += wall
        s["cpu_s"] += cpu
        s["peak_rss_mb"] = max(s["peak_rss_mb"], peak_rss_mb)


@contextmanager
def simulator(students: int, night: date, port: int) -> Iterator[str]:
    command = [
        sys.executable,
        "-m",
        "sis_pipelines.simulator",
        "serve",
        "--vendor",
        "infinite_campus",
        "--students",
        str(students),
        "--seed",
        str(SEED),
        "--night",
        night.isoformat(),
        "--port",
        str(port),
        "--client-secret",
        "bench-secret",
    ]
    with gpb.serving(command, "base URL:") as lines:
        yield gpb.printed(lines, "base URL:")


class Timed:
    """Wraps a function of a module to tell its time apart from the rest of a step."""

    def __init__(self, module: object, name: str) -> None:
        self.module = module
        self.name = name
        self.wall = 0.0
        self.cpu = 0.0
        self._original = getattr(module, name)

    def __call__(self, *args, **kwargs):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            result = self._original(*args, **kwargs)
        finally:
            self.wall += time.perf_counter() - wall
            self.cpu += time.process_time() - cpu
        return self._timed(result) if inspect.isgenerator(result) else result

    def _timed(self, blocks: Iterator):
        """A generator's work is done as it is iterated (a CSV file read a block at a time)."""
        while True:
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                block = next(blocks)
            except StopIteration:
                return
            finally:
                self.wall += time.perf_counter() - wall
                self.cpu += time.process_time() - cpu
            yield block

    def __enter__(self) -> Timed:
        setattr(self.module, self.name, self)
        return self

    def __exit__(self, *exc: object) -> None:
        setattr(self.module, self.name, self._original)

    def since(self, mark: tuple[float, float]) -> tuple[float, float]:
        return self.wall - mark[0], self.cpu - mark[1]

    def mark(self) -> tuple[float, float]:
        return self.wall, self.cpu


@contextmanager
def drop(students: int, night: date, folder: Path) -> Iterator[str]:
    """The same district's OneRoster CSV export for the night, written by the simulator in a
    process of its own, as a district's SIS writes its drop (neither timed nor in our memory)."""
    command = [sys.executable, "-m", "sis_pipelines.simulator", "export", "--students"]
    command += [str(students), "--seed", str(SEED), "--night", night.isoformat()]
    subprocess.run([*command, "--out", str(folder)], check=True, stdout=subprocess.DEVNULL)
    yield str(folder)


def csv_tenant(folder: str):
    """The benchmark's district as a CSV-drop tenant."""
    text = f"""
tenants:
  {TENANT}:
    vendor: generic
    oneroster: {{version: "1.1", source: csv, path: {folder}}}
    privacy: {{demographics: true}}
"""
    return parse_tenants(text).tenants[TENANT]


def bench_tenant(base_url: str):
    """The benchmark's district as a tenant: Infinite Campus over REST, 50K records a page."""
    token_url = base_url.split("/ims/")[0] + "/oauth/token?appName=demo"
    text = f"""
tenants:
  {TENANT}:
    vendor: infinite_campus
    oneroster:
      version: "1.2"
      source: rest
      base_url: {base_url}
      auth: {{type: oauth2, token_url: "{token_url}", client_id_env: BENCH_ID, client_secret_env: BENCH_SECRET}}
      page_size: {PAGE}
      max_concurrency: 1
    privacy: {{demographics: true}}  # the benchmark measures every collection
"""
    return parse_tenants(text).tenants[TENANT]


def night(
    students: int, when: date, root: UPath, clock: Clock, port: int, source: str = "rest"
) -> dict:
    """One night as the nightly job runs it: each collection is taken by the collection step
    (fetched, validated against the stored sourcedIds of the collections it refers to,
    quarantined) and stored as the IO manager stores it, then the mapping step maps the
    columns it maps from the stored Parquet. Timings into ``clock``."""
    clock.start(when)
    counters = {"requests": 0, "records": 0, "minimal_requests": 0}
    lake = Lake(root)
    services = Services(lake, env=BENCH_ENV)

    # Columnar pages (or CSV files) are decoded and normalised in one step (Arrow); the rest
    # record by record.
    module = csv_module if source == "csv" else client_module
    served = (
        drop(students, when, Path(str(root)) / "drops")
        if source == "csv"
        else simulator(students, when, port)
    )
    with (
        Timed(module, "file_batches" if source == "csv" else "decode_page") as columnar,
        Timed(module, "normalise_page") as records,
        Timed(batches_module, "check") as validation,
        Timed(batches_module, "settle") as writing,
        served as where,
    ):
        tenant = csv_tenant(where) if source == "csv" else bench_tenant(where)
        for name in ORDER:
            timers = columnar, records, validation, writing
            marks = tuple(t.mark() for t in timers)
            clock.rss.reset()
            wall, cpu = time.perf_counter(), time.process_time()
            # Referenced collections are loaded as their assets' sourcedId column.
            refs = {
                r: pa.array(read_frame(lake.snapshot(r, when, TENANT), ["sourcedId"])["sourcedId"])
                for r in referenced_collections(name)
            }
            refs_wall, refs_cpu = time.perf_counter() - wall, time.process_time() - cpu
            request = SnapshotRequest(
                TenantNight(TENANT, tenant, when), COLLECTIONS[name], force_refetch=True
            )
            taken = take_snapshot(lake, services, request, refs)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            peak = clock.rss.reset()  # interleaved page by page: one peak for the step
            (cw, cc), (rw, rc), (vw, vc), (ww, wc) = (
                t.since(m) for t, m in zip(timers, marks, strict=True)
            )
            vw, vc = vw + refs_wall, vc + refs_cpu
            clock.add("http_fetch_decode", wall - cw - rw - vw - ww, cpu - cc - rc - vc - wc, peak)
            clock.add("columnar_decode_normalise", cw, cc, peak)
            clock.add("normalisation", rw, rc, peak)
            clock.add("validation", vw, vc, peak)
            counters["records"] += taken.records
            if source == "rest":  # a drop is read, not requested
                counters["requests"] += int(taken.figures["requests"])  # type: ignore[call-overload]
                counters["minimal_requests"] += max(1, math.ceil(taken.records / PAGE))
            clock.add("parquet_write", ww, wc, peak)  # batch by batch, as the pages came
            del taken, refs
            release_memory()  # the step ends, as the IO manager ends it
    counters["decode_cpu_s"] = sum(
        clock.stages[s]["cpu_s"]
        for s in ("http_fetch_decode", "columnar_decode_normalise", "normalisation")
    )
    # Reads the stored snapshot's columns it maps, as the mapping step does, in a process of
    # its own as Dagster runs it (not after what the collection steps left in this one).
    step = in_fresh_process(mapped_rows, str(root), when)
    clock.add("canvas_mapping", step["wall_s"], step["cpu_s"], step["peak_rss_mb"])
    counters["mapping"] = step["result"]
    return counters


def mapped_rows(root: str, when: date) -> dict[str, int]:
    """The night's Canvas mapping: its rows by Canvas file."""
    figures = map_night(Lake(UPath(root)), TenantNight(TENANT, BENCH_TENANT, when))
    return {k.removesuffix("_rows"): v for k, v in figures.items() if k.endswith("_rows")}


REPEATS = 3


def best_of(run: Callable[[], object]) -> float:
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def duckdb_delta(left: Path, right: Path) -> tuple[float, dict[str, int]]:
    con = duckdb.connect()
    started = time.perf_counter()
    key = "section_id, user_id, role"
    values = "course_id, status, start_date, end_date"
    counts = con.execute(
        f"""
        with a as (select {key}, hash({values}) h from read_parquet('{left}')),
             b as (select {key}, hash({values}) h from read_parquet('{right}'))
        select
          count(*) filter (where a.section_id is null) as added,
          count(*) filter (where b.section_id is null) as removed,
          count(*) filter (where a.section_id is not null and b.section_id is not null and a.h <> b.h) as changed
        from a full outer join b using ({key})
        """
    ).fetchone()
    return time.perf_counter() - started, {
        "add": counts[0],
        "remove": counts[1],
        "update": counts[2],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench")
    parser.add_argument("--size", choices=SIZES, default="small")
    parser.add_argument(
        "--source",
        choices=SOURCES,
        default="rest",
        help="rest: the simulated SIS over OneRoster REST; csv: the same district's CSV drop",
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--port", type=int, default=8791)
    parser.add_argument(
        "--gpb",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run a night of grade passback for the district (--no-gpb: rostering only)",
    )
    parser.add_argument(
        "--gradebook-share",
        type=int,
        default=gpb.GRADEBOOK_SHARE,
        help="one course in this many keeps its gradebook in Canvas (the tests: 1, every course)",
    )
    parser.add_argument(
        "--students",
        type=int,
        help="override the size's student count (the tests run a tiny district)",
    )
    args = parser.parse_args(argv)
    clock = Clock()
    try:
        return _bench(args, clock)
    finally:
        clock.rss.stop()


def _bench(args: argparse.Namespace, clock: Clock) -> int:
    students = args.students or SIZES[args.size]
    with tempfile.TemporaryDirectory(prefix="sis-bench-") as tmp:
        root = UPath(tmp)
        lake = Lake(root)
        started = time.perf_counter()
        # Night 1 is the set-up: the stored state.
        night(students, NIGHT1, root, clock, args.port, args.source)
        counters = night(students, NIGHT2, root, clock, args.port + 1, args.source)
        with clock.stage("delta"):
            delta = compute_delta(
                canvas_files(lake, TENANT, NIGHT1),
                canvas_files(lake, TENANT, NIGHT2),
                BENCH_CANVAS,
                NIGHT2,
            )
        with clock.stage("canvas_csv_zip"):
            data = build_zip(
                {n: f.drop(columns=[INTERNAL], errors="ignore") for n, f in delta.files.items()}
            )
        total_s = time.perf_counter() - started
        # The pipeline's own peaks, before the baselines below load whole files to compare.
        rostering_peak = max(max_rss_mb(), clock.peak_rss_mb)
        passback = (
            gpb.run(root, TENANT, (NIGHT1, NIGHT2), args.port + 3, clock, args.gradebook_share)
            if args.gpb
            else None
        )
        # The mapping and grade passback's steps run each in a process of its own, as
        # Dagster runs assets: the run's peak is its largest process's.
        run_peak = max(max_rss_mb(), clock.peak_rss_mb)
        # Baselines on the same files.
        left = Path(str(lake.canvas_file("enrollments", NIGHT1, TENANT)))
        right = Path(str(lake.canvas_file("enrollments", NIGHT2, TENANT)))
        # Best of three for us and for each baseline alike: the first call of either pays
        # one-off costs (thread pools, allocator growth) that a nightly run pays only once.
        our_delta_s = best_of(
            lambda: file_delta(
                "enrollments", UPath(left), UPath(right), Canvas(source="simulator"), NIGHT2
            )
        )
        duck_s, duck_counts = min(duckdb_delta(left, right) for _ in range(REPEATS))
        enrollments = pq.read_table(str(lake.snapshot("enrollments", NIGHT2, TENANT)))
        # Ours: the snapshot writer's way, a batch at a time into a staged file, published.
        our_write_s = best_of(
            lambda: write_tables(
                (pa.Table.from_batches([b]) for b in enrollments.to_batches(BATCH_ROWS)),
                root / "write-ours.parquet",
            )
        )
        pyarrow_write_s = best_of(
            lambda: pq.write_table(
                enrollments, str(root / "write-pyarrow.parquet"), compression="zstd"
            )
        )
    # The limit, side by side: the same page bytes through the fastest plain decoders.
    with simulator(students, NIGHT2, args.port + 2) as base_url:
        pages = sample_pages(TENANT, bench_tenant(base_url), BENCH_ENV, PAGE, LIMIT_PAGES)
    limit = decode_limit(pages)
    del pages
    stages = {k: {m: round(v, 3) for m, v in s.items()} for k, s in clock.stages.items()}
    compute_after_http = sum(
        clock.stages[s]["wall_s"]
        for s in ("validation", "parquet_write", "canvas_mapping", "delta", "canvas_csv_zip")
    )
    decode_cpu = counters["decode_cpu_s"]
    report = {
        "size": args.size,
        "source": args.source,
        "students": students,
        "enrollments": counters["mapping"].get("enrollments", 0),
        "oneroster_records": counters["records"],
        "stages": stages,
        "compute_after_http_s": round(compute_after_http, 3),
        "peak_rss_mb": run_peak,
        "rostering_peak_rss_mb": rostering_peak,
        "decode_records_per_s": round(counters["records"] / decode_cpu) if decode_cpu else None,
        "http_requests": counters["requests"],
        "http_requests_minimal": counters["minimal_requests"],
        "canvas_changes": len(delta.changes),
        "zip_bytes": len(data),
        "baselines": {
            "duckdb_delta_s": round(duck_s, 3),
            "pyarrow_write_s": round(pyarrow_write_s, 3),
        },
        "ours": {
            "enrollments_delta_s": round(our_delta_s, 3),
            "enrollments_write_s": round(our_write_s, 3),
        },
        "ratios": {
            "delta_vs_duckdb": round(our_delta_s / duck_s, 2),
            "write_vs_pyarrow": round(our_write_s / pyarrow_write_s, 2),
        },
        "duckdb_delta_counts": duck_counts,
        "decode_limit": limit,
        # Our decode and normalise rate as a share of the fastest plain decoder's (0-1).
        "decode_share_of_limit": limit["ours_share_of_best_plain"],
        "gpb": passback,
        "total_s": round(total_s, 1),
        "machine": {
            "python": platform.python_version(),
            "cpus": __import__("os").cpu_count(),
            "platform": platform.platform(),
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    report_name = (
        f"{args.size}.json" if args.source == "rest" else f"{args.size}-{args.source}.json"
    )
    (args.out / report_name).write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'stage':<26} {'wall s':>9} {'cpu s':>9} {'peak RSS MB':>12}")
    for name, s in stages.items():
        print(f"{name:<26} {s['wall_s']:>9.2f} {s['cpu_s']:>9.2f} {s['peak_rss_mb']:>12.0f}")
    for key in (
        "compute_after_http_s",
        "peak_rss_mb",
        "decode_records_per_s",
        "http_requests",
        "http_requests_minimal",
        "enrollments",
    ):
        print(f"{key:<28} {report[key]}")
    print(
        f"{'delta vs duckdb':<28} {report['ratios']['delta_vs_duckdb']}x  ({our_delta_s:.2f}s vs {duck_s:.2f}s)"
    )
    print(
        f"{'write vs pyarrow':<28} {report['ratios']['write_vs_pyarrow']}x  ({our_write_s:.2f}s vs {pyarrow_write_s:.2f}s)"
    )
    print(
        f"{'decode vs best plain':<28} {limit['ours_share_of_best_plain']:.0%}  "
        f"({limit['ours_records_per_cpu_s']:,} vs orjson+from_pylist "
        f"{limit['orjson_from_pylist_records_per_cpu_s']:,}, pyarrow.json "
        f"{limit['pyarrow_json_ndjson_records_per_cpu_s']:,} records per CPU second)"
    )
    if passback is not None:
        before = passback["before"]
        print(
            f"{'grade passback night':<28} {passback['canvas_requests']:,} Canvas requests "
            f"(every course, one at a time: {before['canvas_requests']:,}), "
            f"{passback['sis_requests']:,} SIS requests, {passback['wall_s']:.1f}s, "
            f"{passback['peak_rss_mb']:.0f} MB; at Canvas's throttle "
            f"{passback['projected_hours_at_canvas_throttle']:.2f} h "
            f"(was {before['projected_hours_at_canvas_throttle']:.2f} h)"
        )
    print(f"written to {args.out / report_name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
