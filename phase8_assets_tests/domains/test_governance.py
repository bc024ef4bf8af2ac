"""Governance rules: retention, deletion SLAs and Cedar-decided access grants, rule by dataset."""

import copy
from datetime import UTC, datetime, timedelta

from phase8_assets.domains.exceptions import states
from phase8_assets.domains.governance import Policies, evaluate, with_exceptions
from phase8_assets.evidence.collect import _parse_waivers
from phase8_assets.evidence.config import ExceptionSettings
from phase8_assets.evidence.governance import read_access, read_deletion, read_inventory, read_retention, read_teams
from phase8_assets_tests.conftest import DATA

AT = datetime(2026, 11, 20, 12, tzinfo=UTC)
GOV = DATA / "policy/governance"


def policies(**drop) -> Policies:
    found = {
        "retention": [(read_retention((GOV / "retention.yaml").read_bytes(), "r").records[0], "retention.yaml")],
        "deletion": [(read_deletion((GOV / "deletion.yaml").read_bytes(), "d").records[0], "deletion.yaml")],
        "access": [(read_access((GOV / "access.yaml").read_bytes(), "a").records[0], "access.yaml")],
        "teams": [(read_teams((GOV / "teams.yaml").read_bytes(), "t").records[0], "teams.yaml")],
    }
    return Policies(**{k: ([] if k in drop else v) for k, v in found.items()})


INVENTORY = read_inventory((DATA / "evidence/governance/inventory.json").read_bytes(), "inv").records[0]


def inventory(change=None) -> list[tuple[dict, str]]:
    doc = copy.deepcopy(INVENTORY)
    if change:
        change({ds["id"]: ds for ds in doc["datasets"]})
    return [(ds, "inv") for ds in doc["datasets"]]


def violations(evaluations):
    return sorted((e.target, e.rule) for e in evaluations if e.outcome == "violation")


def test_the_demo_inventory_breaks_two_rules_and_its_exceptions_accept_both():
    evaluations = evaluate(policies(), inventory(), AT, "team:gov")
    assert violations(evaluations) == [
        ("acme-files", "files.max"),
        ("globex-messages/DEL-7702", "deletion.user-erasure"),
    ]
    assert {e.outcome for e in evaluations} == {"pass", "violation"}
    exceptions, rejections = [], []
    for path in sorted((DATA / "waivers").glob("*.yaml")):
        found, bad = _parse_waivers(path.read_bytes(), str(path), "")
        exceptions += found
        rejections += bad
    assert rejections == []
    lax = ExceptionSettings(timedelta(days=90), "P90D", {}, timedelta(days=14), False, "matching only here")
    excepted = with_exceptions(evaluations, states(exceptions, lax, AT, None))
    assert violations(excepted) == [] and sum(e.outcome == "excepted" for e in excepted) == 2


def test_retention_rules_by_jurisdiction_legal_hold_and_coverage():
    def change(by_id):
        by_id["initech-messages"]["oldest_record"] = AT - timedelta(days=400)  # EU: one year
        by_id["globex-messages"]["oldest_record"] = AT - timedelta(days=400)  # elsewhere: two years
        by_id["acme-audit-logs"].update(oldest_record=AT - timedelta(days=3000), legal_hold=True)
        by_id["globex-audit-logs"]["retention"] = "P6M"  # the law demands a year
        by_id["initech-telemetry"]["data_class"] = "metrics"  # no rule covers it

    found = violations(evaluate(policies(), inventory(change), AT, "team:gov"))
    assert ("initech-messages", "messages-eu.max") in found and ("globex-messages", "messages.max") not in found
    assert ("acme-audit-logs", "audit-logs.max") not in found  # a legal hold suspends deletion
    assert ("globex-audit-logs", "audit-logs.min") in found
    assert ("initech-telemetry", "retention.coverage") in found


def test_deletion_runs_against_their_sla_and_proof():
    def change(by_id):
        by_id["initech-backups"]["deletion_runs"][0]["proof"] = []
        by_id["acme-messages"]["deletion_runs"] = [
            {"id": "D1", "type": "tenant_offboarding", "requested_at": AT - timedelta(days=3), "completed_at": None,
             "outcome": "pending"},
            {"id": "D2", "type": "tenant_offboarding", "requested_at": AT - timedelta(days=3),
             "completed_at": AT - timedelta(days=2), "outcome": "failed"},
        ]  # fmt: skip

    evaluations = evaluate(policies(), inventory(change), AT, "team:gov")
    found = {(e.target, e.observed) for e in evaluations if e.outcome == "violation"}
    assert ("initech-backups/BKP-2291", "backup_expiry BKP-2291 published no backup_purge_log") in found
    assert ("acme-messages/D2", "tenant_offboarding D2 failed after 1d 0h") in found
    assert not any(e.observed.startswith("tenant_offboarding D1") and e.outcome == "violation" for e in evaluations)


def test_cedar_decides_every_grant():
    def change(by_id):
        by_id["acme-audit-logs"]["access_grants"] = [
            {"principal": "team:support", "action": "read"},  # restricted: support has no permit
            {"principal": "team:data-platform", "action": "export"},  # forbidden outside compliance
            {"principal": "olga@chatterbox.example", "action": "read"},  # compliance
        ]

    evaluations = [e for e in evaluate(policies(), inventory(change), AT, "team:gov") if e.target.startswith("acme-audit-logs/")
                   and e.rule.startswith("access.")]  # fmt: skip
    assert [(e.details["principal"], e.outcome) for e in evaluations] == [
        ("team:support", "violation"), ("team:data-platform", "violation"), ("olga@chatterbox.example", "pass")]  # fmt: skip


def test_nothing_passes_without_its_policy_or_inventory():
    assert violations(evaluate(policies(), [], AT, "team:gov")) == [("data inventory", "inventory.present")]
    found = violations(evaluate(policies(access=True, deletion=True), inventory(), AT, "team:gov"))
    assert ("policies", "access.present") in found and ("policies", "deletion.present") in found
    assert ("acme-messages/team:support", "access.read") in found  # a grant nobody can justify
    assert ("globex-messages/DEL-7702", "deletion.coverage") in found


def test_retention_durations_compare_on_the_calendar_whatever_their_unit():
    """P12M is P1Y (a year is 12 months, not 360 days against 365); P365D falls a day short of a
    year in a leap year; 52 weeks always do."""

    def kept(retention):
        def change(by_id):
            by_id["globex-audit-logs"]["retention"] = retention  # audit logs: min P1Y, max P7Y

        return [rule for target, rule in violations(evaluate(policies(), inventory(change), AT, "team:gov"))
                if target == "globex-audit-logs"]  # fmt: skip

    assert kept("P12M") == [] and kept("P1Y") == [] and kept("P84M") == []
    assert kept("P365D") == ["audit-logs.min"]  # 2028 has 366 days
    assert kept("P52W") == ["audit-logs.min"]
    assert kept("P85M") == ["audit-logs.configured"]


def test_a_record_exactly_the_maximum_old_is_within_it_in_a_leap_year_too():
    """A P1Y maximum is a year on the calendar: a record written on 2025-11-20 12:00 may be kept
    until 2026-11-20 12:00; one a second older may not. (Counted as 365 days, a year spanning a
    29 February ended a day early; P1M counted as 30 days let February's records stay two days
    too long.)"""

    def found(oldest, data_class="messages", at=AT):
        def change(by_id):
            by_id["initech-messages"].update(oldest_record=oldest, data_class=data_class)

        return [rule for target, rule in violations(evaluate(policies(), inventory(change), at, "team:gov"))
                if target == "initech-messages"]  # fmt: skip

    assert found(AT - timedelta(days=365)) == []  # EU messages: P1Y
    assert found(AT - timedelta(days=365, seconds=1)) == ["messages-eu.max"]
    leap_at = datetime(2028, 11, 20, 12, tzinfo=UTC)  # the year before holds 29 February 2028
    assert found(datetime(2027, 11, 20, 12, tzinfo=UTC), at=leap_at) == []  # 366 days, one year
    month = Policies(**{**policies().__dict__, "retention": [
        ({"owner": "team:gov", "rules": [{"id": "scratch", "data_class": "scratch", "max": "P1M"}]}, "r.yaml")]})  # fmt: skip

    def scratch(oldest, at):
        def change(by_id):
            by_id["initech-messages"].update(oldest_record=oldest, data_class="scratch", retention="P1M")

        return violations(evaluate(month, inventory(change), at, "team:gov"))

    feb = datetime(2027, 2, 1, tzinfo=UTC)
    assert ("initech-messages", "scratch.max") in scratch(feb, datetime(2027, 3, 2, tzinfo=UTC))  # 29 days > a month
    assert ("initech-messages", "scratch.max") not in scratch(feb, datetime(2027, 3, 1, tzinfo=UTC))


def test_a_dataset_names_its_data_contract_by_id_or_name_and_an_unknown_one_is_a_violation():
    """ODCS contracts carry an id (often a UUID) and a name; a dataset naming the contract by its
    name had the contract's retention silently not applied, as had one naming a contract that
    does not exist."""
    from phase8_assets.evidence.governance import read_data_contract

    odcs = (b"apiVersion: v3.1.0\nkind: DataContract\nid: 53581432-6c55\nname: my_table\n"
            b"slaProperties:\n  - {property: retention, value: 3, unit: y}\n")  # fmt: skip
    read = read_data_contract(odcs, "c.yaml")
    found = Policies(**{**policies().__dict__, "contracts": [(r, "c.yaml") for r in read.records],
                        "contract_names": {read.summary["contract"], read.summary["name"]}})  # fmt: skip

    def judged(contract):
        def change(by_id):
            by_id["acme-files"].update(contract=contract, oldest_record=AT - timedelta(days=365 * 3 + 30))

        return [rule for target, rule in violations(evaluate(found, inventory(change), AT, "team:gov"))
                if target == "acme-files"]  # fmt: skip

    assert judged("my_table") == ["files.max", "odcs.53581432-6c55.retention.max"]
    assert judged("53581432-6c55") == ["files.max", "odcs.53581432-6c55.retention.max"]
    assert judged("orders") == ["files.max", "retention.contract"]
    # a contract without a retention SLA is known, and constrains nothing
    bare = Policies(**{**policies().__dict__, "contract_names": {"orders"}})
    assert [r for t, r in violations(evaluate(bare, inventory(lambda b: b["acme-files"].update(contract="orders")),
                                              AT, "team:gov")) if t == "acme-files"] == ["files.max"]  # fmt: skip


def test_an_exception_for_one_deletion_run_or_grant_accepts_no_other():
    """GOV-298 accepts the pending erasure DEL-7702; a later erasure of the same dataset that fails, or
    a new grant, is a violation of its own (the subject names the run or the principal), not excepted
    because the dataset and rule match."""

    def change(by_id):
        by_id["globex-messages"]["deletion_runs"].append(
            {"id": "DEL-7800", "type": "user_erasure", "requested_at": AT - timedelta(days=5),
             "completed_at": AT - timedelta(days=4), "outcome": "failed"})  # fmt: skip
        by_id["acme-audit-logs"]["access_grants"] = [
            {"principal": "team:support", "action": "read"},
            {"principal": "sam@chatterbox.example", "action": "read"},
        ]

    evaluations = evaluate(policies(), inventory(change), AT, "team:gov")
    exceptions = [w for path in sorted((DATA / "waivers").glob("*.yaml"))
                  for w in _parse_waivers(path.read_bytes(), str(path), "")[0]]  # fmt: skip
    grant, _ = _parse_waivers(
        (DATA / "waivers/gov-311.yaml").read_text().replace("acme-files", "acme-audit-logs/team:support")
        .replace("files.max", "access.read").replace("GOV-311", "GOV-400").encode(), "w.yaml", "")  # fmt: skip
    lax = ExceptionSettings(timedelta(days=90), "P90D", {}, timedelta(days=14), False, "matching only here")
    excepted = with_exceptions(evaluations, states(exceptions + grant, lax, AT, None))
    assert violations(excepted) == [
        ("acme-audit-logs/sam@chatterbox.example", "access.read"),
        ("globex-messages/DEL-7800", "deletion.user-erasure"),
    ]
    assert sorted(e.target for e in excepted if e.outcome == "excepted") == [
        "acme-audit-logs/team:support", "acme-files", "globex-messages/DEL-7702"]  # fmt: skip
