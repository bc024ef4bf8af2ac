"""The Phase 8 program on the demo evidence, read once: every gate serves an item, the config's
owners, cadences and families, and the gate's rules (no Dagster: collect + assess + findings)."""

import copy
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from phase8_assets.demo.config import EVALUATION_TIME as AT
from phase8_assets.domains.gates import GATES
from phase8_assets.domains.program import (
    FAMILIES,
    ITEMS,
    PROGRAM_WIDE,
    assess,
    coverage,
    findings,
    gates_of,
    item_cells,
    latest_statuses,
    percent,
    rows,
    weekly_trend,
)
from phase8_assets.evidence.collect import collect
from phase8_assets.evidence.config import ConfigError, load_config
from phase8_assets_tests.conftest import DATA


@pytest.fixture(scope="module")
def demo():
    config = load_config([str(DATA)])
    batch = collect(config)
    batch.set_aside_future(AT, config.clock_skew)
    return batch, config


def judged(demo, **program_items):
    """The gate's findings on the demo evidence with ``program.items`` changed as given (None drops an item)."""
    batch, config = demo
    program = copy.deepcopy(config.program)
    for item, change in program_items.items():
        if change is None:
            program["items"].pop(item)
        else:
            program["items"][item].update(change)
    return findings(assess(batch, replace(config, program=program), AT), config)[0]


def rules(found):
    return sorted((f.severity, f.subject, f.rule) for f in found)


def test_every_gate_serves_an_item_and_every_item_has_a_gate():
    assert {spec.item for spec in GATES.values()} <= {*ITEMS, PROGRAM_WIDE}
    assert all(gates_of(item) for item in ITEMS)
    assert {item.family for item in ITEMS.values()} == set(FAMILIES)


def test_the_demo_program_is_complete_kept_and_covered(demo):
    batch, config = demo
    program = assess(batch, config, AT)
    coverage(program, batch, config)
    found, context = findings(program, config)
    assert found == []
    assert context == "8 of 8 item(s) covered by a gate, 8 kept their cadence, 4 of 4 families in the verdict"
    by_item = {s.item: s for s in program.items}
    assert by_item["finops"].cadence_note == "newest run 1d 12h old (cost_exports)"
    assert by_item["plugin_security"].cadence_note == "plugin_bundles present for this release"
    figures = {label: percent(v) for s in program.items for label, v in s.coverage.items()}
    assert figures == {
        "benchmarks of the release with a budget": "18/19 (95%)",
        "SLOs with an alert policy": "3/4 (75%)",
        "inventory datasets evaluated": "15/15 (100%)",
        "catalogued drills run within their cadence": "6/6 (100%)",
        "enabled plugins verified": "6/6 (100%)",
        "isolation matrix cells covered": "13/13 (100%)",
        "referenced runbooks current": "23/23 (100%)",
    }


def test_an_item_without_owner_or_cadence_or_declaration_blocks_naming_the_field(demo):
    found = judged(demo, governance={"owner": None}, finops={"cadence": None}, supportability=None)
    assert rules(found) == [
        ("error", "finops", "item-cadence"),
        ("error", "governance", "item-owner"),
        ("error", "supportability", "item-declared"),
    ]
    owner = next(f for f in found if f.rule == "item-owner")
    assert owner.observed == "program.items.governance.owner: none"
    assert owner.evidence.endswith("data/phase8.yaml") and owner.owner == "team:platform-reliability"
    assert owner.runbook.endswith("docs/ops/program-completeness.md")


@pytest.mark.parametrize("placeholder", ["team:TBD", "team:unknown", "team:todo", "team:Unassigned"])
def test_an_item_owned_by_a_placeholder_has_no_owner(demo, placeholder):
    # The config's owner pattern accepts team:TBD; it names nobody (as a runbook's owner), so the
    # item is unowned, not owned by "TBD".
    found = judged(demo, governance={"owner": placeholder})
    assert rules(found) == [("error", "governance", "item-owner")]
    owner = found[0]
    assert placeholder in owner.observed and "placeholder" in owner.observed
    assert owner.owner == "team:platform-reliability"  # the gate's owner: the placeholder answers for nothing


def test_a_missed_cadence_blocks_and_stale_run_evidence_is_left_to_evidence_freshness(demo):
    [missed] = judged(demo, finops={"cadence": "P1D"})
    assert (missed.severity, missed.subject, missed.rule, missed.limit) == (
        "error", "finops", "cadence-kept", "a run at least every P1D")  # fmt: skip
    assert missed.evidence.endswith(".csv.gz") and missed.owner == "team:finops"
    assert missed.details["age_seconds"] == 36 * 3600
    batch, config = demo
    later = AT + timedelta(days=40)  # every drill run is past its 35-day max age: not judged here
    program = assess(batch, replace(config, program=config.program), later)
    drills = next(s for s in program.items if s.item == "chaos_drills")
    assert drills.cadence_state == "unknown" and "evidence_freshness" in drills.cadence_note


def test_a_gate_switched_off_warns_and_a_family_without_a_covered_item_blocks(demo):
    batch, config = demo
    off = {"enabled": False, "reason": "health captures start with 10.5 (CHAT-5012)"}
    found, _ = findings(assess(batch, replace(config, gates={"supportability": off}), AT), config)
    assert rules(found) == [
        ("error", "supportability", "family-present"),
        ("warning", "supportability", "gate-enabled"),
        ("warning", "supportability", "item-covered"),
    ]
    assert next(f for f in found if f.rule == "gate-enabled").observed == f"supportability skipped: {off['reason']}"


def test_a_program_wide_gate_switched_off_is_named_too(demo):
    """evidence_freshness judges every item's evidence: switching it off hides more than one item."""
    batch, config = demo
    off = replace(config, gates={"evidence_freshness": {"enabled": False, "reason": "DC move (CHAT-4900)"}})
    found, _ = findings(assess(batch, off, AT), off)
    assert [(f.severity, f.subject, f.rule, f.observed) for f in found] == [
        ("warning", "program-wide", "gate-enabled", "evidence_freshness skipped: DC move (CHAT-4900)")
    ]


def test_an_unconfigured_stream_warns_naming_the_item(demo):
    batch, config = demo
    kinds = {k: v for k, v in config.evidence.items() if k not in ITEMS["finops"].kinds}
    found, _ = findings(assess(batch, replace(config, evidence=kinds), AT), config)
    assert rules(found) == [("warning", "finops", "item-covered"), ("warning", "finops", "stream-configured")]


def test_a_root_without_program_gets_warnings_only(demo):
    batch, config = demo
    off = {"enabled": False, "reason": "no health captures yet"}
    found, _ = findings(assess(batch, replace(config, program=None, gates={"supportability": off}), AT), config)
    assert {f.severity for f in found} == {"warning"}
    assert ("warning", "program", "program-declared") in rules(found)
    assert ("warning", "supportability", "family-present") in rules(found)


def test_the_weekly_trend_takes_each_weeks_last_run_and_the_worst_gate_of_each_item():
    rows = [
        (datetime(2026, 11, 10, 9), "a", "drill_evidence", "fail"),
        (datetime(2026, 11, 12, 9), "b", "drill_evidence", "pass"),
        (datetime(2026, 11, 17, 9), "c", "upgrade_preflight", "pass"),
        (datetime(2026, 11, 17, 9), "c", "rollback_integrity", "error"),
    ]
    weeks, trend = weekly_trend(rows, datetime(2026, 11, 20, 12), weeks=3)
    assert weeks == ["2026-11-02", "2026-11-09", "2026-11-16"]  # Mondays
    # A week's last run that has no status for a gate of the item leaves the item unmet, never passed.
    assert trend["chaos_drills"] == [None, "pass", "none recorded"]
    assert trend["upgrade_safety"] == [None, "none recorded", "error"]


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ({"upgrade_preflight": "pass", "rollback_integrity": "pass"}, "pass"),
        ({"upgrade_preflight": "pass", "rollback_integrity": "skipped"}, "skipped"),
        ({"upgrade_preflight": "warn", "rollback_integrity": "skipped"}, "skipped"),
        ({"upgrade_preflight": "pass"}, "none recorded"),
        ({"upgrade_preflight": "fail"}, "fail"),
        ({"upgrade_preflight": "pass", "rollback_integrity": "error"}, "error"),
    ],
)
def test_an_item_is_met_only_when_every_gate_of_it_passed_in_the_newest_run(demo, statuses, expected):
    """A gate switched off, or one the newest run did not record (whatever an older run said), leaves its
    item unmet in the scorecard: the item's status is never ``pass`` then."""
    batch, config = demo
    older = [(datetime(2026, 11, 19), "old", gate, "pass") for gate in GATES]
    newest = [(datetime(2026, 11, 20), "new", gate, status) for gate, status in statuses.items()]
    latest = latest_statuses(older + newest)
    assert latest == statuses
    cells = item_cells(assess(batch, config, AT))
    row = next(r for r in rows(cells, latest) if r[0] == "upgrade_safety")
    assert row[3] == expected


def test_the_scorecard_shows_a_gate_off_only_when_it_is_switched_off(demo):
    """A gate whose item has no evidence configured still runs (and fails closed): its status is
    shown, never 'off'; a gate switched off is 'off'."""
    batch, config = demo
    kinds = {k: v for k, v in config.evidence.items() if k not in ITEMS["supportability"].kinds}
    gates = {"cost_budgets": {"enabled": False, "reason": "CHAT-1"}}
    cells = item_cells(assess(batch, replace(config, evidence=kinds, gates=gates), AT))
    latest = {"supportability": "fail", "cost_budgets": "skipped"}
    table = {r[0]: r[4] for r in rows(cells, latest)}
    assert table["supportability"] == "supportability (fail; no evidence of the item configured)"
    assert table["finops"] == "cost_budgets (off)"


def test_the_program_section_is_checked_by_the_config_schema(tmp_path):
    (tmp_path / "phase8.yaml").write_text(
        "apiVersion: phase8/v1\nkind: EvidenceConfig\nextends: " + str(DATA / "phase8.yaml") + "\n"
        "program:\n  items:\n    chaos_drills: {cadence: fortnightly}\n"
    )
    with pytest.raises(ConfigError, match=r"program\.items\.chaos_drills\.cadence: expected an ISO 8601 duration"):
        load_config([str(tmp_path)])


def test_the_program_gate_fails_closed_on_exactly_the_runs_whose_cadence_it_judges():
    from phase8_assets.domains.gates import GATES
    from phase8_assets.domains.program import GATE, ITEMS

    assert set(GATES[GATE].evidence) == {kind for item in ITEMS.values() for kind in item.runs}
