"""One writer per tenant-night step: a second holder is refused naming the first, on the
local lake (flock) and in production (a PostgreSQL advisory lock); a killed holder leaves
nothing held. A writer's live temporary file is never cleared by another writer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from upath import UPath

from sis_pipelines.core.locks import HeldElsewhere, step_lock
from sis_pipelines.core.storage import atomic_write_bytes

PG = {
    "DAGSTER_PG_HOST": "127.0.0.1",
    "DAGSTER_PG_PORT": "5432",
    "DAGSTER_PG_USER": "postgres",
    "DAGSTER_PG_PASSWORD": "trust",
    "DAGSTER_PG_DB": "postgres",
}


def holding(lake: str, env: dict[str, str]) -> subprocess.Popen:
    script = textwrap.dedent(
        f"""
        import time
        from upath import UPath
        from sis_pipelines.core.locks import step_lock
        with step_lock(UPath({lake!r}), "t", "2026-11-21", "canvas/sis_import", "run R-first"):
            print("held", flush=True)
            time.sleep(600)
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert process.stdout.readline().strip() == b"held"
    return process


@pytest.mark.parametrize("backend", ["file", "postgres"])
def test_a_second_holder_is_refused_naming_the_first_and_a_killed_one_holds_nothing(
    tmp_path, monkeypatch, backend
):
    env = PG if backend == "postgres" else {}
    for k in PG:
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    lake = UPath(tmp_path)
    first = holding(str(tmp_path), {k: v for k, v in env.items()})
    try:
        with (
            pytest.raises(HeldElsewhere) as caught,
            step_lock(lake, "t", "2026-11-21", "canvas/sis_import", "run R-second"),
        ):
            pass
        message = str(caught.value)
        assert "canvas/sis_import is being done by run R-first" in message and "\n" not in message
        # Another step of the night, or the same step of another night, is free.
        with step_lock(lake, "t", "2026-11-21", "canvas/delta", "run R-second"):
            pass
        with step_lock(lake, "t", "2026-11-22", "canvas/sis_import", "run R-second"):
            pass
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    # The killed holder's lock goes with its process (PostgreSQL ends its session once it sees
    # the connection closed: soon, not at the same instant).
    for attempt in range(40):
        try:
            with step_lock(lake, "t", "2026-11-21", "canvas/sis_import", "run R-second"):
                break
        except HeldElsewhere:
            if attempt == 39:
                raise
            time.sleep(0.25)


def test_a_live_writers_temporary_file_is_not_cleared_and_a_dead_ones_is(tmp_path):
    target = tmp_path / "x.parquet"
    live = tmp_path / f".x.parquet.{os.uname().nodename.replace('.', '-')}-{os.getpid()}.abc.tmp"
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = tmp_path / f".x.parquet.{os.uname().nodename.replace('.', '-')}-{child.pid}.def.tmp"
    live.write_bytes(b"being written")
    dead.write_bytes(b"left by a killed writer")
    atomic_write_bytes(b"new", UPath(target))
    assert live.exists() and not dead.exists()
    assert target.read_bytes() == b"new"


def test_a_killed_writer_not_yet_reaped_counts_as_gone(tmp_path):
    """A writer killed with its host leaves a zombie until its parent reaps it: its temporary
    file is cleared all the same."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    os.kill(child.pid, signal.SIGKILL)
    time.sleep(0.3)  # dead, not reaped: a zombie
    host = os.uname().nodename.replace(".", "-")
    left = tmp_path / f".x.parquet.{host}-{child.pid}.abc.tmp"
    left.write_bytes(b"half")
    atomic_write_bytes(b"new", UPath(tmp_path / "x.parquet"))
    child.wait()
    assert not left.exists()
