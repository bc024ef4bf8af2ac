"""Governance readers: our policy kinds, the data inventory, ODCS contracts, Trivy/Snyk ignore files,
Kyverno PolicyExceptions,
and every bad input as a rejection naming the file's field."""

import json
from datetime import UTC, datetime

import pytest

from phase8_assets.domains.governance import foreign_rot
from phase8_assets.evidence import EvidenceError
from phase8_assets.evidence.collect import _parse_waivers
from phase8_assets.evidence.governance import (
    read_access,
    read_data_contract,
    read_deletion,
    read_foreign_exceptions,
    read_inventory,
    read_retention,
    read_teams,
)
from phase8_assets_tests.conftest import DATA

AT = datetime(2026, 11, 20, 12, tzinfo=UTC)
GOV = DATA / "policy/governance"


def test_the_demo_governance_evidence_reads():
    assert [r["id"] for r in read_retention((GOV / "retention.yaml").read_bytes(), "r").records[0]["rules"]][:2] == [
        "messages", "messages-eu"]  # fmt: skip
    assert read_deletion((GOV / "deletion.yaml").read_bytes(), "d").records[0]["slas"][0]["within"] == "P30D"
    assert "forbid" in read_access((GOV / "access.yaml").read_bytes(), "a").records[0]["cedar"]
    assert "platform-reliability" in read_teams((GOV / "teams.yaml").read_bytes(), "t").records[0]["teams"]
    inventory = read_inventory((DATA / "evidence/governance/inventory.json").read_bytes(), "i")
    assert inventory.summary == {"datasets": 15, "tenants": ["acme", "globex", "initech"]}
    assert inventory.observed_at == datetime(2026, 11, 20, 6, tzinfo=UTC)


def _inventory(**dataset_changes) -> bytes:
    doc = json.loads((DATA / "evidence/governance/inventory.json").read_bytes())
    doc["datasets"][0].update(dataset_changes)
    return json.dumps(doc).encode()


POLICY = (GOV / "retention.yaml").read_text()


@pytest.mark.parametrize(
    ("reader", "data", "field", "reason"),
    [
        (read_retention, POLICY.replace("apiVersion: phase8/v1", "apiVersion: phase8/v2"), "apiVersion",
         "phase8/v1"),
        (read_retention, POLICY.replace("max: P2Y}", "max: 2 years}"), "rules[0].max", "ISO 8601 duration"),
        (read_retention, POLICY.replace("max: P90D}", "max: P90X}"), "rules[4].max", "ISO 8601 duration"),
        (read_access, (GOV / "access.yaml").read_text().replace("forbid (principal,", "forbid (principal"),
         "cedar", "do not parse"),
        (read_inventory, _inventory(oldest_record="2026-01-05T10:00:00"), "datasets[0].oldest_record",
         "no time zone"),
        (read_inventory, _inventory(oldest_record="2026-01-05"), "datasets[0].oldest_record", "with a time zone"),
        (read_inventory, _inventory(retention="one year"), "datasets[0].retention", "ISO 8601 duration"),
        (read_inventory, _inventory(id="acme-files"), "datasets[1].id", "listed twice"),
        # Only null is an empty dataset; times the inventory could not have seen are not evidence.
        (read_inventory, _inventory(oldest_record=""), "datasets[0].oldest_record", "or null, got ''"),
        (read_inventory, _inventory(oldest_record="2027-06-01T00:00:00Z"), "datasets[0].oldest_record",
         "is after generated_at 2026-11-20T06:00:00+00:00"),
        (read_inventory, _inventory(deletion_runs=[{"id": "D1", "type": "user_erasure", "requested_at":
         "2026-11-10T00:00:00Z", "completed_at": "2026-11-09T00:00:00Z", "outcome": "succeeded", "proof": ["r"]}]),
         "datasets[0].deletion_runs[0].completed_at", "is before requested_at 2026-11-10T00:00:00+00:00"),
        (read_inventory, _inventory(deletion_runs=[{"id": "D1", "type": "user_erasure", "requested_at":
         "2027-01-01T00:00:00Z", "completed_at": None, "outcome": "pending", "proof": []}]),
         "datasets[0].deletion_runs[0].requested_at", "is after generated_at"),
        (read_inventory, json.dumps({**json.loads((DATA / "evidence/governance/inventory.json").read_bytes()),
                                     "datasets": []}), "datasets", "expected at least one dataset"),
        (read_inventory, b"apiVersion: phase8/v1\nkind: DataInventory\ngenerated_at: 2026-11-20\ndatasets: []\n",
         "generated_at", "RFC 3339 timestamp"),  # an unquoted YAML date stays a string, and is refused
    ],
)  # fmt: skip
def test_bad_governance_input_names_the_field(reader, data, field, reason):
    with pytest.raises(EvidenceError) as exc:
        reader(data.encode() if isinstance(data, str) else data, "x.yaml")
    assert exc.value.field == field and reason in exc.value.reason, (exc.value.field, exc.value.reason)


WAIVER = """\
apiVersion: phase8/v1
kind: Waiver
gate: policy_compliance
subject: acme-files
owner: team:data-platform
reason: legacy files until the purge job lands
ticket: GOV-1
expires: "2027-01-01T00:00:00Z"
"""


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [
        (WAIVER.replace("owner: team:data-platform\n", ""), "owner", "required"),
        (WAIVER.replace('expires: "2027-01-01T00:00:00Z"\n', ""), "expires", "required"),
        (WAIVER + "approved_by: mei@chatterbox.example\n", "approved_at", "required"),
        (WAIVER + "approved_by: mei@chatterbox.example\napproved_at: 2026-11-01\n", "approved_at", "time zone"),
        (WAIVER + "approved_by: mei@chatterbox.example\napproved_at: '2026-11-01T10:00:00'\n", "approved_at",
         "no time zone"),
        (WAIVER.replace('"2027-01-01T00:00:00Z"', '"2027-01-01T00:00:00"'), "expires", "no time zone"),
        (WAIVER.replace('"2027-01-01T00:00:00Z"', '"2027-01-01 00:00:00"'), "expires", "no time zone"),
        (WAIVER.replace('"2027-01-01T00:00:00Z"', '"2027-01-01 17:30"'), "expires", "no time zone"),
        # An exception nobody answers for would waive findings while its expiry warnings reach nobody.
        (WAIVER.replace("owner: team:data-platform", "owner: team:TBD"), "owner", "placeholder"),
        (WAIVER.replace("owner: team:data-platform", "owner: team:unknown"), "owner", "placeholder"),
    ],
)  # fmt: skip
def test_an_exception_without_owner_expiry_or_a_zoned_approval_is_rejected(text, field, reason):
    """A local time could keep an exception in force hours past its end; a date alone is midnight UTC."""
    waivers, rejections = _parse_waivers(text.encode(), "w.yaml", "digest")
    assert waivers == [] and len(rejections) == 1
    message = f"{rejections[0].field}: {rejections[0].reason}"
    assert field in message and reason in message, message


@pytest.mark.realdata
def test_odcs_contracts_retention_becomes_a_rule(real_samples):
    for name in ("odcs_database-table-sla.odcs.yaml", "odcs_full-example.odcs.yaml"):
        result = read_data_contract((real_samples / "policy" / name).read_bytes(), name)
        assert [(r["contract"], r["max"]) for r in result.records] == [("53581432-6c55-4ba2-a65f-72344a91553a", "P3Y")]
    full = read_data_contract((real_samples / "policy/odcs_full-example.odcs.yaml").read_bytes(), "f")
    assert full.observed_at == datetime(2022, 11, 15, 2, 59, 43, tzinfo=UTC)


def test_odcs_with_an_unknown_unit_or_version_is_rejected():
    doc = "apiVersion: v3.1.0\nkind: DataContract\nid: c1\nslaProperties:\n  - {property: retention, value: 3, unit: fortnights}\n"
    with pytest.raises(EvidenceError, match="fortnights"):
        read_data_contract(doc.encode(), "c.yaml")
    with pytest.raises(EvidenceError) as exc:
        read_data_contract(doc.replace("v3.1.0", "v2.2.0").encode(), "c.yaml")
    assert exc.value.field == "apiVersion"


@pytest.mark.realdata
def test_trivy_and_snyk_ignores_would_rot(real_samples):
    """Which real ignore entries would have rotted, and why: none records an owner; one never expires,
    the others expired long ago but are still listed."""
    rot = {}
    for name in ("trivyignore_altinn-notifications_expired_at.yaml", "trivyignore_forms-flow-ai_no_expiry.yaml",
                 "snyk_identity-idp.snyk"):  # fmt: skip
        result = read_foreign_exceptions((real_samples / "policy" / name).read_bytes(), name)
        rot[name] = [problem for _, problem, _, _ in foreign_rot(result.records, name, AT)]
    assert rot["trivyignore_altinn-notifications_expired_at.yaml"] == [
        "stale: expired 2026-05-10 (trivy no longer applies it) but is still listed; no owner"
    ]
    assert [p.split(":")[0] for p in rot["trivyignore_forms-flow-ai_no_expiry.yaml"]] == ["rots", "rots"]
    assert [p[:24] for p in rot["snyk_identity-idp.snyk"]] == ["stale: expired 2018-01-0", "stale: expired 2017-09-1"]


@pytest.mark.realdata
def test_real_kyverno_policy_exceptions_never_expire(real_samples):
    """Kyverno has no expiry field: the real exceptions apply until someone deletes them."""
    for name, policy in (("kyverno_policyexception_conditions.yaml", "max-containers (max-two-containers, "
                          "autogen-max-two-containers)"),
                         ("kyverno_policyexception_allows-rejects-creation.yaml", "require-labels (require-team)")):  # fmt: skip
        result = read_foreign_exceptions((real_samples / "policy" / name).read_bytes(), name)
        assert result.summary == {"tool": "kyverno", "exceptions": 1}
        [(subject, problem, fix, uri)] = foreign_rot(result.records, name, AT)
        assert subject.startswith(f"kyverno {policy} (PolicyException ") and uri == name
        assert problem == "rots: no expiry and no owner: it never expires"
        assert "cleanup.kyverno.io/ttl" in fix


KYVERNO = """apiVersion: kyverno.io/v2
kind: PolicyException
metadata:
  name: emergency
  namespace: ops
{labels}spec:
  exceptions:
  - policyName: disallow-host-path
    ruleNames: [host-path]
  match:
    any:
    - resources: {{kinds: [Pod]}}
"""


@pytest.mark.parametrize(
    ("labels", "problem"),
    [
        ("  labels:\n    cleanup.kyverno.io/ttl: 2026-11-01\n", "stale: expired 2026-11-01 (kyverno no longer applies"),
        ("  labels:\n    cleanup.kyverno.io/ttl: 2027-01-31T153000Z\n", "expires 2027-01-31, but names no owner"),
        ("  labels:\n    cleanup.kyverno.io/ttl: 4h\n", "expires 4h after the cluster first sees it"),
        ("  labels:\n    cleanup.kyverno.io/ttl: next-week\n", "rots: kyverno ignores metadata.labels."),
        ("  annotations:\n    example.com/expires: '2027-01-01'\n", "rots: kyverno ignores metadata.annotations."),
    ],
)
def test_kyverno_honours_only_its_cleanup_label(labels, problem):
    records = read_foreign_exceptions(KYVERNO.format(labels=labels).encode(), "k.yaml").records
    [(subject, found, _, _)] = foreign_rot(records, "k.yaml", AT)
    assert subject == "kyverno disallow-host-path (host-path) (PolicyException ops/emergency: spec.exceptions[0])"
    assert found.startswith(problem)


def test_kyverno_streams_and_cel_policy_exceptions():
    cel = "apiVersion: policies.kyverno.io/v1\nkind: PolicyException\nmetadata: {name: cel}\nspec:\n  policyRefs:\n  - {name: check-labels, kind: ValidatingPolicy}\n"
    result = read_foreign_exceptions(f"{KYVERNO.format(labels='')}---\n{cel}".encode(), "k.yaml")
    assert result.summary == {"tool": "kyverno", "exceptions": 2}
    assert [r["where"] for r in result.records] == [
        "PolicyException ops/emergency: spec.exceptions[0]",
        "PolicyException cel: spec.policyRefs[0]",
    ]


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (("kind: PolicyException", "kind: ClusterPolicy"), "kind"),
        (("  name: emergency\n", ""), "metadata.name"),
        (
            ("exceptions:\n  - policyName: disallow-host-path\n    ruleNames: [host-path]", "exceptions: []"),
            "spec.exceptions",
        ),
        (
            (
                "kind: PolicyException\n",
                "kind: PolicyException\nspec: {}\n---\napiVersion: kyverno.io/v2\nkind: PolicyException\n",
            ),
            "document 1.metadata.name",
        ),
        (("policyName: disallow-host-path", "policy: disallow-host-path"), "spec.exceptions[0].policyName"),
        (("ruleNames: [host-path]", "ruleNames: host-path"), "spec.exceptions[0].ruleNames"),
    ],
)
def test_a_broken_kyverno_exception_names_its_field(edit, field):
    with pytest.raises(EvidenceError) as exc:
        read_foreign_exceptions(KYVERNO.format(labels="").replace(*edit).encode(), "k.yaml")
    assert exc.value.field == field


def test_an_expiry_key_the_tool_ignores_never_expires():
    trivy = b"vulnerabilities:\n  - id: CVE-2026-1\n    statement: not reachable\n    expires: 2026-01-01\n"
    [(subject, problem, fix, _)] = foreign_rot(read_foreign_exceptions(trivy, "t").records, "t", AT)
    assert problem.startswith("rots: trivy ignores expires; it never expires") and "expired_at" in fix
    snyk = b"version: v1.25.0\nignore:\n  SNYK-1:\n    - '*':\n        reason: r\n        expiry: '2026-01-01'\n"
    [(_, problem, _, _)] = foreign_rot(read_foreign_exceptions(snyk, "s").records, "s", AT)
    assert problem.startswith("rots: snyk ignores expiry")


def test_trivys_plain_trivyignore_is_read_with_its_exp_dates():
    """The original ``.trivyignore`` (an id a line, ``exp:`` dates, ``#`` comments) was rejected as
    'invalid YAML' (or as 'expected a Trivy .trivyignore.yaml' when its ids happened to parse)."""
    from phase8_assets.domains.governance import foreign_rot

    text = b"# Accept the risk\nCVE-2018-14618\n\n# No impact in our settings\nCVE-2019-1543 exp:2019-12-31\n"
    for body in (text, b"AVD-DS-0002\nAVD-DS-0019\n"):
        assert read_foreign_exceptions(body, "repo/.trivyignore").summary == {"tool": "trivy"}
    records = read_foreign_exceptions(text, "repo/.trivyignore").records
    assert [(r["id"], r["where"], r["expires"]) for r in records] == [
        ("CVE-2018-14618", "line 2", None), ("CVE-2019-1543", "line 5", "2019-12-31T00:00:00+00:00")]  # fmt: skip
    rot = [problem for _, problem, _, _ in foreign_rot(records, "f", datetime(2026, 11, 20, tzinfo=UTC))]
    assert rot[0].startswith("rots: no expiry") and rot[1].startswith("stale: expired 2019-12-31")
    with pytest.raises(EvidenceError, match="exp"):
        read_foreign_exceptions(b"CVE-1 exp:soon\n", ".trivyignore")
