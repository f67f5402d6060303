"""The benchmark works (it is measured by `make bench`, never timed here)."""

from __future__ import annotations

import json
import threading

from bench.run import main


def test_a_tiny_benchmark_run_writes_its_report(tmp_path, capsys):
    threads = threading.active_count()
    assert (
        main(
            [
                *["--size", "small", "--students", "300", "--out", str(tmp_path)],
                *["--port", "8831", "--gradebook-share", "1"],
            ]
        )
        == 0
    )
    report = json.loads((tmp_path / "small.json").read_text())
    for key in (
        "size",
        "students",
        "enrollments",
        "stages",
        "compute_after_http_s",
        "peak_rss_mb",
        "decode_records_per_s",
        "http_requests",
        "baselines",
        "ratios",
    ):
        assert key in report, key
    assert set(report["stages"]) == {
        "http_fetch_decode",
        "columnar_decode_normalise",
        "normalisation",
        "validation",
        "parquet_write",
        "canvas_mapping",
        "delta",
        "canvas_csv_zip",
        "gpb_first_night",
        "gpb_canvas_read",
        "gpb_payloads",
        "gpb_push",
    }
    assert all(s["peak_rss_mb"] > 0 for s in report["stages"].values())
    assert report["stages"]["columnar_decode_normalise"]["cpu_s"] > 0  # the Arrow path is taken
    assert report["students"] == 300 and report["enrollments"] > 0
    assert (
        report["http_requests"] == report["http_requests_minimal"]
    )  # no more requests than the page size requires
    assert {"duckdb_delta_s", "pyarrow_write_s"} <= set(report["baselines"])
    assert {"delta_vs_duckdb", "write_vs_pyarrow"} <= set(report["ratios"])
    # The same enrollments pages through our decoder and the plain ones: every record each.
    limit = report["decode_limit"]
    assert limit["records"] > 0 and limit["ours_records_per_cpu_s"] > 0
    assert limit["orjson_from_pylist_records_per_cpu_s"] > 0
    assert limit["pyarrow_json_ndjson_records_per_cpu_s"] > 0
    assert limit["ours_share_of_best_plain"] > 0
    assert report["decode_share_of_limit"] == limit["ours_share_of_best_plain"]
    # A night of grade passback: its requests, and what a read of every course would cost.
    passback = report["gpb"]
    for key in ("canvas_requests", "sis_requests", "wall_s", "peak_rss_mb"):
        assert passback[key] > 0, key
    # Each step ran in a process of its own (as Dagster runs it); the run's peak is the largest.
    assert report["peak_rss_mb"] >= passback["peak_rss_mb"]
    assert report["peak_rss_mb"] >= report["stages"]["gpb_first_night"]["peak_rss_mb"]
    mapping = report["stages"]["canvas_mapping"]  # a process of its own too
    assert mapping["cpu_s"] > 0 and report["rostering_peak_rss_mb"] >= mapping["peak_rss_mb"]
    night = passback["night"]
    assert night["courses_read"] > 0 and night["submissions"] > 0 and night["failed"] == 0
    assert night["sent"] > 0  # the night's grade changes reached the SIS
    assert passback["canvas_requests"] < passback["before"]["canvas_requests"]
    assert (
        0
        < passback["projected_hours_at_canvas_throttle"]
        < (passback["before"]["projected_hours_at_canvas_throttle"])
    )
    out = capsys.readouterr().out
    assert "delta vs duckdb" in out and "decode vs best plain" in out
    assert "grade passback night" in out
    assert threading.active_count() == threads  # its memory sampler ends with it


def test_a_tiny_benchmark_run_from_the_districts_csv_drop(tmp_path):
    argv = ["--size", "small", "--students", "300", "--out", str(tmp_path), "--port", "8841"]
    argv += ["--no-gpb"]
    assert main([*argv, "--source", "csv"]) == 0
    report = json.loads((tmp_path / "small-csv.json").read_text())
    assert report["source"] == "csv" and report["http_requests"] == 0
    # The same district: as many enrollments as over REST, read by Arrow's CSV reader.
    assert main(argv) == 0
    rest = json.loads((tmp_path / "small.json").read_text())
    assert report["enrollments"] == rest["enrollments"] > 0
    assert report["stages"]["columnar_decode_normalise"]["cpu_s"] > 0
