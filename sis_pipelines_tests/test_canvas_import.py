"""Uploading to Canvas over HTTP: polling, failures, throttling, and convergence over nights."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sis_pipelines.canvas import api as api_module
from sis_pipelines.canvas.api import CanvasClient, CanvasError, Polling
from sis_pipelines.canvas.delta import compute_delta, with_retained
from sis_pipelines.canvas.mapping import INTERNAL, map_snapshot
from sis_pipelines.canvas.package import build_zip
from sis_pipelines.core.tenants import Canvas
from sis_pipelines.simulator.canvas import CanvasSimulator
from sis_pipelines.simulator.district import District

from .support import canonical, canvas_matches

FAST = Polling(first_wait_s=0.001, max_wait_s=0.01, throttle_retries=4)


@pytest.fixture
def canvas():
    with CanvasSimulator() as sim:
        yield sim


def zip_of(files) -> bytes:
    return build_zip({n: f.drop(columns=[INTERNAL], errors="ignore") for n, f in files.items()})


@pytest.fixture(scope="module")
def first_night():
    files = map_snapshot(
        canonical(District(150, 9).snapshot(date(2026, 11, 21))),
        Canvas(source="simulator"),
        date(2026, 11, 21),
    )
    return zip_of(files)


def test_upload_is_polled_to_its_end(canvas, first_night):
    with CanvasClient("t1", canvas.base_url, canvas.token, 1, FAST) as client:
        created = client.post_sis_import(first_night, {})
        assert created["workflow_state"] == "created"
        final = client.wait(created["id"])
    assert final["workflow_state"] == "imported"
    assert final["data"]["counts"]["users"] > 0
    assert [method for method, _ in canvas.requests] == ["POST", "GET", "GET", "GET"]
    assert "import_type=instructure_csv" in canvas.requests[0][1]


def test_a_failed_import_reports_canvas_messages(canvas, first_night):
    canvas.fail_next = 1
    with CanvasClient("t1", canvas.base_url, canvas.token, 1, FAST) as client:
        final = client.wait(client.post_sis_import(first_night, {})["id"])
    assert final["workflow_state"] == "failed_with_messages"
    assert "simulated failure" in str(final["processing_errors"])


def test_throttling_is_waited_out(canvas, first_night, monkeypatch):
    sleeps: list[float] = []
    monkeypatch.setattr(api_module.time, "sleep", sleeps.append)
    canvas.throttle_next = 3
    with CanvasClient("t1", canvas.base_url, canvas.token, 1, FAST) as client:
        final = client.wait(client.post_sis_import(first_night, {})["id"])
        assert client.throttled == 3
    assert final["workflow_state"] == "imported"
    assert len(sleeps) >= 3


def test_endless_throttling_gives_up_with_a_clear_error(canvas, first_night, monkeypatch):
    monkeypatch.setattr(api_module.time, "sleep", lambda s: None)
    canvas.throttle_next = 100
    with (
        CanvasClient("t1", canvas.base_url, canvas.token, 1, FAST) as client,
        pytest.raises(CanvasError, match="still throttled"),
    ):
        client.post_sis_import(first_night, {})


def test_a_wrong_token_is_refused_and_not_echoed(canvas, first_night):
    with (
        CanvasClient("t1", canvas.base_url, "wrong-token-123", 1, FAST) as client,
        pytest.raises(CanvasError) as caught,
    ):
        client.post_sis_import(first_night, {})
    assert caught.value.status == 401
    assert "wrong-token-123" not in str(caught.value)


def apply_nights(sim: CanvasSimulator, district: District, cfg: Canvas, nights: list[date]) -> dict:
    """Each night's delta (or whole state, diffing) applied; the last night's whole state:
    its mapping and what Canvas keeps after it left the SIS."""
    previous, retained = None, {}
    files = {}
    enrolled: set[str] = set()
    with CanvasClient("t1", sim.base_url, sim.token, 1, FAST) as client:
        for night in nights:
            files = map_snapshot(canonical(district.snapshot(night)), cfg, night)
            delta = compute_delta(previous, files, cfg, night, retained=retained)
            if cfg.import_mode == "diffing":
                package, params = (
                    with_retained(files, delta.retained),
                    {
                        "diffing_data_set_identifier": "t1",
                        "diffing_user_remove_status": cfg.user_remove_status,
                        "diffing_drop_status": "completed",
                    },
                )
            else:
                package, params = delta.files, {}
            if any(len(f) for f in package.values()):
                final = client.wait(client.post_sis_import(zip_of(package), params)["id"])
                assert final["workflow_state"] == "imported", final
            previous, retained = files, delta.retained
            # Whatever the nights, a course that ever had an enrollment is never deleted.
            enrolled |= {r["course_id"] for r in sim.state["enrollments"].values()}
            deleted = {k for k, r in sim.state["courses"].items() if r["status"] == "deleted"}
            assert not enrolled & deleted, night
    return with_retained(files, retained)


DISTRICT = District(120, 21)


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    offsets=st.lists(
        st.integers(min_value=0, max_value=400), min_size=1, max_size=4, unique=True
    ).map(sorted),
    mode=st.sampled_from(["delta", "diffing"]),
    remove=st.sampled_from(["deleted", "suspended"]),
)
def test_canvas_converges_to_the_latest_snapshot(offsets, mode, remove):
    # Nights from mid-December 2026 over a semester end and the 1 August rollover.
    nights = [date(2026, 12, 15) + timedelta(days=o) for o in offsets]
    cfg = Canvas(source="simulator", import_mode=mode, user_remove_status=remove, observers=True)
    with CanvasSimulator() as sim:
        latest = apply_nights(sim, DISTRICT, cfg, nights)
        canvas_matches(sim, latest)


def test_convergence_over_a_week_of_nights():
    cfg = Canvas(source="simulator", course_mode="course_term")
    with CanvasSimulator() as sim:
        latest = apply_nights(
            sim, DISTRICT, cfg, [date(2027, 7, 28) + timedelta(days=i) for i in range(7)]
        )
        canvas_matches(sim, latest)
