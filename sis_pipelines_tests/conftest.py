"""Fixtures every test module may use (helpers are in support.py).

The suite runs on both cores (pytest-xdist): each worker has its own temporary folders,
its simulators take ports the system gives them, and each PostgreSQL test creates a
database of its own, so workers share nothing but the servers of this machine.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

# The tests' nights reach back to the end of the spring term (the rollover walks): the
# partitions start there, unless the environment says otherwise. Set before the
# definitions are imported (their partitions are made then).
os.environ.setdefault("SIS_PIPELINES_FIRST_NIGHT", "2026-05-01")


import dagster as dg
import pytest

from sis_pipelines.simulator.district import District
from sis_pipelines.simulator.server import SimulatorServer
from sis_pipelines.simulator.vendors import VendorProfile

from .support import NIGHT, PLANTED_SECRETS, SECRET


def _one_calendar_day() -> None:
    """The suite runs within one day (UTC): a test that runs a night, then runs it again, asks
    which night is the latest, and midnight in between makes its own night a past one (which
    a real SIS no longer serves). A suite started in the half hour before midnight waits for
    it, once (all workers together)."""
    import time
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
    if midnight - now < timedelta(minutes=30) and not os.environ.get("SIS_PIPELINES_TESTS_NO_WAIT"):
        wait = (midnight - now).total_seconds() + 5
        print(f"the suite waits {wait:.0f}s for midnight UTC, to run within one day", flush=True)
        time.sleep(wait)


_one_calendar_day()


@pytest.fixture(autouse=True)
def nothing_secret_is_written(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test that wrote files, none of them holds a planted secret."""
    if "tmp_path" not in request.fixturenames:
        yield
        return
    root = request.getfixturevalue("tmp_path")  # (torn down after this fixture)
    yield
    for path in root.rglob("*"):
        if not path.is_file() or path.is_symlink():
            continue
        data = path.read_bytes()
        found = [s for s in PLANTED_SECRETS if s.encode() in data]
        assert not found, f"{path} holds {found}"


@pytest.fixture(scope="session")
def small_district() -> District:
    return District(students=300, seed=5)


@pytest.fixture
def simulator(small_district: District) -> Iterator[Callable[..., SimulatorServer]]:
    servers: list[SimulatorServer] = []

    def start(vendor: str | VendorProfile = "genesis", **kwargs: object) -> SimulatorServer:
        kwargs.setdefault("district", small_district)
        kwargs.setdefault("night", NIGHT)
        server = SimulatorServer(vendor, **kwargs).start()  # type: ignore[arg-type]
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """A Dagster instance, a data folder and a tenants file of the test's own."""
    data = tmp_path / "data"
    tenants = tmp_path / "tenants.yaml"
    monkeypatch.setenv("SIS_PIPELINES_DATA_DIR", str(data))
    monkeypatch.setenv("SIS_PIPELINES_TENANTS", str(tenants))
    (tmp_path / "home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "home")) as instance:
        yield instance, data, tenants


@pytest.fixture
def sis(small_district):
    """A Focus SIS (OneRoster 1.1, OAuth 2.0) with its own client id and secret."""
    with SimulatorServer(
        "focus", district=small_district, night=NIGHT, client_id="district-id", client_secret=SECRET
    ) as server:
        yield server


END_TO_END = {"workspace", "postgres_home"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A test that runs Dagster on an instance of its own is an end-to-end run.
    for item in items:
        if END_TO_END & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)
