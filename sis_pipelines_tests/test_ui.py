"""What the Dagster UI shows, read through the running webserver's GraphQL API (what the UI
itself reads): CLI runs are runs of the nightly job, with the code location's origin, and
the UI can re-execute them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sis_pipelines.cli import main
from sis_pipelines.demo.screenshots import webserver as running_webserver
from sis_pipelines.nights import latest_complete_night

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).parents[1]
TENANTS = """
tenants:
  ui-a:
    vendor: genesis
    oneroster: {version: "1.1", source: simulator, students: 60, seed: 2}
"""


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A Dagster instance in a folder of its own, as DAGSTER_HOME, with the tenants and data."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    (tmp_path / "tenants.yaml").write_text(TENANTS)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("SIS_PIPELINES_TENANTS", str(tmp_path / "tenants.yaml"))
    monkeypatch.setenv("SIS_PIPELINES_DATA_DIR", str(tmp_path / "data"))
    return home


@pytest.fixture
def webserver(home) -> Iterator[httpx.Client]:
    """``dagster-webserver`` on the instance and this repository's workspace.yaml."""
    with running_webserver() as client:
        yield client


def graphql(client: httpx.Client, query: str, **variables: object) -> dict:
    answer = client.post("/graphql", json={"query": query, "variables": variables})
    answer.raise_for_status()
    body = answer.json()
    assert "errors" not in body, body
    return body["data"]


RUNS = """
query ($job: String!) {
  runsOrError(filter: {pipelineName: $job}) {
    ... on Runs { results { runId pipelineName status repositoryOrigin { repositoryLocationName } } }
  }
}
"""
REEXECUTE = """
mutation ($parent: String!) {
  launchPipelineReexecution(reexecutionParams: {parentRunId: $parent, strategy: ALL_STEPS}) {
    __typename
    ... on LaunchRunSuccess { run { runId rootRunId } }
    ... on PythonError { message }
  }
}
"""


def test_a_cli_run_is_a_run_of_the_job_and_the_ui_can_reexecute_it(webserver, capsys):
    night = str(latest_complete_night())
    assert (
        main(["run", "--tenant", "ui-a", "--night", night, "--select", "key:oneroster/orgs"]) == 0
    )
    out = capsys.readouterr().out
    assert "oneroster__orgs" in out and "ok" in out  # a line per step as it ends
    run_id = out.strip().splitlines()[-1].rsplit("run ", 1)[1].rstrip(")")
    [run] = graphql(webserver, RUNS, job="nightly")["runsOrError"]["results"]
    assert run["runId"] == run_id and run["status"] == "SUCCESS"
    assert run["repositoryOrigin"]["repositoryLocationName"] == "sis_pipelines"
    again = graphql(webserver, REEXECUTE, parent=run_id)["launchPipelineReexecution"]
    assert again["__typename"] == "LaunchRunSuccess", again
    assert again["run"]["rootRunId"] == run_id
