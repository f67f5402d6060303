"""What the Dagster UI shows, read through the running webserver's GraphQL API (what the UI
itself reads): CLI runs are runs of the nightly job, with the code location's origin, and
the UI can re-execute them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import httpx
import pytest

from sis_pipelines.cli import main
from sis_pipelines.core.nights import latest_complete_night
from sis_pipelines.demo.screenshots import webserver as running_webserver

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).parents[1]
TENANTS = """
tenants:
  ui-a:
    vendor: genesis
    oneroster: {version: "1.1", source: simulator, students: 60, seed: 2}
  ui-b:
    vendor: focus
    oneroster: {version: "1.1", source: simulator, students: 60, seed: 3}
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
    assert answer.status_code == 200, answer.text
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


BACKFILLS = """
{
  partitionBackfillsOrError {
    ... on PartitionBackfills {
      results {
        id status title isAssetBackfill partitionSetName partitionNames numPartitions
        hasCancelPermission hasResumePermission
        runs(limit: 10) { status tags { key value } }
        partitionStatuses { results { partitionName runStatus } }
      }
    }
  }
}
"""
CANCEL = """
mutation ($id: String!) { cancelPartitionBackfill(backfillId: $id) { __typename } }
"""


def _backfills(client: httpx.Client) -> dict[str, dict]:
    answer = graphql(client, BACKFILLS)["partitionBackfillsOrError"]["results"]
    return {b["id"]: b for b in answer}


def _nights(count: int) -> list[str]:
    last = latest_complete_night()
    return [str(last - timedelta(days=count - 1 - i)) for i in range(count)]


def test_a_cli_backfill_is_a_backfill_the_backfills_page_lists(webserver, capsys):
    first, last = _nights(2)
    assert main(["backfill", "--tenant", "ui-a", "--from", first, "--to", last]) == 0
    out = capsys.readouterr().out
    backfill_id = out.splitlines()[0].split()[1]
    backfill = _backfills(webserver)[backfill_id]
    assert backfill["status"] == "COMPLETED_SUCCESS" and not backfill["isAssetBackfill"]
    assert backfill["partitionSetName"] == "nightly_partition_set"
    assert backfill["partitionNames"] == [f"{first}|ui-a", f"{last}|ui-a"]
    assert backfill["title"] == f"ui-a {first}..{last}"
    assert [r["status"] for r in backfill["runs"]] == ["SUCCESS", "SUCCESS"]
    statuses = {
        p["partitionName"]: p["runStatus"] for p in backfill["partitionStatuses"]["results"]
    }
    assert statuses == {f"{first}|ui-a": "SUCCESS", f"{last}|ui-a": "SUCCESS"}
    assert f"backfill {backfill_id}: completed success, 2 of 2 nights launched" in out


def test_a_backfill_cancelled_in_the_ui_stops_and_resumes_from_the_cli(webserver, capsys):
    from sis_pipelines.operate import dagster_instance, run_tenant_night
    from sis_pipelines.operate.backfills import carry_out, create_backfill

    instance = dagster_instance()
    main(["tenants", "sync"])
    nights = _nights(3)
    record = create_backfill(
        instance,
        "nightly",
        [f"{n}|ui-a" for n in nights],
        {},
        [dg.AssetKey(["oneroster", "orgs"])],
        title="ui-a term change",
    )
    ran: list[str] = []

    def run_night(name: str, tags: dict[str, str]) -> bool:
        night = date.fromisoformat(name.split("|")[0])
        outcome = run_tenant_night(instance, "ui-a", night, "key:oneroster/orgs", extra_tags=tags)
        ran.append(name)
        # The operator cancels in the UI while the first night runs.
        graphql(webserver, CANCEL, id=record.backfill_id)
        return outcome.success

    end = carry_out(instance, record, run_night, on_run=print)
    assert (end.status, end.launched, ran) == ("CANCELED", 1, [f"{nights[0]}|ui-a"])
    backfill = _backfills(webserver)[record.backfill_id]
    assert backfill["status"] == "CANCELED" and backfill["hasResumePermission"]

    assert main(["backfill", "--resume", record.backfill_id]) == 0
    backfill = _backfills(webserver)[record.backfill_id]
    assert backfill["status"] == "COMPLETED_SUCCESS"
    assert sorted(
        next(t["value"] for t in r["tags"] if t["key"] == "dagster/partition")
        for r in backfill["runs"]
    ) == [f"{n}|ui-a" for n in nights]
    assert "completed success, 3 of 3 nights launched" in capsys.readouterr().out
    # A finished backfill cannot be resumed again: one line, exit 2.
    assert main(["backfill", "--resume", record.backfill_id]) == 2
    assert "nothing to resume" in capsys.readouterr().err


TENANT_PAGE = """
query ($path: [String!]!) {
  assetNodeOrError(assetKey: {path: $path}) {
    ... on AssetNode {
      groupName
      assetChecksOrError {
        ... on AssetChecks { checks { name } }
      }
    }
  }
  assetCheckExecutions(assetKey: {path: $path}, checkName: "night_arrived", limit: 1) {
    status evaluation { severity description }
  }
  assetOrError(assetKey: {path: $path}) {
    ... on Asset { assetObservations(limit: 50) { partition runId metadataEntries { label } } }
  }
}
"""


def test_a_stopped_tenant_fails_its_own_freshness_while_another_stays_green(webserver, capsys):
    import importlib

    import sis_pipelines.definitions

    # This process may have loaded the definitions for another tenants file; the webserver and
    # a new sis-pipelines process load them for this one.
    importlib.reload(sis_pipelines.definitions)
    latest = latest_complete_night()
    orgs = ["--select", "group:oneroster"]
    assert main(["run", "--tenant", "ui-a", "--night", str(latest), *orgs]) == 0
    stopped = latest - timedelta(days=3)  # ui-b's SIS went quiet three nights ago
    assert main(["run", "--tenant", "ui-b", "--night", str(stopped), *orgs]) == 0
    capsys.readouterr()
    assert main(["freshness"]) == 1
    out = capsys.readouterr().out
    assert f"ok       tenant 'ui-a': night {latest} arrived" in out
    assert f"STOPPED  tenant 'ui-b': last night arrived {stopped}, 3 night(s) behind" in out

    def page(tenant: str) -> tuple[dict, list]:
        data = graphql(webserver, TENANT_PAGE, path=["tenants", tenant])
        node = data["assetNodeOrError"]
        assert node["groupName"] == "tenants"
        assert [c["name"] for c in node["assetChecksOrError"]["checks"]] == ["night_arrived"]
        return data["assetCheckExecutions"][0], data["assetOrError"]["assetObservations"]

    green, a_trend = page("ui-a")
    red, b_trend = page("ui-b")
    assert green["status"] == "SUCCEEDED"
    assert red["status"] == "FAILED" and red["evaluation"]["severity"] == "ERROR"
    assert f"last night arrived {stopped}" in red["evaluation"]["description"]
    # Each tenant's page holds its own nights' trends, and only its own.
    assert {o["partition"] for o in a_trend} == {str(latest)}
    assert {o["partition"] for o in b_trend} == {str(stopped)}
    # The night's latest observation holds the whole night: every collection and its checks.
    labels = {e["label"] for e in a_trend[0]["metadataEntries"]}
    assert {"orgs_rows", "users_rows", "users_quarantined", "enrollments_rows"} <= labels
    assert {"users_quarantine", "users_repairs", "enrollments_quarantine"} <= labels
