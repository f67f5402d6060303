"""The benchmark works (it is measured by `make bench`, never timed here)."""

from __future__ import annotations

import json
import threading

from bench.run import main


def test_a_tiny_benchmark_run_writes_its_report(tmp_path, capsys):
    threads = threading.active_count()
    assert (
        main(["--size", "small", "--students", "300", "--out", str(tmp_path), "--port", "8831"])
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
    }
    assert all(s["peak_rss_mb"] > 0 for s in report["stages"].values())
    assert report["stages"]["columnar_decode_normalise"]["cpu_s"] > 0  # the Arrow path is taken
    assert report["students"] == 300 and report["enrollments"] > 0
    assert (
        report["http_requests"] == report["http_requests_minimal"]
    )  # no more requests than the page size requires
    assert {"duckdb_delta_s", "pyarrow_write_s"} <= set(report["baselines"])
    assert {"delta_vs_duckdb", "write_vs_pyarrow"} <= set(report["ratios"])
    assert "delta vs duckdb" in capsys.readouterr().out
    assert threading.active_count() == threads  # its memory sampler ends with it
