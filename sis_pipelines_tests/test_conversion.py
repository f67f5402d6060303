"""A district converts from one SIS to another: every record gets a new sourcedId, the people,
schools, terms and classes stay. Matched by stable identifiers and sent as change_sis_id.csv
before the night's delta, Canvas keeps every course, section and enrollment (with their
content and grades): nothing is deleted and created again. Ambiguous matches are never guessed."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from sis_pipelines.canvas.conversion import match
from sis_pipelines.cli import main
from sis_pipelines.core.lake import Lake
from sis_pipelines.core.nights import latest_complete_night
from sis_pipelines.operate import evaluate_tenant, run_tenant_night
from sis_pipelines.simulator.district import District
from sis_pipelines.simulator.export import export_bundle
from sis_pipelines.simulator.plugin import canvas_simulator
from sis_pipelines.simulator.server import SimulatorServer

from .support import SECRET

TENANT = """
tenants:
  conv:
    vendor: generic
    oneroster: {{version: "1.1", source: csv, path: "{path}"}}
    canvas: {{source: simulator, account_id: 1}}
"""
# The same tenant once it has moved to Infinite Campus (OneRoster 1.2 over REST).
CONVERTED = """
tenants:
  conv:
    vendor: infinite_campus
    oneroster:
      version: "1.2"
      source: rest
      base_url: {base_url}
      auth: {{type: oauth2, token_url: "{token_url}", client_id_env: IC_ID, client_secret_env: IC_SECRET}}
    canvas: {{source: simulator, account_id: 1}}
"""
ID_COLUMNS = {
    "sourcedId",
    "parentSourcedId",
    "childSourcedIds",
    "schoolYearSourcedId",
    "orgSourcedId",
    "courseSourcedId",
    "schoolSourcedId",
    "termSourcedIds",
    "orgSourcedIds",
    "agentSourcedIds",
    "primaryOrgSourcedId",
    "userSourcedId",
    "classSourcedId",
}


class NewSis:
    """The same district served by the new SIS: every sourcedId its own, everything else the
    same (usernames, emails, school names, class codes, terms)."""

    def __init__(self, district: District, as_of):
        self.district, self.as_of = district, as_of
        self.district_id = district.district_id

    def snapshot(self, night, keep_tobedeleted_days: int = 0):
        def renumber(value):
            if isinstance(value, str):
                return f"ic-{value}"
            if value is None or (not isinstance(value, list) and pd.isna(value)):
                return value
            return [f"ic-{v}" for v in value]

        out = {}
        for name, frame in self.district.snapshot(self.as_of, keep_tobedeleted_days).items():
            frame = frame.copy()
            for column in ID_COLUMNS & set(frame.columns):
                frame[column] = frame[column].map(renumber)
            out[name] = frame
        return out


def test_a_sis_conversion_keeps_every_canvas_course_section_and_enrollment(
    workspace, tmp_path, capsys, monkeypatch, request
):
    """The district's CSV exports, then Infinite Campus over REST with its own ids."""
    instance, data, tenants = workspace
    monkeypatch.setenv("IC_ID", "ic-client")
    monkeypatch.setenv("IC_SECRET", SECRET)
    drops = tmp_path / "drops"
    night2 = latest_complete_night()
    night1 = night2 - timedelta(days=1)
    district = District(150, 11)
    export_bundle(district, night1, drops)
    tenants.write_text(TENANT.format(path=drops))
    assert run_tenant_night(instance, "conv", night1).success
    sim = canvas_simulator("conv", Lake.at(str(data)).simulator_state("canvas"))
    before = {name: dict(sim.active(name)) for name in ("courses", "sections", "enrollments")}
    assert all(before.values())
    # The new SIS serves the district from tonight; its night is mapped, not yet sent.
    new_sis = SimulatorServer(
        "infinite_campus",
        district=NewSis(district, night1),
        night=night1,
        client_id="ic-client",
        client_secret=SECRET,
    ).start()
    request.addfinalizer(new_sis.stop)
    tenants.write_text(CONVERTED.format(base_url=new_sis.base_url, token_url=new_sis.token_url))
    mapped = run_tenant_night(
        instance, "conv", night2, select="group:oneroster or key:canvas/mapping"
    )
    assert mapped.success, mapped.errors
    # Looked at first: the report, nothing stored.
    capsys.readouterr()
    assert main(["convert", "--tenant", "conv", "--from-snapshot", str(night1)]) == 0
    shown = capsys.readouterr().out
    assert "| course |" in shown and "nothing stored" in shown
    report = pq.read_table(data / "evaluate" / "conversion" / str(night2) / "conv.parquet")
    rows = {r["type"]: r for r in report.to_pylist()}
    assert all(rows[t]["ambiguous"] == 0 for t in rows), rows
    assert rows["course"]["unmatched_old"] == 0 and rows["user"]["unmatched_old"] == 0
    assert not (data / "canvas_mapping" / "change_sis_id" / str(night2) / "conv.parquet").exists()
    # Then sent: change_sis_id.csv first, and the night's delta under the new ids.
    assert main(["convert", "--tenant", "conv", "--from-snapshot", str(night1), "--go"]) == 0
    # evaluate shows the night against Canvas as the renames will leave it: nothing to remove
    # nor to create.
    assert evaluate_tenant("conv", night2, out=lambda line: None) == 0
    evaluated = pq.read_table(data / "evaluate" / "changes" / str(night2) / "conv.parquet")
    removing = {"add", "delete", "conclude", "complete", "suspend"}
    assert not removing & set(evaluated.column("action").to_pylist())
    outcome = run_tenant_night(instance, "conv", night2)
    assert outcome.success, outcome.errors
    changes = pq.read_table(data / "canvas" / "changes" / str(night2) / "conv.parquet").to_pandas()
    assert not changes["action"].isin(["delete", "conclude", "complete", "suspend"]).any()
    kept = changes[changes["file"].isin(["courses", "sections", "enrollments", "users"])]
    assert not kept["action"].eq("add").any(), kept.head()  # nothing created again
    for name, rows_before in before.items():
        after = sim.active(name)
        assert len(after) == len(rows_before), name
        assert all("ic-" in key for key in after), name
    assert not [r for r in sim.state["courses"].values() if r["status"] == "deleted"]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.from_regex(r"[a-z]{1,6}", fullmatch=True), min_size=1, max_size=30),
    st.integers(min_value=0, max_value=2**31),
)
def test_matching_recovers_a_renumbering_and_never_guesses(logins, seed):
    """Users renumbered by the new SIS are matched back to their old ids by login; a login two
    users share is ambiguous on both and matched to neither."""
    import random

    rng = random.Random(seed)
    old = pd.DataFrame(
        {
            "user_id": [f"u{i}" for i in range(len(logins))],
            "login_id": logins,
            "email": "",
        }
    )
    order = list(range(len(logins)))
    rng.shuffle(order)
    new = old.iloc[order].assign(user_id=lambda f: "new-" + f["user_id"].str[1:])
    conversion = match({"users": old}, {"users": new})
    shared = {login for login in logins if logins.count(login) > 1}
    expected = {f"u{i}": f"new-{i}" for i, login in enumerate(logins) if login not in shared}
    got = dict(zip(conversion.renames["old_id"], conversion.renames["new_id"], strict=True))
    assert got == expected
    users = conversion.report.set_index("type").loc["user"]
    assert users["ambiguous"] == sum(logins.count(s) for s in shared)


def test_renames_apply_row_after_row_as_canvas_does():
    """A later row that renames an id a row before gave carries the first old id on."""
    from sis_pipelines.canvas.conversion import renamed_files, renames

    rows = pd.DataFrame(
        {
            "old_id": ["c-1", "c-1b", "u-1"],
            "new_id": ["c-1b", "c-1c", "u-2"],
            "type": ["course", "course", "user"],
        }
    )
    by_type = renames(rows)
    assert by_type == {"course": {"c-1": "c-1c", "c-1b": "c-1c"}, "user": {"u-1": "u-2"}}
    enrollments = pd.DataFrame({"course_id": ["c-1", "c-9"], "user_id": ["u-1", "u-3"]})
    renamed = renamed_files({"enrollments": enrollments}, by_type)["enrollments"]
    assert renamed.to_dict("list") == {"course_id": ["c-1c", "c-9"], "user_id": ["u-2", "u-3"]}


def test_a_district_mapping_too_large_or_malformed_is_one_line(monkeypatch, tmp_path, capsys):
    import sis_pipelines.operate.checks as checks

    tenants = tmp_path / "tenants.yaml"
    tenants.write_text(TENANT.format(path=tmp_path / "drops"))
    monkeypatch.setenv("SIS_PIPELINES_TENANTS", str(tenants))
    mapping = tmp_path / "mapping.csv"
    mapping.write_text("old_id,new_id,type\n" + "a,b,user\n" * 10)
    monkeypatch.setattr(checks, "MAX_MAPPING_BYTES", 64)
    night = str(latest_complete_night())
    argv = ["convert", "--tenant", "conv", "--from-snapshot", night, "--mapping", str(mapping)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "above 64" in err and err.count("\n") == 1
