"""The one exception workflow: states, approval by Cedar, lifetimes, renewals, and what gates see."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from phase8_assets.domains.exceptions import Approvals, exception_findings, states
from phase8_assets.domains.gates import GATES, Finding, apply_waivers
from phase8_assets.evidence.collect import Waiver
from phase8_assets.evidence.config import ExceptionSettings
from phase8_assets.shared.yaml_loader import load_yaml
from phase8_assets_tests.conftest import DATA

AT = datetime(2026, 11, 20, 12, tzinfo=UTC)
SETTINGS = ExceptionSettings(timedelta(days=90), "P90D", {"perf_regressions": (timedelta(days=30), "P30D")},
                             timedelta(days=14))  # fmt: skip
DEMO_POLICY = load_yaml((DATA / "policy/governance/access.yaml").read_bytes())
DEMO_TEAMS = load_yaml((DATA / "policy/governance/teams.yaml").read_bytes())
DEMO_OWNERS = load_yaml((DATA / "phase8.yaml").read_bytes())["owners"]
BLOCKING = {name: spec.blocking for name, spec in GATES.items()}


def gate_owner(gate: str) -> str:
    return DEMO_OWNERS.get(gate, DEMO_OWNERS["default"])


APPROVALS = Approvals([DEMO_POLICY], [DEMO_TEAMS], BLOCKING, gate_owner)


def exception(**changes) -> Waiver:
    base = Waiver(
        "policy_compliance", "acme-files", "files.max", "team:data-platform", "legacy files until the purge job",
        "GOV-1", AT + timedelta(days=60), "w.yaml", id="GOV-1", requested_by="arjun@chatterbox.example",
        approved_by="ines@chatterbox.example", approved_at=AT - timedelta(days=5),
    )  # fmt: skip
    return replace(base, **changes)


def state(doc: Waiver, settings=SETTINGS, approvals=APPROVALS):
    return states([doc], settings, AT, approvals)[0]


@pytest.mark.parametrize(
    ("changes", "expected", "why"),
    [
        ({}, "active", "until"),
        ({"approved_by": None, "approved_at": None}, "requested", "awaiting approval"),
        ({"requested_by": None}, "requested", "requested_by is missing"),
        ({"approved_at": AT + timedelta(hours=1)}, "requested", "later than now"),
        ({"approved_by": "ruth@chatterbox.example"}, "active", "until"),  # a release manager
        ({"approved_by": "sam@chatterbox.example"}, "refused", "does not let sam@chatterbox.example approve"),
        ({"approved_by": "nobody@elsewhere.example"}, "refused", "in no team"),
        ({"approved_by": "arjun@chatterbox.example"}, "refused", "approved their own request"),
        ({"expires": AT + timedelta(days=120)}, "refused", "the maximum for policy_compliance is P90D"),
        (
            {"gate": "perf_regressions", "owner": "team:data-platform"},
            "refused",
            "maximum for perf_regressions is P30D",
        ),
        ({"starts": AT + timedelta(days=2)}, "approved", "takes effect"),
        ({"expires": AT + timedelta(days=10)}, "expiring", "left"),
        ({"expires": AT - timedelta(seconds=1)}, "expired", "expired 2026-11-20T11:59:59Z"),
        # never in force: it starts, or was approved, only once it has expired (was: 'approved' with
        # no finding at all, or 'expired' as if it had once applied)
        ({"starts": AT + timedelta(days=70)}, "refused", "takes effect 2027-01-29T12:00:00Z, not before it expires"),
        (
            {"approved_at": AT - timedelta(days=1), "expires": AT - timedelta(days=2)},
            "refused",
            "was approved 2026-11-19T12:00:00Z, not before it expires 2026-11-18T12:00:00Z",
        ),
    ],
)
def test_states(changes, expected, why):
    result = state(exception(**changes))
    assert (result.state, why in result.reason) == (expected, True), result.reason


@pytest.mark.parametrize(
    ("gate", "approved_by", "expected"),
    [
        # policy_compliance blocks; team:data-governance owns it (phase8.yaml owners)
        ("policy_compliance", "ines@chatterbox.example", "active"),  # the gate's owner
        ("policy_compliance", "ruth@chatterbox.example", "active"),  # a release manager
        ("policy_compliance", "mei@chatterbox.example", "refused"),  # the exception's own team: no
        # rollback_integrity blocks; team:data-platform owns it
        ("rollback_integrity", "mei@chatterbox.example", "active"),
        ("rollback_integrity", "marco@chatterbox.example", "refused"),
        # cost_budgets only warns; team:finops owns it, and the exception's own team may approve too
        ("cost_budgets", "mei@chatterbox.example", "active"),
        ("cost_budgets", "marco@chatterbox.example", "refused"),
        # a gate the product does not know counts as blocking, owned by the default owner
        ("no_such_gate", "mei@chatterbox.example", "refused"),
        ("no_such_gate", "deniz@chatterbox.example", "active"),
    ],
)
def test_a_blocking_gates_exception_is_approved_by_the_gates_owner_not_by_whoever_the_requester_names(
    gate, approved_by, expected
):
    """The exception's owner is what its requester wrote: a team that names itself the owner must
    not be able to waive another team's blocking gate among themselves."""
    result = state(exception(gate=gate, owner="team:data-platform", approved_by=approved_by))
    assert result.state == expected, result.reason
    if expected == "refused":
        assert result.reason == f"the access policy does not let {approved_by} approve it"


def test_the_gate_owner_is_an_entity_the_roots_policy_can_name():
    only_owners = {"cedar": 'permit (principal, action == Phase8::Action::"approve", resource is Phase8::Exception) '
                   "when { principal in resource.gate_owner };"}  # fmt: skip
    approvals = Approvals([only_owners], [DEMO_TEAMS], BLOCKING, lambda gate: "team:messaging")
    assert state(exception(approved_by="marco@chatterbox.example"), approvals=approvals).state == "active"
    assert state(exception(approved_by="ruth@chatterbox.example"), approvals=approvals).state == "refused"
    # a user may own a gate too
    approvals = Approvals([only_owners], [DEMO_TEAMS], BLOCKING, lambda gate: "sam@chatterbox.example")
    assert state(exception(approved_by="sam@chatterbox.example"), approvals=approvals).state == "active"


def test_nobody_approves_their_own_request_even_when_the_roots_policy_permits_everything():
    permissive = {"cedar": "permit (principal, action, resource);"}
    approvals = Approvals([permissive], [DEMO_TEAMS], {}, gate_owner)
    assert state(exception(approved_by="arjun@chatterbox.example"), approvals=approvals).state == "refused"
    assert state(exception(), approvals=approvals).state == "active"
    # however the request spells the requester: an e-mail address's case does not make two people
    spelt = exception(approved_by="arjun@chatterbox.example", requested_by="Arjun@Chatterbox.Example")
    result = state(spelt, approvals=approvals)
    assert (result.state, result.reason) == (
        "refused",
        "arjun@chatterbox.example approved their own request (requested by Arjun@Chatterbox.Example)",
    )


def test_an_approval_without_its_date_is_not_in_force():
    """Measured from the evaluation time, the lifetime of a three-year exception would fit a 90-day
    maximum once its last 90 days began; the approval's date is what the lifetime starts from."""
    undated = exception(approved_at=None, expires=AT + timedelta(days=30))
    assert (state(undated).state, state(undated).reason) == (
        "requested",
        "approved_at is missing: an approval needs its date, the exception's lifetime starts there (or at starts)",
    )


def test_without_an_access_policy_no_approval_can_be_checked():
    result = state(exception(), approvals=Approvals([], [DEMO_TEAMS], {}, gate_owner))
    assert (result.state, result.reason) == ("refused", "no readable AccessPolicy to check the approval against")


def test_a_root_without_required_approval_keeps_unapproved_waivers_working():
    lax = replace(SETTINGS, require_approval=False, reason="migrating to approvals (GOV-1)")
    assert state(exception(approved_by=None, approved_at=None), settings=lax, approvals=None).state == "active"
    found = exception_findings([], [], [], lax, "rb.md", "team:x", "/root/phase8.yaml")
    assert [(f.severity, f.rule, f.evidence) for f in found] == [
        ("warning", "approval-required", "/root/phase8.yaml")  # the config that says so
    ]


def test_an_expired_exception_renewed_by_an_approved_one_stops_warning():
    old = exception(expires=AT - timedelta(days=1), approved_at=AT - timedelta(days=40))
    new = exception(id="GOV-2", renews="GOV-1")
    assert [s.state for s in states([old, new], SETTINGS, AT, APPROVALS)] == ["renewed", "active"]
    unapproved = exception(id="GOV-2", renews="GOV-1", approved_by=None, approved_at=None)
    assert [s.state for s in states([old, unapproved], SETTINGS, AT, APPROVALS)] == ["expired", "requested"]


def violation(subject="acme-files", rule="files.max") -> Finding:
    return Finding("error", subject, rule, "1500d old", "<= P3Y", "inventory.json", "team:x", "rb.md")


def test_only_exceptions_in_force_waive_and_an_idle_one_is_named_on_the_finding():
    active = states([exception()], SETTINGS, AT, APPROVALS)
    assert [f.severity for f in apply_waivers("policy_compliance", [violation()], active, AT, "o", "rb")] == ["waived"]
    for changes in ({"approved_by": None, "approved_at": None}, {"approved_by": "arjun@chatterbox.example"},
                    {"starts": AT + timedelta(days=1)}):  # fmt: skip
        idle = states([exception(**changes)], SETTINGS, AT, APPROVALS)
        [out] = apply_waivers("policy_compliance", [violation()], idle, AT, "o", "rb")
        assert out.severity == "error" and out.details["exception_not_applied"]["state"] == idle[0].state


def test_policy_exceptions_findings_name_the_owner_and_block_only_refusals():
    docs = [
        exception(),
        exception(id="GOV-2", approved_by=None, approved_at=None),
        exception(id="GOV-3", approved_by="arjun@chatterbox.example"),
        exception(id="GOV-4", expires=AT + timedelta(days=3)),
        exception(id="GOV-5", expires=AT - timedelta(days=3), approved_at=AT - timedelta(days=30)),
        exception(
            id="GOV-5",
            owner="team:tenancy",
            requested_by="priya@chatterbox.example",
            approved_by="ines@chatterbox.example",
        ),
    ]
    found = exception_findings(states(docs, SETTINGS, AT, APPROVALS), [], [], SETTINGS, "rb.md", "team:gov")
    by_rule = sorted((f.severity, f.rule, f.owner) for f in found)
    assert by_rule == [
        ("error", "exception-id-unique", "team:tenancy"),
        ("error", "exception-refused", "team:data-platform"),
        ("warning", "exception-expired", "team:data-platform"),
        ("warning", "exception-expiring", "team:data-platform"),
        ("warning", "exception-requested", "team:data-platform"),
    ]


def test_only_a_live_renewal_hides_an_expired_exception():
    """An expired exception 'renewed' by another expired one, by itself, or in a cycle of expired
    ones was shown as renewed: no warning, no note on the finding it no longer waives. A chain that
    ends in one in force renews every link."""
    gone = {"expires": AT - timedelta(days=1), "approved_at": AT - timedelta(days=40)}
    a, b = exception(id="GOV-A", renews="GOV-B", **gone), exception(id="GOV-B", renews="GOV-A", **gone)
    assert [s.state for s in states([a, b], SETTINGS, AT, APPROVALS)] == ["expired", "expired"]
    assert states([exception(id="GOV-A", renews="GOV-A", **gone)], SETTINGS, AT, APPROVALS)[0].state == "expired"
    old, middle = exception(id="GOV-1", **gone), exception(id="GOV-2", renews="GOV-1", **gone)
    assert [s.state for s in states([old, middle], SETTINGS, AT, APPROVALS)] == ["expired", "expired"]
    chain = states([old, middle, exception(id="GOV-3", renews="GOV-2")], SETTINGS, AT, APPROVALS)
    assert [s.state for s in chain] == ["renewed", "renewed", "active"]
    assert chain[1].reason.startswith("renewed by GOV-3")
    found = exception_findings(states([a, b], SETTINGS, AT, APPROVALS), [], [], SETTINGS, "rb.md", "team:gov")
    assert sorted((f.rule, f.subject.split()[0]) for f in found) == [("exception-expired", "GOV-A"),
                                                                     ("exception-expired", "GOV-B")]  # fmt: skip


@pytest.mark.parametrize(
    "change, field",
    [
        # A misspelt per-gate maximum left policy_compliance with the 90-day default: longer exceptions passed.
        ("  max_lifetime: P90D\n  per_gate: {policy_complaince: P30D}\n", "exceptions.per_gate.policy_complaince"),
        # A misspelt gate owner made the default owner (team:platform-reliability) the gate's approvers.
        ("owners:\n  policy_complaince: team:data-governance\n", "owners.policy_complaince"),
    ],
)
def test_a_config_key_naming_no_gate_is_refused(tmp_path, change, field):
    import shutil

    from phase8_assets.defs.resources import load_evidence_config
    from phase8_assets.evidence.config import ConfigError

    root = tmp_path / "root"
    shutil.copytree(DATA, root)
    text = (root / "phase8.yaml").read_text()
    anchor = change.split("\n", 1)[0] + "\n"
    assert anchor in text
    (root / "phase8.yaml").write_text(text.replace(anchor, change, 1))
    with pytest.raises(ConfigError, match=rf"{field}: unknown gate; expected one of .*policy_compliance"):
        load_evidence_config([str(root)])
